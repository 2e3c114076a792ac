"""Rule: an upstream column changed type (a date now a string, a number now text, a
timestamp now epoch numbers).

The job parses or casts the column back to the type it had at the last good run, with the
format detected from the data itself:

    string dates/timestamps in a common format  -> TO_DATE / TO_TIMESTAMP(x, '<pattern>')
    plain numbers as text                       -> CAST(x AS <type>)
    formatted numbers ("1,234.50", "1.234,50 €") -> CAST(REGEXP_REPLACE(x, '[,$]', '') AS <type>)
    epoch seconds / millis / micros             -> TIMESTAMP_SECONDS / _MILLIS / _MICROS(x)

The epoch unit is read from the value range (seconds of 2024 are ~1.7e9, millis ~1.7e12)
and must land near the range the column held at the last good run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from healer.fixers import pyedit, sqledit
from healer.fixers.base import FileEdit, Patch
from healer.fixers.formats import detect_epoch, detect_number, detect_temporal, plain_numbers
from healer.fixers.rules._common import input_columns, job_mentions

CATEGORIES = {"type_cast", "datatype_mismatch", "expectation", "unknown"}
NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double"}
TEMPORAL = {"date", "timestamp"}
EPOCH_SQL = {"seconds": "TIMESTAMP_SECONDS", "millis": "TIMESTAMP_MILLIS", "micros": "TIMESTAMP_MICROS"}


@dataclass
class Conversion:
    sql: str  # template with {ref}
    python: str  # template with {F} (functions alias) and {c} (column name literal)
    how: str
    confidence: float
    doubts: list[str] = field(default_factory=list)
    kind: str = ""


def _numeric(typ: str) -> bool:
    return typ in NUMERIC or typ.startswith("decimal")


class RetypedColumn:
    name = "rule:retyped_column"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES:
            return []
        patches = []
        for diff in evidence.changed:
            for column, (old_type, new_type) in diff.retyped.items():
                if not job_mentions(evidence, diff.input, column):
                    continue
                patch = self._patch(evidence, diff.input, column, old_type, new_type)
                if patch:
                    patches.append(patch)
        return patches

    def _old_range(self, evidence, input_name, column):
        old = (evidence.last_good.input_profiles or {}).get(input_name, {}) if evidence.last_good else {}
        col = old.get("columns", {}).get(column, {})
        return col.get("min"), col.get("max")

    def _conversion(self, evidence, input_name, column, old_type, new_type) -> Conversion | None:
        values = evidence.values.get((input_name, column), [])
        old_min, old_max = self._old_range(evidence, input_name, column)
        c = pyedit.py_string(column)
        if old_type in TEMPORAL and new_type == "string":
            found = detect_temporal(values, "date" if old_type == "date" else "timestamp", old_min, old_max)
            if found:
                fn = "to_date" if old_type == "date" else "to_timestamp"
                doubts, confidence = [], 0.9
                if found.ambiguous_with:
                    doubts.append(f"the values also read as {', '.join(found.ambiguous_with)}; "
                                  f"{found.spark_pattern} was chosen because its range matches the last good run")
                    confidence = 0.7
                return Conversion(f"{fn.upper()}({{ref}}, {sqledit.string_literal(found.spark_pattern)})",
                                  f"{{F}}.{fn}({{F}}.col({c}), {pyedit.py_string(found.spark_pattern)})",
                                  f"parsed with the pattern {found.spark_pattern} (detected from {len(values)} "
                                  "distinct values)", confidence, doubts, "format")
            if values and all(str(v).strip().lstrip("-").isdigit() for v in values):
                return self._epoch(values, old_type, old_min, old_max, c, text=True)
            return None
        if old_type in TEMPORAL and _numeric(new_type):
            return self._epoch(values, old_type, old_min, old_max, c, text=False,
                               integral=not (new_type in ("float", "double") or new_type.startswith("decimal")))
        if _numeric(old_type) and new_type == "string":
            if plain_numbers(values):
                return Conversion(f"CAST({{ref}} AS {old_type.upper()})",
                                  f"{{F}}.col({c}).cast({pyedit.py_string(old_type)})",
                                  f"cast back to {old_type} (all {len(values)} distinct values are plain numbers)",
                                  0.85, kind="cast")
            fmt = detect_number(values, old_min, old_max)
            if fmt is None:
                return None
            doubts, confidence = [], 0.85
            if fmt.ambiguous_with:
                doubts.append(f"the values also read with '{fmt.ambiguous_with}' as the decimal mark; "
                              f"'{fmt.decimal}' was chosen")
                confidence = 0.6
            if old_min is not None and old_max is not None and not _near(fmt.parsed_min, fmt.parsed_max, old_min, old_max):
                doubts.append(f"the parsed values range {fmt.parsed_min:g}..{fmt.parsed_max:g}, the last good run "
                              f"held {old_min}..{old_max}")
                confidence = min(confidence, 0.6)
            sql_inner, py_inner = "{ref}", f"{{F}}.col({c})"
            if fmt.strip:
                cls = fmt.regex_class()
                sql_inner = f"REGEXP_REPLACE({sql_inner}, {sqledit.string_literal(cls)}, '')"
                py_inner = f"{{F}}.regexp_replace({py_inner}, {pyedit.py_string(cls)}, \"\")"
            if fmt.decimal == ",":
                sql_inner = f"REPLACE({sql_inner}, ',', '.')"
                py_inner = f"{{F}}.regexp_replace({py_inner}, \",\", \".\")"
            shown = "".join("␠" if ch == " " else ch for ch in fmt.strip)
            return Conversion(f"CAST({sql_inner} AS {old_type.upper()})",
                              f"{py_inner}.cast({pyedit.py_string(old_type)})",
                              f"with '{shown}' removed" + (" and ',' read as the decimal mark" if fmt.decimal == "," else "")
                              + f", then cast back to {old_type} (every one of the {len(values)} distinct values seen "
                              "reads this way)",
                              confidence, doubts, "formatted number")
        return None

    def _epoch(self, values, old_type, old_min, old_max, c, text: bool, integral: bool = True) -> Conversion | None:
        found = detect_epoch(values, old_min, old_max)
        if found is None:
            return None
        fn = EPOCH_SQL[found.unit]
        py_fn = f"timestamp_{found.unit}"
        ref, py_ref = "{ref}", f"{{F}}.col({c})"
        if text or (not integral and found.unit != "seconds"):
            ref, py_ref = f"CAST({ref} AS BIGINT)", f"{py_ref}.cast(\"bigint\")"
        sql = f"{fn}({ref})"
        py = f"{{F}}.{py_fn}({py_ref})"
        if old_type == "date":
            sql, py = f"CAST({sql} AS DATE)", f"{py}.cast(\"date\")"
        return Conversion(sql, py, f"as epoch {found.unit} (the values span {found.parsed_min:%Y-%m-%d} to "
                                   f"{found.parsed_max:%Y-%m-%d} read that way, like the last good run)", 0.85, kind="epoch")

    def _patch(self, evidence, input_name, column, old_type, new_type) -> Patch | None:
        conversion = self._conversion(evidence, input_name, column, old_type, new_type)
        if not conversion:
            return None
        pipeline, source = evidence.pipeline, evidence.job_source
        if pipeline.kind == "sql":
            refs = sqledit.column_refs(source, input_name, column, input_columns(evidence))
            after = sqledit.rewrite_refs(source, refs, lambda text, ref: conversion.sql.format(ref=text))
            if after == source or not sqledit.reparses(after):
                return None
        else:
            with_import, alias = pyedit.ensure_functions_import(source)
            suffix = f".withColumn({pyedit.py_string(column)}, {conversion.python.format(F=alias)})"
            after = pyedit.wrap_reads(with_import, input_name, suffix)
            if after is None or not pyedit.parses(after):
                return None
        return Patch(
            fixer=self.name,
            title=f"upstream column {input_name}.{column} changed type from {old_type} to {new_type}",
            rationale=(f"At the last good run {input_name}.{column} was {old_type}; it now arrives as {new_type}. "
                       f"The job reads it {conversion.how}, so everything downstream sees {old_type} again."),
            confidence=conversion.confidence,
            edits=[FileEdit(pipeline.job, source, after)],
            doubts=conversion.doubts,
            details={"input": input_name, "column": column, "type": old_type, "conversion": conversion.kind},
        )


def _near(lo: float, hi: float, old_lo, old_hi) -> bool:
    """Whether a parsed range is within an order of magnitude of the last good one."""
    try:
        old_lo, old_hi = float(old_lo), float(old_hi)
    except (TypeError, ValueError):
        return True
    span = max(abs(old_hi), abs(old_lo), 1.0)
    return max(abs(hi), abs(lo)) <= span * 10 and max(abs(hi), abs(lo)) >= span / 10
