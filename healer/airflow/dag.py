"""The healer DAG: heals the failures Airflow tasks hand off, and sweeps the ones that wait.

    claim ──► heal (one mapped task per failure) ──► report

- ``claim`` takes the failure named in the run's conf (``{"failure": <run id>}``) or else
  the hand-offs waiting in the ledger (the failure callback and the listener record them and
  return; the DAG's asset watcher starts a run within seconds, its schedule sweeps the rest,
  a manual run takes every one however old); it logs each failure's triage (category,
  fingerprint, the task), or, with nothing to heal, what waits and the command to heal it.
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

import copy
import datetime as dt
import logging

from healer import telemetry
from healer.airflow import queue
from healer.airflow.handoff import healer_dag_id
from healer.airflow.pool import POOL
from healer.ledger import Ledger, heals, runs, utcnow
from healer.redact import redact

log = logging.getLogger("healer.airflow")


def healer_dag(dag_id: str | None = None, *, schedule: dt.timedelta | str | None = dt.timedelta(minutes=10),
               start_date: dt.datetime | None = None, sweep_limit: int = 5,
               stale_after: dt.timedelta = dt.timedelta(hours=1), max_parallel_heals: int = 1,
               watch: bool = True, poll_seconds: float = 5.0, on_decline=None, pool: str | None = POOL,
               **dag_kwargs):
    """Build the healer DAG (``dags/healer.py``: ``dag = healer_dag()``).

    ``dag_id`` defaults to ``[healer] dag_id`` (``healer``), the id hand-offs name.
    With ``watch`` (the default) a run starts as soon as hand-offs wait: the DAG is scheduled
    on an asset whose watcher polls the ledger every ``poll_seconds`` in Airflow's triggerer.
    ``schedule`` (a timedelta or a cron expression; None for none) sweeps besides, for a
    deployment without a triggerer. A run heals at most ``sweep_limit`` hand-offs (the next
    takes the rest); one ``triggered`` by an older version is swept after ``stale_after``.
    ``max_parallel_heals`` bounds concurrent heals of this DAG (each starts its own Spark session);
    heal tasks run in the Airflow ``pool`` (``healer``, made by the plugin in the scheduler with
    ``HEALER_POOL_SLOTS`` slots; None runs them in the default pool). Failures of one repo that
    arrive within ``HEALER_STORM_WINDOW`` of each other are healed together (healer/storm.py).
    ``on_decline`` (any Airflow ``BaseNotifier``, or a callable taking the context) is called
    when a heal declines or ends in error, with the heal's outcome in the context as
    ``healer_outcome`` (status, reason, failure, pipeline, heal): templates can say
    ``{{ healer_outcome.reason }}``. The DAG is unpaused on creation: a paused healer would leave every hand-off queued.
    """
    from airflow.sdk import DAG, Param, get_current_context, task
    from airflow.sdk import TriggerRule

    dag_id = dag_id or healer_dag_id()
    schedule = _schedule(dag_id, schedule, watch, poll_seconds)
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
            return claim_failures(get_current_context(), dag_id, sweep_limit, stale_after)

        # In the `healer` pool (HEALER_POOL_SLOTS), so heals never take more than its slots from pipelines.
        # One retry: a heal whose worker was killed is failed by the scheduler, and its retry on another
        # worker takes its storm group over (or returns what a member that took it over recorded).
        @task(task_id="heal", map_index_template="{{ healer_label }}", max_active_tis_per_dag=max_parallel_heals,
              pool=pool, retries=1, retry_delay=dt.timedelta(seconds=5))
        def heal_failure(failure: int) -> dict:
            return heal_one(failure, get_current_context(), on_decline)

        @task(task_id="report", trigger_rule=TriggerRule.ALL_DONE)
        def report(failures: list[int]) -> list[dict]:
            return report_outcomes(failures)

        claimed = claim()
        heal_failure.expand(failure=claimed) >> report(claimed)
    return dag


def claim_failures(context, dag_id: str, sweep_limit: int, stale_after: dt.timedelta) -> list[int]:
    """The ``claim`` task: sweep, then take the failure the conf names or the waiting hand-offs."""
    failure = context["params"].get("failure")
    ledger = Ledger()
    sweep(ledger)
    # a run started by hand takes every waiting hand-off, however old
    manual = str(getattr(context["dag_run"], "run_type", "")).rsplit(".", 1)[-1].lower() == "manual"
    claimed = queue.claim(ledger, context["run_id"], healer_dag_id=dag_id, failure=failure,
                          limit=sweep_limit, stale_after=None if manual else stale_after)
    if failure is None:
        log.info("sweep: %d failure(s) were waiting in the ledger %s", len(claimed), redact(ledger.url))
    elif not claimed:
        log.info("failure #%s is already being healed by another run", failure)
    if not claimed:
        for line in nothing_to_heal(ledger, dag_id):
            log.info("%s", line)
    for run_id in claimed:
        log.info("%s", _triage_line(ledger, run_id))
    return claimed


def heal_one(failure: int, context, on_decline) -> dict:
    """The ``heal`` task: heal one failure (with its storm group), close its hand-off, tell ``on_decline``."""
    from healer.runner.warm import warm_up_for_heal

    warm_up_for_heal()  # Spark and GX start while the heal loop loads and reads the ledger
    from healer.storm import heal_in_storm

    ledger = Ledger()
    run = ledger.get_run(failure)
    context["healer_label"] = f"#{failure} {run.pipeline if run else '?'}"
    if run is None:
        queue.finish(ledger, failure, heal_id=None, outcome="error")
        raise LookupError(f"no run #{failure} in the ledger {ledger.url}")
    outcome = None
    try:
        # grouped with the failures of its repo that arrive on other workers about now (healer/storm.py)
        # its stages reach this task's log through the module loggers (healer.logs): Airflow takes their INFO
        outcome = heal_in_storm(failure, ledger=ledger)
    except Exception as exc:
        _notify(on_decline, context, {"status": "error", "reason": f"{type(exc).__name__}: {exc}",
                                      "failure": failure, "pipeline": run.pipeline, "heal": None})
        raise
    finally:
        queue.finish(ledger, failure, heal_id=outcome.heal if outcome else None,
                     outcome=outcome.status if outcome else "error")
        telemetry.flush()  # Airflow ends a task's process with os._exit: exit handlers would not export
    log.info("%s: %s", outcome.status, outcome.reason)
    if outcome.status in ("declined", "error"):
        _notify(on_decline, context, {k: outcome.to_json().get(k)
                                      for k in ("status", "reason", "failure", "pipeline", "heal")})
    if outcome.pr_url:
        log.info("pull request #%s: %s (branch %s)", outcome.pr, outcome.pr_url, outcome.branch)
    if outcome.status == "error":
        raise RuntimeError(f"heal of failure #{failure} ended in error: {outcome.reason}")
    return {k: outcome.to_json()[k] for k in ("status", "reason", "heal", "pipeline", "failure", "fixer",
                                              "branch", "pr", "pr_url", "draft", "duplicate")}


def report_outcomes(failures: list[int]) -> list[dict]:
    """The ``report`` task: each failure's heal and PR; fails the run when a heal did not finish."""
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


def sweep(ledger: Ledger) -> list:
    """Mark heals whose lease expired as ``abandoned``; their hand-offs are done with that outcome
    (a heal killed mid-way is not retried blindly: the next failure of the task hands off again),
    unless a live process leads the failure's storm group, which heals it. A hand-off whose
    failure has since been healed (its group was taken over) is set to that outcome (queue.settle)."""
    from healer.storm import group_of

    abandoned = ledger.abandon_expired()
    for a in abandoned:
        log.warning("sweep: heal #%s of failure #%s abandoned: %s", a.heal_id, a.run_id, a.reason)
        if a.run_id is None:
            continue
        group = group_of(ledger, a.run_id)
        if group is not None and group.status != "done" and group.expires_at > utcnow():
            # a live process leads its storm group (it took the dead leader's over): it heals this failure
            log.info("sweep: failure #%s stays with storm group #%s (%s)", a.run_id, group.id, group.holder)
            continue
        queue.finish(ledger, a.run_id, heal_id=a.heal_id, outcome="abandoned")
    for run_id in queue.settle(ledger):
        log.info("sweep: the hand-off of failure #%s now shows its heal's outcome (its storm group healed it)", run_id)
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


def _notify(notifier, context, outcome: dict) -> None:
    """Tell ``on_decline`` about a declined or failed heal; a notifier that fails is logged, not raised."""
    if notifier is None:
        return
    context["healer_outcome"] = outcome
    try:
        # a copy: a BaseNotifier renders its templates into itself, and one DAG object serves many heals
        copy.copy(notifier)(context)
    except Exception as exc:  # the heal's own result matters more than the message about it
        log.warning("on_decline notifier %r failed: %s: %s", notifier, type(exc).__name__, exc)


def _schedule(dag_id: str, schedule, watch: bool, poll_seconds: float):
    """The DAG's schedule: the hand-off asset (when watched) or the sweep's time schedule, or both."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, DeltaTriggerTimetable

    from healer.airflow.pickup import handoff_asset

    if isinstance(schedule, dt.timedelta):
        timetable = DeltaTriggerTimetable(schedule)
    elif isinstance(schedule, str):
        timetable = CronTriggerTimetable(schedule, timezone="UTC")
    elif schedule is None:
        timetable = None
    else:
        raise TypeError(f"healer_dag(schedule=...): a timedelta, a cron expression or None, "
                        f"not {type(schedule).__name__}")
    if not watch:
        return timetable
    asset = handoff_asset(dag_id, poll_seconds)
    return AssetOrTimeSchedule(timetable=timetable, assets=[asset]) if timetable else [asset]


def nothing_to_heal(ledger: Ledger, dag_id: str, limit: int = 10) -> list[str]:
    """What a run that claimed nothing says: the hand-offs held elsewhere and the failures no
    heal has looked at, each with the command that heals it, and who normally runs heals."""
    held = [r for r in queue.recent(ledger, limit=200) if r["status"] != queue.DONE][:limit]
    healed = {row["run_id"] for row in ledger.select(heals, limit=1000)}
    unhealed = [r for r in ledger.select(runs, runs.c.status == "failed", limit=50) if r["id"] not in healed
                and r["id"] not in {h["run_id"] for h in held}][:limit]
    if not held and not unhealed:
        return [f"nothing to heal: no hand-off waits and every failed run in the ledger {redact(ledger.url)} "
                "has been healed"]
    lines = ["nothing this run could heal; still open:"]
    for h in held:
        what = f"  failure #{h['run_id']} ({h['pipeline']}, from {h['dag_id']}.{h['task_id']} try {h['try_number']})"
        since = f"{h['updated_at']:%Y-%m-%d %H:%M}"
        if h["status"] == queue.HEALING:  # another run holds it; a dead one's lease expires and the sweep ends it
            lines.append(f"{what}: being healed by the healer run {h['healer_run_id']} since {since}")
        else:
            lines.append(f"{what}: {h['status']} for the healer DAG {h['healer_dag_id']} since {since}; to heal it "
                         f"now: airflow dags test {dag_id} -c '{{\"failure\": {h['run_id']}}}'")
    for r in unhealed:
        lines.append(f"  failure #{r['id']} ({r['pipeline']}, failed at {r['stage']} with {r['error_class']}) was "
                     f"never handed off; to heal it: airflow dags test {dag_id} -c '{{\"failure\": {r['id']}}}'")
    lines.append("Heals normally run without you: the scheduler starts this DAG when a hand-off waits (its asset "
                 "watcher runs in the triggerer) and sweeps on its schedule; `airflow dags test` is for a run by hand.")
    return lines


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
