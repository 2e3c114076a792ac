"""The healer DAG: heals failures handed off by pipeline tasks, and sweeps those that wait.

Triggered with ``{"failure": <run id>}`` by ``heal_on_failure`` and the Healer plugin's
listener; every ten minutes it also heals failures whose trigger did not get through.
"""

from healer.airflow.dag import healer_dag

dag = healer_dag()
