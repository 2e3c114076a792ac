"""Rule: an explicit CAST now fails on new bad values -> TRY_CAST, saying how many rows go NULL.

The column kept its type; some of its current values no longer cast (``'N/A'`` in a
quantity, ``'2024-13-45'`` in a date). The evidence probes count, on the current input,
the non-NULL values each cast would reject. Only casts that reject something change;
``TRY_CAST`` turns those values into NULL, which changes what the data means: the patch
says so (a draft PR), with the count and a few examples. When too many values would be
lost (more than ``MAX_FAILING``), it is a format change, not a few bad values: no patch.
"""

from __future__ import annotations

from sqlglot import exp

from healer.evidence import jobscan
from healer.fixers import pyedit, sqledit
from healer.fixers.base import Declined, FileEdit, Patch
from healer.fixers.rules._common import input_columns

CATEGORIES = {"type_cast", "unknown"}
MAX_FAILING = 0.05  # at most this fraction of non-NULL values may become NULL


class UnsafeCast:
    name = "rule:unsafe_cast"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES or evidence.probes is None:
            return []
        retyped = {(d.input.lower(), c.lower()) for d in evidence.changed for c in d.retyped}
        if evidence.pipeline.kind == "sql":
            return self._sql(evidence, retyped)
        return self._python(evidence, retyped)

    def _bad(self, evidence, input_name, operand, typ):
        probe = evidence.probes.cast(input_name, operand, typ)
        return probe if probe is not None and probe.failing > 0 else None

    def _sql(self, evidence, retyped) -> list[Patch]:
        source = evidence.job_source
        cols = input_columns(evidence)
        casts = jobscan.sql_casts(source, cols)
        chosen = []
        for i, cast in enumerate(casts):
            if not cast.input or any((cast.input.lower(), c.lower()) in retyped for c in cast.columns):
                continue
            probe = self._bad(evidence, cast.input, cast.operand, cast.type)
            if probe:
                chosen.append((i, cast, probe))
        if not chosen:
            return []
        wanted = {i for i, _, _ in chosen}

        def transform(tree):
            k = 0
            for node in list(tree.find_all(exp.Cast)):
                if not jobscan.is_unsafe_cast(node) or not list(node.this.find_all(exp.Column)):
                    continue
                if k in wanted:  # in place, so casts nested inside keep their identity
                    if isinstance(node, exp.TryCast):
                        node.set("safe", True)
                    else:
                        node.replace(exp.TryCast(this=node.this, to=node.to, safe=True))
                k += 1
            return tree

        after = sqledit.transform_text(source, transform)
        if after is None or not sqledit.reparses(after):
            return []
        return self._patch(evidence, after, [(c.input, ", ".join(c.columns), c.type, p) for _, c, p in chosen], "TRY_CAST")

    def _python(self, evidence, retyped) -> list[Patch]:
        source = evidence.job_source
        edits, found = [], []
        for node, column, typ in jobscan.py_casts(source):
            if any(c == column.lower() for _, c in retyped):
                continue
            probe = self._bad(evidence, None, f"`{column}`", typ)
            if not probe:
                continue
            span = pyedit.node_span(source, node.func)
            edits.append((pyedit.Span(span.end - len("cast"), span.end), "try_cast"))
            found.append((probe.input, column, typ, probe))
        if not edits:
            return []
        after = pyedit.replace_spans(source, edits)
        if after is None or not pyedit.parses(after):
            return []
        return self._patch(evidence, after, found, ".try_cast")

    def _patch(self, evidence, after, found, how) -> list[Patch]:
        too_many = [(i, c, t, p) for i, c, t, p in found if p.failing > MAX_FAILING * max(p.non_null, 1)]
        if too_many:  # TRY_CAST would hide it
            raise Declined("; ".join(f"{p.failing} of {p.non_null} values of {i}.{c} do not cast to {t}"
                                     for i, c, t, p in too_many)
                           + f": a format change, not a few bad values (at most {MAX_FAILING:.0%} may become NULL)")
        lines, examples = [], []
        for input_name, column, typ, p in found:
            share = p.failing / max(p.non_null, 1)
            lines.append(f"{p.failing} of {p.non_null} non-NULL values of {input_name}.{column} ({share:.2%}, "
                         f"in {p.rows} rows scanned) do not cast to {typ}")
            examples += [f"'{e}'" for e in p.examples]
        worst = max(p.failing / max(p.non_null, 1) for *_, p in found)
        confidence = 0.75 if worst < 0.01 else 0.65
        total = sum(p.failing for *_, p in found)
        pipeline = evidence.pipeline
        columns = ", ".join(f"{i}.{c}" for i, c, _, _ in found)
        return [Patch(
            fixer=self.name,
            title=f"new values of {columns} no longer cast; {total} row(s) become NULL",
            rationale=("The job's CAST now fails on values that were not there at the last good run: "
                       + "; ".join(lines) + (f" (for example {', '.join(examples[:5])})" if examples else "")
                       + f". With {how} those values become NULL instead of failing the run; every other value "
                       "is cast exactly as before."),
            confidence=confidence,
            edits=[FileEdit(pipeline.job, evidence.job_source, after)],
            changes_meaning=True,
            doubts=[f"{total} row(s) of the current input now carry NULL where the job used to fail; downstream "
                    "totals and counts leave them out. Decide whether those values should be fixed upstream."]
                   + ([f"sample of rejected values: {', '.join(examples[:5])}"] if examples else []),
            details={"casts": [{"input": i, "columns": c, "type": t, "failing": p.failing, "non_null": p.non_null,
                                "rows": p.rows} for i, c, t, p in found]},
        )]
