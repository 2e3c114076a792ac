"""Each policy key changes what a heal does: real repos with a bare origin, the local forge, real Spark.

The cheap checks (mode off, the PR budget, the breaker, a bad policy) stop before the clone and
need no Spark; the others go as far as their rule acts (evidence, the fixers, the sandbox).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import textwrap

import pytest

from healer.cli import main
from healer.errors import RunFailed
from healer.forges import LocalForge
from healer.forges.base import Audience
from healer.governance import breaker, budgets, enforce, people
from healer.heal import heal
from healer.ledger import RunRecord, heals, prs, utcnow
from healer.policy import Policy
from healer.runner.run import run_pipeline
from messages_server import MessagesServer, fix
from pipelines import drift

PIPELINE = "revenue_by_category"
JOB = "jobs/revenue_by_category.sql"


def set_policy(repo, repo_level: str = "", pipeline_level: str = "") -> None:
    """Write healing blocks into the repo's healer.yml and commit them (as a team would)."""
    path = repo / "healer.yml"
    text = path.read_text()
    if pipeline_level:
        anchor = f"    expectations: {JOB.replace('.sql', '.expectations.yml')}\n"
        block = "    healing:\n" + textwrap.indent(textwrap.dedent(pipeline_level), "      ")
        text = text.replace(anchor, anchor + block, 1)
    if repo_level:
        text += "\nhealing:\n" + textwrap.indent(textwrap.dedent(repo_level), "  ")
    path.write_text(text)
    subprocess.run(["git", "commit", "-q", "-am", "healing policy"], cwd=repo, check=True)


def failed_run(ledger, repo) -> RunRecord:
    """A recorded failure of the pipeline (for the checks that stop before any work)."""
    record = RunRecord(pipeline=PIPELINE, repo=str(repo), status="failed", stage="job",
                       error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION",
                       error_message="`i`.`unit_price` cannot be resolved",
                       error_params={"objectName": "`i`.`unit_price`"}, started_at=utcnow())
    ledger.start_run(record)
    ledger.finish_run(record)
    return record


def break_it(spark, ledger, repo, change) -> None:
    run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger)
    change(repo / "data")
    with pytest.raises(RunFailed):
        run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger)


def remote_heads(repo) -> str:
    return subprocess.run(["git", "ls-remote", "--heads", "origin"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


def _pr(ledger, status, fixer="rule:renamed_column", pipeline=PIPELINE):
    heal_id = ledger.insert(heals, pipeline=pipeline, status="proposed", fixer=fixer, started_at=utcnow())
    return ledger.insert(prs, forge="local", pipeline=pipeline, heal_id=heal_id, status=status, branch=f"b{heal_id}",
                         created_at=utcnow(), updated_at=utcnow())


# -- stopped before the clone ----------------------------------------------------------------

def test_mode_off_declines_without_a_clone(ledger, pipeline_repo):
    set_policy(pipeline_repo, pipeline_level="mode: off\n")
    failed_run(ledger, pipeline_repo)
    outcome = heal(pipeline_repo, PIPELINE, ledger=ledger)
    assert outcome.status == "declined" and outcome.exit_code == 3
    assert outcome.reason == (f"policy: mode off set by healer.yml:pipelines.{PIPELINE}.healing.mode: "
                              f"Healer does not heal '{PIPELINE}'")
    assert "workspace" not in outcome.timings  # nothing was cloned
    assert ledger.get(heals, outcome.heal)["reason"] == outcome.reason


def test_daily_pr_budget_reached_declines_with_budget(ledger, pipeline_repo):
    set_policy(pipeline_repo, repo_level="budgets: {prs_per_pipeline_per_day: 2}\n")
    failed_run(ledger, pipeline_repo)
    _pr(ledger, "merged")
    _pr(ledger, "open", pipeline=f"{PIPELINE},customer_lifetime")  # a storm PR counts for each of its pipelines
    _pr(ledger, "open", pipeline="customer_lifetime")  # another pipeline's does not
    outcome = heal(pipeline_repo, PIPELINE, ledger=ledger)
    assert outcome.status == "declined"
    assert outcome.reason == (f"policy: budget: 2 pull request(s) already opened for '{PIPELINE}' today (UTC), "
                              "the most healer.yml:healing.budgets.prs_per_pipeline_per_day allows (2 a day)")
    # yesterday's PRs do not count
    yesterday = budgets.day_start() - dt.timedelta(minutes=5)
    for row in ledger.select(prs):
        ledger.update(prs, row["id"], created_at=yesterday)
    rules = enforce.admit(ledger, str(pipeline_repo), PIPELINE, Policy())
    assert rules.status == "admitted"


def test_breaker_trips_after_n_closed_prs_and_resumes(ledger, pipeline_repo, capsys):
    set_policy(pipeline_repo, repo_level="breaker: {after: 2}\n")
    failed_run(ledger, pipeline_repo)
    _pr(ledger, "closed")
    _pr(ledger, "merged")
    assert enforce.admit(ledger, str(pipeline_repo), PIPELINE, Policy()).status == "admitted"  # one closed: not yet
    _pr(ledger, "closed")
    outcome = heal(pipeline_repo, PIPELINE, ledger=ledger)
    assert outcome.status == "declined"
    assert outcome.reason.startswith(f"circuit breaker: healing of pipeline '{PIPELINE}' paused since ")
    assert f"2 of Healer's pull requests for '{PIPELINE}' were closed without merge or reverted (breaker at 2)" \
        in outcome.reason and f"healer policy resume {PIPELINE}" in outcome.reason
    assert "workspace" not in outcome.timings
    # still paused for the next heal, with the same reason
    assert heal(pipeline_repo, PIPELINE, ledger=ledger).reason == outcome.reason
    capsys.readouterr()
    assert main(["policy", "show", "--repo", str(pipeline_repo), "--pipeline", PIPELINE]) == 0
    assert outcome.reason in capsys.readouterr().out  # show lists the pause in force
    assert main(["policy", "resume", PIPELINE]) == 0
    assert f"resumed healing of pipeline '{PIPELINE}'" in capsys.readouterr().out
    assert breaker.paused(ledger, PIPELINE) is None
    assert enforce.admit(ledger, str(pipeline_repo), PIPELINE, Policy()).status == "admitted"
    assert main(["policy", "resume", PIPELINE]) == 1  # nothing left to resume: a one-line error
    assert f"circuit breaker: '{PIPELINE}' is not paused" in capsys.readouterr().err
    assert main(["policy", "resume", PIPELINE, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "error"


def test_a_repo_loosening_the_org_file_is_an_error_and_a_check_failure(ledger, pipeline_repo, tmp_path, monkeypatch,
                                                                       capsys):
    org = tmp_path / "org.yml"
    org.write_text("healing:\n  mode: draft\n  fixers: {deny: [llm]}\n")
    monkeypatch.setenv("HEALER_POLICY_FILE", str(org))
    set_policy(pipeline_repo, repo_level="mode: propose\n")
    failed_run(ledger, pipeline_repo)
    outcome = heal(pipeline_repo, PIPELINE, ledger=ledger)
    expected = (f"healer.yml:healing.mode: 'propose' loosens 'draft' set by {org}:healing.mode "
                "(a lower level may only tighten)")
    assert outcome.status == "error" and outcome.reason == f"policy: {expected}"
    assert main(["policy", "check", "--repo", str(pipeline_repo)]) == 1
    assert capsys.readouterr().err.strip() == f"healer: {expected}"
    assert main(["policy", "check", "--repo", str(pipeline_repo), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"status": "invalid", "problems": [expected]}
    assert main(["policy", "show", "--repo", str(pipeline_repo), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "error"
    org.write_text("healing:\n  mode: propose\n")
    assert main(["policy", "show", "--repo", str(pipeline_repo), "--pipeline", PIPELINE]) == 0
    shown = capsys.readouterr().out
    assert "mode" in shown and "healer.yml:healing.mode" in shown


# -- through the fixers and the sandbox --------------------------------------------------------

@pytest.mark.spark
def test_model_denied_for_one_pipeline_is_declined_naming_the_rule(spark, ledger, pipeline_repo, monkeypatch):
    # a dropped column: no rule repairs it; only the model might, and policy keeps it away from this pipeline
    set_policy(pipeline_repo, pipeline_level="fixers: {deny: [llm]}\n")
    break_it(spark, ledger, pipeline_repo, lambda d: drift.drop_column(d, "order_items", "discount"))
    answer = fix([{"path": JOB, "search": "i.discount", "replace": "0"}])
    with MessagesServer([answer]) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        outcome = heal(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)
    assert outcome.status == "declined"
    rule = f'policy: fixer "llm:claude-sonnet-4-5" denied by healer.yml:pipelines.{PIPELINE}.healing.fixers.deny'
    assert rule in outcome.reason
    assert outcome.llm == {"enabled": False, "reason": rule + " ('llm')"}
    assert server.requests == []  # the model was never asked
    assert "healer/" not in remote_heads(pipeline_repo)


@pytest.mark.spark
def test_a_candidate_touching_a_denied_file_is_refused_with_the_rule(spark, ledger, pipeline_repo):
    set_policy(pipeline_repo, repo_level="files: {deny: ['jobs/*.sql']}\n")
    break_it(spark, ledger, pipeline_repo, lambda d: drift.rename_column(d, "order_items", "unit_price", "item_price"))
    outcome = heal(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)
    assert outcome.status == "declined"
    refusal = f'policy: file "{JOB}" denied by healer.yml:healing.files.deny (\'jobs/*.sql\')'
    assert outcome.candidates and outcome.candidates[0]["reasons"] == [refusal]
    assert f"rule:renamed_column: {refusal}" in outcome.reason
    assert "healer/" not in remote_heads(pipeline_repo)


@pytest.mark.shadow
@pytest.mark.spark
@pytest.mark.slow
def test_mode_draft_makes_the_pr_a_draft_saying_where(spark, ledger, pipeline_repo, tmp_path, monkeypatch):
    org = tmp_path / "org.yml"
    org.write_text("healing:\n  budgets: {sandbox_seconds: 400}\n")
    monkeypatch.setenv("HEALER_POLICY_FILE", str(org))
    (pipeline_repo / ".github").mkdir()
    (pipeline_repo / ".github" / "CODEOWNERS").write_text(
        "# owners\n*.yml @platform\njobs/ @data-eng\n/jobs/revenue_*.sql @finance-lead @data-eng\n")
    subprocess.run(["git", "add", ".github"], cwd=pipeline_repo, check=True)
    set_policy(pipeline_repo, repo_level="pull_requests: {reviewers: [alice], labels: [healer-policy]}\n",
               pipeline_level="mode: draft\npull_requests: {assignees: [bob]}\n")
    break_it(spark, ledger, pipeline_repo, lambda d: drift.rename_column(d, "order_items", "unit_price", "item_price"))
    outcome = heal(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)
    assert outcome.status == "proposed" and outcome.fixer == "rule:renamed_column", outcome.reason
    assert outcome.validation["ready"] is True  # Healer's own verdict was ready: the draft is the policy's
    where = f"healer.yml:pipelines.{PIPELINE}.healing.mode"
    assert outcome.draft and f"policy: mode draft set by {where}" in outcome.reason
    pr = LocalForge(ledger).get(outcome.pr)
    assert pr.draft
    assert pr.body.startswith(f"> **Draft by policy:** mode draft set by {where}: every pull request is a draft.")
    # the local forge has no code owner review of its own: the job's owners are added as reviewers
    assert people.audience_of(ledger, pr.id) == Audience(reviewers=("alice", "finance-lead", "data-eng"),
                                                         labels=("healer-policy",), assignees=("bob",))
    sources = {r["name"]: r["source"] for r in ledger.select(people.audience_rows)}
    assert sources["alice"] == "healer.yml:healing.pull_requests.reviewers"
    assert sources["finance-lead"] == ".github/CODEOWNERS:4"


def test_code_owners_last_matching_line_wins(tmp_path):
    (tmp_path / "CODEOWNERS").write_text("* @everyone\n*.sql @sql-team\n/jobs/ @jobs-team\n"
                                         "docs/**/*.md @docs # trailing comment\n[Section]\nsecret.sql\n")
    found = people.code_owners(tmp_path, ["jobs/a.sql", "lib/b.sql", "x/docs/y/z.md", "healer.yml", "secret.sql"])
    assert found == {"jobs-team": "CODEOWNERS:3", "sql-team": "CODEOWNERS:2", "everyone": "CODEOWNERS:1"}
    assert people.code_owners(tmp_path, ["docs/a/b.md"]) == {"docs": "CODEOWNERS:4"}
    assert people.code_owners(tmp_path / "nowhere", ["a.sql"]) == {}


def test_daily_model_budgets_skip_the_model_with_the_reason(ledger, tmp_path, monkeypatch):
    from healer.fixers.llm import LLMFixer
    from healer.governance import audit
    from healer.governance.effective import effective
    from healer.llm_client import LLMConfig

    org = tmp_path / "org.yml"
    org.write_text("healing:\n  budgets: {model_tokens_per_day: 10000, model_cost_usd_per_day: 1.5}\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "healer.yml").write_text("pipelines: {}\nhealing:\n  budgets: {model_tokens_per_day: 3000}\n")
    rules = effective(repo, PIPELINE, Policy(), org=org)
    llm = LLMFixer(LLMConfig(api_key="test-key", base_url=None))

    def spend(repo_path, tokens, cost, when=None):
        event = audit.record(ledger, None, audit.Action.MODEL_REQUEST, pipeline=PIPELINE, repo=str(repo_path),
                             model="claude-sonnet-4-5", input_tokens=tokens, output_tokens=0, cost_usd=cost,
                             prompt_sha256="0" * 64)
        if when is not None:
            ledger.update(audit.audit_events, event.id, at=when)

    assert enforce.gate_model(llm, ledger, rules, PIPELINE, str(repo)) is llm
    spend(repo, 2500, 0.1, when=budgets.day_start() - dt.timedelta(hours=1))
    spend(tmp_path / "other-repo", 6000, 0.2)  # another repo's spend counts org-wide only
    assert enforce.gate_model(llm, ledger, rules, PIPELINE, str(repo)) is llm  # yesterday's 2500 do not count
    spend(repo, 3000, 0.3)
    off = enforce.gate_model(llm, ledger, rules, PIPELINE, str(repo))
    assert not off.enabled and off.off_reason() == (
        "policy: budget: 3,000 model tokens spent today (UTC, this repo), the most "
        "healer.yml:healing.budgets.model_tokens_per_day allows (3,000); the model fixer is skipped")
    other = effective(repo, PIPELINE, Policy(), org=org)
    spend(tmp_path / "other-repo", 0, 1.2)  # org-wide: 9000 tokens, $1.70
    reason = enforce.gate_model(llm, ledger, other, PIPELINE, str(tmp_path / "third-repo")).off_reason()
    assert reason == (f"policy: budget: $1.70 of model requests today (UTC, org-wide), the most "
                      f"{org}:healing.budgets.model_cost_usd_per_day allows ($1.50); the model fixer is skipped")


@pytest.mark.shadow
@pytest.mark.spark
@pytest.mark.slow
def test_auto_merge_merges_a_named_rule_fix_that_is_ready_and_identical(spark, ledger, pipeline_repo, tmp_path,
                                                                        monkeypatch):
    org = tmp_path / "org.yml"
    org.write_text("healing:\n  mode: auto_merge\n  auto_merge: {fixers: [rule:renamed_column]}\n")
    monkeypatch.setenv("HEALER_POLICY_FILE", str(org))
    break_it(spark, ledger, pipeline_repo, lambda d: drift.rename_column(d, "order_items", "unit_price", "item_price"))
    outcome = heal(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)
    assert outcome.status == "proposed" and outcome.fixer == "rule:renamed_column", outcome.reason
    assert outcome.validation["ready"] and outcome.validation["data_diff"]
    assert f"auto-merged by policy (mode auto_merge set by {org}:healing.mode; fixer named in " \
           f"{org}:healing.auto_merge.fixers)" in outcome.reason
    assert LocalForge(ledger).get(outcome.pr).status == "merged"
    merged_job = subprocess.run(["git", "show", f"main:{JOB}"], cwd=pipeline_repo.parent / "origin.git",
                                capture_output=True, text=True, check=True).stdout
    assert "i.item_price" in merged_job  # merged into the base branch on the remote
