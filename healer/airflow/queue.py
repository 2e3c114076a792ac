"""Hand-offs: failures of Airflow tasks waiting for the healer DAG.

    waiting ──► healing ──► done
    (recorded by    (claimed by one     (the heal's outcome)
     the failing     healer DAG run)
     task)

A failure callback or listener records one row per failed try and returns: the failing task
never waits for the healer. The healer DAG picks waiting rows up (``healer.airflow.pickup``:
an asset watcher in Airflow's triggerer starts a run within seconds, and the DAG's schedule
sweeps whatever that missed). Claiming is a conditional update, so two healer runs never heal
the same failure twice. ``triggered`` is the state ledgers written by older versions left
(those hand-offs triggered their healer run themselves); a sweep takes them too. The table
lives in the ledger's metadata; nothing here imports Airflow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from healer.ledger import FINAL_STATUSES, Ledger, heals, metadata, utcnow

WAITING, TRIGGERED, HEALING, DONE = "waiting", "triggered", "healing", "done"

handoffs = sa.Table(
    "airflow_handoffs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False, index=True),  # the failed run in the ledger
    sa.Column("pipeline", sa.String(200)),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("task_id", sa.String(250), nullable=False),
    sa.Column("airflow_run_id", sa.String(250), nullable=False),
    sa.Column("map_index", sa.Integer, nullable=False, default=-1),
    sa.Column("try_number", sa.Integer, nullable=False),
    sa.Column("source", sa.String(20)),  # callback | listener
    sa.Column("status", sa.String(20), nullable=False),  # waiting | triggered | healing | done
    sa.Column("healer_dag_id", sa.String(250)),
    sa.Column("healer_run_id", sa.String(250)),  # the healer DAG run that was triggered or claimed it
    sa.Column("error", sa.Text),  # why the trigger failed
    sa.Column("heal_id", sa.Integer),
    sa.Column("outcome", sa.String(20)),  # the heal's status: proposed | declined | skipped | error | abandoned
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    # one hand-off per try, whoever (callback or listener) reports it first
    sa.UniqueConstraint("dag_id", "task_id", "airflow_run_id", "map_index", "try_number", name="uq_airflow_handoff_try"),
)


@dataclass(frozen=True)
class TaskKey:
    """One try of one Airflow task instance."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    map_index: int = -1


_ready: set[str] = set()


def ensure_table(ledger: Ledger) -> None:
    """Create the table in a ledger opened before this module was imported."""
    if ledger.url not in _ready:
        handoffs.create(ledger.engine, checkfirst=True)
        _ready.add(ledger.url)


def enqueue(ledger: Ledger, run_id: int, key: TaskKey, *, pipeline: str | None, source: str,
            healer_dag_id: str) -> int | None:
    """Record a failed try as waiting for the healer DAG ``healer_dag_id``; None when this try
    was already handed off. One insert: this runs inside the failing task."""
    ensure_table(ledger)
    now = utcnow()
    values = dict(run_id=run_id, pipeline=pipeline, dag_id=key.dag_id, task_id=key.task_id,
                  airflow_run_id=key.run_id, map_index=key.map_index, try_number=key.try_number,
                  source=source, status=WAITING, healer_dag_id=healer_dag_id, created_at=now, updated_at=now)
    try:
        with ledger.engine.begin() as conn:
            return conn.execute(handoffs.insert().values(**values)).inserted_primary_key[0]
    except IntegrityError:
        return None


def _for_dag(healer_dag_id: str | None):
    # rows written before hand-offs named their healer DAG belong to whichever runs
    if healer_dag_id is None:
        return sa.true()
    return sa.or_(handoffs.c.healer_dag_id == healer_dag_id, handoffs.c.healer_dag_id.is_(None))


def waiting(ledger: Ledger, healer_dag_id: str | None = None, *, after_id: int = 0, limit: int = 500) -> list[dict]:
    """Hand-offs no healer run has claimed yet (``waiting``, or ``triggered`` by an older
    version), oldest first; ``after_id`` skips the ones already seen."""
    ensure_table(ledger)
    return ledger.select(handoffs, handoffs.c.status.in_((WAITING, TRIGGERED)), handoffs.c.id > after_id,
                         _for_dag(healer_dag_id), order_desc=False, limit=limit)


def claim(ledger: Ledger, healer_run_id: str, *, healer_dag_id: str | None = None, failure: int | None = None,
          limit: int = 5, stale_after: dt.timedelta | None = dt.timedelta(hours=1),
          now: dt.datetime | None = None) -> list[int]:
    """Failed run ids this healer run should heal, marked ``healing`` so nobody else does.

    With ``failure`` (a run given ``{"failure": N}``): that failure, unless another run
    already claimed it; a failure that was never handed off is healed as asked. Without (a
    sweep): the oldest waiting hand-offs for ``healer_dag_id``, and ``triggered`` ones (left
    by older versions) whose run did not start within ``stale_after`` (None: however old).
    """
    ensure_table(ledger)
    now = now or utcnow()
    if failure is not None:
        rows = ledger.select(handoffs, handoffs.c.run_id == failure, limit=50)
        if not rows:
            return [failure]
        candidates = [r for r in rows if r["status"] in (WAITING, TRIGGERED)]
    else:
        triggered = handoffs.c.status == TRIGGERED
        if stale_after is not None:
            triggered = sa.and_(triggered, handoffs.c.updated_at < now - stale_after)
        candidates = ledger.select(handoffs, sa.or_(handoffs.c.status == WAITING, triggered),
                                   _for_dag(healer_dag_id), order_desc=False, limit=limit)
    claimed: list[int] = []
    for row in candidates:
        with ledger.engine.begin() as conn:
            done = conn.execute(handoffs.update()
                                .where(handoffs.c.id == row["id"], handoffs.c.status == row["status"])
                                .values(status=HEALING, healer_run_id=healer_run_id, updated_at=now)).rowcount
        if done and row["run_id"] not in claimed:
            claimed.append(row["run_id"])
    return claimed


def finish(ledger: Ledger, run_id: int, *, heal_id: int | None, outcome: str) -> None:
    """The heal of a claimed failure ended (whatever its outcome).

    A hand-off the sweep closed as ``abandoned`` takes the later outcome too: its heal was killed,
    and the storm group that took it over (or the killed task's retry) healed the failure after all."""
    ensure_table(ledger)
    with ledger.engine.begin() as conn:
        conn.execute(handoffs.update().where(handoffs.c.run_id == run_id, _UNSETTLED)
                     .values(status=DONE, heal_id=heal_id, outcome=outcome, updated_at=utcnow()))


# a hand-off that may still take its failure's outcome: being healed, or closed when its heal was killed
_UNSETTLED = sa.or_(handoffs.c.status == HEALING, sa.and_(handoffs.c.status == DONE, handoffs.c.outcome == "abandoned"))


def settle(ledger: Ledger, limit: int = 200) -> list[int]:
    """Hand-offs that do not show their failure's final outcome, set to it (the sweep's last step).

    Still ``healing``, or ``done`` as ``abandoned``, while the newest heal of the failure ended
    with a result: the heal task was killed, the storm group taken over by another process healed
    the failure, and the killed task got no retry that would have said so. Returns their run ids."""
    ensure_table(ledger)
    # one query for only the hand-offs to settle: each sweep runs this, and abandoned hand-offs whose
    # failure was never healed stay unsettled for good (a per-row lookup would re-read them every time)
    each = heals.alias("each_heal")
    newest = (sa.select(sa.func.max(each.c.id)).where(each.c.run_id == handoffs.c.run_id)
              .correlate(handoffs).scalar_subquery())
    query = (sa.select(handoffs.c.id, handoffs.c.run_id, handoffs.c.status, handoffs.c.heal_id,
                       heals.c.id.label("final_heal"), heals.c.status.label("final_status"))
             .select_from(handoffs.join(heals, heals.c.id == newest))
             .where(_UNSETTLED, heals.c.status.in_(FINAL_STATUSES)).order_by(handoffs.c.id).limit(limit))
    settled: list[int] = []
    with ledger.engine.begin() as conn:
        for row in conn.execute(query).mappings().all():
            same = handoffs.c.heal_id.is_(None) if row["heal_id"] is None else handoffs.c.heal_id == row["heal_id"]
            done = conn.execute(handoffs.update().where(handoffs.c.id == row["id"], handoffs.c.status == row["status"], same)
                                .values(status=DONE, heal_id=row["final_heal"], outcome=row["final_status"],
                                        updated_at=utcnow())).rowcount
            if done:
                settled.append(row["run_id"])
    return settled


def for_run(ledger: Ledger, run_id: int) -> list[dict]:
    """Hand-offs of one failed run, newest first."""
    ensure_table(ledger)
    return ledger.select(handoffs, handoffs.c.run_id == run_id, limit=50)


def for_task(ledger: Ledger, dag_id: str, task_id: str, airflow_run_id: str, map_index: int | None = None) -> list[dict]:
    """Hand-offs of every try of one task instance, newest first."""
    ensure_table(ledger)
    where = [handoffs.c.dag_id == dag_id, handoffs.c.task_id == task_id, handoffs.c.airflow_run_id == airflow_run_id]
    if map_index is not None:
        where.append(handoffs.c.map_index == map_index)
    return ledger.select(handoffs, *where, limit=100)


def recent(ledger: Ledger, status: str | None = None, limit: int = 100) -> list[dict]:
    """Hand-offs, newest first."""
    ensure_table(ledger)
    where = [handoffs.c.status == status] if status else []
    return ledger.select(handoffs, *where, limit=limit)
