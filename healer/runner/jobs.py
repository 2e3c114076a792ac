"""Running a job's code: bind inputs as temp views, then the SQL or ``transform(spark)``."""

from __future__ import annotations

import logging
import importlib.util
import sys
import traceback as tb
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from healer.manifest import Pipeline

log = logging.getLogger(__name__)


@dataclass
class ErrorInfo:
    """An exception reduced to what the ledger and triage need."""

    error_class: str
    params: dict
    message: str
    traceback: str

    @property
    def first_line(self) -> str:
        return (self.message.strip().splitlines() or [""])[0]


def describe_error(exc: BaseException) -> ErrorInfo:
    """Spark's error condition and message parameters when present, else the exception type."""
    error_class, params = type(exc).__name__, {}
    get_condition = getattr(exc, "getCondition", None)
    if callable(get_condition):
        try:
            error_class = get_condition() or error_class
            params = dict(exc.getMessageParameters() or {})
        except Exception:  # a JVM that is gone cannot describe its error
            log.debug("no error condition from %s", type(exc).__name__, exc_info=True)
    java = getattr(exc, "java_exception", None)
    if java is not None and error_class == type(exc).__name__:
        try:
            error_class = java.getClass().getName()
        except Exception:
            log.debug("no Java class name for %s", type(exc).__name__, exc_info=True)
    message = str(exc) or type(exc).__name__
    if hasattr(exc, "getMessage") and error_class != type(exc).__name__:
        try:
            message = exc.getMessage() or message
        except Exception:
            log.debug("no Java message for %s", type(exc).__name__, exc_info=True)
    return ErrorInfo(error_class=str(error_class), params={str(k): str(v) for k, v in params.items()},
                     message=message, traceback="".join(tb.format_exception(exc))[-8000:])


@contextmanager
def bound_inputs(spark, frames: dict):
    """Register each DataFrame as a temp view under its logical name, dropped afterwards.

    A qualified catalog name (``db.table``) cannot be a temp view; the job reads it from
    the catalog directly.
    """
    frames = {name: df for name, df in frames.items() if "." not in name}
    for name, df in frames.items():
        df.createOrReplaceTempView(name)
    try:
        yield
    finally:
        for name in frames:
            try:
                spark.catalog.dropTempView(name)
            except Exception:  # the session may be gone; the view goes with it
                log.debug("temp view %s not dropped", name, exc_info=True)


def compute(spark, pipeline: Pipeline, root: Path | None = None):
    """The job's result as a DataFrame (inputs must already be bound).

    ``root`` overrides the pipeline's repo root, for running a patched copy of the job.
    """
    root = Path(root or pipeline.root)
    job_path = root / pipeline.job
    if pipeline.kind == "sql":
        return spark.sql(job_path.read_text())
    return run_python_job(spark, job_path, root)


def run_python_job(spark, job_path: Path, root: Path):
    """Import the module with its folder and the repo root on sys.path, call transform(spark).

    Modules imported from the repo are forgotten afterwards, so a patched copy of the same
    job in another directory is never served from the import cache.
    """
    from pyspark.sql import DataFrame

    before = set(sys.modules)
    added = [p for p in (str(job_path.parent), str(root)) if p not in sys.path]
    sys.path[:0] = added
    name = f"healer_job_{job_path.stem}_{uuid.uuid4().hex[:8]}"
    try:
        spec = importlib.util.spec_from_file_location(name, job_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        result = module.transform(spark)
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)
        for mod in set(sys.modules) - before:
            file = getattr(sys.modules[mod], "__file__", None) or ""
            if mod == name or file.startswith(str(root)):
                del sys.modules[mod]
    if not isinstance(result, DataFrame):
        raise TypeError(f"{job_path}: transform(spark) returned {type(result).__name__}, not a DataFrame")
    return result
