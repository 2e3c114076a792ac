"""Healing from Airflow, on real Airflow: a migrated SQLite metadata DB, dag.test(), the plugin's
listener loaded through its entry point, real Spark, real git remotes, the local forge.

A pipeline task fails on drifted data; the failure callback (or the listener) records a
hand-off in the ledger and returns, triggering nothing; a plain run of the healer DAG (as
its asset watcher or schedule starts one, or `airflow dags test healer`) claims it and heals
it into a pull request. Tries Airflow will retry are not handed off; a hand-off for another
healer DAG waits for that one, and a run with nothing to heal names what waits.
"""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_fixtures import dag_runs, operator_dag, start_date, sync_dags, task_states
from healer.forges import LocalForge
from healer.ledger import Ledger, heals
from healer.runner.run import run_pipeline
from pipelines import drift

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow]


def new_healer_runs(before: set[str]) -> list[dict]:
    return [r for r in dag_runs("healer") if r["run_id"] not in before]


def healer_run_ids() -> set[str]:
    return {r["run_id"] for r in dag_runs("healer")}


def assert_healed_to_a_pr(ledger: Ledger, failure_id: int, pipeline: str, repo) -> dict:
    """The failure's heal proposed a PR on the local forge, whose branch is on the remote."""
    import subprocess

    [heal] = ledger.select(heals, heals.c.run_id == failure_id)
    assert heal["status"] == "proposed", heal["reason"]
    pr = LocalForge(ledger).get(heal["pr_id"])
    assert pr.status == "open" and pr.pipeline == pipeline and pr.base == "main"
    remote = subprocess.run(["git", "ls-remote", "--heads", "origin", pr.branch], cwd=repo, capture_output=True,
                            text=True, check=True).stdout
    assert pr.branch in remote
    return heal


def test_operator_failure_is_handed_off_and_healed_to_a_pr(operator_heal, airflow_env):
    from healer.airflow import queue

    h = operator_heal
    print(f"operator heal, seconds per step: {h.seconds}")
    assert str(h.good.state) == "success"
    assert task_states(h.failed) == {"revenue_by_category": "failed"}
    # the operator recorded the failed run with the task's Airflow ids
    ctx = h.failure.context
    assert h.failure.stage == "job" and h.failure.error_class.startswith("UNRESOLVED_COLUMN")
    assert (ctx["dag_id"], ctx["task_id"], ctx["run_id"]) == (h.dag_id, h.task_id, h.failed.run_id)
    assert (ctx["try_number"], ctx["max_tries"], ctx["source"]) == (1, 0, "airflow:operator")
    assert ctx["log_url"].startswith(airflow_env.base_url + f"/dags/{h.dag_id}/runs/")
    # one hand-off (the callback's; the listener saw it was already handed off), waiting; no trigger
    [handoff] = h.handoffs_before
    assert (handoff["source"], handoff["status"], handoff["try_number"]) == ("callback", "waiting", 1)
    assert (handoff["healer_dag_id"], handoff["healer_run_id"]) == ("healer", None)
    assert h.triggered == []
    # a plain run of the healer DAG claimed it, ran each stage as a task and healed it into a PR
    assert str(h.healer_run.state) == "success"
    assert h.healer_states == {"claim": "success", "heal[0]": "success", "report": "success"}
    ledger = Ledger(airflow_env.ledger_url)
    heal = assert_healed_to_a_pr(ledger, h.failure.id, "revenue_by_category", h.repo)
    assert heal["fixer"] == "rule:renamed_column"
    [done] = queue.for_run(ledger, h.failure.id)
    assert (done["status"], done["outcome"], done["heal_id"]) == ("done", "proposed", heal["id"])
    assert done["healer_run_id"] == h.healer_run.run_id


def test_decorated_task_failure_is_handed_off_and_healed_to_a_pr(airflow_env, spark, ledger, pipeline_repo):
    from airflow.sdk import DAG, task

    from healer.airflow import heal_on_failure, queue, self_healing

    with DAG("pipeline_decorator", schedule=None, start_date=start_date(), catchup=False) as dag:
        @task(on_failure_callback=heal_on_failure)
        @self_healing(pipeline="clean_customers", repo=str(pipeline_repo))
        def clean_customers():
            return None

        clean_customers()
    sync_dags(dag)
    run_pipeline(pipeline_repo, "clean_customers", spark=spark, ledger=ledger)  # the last good run
    drift.to_string(pipeline_repo / "data", "customers", "signup_date", "%d/%m/%Y")
    before = healer_run_ids()

    failed = dag.test()

    assert task_states(failed) == {"clean_customers": "failed"}
    failure = ledger.last_failure("clean_customers")
    assert (failure.context["dag_id"], failure.context["task_id"], failure.context["source"]) == (
        "pipeline_decorator", "clean_customers", "airflow:decorator")
    assert new_healer_runs(before) == []
    [handoff] = queue.for_run(ledger, failure.id)
    assert (handoff["status"], handoff["source"]) == ("waiting", "callback")

    healer = airflow_env.dags["healer"].test()

    assert str(healer.state) == "success", task_states(healer)
    heal = assert_healed_to_a_pr(ledger, failure.id, "clean_customers", pipeline_repo)
    assert heal["fixer"] == "rule:retyped_column"


def test_try_with_retries_left_is_not_handed_off(airflow_env, spark, ledger, pipeline_repo):
    from healer.airflow import heal_on_failure, queue

    drift.rename_column(pipeline_repo / "data", "orders", "order_ts", "order_time")
    dag = operator_dag("pipeline_retries", pipeline_repo, "customer_lifetime", retries=1,
                       retry_delay=dt.timedelta(0), on_failure_callback=heal_on_failure)
    sync_dags(dag)
    before = healer_run_ids()

    dag.test()  # try 1 fails and is retried at once; try 2 fails for good

    tries = {r.context["try_number"]: r for r in ledger.runs(pipeline="customer_lifetime", status="failed")}
    assert sorted(tries) == [1, 2] and {r.context["max_tries"] for r in tries.values()} == {1}
    assert queue.for_run(ledger, tries[1].id) == []  # Airflow retried it: nothing handed off
    [handoff] = queue.for_run(ledger, tries[2].id)
    assert (handoff["try_number"], handoff["status"]) == (2, "waiting")
    assert new_healer_runs(before) == []


def test_listener_hands_off_a_pipeline_task_without_a_callback(airflow_env, spark, ledger, pipeline_repo):
    from airflow.providers.standard.operators.python import PythonOperator

    from healer.airflow import queue

    def not_a_pipeline():
        raise ValueError("an ordinary task failing")

    drift.rename_column(pipeline_repo / "data", "orders", "order_ts", "order_time")
    dag = operator_dag("pipeline_listener", pipeline_repo, "customer_sessions")  # no callback anywhere
    with dag:
        PythonOperator(task_id="ordinary", python_callable=not_a_pipeline)
    sync_dags(dag)
    before = healer_run_ids()

    failed = dag.test()

    assert task_states(failed) == {"customer_sessions": "failed", "ordinary": "failed"}
    failure = ledger.last_failure("customer_sessions")
    [handoff] = queue.recent(ledger)  # the ordinary task is not Healer's to heal
    assert (handoff["run_id"], handoff["source"], handoff["status"]) == (failure.id, "listener", "waiting")
    assert new_healer_runs(before) == []


def recording_notifier(calls: list):
    """A real Airflow BaseNotifier that renders its template and records what it was told."""
    from airflow.sdk import BaseNotifier

    class Recorder(BaseNotifier):
        template_fields = ("message",)

        def __init__(self, message: str):
            super().__init__()
            self.message = message

        def notify(self, context):
            calls.append({"message": self.message, "outcome": dict(context["healer_outcome"]),
                          "task": context["ti"].task_id})

    return Recorder("healer {{ healer_outcome.status }} failure #{{ healer_outcome.failure }}: "
                    "{{ healer_outcome.reason }}")


def test_handoff_for_another_healer_waits_for_it_and_its_decline_is_notified(airflow_env, spark, ledger,
                                                                             pipeline_repo):
    from healer.airflow import heal_on_failure, healer_dag, queue
    from healer.airflow.dag import nothing_to_heal

    run_pipeline(pipeline_repo, "customer_sessions", spark=spark, ledger=ledger)  # the last good run
    # upstream dropped a column outright: the heal can only decline, which keeps this test short
    drift.drop_column(pipeline_repo / "data", "orders", "order_ts")
    calls: list = []
    notified = healer_dag("healer_notified", on_decline=recording_notifier(calls), schedule=None)
    dag = operator_dag("pipeline_other_healer", pipeline_repo, "customer_sessions",
                       on_failure_callback=heal_on_failure(healer_dag_id="healer_notified"))
    sync_dags(dag, notified)
    before = healer_run_ids()

    dag.test()

    failure = ledger.last_failure("customer_sessions")
    [waiting] = queue.for_run(ledger, failure.id)
    assert (waiting["status"], waiting["healer_dag_id"]) == ("waiting", "healer_notified")
    assert new_healer_runs(before) == []
    # the default healer DAG leaves it to its own healer, and says so with the command
    idle = airflow_env.dags["healer"].test()
    assert task_states(idle) == {"claim": "success", "heal": "skipped", "report": "success"}
    said = "\n".join(nothing_to_heal(ledger, "healer"))
    assert f"failure #{failure.id} (customer_sessions, from pipeline_other_healer.customer_sessions try 1): " \
           "waiting for the healer DAG healer_notified" in said
    assert f"""airflow dags test healer -c '{{"failure": {failure.id}}}'""" in said
    assert "the scheduler starts this DAG" in said

    healed = notified.test()

    assert task_states(healed) == {"claim": "success", "heal[0]": "success", "report": "success"}
    [done] = queue.for_run(ledger, failure.id)
    assert (done["status"], done["outcome"], done["healer_run_id"]) == ("done", "declined", healed.run_id)
    [heal] = ledger.select(heals, heals.c.run_id == failure.id)
    assert heal["status"] == "declined" and heal["id"] == done["heal_id"]
    # the reason leads with what the evidence names, not only that no fixer had a candidate
    assert heal["reason"].startswith("orders.order_ts (timestamp) was dropped upstream"), heal["reason"]
    [call] = calls
    assert call["task"] == "heal" and call["outcome"]["status"] == "declined"
    assert call["message"] == f"healer declined failure #{failure.id}: {heal['reason']}"
    assert nothing_to_heal(ledger, "healer_notified")[0].startswith("nothing to heal")


def test_healer_dag_is_scheduled_on_the_handoff_asset_and_its_sweep(airflow_env):
    from airflow.sdk import AssetOrTimeSchedule

    from healer.airflow.pickup import HandoffTrigger

    healer = airflow_env.dags["healer"]
    assert isinstance(healer.timetable, AssetOrTimeSchedule)
    assert healer.timetable.timetable.delta == dt.timedelta(minutes=10)  # the sweep, where no triggerer runs
    [asset] = healer.timetable.asset_condition.objects
    [watcher] = asset.watchers
    assert isinstance(watcher.trigger, HandoffTrigger)
    assert watcher.trigger.serialize() == ("healer.airflow.pickup.HandoffTrigger",
                                           {"healer_dag_id": "healer", "poll_seconds": 5.0})


def test_handoff_trigger_fires_once_per_new_waiting_handoff(airflow_env, ledger):
    import asyncio

    from healer.airflow import queue
    from healer.airflow.pickup import HandoffTrigger

    def hand_off(task: str, healer: str = "healer") -> int:
        key = queue.TaskKey(dag_id="etl", task_id=task, run_id="manual__1", try_number=1)
        return queue.enqueue(ledger, 1000 + len(task), key, pipeline=task, source="callback", healer_dag_id=healer)

    async def events(n: int) -> list:
        got, runner = [], HandoffTrigger("healer", poll_seconds=0.05).run()
        async for event in runner:
            got.append(event.payload)
            if len(got) == n:
                break
            hand_off("third") if len(got) == 1 else None
        await runner.aclose()
        return got

    first, second = hand_off("first"), hand_off("second")
    hand_off("elsewhere", healer="healer_other")  # another healer DAG's: not announced here

    got = asyncio.run(asyncio.wait_for(events(2), timeout=30))

    assert got[0] == {"healer_dag_id": "healer", "handoffs": [first, second]}
    assert len(got[1]["handoffs"]) == 1 and got[1]["handoffs"][0] > second  # only the new one
    assert [r["id"] for r in queue.waiting(ledger, "healer")] == [first, second, got[1]["handoffs"][0]]
