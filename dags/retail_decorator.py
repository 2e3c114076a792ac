"""Healing on, the decorator way: a @task function decorated with @self_healing.

The function may return ``${VAR}`` overrides for the run (here: none); the pipeline runs
with write–audit–publish, and a failure goes to the healer DAG through the callback.
"""

import datetime as dt

from airflow.sdk import dag, task

from _examples import REPO
from healer.airflow import heal_on_failure, self_healing


@dag(dag_id="retail_decorator", schedule="@daily", start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
     catchup=False, tags=["healer", "example"])
def retail_decorator():
    @task(on_failure_callback=heal_on_failure)
    @self_healing(pipeline="clean_customers", repo=REPO)
    def clean_customers():
        return None

    clean_customers()


retail_decorator()
