"""The sandbox: the job run on a deterministic sample of the *current* real inputs.

Each logical input name is bound to a sample materialized in an isolated temporary
warehouse; the job code is the same as in production, only the binding differs. The
largest input is sampled first, then every other input keeps the rows that join to what
was already sampled (by shared key columns), so joins stay alive. A candidate passes when
it runs, every expectation passes, the output schema equals the last good one, and no
column's null fraction jumps. The sandbox never publishes, and checks that the declared
output location is untouched.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from healer.expectations import run_expectations
from healer.ledger import RunRecord
from healer.manifest import Pipeline
from healer.policy import Policy
from healer.runner import io
from healer.runner.jobs import bound_inputs, compute, describe_error
from healer.runner.profile import profile, schema_columns, schema_json


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
    expectations: list[dict] = field(default_factory=list)  # ExpectationResult dicts
    sample_sizes: dict = field(default_factory=dict)  # input -> rows
    output_rows: int | None = None
    profile_rows: list[dict] = field(default_factory=list)  # per column: before vs after
    error: str | None = None
    error_class: str | None = None
    duration_s: float = 0.0

    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]

    def to_json(self) -> dict:
        return asdict(self)


class Sandbox:
    """Samples once per heal; runs any number of candidates against the same samples."""

    def __init__(self, spark, pipeline: Pipeline, last_good: RunRecord | None, expectations: list,
                 policy: Policy | None = None, workdir: Path | None = None):
        self.spark, self.pipeline, self.last_good = spark, pipeline, last_good
        self.expectations, self.policy = expectations, policy or Policy()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="healer-sandbox-"))
        self._guard_output_location()
        self.frames: dict = {}
        self.sample_sizes: dict[str, int] = {}
        self.sample_plan: dict[str, str] = {}  # input -> how it was sampled
        self._preparing: threading.Thread | None = None
        self._prepare_error: BaseException | None = None

    def prepare_in_background(self) -> None:
        """Start sampling now, in a thread: the heal gathers evidence meanwhile.

        Sampling needs only the inputs, not the candidate; ``run`` waits for it to finish.
        """
        def work():
            try:
                self.prepare()
            except BaseException as exc:  # noqa: BLE001 -- re-raised by run()
                self._prepare_error = exc

        self._preparing = threading.Thread(target=work, name="healer-sandbox-prepare", daemon=True)
        self._preparing.start()

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
            raise ValueError(f"sandbox directory {self.workdir} lies inside the production output {out}")

    # -- sampling -----------------------------------------------------------------------
    def prepare(self) -> dict[str, int]:
        """Materialize a deterministic, join-preserving sample of every input; return sizes."""
        limit = self.policy.sample_rows
        current = {}
        for spec in self.pipeline.inputs.values():
            current[spec.name] = io.read_input(self.spark, spec)
        counts = {name: df.count() for name, df in current.items()}
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
            path = str(self.workdir / "inputs" / name)
            df.write.mode("overwrite").parquet(path)
            sampled[name] = self.spark.read.parquet(path)
            self.sample_sizes[name] = sampled[name].count()
        self.frames = {name: sampled[name] for name in current}
        return self.sample_sizes

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

    # -- running ------------------------------------------------------------------------
    def run(self, root: Path) -> Verdict:
        """Run the job found under ``root`` (a patched workspace) on the samples and judge it."""
        t0 = time.monotonic()
        try:
            self._prepared()
        except io.MissingInput as exc:
            return Verdict(False, [Check("inputs", False, str(exc))], duration_s=time.monotonic() - t0)
        guard = self._production_state()
        checks: list[Check] = []
        out_path = str(self.workdir / "outputs" / uuid.uuid4().hex[:8])
        try:
            with bound_inputs(self.spark, self.frames):
                result = compute(self.spark, self.pipeline, root=root)
                result.write.mode("errorifexists").parquet(out_path)
        except Exception as exc:
            info = describe_error(exc)
            checks.append(Check("runs", False, f"{info.error_class}: {info.first_line[:300]}"))
            return Verdict(False, checks, sample_sizes=dict(self.sample_sizes), error=info.first_line,
                           error_class=info.error_class, duration_s=time.monotonic() - t0)
        checks.append(Check("runs", True, "the job ran on the sample"))
        output = self.spark.read.parquet(out_path)
        out_profile = profile(output)
        rows = out_profile["row_count"]
        audit = run_expectations(output, self.expectations)
        failed = audit.failed
        checks.append(Check("expectations", audit.success,
                            f"{len(audit.results) - len(failed)}/{len(audit.results)} passed"
                            + ("" if audit.success else ": " + "; ".join(r.summary() for r in failed))))
        checks.append(self._schema_check(schema_json(output)))
        profile_check, profile_rows = self._profile_check(out_profile)
        checks.append(profile_check)
        if self._production_state() != guard:
            checks.append(Check("production untouched", False, f"{self.pipeline.output.location} changed during the run"))
        else:
            checks.append(Check("production untouched", True, f"{self.pipeline.output.location} unchanged"))
        return Verdict(passed=all(c.passed for c in checks), checks=checks,
                       expectations=[asdict(r) for r in audit.results], sample_sizes=dict(self.sample_sizes),
                       output_rows=rows, profile_rows=profile_rows, duration_s=time.monotonic() - t0)

    def _schema_check(self, schema: dict) -> Check:
        if not self.last_good or not self.last_good.output_schema:
            return Check("output schema", True, "no last good schema recorded: not compared")
        before = list(schema_columns(self.last_good.output_schema).items())
        after = list(schema_columns(schema).items())
        if before == after:
            return Check("output schema", True, f"{len(after)} columns, same names and types as the last good run")
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
        shutil.rmtree(self.workdir, ignore_errors=True)

