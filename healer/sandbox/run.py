"""The sandbox: a candidate run on a deterministic sample of the *current* real inputs.

The healer (trusted) samples every input into the sandbox's own directory: the largest
input first, then every other input keeps the rows that join to what was already sampled
(by shared key columns), so joins stay alive. A candidate is untrusted code: it must pass
the static gate (``gate.py``), then runs in a worker process under OS isolation
(``isolation.py``) that sees only the samples and writes only to its own run directory.
The job code is the same as in production; only the binding of names to data differs.

The healer then reads the worker's output (links refused, size capped) and judges it: it
ran, every expectation passes, the output schema equals the last good one, no column's
null fraction jumps, and the production output is untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from healer.errors import ConfigError
from healer.evidence.probes import widens
from healer.expectations import ExpectationResult, run_expectations
from healer.ledger import RunRecord
from healer.manifest import Pipeline, output_overlap
from healer.policy import Policy
from healer.runner import io
from healer.runner.profile import profile, schema_columns, schema_json
from healer import telemetry
from healer.sandbox import gate
from healer.sandbox.isolation import Isolation, Worker, WorkerResult, check_isolation, isolation_from_env
from healer.sandbox.readiness import Readiness, judge
from healer.sandbox.shadow import Shadow, ShadowWorker, shadow_run, why_not
from healer.scratch import Area
from healer.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Verdict:
    """What the sandbox found for one candidate."""

    passed: bool
    checks: list[Check]
    expectations: list[ExpectationResult] = field(default_factory=list)
    sample_sizes: dict = field(default_factory=dict)  # input -> rows
    output_rows: int | None = None
    profile_rows: list[dict] = field(default_factory=list)  # per column: before vs after
    error: str | None = None
    error_class: str | None = None
    duration_s: float = 0.0
    isolation: str = Isolation.BUBBLEWRAP.value  # how the candidate was isolated: bubblewrap | process
    shadow: Shadow | None = None  # the full-data run, when the sample gate passed
    readiness: Readiness | None = None  # Healer's ready/draft verdict from the evidence

    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]

    def to_json(self) -> dict:
        # the records' own JSON, the shape stored candidates have always had
        return asdict(self) | {"expectations": [e.to_json() for e in self.expectations],
                               "shadow": self.shadow.to_json() if self.shadow is not None else None}


class Sandbox:
    """Samples once per heal; runs any number of candidates against the same samples.

    Each candidate gets a fresh worker process; one is started ahead of time (while the
    evidence is gathered, or while the last verdict is judged) so its Spark start-up is
    not on the heal's path.
    """

    def __init__(self, spark, pipeline: Pipeline, last_good: RunRecord | None, expectations: list,
                 policy: Policy | None = None, workdir: Path | None = None, isolation: Isolation | None = None,
                 area: Area | None = None):
        self.spark, self.pipeline, self.last_good = spark, pipeline, last_good
        self.expectations, self.policy = expectations, policy or Policy()
        self.isolation = isolation or isolation_from_env()
        check_isolation(self.isolation)
        # ``area``: the heal's scratch (shared storage on a cluster); this sandbox takes a directory in it
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="healer-sandbox-", dir=area.local if area else None))
        self.area = area or Area(self.workdir, self.workdir.resolve().as_uri())
        self._guard_output_location()
        self.inputs_dir = self.workdir / "inputs"
        self.inputs_dir.mkdir(parents=True, exist_ok=True)
        self.frames: dict = {}
        self.sample_sizes: dict[str, int] = {}
        self.sample_plan: dict[str, str] = {}  # input -> how it was sampled
        self.input_rows: dict[str, int] = {}  # input -> rows now, on the full data
        self._preparing: threading.Thread | None = None
        self._prepare_error: BaseException | None = None
        self._runs = 0
        self._spare: Worker | None = None
        self._shadow_spare: ShadowWorker | None = None
        self.contract_from_commit = False  # set when the code changed: the new commit's columns are the contract
        self._java_options: str | None = None

    def prepare_in_background(self) -> None:
        """Start sampling now, in a thread, and a worker for the first candidate: the heal gathers evidence meanwhile.

        Sampling needs only the inputs, not the candidate; ``run`` waits for it to finish.
        """
        def work():
            try:
                self.prepare()
            except BaseException as exc:  # noqa: BLE001 -- re-raised by run()
                self._prepare_error = exc

        self._preparing = threading.Thread(target=work, name="healer-sandbox-prepare", daemon=True)
        self._preparing.start()
        self.start_spare_worker()

    def _prepared(self) -> None:
        if self._preparing is not None:
            self._preparing.join()
            self._preparing, error, self._prepare_error = None, self._prepare_error, None
            if error is not None:
                self.frames = {}
                raise error
        if not self.frames:
            self.prepare()

    def _guard_output_location(self) -> None:
        out = self.pipeline.output.path
        if out and str(self.workdir.resolve()).startswith(str(Path(out).resolve())):
            raise ConfigError(f"sandbox directory {self.workdir} lies inside the production output {out}")

    # -- sampling -----------------------------------------------------------------------
    def prepare(self) -> dict[str, int]:
        """Materialize a deterministic, join-preserving sample of every input; return sizes."""
        limit = self.policy.sample_rows
        current = {}
        for spec in self.pipeline.inputs.values():
            current[spec.name] = io.read_input(self.spark, spec)
        counts = {name: df.count() for name, df in current.items()}
        self.input_rows = dict(counts)
        sampled: dict[str, object] = {}
        for name in sorted(current, key=lambda n: -counts[n]):
            df = current[name]
            link = self._link(df, sampled)
            if link:
                other, keys = link
                keyset = sampled[other].select(*keys).distinct()
                df = df.join(keyset, keys, "left_semi")
                self.sample_plan[name] = f"rows joining the {other} sample on {', '.join(keys)}"
            elif counts[name] > limit:
                fraction = min(1.0, limit * 1.3 / counts[name])
                df = df.sample(fraction=fraction, seed=42)
                self.sample_plan[name] = f"seeded {fraction:.2%} sample"
            else:
                self.sample_plan[name] = "all rows"
            df = df.limit(limit)
            path = self.area.spark_path(self._sample_path(name))
            df.write.mode("overwrite").parquet(path)
            self.area.pull(self.spark, self._sample_path(name))  # the worker reads a local copy
            sampled[name] = self.spark.read.parquet(path)
            self.sample_sizes[name] = sampled[name].count()
        self.frames = {name: sampled[name] for name in current}
        return self.sample_sizes

    def _sample_path(self, name: str) -> Path:
        return self.inputs_dir / name.replace("/", "_")

    @staticmethod
    def _link(df, sampled: dict):
        """(sampled input, key columns) this input joins to, preferring id-like columns."""
        cols = {c.lower(): (c, t) for c, t in df.dtypes}
        best = None
        for other, odf in sampled.items():
            shared = [c for c, t in odf.dtypes if c.lower() in cols and cols[c.lower()][1] == t]
            keys = [c for c in shared if c.lower().endswith("id") or c.lower().endswith("_key")]
            if keys and (best is None or len(keys) < len(best[1])):
                best = (other, keys[:1])
        return best

    # -- workers ------------------------------------------------------------------------
    def hidden_paths(self) -> list[str]:
        """Everything production the worker must not see, should a bound directory hold it."""
        paths = [spec.path for spec in self.pipeline.inputs.values() if spec.path]
        paths += [p for p in (self.pipeline.output.path, str(self.pipeline.root)) if p]
        home = Settings.from_env().resolved_home()  # the ledger and other heals' workspaces
        return paths + ([str(home)] if home.exists() else [])

    def start_spare_worker(self) -> None:
        """Start the next candidate's worker now; its Spark warms up while the healer does other work."""
        if self._spare is None:
            self._spare = self._new_worker()

    def java_options(self) -> str:
        """The workers' JVM options: the class archive when one is built (never a new build), quick JIT."""
        if self._java_options is None:
            from healer.runner import jvm_cache

            self._java_options = " ".join(filter(None, [jvm_cache.existing_archive_options(), "-XX:TieredStopAtLevel=1"]))
        return self._java_options

    def _new_worker(self) -> Worker:
        self._runs += 1
        run_dir = self.workdir / "runs" / f"{self._runs:02d}"
        return Worker(self.isolation, run_dir, self.inputs_dir, self.hidden_paths(), self.java_options())

    def _take_worker(self) -> Worker:
        worker, self._spare = self._spare, None
        return worker or self._new_worker()

    # -- running ------------------------------------------------------------------------
    def run(self, root: Path, patch=None) -> Verdict:
        """Run the candidate under ``root`` (a patched workspace) on the samples and judge it.

        ``patch`` (the candidate's edits) tells the gate which files changed and who made them.
        """
        t0 = time.monotonic()
        base = dict(isolation=self.isolation.value)
        try:
            self._prepared()
        except io.MissingInput as exc:
            return Verdict(False, [Check("inputs", False, str(exc))], duration_s=time.monotonic() - t0, **base)
        except Exception as exc:  # an input this binding cannot read: this candidate fails, with the reason
            log.info("sandbox inputs could not be sampled", exc_info=True)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            return Verdict(False, [Check("inputs", False, f"the inputs could not be sampled: {first}")],
                           error=first, error_class="SANDBOX_INPUTS", duration_s=time.monotonic() - t0, **base)
        with telemetry.span("healer.gate") as span:
            refusal = self._refusal(root, patch)
            span.set({"healer.passed": refusal is None})
        if refusal:
            return Verdict(False, [refusal], sample_sizes=dict(self.sample_sizes), error=refusal.detail,
                           error_class="SANDBOX_GATE", duration_s=time.monotonic() - t0, **base)
        guard = self._production_state()
        if patch is not None and self.policy.shadow and self._shadow_spare is None \
                and why_not(self, self.input_rows) is None:
            # Most candidates that reach here pass: the full-data worker warms up during the sample run.
            self._shadow_spare = ShadowWorker.start(self)
        worker = self._take_worker()
        output_dir = worker.run_dir / "output"
        try:
            copy_code(root, worker.run_dir / "code", self.pipeline)
            request = {"kind": self.pipeline.kind, "job": self.pipeline.job, "code_dir": str(worker.run_dir / "code"),
                       "inputs": {name: str(self._sample_path(name)) for name in self.frames},
                       "output": str(output_dir)}
            with telemetry.span("healer.sample_run", {"healer.isolation": self.isolation.value}):
                ran = worker.run(request, timeout_s=self.policy.sandbox_seconds)
        finally:
            worker.kill()
        checks: list[Check] = []
        problem = worker_problem(ran, self.policy.sandbox_seconds) or output_problem(output_dir, self.policy.sandbox_output_bytes)
        if problem:
            error_class, message = problem
            checks.append(Check("runs", False, f"{error_class}: {message.splitlines()[0][:300] if message else ''}"))
            self._production_check(guard, checks)
            self.start_spare_worker()  # another candidate is likely to follow a failed one
            return Verdict(False, checks, sample_sizes=dict(self.sample_sizes), error=(message.splitlines() or [""])[0],
                           error_class=error_class, duration_s=time.monotonic() - t0, **base)
        checks.append(Check("runs", True, f"the job ran on the sample, isolated: {self.isolation.label}"))
        self.area.push(self.spark, output_dir)
        output = self.spark.read.parquet(self.area.spark_path(output_dir))
        out_profile = profile(output)
        rows = out_profile["row_count"]
        audit = run_expectations(output, self.expectations)
        failed = audit.failed
        checks.append(Check("expectations", audit.success,
                            f"{len(audit.results) - len(failed)}/{len(audit.results)} passed"
                            + ("" if audit.success else ": " + "; ".join(r.summary() for r in failed))))
        checks.append(self.schema_check(schema_json(output)))
        profile_check, profile_rows = self._profile_check(out_profile)
        checks.append(profile_check)
        self._production_check(guard, checks)
        verdict = Verdict(passed=all(c.passed for c in checks), checks=checks,
                          expectations=list(audit.results), sample_sizes=dict(self.sample_sizes),
                          output_rows=rows, profile_rows=profile_rows, duration_s=time.monotonic() - t0, **base)
        if verdict.passed and patch is not None:
            with telemetry.span("healer.shadow") as span:
                verdict = self._shadow(root, patch, verdict, t0, guard)
                span.set({"healer.passed": verdict.passed, "healer.ready": bool(verdict.readiness and verdict.readiness.ready)})
        if not verdict.passed:
            self.start_spare_worker()
        return verdict

    def _shadow(self, root: Path, patch, verdict: Verdict, t0: float, guard) -> Verdict:
        """The full-data run and Healer's ready/draft verdict; a hard failure there fails the candidate.

        ``guard``: the production output's state before the sample run, which it left unchanged.
        """
        if self.policy.shadow:
            started, self._shadow_spare = self._shadow_spare, None
            shadow = shadow_run(self, root, self.input_rows, started)
            detail = shadow.reason if shadow.passed else f"not run: {shadow.reason}" if not shadow.ran \
                else "; ".join(shadow.failures())[:600]
            checks = [Check("shadow run", shadow.passed or not shadow.ran, detail)]
            self._production_check(guard, checks, "production untouched (full run)")
        else:
            shadow, checks = None, []
        readiness = judge(patch, shadow, draft_below=self.policy.draft_below,
                          last_good_input_rows=_full_input_rows(self.last_good),
                          new_columns_intended=self.contract_from_commit)
        from_diff = [f for f in readiness.failures if shadow is None or f not in shadow.failures()]
        if from_diff:
            checks.append(Check("data diff", False, "; ".join(from_diff)[:600]))
        elif shadow is not None and shadow.diff is not None:
            checks.append(Check("data diff", True, shadow.diff.summary()))
        all_checks = verdict.checks + checks
        return replace(verdict, passed=all(c.passed for c in all_checks), checks=all_checks, shadow=shadow,
                       readiness=readiness, duration_s=time.monotonic() - t0)

    def _refusal(self, root: Path, patch) -> Check | None:
        """The gate's check when it refuses the candidate (or its maker may not run here), else None."""
        by_model = bool(patch is not None and str(patch.fixer).startswith("llm"))
        if by_model and self.isolation is Isolation.PROCESS and not self.policy.allow_model_in_process:
            return Check("isolation", False, "a model-written fix runs only under bubblewrap isolation; "
                                             "HEALER_SANDBOX=process is set and policy does not allow it there")
        overlap = output_overlap(self.pipeline.output, self.pipeline.inputs.values())
        if overlap:  # a rebinding patch pointed an input at (or around) the output: publishing would destroy it
            return Check("gate", False, f"refused before running: {overlap}")
        edited = list(patch.files) if patch is not None else []
        before = next((e.before for e in (patch.edits if patch is not None else []) if e.path == self.pipeline.job), None)
        job_path = root / self.pipeline.job
        baseline = before if before is not None else job_path.read_text()
        context = gate.GateContext(
            inputs=frozenset(n.lower() for n in self.pipeline.inputs),
            repo_modules=gate.repo_modules(baseline, job_path, root) if self.pipeline.kind == "python" else frozenset())
        problems = gate.check_candidate(self.pipeline, root, edited, context, may_edit_manifest=not by_model)
        if problems:
            return Check("gate", False, "refused before running: " + "; ".join(problems[:5])
                         + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        return None

    def _production_check(self, guard, checks: list[Check], name: str = "production untouched") -> None:
        if self._production_state() != guard:
            checks.append(Check(name, False, f"{self.pipeline.output.location} changed during the run"))
        else:
            checks.append(Check(name, True, f"{self.pipeline.output.location} unchanged"))

    def schema_check(self, schema: dict) -> Check:
        if not self.last_good or not self.last_good.output_schema:
            return Check("output schema", True, "no last good schema recorded: not compared")
        from healer.evidence.intent import contract_check

        intended = contract_check(self.pipeline, self.last_good, self.expectations, schema)
        if intended is not None:  # the code changed since the last good run: the new commit's intent is the contract
            self.contract_from_commit = True
            return Check("output schema", *intended)
        before = list(schema_columns(self.last_good.output_schema).items())
        after = list(schema_columns(schema).items())
        if before == after:
            return Check("output schema", True, f"{len(after)} columns, same names and types as the last good run")
        if [n for n, _ in before] == [n for n, _ in after] and all(b == a or widens(b, a) for (_, b), (_, a)
                                                                   in zip(before, after)):
            # INT -> BIGINT and the like keep every value the contract allowed: a doubt, not a failure
            wider = ", ".join(f"{n} {b} -> {a}" for (n, b), (_, a) in zip(before, after) if b != a)
            return Check("output schema", True, f"{len(after)} columns, same names; widened: {wider} (every value of "
                                                "the old type still fits; consumers must accept the wider type)")
        lost = [f"{n} {t}" for n, t in before if (n, t) not in after]
        new = [f"{n} {t}" for n, t in after if (n, t) not in before]
        detail = "; ".join(x for x in (f"was {', '.join(lost)}" if lost else "", f"now {', '.join(new)}" if new else "",
                                        "column order changed" if not lost and not new else "") if x)
        return Check("output schema", False, detail)

    def _profile_check(self, out_profile: dict) -> tuple[Check, list[dict]]:
        if not self.last_good or not self.last_good.output_profile:
            return Check("profile", True, "no last good profile recorded: not compared"), []
        before = self.last_good.output_profile
        rows, problems = [], []
        if before.get("row_count") and not out_profile["row_count"]:
            problems.append("the output is empty on the sample")
        for name, after_col in out_profile["columns"].items():
            before_col = before.get("columns", {}).get(name, {})
            row = {"column": name, "null_before": before_col.get("null_fraction"), "null_after": after_col["null_fraction"],
                   "min_before": before_col.get("min"), "min_after": after_col.get("min"),
                   "max_before": before_col.get("max"), "max_after": after_col.get("max")}
            rows.append(row)
            if before_col and after_col["null_fraction"] - (before_col.get("null_fraction") or 0) > self.policy.null_tolerance:
                problems.append(f"{name} nulls {before_col.get('null_fraction', 0):.0%} -> {after_col['null_fraction']:.0%}")
        detail = "; ".join(problems) if problems else f"null fractions within {self.policy.null_tolerance:.0%} of the last good run"
        return Check("profile", not problems, detail), rows

    def _production_state(self):
        out = self.pipeline.output
        if out.path:
            return io.listing(self.spark, out.path)
        return self.spark.catalog.tableExists(out.table)

    def close(self) -> None:
        if self._preparing is not None:
            self._preparing.join()  # its writes must not land in a removed directory
        if self._spare is not None:
            self._spare.kill()
            self._spare = None
        if self._shadow_spare is not None:
            self._shadow_spare.close()
            self._shadow_spare = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def _full_input_rows(last_good: RunRecord | None) -> dict[str, int]:
    """Input row counts of the last good run where its profile counted every row."""
    if last_good is None:
        return {}
    rows = {}
    for name, prof in (last_good.input_profiles or {}).items():
        count, limit = prof.get("row_count"), prof.get("sampled_rows")
        if count is not None and (limit is None or count < limit):
            rows[name] = int(count)
    return rows


def worker_problem(ran: WorkerResult, limit_s: float) -> tuple[str, str] | None:
    """(error class, message) when the worker did not finish its job cleanly, else None."""
    if ran.timed_out:
        return "SANDBOX_TIMEOUT", f"the candidate did not finish within {limit_s:.0f}s"
    result = ran.result
    if result is None:
        tail = ran.log_tail.strip().splitlines()
        return "SANDBOX_WORKER_DIED", (f"the sandbox worker exited with {ran.exit_code} and no result"
                                       + (f": {tail[-1][:300]}" if tail else ""))
    if not result.get("ok"):
        return str(result.get("error_class") or "Error")[:200], str(result.get("message") or "")[:4000]
    return None


def output_problem(output_dir: Path, max_bytes: int) -> tuple[str, str] | None:
    """Why the worker's output must not be read: missing, a link or special file, or too large."""
    if output_dir.is_symlink() or not output_dir.is_dir():
        return "SANDBOX_NO_OUTPUT", "the candidate wrote no output directory"
    total, complete = 0, False
    for base, dirs, files in os.walk(output_dir, followlinks=False):
        for name in dirs + files:
            path = Path(base) / name
            st = path.lstat()
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                return "SANDBOX_OUTPUT_REFUSED", f"the output holds a link or special file: {path.name}"
            total += st.st_size if path.is_file() else 0
            complete = complete or name == "_SUCCESS"
    if total > max_bytes:
        return "SANDBOX_OUTPUT_TOO_LARGE", f"the output on the sample is {total} bytes (cap {max_bytes})"
    if not complete:
        return "SANDBOX_NO_OUTPUT", "the candidate's output is incomplete (no _SUCCESS marker)"
    return None


def copy_code(root: Path, dest: Path, pipeline: Pipeline) -> None:
    """The candidate's code for the worker: the SQL job, or every Python module of the repo."""
    dest.mkdir(parents=True, exist_ok=True)
    if pipeline.kind == "sql":
        target = dest / pipeline.job
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / pipeline.job, target)
        return
    root = root.resolve()
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            source = Path(base) / name
            if name.endswith(".py") and not source.is_symlink():
                target = dest / source.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
