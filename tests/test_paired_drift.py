"""Paired drifts on real Spark (issue 17): widened columns probed for values that still fit,
NULLs counted past the profiled rows, moved inputs found by fingerprint, and the sandbox's
output-schema check on a widened type."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from healer.evidence.locations import fingerprint_match, find_moves, naming_similarity
from healer.evidence.probes import null_probe, widen_probe, widens
from healer.ledger import RunRecord
from healer.manifest import InputSpec, OutputSpec, Pipeline
from healer.runner.profile import schema_json
from healer.sandbox.run import Sandbox

pytestmark = [pytest.mark.spark]


@pytest.mark.parametrize("old, new, wider", [
    ("int", "bigint", True), ("smallint", "int", True), ("bigint", "int", False), ("float", "double", True),
    ("double", "float", False), ("decimal(10,2)", "decimal(18,2)", True), ("decimal(10,2)", "decimal(12,4)", True),
    ("decimal(10,2)", "decimal(18,1)", False), ("decimal(10,2)", "decimal(11,4)", False), ("int", "decimal(12,2)", True),
    ("int", "double", False), ("int", "string", False), ("int", "int", False),
])
def test_what_counts_as_a_widening(old, new, wider):
    assert widens(old, new) is wider


@pytest.mark.parametrize("old, new, at_least", [
    ("tblOrder", "orders", 0.9), ("OrderItem", "fct_order_items", 0.9), ("order_items", "dim_order_item", 0.9),
    ("customers", "customer", 0.9)])
def test_a_new_naming_standard_keeps_the_name(old, new, at_least):
    assert naming_similarity(old, new) >= at_least


@pytest.mark.parametrize("old, new", [("orders", "order_items"), ("payments", "settlements"), ("address", "addres")])
def test_other_names_are_not_the_same_name(old, new):
    assert naming_similarity(old, new) < 0.9


def test_widened_values_that_fit_and_values_that_do_not(spark):
    df = spark.createDataFrame([(1, 1.5, 2.25), (2_147_483_647, 2.0, 0.1), (None, None, 3.0)],
                               "line_no bigint, price double, rate double")
    found = {p.column: p for p in widen_probe("items", df, {"line_no": ("int", "bigint"), "price": ("float", "double"),
                                                            "rate": ("float", "double")})}
    assert found["line_no"].fits and (found["line_no"].non_null, found["line_no"].max) == (2, 2_147_483_647)
    assert found["price"].fits  # 1.5 and 2.0 are exact floats
    assert (found["rate"].misfits, found["rate"].non_null) == (1, 3)  # 0.1 is not a float: casting back loses it
    big = spark.createDataFrame([(1,), (2_147_483_648,)], "line_no bigint")
    assert widen_probe("items", big, {"line_no": ("int", "bigint")})[0].misfits == 1


def test_nulls_are_counted_past_the_rows_a_profile_reads(spark):
    from healer.runner.profile import profile

    rows = [(i, "2024-01-01") for i in range(200)] + [(1000 + i, None) for i in range(7)]
    df = spark.createDataFrame(rows, "order_id bigint, order_day string").coalesce(1)
    assert profile(df, row_limit=200)["columns"]["order_day"]["null_fraction"] == 0.0
    (found,) = null_probe("orders", df, {"ORDER_DAY", "gone"})
    assert (found.column, found.rows, found.nulls) == ("order_day", 207, 7)


def test_fingerprint_match_allows_widening_and_a_few_new_columns():
    old = {"payment_id": "bigint", "amount": "decimal(10,2)", "method": "string"}
    assert fingerprint_match(old, {"payment_id": "bigint", "amount": "decimal(18,2)", "method": "string"}) == {
        "amount": ("decimal(10,2)", "decimal(18,2)")}
    assert fingerprint_match(old, {**old, "currency": "string"}) == {}
    assert fingerprint_match(old, {"payment_id": "bigint", "amount": "double", "method": "string"}) is None
    assert fingerprint_match(old, {"payment_id": "bigint", "method": "string"}) is None
    assert fingerprint_match(old, {**old, **{f"x{i}": "int" for i in range(4)}}) is None  # mostly another table


def test_a_move_under_an_unlike_name_is_found_by_its_columns(spark, tmp_path):
    wh = tmp_path / "wh"
    payments = spark.createDataFrame([(1_000_001 + i, 1 + i, "card", 10.0 + i) for i in range(50)],
                                     "payment_id bigint, order_id bigint, method string, amount double")
    old_schema = schema_json(payments)
    payments.write.parquet(str(wh / "billing" / "settlements"))
    spark.createDataFrame([(1, 2)], "order_id bigint, customer_id bigint").write.parquet(str(wh / "orders"))
    spark.createDataFrame([(1, "x")], "order_id bigint, note string").write.parquet(str(wh / "notes"))
    # a widened copy of the shape: found too, with its widened column probed
    spark.createDataFrame([(7, 8, "card", 1.0)], "payment_id bigint, order_id bigint, method string, amount double") \
        .selectExpr("CAST(payment_id AS bigint) payment_id", "order_id", "method", "amount").write.parquet(
            str(wh / "ledger" / "entries"))
    pipeline = Pipeline(name="lifetime", job="jobs/j.sql", kind="sql", root=tmp_path, expectations=None,
                        inputs={"payments": InputSpec("payments", path=str(wh / "payments")),
                                "orders": InputSpec("orders", path=str(wh / "orders"))},
                        output=OutputSpec(path=str(tmp_path / "out" / "lifetime")))
    moves = find_moves(spark, pipeline, ["payments"], old_schemas={"payments": old_schema})
    found = {Path(c.location).name: c for c in moves.candidates["payments"]}
    assert set(found) == {"settlements", "entries"}  # not orders (another input), not notes (other columns)
    assert found["settlements"].found_by == "fingerprint" and found["settlements"].profile["row_count"] == 50
    assert find_moves(spark, pipeline, ["payments"]).candidates["payments"] == []  # no last good schema: names only


def test_a_widened_candidate_carries_its_probe(spark, tmp_path):
    wh = tmp_path / "wh"
    old = spark.createDataFrame([(1, 3)], "order_id bigint, line_no int")
    spark.createDataFrame([(1, 3), (2, 4_000_000_000)], "order_id bigint, line_no bigint").write.parquet(
        str(wh / "sales" / "fct_order_items"))
    pipeline = Pipeline(name="p", job="jobs/j.sql", kind="sql", root=tmp_path, expectations=None,
                        inputs={"order_items": InputSpec("order_items", path=str(wh / "order_items"))},
                        output=OutputSpec(path=str(tmp_path / "out" / "p")))
    (cand,) = find_moves(spark, pipeline, ["order_items"], old_schemas={"order_items": schema_json(old)}
                         ).candidates["order_items"]
    (probe,) = cand.widened
    assert (probe.column, probe.old_type, probe.new_type, probe.misfits) == ("line_no", "int", "bigint", 1)


def _schema(spark, ddl: str) -> dict:
    return schema_json(spark.createDataFrame([], ddl))


def test_the_output_schema_check_accepts_a_widening_and_nothing_else(spark):
    good = RunRecord(pipeline="p", repo="r", status="success", output_schema=_schema(spark, "order_id bigint, line_no int"))
    box = SimpleNamespace(last_good=good, pipeline=None, expectations=[])  # no commit: the last good schema rules
    wider = Sandbox.schema_check(box, _schema(spark, "order_id bigint, line_no bigint"))
    assert wider.passed and "widened: line_no int -> bigint" in wider.detail
    narrower = Sandbox.schema_check(box, _schema(spark, "order_id int, line_no int"))
    assert not narrower.passed and "was order_id bigint" in narrower.detail
    assert not Sandbox.schema_check(box, _schema(spark, "order_id bigint, line_no string")).passed
    assert not Sandbox.schema_check(box, _schema(spark, "line_no bigint, order_id bigint")).passed
