"""Schemas and data profiles: what the healer compares between a good run and a failure."""

from __future__ import annotations

from typing import Any

from healer.ledger import jsonable
from healer.redact import is_secret_name, redact

_ORDERABLE = ("byte", "short", "integer", "long", "float", "double", "decimal", "string", "date", "timestamp", "boolean")
_NUMERIC = ("byte", "short", "integer", "long", "float", "double", "decimal")


def schema_json(df) -> dict:
    """The DataFrame's schema as Spark's own JSON (field names, types, nullability)."""
    return df.schema.jsonValue()


def schema_columns(schema: dict) -> dict[str, str]:
    """Column name -> simple type string (``bigint``, ``date``, ``struct<...>``) from schema JSON."""
    from pyspark.sql.types import StructType

    return {f.name: f.dataType.simpleString() for f in StructType.fromJson(schema).fields}


def profile(df, row_limit: int | None = None) -> dict[str, Any]:
    """Row count and per column: null fraction, approximate distinct count, min/max, numeric sum.

    One aggregation pass. ``row_limit`` profiles only the first rows (for large inputs).
    """
    from pyspark.sql import functions as F

    if row_limit is not None:
        df = df.limit(row_limit)
    aggs = [F.count(F.lit(1)).alias("__rows")]
    kinds = {}
    for i, field in enumerate(df.schema.fields):
        kind = field.dataType.typeName()
        kinds[field.name] = kind
        col = F.col(f"`{field.name}`")
        aggs.append(F.sum(F.when(col.isNull(), 1).otherwise(0)).alias(f"n{i}"))
        if kind in _ORDERABLE:
            aggs.append(F.approx_count_distinct(col).alias(f"d{i}"))
            aggs.append(F.min(col).alias(f"lo{i}"))
            aggs.append(F.max(col).alias(f"hi{i}"))
        if kind in _NUMERIC:
            aggs.append(F.sum(col.cast("double")).alias(f"s{i}"))
    row = df.agg(*aggs).first().asDict()
    rows = row["__rows"] or 0
    columns = {}
    for i, field in enumerate(df.schema.fields):
        nulls = row.get(f"n{i}") or 0
        col = {"type": field.dataType.simpleString(), "null_fraction": (nulls / rows) if rows else 0.0}
        if f"d{i}" in row:
            col.update(distinct=row[f"d{i}"], min=jsonable(row[f"lo{i}"]), max=jsonable(row[f"hi{i}"]))
        if f"s{i}" in row:
            col["sum"] = jsonable(row[f"s{i}"])
        columns[field.name] = _without_secrets(field.name, col)
    return {"row_count": rows, "columns": columns, **({"sampled_rows": row_limit} if row_limit else {})}


def _without_secrets(name: str, col: dict) -> dict:
    """A column profile fit to store and quote: profiles go to the ledger and into PR bodies.

    A column named like a secret (password, api_token) keeps its counts, never its values; a
    text min/max is redacted (a DSN with its password, a key). Every profile is made the same
    way, so the last good run's and today's still compare alike; rename scoring and the rules
    treat a missing range as unknown.
    """
    if is_secret_name(name):
        return {k: v for k, v in col.items() if k not in ("min", "max", "sum")}
    for key in ("min", "max"):
        if isinstance(col.get(key), str):
            col[key] = redact(col[key])
    return col
