"""The failure path: record the failure for the healer DAG, return.

It runs inside Airflow's task process, after the task failed, so it must be quick and must
never raise: it finds the run the task recorded (or records one) and inserts one hand-off
row, in state ``waiting``. It neither heals nor triggers anything: a trigger through
Airflow's API is a round trip to the API server that cost the failing task 60–200 ms.
The healer DAG picks the hand-off up (``healer.airflow.pickup``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from healer.airflow import queue
from healer.airflow.runs import managed_spec, record_failure, recorded_failure, task_context, will_retry
from healer.ledger import Ledger

log = logging.getLogger("healer.airflow")

DEFAULT_DAG_ID = "healer"


def healer_dag_id() -> str:
    """The healer DAG's id: ``[healer] dag_id`` (``AIRFLOW__HEALER__DAG_ID``), default ``healer``."""
    try:
        from airflow.sdk import conf

        return conf.get("healer", "dag_id", fallback=DEFAULT_DAG_ID) or DEFAULT_DAG_ID
    except Exception:  # no Airflow config to read here: the default id
        log.debug("[healer] dag_id not read", exc_info=True)
        return DEFAULT_DAG_ID


@dataclass(frozen=True)
class Handoff:
    """What the failure path did with one failed try: a hand-off waiting for the healer DAG."""

    id: int
    failure: int  # the failed run in the ledger
    status: Literal["waiting"]
    healer_dag_id: str  # the healer DAG that will pick it up


def hand_off(ti: Any, error: BaseException | str | None, *, pipeline: str | None = None, repo: str | None = None,
             source: str = "callback", dag_id: str | None = None) -> Handoff | None:
    """Record a task's failure for the healer DAG; None when there is nothing to hand off.

    Skips tries Airflow will retry, tries already handed off (the callback and the
    listener may both report one), and tasks that are not healer pipelines. Never raises.
    """
    try:
        return _hand_off(ti, error, pipeline, repo, source, dag_id)
    except Exception as exc:  # the failure path must never fail the task's process
        log.warning("healer: could not hand off the failure of %s: %s: %s", _name(ti), type(exc).__name__, exc)
        return None


def _hand_off(ti, error, pipeline, repo, source, dag_id) -> Handoff | None:
    if ti is None:
        log.info("healer: no task instance in the callback context; nothing to hand off")
        return None
    if will_retry(ti):
        log.info("healer: %s try %s of %s failed; Airflow will retry, so healing waits for the last try",
                 _name(ti), getattr(ti, "try_number", "?"), int(getattr(ti, "max_tries", 0) or 0) + 1)
        return None
    spec = managed_spec(getattr(ti, "task", None))
    pipeline = pipeline or (spec.pipeline if spec else None)
    repo = repo or (spec.repo if spec else None)
    context = task_context(ti, f"airflow:{source}")
    ledger = Ledger()
    run = recorded_failure(ledger, error if isinstance(error, BaseException) else None, context, pipeline, repo,
                           since=getattr(ti, "start_date", None))
    if run is None:
        if not (pipeline and repo):
            log.info("healer: %s is not a healer pipeline task; give heal_on_failure pipeline= and repo=", _name(ti))
            return None
        run = record_failure(ledger, error, context, pipeline, repo, started_at=getattr(ti, "start_date", None))
    key = queue.TaskKey(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, try_number=int(ti.try_number),
                        map_index=_map_index(ti))
    target = dag_id or healer_dag_id()
    handoff_id = queue.enqueue(ledger, run.id, key, pipeline=run.pipeline, source=source, healer_dag_id=target)
    if handoff_id is None:
        log.info("healer: %s try %s was already handed off", _name(ti), key.try_number)
        return None
    log.info("healer: failure #%s of %s waits for the healer DAG %s (hand-off #%s)", run.id, run.pipeline, target,
             handoff_id)
    return Handoff(handoff_id, run.id, queue.WAITING, target)


def _map_index(ti) -> int:
    value = getattr(ti, "map_index", None)
    return -1 if value is None else int(value)


def _name(ti) -> str:
    return f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')}"


class HealOnFailure:
    """An ``on_failure_callback`` that hands the failure to the healer (see ``heal_on_failure``)."""

    def __init__(self, pipeline: str | None = None, repo: str | None = None, healer_dag_id: str | None = None):
        self.pipeline, self.repo, self.healer_dag_id = pipeline, repo, healer_dag_id

    def __call__(self, context) -> None:
        try:
            ti = context.get("ti") or context.get("task_instance")
            error = context.get("exception")
        except Exception:  # a context that cannot be read holds no failure to hand off; never raise into Airflow
            log.warning("healer: on_failure_callback got an unreadable context (%s)", type(context).__name__,
                        exc_info=True)
            return
        hand_off(ti, error, pipeline=self.pipeline, repo=self.repo, source="callback", dag_id=self.healer_dag_id)

    def __repr__(self) -> str:
        what = f"pipeline={self.pipeline!r}, repo={self.repo!r}" if self.pipeline else ""
        return f"heal_on_failure({what})"


def heal_on_failure(context=None, /, *, pipeline: str | None = None, repo: str | None = None,
                    healer_dag_id: str | None = None):
    """Hand a failed task to the healer DAG: use as ``on_failure_callback`` (task or ``default_args``).

    ``on_failure_callback=heal_on_failure`` serves ``HealerPipelineOperator`` and
    ``@self_healing`` tasks, which know their pipeline. For any other task that runs a
    pipeline (a BashOperator calling ``healer run``, a spark-submit), name it:
    ``on_failure_callback=heal_on_failure(pipeline="orders", repo="/repos/etl")``.
    ``healer_dag_id`` overrides ``[healer] dag_id``. Skips tries that will be retried and
    never raises into Airflow.
    """
    if context is None:
        return HealOnFailure(pipeline, repo, healer_dag_id)
    HealOnFailure(pipeline, repo, healer_dag_id)(context)
    return None
