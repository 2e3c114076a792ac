"""pandas-written Parquet with nanosecond timestamps: read to the microsecond, or a one-line error
saying how to write them (real Spark, real pyarrow files)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from healer.errors import UnreadableInput
from healer.manifest import InputSpec
from healer.runner import io, nanos

pytestmark = [pytest.mark.spark]


def test_pandas_nanosecond_timestamps_are_read_to_the_microsecond(spark, tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    frame = pd.DataFrame({
        "id": [1, 2],
        "seen": pd.to_datetime(["2024-01-01 10:00:00.123456789", "2024-02-01 23:59:59.000000001"], format="ISO8601"),
        "paid": pd.to_datetime(["2024-03-01 12:00:00.5", "2024-03-02 00:00:00"], format="ISO8601").tz_localize("Europe/Paris"),
    })
    frame.to_parquet(folder / "part-0.parquet")  # pandas' default: INT64 TIMESTAMP(NANOS)
    assert nanos.nanos_columns(str(folder)) == {"seen": False, "paid": True}
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")  # wall clocks must not move with it
    try:
        df = io.read_input(spark, InputSpec(name="events", path=str(folder)))
        types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        rows = sorted(df.collect())
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)

    assert types == {"id": "bigint", "seen": "timestamp_ntz", "paid": "timestamp"}
    assert rows[0]["seen"] == dt.datetime(2024, 1, 1, 10, 0, 0, 123456)
    assert rows[1]["seen"] == dt.datetime(2024, 2, 1, 23, 59, 59)
    # an instant: 12:00:00.5 in Paris is 11:00:00.5 UTC, whatever zone Python shows it in
    assert rows[0]["paid"].astimezone(dt.timezone.utc) == dt.datetime(2024, 3, 1, 11, 0, 0, 500000,
                                                                      tzinfo=dt.timezone.utc)
    assert spark.conf.get("spark.sql.legacy.parquet.nanosAsLong") == "false"  # the session is left as it was


def test_nanoseconds_out_of_reach_get_a_one_line_error_saying_how_to_write_them(spark):
    with pytest.raises(UnreadableInput) as caught:
        nanos.read_nanos(spark, spark.read.format("parquet"), "s3a://lake/events", "input 'events'")
    message = str(caught.value)
    assert message.startswith("input 'events': s3a://lake/events holds nanosecond timestamps")
    assert "coerce_timestamps='us'" in message and "\n" not in message
