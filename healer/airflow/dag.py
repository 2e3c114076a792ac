"""The healer DAG: heals the failures Airflow tasks hand off, and sweeps the ones that wait.

    claim ──► heal (one mapped task per failure) ──► report

- ``claim`` takes the failure named in the run's conf (``{"failure": <run id>}``, as the
  failure callback and the listener trigger it) or, on a scheduled run, the hand-offs
  waiting in the ledger; it logs each failure's triage (category, fingerprint, the task).
  Every run first sweeps: heals whose lease expired (their worker was killed or crashed)
  are marked ``abandoned`` and their hand-offs closed.
- ``heal`` runs ``healer.heal.heal`` for one failure; its log shows every stage
  (triage, workspace, evidence with the schema drift, fixers, sandbox, proposal).
- ``report`` lists the outcomes and PRs, and fails the run when a heal ended in error.

The stages of one heal share a Spark session, the workspace and the gathered evidence in
memory; as separate Airflow tasks each would be a new process and start Spark again. So a
heal is one task, started once per failure, and only the steps that need no Spark are tasks
of their own.
"""

from __future__ import annotations

import datetime as dt
import logging

from healer import telemetry
from healer.airflow import queue
from healer.airflow.handoff import healer_dag_id
from healer.ledger import Ledger, heals

log = logging.getLogger("healer.airflow")


def healer_dag(dag_id: str | None = None, *, schedule: dt.timedelta | str | None = dt.timedelta(minutes=10),
               start_date: dt.datetime | None = None, sweep_limit: int = 5,
               stale_after: dt.timedelta = dt.timedelta(hours=1), max_parallel_heals: int = 1, **dag_kwargs):
    """Build the healer DAG (``dags/healer.py``: ``dag = healer_dag()``).

    ``dag_id`` defaults to ``[healer] dag_id`` (``healer``), the id hand-offs trigger.
    ``schedule`` is how often waiting hand-offs are swept (at most ``sweep_limit`` a run);
    a triggered run whose hand-off did not start within ``stale_after`` is swept too.
    ``max_parallel_heals`` bounds concurrent heals (each starts its own Spark session).
    The DAG is unpaused on creation: a paused healer would leave every hand-off queued.
    """
    from airflow.sdk import DAG, Param, get_current_context, task
    from airflow.sdk import TriggerRule

    dag_id = dag_id or healer_dag_id()
    dag_kwargs.setdefault("tags", ["healer"])
    dag_kwargs.setdefault("is_paused_upon_creation", False)
    dag_kwargs.setdefault("doc_md", __doc__)
    with DAG(dag_id=dag_id, schedule=schedule, catchup=False,
             start_date=start_date or dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
             default_args={"retries": 0},
             params={"failure": Param(None, type=["null", "integer"],
                                      description="The failed run to heal (its id in the ledger); "
                                                  "empty heals the failures waiting in the ledger")},
             **dag_kwargs) as dag:

        @task(task_id="claim")
        def claim() -> list[int]:
            context = get_current_context()
            failure = context["params"].get("failure")
            ledger = Ledger()
            sweep(ledger)
            claimed = queue.claim(ledger, context["run_id"], failure=failure, limit=sweep_limit,
                                  stale_after=stale_after)
            if failure is None:
                log.info("sweep: %d failure(s) were waiting in the ledger %s", len(claimed), ledger.url)
            elif not claimed:
                log.info("failure #%s is already being healed by another run", failure)
            for run_id in claimed:
                log.info("%s", _triage_line(ledger, run_id))
            return claimed

        @task(task_id="heal", map_index_template="{{ healer_label }}", max_active_tis_per_dag=max_parallel_heals)
        def heal_failure(failure: int) -> dict:
            from healer.runner.warm import warm_up_for_heal

            warm_up_for_heal()  # Spark and GX start while the heal loop loads and reads the ledger
            from healer.heal import heal

            ledger = Ledger()
            run = ledger.get_run(failure)
            context = get_current_context()
            context["healer_label"] = f"#{failure} {run.pipeline if run else '?'}"  # type: ignore[typeddict-unknown-key]
            if run is None:
                queue.finish(ledger, failure, heal_id=None, outcome="error")
                raise LookupError(f"no run #{failure} in the ledger {ledger.url}")
            outcome = None
            try:
                outcome = heal(run.repo, failure_id=failure, ledger=ledger, log=_log_lines)
            finally:
                queue.finish(ledger, failure, heal_id=outcome.heal if outcome else None,
                             outcome=outcome.status if outcome else "error")
                telemetry.flush()  # Airflow ends a task's process with os._exit: exit handlers would not export
            log.info("%s: %s", outcome.status, outcome.reason)
            if outcome.pr_url:
                log.info("pull request #%s: %s (branch %s)", outcome.pr, outcome.pr_url, outcome.branch)
            if outcome.status == "error":
                raise RuntimeError(f"heal of failure #{failure} ended in error: {outcome.reason}")
            return {k: outcome.to_json()[k] for k in ("status", "reason", "heal", "pipeline", "failure", "fixer",
                                                      "branch", "pr", "pr_url", "draft", "duplicate")}

        @task(task_id="report", trigger_rule=TriggerRule.ALL_DONE)
        def report(failures: list[int]) -> list[dict]:
            ledger = Ledger()
            rows = _latest_heals(ledger, failures)
            if not failures:
                log.info("nothing to heal")
            for failure in failures:
                row = rows.get(failure)
                log.info("failure #%s: %s", failure, _outcome_line(row) if row else "not healed (the heal task failed)")
            broken = [f for f in failures if f not in rows or rows[f]["status"] in ("error", "abandoned")]
            if broken:
                raise RuntimeError(f"heals of failures {broken} did not finish; see the heal tasks' logs")
            return [{"failure": f, "heal": rows[f]["id"], "status": rows[f]["status"], "pr": rows[f]["pr_id"]}
                    for f in failures]

        claimed = claim()
        heal_failure.expand(failure=claimed) >> report(claimed)
    return dag


def sweep(ledger: Ledger) -> list:
    """Mark heals whose lease expired as ``abandoned``; their hand-offs are done with that outcome
    (a heal killed mid-way is not retried blindly: the next failure of the task hands off again)."""
    abandoned = ledger.abandon_expired()
    for a in abandoned:
        log.warning("sweep: heal #%s of failure #%s abandoned: %s", a.heal_id, a.run_id, a.reason)
        if a.run_id is not None:
            queue.finish(ledger, a.run_id, heal_id=a.heal_id, outcome="abandoned")
    _verify(ledger)
    return abandoned


def _verify(ledger: Ledger) -> None:
    """Merged Healer fixes against their next runs: verified, regressed (revert PR, breaker) or
    unverified (healer.governance.verify). A problem there is logged; it never stops the sweep."""
    from healer.governance.verify import check

    try:
        for checked in check(ledger):
            log.info("verify: %s", checked.one_line())
    except Exception as exc:  # noqa: BLE001 -- the sweep's own work (abandoned heals) matters more
        log.warning("verify: %s", exc)


def _log_lines(message: str) -> None:
    for line in str(message).splitlines() or [""]:
        log.info("%s", line)


def _triage_line(ledger: Ledger, run_id: int) -> str:
    from healer.failure import from_run

    run = ledger.get_run(run_id)
    if run is None:
        return f"failure #{run_id}: not in the ledger"
    failure = from_run(run)
    where = run.context or {}
    task = f" from {where['dag_id']}.{where['task_id']} try {where.get('try_number')}" if where.get("dag_id") else ""
    return (f"failure #{run_id}: {run.pipeline} failed at {run.stage} with {run.error_class}{task}; "
            f"triage: {failure.category} ({failure.describe()}), fingerprint {failure.short_fingerprint}")


def _latest_heals(ledger: Ledger, failures: list[int]) -> dict[int, dict]:
    latest: dict[int, dict] = {}
    if failures:
        for row in ledger.select(heals, heals.c.run_id.in_(failures), limit=len(failures) * 10):
            latest.setdefault(row["run_id"], row)  # newest first
    return latest


def _outcome_line(row: dict) -> str:
    outcome = row.get("outcome") or {}
    pr = f"; PR #{row['pr_id']} {outcome.get('pr_url') or ''}".rstrip() if row.get("pr_id") else ""
    return f"heal #{row['id']} {row['status']}: {row.get('reason') or ''}{pr}"
