"""Triage: classification from Spark error conditions, transient errors, fingerprints."""

from __future__ import annotations

import pytest

from healer.expectations import ExpectationResult
from healer.failure import Failure, classify, from_text, stop_before_work, will_retry


def failure(error_class, message="", stage="job", params=None, **kw):
    return classify(Failure(pipeline="p", repo="/r", stage=stage, error_class=error_class, message=message,
                            params=params or {}, **kw))


@pytest.mark.parametrize("condition,category", [
    ("UNRESOLVED_COLUMN.WITH_SUGGESTION", "unresolved_column"),
    ("UNRESOLVED_COLUMN.WITHOUT_SUGGESTION", "unresolved_column"),
    ("FIELD_NOT_FOUND", "unresolved_column"),
    ("TABLE_OR_VIEW_NOT_FOUND", "missing_table"),
    ("INPUT_NOT_FOUND", "missing_table"),
    ("CAST_INVALID_INPUT", "type_cast"),
    ("CANNOT_PARSE_TIMESTAMP", "type_cast"),
    ("DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE", "datatype_mismatch"),
    ("DIVIDE_BY_ZERO", "divide_by_zero"),
    ("PARSE_SYNTAX_ERROR", "parse"),
    ("EXPECTATIONS_FAILED", "expectation"),
    ("UNRESOLVED_ROUTINE", "unresolved_function"),
    ("WRONG_NUM_ARGS.WITHOUT_SUGGESTION", "unresolved_function"),
    ("SOMETHING_NEW", "unknown"),
])
def test_conditions_map_to_categories(condition, category):
    assert failure(condition).category == category


@pytest.mark.parametrize("message", [
    "Job aborted due to stage failure: ExecutorLostFailure (executor 3 exited)",
    "java.lang.OutOfMemoryError: Java heap space",
    "java.net.ConnectException: Connection refused",
    "Read timed out",
    "org.apache.spark.shuffle.FetchFailedException: Failed to connect",
])
def test_infrastructure_errors_are_transient(message):
    f = failure("org.apache.spark.SparkException", message)
    assert f.transient and f.category == "transient"


def test_a_real_error_condition_wins_over_words_in_the_message():
    # a column literally named "timeout" must not make a real analysis error transient
    f = failure("UNRESOLVED_COLUMN.WITH_SUGGESTION", "column `timed out` cannot be resolved",
                params={"objectName": "`timed out`"})
    assert f.category == "unresolved_column"


def test_an_unknown_function_is_keyed_by_its_name():
    f = failure("UNRESOLVED_ROUTINE", "[UNRESOLVED_ROUTINE] Cannot resolve routine `GETDATE`",
                params={"routineName": "`GETDATE`", "searchPath": "[`system`.`builtin`]"})
    assert f.key_objects == ["getdate"]
    assert "function" in f.describe()


def test_config_stage_is_config():
    assert failure("ConfigError", "healer.yml: bad", stage="config").category == "config"


def test_fingerprint_is_stable_and_names_the_key_objects():
    a = failure("UNRESOLVED_COLUMN.WITH_SUGGESTION", "x", params={"objectName": "`i`.`unit_price`"})
    b = failure("UNRESOLVED_COLUMN.WITHOUT_SUGGESTION", "other words", params={"objectName": "`i`.`unit_price`"})
    c = failure("UNRESOLVED_COLUMN.WITH_SUGGESTION", "x", params={"objectName": "`i`.`discount`"})
    assert a.key_objects == ["i.unit_price"]
    assert a.fingerprint == b.fingerprint  # same cause, reworded
    assert a.fingerprint != c.fingerprint
    assert len(a.short_fingerprint) == 8


def test_expectation_failures_fingerprint_by_kind_and_column():
    f = failure("EXPECTATIONS_FAILED", stage="audit", failed_expectations=[
        ExpectationResult("", "column_values_between", "revenue", False),
        ExpectationResult("", "row_count_between", None, False)])
    assert f.category == "expectation"
    assert f.key_objects == ["column_values_between:revenue", "row_count_between:"]


def test_retries_left_follows_airflow_try_numbers():
    assert failure("X", context={"try_number": 1, "max_tries": 2}).retries_left()
    assert not failure("X", context={"try_number": 3, "max_tries": 2}).retries_left()
    assert not failure("X").retries_left()


@pytest.mark.parametrize("try_number,max_tries,retries", [
    (1, 2, True), (3, 3, True), (4, 3, False), ("2", "2", True), (None, 2, False), (1, None, False)])
def test_will_retry_is_one_rule_for_a_heal_and_for_the_task_instance(try_number, max_tries, retries):
    from types import SimpleNamespace

    from healer.airflow.runs import will_retry as task_will_retry

    assert will_retry(try_number, max_tries) is retries
    context = {k: v for k, v in (("try_number", try_number), ("max_tries", max_tries)) if v is not None}
    assert failure("X", context=context).retries_left() is retries
    # a task instance without a retry state is judged by its numbers, by the same rule
    assert task_will_retry(SimpleNamespace(state="running", try_number=try_number, max_tries=max_tries)) is retries


def test_triage_stops_transient_retrying_and_config_failures_before_any_work():
    assert stop_before_work(failure("X", "ExecutorLostFailure: executor 3 lost")) == (
        "skipped", "transient, left to retries: X")
    assert stop_before_work(failure("X", context={"try_number": 1, "max_tries": 2})) == (
        "skipped", "try 1 of 3: Airflow will retry; healing waits for the last try")
    assert stop_before_work(failure("ConfigError", "healer.yml: bad\nmore", stage="config")) == (
        "declined", "the pipeline's configuration is invalid, which Healer does not repair: healer.yml: bad")
    assert stop_before_work(failure("UNRESOLVED_COLUMN.WITH_SUGGESTION")) is None


def test_from_text_reads_the_condition_in_brackets():
    f = from_text("p", "/r", "pyspark.errors.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table `x` cannot be found.")
    assert f.error_class == "TABLE_OR_VIEW_NOT_FOUND" and f.category == "missing_table"
