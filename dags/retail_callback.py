"""Healing on, the callback way: any task that runs a pipeline, with ``heal_on_failure``.

The task runs ``healer run`` (any way of running the pipeline will do); the callback names
the pipeline, finds the run that failed (or records the task's error) and hands it off.
"""

import datetime as dt
import shlex

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from _examples import REPO
from healer.airflow import heal_on_failure

with DAG(
    dag_id="retail_callback",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["healer", "example"],
):
    BashOperator(
        task_id="customer_sessions",
        bash_command=f"healer run customer_sessions --repo {shlex.quote(REPO)}",
        on_failure_callback=heal_on_failure(pipeline="customer_sessions", repo=REPO),
    )
