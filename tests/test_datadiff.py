"""The data diff against the last good output, on real Spark DataFrames."""

from __future__ import annotations

import pytest

from healer.expectations import Expectation
from healer.sandbox.datadiff import diff, output_key

pytestmark = [pytest.mark.spark, pytest.mark.shadow]

SCHEMA = "category string, month string, revenue double, units long"
GOOD = [("books", "2024-01", 100.0, 3), ("games", "2024-01", 250.5, 5), ("toys", "2024-02", 80.25, 2)]


def test_identical_output_within_float_tolerance(spark):
    before = spark.createDataFrame(GOOD, SCHEMA)
    after = spark.createDataFrame([(c, m, r * (1 + 1e-13), u) for c, m, r, u in GOOD], SCHEMA)
    d = diff(before, after, ["category", "month"])
    assert d.is_identical and d.identical == 3 and d.changed == 0
    assert d.summary() == "3 of 3 rows identical to the last good output"
    assert d.headline() is None


def test_keyed_diff_counts_changed_lost_and_new_rows_per_column(spark):
    before = spark.createDataFrame(GOOD, SCHEMA)
    after = spark.createDataFrame([("books", "2024-01", 10000.0, 3), ("games", "2024-01", 25050.0, 5),
                                   ("pets", "2024-03", 1.0, 1)], SCHEMA)
    d = diff(before, after, ("category", "month"))
    assert (d.identical, d.changed, d.only_before, d.only_after) == (0, 2, 1, 1)
    [revenue] = d.columns
    assert revenue.column == "revenue" and revenue.rows == 2
    assert revenue.max_abs == pytest.approx(24799.5) and revenue.max_rel == pytest.approx(99.0)
    assert revenue.median_rel == pytest.approx(99.0)
    assert set(revenue.examples) == {"category=books, month=2024-01", "category=games, month=2024-01"}
    assert d.headline() == "revenue differs on 2 of 3 rows, median +9900%"
    rev = next(s for s in d.numeric if s.column == "revenue")
    assert rev.before[0] == 3 and rev.after[1] == pytest.approx((10000 + 25050 + 1) / 3)


def test_without_a_unique_key_rows_are_compared_as_multisets(spark):
    before = spark.createDataFrame(GOOD + [GOOD[0]], SCHEMA)
    after = spark.createDataFrame(GOOD, SCHEMA)
    d = diff(before, after, ["category"])  # 'books' twice before: not a key
    assert d.key == () and "not unique" in d.notes[0]
    assert (d.rows_before, d.rows_after, d.only_before, d.only_after, d.identical) == (4, 3, 1, 0, 3)


def test_lost_columns_and_columns_that_became_null_are_reported(spark):
    before = spark.createDataFrame(GOOD, SCHEMA)
    after = spark.createDataFrame([(c, m, None, u) for c, m, _, u in GOOD], SCHEMA).drop("units")
    d = diff(before, after, ["category", "month"])
    assert d.columns_only_before == ("units",) and d.all_null_after == ("revenue",)
    assert not d.is_identical


def test_secret_columns_give_no_examples_or_stats(spark):
    before = spark.createDataFrame([(1, "a", 1.0)], "id long, api_token string, password_hash double")
    after = spark.createDataFrame([(1, "b", 2.0)], "id long, api_token string, password_hash double")
    d = diff(before, after, ["id"])
    assert {c.column for c in d.columns} == {"api_token", "password_hash"}
    assert all(c.examples == () for c in d.columns)
    assert not [s for s in d.numeric if s.column == "password_hash"]


def test_the_key_comes_from_the_manifest_then_the_uniqueness_expectations():
    class P:
        key = ()

    exps = [Expectation("column_values_unique", {"column": "order_id"}),
            Expectation("compound_columns_unique", {"columns": ["category", "month"]})]
    assert output_key(P(), exps) == ("category", "month")
    assert output_key(P(), exps[:1]) == ("order_id",)
    P.key = ("id",)
    assert output_key(P(), exps) == ("id",)


def test_new_rows_that_all_hold_one_value_where_data_varied_are_named(spark):
    """A constant that hides missing data: every new customer 'signed up' on the same day."""
    import datetime as dt

    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    before = spark.createDataFrame([(i, days[i]) for i in range(40)], "id long, signup date")
    new = [(100 + i, dt.date(2019, 1, 1)) for i in range(8)]
    after = spark.createDataFrame([(i, days[i]) for i in range(40)] + new, "id long, signup date")
    d = diff(before, after, ["id"])
    assert (d.identical, d.only_after) == (40, 8)
    [u] = d.uniform_new
    assert (u.column, u.value, u.rows, u.variety) == ("signup", "2019-01-01", 8, 40)
    assert d.headline() == "signup is 2019-01-01 on all 8 new rows, where the last good output had 40 different values"
    # new rows that vary like the old ones are just new data
    varied = spark.createDataFrame([(i, days[i]) for i in range(40)] + [(100 + i, days[i]) for i in range(8)],
                                   "id long, signup date")
    assert diff(before, varied, ["id"]).uniform_new == ()


def test_readiness_takes_columns_the_commit_added_as_its_intent(spark):
    from healer.fixers.base import Patch
    from healer.sandbox.readiness import judge
    from healer.sandbox.shadow import Shadow

    before = spark.createDataFrame(GOOD, SCHEMA)
    after = spark.createDataFrame([(*row, row[2] * 0.9) for row in GOOD], SCHEMA + ", net_revenue double")
    shadow = Shadow(ran=True, reason="ran", rows_read=10, diff=diff(before, after, ["category", "month"]))
    patch = Patch("rule:code_typo", "typo", "", 0.9, [])
    assert not judge(patch, shadow, draft_below=0.7).ready  # against the last good schema: a new column
    assert judge(patch, shadow, draft_below=0.7, new_columns_intended=True).ready
