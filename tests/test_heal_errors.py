"""Heal inputs that cannot be healed get a clear one-line outcome, and nothing is pushed."""

from __future__ import annotations

import subprocess

from healer.heal import heal
from healer.ledger import RunRecord, heals, utcnow


def failed_run(ledger, repo, **kw) -> RunRecord:
    record = RunRecord(pipeline="revenue_by_category", repo=str(repo), status="failed", stage="job",
                       error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION", error_message="`i`.`unit_price` cannot be resolved",
                       error_params={"objectName": "`i`.`unit_price`"}, started_at=utcnow(), **kw)
    ledger.start_run(record)
    ledger.finish_run(record)
    return record


def test_no_recorded_failure(ledger, tmp_path):
    outcome = heal(tmp_path, "revenue_by_category", ledger=ledger)
    assert outcome.status == "error" and outcome.exit_code == 1
    assert outcome.reason.startswith("no failed run of 'revenue_by_category'")


def test_unknown_failure_id(ledger, tmp_path):
    outcome = heal(tmp_path, failure_id=4242, ledger=ledger)
    assert outcome.status == "error" and "no run #4242" in outcome.reason


def test_a_run_that_succeeded_is_not_healed(ledger, tmp_path):
    record = RunRecord(pipeline="p", repo=str(tmp_path), status="success", started_at=utcnow())
    ledger.start_run(record)
    ledger.finish_run(record)
    outcome = heal(tmp_path, failure_id=record.id, ledger=ledger)
    assert outcome.status == "error" and "did not fail" in outcome.reason


def test_run_from_a_dirty_tree_is_a_clear_error(ledger, pipeline_repo):
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pipeline_repo, capture_output=True, text=True).stdout.strip()
    failed_run(ledger, pipeline_repo, commit=commit, dirty=True)
    outcome = heal(pipeline_repo, "revenue_by_category", ledger=ledger)
    assert outcome.status == "error"
    assert "uncommitted changes" in outcome.reason
    row = ledger.select(heals, heals.c.id == outcome.heal)[0]
    assert row["status"] == "error" and row["reason"] == outcome.reason


def test_retries_left_are_skipped(ledger, pipeline_repo):
    failed_run(ledger, pipeline_repo, context={"try_number": 1, "max_tries": 2})
    outcome = heal(pipeline_repo, "revenue_by_category", ledger=ledger)
    assert outcome.status == "skipped" and "Airflow will retry" in outcome.reason


def test_config_failures_are_declined(ledger, pipeline_repo):
    record = RunRecord(pipeline="revenue_by_category", repo=str(pipeline_repo), status="failed", stage="config",
                       error_class="ConfigError", error_message="healer.yml: pipeline 'x': job: job file not found",
                       started_at=utcnow())
    ledger.start_run(record)
    ledger.finish_run(record)
    outcome = heal(pipeline_repo, "revenue_by_category", ledger=ledger)
    assert outcome.status == "declined" and "configuration is invalid" in outcome.reason
