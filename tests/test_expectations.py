"""Expectations files: loading errors (pure Python) and the 8 kinds run with real Great Expectations.

Great Expectations returns its results grouped by column (and raising expectations first, and
identical expectations only once), not in suite order; the interleaved and duplicate cases
below check that every result still lands on its own expectation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healer.errors import ExpectationsError
from healer.expectations import KINDS, Expectation, load_expectations, run_expectations

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.expectations.yml"
    path.write_text(text)
    return path


# -- loading ---------------------------------------------------------------------------

ALL_KINDS = """\
- {expect: column_values_not_null, column: nation}
- {expect: column_values_between, column: revenue, min: 0}
- {expect: column_values_unique, column: nation}
- {expect: column_values_in_set, column: status, values: [open, shipped]}
- {expect: column_values_match_regex, column: email, regex: "^[^@]+@[^@]+$"}
- {expect: compound_columns_unique, columns: [order_id, line_no]}
- {expect: columns_match_set, columns: [nation, revenue]}
- {expect: row_count_between, min: 1, max: 1000000}
"""


def test_every_kind_loads(tmp_path):
    loaded = load_expectations(write(tmp_path, ALL_KINDS))
    assert [e.kind for e in loaded] == list(KINDS)
    assert loaded[1].args == {"column": "revenue", "min": 0}
    assert loaded[3].args["values"] == ["open", "shipped"]
    assert loaded[5].describe() == "compound_columns_unique(columns=['order_id', 'line_no'])"
    assert loaded[7].args == {"min": 1, "max": 1000000}


def test_empty_file_is_no_expectations(tmp_path):
    assert load_expectations(write(tmp_path, "# nothing yet\n")) == []


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines" / "jobs").glob("*.expectations.yml")),
                         ids=lambda p: p.name)
def test_shipped_expectations_files_load(path):
    assert load_expectations(path), f"{path} has no expectations"


LOAD_ERRORS = [
    # id, file text, item number or None, message fragment
    ("unknown-kind", "- {expect: column_values_positive, column: revenue}\n", 1,
     "unknown expectation 'column_values_positive' (known: column_values_not_null,"),
    ("unknown-key", "- {expect: row_count_between, min: 1}\n- {expect: column_values_not_null, column: a, mostly: 0.9}\n",
     2, "(column_values_not_null): unknown key 'mostly' (allowed: column)"),
    ("missing-key", "- {expect: column_values_in_set, column: status}\n", 1,
     "(column_values_in_set): missing key 'values'"),
    ("missing-column", "- {expect: column_values_between, min: 0}\n", 1, "(column_values_between): missing key 'column'"),
    ("min-not-a-number", "- {expect: column_values_between, column: revenue, min: zero}\n", 1,
     "(column_values_between): 'min' must be a number"),
    ("max-is-a-bool", "- {expect: row_count_between, max: true}\n", 1, "(row_count_between): 'max' must be a number"),
    ("min-above-max", "- {expect: column_values_between, column: revenue, min: 10, max: 1}\n", 1,
     "'min' is greater than 'max'"),
    ("no-bounds", "- {expect: row_count_between}\n", 1, "(row_count_between): give 'min' and/or 'max'"),
    ("bad-regex", "- {expect: column_values_match_regex, column: email, regex: '([a-z'}\n", 1,
     "(column_values_match_regex): invalid regex:"),
    ("values-not-a-list", "- {expect: column_values_in_set, column: s, values: open}\n", 1,
     "'values' must be a non-empty list"),
    ("columns-empty", "- {expect: compound_columns_unique, columns: []}\n", 1,
     "'columns' must be a non-empty list of column names"),
    ("item-not-a-mapping", "- {expect: row_count_between, min: 1}\n- column_values_not_null\n", 2,
     "expected a mapping with an 'expect' key"),
    ("not-a-list", "expect: column_values_not_null\ncolumn: a\n", None, "expected a YAML list"),
    ("invalid-yaml", "- {expect: column_values_not_null, column: [a\n", None, "invalid YAML at line"),
]


@pytest.mark.parametrize("text, item, fragment", [c[1:] for c in LOAD_ERRORS], ids=[c[0] for c in LOAD_ERRORS])
def test_load_errors_are_one_line_naming_file_and_item(tmp_path, text, item, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ExpectationsError) as info:
        load_expectations(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: " + (f"item {item}" if item else "")), message
    assert fragment in message, message


def test_missing_expectations_file(tmp_path):
    with pytest.raises(ExpectationsError, match="expectations file not found"):
        load_expectations(tmp_path / "nope.yml")


# -- running with Great Expectations ---------------------------------------------------

SCHEMA = "order_id int, line_no int, email string, status string, revenue double"
COLUMNS = ["order_id", "line_no", "email", "status", "revenue"]


def E(kind, **args) -> Expectation:
    return Expectation(kind=kind, args=args)


# One of each kind; NULLs in the data show which kinds ignore them.
PASSING = [
    E("columns_match_set", columns=COLUMNS),
    E("row_count_between", min=1, max=10),
    E("compound_columns_unique", columns=["order_id", "line_no"]),
    E("column_values_unique", column="order_id"),  # a NULL is not a duplicate
    E("column_values_not_null", column="line_no"),
    E("column_values_match_regex", column="email", regex="^[^@]+@[^@]+$"),  # NULLs ignored
    E("column_values_in_set", column="status", values=["open", "shipped"]),  # NULLs ignored
    E("column_values_between", column="revenue", min=0, max=10),  # NULLs ignored
]

FAILING = [
    E("columns_match_set", columns=["order_id", "line_no", "email"]),
    E("row_count_between", max=3),
    E("compound_columns_unique", columns=["order_id", "line_no"]),
    E("column_values_unique", column="order_id"),
    E("column_values_not_null", column="email"),
    E("column_values_match_regex", column="email", regex="^[^@]+@[^@]+$"),
    E("column_values_in_set", column="status", values=["open", "shipped"]),
    E("column_values_between", column="revenue", min=0, max=10),
]


@pytest.fixture(scope="module")
def passing_audit(spark):
    df = spark.createDataFrame(
        [(1, 1, "a@x.io", "open", 5.0), (2, 1, "b@x.io", "shipped", None),
         (3, 2, None, "open", 0.0), (None, 2, "c@y.io", None, 9.5)], SCHEMA)
    return run_expectations(df, PASSING)


@pytest.fixture(scope="module")
def failing_audit(spark):
    df = spark.createDataFrame(
        [(1, 1, "a@x.io", "open", -5.0), (1, 1, "bogus", "lost", 50.0),
         (3, 2, None, "open", 3.0), (3, 3, "c@y.io", "open", -1.0)], SCHEMA)
    return run_expectations(df, FAILING)


@pytest.mark.spark
def test_every_kind_passes_on_good_data(passing_audit):
    assert {e.kind for e in PASSING} == set(KINDS)
    assert passing_audit.success, passing_audit.summary()
    assert [r.expectation for r in passing_audit.results] == [e.describe() for e in PASSING]
    assert all(r.success and r.error is None for r in passing_audit.results)
    assert passing_audit.failed == []
    assert passing_audit.summary() == "all 8 expectations passed"
    by_kind = {r.kind: r for r in passing_audit.results}
    assert by_kind["row_count_between"].observed == 4
    assert by_kind["column_values_between"].unexpected_count == 0
    assert by_kind["column_values_between"].element_count == 4


# kind -> (unexpected_count, examples) for the failing batch; None means a table-level result
EXPECTED_FAILURES = {
    "compound_columns_unique": (2, [{"order_id": 1, "line_no": 1}, {"order_id": 1, "line_no": 1}]),
    "column_values_unique": (4, [1, 1, 3, 3]),
    "column_values_not_null": (1, [None]),
    "column_values_match_regex": (1, ["bogus"]),
    "column_values_in_set": (1, ["lost"]),
    "column_values_between": (3, [-5.0, 50.0, -1.0]),
}


@pytest.mark.spark
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_fails_on_bad_data(failing_audit, kind):
    assert not failing_audit.success
    result = next(r for r in failing_audit.results if r.kind == kind)
    assert result.expectation == next(e.describe() for e in FAILING if e.kind == kind)
    assert not result.success and result.error is None
    if kind in EXPECTED_FAILURES:
        count, examples = EXPECTED_FAILURES[kind]
        assert result.element_count == 4
        assert result.unexpected_count == count
        assert sorted(map(repr, result.examples)) == sorted(map(repr, examples))
    elif kind == "row_count_between":
        assert result.observed == 4
    else:  # columns_match_set: the columns actually there
        assert sorted(result.observed) == sorted(COLUMNS)


@pytest.mark.spark
def test_failing_audit_summary_and_json_carry_the_offending_values(failing_audit):
    assert len(failing_audit.failed) == len(FAILING)
    summary = failing_audit.summary()
    assert "column_values_between(column=revenue, min=0, max=10): 3 of 4 rows failed (e.g. -5.0, 50.0, -1.0)" in summary
    assert "'lost'" in summary and "'bogus'" in summary
    stored = json.loads(json.dumps(failing_audit.to_json()))  # what the ledger stores
    between = next(r for r in stored if r["kind"] == "column_values_between")
    assert between["column"] == "revenue" and -5.0 in between["examples"]


@pytest.fixture(scope="module")
def interleaved(spark):
    df = spark.createDataFrame([(1, "a@x.io", 5.0), (2, "b@x.io", None), (3, "c@x.io", -2.0)],
                               "order_id int, email string, revenue double")
    exps = [
        E("column_values_between", column="revenue", min=0),  # fails: -2.0
        E("column_values_not_null", column="email"),  # passes
        E("column_values_not_null", column="revenue"),  # fails: one NULL
        E("row_count_between", min=1),  # passes
    ]
    return exps, run_expectations(df, exps)


@pytest.mark.spark
def test_interleaved_expectations_still_give_the_right_verdict(interleaved):
    exps, audit = interleaved
    assert not audit.success
    assert len(audit.results) == len(exps)
    assert sum(not r.success for r in audit.results) == 2


@pytest.mark.spark
def test_results_match_expectations_when_columns_interleave(interleaved):
    _, audit = interleaved
    by_name = {r.expectation: r for r in audit.results}
    assert by_name["column_values_not_null(column=email)"].success
    revenue_nulls = by_name["column_values_not_null(column=revenue)"]
    assert not revenue_nulls.success and revenue_nulls.unexpected_count == 1
    assert by_name["column_values_between(column=revenue, min=0)"].examples == [-2.0]


@pytest.mark.spark
def test_duplicate_expectation_lines(spark):
    df = spark.createDataFrame([(1, "a@x.io", -1.0)], "order_id int, email string, revenue double")
    exps = [E("column_values_not_null", column="email"), E("column_values_between", column="revenue", min=0),
            E("column_values_not_null", column="email")]
    audit = run_expectations(df, exps)
    assert [r.expectation for r in audit.results] == [e.describe() for e in exps]
    assert [r.success for r in audit.results] == [True, False, True]


@pytest.fixture(scope="module")
def missing_column(spark):
    df = spark.createDataFrame([(1, "x")], "id int, name string")
    return run_expectations(df, [E("column_values_not_null", column="nation")])


@pytest.mark.spark
def test_expectation_on_a_missing_column_fails(missing_column):
    assert not missing_column.success
    assert not missing_column.results[0].success


@pytest.mark.spark
def test_expectation_on_a_missing_column_says_why(missing_column):
    result = missing_column.results[0]
    assert result.error is not None and "nation" in result.error
    assert "could not run" in missing_column.summary()


@pytest.mark.spark
def test_failed_examples_are_strict_json(spark):
    df = spark.createDataFrame([(1.0,), (float("nan"),), (-2.0,)], "x double")
    audit = run_expectations(df, [E("column_values_between", column="x", min=0, max=10)])
    assert not audit.success and audit.results[0].unexpected_count == 2
    json.dumps(audit.to_json(), allow_nan=False)


def test_no_expectations_is_an_empty_pass():
    audit = run_expectations(None, [])
    assert audit.success and audit.results == []
