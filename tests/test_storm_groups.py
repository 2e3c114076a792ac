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
    said: list[str] = []
    storm._settle(ledger, group, window=1.0, say=said.append)
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
    storm._settle(ledger, group, window=1.0, say=lambda _m: None)
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
