"""Parquet with nanosecond timestamps (pandas' default), which Spark refuses with PARQUET_TYPE_ILLEGAL.

Spark reads timestamps in microseconds. pandas (through pyarrow) writes ``datetime64[ns]``
columns as INT64 ``TIMESTAMP(NANOS)``, and Spark 4 stops at them. Spark's own way out,
``spark.sql.legacy.parquet.nanosAsLong``, reads them as plain longs; this module reads the
file's schema (pyarrow, local files) to know which longs were nanosecond timestamps, and turns
them back into timestamps (to the microsecond): ``TIMESTAMP`` for instants (``isAdjustedToUTC``),
``TIMESTAMP_NTZ`` for pandas' zone-less ones, as Spark reads microsecond Parquet. Where the
files cannot be inspected (not on a local disk), the error says how to write them instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

from healer.errors import UnreadableInput

log = logging.getLogger(__name__)

HOW_TO_WRITE = ("write microsecond timestamps instead: pandas df.to_parquet(path, coerce_timestamps='us', "
                "allow_truncated_timestamps=True), or pyarrow pq.write_table(table, path, coerce_timestamps='us', "
                "allow_truncated_timestamps=True)")


def is_nanos_error(exc: BaseException) -> bool:
    text = str(exc)
    return "PARQUET_TYPE_ILLEGAL" in text and "TIMESTAMP(NANOS" in text


def nanos_columns(path: str) -> dict[str, bool] | None:
    """Top-level nanosecond timestamp columns of a local Parquet path -> is it an instant (UTC-adjusted)?
    None when the path is not on a local disk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    local = path.removeprefix("file://") if path.startswith("file://") else (None if "://" in path else path)
    if local is None:
        return None
    root = Path(local)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        return None
    schema = pq.read_schema(files[0])
    return {f.name: f.type.tz is not None for f in schema
            if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}


def read_nanos(spark, reader, path: str, where: str):
    """The Parquet at ``path`` with its nanosecond timestamp columns read as timestamps; RunnerError
    naming ``where`` and how to write the files when that cannot be done."""
    from pyspark.sql import functions as F

    columns = nanos_columns(path)
    if not columns:
        raise UnreadableInput(f"{where}: {path} holds nanosecond timestamps (INT64 TIMESTAMP(NANOS)), which Spark "
                          f"cannot read; {HOW_TO_WRITE}")
    key = "spark.sql.legacy.parquet.nanosAsLong"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        frame = reader.load(path)  # the schema is fixed here: those columns are longs of nanoseconds
    finally:
        spark.conf.set(key, before)
    zone = spark.conf.get("spark.sql.session.timeZone")
    for name, instant in columns.items():
        micros = F.timestamp_micros(F.floor(F.col(f"`{name}`") / 1000).cast("long"))
        # a zone-less value is a wall clock: keep it as written, whatever the session's time zone
        value = micros if instant else F.convert_timezone(F.lit(zone), F.lit("UTC"), micros.cast("timestamp_ntz"))
        frame = frame.withColumn(name, value)
    log.info("%s: read nanosecond timestamp columns %s to the microsecond", where, ", ".join(sorted(columns)))
    return frame
