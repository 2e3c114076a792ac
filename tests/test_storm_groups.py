"""Storm groups in the ledger: who leads, who joins, who takes over a dead leader (no Spark here;
the heals themselves are covered by test_storm.py and, across Celery workers, test_celery_storm.py)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from healer import storm
from healer.errors import ConfigError
from healer.ledger import Ledger, RunRecord, utcnow


def _failure(ledger: Ledger, pipeline: str, repo: str, seconds_ago: float = 0.0) -> RunRecord:
    run = ledger.start_run(RunRecord(pipeline=pipeline, repo=repo))
    run.status, run.stage, run.error_class = "failed", "job", "UNRESOLVED_COLUMN"
    ledger.finish_run(run)
    when = utcnow() - dt.timedelta(seconds=seconds_ago)
    from healer.ledger import runs

    ledger.update(runs, run.id, started_at=when - dt.timedelta(seconds=30), finished_at=when)
    return ledger.get_run(run.id)


def _running(ledger: Ledger, pipeline: str, repo: str, seconds_ago: float) -> RunRecord:
    from healer.ledger import runs

    run = ledger.start_run(RunRecord(pipeline=pipeline, repo=repo))
    ledger.update(runs, run.id, started_at=utcnow() - dt.timedelta(seconds=seconds_ago))
    return ledger.get_run(run.id)


@pytest.fixture(params=["sqlite", "postgres"])
def shared_ledger(request, ledger):
    if request.param == "sqlite":
        yield ledger
        return
    pytest.importorskip("psycopg2")
    from benchmarks.fleet_deployment import _psql

    name = f"healer_storm_test_{threading.get_ident() % 100000}"
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{name}"')
    try:
        yield Ledger(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}")
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_failures_of_one_repo_arriving_at_once_join_one_group_with_one_leader(shared_ledger):
    storm.ensure_tables(shared_ledger)
    fails = [_failure(shared_ledger, f"p{i}", "/repos/a") for i in range(6)]
    other = _failure(shared_ledger, "q0", "/repos/b")
    roles: dict[int, tuple] = {}

    def arrive(run):  # each a worker's heal task reaching the ledger at the same moment
        roles[run.id] = storm._group_for(shared_ledger, run)

    threads = [threading.Thread(target=arrive, args=(r,)) for r in fails + [other]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a_groups = {roles[r.id][0].id for r in fails}
    assert len(a_groups) == 1  # one group for the repo, whoever came first
    assert sorted(role for _, role in (roles[r.id] for r in fails)) == ["leader"] + ["member"] * 5
    assert roles[other.id][1] == "leader" and roles[other.id][0].id not in a_groups  # a PR cannot span repos
    [gid] = a_groups
    assert sorted(m["run_id"] for m in storm.members(shared_ledger, gid)) == sorted(r.id for r in fails)
    assert storm.group_of(shared_ledger, fails[3].id).id == gid


def test_a_closed_group_takes_in_the_repos_failures_of_the_window_and_the_next_failure_opens_a_new_one(ledger):
    storm.ensure_tables(ledger)
    early = _failure(ledger, "p0", "/repos/a", seconds_ago=2.5)  # before the leader, within a window
    lead = _failure(ledger, "p1", "/repos/a", seconds_ago=2)
    stale = _failure(ledger, "p2", "/repos/a", seconds_ago=600)  # long before: not this storm
    group, role = storm._group_for(ledger, lead)
    assert role == "leader"
    storm._settle(ledger, group, window=1.0)
    ids = {m["run_id"] for m in storm.members(ledger, group.id)}
    assert ids == {early.id, lead.id} and stale.id not in ids
    assert ledger.get(storm.storm_groups, group.id)["status"] == "healing"
    late = _failure(ledger, "p3", "/repos/a")
    again, role = storm._group_for(ledger, late)
    assert role == "leader" and again.id != group.id


def test_a_group_waits_for_the_runs_that_started_with_its_failures_however_long_they_run(ledger):
    """Eight jobs start together; one fails at once, another only after a while: still one storm."""
    from healer.ledger import runs

    storm.ensure_tables(ledger)
    lead = _failure(ledger, "p0", "/repos/a", seconds_ago=5)  # started 35 s ago
    slow = _running(ledger, "p1", "/repos/a", seconds_ago=35.5)
    unrelated = _running(ledger, "p2", "/repos/a", seconds_ago=3)  # a later wave: not waited for
    group, _ = storm._group_for(ledger, lead)

    def fail_later():
        time.sleep(2.5)
        ledger.update(runs, slow.id, status="failed", finished_at=utcnow())

    threading.Thread(target=fail_later).start()
    t0 = time.monotonic()
    storm._settle(ledger, group, window=1.0)
    assert time.monotonic() - t0 >= 2.5  # waited for the slow one, and a quiet second after it
    ids = {m["run_id"] for m in storm.members(ledger, group.id)}
    assert ids == {lead.id, slow.id} and unrelated.id not in ids


def test_a_leader_that_stops_renewing_is_taken_over_by_a_waiting_member(ledger, monkeypatch):
    monkeypatch.setenv("HEALER_LEASE_SECONDS", "1")
    storm.ensure_tables(ledger)
    first, second = _failure(ledger, "p0", "/repos/a"), _failure(ledger, "p1", "/repos/a")
    group, _ = storm._group_for(ledger, first)
    # the leader's process dies here: nothing renews the group's lease
    ledger.update(storm.storm_groups, group.id, holder="elsewhere:4242")
    joined, role = storm._group_for(ledger, second)
    assert role == "member" and joined.id == group.id
    taken_group, taken = storm._await(ledger, joined)
    assert taken and taken_group.holder != "elsewhere:4242"
    row = ledger.get(storm.storm_groups, group.id)
    assert row["holder"] == taken_group.holder and row["expires_at"] > utcnow()


def test_the_storm_window_setting_is_checked():
    assert storm.storm_window({"HEALER_STORM_WINDOW": "7.5"}) == 7.5
    assert storm.storm_window({}) == 20.0
    with pytest.raises(ConfigError, match="HEALER_STORM_WINDOW"):
        storm.storm_window({"HEALER_STORM_WINDOW": "soon"})


# -- after the group: late failures, and the hand-offs of a group taken over ---------------------

def _heal_as_the_group_does(ledger: Ledger, group_id: int, failed: list[RunRecord]):
    """What a leader records when it heals its group (heal_storm): each member's heal under the lease
    of its cause, one storm PR for all of them, every heal pointing at it; then the group is done."""
    from healer.failure import from_run
    from healer.forges import LocalForge
    from healer.ledger import heals

    causes = [from_run(r) for r in failed]
    held = [ledger.take_lease(f.fingerprint, dict(run_id=f.run_id, pipeline=f.pipeline, repo=f.repo,
                                                  category=f.category)) for f in causes]
    pr = LocalForge(ledger).open(title=f"heal(storm): — {len(failed)} pipelines", body="b",
                                 branch=f"healer/storm/{group_id}", base="main", remote="r", draft=False,
                                 pipeline=",".join(sorted(r.pipeline for r in failed)), fingerprint="storm-cause",
                                 heal_id=held[0].heal_id)
    for lease, f in zip(held, causes):
        ledger.update(heals, lease.heal_id, status="proposed", reason="fixed in the storm PR", pr_id=pr.id,
                      branch=pr.branch, finished_at=utcnow(),
                      outcome={"pipeline": f.pipeline, "failure": f.run_id, "pr": pr.id, "branch": pr.branch,
                               "pr_url": pr.url, "fingerprint": f.fingerprint})
        lease.release()
    ledger.update(storm.storm_groups, group_id, status="done", finished_at=utcnow())
    return pr


def test_a_failure_after_its_repos_group_closed_is_healed_by_the_next_group_on_its_own(shared_ledger):
    """The README's promise: not lost, not folded into the closed group, and no second PR for a cause
    the storm PR already covers."""
    from healer.forges import LocalForge

    ledger = shared_ledger
    storm.ensure_tables(ledger)
    wave = [_failure(ledger, f"p{i}", "/repos/a", seconds_ago=3) for i in range(2)]
    group, role = storm._group_for(ledger, wave[0])
    assert role == "leader" and storm._group_for(ledger, wave[1]) == (group, "member")
    ledger.update(storm.storm_groups, group.id, status="healing", open_key=None)  # settled: closed
    pr = _heal_as_the_group_does(ledger, group.id, wave)

    # p1 runs again after the group closed and fails the same way: the storm PR already covers that cause
    again = _failure(ledger, "p1", "/repos/a")
    outcome = storm.heal_in_storm(again.id, ledger=ledger, window=0.5)
    late = storm.group_of(ledger, again.id)
    assert late.id != group.id and late.leader_run_id == again.id and late.status == "done"
    assert [m["run_id"] for m in storm.members(ledger, late.id)] == [again.id]  # on its own
    assert (outcome.status, outcome.duplicate, outcome.pr, outcome.failure) == ("proposed", True, pr.id, again.id)
    assert storm._final_heal(ledger, again.id)["pr_id"] == pr.id  # its outcome is in the ledger: not lost
    assert [p.id for p in LocalForge(ledger).list()] == [pr.id]  # no second PR of the same cause

    # a pipeline the storm did not cover fails later: its own group and its own heal, not the storm's PR
    # (here the heal ends in error, as /repos/a is not a repository; with a real repo it opens its own PR)
    other = _failure(ledger, "p2", "/repos/a")
    outcome = storm.heal_in_storm(other.id, ledger=ledger, window=0.5)
    own = storm.group_of(ledger, other.id)
    assert own.id not in (group.id, late.id) and [m["run_id"] for m in storm.members(ledger, own.id)] == [other.id]
    final = storm._final_heal(ledger, other.id)
    assert final is not None and final["id"] == outcome.heal and final["pr_id"] != pr.id
    assert not outcome.duplicate and outcome.pr != pr.id
    assert [p.id for p in LocalForge(ledger).list()] == [pr.id]
    assert {m["run_id"] for m in storm.members(ledger, group.id)} == {r.id for r in wave}  # the closed group kept


def _handed_off(ledger: Ledger, run: RunRecord) -> int:
    """The failing Airflow task's hand-off of ``run``, claimed by a healer DAG run (``healing``)."""
    from healer.airflow import queue

    handoff = queue.enqueue(ledger, run.id, queue.TaskKey("etl", run.pipeline, "scheduled-1", 1), pipeline=run.pipeline,
                            source="callback", healer_dag_id="healer")
    assert queue.claim(ledger, f"healer-run-{run.id}", failure=run.id) == [run.id]
    return handoff


@pytest.mark.parametrize("sweep_at", ["while-the-group-is-led", "before-the-takeover"])
@pytest.mark.parametrize("retried", [True, False], ids=["killed-task-retried", "no-retry"])
def test_the_hand_off_of_a_killed_heal_ends_with_the_outcome_the_group_gave_its_failure(shared_ledger, monkeypatch,
                                                                                       sweep_at, retried):
    """A worker is killed while its heal leads a group; another process takes the group over and heals
    the dead heal's failure too. The sweep (every healer DAG run's claim) must not leave that failure's
    hand-off `abandoned`: it ends with the failure's final outcome, whether the killed task is retried or not."""
    from healer.airflow import queue
    from healer.airflow.dag import sweep
    from healer.failure import from_run
    from healer.ledger import heals

    ledger = shared_ledger
    storm.ensure_tables(ledger)
    dead_run, member_run = _failure(ledger, "p0", "/repos/a"), _failure(ledger, "p1", "/repos/a")
    handoffs = {r.id: _handed_off(ledger, r) for r in (dead_run, member_run)}
    group, role = storm._group_for(ledger, dead_run)
    assert role == "leader"
    ledger.update(storm.storm_groups, group.id, status="healing", open_key=None)  # settled, then healing...
    storm._join(ledger, group.id, member_run)
    f = from_run(dead_run)
    dead = ledger.take_lease(f.fingerprint, dict(run_id=f.run_id, pipeline=f.pipeline, repo=f.repo,
                                                 category=f.category), seconds=0.3)
    # ...when its worker is killed: neither the heal's lease nor the group's is renewed again
    ledger.update(storm.storm_groups, group.id, holder="killed-worker:4242", expires_at=utcnow())
    time.sleep(0.5)

    monkeypatch.setenv("HEALER_LEASE_SECONDS", "60")
    if sweep_at == "before-the-takeover":
        [gone] = sweep(ledger)  # nobody leads the group now: the dead heal's hand-off is closed as abandoned
        assert gone.heal_id == dead.heal_id
    taken_group, taken = storm._await(ledger, group)  # the member's heal task takes the group over
    assert taken
    if sweep_at == "while-the-group-is-led":
        [gone] = sweep(ledger)
        assert gone.heal_id == dead.heal_id and ledger.get(heals, dead.heal_id)["status"] == "abandoned"
        # the group's new leader will heal this failure: its hand-off is not closed as abandoned
        assert ledger.get(queue.handoffs, handoffs[dead_run.id])["status"] == queue.HEALING
    pr = _heal_as_the_group_does(ledger, group.id, [dead_run, member_run])

    # each heal task closes its hand-off with what the group recorded for its failure (dag.heal_one)
    tasks = [member_run] + ([dead_run] if retried else [])  # the killed task's retry, when it gets one
    for run in tasks:
        outcome = storm.heal_in_storm(run.id, ledger=ledger, window=0.5)
        assert (outcome.status, outcome.pr) == ("proposed", pr.id)
        queue.finish(ledger, run.id, heal_id=outcome.heal, outcome=outcome.status)
        assert ledger.get(queue.handoffs, handoffs[run.id])["outcome"] == "proposed"  # at once, not at the next sweep
    sweep(ledger)  # the next healer DAG run

    for run in (dead_run, member_run):
        final = storm._final_heal(ledger, run.id)
        assert (final["status"], final["pr_id"]) == ("proposed", pr.id)
        row = ledger.get(queue.handoffs, handoffs[run.id])
        assert (row["status"], row["outcome"], row["heal_id"]) == (queue.DONE, "proposed", final["id"]), run.pipeline
