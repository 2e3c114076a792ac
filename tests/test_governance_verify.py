"""Post-merge verification with real heals, a real git remote and the local forge.

A pipeline breaks upstream, Healer heals it, the PR is merged on the forge, the pipeline
repo pulls the merge, and the pipeline's next real run decides: verified, or regressed with a
revert PR on the forge and the circuit breaker tripped. (Verified and unverified, which need the same
real heal, are in test_governance_audit.py's demo heal test: one heal serves both.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.compute as pc
import pytest

from healer.errors import RunFailed
from healer.forges import LocalForge
from healer.governance import audit, breaker, verify
from healer.heal import heal
from healer.runner.run import run_pipeline
from pipelines import drift

pytestmark = [pytest.mark.spark, pytest.mark.slow]

PIPELINE = "revenue_by_category"


def _git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "healer.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


def merged_heal(spark, ledger, repo):
    """The demo's breakage healed, the PR merged on the local forge, the repo pulled: the fix is deployed."""
    run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger)
    drift.rename_column(repo / "data", "order_items", "unit_price", "item_price")
    with pytest.raises(RunFailed):
        run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger)
    outcome = heal(repo, PIPELINE, spark=spark, ledger=ledger)
    assert outcome.status == "proposed", outcome.reason
    LocalForge(ledger).merge(outcome.pr)
    _git(repo, "pull", "-q", "origin", "main")
    return outcome


@pytest.mark.shadow  # a ready PR, merged: `healer prs` shows it as [merged], not [merged, draft]
def test_a_merged_fix_whose_next_run_fails_its_expectations_regresses_with_a_revert_pr_and_the_breaker(
        spark, ledger, pipeline_repo):
    outcome = merged_heal(spark, ledger, pipeline_repo)
    merge_sha = _git(pipeline_repo, "rev-parse", "HEAD")
    job = pipeline_repo / "jobs" / f"{PIPELINE}.sql"
    assert "i.item_price" in job.read_text()  # the fix is deployed
    verify.watch_merged(ledger)
    # upstream now sends negative quantities: the fixed job runs, and fails its expectations
    drift.map_values(pipeline_repo / "data", "order_items", "quantity", lambda c: pc.negate(c))
    with pytest.raises(RunFailed) as failed:
        run_pipeline(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)
    assert failed.value.stage == "audit"

    regressed = verify.state(ledger, outcome.heal)
    assert (regressed.state, regressed.run_id) == ("regressed", failed.value.run.id)
    pause = breaker.paused(ledger, PIPELINE)  # tripped by the run itself, before any sync
    assert pause is not None and pause.heal_id == outcome.heal and "regressed" in pause.reason

    proc = _cli("sync")  # the slow part, outside the pipeline's run: the revert PR
    assert proc.returncode == 0, proc.stderr
    assert f"heal #{outcome.heal}" in proc.stdout and "revert PR #" in proc.stdout
    [revert] = [p for p in LocalForge(ledger).list(status="open") if p.branch.startswith("healer/revert/")]
    assert revert.title.startswith("revert: heal(revenue_by_category)") and revert.heal_id == outcome.heal
    assert f"run #{failed.value.run.id}" in revert.body
    # the revert is on the forge's remote, and undoes the merged fix
    _git(pipeline_repo, "fetch", "-q", "origin", revert.branch)
    assert _git(pipeline_repo, "rev-parse", "FETCH_HEAD^") == merge_sha
    assert "i.unit_price" in _git(pipeline_repo, "show", f"FETCH_HEAD:jobs/{PIPELINE}.sql")
    assert f"This reverts commit {merge_sha}" in _git(pipeline_repo, "log", "-1", "--format=%B", "FETCH_HEAD")
    # once: another check opens no second revert
    assert verify.check(ledger) == []
    assert len([p for p in LocalForge(ledger).list() if p.branch.startswith("healer/revert/")]) == 1
    trail = [e.action.value for e in audit.events(ledger, heal_id=outcome.heal)]
    assert trail[-5:] == ["verification", "breaker_tripped", "push", "pr_opened", "revert_proposed"]
    prs = _cli("prs", "--all").stdout
    assert f"PR #{outcome.pr} [merged] " in prs and "[regressed: run #" in prs
