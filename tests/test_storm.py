"""Storm control: one upstream change breaks several jobs; they heal in one PR."""

from __future__ import annotations

import subprocess

import pytest

from healer.errors import RunFailed
from healer.forges import LocalForge
from healer.heal import heal, heal_storm
from healer.runner.run import run_pipeline
from pipelines import drift

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_one_rename_breaks_a_sql_and_a_pyspark_job_and_both_heal_in_one_pr(spark, ledger, pipeline_repo):
    for name in ("customer_lifetime", "customer_sessions", "clean_customers"):
        run_pipeline(pipeline_repo, name, spark=spark, ledger=ledger)
    drift.rename_column(pipeline_repo / "data", "orders", "order_ts", "order_time")
    for name in ("customer_lifetime", "customer_sessions"):
        with pytest.raises(RunFailed):
            run_pipeline(pipeline_repo, name, spark=spark, ledger=ledger)

    outcomes = heal_storm(pipeline_repo, spark=spark, ledger=ledger)

    by_name = {o.pipeline: o for o in outcomes}
    assert set(by_name) == {"customer_lifetime", "customer_sessions"}  # clean_customers did not fail
    assert all(o.status == "proposed" for o in outcomes), [o.reason for o in outcomes]
    assert by_name["customer_lifetime"].pr == by_name["customer_sessions"].pr
    branch = by_name["customer_lifetime"].branch
    assert branch.startswith("healer/storm/")
    prs = LocalForge(ledger).list()
    assert len(prs) == 1
    pr = prs[0]
    assert pr.title.startswith("heal(storm): ") and pr.title.endswith("— 2 pipelines")
    assert "## `customer_lifetime`" in pr.body and "## `customer_sessions`" in pr.body
    files = subprocess.run(["git", "--git-dir", str(pipeline_repo.parent / "origin.git"), "diff", "--name-only",
                            f"main...{branch}"], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(files) == ["jobs/customer_lifetime.sql", "jobs/customer_sessions.py"]
    # a later single heal of either member finds the storm PR instead of opening another
    with pytest.raises(RunFailed):
        run_pipeline(pipeline_repo, "customer_sessions", spark=spark, ledger=ledger)
    again = heal(pipeline_repo, "customer_sessions", spark=spark, ledger=ledger)
    assert again.duplicate and again.pr == pr.id


def test_a_null_surge_in_one_input_breaks_two_jobs_and_both_heal_in_one_draft_pr(spark, ledger, pipeline_repo):
    """No schema changed: the shared root cause is the same bad rows of the same table."""
    for name in ("revenue_by_category", "customer_sessions"):
        run_pipeline(pipeline_repo, name, spark=spark, ledger=ledger)
    drift.null_values(pipeline_repo / "data", "orders", "order_ts", fraction=0.02)
    for name in ("revenue_by_category", "customer_sessions"):
        with pytest.raises(RunFailed):
            run_pipeline(pipeline_repo, name, spark=spark, ledger=ledger)

    outcomes = heal_storm(pipeline_repo, spark=spark, ledger=ledger)

    by_name = {o.pipeline: o for o in outcomes}
    assert set(by_name) == {"revenue_by_category", "customer_sessions"}
    assert all(o.status == "proposed" and o.fixer == "rule:null_surge" for o in outcomes), \
        [o.reason for o in outcomes]
    assert by_name["revenue_by_category"].pr == by_name["customer_sessions"].pr
    [pr] = LocalForge(ledger).list()
    assert pr.draft and pr.title.startswith("heal(storm): NULLs surged in orders.order_ts")
    assert pr.body.startswith("> **Draft: this fix changes what the data means")  # its first line says so
    assert "## `revenue_by_category`" in pr.body and "## `customer_sessions`" in pr.body
