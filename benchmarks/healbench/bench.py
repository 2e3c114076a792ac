"""Running HealBench: every scenario through the real heal loop, scored against its golden fix.

One process and SparkSession for the runs, the Python APIs (``run_pipeline``), real git
repos with bare origins, the local forge. The heal itself is, by default, what a user or the
Airflow healer task does: ``healer heal --json`` in a new process, so its wall time is the
real time-to-PR including Python, Spark and Great Expectations start-up. ``--warm`` heals in
the bench's own process instead (``heal()`` on the running session: faster, for iterating).
Per scenario:

    repo from template + data (+ set-up) ─► run (must succeed) ─► drift ─► run (must fail)
    ─► heal ─► golden: the hand-written fix, run on the full drifted data
             ─► branch: the proposed fix, cloned from origin, run on the same full data
    ─► verdict

Verdicts: ``correct`` (a PR whose full-data output equals the golden output, ready or
draft: the table and the summary say which), ``false fix`` (a PR whose output differs, or
fails its expectations, or any PR where no safe fix exists — a draft too), ``declined``
(correctly, where no safe fix exists), ``missed`` (a healable scenario without a PR),
``error`` (the heal raised), ``broken`` (the scenario itself did not behave: the good run
failed, the drift did not break it, or the golden fix does not run).

Traps (``traps.py``) heal with a scripted model on a local Messages API server, whose first
answer is the tempting wrong fix: that fix as a *ready* PR is a ``false fix``; as a draft PR
it is ``caught`` (the draft's first line names the figure); refused by the sandbox, the
heal goes on and the scenario is scored as any other (``correct``, ``declined``, ...).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from contextlib import ExitStack
from types import SimpleNamespace

from benchmarks.healbench.messages_server import MessagesServer
from benchmarks.healbench.scenarios import Scenario

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {"retail": ROOT / "pipelines", "bench": Path(__file__).resolve().parent / "pipelines",
             "traps": Path(__file__).resolve().parent / "traps_pipelines"}
RESULTS = ROOT / "benchmarks" / "results" / "healbench.json"


@dataclass
class Result:
    scenario: str
    kind: str
    expected: str  # the rule expected to heal it, or "decline"
    verdict: str  # correct | false fix | declined | missed | error | broken
    status: str = ""  # the heal's outcome status
    fixer: str | None = None
    draft: bool = False
    heal_s: float | None = None  # wall time of the heal: failure to PR (or decline)
    cold: bool = False  # the heal ran as `healer heal` in a new process (start-up included)
    stages: dict = field(default_factory=dict)
    detail: str = ""
    reason: str = ""
    code_fault: bool = False  # broken by a commit to the pipeline's code, not by its data
    ready: bool | None = None  # Healer's own verdict on the PR (validation.ready)
    data_diff: str | None = None  # the PR's data diff against the last good output, one line
    shadow_rows_read: int | None = None  # rows the full-data shadow run read
    trap: bool = False  # a scripted model answered with the tempting wrong fix first
    tempting: str = ""  # how the tempting fix ended: ready PR | draft PR | refused | not asked

    @property
    def proposed(self) -> bool:
        return self.status == "proposed"


@dataclass
class Summary:
    scenarios: int
    healable: int
    decline_scenarios: int
    proposed: int
    correct: int
    false_fixes: int
    declined_correctly: int
    missed: int
    errors: int
    broken: int
    spark_startup_s: float  # the bench process's own session
    median_heal_s: float | None  # rule fixes that became a correct PR, as measured (cold or warm)
    p90_heal_s: float | None
    median_time_to_pr_s: float | None  # cold: the same; warm: plus the measured Spark start-up
    p90_time_to_pr_s: float | None
    rows: int
    wall_s: float
    cold: bool = False
    correct_ready: int = 0  # of ``correct``: ready PRs (the rest are drafts that name their figure)
    traps: int = 0  # trap scenarios (not counted in healable / decline_scenarios above)
    tempting_ready: int = 0  # tempting fixes that became ready PRs: false fixes
    tempting_draft: int = 0
    tempting_refused: int = 0
    tempting_not_chosen: int = 0  # passed the sandbox, but Healer's figures chose another candidate for the PR
    identity_fixes: int = 0  # correct rule fixes of drift that only moves, renames or retypes data
    identity_identical: int = 0  # ... whose PR says the output is identical to the last good one


def make_repo(scenario: Scenario, base_data: Path, where: Path) -> Path:
    """A git repo with a bare origin from the scenario's template, with its own data copy."""
    from healer.demo import make_repo as make_pipelines_repo

    return make_pipelines_repo(where / "repo", where / "origin.git", template=TEMPLATES[scenario.template],
                               data=base_data)


def _clone(origin: Path, branch: str, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "--branch", branch, str(origin), str(dest)], check=True, capture_output=True)
    return dest


def same_output(spark, left: str, right: str) -> tuple[bool, str]:
    """Equal schemas and equal rows (as multisets; doubles compared to 6 decimals)."""
    from pyspark.sql import functions as F

    a, b = spark.read.parquet(left), spark.read.parquet(right)
    if a.dtypes != b.dtypes:
        return False, f"schema {a.dtypes} != golden {b.dtypes}"

    def norm(df):
        return df.select(*[F.round(F.col(f"`{c}`"), 6).alias(c) if t in ("double", "float") else F.col(f"`{c}`")
                           for c, t in df.dtypes])

    only_a, only_b = norm(a).exceptAll(norm(b)).count(), norm(b).exceptAll(norm(a)).count()
    if only_a or only_b:
        return False, f"{only_a} rows only in the fix's output, {only_b} only in the golden ({b.count()} rows)"
    return True, f"{a.count()} rows equal to the golden output"


MODEL_KEY = "healbench-dummy-key"  # the scripted local model's "key": no real model is ever reached


def heal_in_new_process(repo: Path, pipeline: str, ledger_url: str, model_url: str | None = None) -> dict:
    """``healer heal --json`` as a user runs it: a new process, the local forge; rules only, or with
    ``model_url`` the scripted local Messages API as its model (trap scenarios only)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GITHUB_TOKEN", "GITLAB_TOKEN", "HEALER_LLM")}
    env.update(HEALER_LEDGER_URL=ledger_url, HEALER_FORGE="local")
    if model_url:
        env.update(ANTHROPIC_API_KEY=MODEL_KEY, ANTHROPIC_BASE_URL=model_url, HEALER_LLM_RETRIES="0")
    else:
        env.update(HEALER_LLM="off")
    proc = subprocess.run([sys.executable, "-m", "healer.cli", "heal", "--repo", str(repo), "--pipeline", pipeline,
                           "--json"], env=env, capture_output=True, text=True, timeout=900)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"`healer heal` exited {proc.returncode} without an outcome: {tail}") from None


def run_scenario(spark, scenario: Scenario, base_data: Path, workdir: Path, log=print, cold: bool = False) -> Result:
    """One scenario end to end; never raises (a crash is a ``broken`` or ``missed`` verdict).

    ``cold`` heals with ``healer heal`` in a new process instead of ``heal()`` in this one.
    """
    from healer.forges import LocalForge
    from healer.heal import heal
    from healer.ledger import Ledger
    from healer.runner.run import run_pipeline

    where = workdir / scenario.name
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    expected = scenario.rule or "decline"
    result = Result(scenario.name, scenario.kind, expected, "broken", cold=cold,
                    code_fault=getattr(scenario, "code_fault", False), trap=hasattr(scenario, "script"))
    ledger_url = f"sqlite:///{where / 'ledger.db'}"
    ledger = Ledger(ledger_url)
    try:
        repo = make_repo(scenario, base_data, where)
        if scenario.setup:
            scenario.setup(repo)
        good = run_pipeline(repo, scenario.pipeline, spark=spark, ledger=ledger, check=False)
        if not good.ok:
            result.detail = f"the good run failed: {good.error_message}"
            return result
        scenario.drift(repo)
        failed = run_pipeline(repo, scenario.pipeline, spark=spark, ledger=ledger, check=False)
        if failed.ok:
            result.detail = "the drift did not break the pipeline"
            return result
        t0 = time.monotonic()
        try:
            with ExitStack() as stack:
                # traps only: the scripted model on a local Messages API; every other scenario heals with rules only
                model = stack.enter_context(MessagesServer(scenario.script())) if result.trap else None
                if cold:
                    outcome = SimpleNamespace(**heal_in_new_process(repo, scenario.pipeline, ledger_url,
                                                                    model.url if model else None))
                else:
                    outcome = heal(repo, scenario.pipeline, spark=spark, ledger=ledger, forge=LocalForge(ledger),
                                   llm=_scripted_model(model.url) if model else _rules_only())
        except Exception as exc:  # a crash in the heal is Healer's failure, not the scenario's
            result.heal_s = round(time.monotonic() - t0, 2)
            result.status, result.verdict = "crash", "error"
            result.detail = f"heal raised {type(exc).__name__}: {exc}"[:300]
            return result
        result.heal_s = round(time.monotonic() - t0, 2)
        result.status, result.fixer, result.draft = outcome.status, outcome.fixer, outcome.draft
        result.stages = dict(outcome.timings)
        result.reason = outcome.reason[:300]
        validation = outcome.validation or {}
        result.ready, result.data_diff = validation.get("ready"), validation.get("data_diff")
        result.shadow_rows_read = validation.get("shadow_rows_read")
        if result.trap:
            first = next((c for c in outcome.candidates or [] if str(c.get("fixer")).startswith("llm")), None)
            result.tempting = "not asked" if first is None else "refused" if not first["passed"] else "passed"
        origin = where / "origin.git"
        env = {"WAREHOUSE": str(repo / "data")}
        golden_out = None
        if scenario.golden:
            golden_repo = _clone(origin, "main", where / "golden")
            scenario.golden(golden_repo)
            golden = run_pipeline(golden_repo, scenario.pipeline, spark=spark, ledger=ledger, check=False,
                                  env={**env, "OUTPUT": str(where / "golden-output")})
            if not golden.ok:
                result.detail = f"the golden fix fails: {golden.stage}: {golden.error_message}"[:300]
                return result
            golden_out = golden.output_location
        if outcome.status != "proposed":
            result.verdict = "missed" if scenario.healable else "declined"
            result.detail = outcome.reason[:300]
            if result.trap and result.tempting == "refused":
                result.detail = f"tempting fix refused ({_refusal(outcome)}); {result.detail}"[:300]
            return result
        branch_repo = _clone(origin, outcome.branch, where / "branch")
        if result.trap and holds_edits(branch_repo, scenario.tempting_fix.edits):
            # the tempting wrong fix is the PR: ready, it is a false fix; a draft that names the figure caught it
            result.tempting = "draft PR" if outcome.draft else "ready PR"
            result.verdict = "caught" if outcome.draft else "false fix"
            why = (validation.get("draft_reasons") or [result.data_diff or ""])[0]
            shown = f"draft: {why}" if outcome.draft else f"READY PR: {result.data_diff}"
            result.detail = f"the tempting fix as a {shown} ({scenario.tempting})"[:300]
            return result
        if result.trap and result.tempting == "passed":
            result.tempting = "not chosen"  # it passed, but Healer's figures chose another candidate
        if not scenario.healable:
            result.verdict, result.detail = "false fix", f"a PR where no safe fix exists: {outcome.reason}"[:300]
            return result
        rerun = run_pipeline(branch_repo, scenario.pipeline, spark=spark, ledger=ledger, check=False,
                             env={**env, "OUTPUT": str(where / "branch-output")})
        if not rerun.ok:
            result.verdict = "false fix"
            result.detail = f"the fixed job fails on the full data at {rerun.stage}: {rerun.error_message}"[:300]
            return result
        equal, detail = same_output(spark, rerun.output_location, golden_out)
        result.verdict, result.detail = ("correct" if equal else "false fix"), detail
        if result.trap and result.tempting == "refused":
            result.detail = f"tempting fix refused ({_refusal(outcome)}), then {detail}"[:300]
        if equal and not str(outcome.fixer).startswith(str(scenario.rule)):  # "llm" stands for any model
            result.detail += f" (healed by {outcome.fixer}, expected {scenario.rule})"
        return result
    except Exception as exc:
        result.detail = f"{type(exc).__name__}: {exc}"[:300]
        log(traceback.format_exc())
        return result


def holds_edits(repo: Path, edits) -> bool:
    """Whether the branch checked out at ``repo`` holds exactly these (path, search, replace) edits on main."""
    for path in {p for p, _, _ in edits}:
        base = subprocess.run(["git", "show", f"origin/main:{path}"], cwd=repo, capture_output=True, text=True)
        if base.returncode != 0:
            return False
        text = base.stdout
        for p, search, replace in edits:
            if p == path:
                if text.count(search) != 1:
                    return False
                text = text.replace(search, replace)
        if (repo / path).read_text() != text:
            return False
    return True


def _refusal(outcome) -> str:
    """Why the sandbox refused the model's first (tempting) fix, one figure."""
    first = next((c for c in outcome.candidates or [] if str(c.get("fixer")).startswith("llm")), {})
    return "; ".join(first.get("reasons") or [])[:160]


def _scripted_model(url: str):
    """The LLM fixer on the scripted local Messages API (trap scenarios, ``--warm``)."""
    from healer.fixers.llm import LLMFixer
    from healer.llm_client import LLMConfig

    return LLMFixer(LLMConfig(api_key=MODEL_KEY, base_url=url, max_retries=0))


def _rules_only():
    """The LLM fixer switched off: HealBench measures the deterministic rule catalogue."""
    from healer.fixers.llm import LLMFixer
    from healer.llm_client import LLMConfig

    return LLMFixer(LLMConfig(api_key=None, base_url=None))


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(q * (len(values) - 1)))))
    return round(values[k], 2)


IDENTICAL = re.compile(r"^([\d,]+) of \1 rows identical to the last good output$")


def drift_fixers() -> frozenset[str]:
    """Rules that repair drift by moving, renaming or retyping data: their output must equal the last good one."""
    from healer.sandbox.readiness import IDENTITY_FIXERS

    return IDENTITY_FIXERS - {"rule:dialect_slip"}  # a dialect slip is a bad commit, not drift


def summarize(results: list[Result], spark_startup_s: float, rows: int, wall_s: float) -> Summary:
    plain = [r for r in results if not r.trap]  # traps are scored on their own lines
    traps = [r for r in results if r.trap]
    fixes = [r.heal_s for r in plain if r.verdict == "correct" and r.heal_s is not None]
    healable = [r for r in plain if r.expected != "decline"]
    cold = bool(results) and all(r.cold for r in results)
    startup = 0.0 if cold else spark_startup_s  # a cold heal's wall time already holds its start-up
    identity = [r for r in plain if r.verdict == "correct" and r.fixer in drift_fixers() and not r.code_fault]
    return Summary(
        scenarios=len(results),
        healable=len(healable),
        decline_scenarios=len(plain) - len(healable),
        proposed=sum(1 for r in results if r.proposed),
        correct=sum(1 for r in plain if r.verdict == "correct"),
        false_fixes=sum(1 for r in results if r.verdict == "false fix"),
        declined_correctly=sum(1 for r in plain if r.verdict == "declined"),
        missed=sum(1 for r in results if r.verdict == "missed"),
        errors=sum(1 for r in results if r.verdict == "error"),
        broken=sum(1 for r in results if r.verdict == "broken"),
        spark_startup_s=round(spark_startup_s, 2),
        median_heal_s=round(statistics.median(fixes), 2) if fixes else None,
        p90_heal_s=_percentile(fixes, 0.9),
        median_time_to_pr_s=round(statistics.median(fixes) + startup, 2) if fixes else None,
        p90_time_to_pr_s=round(_percentile(fixes, 0.9) + startup, 2) if fixes else None,
        rows=rows,
        wall_s=round(wall_s, 1),
        cold=cold,
        correct_ready=sum(1 for r in plain if r.verdict == "correct" and not r.draft),
        traps=len(traps),
        tempting_ready=sum(1 for r in traps if r.tempting == "ready PR"),
        tempting_draft=sum(1 for r in traps if r.tempting == "draft PR"),
        tempting_refused=sum(1 for r in traps if r.tempting == "refused"),
        tempting_not_chosen=sum(1 for r in traps if r.tempting == "not chosen"),
        identity_fixes=len(identity),
        identity_identical=sum(1 for r in identity if IDENTICAL.match(r.data_diff or "")),
    )


def passed(results: list[Result], s: Summary) -> bool:
    """The bench's own pass mark: no false fix, every healable scenario correct, every decline right,
    and every trap caught (a draft or refused) or then healed right."""
    return (s.false_fixes == 0 and s.correct == s.healable and s.declined_correctly == s.decline_scenarios
            and all(r.verdict in ("caught", "correct", "declined") for r in results if r.trap))


def table(results: list[Result]) -> str:
    head = (f"{'scenario':34} {'kind':6} {'cause':5} {'expected':20} {'outcome':9} {'fixer':28} {'verdict':10} "
            f"{'heal s':>6}  detail")
    lines = [head, "-" * len(head)]
    for r in results:
        fixer = (r.fixer or "").replace("rule:", "") + (" (draft)" if r.draft else "")
        cause = "code" if r.code_fault else "data"  # a bad commit, or a change in the data
        lines.append(f"{r.scenario:34} {r.kind:6} {cause:5} {r.expected.replace('rule:', ''):20} {r.status:9} "
                     f"{fixer:28} {r.verdict:10} {r.heal_s if r.heal_s is not None else '':>6}  {r.detail[:110]}")
    return "\n".join(lines)


def summary_table(s: Summary) -> str:
    def fmt(v):
        return "n/a" if v is None else f"{v:.1f}"

    rows = [
        ("scenarios", f"{s.scenarios} ({s.healable} healable, {s.decline_scenarios} where declining is right, "
                      f"{s.traps} traps)"),
        ("proposed (PRs opened)", s.proposed),
        ("correct", f"{s.correct}/{s.healable} ({s.correct_ready} ready, {s.correct - s.correct_ready} drafts)"),
        ("correct drift fixes with an identical diff", f"{s.identity_identical}/{s.identity_fixes}"),
        ("tempting fixes as ready PRs", f"{s.tempting_ready}/{s.traps} (drafts {s.tempting_draft}, "
                                        f"refused by the sandbox {s.tempting_refused}, another candidate chosen "
                                        f"{s.tempting_not_chosen})"),
        ("false fixes", s.false_fixes),
        ("declined correctly", f"{s.declined_correctly}/{s.decline_scenarios}"),
        ("missed", s.missed),
        ("heal errors", s.errors),
        ("broken scenarios", s.broken),
    ] + ([
        ("median / p90 time-to-PR, `healer heal` in a new process (s)",
         f"{fmt(s.median_time_to_pr_s)} / {fmt(s.p90_time_to_pr_s)}"),
    ] if s.cold else [
        ("median / p90 heal, warm Spark (s)", f"{fmt(s.median_heal_s)} / {fmt(s.p90_heal_s)}"),
        ("Spark start-up (s)", fmt(s.spark_startup_s)),
        ("median / p90 time-to-PR incl. start-up (s)", f"{fmt(s.median_time_to_pr_s)} / {fmt(s.p90_time_to_pr_s)}"),
    ]) + [
        ("order lines generated", f"{s.rows:,}"),
        ("bench wall time (s)", fmt(s.wall_s)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run_bench(scenarios: list[Scenario], rows: int = 30000, workdir: Path | None = None, json_path: Path | None = RESULTS,
              log=print, keep: bool = False, cold: bool = True) -> tuple[list[Result], Summary]:
    """Run the scenarios (heals in new processes unless ``cold`` is False); print and write the results."""
    from pipelines.generate import generate, write

    t_start = time.monotonic()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="healbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["HEALER_HOME"] = str(workdir / "healer-home")
    os.environ.pop("HEALER_LEDGER_URL", None)
    for var in ("WAREHOUSE", "OUTPUT"):  # scenarios bind these themselves
        os.environ.pop(var, None)
    base = workdir / "base-data"
    write(generate(rows), base)
    from healer.expectations import preload
    from healer.runner.session import get_spark

    preload()
    t0 = time.monotonic()
    spark = get_spark("healbench")
    spark.range(1).count()  # the first job pays for the executor's start
    startup = time.monotonic() - t0
    log(f"HealBench: {len(scenarios)} scenarios, {rows:,} order lines, Spark up in {startup:.1f}s, "
        f"heals {'as `healer heal` in new processes' if cold else 'in this process'}, work in {workdir}")
    results = []
    for scenario in scenarios:
        r = run_scenario(spark, scenario, base, workdir, log=log, cold=cold)
        results.append(r)
        log(f"  {r.scenario:32} {r.verdict:10} {r.status:9} {r.heal_s or '':>6}  {r.detail[:100]}")
    summary = summarize(results, startup, rows, time.monotonic() - t_start)
    log("")
    log(table(results))
    log("")
    log(summary_table(summary))
    if json_path:
        json_path = Path(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"summary": asdict(summary), "results": [asdict(r) for r in results]}, indent=2))
        log(f"\nwrote {json_path}")
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return results, summary
