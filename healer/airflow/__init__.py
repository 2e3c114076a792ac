"""Healer in Airflow: three ways to turn healing on, the healer DAG and the plugin.

    HealerPipelineOperator(pipeline=..., repo=...)     a pipeline run as a task
    @self_healing(pipeline=..., repo=...)               a function (or @task) that runs one
    on_failure_callback=heal_on_failure                 hand a failed task to the healer
    healer_dag()                                        the DAG that heals (dags/healer.py)
    HealerPlugin                                        listener, pages, API, links (entry point)

Names load on first use, so importing the plugin does not import every module.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "HealerPipelineOperator": "healer.airflow.operators",
    "HealerPRLink": "healer.airflow.operators",
    "heal_on_failure": "healer.airflow.handoff",
    "healer_dag": "healer.airflow.dag",
    "self_healing": "healer.airflow.decorators",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'healer.airflow' has no attribute {name!r}")
