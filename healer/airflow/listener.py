"""The plugin's listener: failures of healer-managed tasks go to the healer without a callback.

Airflow calls it in the task's process after the task failed (and after any failure
callback; a try both report is handed off once). It hands off and returns; it never raises.
"""

from __future__ import annotations

import logging

from airflow.listeners import hookimpl

log = logging.getLogger("healer.airflow")


@hookimpl
def on_task_instance_failed(previous_state, task_instance, error) -> None:
    """Hand off the failure of a HealerPipelineOperator or @self_healing task."""
    try:
        from healer.airflow.handoff import hand_off
        from healer.airflow.runs import managed_spec

        # Only the task process knows the task object; a TaskInstance that the API server
        # marks failed (a person clicking "mark failed") has no pipeline error to heal.
        if managed_spec(getattr(task_instance, "task", None)) is None:
            return
        hand_off(task_instance, error, source="listener")
    except Exception as exc:
        log.warning("healer: listener could not hand off a failure: %s: %s", type(exc).__name__, exc)
