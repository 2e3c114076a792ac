"""Storms across workers: one upstream change breaks many pipelines, their failures reach
different workers at slightly different moments, and each root cause still gets one PR.

    the heal of failure F (any worker, any process)
      ├─ F is a member of a group ──────────► wait for the group; F's outcome is the one it recorded
      ├─ a group of F's repo is settling ───► join it, and wait likewise
      └─ none ──► open one and lead it: settle (while the repo's runs that started with
                  this one still run, and until its last failure is HEALER_STORM_WINDOW
                  seconds old), close it, take in that wave's failures, heal them together
                  (``heal_storm``: fixes sharing a root cause go in one PR, the others in
                  their own), record every member's outcome

A group is a row in the ledger with a lease like a heal's: the leader renews it while it
settles and heals; when the leader's worker dies the lease expires, and the next member heal
(or the killed task's retry) takes the group over and heals the members left without an
outcome. A member the group could not heal (its pipeline ran again meanwhile) is healed on
its own. Groups are per repository: a pull request cannot span two repos.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from healer.ledger import FINAL_STATUSES, Ledger, UTCDateTime, heals, holder_name, lease_seconds, metadata, utcnow
from healer.settings import Settings

log = logging.getLogger(__name__)  # also a storm's progress, at INFO (healer.logs.PROGRESS)

Status = Literal["settling", "healing", "done"]
Role = Literal["leader", "member"]

storm_groups = sa.Table(
    "storm_groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.Text, nullable=False),
    # set while the group settles, so a repo has one open group: inserting it is opening it
    sa.Column("open_key", sa.String(64), unique=True),
    sa.Column("status", sa.String(20), nullable=False),  # settling | healing | done
    sa.Column("leader_run_id", sa.Integer, nullable=False),
    sa.Column("holder", sa.String(300), nullable=False),  # host:pid of the leading heal
    sa.Column("opened_at", UTCDateTime()),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
)

storm_members = sa.Table(
    "storm_members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("group_id", sa.Integer, nullable=False, index=True),
    sa.Column("run_id", sa.Integer, nullable=False, unique=True),  # a failure belongs to one group
    sa.Column("pipeline", sa.String(200)),
    sa.Column("joined_at", UTCDateTime()),
)


@dataclass(frozen=True)
class Group:
    id: int
    repo: str
    status: Status
    leader_run_id: int
    holder: str
    opened_at: dt.datetime
    expires_at: dt.datetime


def storm_window(env=None) -> float:
    """``HEALER_STORM_WINDOW``: seconds without a new failure of the repo before its group is healed."""
    return Settings.from_env(env).storm_window


def ensure_tables(ledger: Ledger) -> None:
    """The storm tables on a ledger opened before this module was imported."""
    for table in (storm_groups, storm_members):
        ledger.ensure(table)


def heal_in_storm(failure_id: int, *, ledger: Ledger | None = None, window: float | None = None, **heal_kwargs):
    """Heal one failure as part of its repo's storm; its Outcome (see the module's picture).

    ``heal_kwargs`` go to ``heal_storm``/``heal`` (spark, policy, forge, fixers, llm).
    """
    from healer.heal import Outcome

    ledger = ledger or Ledger()
    ensure_tables(ledger)
    window = storm_window() if window is None else window
    run = ledger.get_run(failure_id)
    if run is None:
        return Outcome("error", f"no run #{failure_id} in the ledger {ledger.url}", failure=failure_id)
    if run.status != "failed":
        return Outcome("error", f"run #{run.id} did not fail (status {run.status})", pipeline=run.pipeline,
                       failure=run.id)
    group, role = _group_for(ledger, run)
    log.info("storm group #%s of %s: %s", group.id, run.repo, role)
    while True:
        if role == "leader":
            if not _lead(ledger, group, window, heal_kwargs):
                role = "member"
                continue
        else:
            group, taken = _await(ledger, group)
            if taken:
                log.info("storm group #%s: its leader (%s) died; taking it over", group.id, group.holder)
                role = "leader"
                continue
        return _member_outcome(ledger, group, run, heal_kwargs)


# -- membership ---------------------------------------------------------------------------------

def _open_key(repo: str) -> str:
    return hashlib.sha256(repo.encode()).hexdigest()[:64]


def _group_for(ledger: Ledger, run) -> tuple[Group, Role]:
    """The group this failure belongs to, joining or opening one; and this heal's role in it."""
    for _ in range(20):  # groups close and open between our steps: look again
        member = ledger.select(storm_members, storm_members.c.run_id == run.id, limit=1)
        if member:
            return _group(ledger, member[0]["group_id"]), "member"
        settling = ledger.select(storm_groups, storm_groups.c.open_key == _open_key(run.repo), limit=1)
        if settling:
            if _join(ledger, settling[0]["id"], run):
                return _row_group(settling[0]), "member"
            continue
        now = utcnow()
        try:
            with ledger.engine.begin() as conn:
                group_id = conn.execute(storm_groups.insert().values(
                    repo=run.repo, open_key=_open_key(run.repo), status="settling", leader_run_id=run.id,
                    holder=holder_name(), opened_at=now, expires_at=now + _lease())).inserted_primary_key[0]
                conn.execute(storm_members.insert().values(group_id=group_id, run_id=run.id, pipeline=run.pipeline,
                                                           joined_at=now))
        except IntegrityError:
            continue  # another heal opened the repo's group, or took this failure in, at the same moment
        return _group(ledger, group_id), "leader"
    raise RuntimeError(f"storm groups of {run.repo} changed 20 times while failure #{run.id} looked for one")


def _join(ledger: Ledger, group_id: int, run) -> bool:
    try:
        with ledger.engine.begin() as conn:
            conn.execute(storm_members.insert().values(group_id=group_id, run_id=run.id, pipeline=run.pipeline,
                                                       joined_at=utcnow()))
        return True
    except IntegrityError:
        return False


def _group(ledger: Ledger, group_id: int) -> Group:
    return _row_group(ledger.get(storm_groups, group_id))


def _row_group(row: dict) -> Group:
    return Group(row["id"], row["repo"], row["status"], row["leader_run_id"], row["holder"], row["opened_at"],
                 row["expires_at"])


def members(ledger: Ledger, group_id: int) -> list[dict]:
    return ledger.select(storm_members, storm_members.c.group_id == group_id, order_desc=False, limit=10000)


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=lease_seconds())


# -- leading ------------------------------------------------------------------------------------

class _KeepAlive:
    """Renews the group's lease from a daemon thread while this process leads it."""

    def __init__(self, ledger: Ledger, group_id: int):
        self.ledger, self.group_id, self._stop = ledger, group_id, threading.Event()
        threading.Thread(target=self._beat, name=f"healer-storm-{group_id}", daemon=True).start()

    def _beat(self) -> None:
        while not self._stop.wait(lease_seconds() / 3):
            try:
                self.renew()
            except Exception as exc:  # the database may be back before the lease runs out
                log.warning("storm group #%s: could not renew its lease: %s", self.group_id, exc)

    lost = False  # another process took the group over: this one stalled past its lease

    def renew(self) -> None:
        with self.ledger.engine.begin() as conn:
            renewed = conn.execute(storm_groups.update().where(storm_groups.c.id == self.group_id,
                                                               storm_groups.c.holder == holder_name())
                                   .values(expires_at=utcnow() + _lease())).rowcount
        if not renewed:
            self.lost = True
            self._stop.set()
            log.warning("storm group #%s: lost its lease to another process", self.group_id)

    def stop(self) -> None:
        self._stop.set()


def _lead(ledger: Ledger, group: Group, window: float, heal_kwargs) -> bool:
    """Settle and heal the group; False when another process took it over meanwhile (it heals it)."""
    keep = _KeepAlive(ledger, group.id)
    try:
        if group.status == "settling":
            _settle(ledger, group, window)
        keep.renew()  # a leader that stalled past its lease while settling must not heal beside its successor
        if keep.lost:
            log.info("storm group #%s: another process took it over while this one settled; waiting for it", group.id)
            return False
        pending = [m for m in members(ledger, group.id) if _final_heal(ledger, m["run_id"]) is None]
        if len(pending) == 1:
            from healer.heal import heal

            heal(group.repo, failure_id=pending[0]["run_id"], ledger=ledger, **heal_kwargs)
        elif pending:
            from healer.heal import heal_storm

            names = sorted({m["pipeline"] for m in pending})
            log.info("storm group #%s: healing %d failure(s) of %s: %s", group.id, len(pending), group.repo,
                     ", ".join(names))
            heal_storm(group.repo, names, ledger=ledger, **heal_kwargs)
        with ledger.engine.begin() as conn:
            conn.execute(storm_groups.update().where(storm_groups.c.id == group.id)
                         .values(status="done", finished_at=utcnow()))
        return True
    finally:
        keep.stop()


def _settle(ledger: Ledger, group: Group, window: float) -> None:
    """Wait for the storm to blow over, then close the group and take its failures in.

    A storm is the repo's runs that started together (each within ``window`` seconds of the
    next, around the leader's): one upstream change fails them all, however long each ran
    before failing. The group waits while any of them still runs and until the last failure
    is ``window`` seconds old (at most ten windows after it began to settle)."""
    leader = ledger.get_run(group.leader_run_id)
    cap = time.monotonic() + 10 * window
    while True:
        failed, running = _wave(ledger, group.repo, leader, window)
        latest = max((r.finished_at for r in failed if r.finished_at), default=group.opened_at)
        quiet = (utcnow() - latest).total_seconds()
        if (quiet >= window and not running) or time.monotonic() >= cap:
            break
        time.sleep(1.0)
    with ledger.engine.begin() as conn:
        # closed: failures from now on open the repo's next group
        conn.execute(storm_groups.update().where(storm_groups.c.id == group.id)
                     .values(status="healing", open_key=None))
    for run in _wave(ledger, group.repo, leader, window)[0]:
        if _join(ledger, group.id, run):
            log.info("storm group #%s: took in failure #%s of %s", group.id, run.id, run.pipeline)


def _wave(ledger: Ledger, repo: str, leader, window: float) -> tuple[list, list]:
    """The repo's runs that started with ``leader`` (chained by start gaps of at most ``window``):
    (its failures without an outcome, the runs still running)."""
    runs_ = sorted((r for r in ledger.runs(repo=repo, limit=500) if r.started_at and (
        r.id == leader.id or r.status == "running" or (r.status == "failed" and _final_heal(ledger, r.id) is None))),
        key=lambda r: r.started_at)
    at = next((i for i, r in enumerate(runs_) if r.id == leader.id), None)
    if at is None:
        return [], []
    gap = dt.timedelta(seconds=window)
    lo = hi = at
    while lo > 0 and runs_[lo].started_at - runs_[lo - 1].started_at <= gap:
        lo -= 1
    while hi + 1 < len(runs_) and runs_[hi + 1].started_at - runs_[hi].started_at <= gap:
        hi += 1
    wave = runs_[lo:hi + 1]
    return [r for r in wave if r.status == "failed"], [r for r in wave if r.status == "running"]


# -- waiting ------------------------------------------------------------------------------------

def _await(ledger: Ledger, group: Group) -> tuple[Group, bool]:
    """Wait for the group to be done; (group, True) when its leader died and this process took it over."""
    while True:
        row = ledger.get(storm_groups, group.id)
        group = _row_group(row)
        if group.status == "done":
            return group, False
        now = utcnow()
        if group.expires_at < now:
            with ledger.engine.begin() as conn:
                taken = conn.execute(storm_groups.update().where(
                    storm_groups.c.id == group.id, storm_groups.c.holder == group.holder,
                    storm_groups.c.expires_at < now).values(holder=holder_name(), expires_at=now + _lease())).rowcount
            if taken:
                log.warning("storm group #%s: leader %s stopped renewing; taken over", group.id, group.holder)
                return _group(ledger, group.id), True
        time.sleep(1.0)


def _final_heal(ledger: Ledger, run_id: int) -> dict | None:
    rows = ledger.select(heals, heals.c.run_id == run_id, heals.c.status.in_(FINAL_STATUSES), limit=1)
    return rows[0] if rows else None


def _member_outcome(ledger: Ledger, group: Group, run, heal_kwargs):
    """This failure's outcome as its group recorded it; healed on its own when the group could not."""
    from healer.heal import Outcome, heal

    row = _final_heal(ledger, run.id)
    if row is None:
        log.info("storm group #%s left failure #%s without an outcome; healing it on its own", group.id, run.id)
        return heal(run.repo, failure_id=run.id, ledger=ledger, **heal_kwargs)
    stored = row.get("outcome") or {}
    known = {f.name for f in dataclasses.fields(Outcome)}
    outcome = Outcome(**{k: v for k, v in stored.items() if k in known and k not in ("status", "reason")},
                      status=row["status"], reason=row["reason"] or "")
    outcome.heal = row["id"]
    return outcome


def group_of(ledger: Ledger, run_id: int) -> Group | None:
    """The storm group a failure was healed in, if any."""
    ensure_tables(ledger)
    member = ledger.select(storm_members, storm_members.c.run_id == run_id, limit=1)
    return _group(ledger, member[0]["group_id"]) if member else None


__all__ = ["Group", "group_of", "heal_in_storm", "members", "storm_groups", "storm_members", "storm_window"]
