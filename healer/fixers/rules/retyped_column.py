"""Rule: an upstream column changed type (a date now a string, a number now text).

The job parses or casts the column back to the type it had at the last good run, with
the format detected from the data itself.
"""

from __future__ import annotations

from healer.fixers import pyedit, sqledit
from healer.fixers.base import FileEdit, Patch
from healer.fixers.formats import detect_temporal, plain_numbers
from healer.fixers.rules._common import input_columns, job_mentions

CATEGORIES = {"type_cast", "datatype_mismatch", "expectation", "unknown"}
NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double"}


class RetypedColumn:
    name = "rule:retyped_column"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES:
            return []
        patches = []
        for diff in evidence.changed:
            for column, (old_type, new_type) in diff.retyped.items():
                if new_type != "string" or not job_mentions(evidence, diff.input, column):
                    continue
                patch = self._patch(evidence, diff.input, column, old_type)
                if patch:
                    patches.append(patch)
        return patches

    def _conversion(self, evidence, input_name, column, old_type):
        """(sql template, python template, description, confidence, doubts) or None."""
        values = evidence.values.get((input_name, column), [])
        if old_type in ("date", "timestamp", "timestamp_ntz"):
            old = ((evidence.last_good.input_profiles or {}).get(input_name, {}) if evidence.last_good else {})
            old_col = old.get("columns", {}).get(column, {})
            found = detect_temporal(values, "date" if old_type == "date" else "timestamp",
                                    old_col.get("min"), old_col.get("max"))
            if not found:
                return None
            fn = "to_date" if old_type == "date" else "to_timestamp"
            doubts, confidence = [], 0.9
            if found.ambiguous_with:
                doubts.append(f"the values also read as {', '.join(found.ambiguous_with)}; "
                              f"{found.spark_pattern} was chosen because its range matches the last good run")
                confidence = 0.7
            return (f"{fn.upper()}({{ref}}, {sqledit.string_literal(found.spark_pattern)})",
                    f"{{F}}.{fn}({{F}}.col({pyedit.py_string(column)}), {pyedit.py_string(found.spark_pattern)})",
                    f"parsed with the pattern {found.spark_pattern} (detected from {len(values)} distinct values)",
                    confidence, doubts)
        if old_type in NUMERIC or old_type.startswith("decimal"):
            if not plain_numbers(values):
                return None
            return (f"CAST({{ref}} AS {old_type.upper()})",
                    f"{{F}}.col({pyedit.py_string(column)}).cast({pyedit.py_string(old_type)})",
                    f"cast back to {old_type} (all {len(values)} distinct values are plain numbers)", 0.85, [])
        return None

    def _patch(self, evidence, input_name, column, old_type) -> Patch | None:
        conversion = self._conversion(evidence, input_name, column, old_type)
        if not conversion:
            return None
        sql_t, py_t, how, confidence, doubts = conversion
        pipeline, source = evidence.pipeline, evidence.job_source
        if pipeline.kind == "sql":
            refs = sqledit.column_refs(source, input_name, column, input_columns(evidence))
            after = sqledit.rewrite_refs(source, refs, lambda text, ref: sql_t.format(ref=text))
            if after == source or not sqledit.reparses(after):
                return None
        else:
            with_import, alias = pyedit.ensure_functions_import(source)
            suffix = f".withColumn({pyedit.py_string(column)}, {py_t.format(F=alias)})"
            after = pyedit.wrap_reads(with_import, input_name, suffix)
            if after is None or not pyedit.parses(after):
                return None
        return Patch(
            fixer=self.name,
            title=f"upstream column {input_name}.{column} changed type from {old_type} to string",
            rationale=(f"At the last good run {input_name}.{column} was {old_type}; it now arrives as a string. "
                       f"The job reads it {how}, so everything downstream sees {old_type} again."),
            confidence=confidence,
            edits=[FileEdit(pipeline.job, source, after)],
            doubts=doubts,
            details={"input": input_name, "column": column, "type": old_type},
        )
