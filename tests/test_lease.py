"""One heal per root cause at a time, across processes: the ledger's lease, on SQLite and PostgreSQL.

The ledger tests take leases directly (fast). The process tests run real `healer heal`
subprocesses on one broken pipeline: five at once open one pull request; a SIGKILLed heal is
``abandoned`` once its lease expires; a SIGTERMed heal cleans up and is not left ``running``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from healer.errors import LedgerError, RunFailed
from healer.failure import from_run
from healer.forges import LocalForge
from healer.ledger import Lease, Ledger, LeaseRow, RunRecord, heals, prs, utcnow
from healer.runner.run import run_pipeline
from pipelines import drift

ROOT = Path(__file__).resolve().parents[1]
HEALER = ROOT / ".venv" / "bin" / "healer"
PG = "postgresql://postgres@127.0.0.1:5432"


# -- ledgers ---------------------------------------------------------------------------------
@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped after it."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"local PostgreSQL unreachable on 127.0.0.1:5432: {str(exc).strip().splitlines()[0]}")
    admin.autocommit = True
    name = f"healer_lease_{uuid.uuid4().hex[:10]}"
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    try:
        yield url
    finally:
        from healer import ledger as ledger_module

        engine = ledger_module._engines.pop(url, None)
        if engine is not None:
            engine.dispose()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path, monkeypatch):
    """The ledger's URL, exported as HEALER_LEDGER_URL for this process and its subprocesses."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("HEALER_HOME", str(tmp_path / "healer-home"))
    monkeypatch.setenv("HEALER_LEDGER_URL", url)
    return url


def heal_row(**values) -> dict:
    return {"run_id": 1, "pipeline": "p", "category": "unresolved_column", **values}


def test_one_lease_per_cause_and_the_heals_row_comes_with_it(ledger_url):
    ledger = Ledger(ledger_url)
    first = ledger.take_lease("cause-a", heal_row())
    second = ledger.take_lease("cause-a", heal_row())
    other = ledger.take_lease("cause-b", heal_row())
    assert isinstance(first, Lease) and isinstance(other, Lease)
    assert isinstance(second, LeaseRow) and second.heal_id == first.heal_id and second.holder == first.holder
    assert f":{os.getpid()}" in first.holder
    # the loser wrote nothing; the holder's row is running
    rows = ledger.select(heals, order_desc=False)
    assert [(r["id"], r["fingerprint"], r["status"]) for r in rows] == [
        (first.heal_id, "cause-a", "running"), (other.heal_id, "cause-b", "running")]
    first.release()
    third = ledger.take_lease("cause-a", heal_row())
    assert isinstance(third, Lease) and third.heal_id != first.heal_id and third.took_over is None


def test_racing_threads_one_winner(ledger_url):
    ledger = Ledger(ledger_url)
    barrier, won = threading.Barrier(8), []

    def race():
        barrier.wait()
        got = ledger.take_lease("cause", heal_row())
        if isinstance(got, Lease):
            won.append(got.heal_id)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert [r["id"] for r in ledger.select(heals)] == won


def test_an_expired_lease_is_taken_over_and_its_heal_abandoned(ledger_url):
    ledger = Ledger(ledger_url)
    dead = ledger.take_lease("cause", heal_row(), seconds=0.3)  # never renewed: its process "died"
    assert isinstance(ledger.take_lease("cause", heal_row()), LeaseRow)
    time.sleep(0.4)
    heir = ledger.take_lease("cause", heal_row(), seconds=30)
    assert isinstance(heir, Lease) and heir.took_over.heal_id == dead.heal_id
    row = ledger.get(heals, dead.heal_id)
    assert row["status"] == "abandoned" and row["finished_at"] is not None
    assert f"({dead.holder}) stopped renewing" in row["reason"] and f"heal #{heir.heal_id} took" in row["reason"]
    # the dead heal, were it only stalled, finds out before it proposes anything
    assert dead.renew() is False
    with pytest.raises(LedgerError, match=rf"heal #{dead.heal_id} lost the lease"):
        dead.check()
    heir.check()
    assert ledger.lease("cause").heal_id == heir.heal_id


def test_a_renewed_lease_outlives_its_length(ledger_url):
    ledger = Ledger(ledger_url)
    lease = ledger.take_lease("cause", heal_row(), seconds=0.6).keep_alive()
    time.sleep(1.5)
    assert isinstance(ledger.take_lease("cause", heal_row()), LeaseRow)
    assert ledger.abandon_expired() == []
    lease.release()
    assert ledger.lease("cause") is None and ledger.leases() == []


def test_the_sweep_abandons_expired_and_leaseless_running_heals(ledger_url, monkeypatch):
    ledger = Ledger(ledger_url)
    dead = ledger.take_lease("dead", heal_row(run_id=7), seconds=0.2)
    alive = ledger.take_lease("alive", heal_row(), seconds=60)
    # a heal recorded `running` by a Healer without leases, and killed long ago
    old = ledger.insert(heals, run_id=8, pipeline="p", fingerprint="old", status="running", started_at=utcnow())
    monkeypatch.setenv("HEALER_LEASE_SECONDS", "0.1")
    time.sleep(0.3)
    swept = ledger.abandon_expired()
    assert sorted((a.heal_id, a.run_id) for a in swept) == sorted([(dead.heal_id, 7), (old, 8)])
    assert {ledger.get(heals, i)["status"] for i in (dead.heal_id, old)} == {"abandoned"}
    assert ledger.get(heals, alive.heal_id)["status"] == "running"
    assert [l.fingerprint for l in ledger.leases()] == ["alive"]
    assert ledger.abandon_expired() == []  # nothing twice


def test_the_healer_dag_sweep_closes_the_hand_off_of_an_abandoned_heal(ledger_url):
    from healer.airflow import queue
    from healer.airflow.dag import sweep

    ledger = Ledger(ledger_url)
    handoff = queue.enqueue(ledger, 7, queue.TaskKey("etl", "revenue", "run-1", 1), pipeline="p", source="callback",
                            healer_dag_id="healer")
    assert queue.claim(ledger, "healer-run-1", failure=7) == [7]
    dead = ledger.take_lease("cause", heal_row(run_id=7), seconds=0.2)
    time.sleep(0.3)
    [abandoned] = sweep(ledger)
    assert abandoned.heal_id == dead.heal_id
    row = ledger.get(queue.handoffs, handoff)
    assert (row["status"], row["heal_id"], row["outcome"]) == ("done", dead.heal_id, "abandoned")


def test_lease_settings_are_checked(monkeypatch):
    from healer.errors import ConfigError
    from healer.ledger import lease_seconds, lease_wait_seconds

    assert (lease_seconds(), lease_wait_seconds()) == (180.0, 300.0)
    monkeypatch.setenv("HEALER_LEASE_SECONDS", "0")
    with pytest.raises(ConfigError, match=r"HEALER_LEASE_SECONDS='0': expected a number of seconds > 0"):
        lease_seconds()
    monkeypatch.delenv("HEALER_LEASE_SECONDS")  # every setting is parsed at once: one bad value at a time
    monkeypatch.setenv("HEALER_LEASE_WAIT", "soon")
    with pytest.raises(ConfigError, match="HEALER_LEASE_WAIT='soon'"):
        lease_wait_seconds()


# -- a heal's wait for the holder of its cause (healer.heal._take_lease) ---------------------
@pytest.fixture
def failure(ledger_url):
    record = RunRecord(pipeline="revenue_by_category", repo="/nowhere", status="failed", stage="job",
                       error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION", error_params={"objectName": "`i`.`unit_price`"},
                       error_message="[UNRESOLVED_COLUMN.WITH_SUGGESTION] `i`.`unit_price` cannot be resolved",
                       started_at=utcnow())
    ledger = Ledger(ledger_url)
    ledger.start_run(record)
    ledger.finish_run(record)
    return from_run(record)


def _finish_later(ledger: Ledger, lease: Lease, failure, *, with_pr: bool, after: float = 0.8) -> threading.Thread:
    """The holder ends while the other heal waits: with a PR, or declined."""

    def finish():
        time.sleep(after)
        pr = LocalForge(ledger).open(title="t", body="b", branch="healer/x", base="main", remote="r", draft=False,
                                     pipeline=failure.pipeline, fingerprint=failure.fingerprint,
                                     heal_id=lease.heal_id) if with_pr else None
        ledger.update(heals, lease.heal_id, status="proposed" if pr else "declined", pr_id=pr.id if pr else None,
                      reason="fixed" if pr else "no candidate passed the sandbox", finished_at=utcnow())
        lease.release()

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def _said(caplog) -> list[str]:
    """What the heal said on its logger (what `healer heal` shows on stderr)."""
    return [r.getMessage() for r in caplog.records if r.name == "healer.heal"]


@pytest.mark.parametrize("with_pr", [True, False], ids=["holder-opens-pr", "holder-declines"])
def test_a_waiting_heal_returns_the_holders_result_as_a_duplicate(ledger_url, failure, with_pr, caplog):
    from healer.heal import _take_lease

    caplog.set_level(logging.INFO, logger="healer.heal")
    ledger = Ledger(ledger_url)
    holder = ledger.take_lease(failure.fingerprint, heal_row(run_id=failure.run_id)).keep_alive()
    finisher = _finish_later(ledger, holder, failure, with_pr=with_pr)
    lease, outcome = _take_lease(failure, ledger)
    finisher.join()
    said = _said(caplog)
    assert lease is None and outcome.duplicate and outcome.duplicate_of == holder.heal_id
    if with_pr:
        [pr] = LocalForge(ledger).list()
        assert (outcome.status, outcome.pr, outcome.branch) == ("proposed", pr.id, "healer/x")
    else:
        assert outcome.status == "skipped"
        assert outcome.reason == (f"heal #{holder.heal_id} of this cause ran at the same time and ended declined: "
                                  "no candidate passed the sandbox")
    assert said == [f"heal #{holder.heal_id} ({holder.holder}) is healing this cause; waiting up to 300s for its result"]
    assert [r["id"] for r in ledger.select(heals)] == [holder.heal_id]  # the waiter's row is written by its caller
    assert ledger.leases() == []


def test_a_heal_that_waits_too_long_is_skipped_naming_the_holder(ledger_url, failure, monkeypatch):
    from healer.heal import EXIT_CODES, _take_lease

    monkeypatch.setenv("HEALER_LEASE_WAIT", "0.5")
    ledger = Ledger(ledger_url)
    holder = ledger.take_lease(failure.fingerprint, heal_row(run_id=failure.run_id)).keep_alive()
    t0 = time.monotonic()
    lease, outcome = _take_lease(failure, ledger)
    assert 0.5 <= time.monotonic() - t0 < 3
    assert lease is None and (outcome.status, outcome.duplicate, outcome.duplicate_of) == ("skipped", True, holder.heal_id)
    assert outcome.reason.startswith(f"heal #{holder.heal_id} of this cause is still running ({holder.holder}, lease renewed ")
    assert outcome.exit_code == 3 and EXIT_CODES["abandoned"] == 1
    holder.release()


def test_a_dead_holder_is_taken_over_by_the_next_heal(ledger_url, failure, monkeypatch, caplog):
    from healer.heal import _take_lease

    caplog.set_level(logging.INFO, logger="healer.heal")
    ledger = Ledger(ledger_url)
    dead = ledger.take_lease(failure.fingerprint, heal_row(run_id=failure.run_id), seconds=0.5)
    lease, outcome = _take_lease(failure, ledger)
    said = _said(caplog)
    assert outcome is None and lease.took_over.heal_id == dead.heal_id
    assert ledger.get(heals, dead.heal_id)["status"] == "abandoned"
    assert said[-1] == f"heal #{dead.heal_id} of this cause died ({dead.holder}); marked abandoned"
    lease.release()


# -- real `healer heal` processes --------------------------------------------------------------
def break_revenue(spark, ledger: Ledger, repo: Path) -> int:
    """A good run, then the upstream rename that breaks it: the failure to heal."""
    run_pipeline(repo, "revenue_by_category", spark=spark, ledger=ledger)
    drift.rename_column(repo / "data", "order_items", "unit_price", "item_price")
    with pytest.raises(RunFailed) as failed:
        run_pipeline(repo, "revenue_by_category", spark=spark, ledger=ledger)
    return failed.value.run.id


def start_heal(repo: Path, tmp: Path, **env) -> subprocess.Popen:
    """`healer heal --json` in its own process group (its Spark JVM with it), temp dirs under ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, "TMPDIR": str(tmp), **env}
    return subprocess.Popen([str(HEALER), "heal", "--json", "--repo", str(repo), "--pipeline", "revenue_by_category"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(what, timeout: float, proc: subprocess.Popen | None = None, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the heal ended (exit {proc.returncode}) first: {proc.stderr.read()[-2000:]}")
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s")


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(f"{cmdline.parent.name}: {args[:200]}")
    return found


def remote_heads(repo: Path) -> list[str]:
    out = subprocess.run(["git", "ls-remote", "--heads", "origin"], cwd=repo, capture_output=True, text=True, check=True)
    return sorted(line.split("refs/heads/")[1] for line in out.stdout.splitlines())


@pytest.mark.slow
@pytest.mark.spark
def test_five_concurrent_heals_open_one_pull_request(spark, ledger_url, pipeline_repo, tmp_path):
    ledger = Ledger(ledger_url)
    failure = break_revenue(spark, ledger, pipeline_repo)
    procs = [start_heal(pipeline_repo, tmp_path / f"tmp{i}", HEALER_LEASE_WAIT="540") for i in range(5)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            kill_group(p)
    outcomes = []
    for p, (stdout, stderr) in zip(procs, outs):
        assert stdout.strip(), f"exit {p.returncode}, no JSON: {stderr[-2000:]}"
        outcomes.append(json.loads(stdout.strip().splitlines()[-1]))
        assert p.returncode == 0, (outcomes[-1]["status"], outcomes[-1]["reason"])

    [pr] = ledger.select(prs)
    assert pr["status"] == "open" and pr["fingerprint"] == outcomes[0]["fingerprint"]
    [healer_made] = [o for o in outcomes if not o["duplicate"]]
    assert (healer_made["status"], healer_made["pr"], healer_made["heal"]) == ("proposed", pr["id"], pr["heal_id"])
    for o in outcomes:
        assert (o["status"], o["pr"], o["branch"], o["failure"]) == ("proposed", pr["id"], pr["branch"], failure)
        assert o["duplicate"] == (o is not healer_made)
    assert sum(1 for o in outcomes if o["duplicate"] and o["duplicate_of"] == pr["heal_id"]) == 4
    rows = ledger.select(heals, heals.c.run_id == failure)
    assert sorted(r["status"] for r in rows) == ["proposed"] * 5
    assert ledger.leases() == []
    assert remote_heads(pipeline_repo) == sorted(["main", pr["branch"]])


@pytest.mark.slow
@pytest.mark.spark
def test_a_sigkilled_heal_is_abandoned_once_its_lease_expires(spark, ledger, pipeline_repo, tmp_path):
    break_revenue(spark, ledger, pipeline_repo)
    proc = start_heal(pipeline_repo, tmp_path / "tmp", HEALER_LEASE_SECONDS="2")
    try:
        [lease] = wait_for(ledger.leases, 120, proc)  # the heal took its lease and works
        time.sleep(1.5)  # past its first renewal
        kill_group(proc)
        proc.wait(30)
    finally:
        kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    assert ledger.get(heals, lease.heal_id)["status"] == "running"  # nobody knows yet

    wait_for(lambda: ledger.lease(lease.fingerprint).expires_at < utcnow(), 5)
    env = {**os.environ, "HEALER_HOME": os.environ["HEALER_HOME"]}
    swept = subprocess.run([str(HEALER), "sweep"], capture_output=True, text=True, env=env, timeout=120)
    assert swept.returncode == 0, swept.stderr
    row = ledger.get(heals, lease.heal_id)
    assert row["status"] == "abandoned" and row["finished_at"] is not None
    assert swept.stdout.startswith(f"heal #{lease.heal_id} (failure #{row['run_id']}) abandoned: its process "
                                   f"({lease.holder}) stopped renewing the lease"), swept.stdout
    assert ledger.leases() == []


@pytest.mark.slow
@pytest.mark.spark
def test_a_sigtermed_heal_removes_its_temp_dirs_and_is_not_left_running(spark, ledger, pipeline_repo, tmp_path):
    break_revenue(spark, ledger, pipeline_repo)
    tmp = tmp_path / "tmp"
    workspaces = Path(os.environ["HEALER_HOME"]) / "workspaces"

    def both_dirs():  # the clone, and a sandbox (in the heal's scratch) whose first worker process has started
        sandboxes = list(tmp.glob("healer-heal-*/healer-sandbox-*/runs/*")) if tmp.exists() else []
        clones = list(workspaces.iterdir()) if workspaces.exists() else []
        return (sandboxes, clones) if sandboxes and clones else None

    proc = start_heal(pipeline_repo, tmp)
    try:
        sandboxes, clones = wait_for(both_dirs, 180, proc, step=0.05)
        proc.send_signal(signal.SIGTERM)  # to the heal's process only, as `kill PID` does
        _, stderr = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert not any(p.exists() for p in sandboxes + clones), stderr[-2000:]
    assert list(tmp.glob("healer-heal-*")) == [] and list(workspaces.iterdir()) == []  # the heal's scratch went
    assert processes_mentioning(str(tmp)) == []  # the sandbox's worker went with it
    [row] = ledger.select(heals)
    assert row["status"] == "abandoned", row
    assert row["reason"] == "the heal was stopped before it finished: terminated by SIGTERM"
    assert ledger.leases() == []
