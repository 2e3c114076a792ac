"""Healing from Airflow, on real Airflow: a migrated SQLite metadata DB, dag.test(), the plugin's
listener loaded through its entry point, real Spark, real git remotes, the local forge.

A pipeline task fails on drifted data; the failure callback (or the listener) records it
and triggers the healer DAG through Airflow's execution API; the healer DAG heals it into
a pull request. Tries Airflow will retry are not handed off, and a failure whose trigger
failed waits in the ledger until the healer DAG's scheduled sweep heals it.
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
    # one hand-off (the callback's; the listener saw it was already handed off), one trigger
    [handoff] = h.handoffs_before
    assert (handoff["source"], handoff["status"], handoff["try_number"]) == ("callback", "triggered", 1)
    assert [r["conf"] for r in h.triggered] == [{"failure": h.failure.id}]
    assert handoff["healer_run_id"] == h.triggered[0]["run_id"]
    # the healer DAG ran each stage as a task and healed it into a PR
    assert str(h.healer_run.state) == "success"
    assert h.healer_states == {"claim": "success", "heal[0]": "success", "report": "success"}
    ledger = Ledger(airflow_env.ledger_url)
    heal = assert_healed_to_a_pr(ledger, h.failure.id, "revenue_by_category", h.repo)
    assert heal["fixer"] == "rule:renamed_column"
    [done] = queue.for_run(ledger, h.failure.id)
    assert (done["status"], done["outcome"], done["heal_id"]) == ("done", "proposed", heal["id"])


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
    [triggered] = new_healer_runs(before)
    assert triggered["conf"] == {"failure": failure.id}
    [handoff] = queue.for_run(ledger, failure.id)
    assert handoff["healer_run_id"] == triggered["run_id"]

    healer = airflow_env.dags["healer"].test(run_conf=triggered["conf"])

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
    assert handoff["try_number"] == 2
    assert [r["conf"] for r in new_healer_runs(before)] == [{"failure": tries[2].id}]


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
    assert (handoff["run_id"], handoff["source"], handoff["status"]) == (failure.id, "listener", "triggered")
    [triggered] = new_healer_runs(before)
    assert triggered["conf"] == {"failure": failure.id} and triggered["run_id"] == handoff["healer_run_id"]


def test_failure_whose_trigger_failed_waits_and_the_schedule_picks_it_up(airflow_env, spark, ledger, pipeline_repo):
    from healer.airflow import heal_on_failure, queue

    run_pipeline(pipeline_repo, "customer_sessions", spark=spark, ledger=ledger)  # the last good run
    # upstream dropped a column outright: the heal can only decline, which keeps this test short
    drift.drop_column(pipeline_repo / "data", "orders", "order_ts")
    # the hand-off targets a healer DAG Airflow does not have: the trigger is refused
    dag = operator_dag("pipeline_unreachable", pipeline_repo, "customer_sessions",
                       on_failure_callback=heal_on_failure(healer_dag_id="healer_not_deployed"))
    sync_dags(dag)
    before = healer_run_ids()

    dag.test()

    failure = ledger.last_failure("customer_sessions")
    [waiting] = queue.for_run(ledger, failure.id)
    assert waiting["status"] == "waiting" and "healer_not_deployed" in waiting["error"], waiting
    assert new_healer_runs(before) == []
    healer = airflow_env.dags["healer"]
    assert healer.schedule == dt.timedelta(minutes=10)  # it sweeps on a schedule

    swept = healer.test()  # no conf: what every scheduled run does

    assert task_states(swept) == {"claim": "success", "heal[0]": "success", "report": "success"}
    [done] = queue.for_run(ledger, failure.id)
    assert (done["status"], done["outcome"], done["healer_run_id"]) == ("done", "declined", swept.run_id)
    [heal] = ledger.select(heals, heals.c.run_id == failure.id)
    assert heal["status"] == "declined" and "no fixer proposed a candidate" in heal["reason"]
    assert heal["id"] == done["heal_id"]

    idle = healer.test()  # the next scheduled run: nothing waits any more
    assert str(idle.state) == "success"
    assert task_states(idle) == {"claim": "success", "heal": "skipped", "report": "success"}
    assert len(ledger.select(heals, heals.c.run_id == failure.id)) == 1
