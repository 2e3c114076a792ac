"""The audit trail: every action of a real heal, in order, append-only, redacted; `healer audit`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from healer.errors import ConfigError
from healer.governance import audit
from healer.governance.audit import Action
from test_lease import pg_url  # noqa: F401 -- a fresh PostgreSQL database per test


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "healer.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


def test_record_redacts_and_reads_back_in_order(ledger):
    first = audit.record(ledger, 7, Action.CLONE, commit="abc", source="https://u:hunter2@git.example.com/r.git")
    second = audit.record(ledger, 7, "model_request", model="m", input_tokens=10, output_tokens=5, cost_usd=0.25,
                          prompt_sha256="ff", note="api_key=sk-ant-api03-" + "x" * 40)
    audit.record(ledger, 8, Action.PUSH, branch="b", sha="1")
    got = audit.events(ledger, heal_id=7)
    assert [e.id for e in got] == [first.id, second.id]
    assert [e.action for e in got] == [Action.CLONE, Action.MODEL_REQUEST]
    stored = json.dumps([e.to_json() for e in audit.events(ledger)])
    assert "hunter2" not in stored and "sk-ant-api03" not in stored
    [request] = audit.model_requests(ledger, since=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    assert (request.heal_id, request.input_tokens, request.output_tokens, request.cost_usd) == (7, 10, 5, 0.25)
    assert audit.events(ledger, since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)) == []
    with pytest.raises(ValueError):
        audit.record(ledger, 7, "made_up_action")
    # outside a heal, note() records nothing; inside, it records to that heal
    assert audit.note(Action.PUSH, branch="x") == []
    with audit.recording(ledger, 9):
        [noted] = audit.note(Action.PUSH, branch="x")
    assert noted.heal_id == 9


def test_since_accepts_ages_and_iso_times_and_says_what_is_wrong():
    now = dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc)
    assert audit.parse_since("7d", now) == now - dt.timedelta(days=7)
    assert audit.parse_since("90m", now) == now - dt.timedelta(minutes=90)
    assert audit.parse_since("2026-11-29T06:00", now) == dt.datetime(2026, 11, 29, 6, tzinfo=dt.timezone.utc)
    with pytest.raises(ConfigError, match="--since 'yesterday'"):
        audit.parse_since("yesterday", now)


@pytest.mark.shadow
@pytest.mark.spark
@pytest.mark.slow
def test_audit_of_the_demo_heal_lists_every_step_in_order_and_its_next_run_verifies_it(spark, ledger, pipeline_repo):
    """The demo's breakage healed for real; `healer audit --heal N --json` lists each step, in order.
    Then its verification (one real heal serves both: heals are the slow part): watched, unverified
    past the window, verified by the next run; seen in `healer prs`, `healer audit` and the heal page."""
    from healer.airflow import pages, views
    from healer.governance import breaker, verify
    from healer.runner.run import run_pipeline
    from test_governance_verify import PIPELINE, merged_heal

    pipeline = PIPELINE

    clone_commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pipeline_repo, capture_output=True, text=True,
                                  check=True).stdout.strip()
    outcome = merged_heal(spark, ledger, pipeline_repo)  # healed, then merged on the local forge

    proc = _cli("audit", "--heal", str(outcome.heal), "--json")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    actions = [e["action"] for e in lines]
    gates = [(e["detail"]["gate"], e["detail"]["passed"]) for e in lines if e["action"] == "gate"]
    # every step, in the order it happened (ids and times both increase)
    assert actions[:2] == ["heal_started", "clone"]
    assert actions.index("input_read") < actions.index("candidate") < actions.index("gate") < actions.index("push")
    assert actions[-3:] == ["pr_opened", "heal_finished", "pr_merged"]
    assert [e["id"] for e in lines] == sorted(e["id"] for e in lines)
    assert [e["at"] for e in lines] == sorted(e["at"] for e in lines)
    assert all(e["heal_id"] == outcome.heal and e["pipeline"] == pipeline for e in lines)
    assert gates == [("static", True), ("sample", True), ("shadow", True), ("readiness", True)]
    by = {e["action"]: e["detail"] for e in lines}
    assert by["clone"]["commit"] == clone_commit
    reads = {e["detail"]["input"]: e["detail"] for e in lines if e["action"] == "input_read"}
    assert set(reads) == {"order_items", "orders", "products"}
    assert reads["order_items"]["rows"] > 0 and reads["order_items"]["bytes"] > 0
    assert by["candidate"]["fixer"] == outcome.fixer
    shadow = next(e["detail"] for e in lines if e["action"] == "gate" and e["detail"]["gate"] == "shadow")
    assert shadow["rows_read"] >= reads["order_items"]["rows"]
    branch_sha = subprocess.run(["git", "ls-remote", "origin", outcome.branch], cwd=pipeline_repo,
                                capture_output=True, text=True, check=True).stdout.split()[0]
    assert (by["push"]["branch"], by["push"]["sha"]) == (outcome.branch, branch_sha)
    assert by["pr_opened"]["pr"] == outcome.pr and by["pr_merged"]["pr"] == outcome.pr
    assert by["heal_finished"]["status"] == "proposed"

    table = _cli("audit", "--heal", str(outcome.heal))
    assert table.returncode == 0 and "pr_merged" in table.stdout and f"#{outcome.heal}" in table.stdout
    bad = _cli("audit", "--since", "last tuesday", "--json")
    assert bad.returncode == 1 and bad.stderr.strip().startswith("healer: --since 'last tuesday'")
    assert json.loads(bad.stdout)["error"].startswith("--since")

    # -- after the merge: verification

    [watching] = verify.watch_merged(ledger)
    assert (watching.heal_id, watching.pr_id, watching.state) == (outcome.heal, outcome.pr, "watching")
    assert verify.check(ledger) == []  # no run yet, within the window: still watching
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=8)
    [late] = verify.check(ledger, now=later, window_days=7)
    assert late.verification.state == "unverified" and "within 7 days" in late.verification.reason

    good = run_pipeline(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)  # the hook judges it at once

    now = verify.state(ledger, outcome.heal)
    assert (now.state, now.run_id) == ("verified", good.id)
    assert [v.state for v in verify.history(ledger, outcome.heal)] == ["watching", "unverified", "verified"]
    assert breaker.paused(ledger, PIPELINE) is None
    prs = _cli("prs", "--all")
    assert prs.returncode == 0 and f"PR #{outcome.pr} [merged] " in prs.stdout and "[verified: run #" in prs.stdout
    trail = [json.loads(line) for line in _cli("audit", "--heal", str(outcome.heal), "--json").stdout.splitlines()]
    assert [e["detail"]["state"] for e in trail if e["action"] == "verification"] == \
        ["watching", "unverified", "verified"]
    # the Airflow heal page: a verification line and the audit timeline
    html = pages.render("heal", prefix="/healer", user="u", h=views.heal_detail(ledger, outcome.heal))
    assert '<dd id="verification"><span class="badge verified">verified</span> run #' in html
    timeline = html.split('<table id="audit">')[1].split("</table>")[0]
    assert timeline.count("<tr>") == len(trail) + 1 and timeline.index("clone") < timeline.index("pr_merged")


@pytest.mark.parametrize("keep", [False, True])
def test_each_model_request_is_recorded_with_tokens_cost_and_the_prompts_hash(keep, ledger, pipeline_repo, monkeypatch):
    """Through the real anthropic SDK and the local Messages API: one event per request, the prompt
    as its sha256 (its redacted text only with HEALER_AUDIT_PROMPTS=keep)."""
    import hashlib

    from messages_server import MessagesServer, fix
    from test_llm import BROKEN, JOB, NO_DISCOUNT, evidence_for, llm_for

    if keep:
        monkeypatch.setenv("HEALER_AUDIT_PROMPTS", "keep")
    samples = {"order_items": [{"order_id": 1, "note": "dsn postgresql://etl:s3cret-pw@db.internal:5432/prod"}]}
    ev = evidence_for(pipeline_repo, samples=samples)
    answers = [fix([{"path": JOB, "search": "i.discount * 2", "replace": "0"}]),
               fix([{"path": JOB, "search": BROKEN, "replace": NO_DISCOUNT}])]
    with MessagesServer(answers) as server, audit.recording(ledger, 41):
        session = llm_for(server).session(ev, pipeline_repo)
        assert session.propose() is not None
    requests = audit.events(ledger, heal_id=41, actions=(Action.MODEL_REQUEST,))
    assert len(requests) == len(server.requests) == 2
    assert sum(e.detail["input_tokens"] for e in requests) == session.usage.input_tokens > 0
    assert sum(e.detail["output_tokens"] for e in requests) == session.usage.output_tokens > 0
    assert round(sum(e.detail["cost_usd"] for e in requests), 6) == session.usage.cost_usd(session.model) > 0
    for event, sent in zip(requests, server.requests):
        body = sent["body"]
        prompt = json.dumps({"system": body["system"], "tools": body["tools"], "messages": body["messages"]},
                            sort_keys=True, default=str)
        assert event.detail["prompt_sha256"] == hashlib.sha256(prompt.encode()).hexdigest()
        assert event.detail["model"] == body["model"]
        assert ("prompt" in event.detail) is keep
    stored = json.dumps([e.to_json() for e in audit.events(ledger)])
    assert "s3cret-pw" not in stored
    if keep:
        assert "order_items" in requests[0].detail["prompt"]
    # what the policy's daily budgets sum
    spent = audit.model_requests(ledger, since=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    assert sum(r.input_tokens + r.output_tokens for r in spent) == session.usage.input_tokens + session.usage.output_tokens


@pytest.mark.postgres
def test_the_trail_and_verification_states_on_postgresql(pg_url):
    """The shared deployment's ledger: both append-only tables are created on an existing PostgreSQL ledger."""
    from healer.governance import verify
    from healer.ledger import Ledger, heals, utcnow

    ledger = Ledger(pg_url)
    heal_id = ledger.insert(heals, pipeline="p", repo="/r", status="proposed", started_at=utcnow())
    before = utcnow()
    audit.record(ledger, heal_id, Action.CLONE, commit="abc", source="postgresql://etl:pw-123@db/prod")
    audit.record(ledger, heal_id, Action.MODEL_REQUEST, model="m", input_tokens=7, output_tokens=3, cost_usd=0.01,
                 prompt_sha256="00")
    got = audit.events(ledger, heal_id=heal_id, since=before)
    assert [(e.action, e.pipeline, e.repo) for e in got] == [(Action.CLONE, "p", "/r"), (Action.MODEL_REQUEST, "p", "/r")]
    assert "pw-123" not in json.dumps(got[0].to_json()) and got[0].at.tzinfo is not None
    assert [r.input_tokens for r in audit.model_requests(ledger, since=before)] == [7]
    watching = verify.Verification(heal_id, None, "p", "/r", "watching", utcnow(), None, "", utcnow())
    verify._add(ledger, watching, "watching", None, "merged")
    verify._add(ledger, watching, "verified", 12, "run #12 succeeded")
    assert verify.state(ledger, heal_id).state == "verified"
    assert [v.state for v in verify.history(ledger, heal_id)] == ["watching", "verified"]
    assert [v.heal_id for v in verify.latest(ledger, ("verified",))] == [heal_id]


def test_a_heal_killed_mid_way_ends_on_its_trail_when_the_sweep_abandons_it(ledger):
    from healer.ledger import utcnow

    lease = ledger.take_lease("cause-k", {"run_id": 1, "pipeline": "p", "repo": "/r", "category": "unknown"}, seconds=1)
    audit.record(ledger, lease.heal_id, Action.CLONE, commit="abc")  # then the process is killed: no more events
    [gone] = ledger.abandon_expired(now=utcnow() + dt.timedelta(seconds=5))
    trail = audit.events(ledger, heal_id=lease.heal_id)
    assert [e.action for e in trail] == [Action.CLONE, Action.HEAL_FINISHED]
    assert trail[-1].detail["status"] == "abandoned" and trail[-1].detail["reason"] == gone.reason
