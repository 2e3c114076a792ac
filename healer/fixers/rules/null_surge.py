"""Rule: NULLs surged in an input column a not-NULL output comes from -> drop those rows where it is read.

An output column must not be NULL (``column_values_not_null``) and now is. Its lineage
leads to an input column whose NULL fraction jumped since the last good run (it was about
zero, or far lower, in that run's input profile; it is not now). The job then drops the
input's rows whose column is NULL where it reads the input: SQL gets ``<alias>.col IS NOT
NULL`` in the WHERE of the SELECT reading the table, PySpark a ``.where("col IS NOT
NULL")`` on ``spark.table("x")``. Every other row is computed as before. The output may be
derived (a month from a date, a key from a split): lineage leads through the derivation to
the input column. NULLs now are counted over every scanned row when a probe did (new rows
of an onboarded source arrive at the end, past the rows a profile reads), else profiled.

Dropping rows changes what the data means and hides an upstream data problem: the patch
says how many rows go (a draft PR). When more than ``MAX_SHARE`` of the rows are NULL it is
a broken feed, not a few bad rows: no patch. Nothing surged (the NULLs come from the job
itself, an outer join, a new value the job maps to NULL): no patch either.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlglot import exp

from healer.fixers import pyedit, sqledit
from healer.fixers.base import Declined, FileEdit, Patch, RootCause, Surge
from healer.fixers.rules._common import failed_expectations, input_columns, input_name

CATEGORIES = {"expectation"}
MAX_SHARE = 0.10  # at most this share of an input's rows may be dropped; more is a broken feed
SURGE_FACTOR = 2.0  # the NULL fraction must at least double (from zero, any NULL is a surge)


class NullSurge:
    name = "rule:null_surge"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES or not evidence.last_good:
            return []
        outputs = sorted({e.column for e in failed_expectations(evidence, {"column_values_not_null"}) if e.column})
        surges: dict[tuple[str, str], Surge] = {}
        behind: dict[str, list[str]] = {}  # output column -> the surged input columns it comes from
        for output in outputs:
            found = self._surges_behind(evidence, output)
            if found is None:
                raise Declined(f"several input columns behind {output} are NULL more often now: which rows to drop "
                               "would be a guess")
            for s in found:
                surges[(s.input, s.column.lower())] = s
                behind.setdefault(output, []).append(f"{s.input}.{s.column}")
        if not surges:
            if outputs:  # the NULLs come from the job or a value it maps to NULL: dropping rows misses the cause
                raise Declined(f"no input column behind {', '.join(outputs)} is NULL more often than at the last "
                               "good run")
            return []
        broken_feed = [s for s in surges.values() if s.now > MAX_SHARE]
        if broken_feed:  # a filter would hide most of the data
            raise Declined("; ".join(f"{s.input}.{s.column} is NULL in {s.now:.0%} of the profiled rows (was "
                                     f"{s.before:.0%})" for s in broken_feed)
                           + f": a broken feed, not a few bad rows (at most {MAX_SHARE:.0%} are dropped)")
        chosen = sorted(surges.values(), key=lambda s: (s.input, s.column))
        if evidence.pipeline.kind == "sql":
            after = self._sql(evidence, chosen)
        else:
            after = self._python(evidence, chosen)
        if after is None or after == evidence.job_source:
            return []
        return [self._patch(evidence, after, chosen, behind)]

    # -- which input columns surged --------------------------------------------------------
    def _surges_behind(self, evidence, output: str) -> list[Surge] | None:
        """The surged input columns an output column is computed from; None when the lineage
        is inexact and more than one surged column could be the one."""
        lineage = evidence.lineage
        sources = next((v for k, v in lineage.outputs.items() if k.lower() == output.lower()), None)
        if not sources and not lineage.exact:
            sources = lineage.referenced  # PySpark without a recorded output: any column it reads
        found = [s for s in (self._surge(evidence, src) for src in sorted(sources or ())) if s]
        if len(found) > 1 and not lineage.exact:
            # PySpark lineage ties every output to every column the job names: only the
            # output's own name singles one out
            same = [s for s in found if s.column.lower() == output.lower()]
            return same if len(same) == 1 else None
        return found

    def _surge(self, evidence, source: str) -> Surge | None:
        name, _, column = source.partition(".")
        before = _nulls(evidence.last_good.input_profiles or {}, name, column)
        now = _nulls(evidence.current_profiles or {}, name, column)
        probe = evidence.probes.null(name, column) if evidence.probes is not None else None
        if probe is not None and probe.rows and (now is None or probe.rows > now.rows):
            # a profile reads the first rows only; newly onboarded rows arrive at the end
            now = ColumnNulls(probe.column, probe.fraction, probe.rows)
        if before is None or now is None:
            return None  # no profile to compare: a surge cannot be told from a habit
        if now.fraction <= 0 or now.fraction < SURGE_FACTOR * before.fraction:
            return None
        return Surge(input_name(evidence, name), now.column, before.fraction, now.fraction, now.rows)

    # -- the edits ---------------------------------------------------------------------------
    def _sql(self, evidence, surges: list[Surge]) -> str | None:
        source = evidence.job_source
        tree = sqledit.parse(source)
        cols = input_columns(evidence)
        # one condition per SELECT (a self-join may read the input twice in the same one)
        groups: dict[int, tuple[sqledit.TableRead, list[exp.Expression]]] = {}
        for s in surges:
            reads = [r for r in sqledit.input_reads(tree, s.input) if r.uses(s.column, cols)]
            if not reads:
                return None  # the column is read nowhere we can filter (a view, a function)
            for read in reads:
                if not isinstance(read.select, exp.Select) or read.null_extended():
                    return None  # a WHERE on the padded side of an outer join would drop unmatched rows too
                condition = exp.Is(this=exp.column(s.column, table=read.qualifier), expression=exp.Null(), negate=True)
                groups.setdefault(id(read.select), (read, []))[1].append(condition)
        edits = []
        for read, conditions in groups.values():
            found = sqledit.and_where(source, read, " AND ".join(c.sql(dialect="spark") for c in conditions))
            if found is None:
                return None
            edits += found
        for read, conditions in groups.values():  # the same change on the tree, to check the text against
            for condition in conditions:
                read.select.where(condition, copy=False)
        return sqledit.apply_checked(source, edits, tree)

    def _python(self, evidence, surges: list[Surge]) -> str | None:
        after = evidence.job_source
        by_input: dict[str, list[str]] = {}
        for s in surges:
            by_input.setdefault(s.input, []).append(s.column)
        for name, columns in by_input.items():
            condition = " AND ".join(f"{sqledit.quote(c)} IS NOT NULL" for c in columns)
            after = pyedit.wrap_reads(after, name, f".where({pyedit.py_string(condition)})")
            if after is None:
                return None  # not read with spark.table("<name>"): nowhere to filter it
        return after if pyedit.parses(after) else None

    def _patch(self, evidence, after: str, surges: list[Surge], behind: dict[str, list[str]]) -> Patch:
        lines = [f"{s.input}.{s.column} is NULL in {s.now:.2%} of the profiled rows now ({s.nulls} of {s.rows}), "
                 f"against {s.before:.2%} at the last good run" for s in surges]
        columns = ", ".join(f"{s.input}.{s.column}" for s in surges)
        worst = max(s.now for s in surges)
        outputs = "; ".join(f"{o} comes from {', '.join(srcs)}" for o, srcs in behind.items())
        drops = "; ".join(f"{s.nulls} of {s.rows} profiled rows of {s.input} ({s.now:.2%})" for s in surges)
        return Patch(
            fixer=self.name,
            title=f"NULLs surged in {columns}; the fix drops those rows ({drops})",
            rationale=(f"The output must not be NULL and now is: {outputs}. The NULLs are new upstream: "
                       + "; ".join(lines) + ". The job now drops the rows whose "
                       + ", ".join(f"{s.input}.{s.column}" for s in surges)
                       + " is NULL where it reads the input; every other row is computed exactly as before."),
            confidence=0.7 if worst < 0.01 else 0.6,
            edits=[FileEdit(evidence.pipeline.job, evidence.job_source, after)],
            changes_meaning=True,
            doubts=[f"The fix drops rows: {drops}; counts and totals downstream no longer include them. It hides an "
                    f"upstream data problem instead of fixing it: ask the owners of {columns} why the values are "
                    "missing, and remove the filter once the feed is repaired.",
                    "NULL fractions come from a profile of a bounded number of rows of each input; the full input "
                    "may hold more or fewer NULL rows."],
            root_cause=RootCause(surges=tuple(surges)),
        )


class ColumnNulls(NamedTuple):
    column: str  # as the profile spells it
    fraction: float
    rows: int  # rows profiled


def _nulls(profiles: dict, name: str, column: str) -> ColumnNulls | None:
    """The NULL fraction of ``name.column`` in a set of input profiles (names match in any case)."""
    prof = next((p for n, p in profiles.items() if n.lower() == name.lower() and p), None)
    if not prof:
        return None
    spelled, col = next(((c, v) for c, v in (prof.get("columns") or {}).items() if c.lower() == column.lower()),
                        (None, None))
    if col is None or col.get("null_fraction") is None:
        return None
    return ColumnNulls(spelled, float(col["null_fraction"]), int(prof.get("row_count") or 0))
