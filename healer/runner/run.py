"""Write–audit–publish: compute to staging, audit with the expectations, publish atomically.

Every run is recorded in the ledger with its input schemas and output profile, and fails
at exactly one stage: config, input, job, audit or publish. A failed run never leaves a
half-written or replaced output.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from healer import config
from healer.errors import ConfigError, RunFailed
from healer.expectations import load_expectations, run_expectations
from healer.ledger import Ledger, RunRecord, utcnow
from healer.manifest import Manifest, Pipeline, load_manifest
from healer.runner import io
from healer.runner.jobs import bound_inputs, compute, describe_error
from healer.runner.profile import profile, schema_json

log = logging.getLogger(__name__)

STAGES = ("config", "input", "job", "audit", "publish")
EXIT_CODES = {"config": 2, "input": 3, "job": 4, "audit": 5, "publish": 6}


@dataclass
class RepoState:
    commit: str | None
    dirty: bool


def repo_state(root: Path) -> RepoState:
    """The git commit a run used (None outside a git repo) and whether the tree was dirty."""
    try:
        import git

        repo = git.Repo(root, search_parent_directories=True)
        return RepoState(commit=repo.head.commit.hexsha, dirty=repo.is_dirty(untracked_files=False))
    except Exception:  # not a git checkout (or no git): the run records no commit
        log.debug("no git state for %s", root, exc_info=True)
        return RepoState(commit=None, dirty=False)


def run_pipeline(
    repo: str | Path,
    name: str,
    *,
    spark=None,
    ledger: Ledger | None = None,
    env: Mapping[str, str] | None = None,
    context: dict | None = None,
    check: bool = True,
) -> RunRecord:
    """Run one pipeline of the repo's healer.yml and record it.

    Returns the run record; raises RunFailed (with ``.stage`` and ``.run``) on failure
    unless ``check`` is False.
    """
    from healer.expectations import preload
    from healer.runner.session import get_spark

    if spark is None:
        preload()
    ledger = ledger or Ledger()
    root = Path(repo).resolve()
    state = repo_state(root)
    record = RunRecord(pipeline=name, repo=str(root), commit=state.commit, dirty=state.dirty,
                       context=dict(context or {}), started_at=utcnow())
    ledger.start_run(record)
    t0 = time.monotonic()
    try:
        try:
            manifest = load_manifest(root, env)
            pipeline = manifest.pipeline(name)
            expectations = load_expectations(pipeline.expectations_path) if pipeline.expectations else []
        except ConfigError as exc:
            return _fail(ledger, record, "config", str(exc), "ConfigError", t0, check)
        spark = spark or get_spark()
        _run_stages(_Stages(spark, pipeline, record, ledger, t0, check), expectations)
        return record
    finally:
        if record.status == "running":  # an unexpected error: never leave a run dangling
            record.status, record.stage = "failed", record.stage or "config"
            record.error_class = record.error_class or "InternalError"
            record.error_message = record.error_message or "the run stopped on an unexpected error"
            record.finished_at = utcnow()
            ledger.finish_run(record)
        # a merged Healer fix of this pipeline is verified (or found regressed) by its next run
        from healer.governance.verify import on_run

        on_run(ledger, record)


@dataclass
class _Stages:
    """One run past its config stage: each stage records what it saw, or fails the run (see ``_fail``).

    A stage returns False when it failed the run (already recorded; with ``check`` it raised instead).
    """

    spark: object
    pipeline: Pipeline
    record: RunRecord
    ledger: Ledger
    t0: float
    check: bool

    def fail(self, stage: str, line: str, error_class: str, **details) -> bool:
        _fail(self.ledger, self.record, stage, line, error_class, self.t0, self.check, **details)
        return False

    def fail_on(self, stage: str, exc: Exception, where: str, *, message: bool = False) -> bool:
        info = describe_error(exc)
        return self.fail(stage, f"{where}: {info.first_line}", info.error_class, params=info.params,
                         traceback=info.traceback, message=info.message if message else None)

    def read_inputs(self) -> dict | None:
        """input: read every input and snapshot its schema (None: the run failed)."""
        frames = {}
        self.record.stage = "input"
        for spec in self.pipeline.inputs.values():
            self.record.input_locations[spec.name] = spec.location
            try:
                df = io.read_input(self.spark, spec)
                self.record.input_schemas[spec.name] = schema_json(df)
            except io.MissingInput as exc:
                self.fail("input", str(exc), "INPUT_NOT_FOUND", params={"input": spec.name, "location": spec.location})
                return None
            except Exception as exc:
                self.fail_on("input", exc, f"input '{spec.name}'")
                return None
            frames[spec.name] = df
        for name, df in frames.items():
            try:
                self.record.input_profiles[name] = profile(df, row_limit=config.profile_sample_rows())
            except Exception:  # a profile is evidence, not a reason to fail the run
                log.info("input %s not profiled: a later heal compares without it", name, exc_info=True)
        return frames

    def compute(self, frames: dict, staged: str | None, staged_table: str | None) -> bool:
        """job: compute and write the result to staging."""
        self.record.stage = "job"
        try:
            with bound_inputs(self.spark, frames):
                result = compute(self.spark, self.pipeline)
                if staged:
                    out = self.pipeline.output
                    io.write_frame(result, staged, out.format, out.options, out.partition_by)
                else:
                    result.write.mode("errorifexists").saveAsTable(staged_table)
        except Exception as exc:
            return self.fail_on("job", exc, str(self.pipeline.job), message=True)
        return True

    def audit(self, expectations, staged: str | None, staged_table: str | None) -> bool:
        """audit: exactly the staged data that would be published."""
        record = self.record
        record.stage = "audit"
        staged_df = (io.read_input(self.spark, _staged_input(staged, self.pipeline)) if staged
                     else self.spark.table(staged_table))
        record.output_schema = schema_json(staged_df)
        record.output_profile = profile(staged_df)
        record.row_count = record.output_profile["row_count"]
        audit = run_expectations(staged_df, expectations)
        if not audit.success:
            record.failed_expectations = [r.to_json() for r in audit.failed]  # the ledger's JSON column
            return self.fail("audit", f"expectations failed: {audit.summary()}", "EXPECTATIONS_FAILED",
                             params={"failed": str(len(audit.failed))})
        return True

    def publish(self, staged: str | None, staged_table: str | None, run_key: str) -> bool:
        """publish: swap the staged result into place."""
        self.record.stage = "publish"
        out = self.pipeline.output
        try:
            if staged:
                io.publish_path(self.spark, staged, out, run_key)
            else:
                io.publish_table(self.spark, staged_table, out, run_key)
        except Exception as exc:
            return self.fail_on("publish", exc, f"publish to {out.location}")
        return True

    def succeed(self) -> None:
        record = self.record
        record.status, record.stage = "success", None
        record.finished_at, record.duration_s = utcnow(), time.monotonic() - self.t0
        self.ledger.finish_run(record)


def _run_stages(run: _Stages, expectations) -> None:
    """input → job → audit → publish; the staging output is dropped whatever happens."""
    run_key = uuid.uuid4().hex[:10]
    output = run.pipeline.output
    run.record.output_location = output.location
    frames = run.read_inputs()
    if frames is None:
        return
    staged = io.staging_path(output, run_key) if output.path else None
    staged_table = f"{output.table}__healer_staging_{run_key}" if output.table else None
    try:
        if not (run.compute(frames, staged, staged_table) and run.audit(expectations, staged, staged_table)
                and run.publish(staged, staged_table, run_key)):
            return
        staged = staged_table = None  # published: nothing left to drop
    finally:
        _drop_staging(run.spark, staged, staged_table)
    run.succeed()


def _staged_input(path: str, pipeline: Pipeline):
    from healer.manifest import InputSpec

    return InputSpec(name="staged", path=path, format=pipeline.output.format)


def _drop_staging(spark, staged: str | None, staged_table: str | None) -> None:
    try:
        if staged:
            io.delete_path(spark, staged)
        if staged_table:
            spark.sql(f"DROP TABLE IF EXISTS {staged_table}")
    except Exception:  # the run's own outcome matters more than its leftovers
        log.warning("staging %s not removed", staged or staged_table, exc_info=True)


def _fail(ledger, record: RunRecord, stage: str, line: str, error_class: str, t0: float, check: bool, *,
          params=None, traceback=None, message=None) -> RunRecord:
    record.status, record.stage = "failed", stage
    record.error_class, record.error_params = error_class, params or {}
    record.error_message = message or line
    record.traceback = traceback
    record.finished_at, record.duration_s = utcnow(), time.monotonic() - t0
    ledger.finish_run(record)
    if check:
        raise RunFailed(f"{record.pipeline}: {stage} failed: {line}", stage=stage, run=record)
    return record
