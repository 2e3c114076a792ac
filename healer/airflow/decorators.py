"""@self_healing: a function becomes a pipeline run (write–audit–publish) that the healer watches."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Mapping

from healer.airflow.runs import SPEC_ATTR, PipelineSpec, run_managed

log = logging.getLogger(__name__)


def self_healing(*, pipeline: str, repo: str, env: Mapping[str, str] | None = None) -> Callable:
    """Make a function run a pipeline of ``repo``'s healer.yml, recorded in the ledger.

    The function runs first; it may return a mapping of ``${VAR}`` overrides for this run
    (or None). Then the pipeline runs with write–audit–publish and the call returns a short
    summary of the run; a failed run raises ``RunFailed``. Inside an Airflow task the run
    records the task's ids, and the failure callback or the Healer plugin's listener hands
    a failure to the healer DAG.

    Works on plain callables and under ``@task`` (put it below ``@task``)::

        @task(on_failure_callback=heal_on_failure)
        @self_healing(pipeline="clean_customers", repo="/repos/retail")
        def clean_customers(ds=None):
            return {"WAREHOUSE": f"/lake/{ds}"}
    """
    spec = PipelineSpec(pipeline, str(repo))

    def wrap(fn):
        if getattr(fn, "_airflow_is_task_decorator", False):
            # applied above @task: wrap the function that the task will call
            import attrs

            return attrs.evolve(fn, function=wrap(fn.function))

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> dict:
            overrides = fn(*args, **kwargs)
            if overrides is not None and not isinstance(overrides, Mapping):
                raise TypeError(f"{fn.__qualname__} must return a mapping of ${{VAR}} overrides or None, "
                                f"not {type(overrides).__name__}")
            merged = {**(env or {}), **(overrides or {})}
            ti = _current_ti()
            return run_managed(spec, env={k: str(v) for k, v in merged.items()}, ti=ti,
                               source="airflow:decorator" if ti is not None else "python")

        setattr(run, SPEC_ATTR, spec)
        return run

    return wrap


def _current_ti():
    try:
        from airflow.sdk import get_current_context

        return get_current_context()["ti"]
    except Exception:  # not inside an Airflow task (or no Airflow at all): a plain call
        log.debug("no Airflow task context", exc_info=True)
        return None
