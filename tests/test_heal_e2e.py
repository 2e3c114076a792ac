"""End to end: real Spark, real git with a bare remote, real GX, the local forge.

Each test makes a working pipeline repo, runs a pipeline (success), drifts its data the
way an upstream team would, runs it again (failure), then heals.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from healer.errors import RunFailed
from healer.forges import LocalForge
from healer.heal import heal
from healer.ledger import RunRecord, heals, utcnow
from healer.runner.run import run_pipeline
from pipelines import drift

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def remote_branches(repo) -> list[str]:
    out = subprocess.run(["git", "ls-remote", "--heads", "origin"], cwd=repo, capture_output=True, text=True, check=True)
    return [line.split("refs/heads/")[1] for line in out.stdout.splitlines()]


def break_pipeline(spark, ledger, repo, pipeline, change):
    good = run_pipeline(repo, pipeline, spark=spark, ledger=ledger)
    change(repo / "data")
    with pytest.raises(RunFailed) as failed:
        run_pipeline(repo, pipeline, spark=spark, ledger=ledger)
    return good, failed.value.run


def rerun_from_branch(spark, ledger, repo, tmp_path, branch, pipeline):
    review = tmp_path / "review"
    subprocess.run(["git", "clone", "-q", "--branch", branch, str(repo.parent / "origin.git"), str(review)], check=True)
    env = {"WAREHOUSE": str(repo / "data"), "OUTPUT": str(tmp_path / "review-output")}
    return run_pipeline(review, pipeline, spark=spark, ledger=ledger, env=env)


SCENARIOS = {
    # name: (pipeline, drift, fixer, text the patched job must contain)
    "sql-rename": ("revenue_by_category",
                   lambda d: drift.rename_column(d, "order_items", "unit_price", "item_price"),
                   "rule:renamed_column", "i.item_price"),
    "sql-retype": ("customer_lifetime",
                   lambda d: drift.to_string(d, "orders", "order_ts", "%d/%m/%Y %H:%M:%S"),
                   "rule:retyped_column", "TO_TIMESTAMP(order_ts, 'dd/MM/yyyy HH:mm:ss"),
    "py-rename": ("customer_sessions",
                  lambda d: drift.rename_column(d, "orders", "order_ts", "order_time"),
                  "rule:renamed_column", '.withColumnRenamed("order_time", "order_ts")'),
    "py-retype": ("clean_customers",
                  lambda d: drift.to_string(d, "customers", "signup_date", "%d/%m/%Y"),
                  "rule:retyped_column", 'F.to_date(F.col("signup_date"), "dd/MM/yyyy")'),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rule_heals_and_the_branch_passes_on_full_data(scenario, spark, ledger, pipeline_repo, tmp_path):
    pipeline, change, fixer, expected_text = SCENARIOS[scenario]
    good, failed = break_pipeline(spark, ledger, pipeline_repo, pipeline, change)

    outcome = heal(pipeline_repo, pipeline, spark=spark, ledger=ledger)

    assert outcome.status == "proposed", outcome.reason
    assert outcome.fixer == fixer
    assert outcome.failure == failed.id
    assert outcome.branch == f"healer/{pipeline}/{outcome.fingerprint[:8]}"
    assert outcome.branch in remote_branches(pipeline_repo)
    assert set(outcome.timings) >= {"triage", "workspace", "evidence", "fixers", "sandbox", "proposal"}
    assert all(c["passed"] for c in outcome.validation["checks"])
    pr = LocalForge(ledger).get(outcome.pr)
    assert pr.status == "open" and pr.base == "main" and pr.title.startswith(f"heal({pipeline}): ")
    assert expected_text in pr.body  # the diff is in the body
    assert f"healer:fingerprint={outcome.fingerprint}" in pr.body
    # the heal worked in a clone of its own: the user's checkout is still on main, clean, with no new branch
    checkout = subprocess.run(["git", "status", "--porcelain", "--branch"], cwd=pipeline_repo,
                              capture_output=True, text=True, check=True).stdout
    assert checkout.splitlines() == ["## main...origin/main"], checkout
    local = subprocess.run(["git", "branch", "--format=%(refname:short)"], cwd=pipeline_repo,
                           capture_output=True, text=True, check=True).stdout
    assert local.split() == ["main"]
    # the commit on the branch is Healer's and contains the fix
    subprocess.run(["git", "fetch", "-q", "origin"], cwd=pipeline_repo, check=True)
    log = subprocess.run(["git", "log", "-1", "--format=%an <%ae>%n%s", f"origin/{outcome.branch}"],
                         cwd=pipeline_repo, capture_output=True, text=True, check=True).stdout
    assert log.startswith("Healer <healer@localhost>")
    # the fixed job passes on the full drifted data, with the same output schema and row count
    rerun = rerun_from_branch(spark, ledger, pipeline_repo, tmp_path, outcome.branch, pipeline)
    assert rerun.ok
    assert rerun.output_schema == good.output_schema
    assert rerun.row_count == good.row_count


@pytest.mark.shadow  # without the shadow run the banner adds "validated on a sample only" to the fixer's reason
def test_a_replayed_batch_is_deduplicated_in_a_draft_that_says_so_and_the_evidence_is_kept(
        spark, ledger, pipeline_repo, tmp_path):
    good, failed = break_pipeline(spark, ledger, pipeline_repo, "clean_customers",
                                  lambda d: drift.replay_rows(d, "customers", fraction=0.05))

    outcome = heal(pipeline_repo, "clean_customers", spark=spark, ledger=ledger)

    assert outcome.status == "proposed" and outcome.fixer == "rule:replayed_batch", outcome.reason
    assert outcome.draft
    pr = LocalForge(ledger).get(outcome.pr)
    assert pr.draft and pr.body.startswith("> **Draft: this fix changes what the data means.**")
    assert '.dropDuplicates()' in pr.body
    [dupes] = [d for d in outcome.evidence["probes"]["duplicates"] if d["input"] == "customers"]
    copies = dupes["rows"] - dupes["distinct"]
    assert copies > 0 and f"removes {copies} of them" in pr.title
    row = ledger.select(heals, heals.c.id == outcome.heal)[0]
    assert row["outcome"]["evidence"]["probes"]["duplicates"] == outcome.evidence["probes"]["duplicates"]
    rerun = rerun_from_branch(spark, ledger, pipeline_repo, tmp_path, outcome.branch, "clean_customers")
    assert rerun.ok and rerun.row_count == good.row_count  # the replayed copies are gone on the full data


def test_a_broken_feed_is_declined_with_the_rules_reason(spark, ledger, pipeline_repo):
    # 60% of emails gone: dropping those rows would hide most of the data
    break_pipeline(spark, ledger, pipeline_repo, "clean_customers",
                   lambda d: drift.null_values(d, "customers", "email", fraction=0.6))
    outcome = heal(pipeline_repo, "clean_customers", spark=spark, ledger=ledger)
    assert outcome.status == "declined"
    assert "rule:null_surge declined: customers.email is NULL in 6" in outcome.reason
    assert "a broken feed, not a few bad rows" in outcome.reason
    assert remote_branches(pipeline_repo) == ["main"]


def test_no_rule_applies_is_declined_and_nothing_is_pushed(spark, ledger, pipeline_repo):
    # upstream dropped a column outright: nothing to rename it from
    break_pipeline(spark, ledger, pipeline_repo, "revenue_by_category",
                   lambda d: drift.drop_column(d, "order_items", "discount"))
    outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert outcome.status == "declined"
    assert outcome.exit_code == 3
    assert "no fixer proposed a candidate" in outcome.reason
    assert remote_branches(pipeline_repo) == ["main"]
    assert LocalForge(ledger).list() == []


def test_fix_that_fails_an_expectation_in_the_sandbox_is_declined(spark, ledger, pipeline_repo):
    # renamed AND the values turned negative: the rename fix runs, but revenue < 0 fails
    import pyarrow.compute as pc

    def change(d):
        drift.rename_column(d, "order_items", "unit_price", "item_price")
        drift.map_values(d, "order_items", "item_price", lambda c: pc.negate(c))

    break_pipeline(spark, ledger, pipeline_repo, "revenue_by_category", change)
    outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert outcome.status == "declined", outcome.reason
    assert outcome.candidates and outcome.candidates[0]["fixer"] == "rule:renamed_column"
    assert not outcome.candidates[0]["passed"]
    assert any("column_values_between(column=revenue" in r for r in outcome.candidates[0]["reasons"]), outcome.candidates[0]["reasons"]
    assert remote_branches(pipeline_repo) == ["main"]


def test_duplicate_heal_returns_the_open_proposal(spark, ledger, pipeline_repo):
    break_pipeline(spark, ledger, pipeline_repo, "revenue_by_category",
                   lambda d: drift.rename_column(d, "order_items", "unit_price", "item_price"))
    first = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert first.status == "proposed"
    with pytest.raises(RunFailed):  # the pipeline fails again before anyone merges
        run_pipeline(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    second = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert second.status == "proposed" and second.duplicate
    assert second.pr == first.pr and second.fingerprint == first.fingerprint
    assert len(LocalForge(ledger).list()) == 1
    # once merged, the PR is no longer open; `healer pr merge` really merged into main on origin
    merged = LocalForge(ledger).merge(first.pr)
    assert merged.status == "merged"
    show = subprocess.run(["git", "--git-dir", str(pipeline_repo.parent / "origin.git"), "show", "main:jobs/revenue_by_category.sql"],
                          capture_output=True, text=True, check=True).stdout
    assert "i.item_price" in show


def test_transient_failure_is_skipped(ledger, pipeline_repo):
    record = RunRecord(pipeline="revenue_by_category", repo=str(pipeline_repo), status="failed", stage="job",
                       error_class="org.apache.spark.SparkException",
                       error_message="Job aborted due to stage failure: ExecutorLostFailure (executor 3 exited "
                                     "caused by one of the running tasks) Reason: Container killed by YARN",
                       started_at=utcnow())
    ledger.start_run(record)
    ledger.finish_run(record)
    outcome = heal(pipeline_repo, "revenue_by_category", ledger=ledger)
    assert outcome.status == "skipped"
    assert outcome.reason.startswith("transient, left to retries")
    assert remote_branches(pipeline_repo) == ["main"]
    row = ledger.select(heals, heals.c.id == outcome.heal)[0]
    assert row["status"] == "skipped"


def test_cli_heal_json(spark, ledger, pipeline_repo, tmp_path):
    """`healer heal --json` in a subprocess: one JSON object, exit 0 on proposed."""
    import os
    import sys

    break_pipeline(spark, ledger, pipeline_repo, "clean_customers",
                   lambda d: drift.to_string(d, "customers", "signup_date", "%d/%m/%Y"))
    env = {**os.environ, "HEALER_HOME": os.environ["HEALER_HOME"]}
    proc = subprocess.run([sys.executable, "-m", "healer.cli", "heal", "--repo", str(pipeline_repo),
                           "--pipeline", "clean_customers", "--json"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "proposed"
    assert set(out) >= {"status", "reason", "fingerprint", "fixer", "branch", "pr", "validation", "timings"}
    assert out["validation"]["sample_sizes"]["customers"] > 0
    [diff] = out["evidence"]["diffs"]  # what the heal knew travels with its outcome
    assert diff["input"] == "customers" and "signup_date" in json.dumps(diff)


def test_cli_heal_all_dry_run_validates_the_storm_but_pushes_nothing(spark, ledger, pipeline_repo):
    """`healer heal --all --dry-run`: each fix passes the sandbox; no branch is pushed, no PR opened."""
    import os
    import sys

    for name in ("customer_lifetime", "customer_sessions"):
        run_pipeline(pipeline_repo, name, spark=spark, ledger=ledger)
    drift.rename_column(pipeline_repo / "data", "orders", "order_ts", "order_time")
    for name in ("customer_lifetime", "customer_sessions"):
        with pytest.raises(RunFailed):
            run_pipeline(pipeline_repo, name, spark=spark, ledger=ledger)

    proc = subprocess.run([sys.executable, "-m", "healer.cli", "heal", "--repo", str(pipeline_repo), "--all",
                           "--dry-run", "--json"], capture_output=True, text=True, env={**os.environ}, timeout=600)

    assert proc.returncode == 0, proc.stderr[-2000:]
    outcomes = {o["pipeline"]: o for o in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert set(outcomes) == {"customer_lifetime", "customer_sessions"}
    for o in outcomes.values():
        assert o["status"] == "proposed" and o["reason"].startswith("dry run: "), o["reason"]
        assert o["reason"].endswith("passed the sandbox; nothing pushed (one PR for 2 pipelines)"), o["reason"]
        assert o["pr"] is None and o["branch"] is None
    assert remote_branches(pipeline_repo) == ["main"]
    assert LocalForge(ledger).list() == []
