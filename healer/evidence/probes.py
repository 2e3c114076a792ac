"""Value probes: how many current rows a repair would touch.

A fixer that makes a job tolerate new values — ``TRY_CAST`` for values that no longer
cast, ``NULLIF`` for new zero divisors, a JSON field read at its new path — must say how
many rows that changes. The job's syntax tree says what to probe (``jobscan``); one
aggregation pass per input, over at most ``scan_rows`` current rows, counts it, with a few
example values (untrusted: they are data). Exact duplicate rows (a replayed batch) are
counted on every input the job reads, only when a uniqueness expectation failed: it takes
a shuffle. NULLs of the input columns behind a failed not-NULL expectation are counted over
every scanned row (a profile reads the first rows only, and newly onboarded rows arrive at
the end); columns whose type widened (INT -> BIGINT, ...) are checked for values that no
longer fit the old type, so a fix can cast them back.
"""

from __future__ import annotations

import logging
import json
from dataclasses import dataclass, field

from healer.evidence import jobscan
from healer.redact import mask_if_secret

log = logging.getLogger(__name__)

# what each failure category needs probed: casts that may reject values, divisors that may
# be zero, JSON paths that may have moved (an expectation on NULLs is how that shows), rows
# repeated whole (a uniqueness expectation is how a replayed batch shows)
WANTED = {"type_cast": {"casts"}, "unknown": {"casts", "zeros"}, "divide_by_zero": {"zeros"},
          "expectation": {"json", "duplicates", "nulls"}}
CATEGORIES = set(WANTED)
UNIQUENESS = {"column_values_unique", "compound_columns_unique"}  # what whole-row duplicates break
NOT_NULL = {"column_values_not_null"}  # what NULL input values behind an output break

# integral types by width; a column moving right along this list is widened, never narrowed
INTEGRAL = ("tinyint", "smallint", "int", "bigint")


def wanted_kinds(failure) -> set[str]:
    """The probe kinds worth their cost for this failure (``WANTED``, with the duplicates
    count only when a uniqueness expectation failed, NULL counts only when a not-NULL one did)."""
    kinds = set(WANTED.get(failure.category, set()))
    failed = {e.kind for e in failure.failed_expectations or []}
    if not failed & UNIQUENESS:
        kinds.discard("duplicates")
    if not failed & NOT_NULL:
        kinds.discard("nulls")
    return kinds


def widened_columns(diffs) -> dict[str, dict[str, tuple[str, str]]]:
    """input -> {column as it is now: (old type, new type)} for the widened columns of a schema
    diff: retyped in place, or renamed and retyped in one go."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for d in diffs:
        found = {c: t for c, t in d.retyped.items() if widens(*t)}
        for r in d.renames:
            old, new = d.dropped.get(r.old), d.added.get(r.new)
            if old and new and widens(old, new):
                found[r.new] = (old, new)
        if found:
            out[d.input] = found
    return out


def _decimal(typ: str) -> tuple[int, int] | None:
    if not typ.startswith("decimal(") or not typ.endswith(")"):
        return None
    try:
        precision, scale = (int(x) for x in typ[len("decimal("):-1].split(","))
    except ValueError:
        return None
    return precision, scale


def widens(old: str, new: str) -> bool:
    """Whether ``new`` holds every value of ``old`` exactly: INT -> BIGINT, FLOAT -> DOUBLE,
    DECIMAL(p,s) -> DECIMAL(p',s') with no fewer integer or fraction digits."""
    old, new = old.lower(), new.lower()
    if old == new:
        return False
    if old in INTEGRAL and new in INTEGRAL:
        return INTEGRAL.index(new) > INTEGRAL.index(old)
    if old == "float" and new == "double":
        return True
    a, b = _decimal(old), _decimal(new)
    if a and b:
        return b[1] >= a[1] and b[0] - b[1] >= a[0] - a[1]
    if old in INTEGRAL and b:  # INT -> DECIMAL(12,2): 10 integer digits hold any INT
        return b[0] - b[1] >= {"tinyint": 3, "smallint": 5, "int": 10, "bigint": 19}[old]
    return False


@dataclass(frozen=True)
class CastProbe:
    """``CAST(<operand> AS <type>)`` on one input's current rows."""

    input: str
    operand: str
    type: str
    rows: int  # rows scanned
    non_null: int  # rows where the operand is not NULL
    failing: int  # of those, rows whose value does not cast (TRY_CAST gives NULL)
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ZeroProbe:
    input: str
    column: str
    rows: int
    zeros: int


@dataclass(frozen=True)
class JsonProbe:
    """Which JSON paths the documents of a string column hold now."""

    input: str
    column: str
    docs: int  # documents parsed
    paths: dict = field(default_factory=dict)  # '$.a.b' -> documents holding a value there


@dataclass(frozen=True)
class DuplicateProbe:
    """Whole-row duplicates of one input: rows scanned versus distinct rows among them."""

    input: str
    rows: int  # rows scanned
    distinct: int  # distinct rows (every column compared)

    @property
    def duplicates(self) -> int:
        """Surplus copies: the rows a ``SELECT DISTINCT`` removes."""
        return self.rows - self.distinct


@dataclass(frozen=True)
class WidenProbe:
    """A column whose type widened (INT -> BIGINT, ...): do its current values still fit the old type?"""

    input: str
    column: str
    old_type: str
    new_type: str
    rows: int  # rows scanned
    non_null: int
    misfits: int  # non-NULL values that do not survive CAST to the old type and back unchanged
    min: object = None  # the range seen, for the reviewer
    max: object = None

    @property
    def fits(self) -> bool:
        return self.misfits == 0


@dataclass(frozen=True)
class NullProbe:
    """NULLs in an input column an output that must not be NULL comes from, over every scanned row
    (a profile reads only the first rows; newly onboarded rows arrive at the end)."""

    input: str
    column: str
    rows: int
    nulls: int

    @property
    def fraction(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


@dataclass
class Probes:
    casts: list[CastProbe] = field(default_factory=list)
    zeros: list[ZeroProbe] = field(default_factory=list)
    json: list[JsonProbe] = field(default_factory=list)
    duplicates: list[DuplicateProbe] = field(default_factory=list)
    widenings: list[WidenProbe] = field(default_factory=list)
    nulls: list[NullProbe] = field(default_factory=list)

    def widening(self, input_name: str | None, column: str) -> WidenProbe | None:
        return next((p for p in self.widenings if (input_name is None or p.input.lower() == input_name.lower())
                     and p.column.lower() == column.lower()), None)

    def null(self, input_name: str | None, column: str) -> NullProbe | None:
        return next((p for p in self.nulls if (input_name is None or p.input.lower() == input_name.lower())
                     and p.column.lower() == column.lower()), None)

    def cast(self, input_name: str | None, operand: str, type_: str) -> CastProbe | None:
        return next((p for p in self.casts if (input_name is None or p.input == input_name)
                     and p.operand == operand and p.type == type_), None)

    def zero(self, input_name: str | None, column: str) -> ZeroProbe | None:
        return next((p for p in self.zeros if (input_name is None or p.input == input_name)
                     and p.column.lower() == column.lower()), None)

    def json_paths(self, input_name: str | None, column: str) -> JsonProbe | None:
        return next((p for p in self.json if (input_name is None or p.input == input_name)
                     and p.column.lower() == column.lower()), None)

    def duplicate(self, input_name: str) -> DuplicateProbe | None:
        return next((p for p in self.duplicates if p.input == input_name), None)


def plan(source: str, kind: str, input_columns: dict[str, set[str]]) -> dict[str, dict]:
    """input -> {"casts": {(operand, type)}, "zeros": {column}, "json": {column}} to probe."""
    wanted: dict[str, dict] = {}

    def slot(name):
        return wanted.setdefault(name, {"casts": set(), "zeros": set(), "json": set()})

    def owners(column):
        return [n for n, cols in input_columns.items() if column.lower() in cols]

    if kind == "sql":
        for c in jobscan.sql_casts(source, input_columns):
            if c.input:
                slot(c.input)["casts"].add((c.operand, c.type))
        for d in jobscan.sql_divisors(source, input_columns):
            for input_name, column in d.columns:
                for owner in [input_name] if input_name else owners(column):
                    slot(owner)["zeros"].add(column)
        for j in jobscan.sql_json_paths(source, input_columns):
            for owner in [j.input] if j.input else owners(j.column):
                slot(owner)["json"].add(j.column)
    else:
        known = {c for cols in input_columns.values() for c in cols}
        for _node, column, typ in jobscan.py_casts(source):
            for owner in owners(column):
                slot(owner)["casts"].add((f"`{column}`", typ))
        for _node, columns in jobscan.py_divisors(source, known):
            for column in columns:
                for owner in owners(column):
                    slot(owner)["zeros"].add(column)
        for _node, column, _path in jobscan.py_json_paths(source):
            for owner in owners(column):
                slot(owner)["json"].add(column)
    return wanted


def probe(spark, frames: dict, source: str, kind: str, input_columns: dict[str, set[str]],
          scan_rows: int = 1_000_000, json_docs: int = 500, kinds: set[str] | None = None,
          widened: dict[str, dict[str, tuple[str, str]]] | None = None,
          null_columns: dict[str, set[str]] | None = None) -> Probes:
    """Run the probes the job calls for on the current inputs (``frames``: input -> DataFrame);
    ``kinds`` limits them to some of "casts", "zeros", "json", "duplicates", "nulls".

    ``widened`` (input -> {column: (old type, new type)}) are checked for values that no longer
    fit the old type; ``null_columns`` (input -> columns) get their NULLs counted ("nulls")."""
    from pyspark.sql import functions as F

    out = Probes()
    for input_name, columns in sorted((widened or {}).items()):
        if frames.get(input_name) is not None:
            out.widenings += widen_probe(input_name, frames[input_name], columns, scan_rows)
    if kinds is None or "nulls" in kinds:
        for input_name, columns in sorted((null_columns or {}).items()):
            if frames.get(input_name) is not None:
                out.nulls += null_probe(input_name, frames[input_name], columns, scan_rows)
    if kinds is None or "duplicates" in kinds:
        for input_name in sorted(frames):
            found = duplicate_probe(input_name, frames[input_name], scan_rows)
            if found is not None:
                out.duplicates.append(found)
    for input_name, wanted in plan(source, kind, input_columns).items():
        wanted = {k: (v if kinds is None or k in kinds else set()) for k, v in wanted.items()}
        if not any(wanted.values()):
            continue
        df = frames.get(input_name)
        if df is None:
            continue
        df = df.limit(scan_rows)
        present = {c.lower() for c in df.columns}
        aggs = [F.count(F.lit(1)).alias("rows")]
        casts = sorted(wanted["casts"])
        zeros = sorted(c for c in wanted["zeros"] if c.lower() in present)
        for i, (operand, typ) in enumerate(casts):
            op = f"({operand})"
            aggs.append(F.expr(f"SUM(CASE WHEN {op} IS NOT NULL THEN 1 ELSE 0 END)").alias(f"n{i}"))
            aggs.append(F.expr(f"SUM(CASE WHEN {op} IS NOT NULL AND TRY_CAST({op} AS {typ}) IS NULL "
                               "THEN 1 ELSE 0 END)").alias(f"f{i}"))
        for i, column in enumerate(zeros):
            aggs.append(F.expr(f"SUM(CASE WHEN `{column}` = 0 THEN 1 ELSE 0 END)").alias(f"z{i}"))
        try:
            row = df.agg(*aggs).first().asDict()
        except Exception:  # an operand that no longer resolves: nothing to count
            log.info("probe of %s not counted", input_name, exc_info=True)
            row = None
        if row is not None:
            rows = row["rows"] or 0
            for i, (operand, typ) in enumerate(casts):
                failing = row.get(f"f{i}") or 0
                examples = ()
                if failing:
                    op = f"({operand})"
                    bad = df.where(F.expr(f"{op} IS NOT NULL AND TRY_CAST({op} AS {typ}) IS NULL"))
                    found = [str(r[0])[:60] for r in bad.select(F.expr(op)).distinct().limit(5).collect()]
                    examples = tuple(mask_if_secret(operand, found))  # CAST(password AS INT): values never quoted
                out.casts.append(CastProbe(input_name, operand, typ, rows, row.get(f"n{i}") or 0, failing, examples))
            for i, column in enumerate(zeros):
                out.zeros.append(ZeroProbe(input_name, column, rows, row.get(f"z{i}") or 0))
        for column in sorted(wanted["json"]):
            if column.lower() not in present:
                continue
            docs = [r[0] for r in df.where(F.col(f"`{column}`").isNotNull()).select(f"`{column}`").limit(json_docs).collect()]
            out.json.append(json_probe(input_name, column, docs))
    return out


def widen_probe(input_name: str, df, columns: dict[str, tuple[str, str]],
                scan_rows: int = 1_000_000) -> list[WidenProbe]:
    """For widened columns (``{column: (old type, new type)}``), in one pass: how many values
    would not come back unchanged from a CAST to the old type. Empty when it cannot be counted."""
    from pyspark.sql import functions as F

    present = {c.lower(): c for c in df.columns}
    cols = [(present[c.lower()], old, new) for c, (old, new) in sorted(columns.items()) if c.lower() in present]
    if not cols:
        return []
    df = df.limit(scan_rows)
    aggs = [F.count(F.lit(1)).alias("rows")]
    for i, (column, old, new) in enumerate(cols):
        ref = f"`{column.replace('`', '``')}`"
        back = f"CAST(TRY_CAST({ref} AS {old}) AS {new})"
        aggs += [F.expr(f"COUNT({ref})").alias(f"n{i}"),
                 F.expr(f"SUM(CASE WHEN {ref} IS NOT NULL AND ({back} IS NULL OR {back} <> {ref}) THEN 1 ELSE 0 END)")
                 .alias(f"m{i}"), F.expr(f"MIN({ref})").alias(f"lo{i}"), F.expr(f"MAX({ref})").alias(f"hi{i}")]
    try:
        row = df.agg(*aggs).first().asDict()
    except Exception:  # a type Spark will not cast: no evidence, not a crash
        log.info("widen probe of %s not counted", input_name, exc_info=True)
        return []
    rows = int(row["rows"] or 0)
    return [WidenProbe(input_name, column, old, new, rows, int(row[f"n{i}"] or 0), int(row[f"m{i}"] or 0),
                       _plain(row[f"lo{i}"]), _plain(row[f"hi{i}"])) for i, (column, old, new) in enumerate(cols)]


def null_probe(input_name: str, df, columns: set[str], scan_rows: int = 1_000_000) -> list[NullProbe]:
    """NULL counts of some columns over the first ``scan_rows`` rows, in one pass."""
    from pyspark.sql import functions as F

    present = {c.lower(): c for c in df.columns}
    cols = sorted(present[c.lower()] for c in columns if c.lower() in present)
    if not cols:
        return []
    df = df.limit(scan_rows)
    aggs = [F.count(F.lit(1)).alias("rows")] + [
        F.sum(F.when(F.col(f"`{c}`").isNull(), 1).otherwise(0)).alias(f"n{i}") for i, c in enumerate(cols)]
    try:
        row = df.agg(*aggs).first().asDict()
    except Exception:  # no null counts: the null-surge rule declines without them
        log.info("null probe of %s not counted", input_name, exc_info=True)
        return []
    return [NullProbe(input_name, c, int(row["rows"] or 0), int(row[f"n{i}"] or 0)) for i, c in enumerate(cols)]


def _plain(value):
    """A probe's min/max as JSON-friendly data (decimals as floats)."""
    from decimal import Decimal

    return float(value) if isinstance(value, Decimal) else value


def duplicate_probe(input_name: str, df, scan_rows: int = 1_000_000) -> DuplicateProbe | None:
    """Rows and distinct rows among the first ``scan_rows`` rows of an input, in one job.

    None when the rows cannot be compared (a column type Spark cannot group by): no
    evidence, not a crash.
    """
    from pyspark.sql import functions as F

    try:
        df = df.limit(scan_rows)
        groups = df.groupBy(*[F.col(f"`{c}`") for c in df.columns]).agg(F.count(F.lit(1)).alias("__copies"))
        row = groups.agg(F.sum("__copies").alias("rows"), F.count(F.lit(1)).alias("distinct")).first()
    except Exception:  # no duplicate count: the duplicate rule declines without it
        log.info("duplicate probe of %s not counted", input_name, exc_info=True)
        return None
    return DuplicateProbe(input_name, int(row["rows"] or 0), int(row["distinct"] or 0))


def json_probe(input_name: str, column: str, docs: list) -> JsonProbe:
    """Count the leaf paths of JSON documents (strings that do not parse are skipped)."""
    paths: dict[str, int] = {}
    parsed = 0
    for doc in docs:
        try:
            value = json.loads(doc) if isinstance(doc, str) else doc
        except (TypeError, ValueError):
            continue
        parsed += 1
        for path in set(_leaf_paths(value, "$")):
            paths[path] = paths.get(path, 0) + 1
    return JsonProbe(input_name, column, parsed, paths)


def _leaf_paths(value, prefix: str):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaf_paths(inner, f"{prefix}.{key}")
    elif not isinstance(value, list):
        yield prefix
