"""Value probes: how many current rows a repair would touch.

A fixer that makes a job tolerate new values — ``TRY_CAST`` for values that no longer
cast, ``NULLIF`` for new zero divisors, a JSON field read at its new path — must say how
many rows that changes. The job's syntax tree says what to probe (``jobscan``); one
aggregation pass per input, over at most ``scan_rows`` current rows, counts it, with a few
example values (untrusted: they are data). Exact duplicate rows (a replayed batch) are
counted on every input the job reads, only when a uniqueness expectation failed: it takes
a shuffle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from healer.evidence import jobscan
from healer.redact import mask_if_secret

# what each failure category needs probed: casts that may reject values, divisors that may
# be zero, JSON paths that may have moved (an expectation on NULLs is how that shows), rows
# repeated whole (a uniqueness expectation is how a replayed batch shows)
WANTED = {"type_cast": {"casts"}, "unknown": {"casts", "zeros"}, "divide_by_zero": {"zeros"},
          "expectation": {"json", "duplicates"}}
CATEGORIES = set(WANTED)
UNIQUENESS = {"column_values_unique", "compound_columns_unique"}  # what whole-row duplicates break


def wanted_kinds(failure) -> set[str]:
    """The probe kinds worth their cost for this failure (``WANTED``, with the duplicates
    count only when a uniqueness expectation failed)."""
    kinds = set(WANTED.get(failure.category, set()))
    if not any(e.get("kind") in UNIQUENESS for e in failure.failed_expectations or []):
        kinds.discard("duplicates")
    return kinds


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


@dataclass
class Probes:
    casts: list[CastProbe] = field(default_factory=list)
    zeros: list[ZeroProbe] = field(default_factory=list)
    json: list[JsonProbe] = field(default_factory=list)
    duplicates: list[DuplicateProbe] = field(default_factory=list)

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
          scan_rows: int = 1_000_000, json_docs: int = 500, kinds: set[str] | None = None) -> Probes:
    """Run the probes the job calls for on the current inputs (``frames``: input -> DataFrame);
    ``kinds`` limits them to some of "casts", "zeros", "json", "duplicates"."""
    from pyspark.sql import functions as F

    out = Probes()
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
    except Exception:
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
