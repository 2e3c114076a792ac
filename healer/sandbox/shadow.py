"""The shadow run: a candidate that passed the sample gate, run on the full current inputs.

Expectations are written to catch broken data, not a wrong formula: a plausible wrong fix
passes them on a sample. The shadow run is Healer's own evidence: the candidate on every
row of today's inputs (mounted read-only into an isolated worker, like the sample run),
its output in a shadow directory, every expectation and the schema contract checked on it,
and a data diff against the last good output, which a failed run leaves in place.

Bounded by policy: inputs over ``max_shadow_rows`` rows, or inputs a worker cannot mount
(catalog tables, remote URIs), are not shadow-run; the verdict then says "validated on a
sample only" and the PR is a draft.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from healer.sandbox.datadiff import DataDiff, diff, output_key
from healer.sandbox.isolation import Worker, local_path
from healer.settings import Settings

if TYPE_CHECKING:
    from healer.expectations import ExpectationResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowCheck:
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Shadow:
    """What the full-data run of one candidate showed."""

    ran: bool
    reason: str  # why it did not run, or how it ended
    rows_read: int | None = None  # rows of the current inputs it read
    output_rows: int | None = None
    last_good_rows: int | None = None
    seconds: float = 0.0
    checks: tuple[ShadowCheck, ...] = ()
    expectations: tuple[ExpectationResult, ...] = ()
    diff: DataDiff | None = None
    input_rows_now: dict = field(default_factory=dict)
    diff_seconds: float = 0.0  # of ``seconds``: the data diff's share

    @property
    def passed(self) -> bool:
        return self.ran and all(c.passed for c in self.checks)

    def failures(self) -> list[str]:
        return [f"shadow {c.name}: {c.detail}" for c in self.checks if not c.passed]

    def to_json(self) -> dict:
        return asdict(self) | {"expectations": tuple(e.to_json() for e in self.expectations)}  # the stored shape


def not_run(reason: str, **kw) -> Shadow:
    return Shadow(ran=False, reason=reason, **kw)


def why_not(sandbox, input_rows: dict[str, int]) -> str | None:
    """Why the candidates of ``sandbox`` cannot be shadow-run, or None when they can."""
    pipeline, policy = sandbox.pipeline, sandbox.policy
    unmountable = [s.name for s in pipeline.inputs.values() if s.path is None or local_path(s.path) is None]
    if unmountable:
        return (f"inputs {', '.join(unmountable)} are catalog tables or remote paths, which the isolated "
                "worker cannot read")
    total = sum(input_rows.values())
    if total > policy.max_shadow_rows:
        return f"the inputs hold {total:,} rows, over the shadow-run bound of {policy.max_shadow_rows:,} " \
               "(HEALER_MAX_SHADOW_ROWS)"
    return None


@dataclass
class ShadowWorker:
    """A worker that can read the full inputs, started before it is needed (its JVM takes seconds)."""

    worker: Worker
    directory: Path

    @classmethod
    def start(cls, sandbox) -> "ShadowWorker":
        pipeline = sandbox.pipeline
        directory = Path(tempfile.mkdtemp(prefix="healer-shadow-", dir=_shadow_base(sandbox)))
        hidden = [p for p in sandbox.hidden_paths() if p not in {s.path for s in pipeline.inputs.values()}]
        worker = Worker(sandbox.isolation, directory / "run", sandbox.inputs_dir, hidden, sandbox.java_options(),
                        readable=[s.path for s in pipeline.inputs.values()])
        return cls(worker, directory)

    def close(self) -> None:
        self.worker.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def shadow_run(sandbox, root: Path, input_rows: dict[str, int], started: ShadowWorker | None = None) -> Shadow:
    """Run the candidate under ``root`` on the full inputs of ``sandbox.pipeline`` and judge it.

    ``started``: a shadow worker started ahead of time; it is used up either way.
    """
    pipeline, policy = sandbox.pipeline, sandbox.policy
    base = dict(rows_read=sum(input_rows.values()), input_rows_now=dict(input_rows),
                last_good_rows=sandbox.last_good.row_count if sandbox.last_good else None)
    reason = why_not(sandbox, input_rows)
    if reason:
        if started is not None:
            started.close()
        return not_run(reason, **base)
    t0 = time.monotonic()
    shadow = started or ShadowWorker.start(sandbox)
    run_dir = shadow.worker.run_dir
    output_dir = run_dir / "output"
    try:
        from healer.sandbox.run import copy_code, output_problem, worker_problem

        copy_code(root, run_dir / "code", pipeline)
        request = {"kind": pipeline.kind, "job": pipeline.job, "code_dir": str(run_dir / "code"),
                   "inputs": {s.name: {"path": s.path, "format": s.format, "options": dict(s.options)}
                              for s in pipeline.inputs.values()},
                   "output": str(output_dir)}
        ran = shadow.worker.run(request, timeout_s=policy.max_shadow_seconds)
        shadow.worker.kill()
        problem = worker_problem(ran, policy.max_shadow_seconds) or output_problem(output_dir, policy.max_shadow_output_bytes)
        if problem:
            error_class, message = problem
            check = ShadowCheck("runs", False, f"{error_class}: {(message.splitlines() or [''])[0][:300]}")
            return Shadow(True, "the candidate failed on the full data", checks=(check,),
                          seconds=round(time.monotonic() - t0, 2), **base)
        sandbox.area.push(sandbox.spark, output_dir)
        return _judge(sandbox, sandbox.area.spark_path(output_dir), t0, base)
    finally:
        shadow.close()


def _shadow_base(sandbox) -> str:
    """``HEALER_SHADOW_DIR`` (a local directory, for local Spark) or the sandbox's own directory (in scratch)."""
    from healer.scratch import is_local_master

    configured = Settings.from_env().shadow_dir
    # a cluster's executors read the shadow output back: it must stay in the heal's (shared) scratch
    if configured and is_local_master(sandbox.spark.sparkContext.master):
        configured.mkdir(parents=True, exist_ok=True)
        return str(configured)
    return str(sandbox.workdir)


def _judge(sandbox, output_dir: str, t0: float, base: dict) -> Shadow:
    from healer.expectations import run_expectations
    from healer.runner.profile import schema_json

    spark = sandbox.spark
    output = spark.read.parquet(output_dir)
    rows = output.count()
    audit = run_expectations(output, sandbox.expectations)
    failed = audit.failed
    checks = [ShadowCheck("runs", True, f"ran on {base['rows_read']:,} input rows, wrote {rows:,} rows"),
              ShadowCheck("expectations", audit.success,
                          f"{len(audit.results) - len(failed)}/{len(audit.results)} passed on the full output"
                          + ("" if audit.success else ": " + "; ".join(r.summary() for r in failed)))]
    schema = sandbox.schema_check(schema_json(output))
    checks.append(ShadowCheck(schema.name, schema.passed, schema.detail))
    last_good = _last_good_output(sandbox)
    data_diff, t_diff = None, time.monotonic()
    if last_good is not None:
        data_diff = diff(last_good, output, output_key(sandbox.pipeline, sandbox.expectations))
    return Shadow(True, "ran on the full current inputs", output_rows=rows, checks=tuple(checks),
                  expectations=audit.results, diff=data_diff,
                  seconds=round(time.monotonic() - t0, 2), diff_seconds=round(time.monotonic() - t_diff, 2), **base)


def _last_good_output(sandbox):
    """The output the last good run published (a failed run never replaces it), or None.

    Read the way the runner reads an input of the same place and format.
    """
    from healer.manifest import InputSpec
    from healer.runner import io

    out = sandbox.pipeline.output
    try:
        return io.read_input(sandbox.spark, InputSpec(name="last good output", path=out.path, table=out.table,
                                                      format=out.format, options=dict(out.options)))
    except io.MissingInput:
        return None
    except Exception:  # noqa: BLE001 -- no comparison is a doubt, not a reason to fail the heal
        log.warning("could not read the last good output %s", out.location, exc_info=True)
    return None
