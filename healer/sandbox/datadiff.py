"""The data diff: a candidate's full-data output against the last good output.

Reviewers trust a change when they see how its output differs from production (Datafold's
PR diff, SQLMesh's table diff). Keyed when the output has a key — rows are matched on it,
and each column of matched rows is compared — else a multiset diff of whole rows. Numbers
compare within a relative tolerance, so a float summed in another order is not a change.
Everything here is figures; example keys are redacted before they leave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from healer.redact import is_secret_name, redact

_NUMERIC = ("byte", "short", "integer", "long", "float", "double", "decimal")
REL_TOLERANCE = 1e-9
EXAMPLES = 3
UNIFORM_MIN_ROWS = 5  # new rows needed before "they all hold one value" means anything
UNIFORM_MIN_VARIETY = 20  # distinct values the last good output had in that column


@dataclass(frozen=True)
class ColumnChange:
    """One column's differences over the matched rows."""

    column: str
    rows: int
    max_abs: float | None = None  # numeric columns only
    max_rel: float | None = None
    median_rel: float | None = None  # signed: (after - before) / |before|, over the changed rows
    examples: tuple[str, ...] = ()  # keys of changed rows, redacted


@dataclass(frozen=True)
class UniformColumn:
    """A column with one value on every new row (``rows``), where the last good output had ``variety``."""

    column: str
    value: str  # redacted
    rows: int
    variety: int


@dataclass(frozen=True)
class NumericStats:
    """count, mean, p50, p95 of one numeric column before (last good) and after (the fix)."""

    column: str
    before: tuple[float | None, ...]
    after: tuple[float | None, ...]


@dataclass(frozen=True)
class DataDiff:
    key: tuple[str, ...]  # empty: a multiset diff of whole rows
    rows_before: int
    rows_after: int
    identical: int
    changed: int  # matched rows with a difference (keyed diffs only)
    only_before: int
    only_after: int
    columns: tuple[ColumnChange, ...] = ()
    numeric: tuple[NumericStats, ...] = ()
    columns_only_before: tuple[str, ...] = ()
    columns_only_after: tuple[str, ...] = ()
    all_null_after: tuple[str, ...] = ()  # columns with values before and none after
    uniform_new: tuple[UniformColumn, ...] = ()  # new rows all alike in a column that used to vary
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_identical(self) -> bool:
        return (self.identical == self.rows_before == self.rows_after and not self.columns_only_before
                and not self.columns_only_after)

    def summary(self) -> str:
        """One line: '96 of 96 rows identical to the last good output' and what differs."""
        head = f"{self.identical:,} of {self.rows_after:,} rows identical to the last good output"
        parts = []
        if self.changed:
            parts.append(f"{self.changed:,} changed")
        if self.only_before:
            parts.append(f"{self.only_before:,} only in the last good output")
        if self.only_after:
            parts.append(f"{self.only_after:,} only in the fix")
        if self.columns_only_before or self.columns_only_after:
            parts.append("columns differ")
        return head + (f" ({', '.join(parts)})" if parts else "")

    def headline(self) -> str | None:
        """The single most telling figure when the output is not identical, for a draft's first line."""
        if self.uniform_new:
            u = self.uniform_new[0]
            return (f"{u.column} is {u.value} on all {u.rows:,} new rows, where the last good output had "
                    f"{u.variety:,} different values")
        worst = max(self.columns, key=lambda c: c.rows, default=None)
        if worst is not None:
            median = "" if worst.median_rel is None else f", median {worst.median_rel:+.2%}" \
                if abs(worst.median_rel) < 0.01 else f", median {worst.median_rel:+.0%}"
            return f"{worst.column} differs on {worst.rows:,} of {self.rows_after:,} rows{median}"
        if self.only_before or self.only_after:
            return (f"{self.only_before:,} rows of the last good output are missing and {self.only_after:,} "
                    f"rows are new ({self.rows_before:,} → {self.rows_after:,} rows)")
        if self.columns_only_before or self.columns_only_after:
            return "the output's columns differ from the last good output's"
        return None


def diff(before, after, key: list[str] | tuple[str, ...] | None = None) -> DataDiff:
    """The diff of two DataFrames (``before``: the last good output; ``after``: the fix's).

    Few Spark jobs, whatever the width: one aggregation per side (rows, distinct keys, non-NULL
    counts, numeric statistics), then one over the keyed join (or the two multiset differences).
    """
    b_cols = {c.lower(): c for c in before.columns}
    a_cols = {c.lower(): c for c in after.columns}
    common = [c for c in b_cols if c in a_cols]
    only_b = tuple(b_cols[c] for c in b_cols if c not in a_cols)
    only_a = tuple(a_cols[c] for c in a_cols if c not in b_cols)
    b = before.select(*[before[b_cols[c]].alias(c) for c in common])
    a = after.select(*[after[a_cols[c]].alias(c) for c in common])
    types = {c: t for c, t in b.dtypes}
    numeric = [c for c in common if types[c].split("(")[0] in _NUMERIC]
    key = tuple(k.lower() for k in (key or ()) if k.lower() in common)
    sb, sa = _side_stats(b, common, numeric, key), _side_stats(a, common, numeric, key)
    rows_b, rows_a = sb["__rows"], sa["__rows"]
    notes = []
    if key and not (sb["__keys"] == rows_b and sa["__keys"] == rows_a):
        notes.append(f"the key ({', '.join(key)}) is not unique (or NULL) in an output: compared as whole rows")
        key = ()
    if key:
        counts, changes = _keyed(b, a, key, [c for c in common if c not in key], numeric)
    else:
        counts, changes = {**_multiset(b, a, numeric, rows_b, rows_a), "uniform_new": ()}, ()
    all_null = tuple(c for i, c in enumerate(common) if (sb[f"nn{i}"] or 0) > 0 and (sa[f"nn{i}"] or 0) == 0)
    return DataDiff(key=key, rows_before=rows_b, rows_after=rows_a, columns=changes,
                    numeric=_numeric_stats(sb, sa, numeric), columns_only_before=only_b, columns_only_after=only_a,
                    all_null_after=all_null, notes=tuple(notes), **counts)


def _side_stats(df, common: list[str], numeric: list[str], key: tuple[str, ...]) -> dict:
    """One pass over one side: rows, distinct keys, non-NULL counts, count/mean/p50/p95 of numbers."""
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("__rows"),
            (F.countDistinct(*[F.col(k) for k in key]) if key else F.lit(0)).alias("__keys")]
    aggs += [F.count(F.col(c)).alias(f"nn{i}") for i, c in enumerate(common)]
    for i, c in enumerate(numeric):
        x = F.col(c).cast("double")
        aggs += [F.avg(x).alias(f"m{i}"), F.percentile_approx(x, [0.5, 0.95], 1000).alias(f"p{i}")]
    stats = df.agg(*aggs).first().asDict()
    for i, c in enumerate(numeric):
        stats[f"c{i}"] = stats[f"nn{common.index(c)}"]
    return stats


def _differs(c: str, numeric: bool):
    """A column expression: True where before (``b_c``) and after (``a_c``) differ."""
    from pyspark.sql import functions as F

    b, a = F.col(f"b_{c}"), F.col(f"a_{c}")
    if not numeric:
        return ~b.eqNullSafe(a)
    close = F.abs(b.cast("double") - a.cast("double")) <= F.greatest(F.abs(b.cast("double")), F.lit(1.0)) * REL_TOLERANCE
    return F.when(b.isNull() & a.isNull(), False).when(b.isNull() | a.isNull(), True).otherwise(~close)


def _keyed(b, a, key, values: list[str], numeric: list[str]):
    from pyspark.sql import functions as F

    left = b.select(*[F.col(c).alias(f"b_{c}") for c in b.columns]).withColumn("__b", F.lit(True))
    right = a.select(*[F.col(c).alias(f"a_{c}") for c in a.columns]).withColumn("__a", F.lit(True))
    cond = [F.col(f"b_{k}").eqNullSafe(F.col(f"a_{k}")) for k in key]
    joined = left.join(right, cond, "full_outer")
    matched = F.col("__b").isNotNull() & F.col("__a").isNotNull()
    flags = {c: F.when(matched, _differs(c, c in numeric)).otherwise(False) for c in values}
    any_change = F.lit(False)
    for flag in flags.values():
        any_change = any_change | flag
    aggs = [F.sum(F.when(F.col("__a").isNull(), 1).otherwise(0)).alias("only_before"),
            F.sum(F.when(F.col("__b").isNull(), 1).otherwise(0)).alias("only_after"),
            F.sum(F.when(matched & any_change, 1).otherwise(0)).alias("changed"),
            F.sum(F.when(matched & ~any_change, 1).otherwise(0)).alias("identical")]
    new = F.col("__b").isNull()
    for i, c in enumerate(values):  # what new rows hold: one value everywhere can be a constant hiding a gap
        aggs += [F.countDistinct(F.when(new, F.col(f"a_{c}"))).alias(f"dn{i}"),
                 F.count(F.when(new, F.col(f"a_{c}"))).alias(f"cn{i}"),
                 F.countDistinct(F.col(f"b_{c}")).alias(f"db{i}"),
                 F.first(F.when(new, F.col(f"a_{c}")), ignorenulls=True).alias(f"vn{i}")]
    for i, (c, flag) in enumerate(flags.items()):
        aggs.append(F.sum(F.when(flag, 1).otherwise(0)).alias(f"n{i}"))
        if c in numeric:
            delta = F.col(f"a_{c}").cast("double") - F.col(f"b_{c}").cast("double")
            rel = delta / F.greatest(F.abs(F.col(f"b_{c}").cast("double")), F.lit(1e-12))
            aggs += [F.max(F.when(flag, F.abs(delta))).alias(f"abs{i}"), F.max(F.when(flag, F.abs(rel))).alias(f"rel{i}"),
                     F.percentile_approx(F.when(flag, rel), 0.5).alias(f"med{i}")]
    joined = joined.cache()
    try:
        row = joined.agg(*aggs).first().asDict()
        changes = []
        for i, (c, flag) in enumerate(flags.items()):
            n = int(row.get(f"n{i}") or 0)
            if not n:
                continue
            examples = () if is_secret_name(c) else tuple(
                redact(", ".join(f"{k}={'[REDACTED:SECRET_COLUMN]' if is_secret_name(k) else r[f'b_{k}']}"
                                 for k in key))[:120]
                for r in joined.where(flag).select(*[f"b_{k}" for k in key]).limit(EXAMPLES).collect())
            changes.append(ColumnChange(c, n, _float(row.get(f"abs{i}")), _float(row.get(f"rel{i}")),
                                        _float(row.get(f"med{i}")), examples))
    finally:
        joined.unpersist()
    counts = {k: int(row[k] or 0) for k in ("only_before", "only_after", "changed", "identical")}
    counts["uniform_new"] = _uniform_new(row, values, counts["only_after"])
    return counts, tuple(sorted(changes, key=lambda ch: -ch.rows))


def _uniform_new(row: dict, values: list[str], new_rows: int) -> tuple["UniformColumn", ...]:
    """Columns that hold one single value on every new row, though the last good output varied widely."""
    if new_rows < UNIFORM_MIN_ROWS:
        return ()
    found = []
    for i, c in enumerate(values):
        if row.get(f"dn{i}") == 1 and row.get(f"cn{i}") == new_rows and (row.get(f"db{i}") or 0) >= UNIFORM_MIN_VARIETY:
            value = "[REDACTED:SECRET_COLUMN]" if is_secret_name(c) else redact(str(row.get(f"vn{i}")))[:60]
            found.append(UniformColumn(c, value, new_rows, int(row[f"db{i}"])))
    return tuple(found)


def _multiset(b, a, numeric: list[str], rows_b: int, rows_a: int) -> dict:
    """Whole rows compared as multisets; numbers rounded to 9 significant digits first."""
    from pyspark.sql import functions as F

    def rounded(df):
        return df.select(*[_round_sig(F.col(c)).alias(c) if c in numeric else F.col(c) for c in df.columns])

    rb, ra = rounded(b), rounded(a)
    only_before = rb.exceptAll(ra).count()
    only_after = ra.exceptAll(rb).count()
    return {"only_before": only_before, "only_after": only_after, "changed": 0, "identical": rows_b - only_before}


def _round_sig(col):
    from pyspark.sql import functions as F

    x = col.cast("double")
    digits = F.lit(8) - F.floor(F.log10(F.abs(x)))
    return F.when((x == 0) | x.isNull(), x).otherwise(F.round(x * F.pow(F.lit(10.0), digits)) / F.pow(F.lit(10.0), digits))


def _numeric_stats(sb: dict, sa: dict, numeric: list[str]) -> tuple[NumericStats, ...]:
    def four(stats, i):
        p = stats.get(f"p{i}") or [None, None]
        return (_float(stats.get(f"c{i}")), _float(stats.get(f"m{i}")), _float(p[0]), _float(p[1]))

    return tuple(NumericStats(c, four(sb, i), four(sa, i)) for i, c in enumerate(numeric) if not is_secret_name(c))


def _float(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def output_key(pipeline, expectations) -> tuple[str, ...]:
    """The output's key: declared in healer.yml (``key:``), else a uniqueness expectation's columns."""
    declared = tuple(getattr(pipeline, "key", ()) or ())
    if declared:
        return declared
    for e in expectations:
        if e.kind == "compound_columns_unique":
            return e.columns
    for e in expectations:
        if e.kind == "column_values_unique":
            return (e.column,)
    return ()
