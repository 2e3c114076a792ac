"""Healing on, the operator way: each pipeline is a HealerPipelineOperator task.

A failed run (a crash, or output that fails its expectations) is recorded in the ledger and
handed to the healer DAG by ``heal_on_failure``; the task's "Healer PR" link follows it.
"""

import datetime as dt

from airflow.sdk import DAG

from _examples import REPO
from healer.airflow import HealerPipelineOperator, heal_on_failure

with DAG(
    dag_id="retail_operator",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=5), "on_failure_callback": heal_on_failure},
    tags=["healer", "example"],
):
    HealerPipelineOperator(task_id="revenue_by_category", pipeline="revenue_by_category", repo=REPO)
    HealerPipelineOperator(task_id="customer_lifetime", pipeline="customer_lifetime", repo=REPO)
