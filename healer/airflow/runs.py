"""Pipeline runs from Airflow tasks, and what a run records about the task that ran it.

Nothing here imports Airflow: a task instance is read by its attributes, so the same code
serves the operator, the decorator, the failure callback and the listener.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from healer import failure as triage, telemetry
from healer.errors import RunFailed
from healer.ledger import Ledger, RunRecord, as_utc, utcnow

log = logging.getLogger(__name__)

# task attribute marking a healer-managed task: the operator sets it, the decorator puts it
# on the callable (which @task keeps as ``python_callable``)
SPEC_ATTR = "__healer__"


@dataclass(frozen=True)
class PipelineSpec:
    """The pipeline a task runs: its name in healer.yml and the repo holding it."""

    pipeline: str
    repo: str


def managed_spec(task: Any) -> PipelineSpec | None:
    """The pipeline of a healer-managed task (operator or decorated callable), else None."""
    for holder in (task, getattr(task, "python_callable", None)):
        spec = getattr(holder, SPEC_ATTR, None)
        if isinstance(spec, PipelineSpec):
            return spec
    return None


def task_context(ti: Any, source: str) -> dict:
    """Who ran a pipeline: the Airflow ids, try number and log URL, as stored in the run's context."""
    context: dict[str, Any] = {"source": source}
    for key in ("dag_id", "task_id", "run_id", "map_index", "try_number", "max_tries"):
        value = getattr(ti, key, None)
        if value is not None:
            context[key] = value
    try:
        context["log_url"] = ti.log_url
    except Exception:  # a URL is a convenience; no base_url configured is not an error
        log.debug("no log URL for %s", context.get("task_id"), exc_info=True)
    traceparent = telemetry.traceparent_of(ti)
    if traceparent:  # the heal's trace links to this try's span (Airflow's OpenTelemetry trace)
        context["traceparent"] = traceparent
    return context


def will_retry(ti: Any) -> bool:
    """True when Airflow will run this task again, so healing waits for the last try."""
    state = str(getattr(ti, "state", "") or "").lower().rsplit(".", 1)[-1]
    if state == "up_for_retry":
        return True
    if state == "failed":  # Airflow's own verdict: no try follows
        return False
    # no state to go by: the numbers, by the same rule a heal applies (healer.failure.will_retry)
    return triage.will_retry(getattr(ti, "try_number", None), getattr(ti, "max_tries", None))


def run_managed(spec: PipelineSpec, *, env: Mapping[str, str] | None = None, ti: Any = None,
                source: str = "airflow") -> dict:
    """Run a pipeline with write–audit–publish and return a short, JSON-able summary.

    Raises RunFailed (carrying the recorded run) when the run fails at any stage, so the
    task fails and the failure callback or listener can hand it to the healer.
    """
    from healer.runner.run import run_pipeline

    context = task_context(ti, source) if ti is not None else {"source": source}
    merged = {**os.environ, **env} if env else None
    # a worker that already runs Spark (or a test) keeps its session: get_spark() returns it
    record = run_pipeline(spec.repo, spec.pipeline, env=merged, context=context)
    return summary(record)


def summary(record: RunRecord) -> dict:
    """The part of a run record worth an XCom."""
    return {"run": record.id, "pipeline": record.pipeline, "status": record.status, "rows": record.row_count,
            "output": record.output_location, "commit": record.commit}


def recorded_failure(ledger: Ledger, error: BaseException | None, key_context: dict, pipeline: str | None,
                     repo: str | None, since=None) -> RunRecord | None:
    """The failed run this task try already recorded, if any.

    In order: the run carried by the exception (the operator and the decorator raise
    RunFailed), a failed run whose context names this try, or a failed run of the same
    pipeline started during this try by something that did not know the Airflow ids (a
    ``healer run`` in a BashOperator); that one is given the ids.
    """
    if isinstance(error, RunFailed) and error.run is not None and error.run.id is not None:
        return ledger.get_run(error.run.id) or error.run
    if not pipeline:
        return None
    root = str(Path(repo).resolve()) if repo else None
    ids = ("dag_id", "task_id", "run_id", "map_index", "try_number")
    candidates = ledger.runs(pipeline=pipeline, status="failed", limit=20, repo=root)
    for run in candidates:
        if all((run.context or {}).get(k) == key_context.get(k) for k in ids):
            return run
    if since is not None:
        for run in candidates:
            if run.started_at and as_utc(run.started_at) >= as_utc(since) and not (run.context or {}).get("dag_id"):
                run.context = {**(run.context or {}), **key_context}
                ledger.finish_run(run)
                return run
    return None


def record_failure(ledger: Ledger, error: BaseException | None, context: dict, pipeline: str, repo: str,
                   started_at=None) -> RunRecord:
    """Record a failed run from the exception a task raised (no run was recorded for it)."""
    from healer.runner.jobs import ErrorInfo, describe_error
    from healer.runner.run import repo_state

    if isinstance(error, BaseException):
        info = describe_error(error)
    else:
        text = str(error) if error else "the task failed without an exception"
        info = ErrorInfo(error_class="AirflowTaskFailed", params={}, message=text, traceback="")
    root = Path(repo).resolve()
    state = repo_state(root)
    record = RunRecord(pipeline=pipeline, repo=str(root), commit=state.commit, dirty=state.dirty, status="failed",
                       stage="job", error_class=info.error_class, error_params=info.params,
                       error_message=info.message, traceback=info.traceback or None, context=dict(context),
                       started_at=started_at or utcnow(), finished_at=utcnow())
    ledger.start_run(record)  # inserted whole: it is already finished
    return record
