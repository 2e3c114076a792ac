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


# -- widened columns: a rename or a move often widens a few types in the same release -------------
#
# INT -> BIGINT, FLOAT -> DOUBLE, DECIMAL(10,2) -> DECIMAL(18,2) break nothing by themselves,
# but they change the type of every output computed from the column. Paired with a rename or
# a move, the rule fixing that also decides the widened columns: cast back to the old type
# when every current value fits (counted by a probe on the current rows, else read from a
# profile, where an ANSI CAST still fails loudly on a value that does not fit), else keep
# the wider type and say so.

INTEGRAL_RANGE = {"tinyint": 2 ** 7, "smallint": 2 ** 15, "int": 2 ** 31, "bigint": 2 ** 63}


@dataclass(frozen=True)
class CastBack:
    """A widened column the job reads, and what the fix does with it."""

    input: str
    column: str  # the name the job reads (the old name)
    now: str  # its name in the input now
    old_type: str
    new_type: str
    cast: bool  # True: cast back to old_type (every value fits); False: the wider type is kept
    why: str  # how the fit was judged, for the rationale
    doubt: str = ""

    def sql(self, ref: str) -> str:
        return f"CAST({ref} AS {self.old_type.upper()})"

    def python(self, functions_alias: str) -> str:
        return (f".withColumn({pyedit.py_string(self.column)}, {functions_alias}.col({pyedit.py_string(self.column)})"
                f".cast({pyedit.py_string(self.old_type)}))")

    def describe(self) -> str:
        return f"{self.input}.{self.now} {self.old_type} -> {self.new_type}"


def cast_back(input_name: str, column: str, now: str, old_type: str, new_type: str, probe=None,
              profile_col: dict | None = None, profile_rows: int | None = None) -> CastBack:
    """Cast back when the values fit: a probe over the current rows decides; without one the
    profile's range may (integers and decimals only: an ANSI CAST of a value outside it fails
    the run rather than changing it silently)."""
    base = dict(input=input_name, column=column, now=now, old_type=old_type, new_type=new_type)
    if probe is not None:
        seen = f" (range {probe.min}..{probe.max})" if probe.min is not None else ""
        if probe.fits:
            return CastBack(**base, cast=True, why=f"all {probe.non_null} non-NULL values of {now} in the "
                                                   f"{probe.rows} rows scanned fit {old_type}{seen}")
        return CastBack(**base, cast=False, why=f"{probe.misfits} of {probe.non_null} values of {now} do not fit "
                                                f"{old_type}{seen}",
                        doubt=f"{input_name}.{now} widened {old_type} -> {new_type} and {probe.misfits} of its "
                              f"{probe.non_null} values do not fit {old_type}: the output keeps {new_type} where it "
                              f"comes from {column}; its consumers must accept the wider type")
    low, high = (profile_col or {}).get("min"), (profile_col or {}).get("max")
    if _fits_range(old_type, low, high) and not _finer(old_type, new_type):
        return CastBack(**base, cast=True, why=f"the profiled values of {now} ({low}..{high}) fit {old_type}",
                        doubt=f"{input_name}.{now} was checked against {old_type} on a profile"
                              + (f" of {profile_rows} rows" if profile_rows else "")
                              + f", not every row: a value outside {old_type} would fail the run, not pass changed")
    return CastBack(**base, cast=False, why=f"whether the values of {now} fit {old_type} is not known",
                    doubt=f"{input_name}.{now} widened {old_type} -> {new_type} and whether its values fit "
                          f"{old_type} could not be checked: the output keeps {new_type} where it comes from "
                          f"{column}; its consumers must accept the wider type")


def _finer(old_type: str, new_type: str) -> bool:
    """A decimal that gained fraction digits: a range cannot tell whether casting back rounds."""
    def scale(t):
        return int(t[:-1].split(",")[1]) if t.startswith("decimal(") and "," in t else 0
    return scale(new_type) > scale(old_type)


def widened_backs(evidence, input_name: str, pairs: dict[str, tuple[str, str, str]], probes=None,
                  profile: dict | None = None) -> list[CastBack]:
    """What to do with each widened column ``{name now: (name the job reads, old type, new type)}``
    of one input: ``probes`` (WidenProbes) decide, else the ``profile`` of the input now."""
    from healer.fixers.rules._common import job_mentions

    found = {(p.column.lower()): p for p in probes or []}
    if probes is None and evidence.probes is not None:
        found = {p.column.lower(): p for p in evidence.probes.widenings if p.input.lower() == input_name.lower()}
    if profile is None:
        profile = next((v for k, v in (evidence.current_profiles or {}).items() if k.lower() == input_name.lower()), None)
    columns = {k.lower(): v for k, v in ((profile or {}).get("columns") or {}).items()}
    out = []
    for now, (column, old_type, new_type) in sorted(pairs.items()):
        if not job_mentions(evidence, input_name, column) and not job_mentions(evidence, input_name, now):
            continue  # a column the job never reads may be as wide as it likes
        out.append(cast_back(input_name, column, now, old_type, new_type, found.get(now.lower()),
                             columns.get(now.lower()), (profile or {}).get("sampled_rows") or (profile or {}).get("row_count")))
    return out


def _fits_range(old_type: str, low, high) -> bool:
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return False
    if old_type in INTEGRAL_RANGE:
        bound = INTEGRAL_RANGE[old_type]
        return -bound <= low and high < bound
    if old_type.startswith("decimal(") and old_type.endswith(")"):
        precision, scale = (int(x) for x in old_type[len("decimal("):-1].split(","))
        return max(abs(low), abs(high)) < 10 ** (precision - scale)
    return False  # FLOAT: a profile's range cannot tell lost precision


def cast_back_refs(source: str, input_name: str, backs: list[CastBack], input_columns: dict) -> list:
    """(ref, CastBack) for every SQL reference to a cast-back column that keeps its name."""
    out = []
    for b in backs:
        if b.cast and b.column.lower() == b.now.lower():
            out += [(ref, b) for ref in sqledit.column_refs(source, input_name, b.column, input_columns)]
    return out


def widen_summary(backs: list[CastBack]) -> str:
    """A sentence for a rationale: which widened columns are cast back, which keep their type."""
    cast = [b for b in backs if b.cast]
    kept = [b for b in backs if not b.cast]
    parts = []
    if cast:
        parts.append("Widened in the same release, " + "; ".join(f"{b.describe()} is cast back to {b.old_type} ({b.why})"
                                                               for b in cast) + ", so the output keeps its types.")
    if kept:
        parts.append("; ".join(f"{b.describe()} keeps the wider type ({b.why})" for b in kept) + ".")
    return " ".join(parts)
