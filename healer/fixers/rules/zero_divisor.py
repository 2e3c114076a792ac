"""Rule: a division now meets zero divisors -> NULLIF(divisor, 0).

Spark (ANSI) fails the whole run on ``x / 0``. The divisors to guard are the unguarded
ones whose input columns hold zeros now (the evidence probes count them); when no probed
column explains it (a zero sum, a difference), every unguarded divisor over columns is
guarded, with less confidence. The ratio of such a row becomes NULL. Inside an aggregate
(``SUM(a / b)``) that row silently drops out of a total, which changes what the data
means: then the patch says so (a draft PR).
"""

from __future__ import annotations

import ast

from sqlglot import exp

from healer.evidence import jobscan
from healer.fixers import pyedit, sqledit
from healer.fixers.base import FileEdit, Patch
from healer.fixers.rules._common import input_columns

CATEGORIES = {"divide_by_zero"}
PY_AGGREGATES = {"sum", "avg", "mean", "max", "min", "collect_list", "collect_set", "stddev", "variance",
                 "percentile_approx", "median", "sum_distinct", "first", "last"}


class ZeroDivisor:
    name = "rule:zero_divisor"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES:
            return []
        if evidence.pipeline.kind == "sql":
            return self._sql(evidence)
        return self._python(evidence)

    def _zeros(self, evidence, columns):
        """(input, column, zeros, rows) of the divisor columns that hold zeros now."""
        out = []
        for input_name, column in columns:
            probe = evidence.probes.zero(input_name, column) if evidence.probes else None
            if probe and probe.zeros:
                out.append((probe.input, probe.column, probe.zeros, probe.rows))
        return out

    def _sql(self, evidence) -> list[Patch]:
        source = evidence.job_source
        divisors = jobscan.sql_divisors(source, input_columns(evidence))
        open_ = [(i, d) for i, d in enumerate(divisors) if not d.guarded and d.columns]
        explained = [(i, d, self._zeros(evidence, d.columns)) for i, d in open_]
        chosen = [(i, d, z) for i, d, z in explained if z]
        guessed = not chosen
        if guessed:
            chosen = [(i, d, []) for i, d in open_]
        if not chosen:
            return []
        wanted = {i for i, _, _ in chosen}
        in_aggregate = []

        def transform(tree):
            for k, node in enumerate(list(tree.find_all(*jobscan.DIVISIONS))):
                if k in wanted:
                    if node.find_ancestor(exp.AggFunc) is not None:
                        in_aggregate.append(node.expression.sql("spark"))
                    divisor = node.expression  # moved, not copied: divisions inside it stay in the tree
                    guard = exp.Nullif(expression=exp.Literal.number(0))
                    node.set("expression", guard)
                    guard.set("this", divisor)
            return tree

        after = sqledit.transform_text(source, transform)
        if after is None or not sqledit.reparses(after):
            return []
        return [self._patch(evidence, after, [(d.divisor, z) for _, d, z in chosen], guessed, bool(in_aggregate),
                            "NULLIF(divisor, 0)")]

    def _python(self, evidence) -> list[Patch]:
        source = evidence.job_source
        known = {c for cols in input_columns(evidence).values() for c in cols}
        alias = pyedit.functions_alias(source)
        # a divisor over input columns, or one the job computes (an aggregate's alias: F.col("units"))
        divisions = [(node, cols) for node, cols in jobscan.py_divisors(source, known)
                     if cols or _spark_column(node.right, alias)]
        explained = [(node, cols, self._zeros(evidence, [(None, c) for c in cols])) for node, cols in divisions]
        chosen = [x for x in explained if x[2]]
        guessed = not chosen
        if guessed:
            chosen = explained
        if not chosen:
            return []
        with_import, alias = pyedit.ensure_functions_import(source)
        tree = ast.parse(with_import)
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        wanted = {(n.lineno, n.col_offset) for n, _, _ in chosen}
        shift = with_import.count("\n") - source.count("\n")  # the import line added above
        edits, aggregate = [], False
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp) and (node.lineno - shift, node.col_offset) in wanted:
                span = pyedit.node_span(with_import, node.right)
                divisor = with_import[span.start:span.end]
                edits.append((span, f"{alias}.nullif({divisor}, {alias}.lit(0))"))
                aggregate = aggregate or _inside_aggregate(node, parents)
        after = pyedit.replace_spans(with_import, edits) if edits else None
        if after is None or not pyedit.parses(after):
            return []
        return [self._patch(evidence, after, [(ast.get_source_segment(source, n.right) or "?", z) for n, _, z in chosen],
                            guessed, aggregate, f"{alias}.nullif(divisor, {alias}.lit(0))")]

    def _patch(self, evidence, after, found, guessed, aggregate, how) -> Patch:
        counts = []
        for divisor, zeros in found:
            for input_name, column, n, rows in zeros:
                counts.append(f"{n} of {rows} rows of {input_name}.{column} are 0")
        divisors = ", ".join(f"`{d}`" for d, _ in found)
        doubts = []
        if guessed:
            doubts.append("no probed input column holds zeros (a divisor may be computed by the job: an aggregate, "
                          "a sum that nets to zero over new rows); every unguarded divisor was guarded, since the "
                          "failing one could not be pinned down")
        if aggregate:
            doubts.append("a guarded division sits inside an aggregate: rows with a zero divisor now drop out "
                          "of that total instead of failing the run")
        else:
            doubts.append("rows with a zero divisor now get a NULL ratio instead of failing the run")
        pipeline = evidence.pipeline
        return Patch(
            fixer=self.name,
            title=f"new zero values in the divisor {divisors}",
            rationale=("The run failed dividing by zero. " + ("; ".join(counts) + ". " if counts else "")
                       + f"The divisor is now written {how}, so a zero divisor gives NULL; every other row is "
                       "computed exactly as before."),
            confidence=0.7 if guessed else 0.85,
            edits=[FileEdit(pipeline.job, evidence.job_source, after)],
            changes_meaning=aggregate,
            doubts=doubts,
            details={"divisors": [d for d, _ in found], "zeros": [list(z) for _, zs in found for z in zs]},
        )


def _spark_column(node, functions_alias: str | None) -> bool:
    """Whether an expression is a Spark column (``F.col("x")``, ``F.sum("x")``, ``col("x")``), not
    a Python number: only a column can be guarded with ``nullif``."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            func = inner.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == functions_alias:
                return True
            if jobscan.py_column_name(inner):
                return True
    return False


def _inside_aggregate(node, parents) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Call) and jobscan.py_call_name(node) in PY_AGGREGATES:
            return True
    return False
