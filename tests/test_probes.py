"""The duplicates probe on real Spark: whole-row copies counted, near-copies not."""

from __future__ import annotations

import pytest

from healer.evidence.probes import duplicate_probe, probe, wanted_kinds
from healer.expectations import ExpectationResult
from healer.failure import Failure

pytestmark = [pytest.mark.spark]


def test_exact_copies_are_counted_and_rows_that_differ_are_not(spark):
    rows = [(1, "a", 2.5), (2, "b", None), (1, "a", 2.5), (2, "b", None), (2, "b", None), (3, "c", 1.0), (3, "C", 1.0)]
    df = spark.createDataFrame(rows, "id bigint, name string, amount double")
    found = duplicate_probe("orders", df)
    assert (found.rows, found.distinct, found.duplicates) == (7, 4, 3)  # NULLs compare equal; "c" != "C"


def test_nested_columns_are_compared_too(spark):
    rows = [(1, {"k": "v"}, [1, 2]), (1, {"k": "v"}, [1, 2]), (1, {"k": "w"}, [1, 2])]
    df = spark.createDataFrame(rows, "id bigint, attrs map<string,string>, tags array<int>")
    assert duplicate_probe("events", df).duplicates == 1


def test_duplicates_are_probed_only_when_a_uniqueness_expectation_failed(spark):
    unique = Failure("p", "r", "audit", "EXPECTATIONS_FAILED", "", category="expectation",
                     failed_expectations=[ExpectationResult("", "compound_columns_unique", None, False)])
    not_null = Failure("p", "r", "audit", "EXPECTATIONS_FAILED", "", category="expectation",
                       failed_expectations=[ExpectationResult("", "column_values_not_null", "email", False)])
    assert "duplicates" in wanted_kinds(unique) and "duplicates" not in wanted_kinds(not_null)
    df = spark.createDataFrame([(1,), (1,)], "id bigint")
    probes = probe(spark, {"orders": df}, "SELECT id FROM orders", "sql", {"orders": {"id"}},
                   kinds=wanted_kinds(unique))
    assert probes.duplicate("orders").duplicates == 1
    assert probe(spark, {"orders": df}, "SELECT id FROM orders", "sql", {"orders": {"id"}},
                 kinds=wanted_kinds(not_null)).duplicates == []
