"""Rule: an input now holds exact duplicate rows (a replayed batch) -> deduplicate it where it is read.

A uniqueness expectation fails (``column_values_unique``, ``compound_columns_unique``) and
an input the job reads holds whole-row duplicates: rows equal in every column, as when an
upstream load replays a batch. The evidence probes count rows against distinct rows. The
job then reads that input deduplicated: SQL ``FROM orders o`` becomes ``FROM (SELECT
DISTINCT * FROM orders) AS o`` (the table's name is the alias when it had none), PySpark
``spark.table("orders")`` becomes ``spark.table("orders").dropDuplicates()``. Reads the job
already deduplicates (a ``SELECT DISTINCT`` over the table, ``.dropDuplicates(...)`` or
``.distinct()`` on the read) are left alone: the job knows that feed repeats itself.

Removing rows changes what the data means and hides an upstream problem: the patch says how
many rows go (a draft PR). No input with exact duplicates means the clashing keys are on
rows that differ in some column: that is not a replay, and no patch is proposed.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from healer.evidence.probes import UNIQUENESS, DuplicateProbe
from healer.expectations import ExpectationResult
from healer.fixers import pyedit, sqledit
from healer.fixers.base import Declined, FileEdit, Patch, RootCause
from healer.fixers.rules._common import failed_expectations, input_name

CATEGORIES = {"expectation"}
PY_DEDUPES = {"dropDuplicates", "drop_duplicates", "distinct", "dropDuplicatesWithinWatermark"}


class ReplayedBatch:
    name = "rule:replayed_batch"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES or evidence.probes is None:
            return []
        broken = failed_expectations(evidence, UNIQUENESS)
        if not broken:
            return []
        replayed = [p for p in evidence.probes.duplicates if p.duplicates > 0]
        if not replayed:  # DISTINCT would not help
            raise Declined("a uniqueness expectation failed but no input holds exact duplicate rows: the clashing "
                           "keys are on rows that differ, which is not a replayed batch")
        if evidence.pipeline.kind == "sql":
            after, used = self._sql(evidence, replayed)
        else:
            after, used = self._python(evidence, replayed)
        if not used:
            raise Declined(f"{', '.join(input_name(evidence, p.input) for p in replayed)} hold(s) exact duplicates, "
                           "but the job already deduplicates every read of them: the cause is elsewhere")
        if after is None or after == evidence.job_source:
            return []
        return [self._patch(evidence, after, used, broken)]

    def _sql(self, evidence, replayed: list[DuplicateProbe]) -> tuple[str | None, list[DuplicateProbe]]:
        source = evidence.job_source
        tree = sqledit.parse(source)
        edits, changes, used = [], [], []
        for probe in replayed:
            reads = [r for r in sqledit.input_reads(tree, probe.input) if not r.distinct]
            for read in reads:
                span = sqledit.table_span(read.table)
                if span is None:
                    return None, []
                alias = "" if read.table.alias else f" AS {sqledit.quote(read.table.name)}"
                edits.append((span[0], span[1], f"(SELECT DISTINCT * FROM {source[span[0]:span[1]]}){alias}"))
                changes.append(read.table)
            if reads:
                used.append(probe)
        for table in changes:  # the same change on the tree, to check the text against
            inner = table.copy()
            inner.set("alias", None)
            alias = table.alias or table.name
            table.replace(exp.Subquery(this=exp.select("*").distinct().from_(inner),
                                       alias=exp.TableAlias(this=exp.to_identifier(alias))))
        if not edits:
            return None, []
        return sqledit.apply_checked(source, edits, tree), used

    def _python(self, evidence, replayed: list[DuplicateProbe]) -> tuple[str | None, list[DuplicateProbe]]:
        after, used = evidence.job_source, []
        for probe in replayed:
            name = input_name(evidence, probe.input)
            plain = [span for span, method in pyedit.read_followers(after, name) if method not in PY_DEDUPES]
            if not plain:
                continue  # not read with spark.table, or every read is already deduplicated
            after = pyedit.append_at(after, plain, ".dropDuplicates()")
            if after is None:
                return None, []
            used.append(probe)
        return (after if pyedit.parses(after) else None), used

    def _patch(self, evidence, after: str, used: list[DuplicateProbe], broken: list[ExpectationResult]) -> Patch:
        total = sum(p.duplicates for p in used)
        worst = max(p.duplicates / max(p.rows, 1) for p in used)
        found = "; ".join(f"{input_name(evidence, p.input)} holds {p.duplicates} exact duplicate row(s) among the "
                          f"{p.rows} rows scanned ({p.duplicates / max(p.rows, 1):.2%})" for p in used)
        shares = "; ".join(f"{p.duplicates} of {p.rows} rows scanned of {input_name(evidence, p.input)}, "
                           f"{p.duplicates / max(p.rows, 1):.2%}" for p in used)
        names = ", ".join(input_name(evidence, p.input) for p in used)
        keys = "; ".join(_describe(e) for e in broken)
        how = "SELECT DISTINCT *" if evidence.pipeline.kind == "sql" else ".dropDuplicates()"
        return Patch(
            fixer=self.name,
            title=f"{names} now holds exact duplicate rows (a replayed batch); the fix removes {total} of them",
            rationale=(f"A uniqueness expectation failed ({keys}). {found}: whole rows repeated in every column, as "
                       f"when an upstream load replays a batch. The job now reads {names} with {how}, so each row "
                       "counts once; rows that differ in any column are kept as before."),
            confidence=0.7 if worst <= 0.1 else 0.6,
            edits=[FileEdit(evidence.pipeline.job, evidence.job_source, after)],
            changes_meaning=True,
            doubts=[f"The fix removes {total} duplicate row(s) of {names} ({shares}) and hides an upstream problem: "
                    "the feed delivered those rows twice. Ask its owners to remove the replayed batch.",
                    "Rows that are legitimately identical (two equal purchases in the same second, without an id) "
                    "are merged into one as well."],
            root_cause=RootCause(duplicates=tuple(replace(p, input=input_name(evidence, p.input)) for p in used)),
        )


def _describe(expectation: ExpectationResult) -> str:
    """``order_id must be unique``, from a failed expectation as the audit recorded it."""
    if expectation.column:
        return f"{expectation.column} must be unique"
    return f"{expectation.expectation or expectation.kind} failed"
