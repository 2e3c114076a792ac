"""The orchestration: heal(failure) -> Outcome.

    failure ─► triage ─► workspace ─► evidence ─► fixers ─► sandbox ─► proposal (branch, push, PR)

Each stage is timed and the whole attempt is recorded in the ledger. No candidate that has
not passed the sandbox is ever proposed.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from healer import report
from healer.errors import HealerError, WorkspaceError
from healer.evidence import gather
from healer.expectations import load_expectations
from healer.failure import Failure, from_run
from healer.fixers import propose_all
from healer.fixers.llm import LLMFixer
from healer.forges import get_forge
from healer.ledger import Ledger, candidates, heals, utcnow
from healer.manifest import load_manifest
from healer.policy import Policy
from healer.sandbox import Sandbox
from healer.workspace import Workspace, branch_name

EXIT_CODES = {"proposed": 0, "declined": 3, "skipped": 3, "error": 1}


@dataclass
class Outcome:
    """What a heal ended with; ``healer heal --json`` prints exactly this."""

    status: str  # proposed | declined | skipped | error
    reason: str
    pipeline: str | None = None
    failure: int | None = None  # the failed run's id
    heal: int | None = None
    fingerprint: str | None = None
    category: str | None = None
    fixer: str | None = None
    confidence: float | None = None
    branch: str | None = None
    pr: int | None = None
    pr_url: str | None = None
    draft: bool = False
    duplicate: bool = False
    validation: dict | None = None
    candidates: list[dict] = field(default_factory=list)
    llm: dict = field(default_factory=dict)  # enabled, reason, rounds, usage (tokens, cost)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_json(self) -> dict:
        return asdict(self)


class _Timer:
    def __init__(self, log):
        self.timings: dict[str, float] = {}
        self.log = log

    @contextmanager
    def stage(self, name: str):
        t0 = time.monotonic()
        self.log(f"{name} ...")
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - t0, 2)


def heal(repo: str | Path, pipeline: str | None = None, failure_id: int | None = None, *, spark=None,
         ledger: Ledger | None = None, policy: Policy | None = None, forge=None, fixers=None,
         dry_run: bool = False, log: Callable[[str], None] = lambda _m: None, llm=None) -> Outcome:
    """Heal the latest failed run of ``pipeline`` in ``repo`` (or the failed run ``failure_id``).

    Rules are tried first; the LLM fixer (``llm``, default from the environment) only when
    no rule candidate passes the sandbox.
    """
    ledger = ledger or Ledger()
    policy = policy or Policy.from_env()
    repo = str(Path(repo).resolve())
    run = ledger.get_run(failure_id) if failure_id is not None else ledger.last_failure(pipeline, repo=repo)
    if run is None:
        what = f"run #{failure_id}" if failure_id is not None else f"failed run of '{pipeline}' in {repo}"
        return Outcome("error", f"no {what} in the ledger {ledger.url}", pipeline=pipeline)
    if run.status != "failed":
        return Outcome("error", f"run #{run.id} did not fail (status {run.status})", pipeline=run.pipeline, failure=run.id)
    timer = _Timer(log)
    with timer.stage("triage"):
        failure = from_run(run)
        early = _triage(failure, ledger)
    if early:
        early.timings = timer.timings
        _record(ledger, failure, early)
        return early
    outcome = Outcome("error", "", pipeline=failure.pipeline, failure=failure.run_id, fingerprint=failure.fingerprint,
                      category=failure.category)
    outcome.heal = ledger.insert(heals, run_id=failure.run_id, pipeline=failure.pipeline, repo=failure.repo,
                                 fingerprint=failure.fingerprint, category=failure.category, status="running",
                                 started_at=utcnow())
    try:
        _heal_stages(failure, outcome, timer, ledger, policy, forge, fixers, spark, dry_run, log, run, llm)
    except HealerError as exc:
        outcome.status, outcome.reason = "error", str(exc)
    finally:
        outcome.timings = timer.timings
        outcome.timings["total"] = round(sum(timer.timings.values()), 2)
        ledger.update(heals, outcome.heal, status=outcome.status, reason=outcome.reason, fixer=outcome.fixer,
                      branch=outcome.branch, pr_id=outcome.pr, outcome=_jsonable(outcome.to_json()),
                      finished_at=utcnow())
    return outcome


def _triage(failure: Failure, ledger: Ledger) -> Outcome | None:
    """An outcome when the heal should stop before any work: transient, retrying, duplicate."""
    base = dict(pipeline=failure.pipeline, failure=failure.run_id, fingerprint=failure.fingerprint,
                category=failure.category)
    if failure.transient:
        return Outcome("skipped", f"transient, left to retries: {failure.error_class}", **base)
    if failure.retries_left():
        return Outcome("skipped", f"try {failure.context.get('try_number')} of {int(failure.context['max_tries']) + 1}: "
                                  "Airflow will retry; healing waits for the last try", **base)
    if failure.category == "config":
        return Outcome("declined", f"the pipeline's configuration is invalid, which Healer does not repair: "
                                   f"{failure.message.splitlines()[0] if failure.message else ''}", **base)
    existing = ledger.open_pr_for(failure.fingerprint)
    if existing:
        return Outcome("proposed", f"an open proposal already exists for this cause: PR #{existing['id']}",
                       branch=existing["branch"], pr=existing["id"], pr_url=existing["url"], draft=bool(existing["draft"]),
                       duplicate=True, **base)
    return None


def bind_recorded_locations(pipeline, run):
    """The pipeline with inputs and output where the failed run actually read and wrote them.

    The heal may run in another process or machine whose environment resolves ``${VARS}``
    differently; the run record says where the data really was.
    """
    inputs = dict(pipeline.inputs)
    for name, location in (run.input_locations or {}).items():
        spec = inputs.get(name)
        if spec is not None and spec.path is not None and not location.startswith("table "):
            inputs[name] = replace(spec, path=location)
    output = pipeline.output
    if output.path is not None and run.output_location and not run.output_location.startswith("table "):
        output = replace(output, path=run.output_location)
    return replace(pipeline, inputs=inputs, output=output)


def _heal_stages(failure, outcome, timer, ledger, policy, forge, fixers, spark, dry_run, log, run, llm):
    from healer.runner.session import get_spark

    if failure.dirty:
        raise WorkspaceError(f"{failure.repo}: run #{failure.run_id} used uncommitted changes; commit them so "
                             "Healer can reproduce the job from git")
    with timer.stage("workspace"):
        workspace = Workspace.create(failure.repo, failure.commit, failure.pipeline)
    try:
        with timer.stage("evidence"):
            spark = spark or get_spark()
            manifest = load_manifest(workspace.path, data_root=failure.repo)
            pipeline = bind_recorded_locations(manifest.pipeline(failure.pipeline), run)
            expectations = load_expectations(pipeline.expectations_path) if pipeline.expectations else []
            last_good = ledger.last_success(failure.pipeline, before_id=failure.run_id, repo=failure.repo)
            evidence = gather(spark, failure, pipeline, last_good, repo=workspace.repo, expectations=expectations)
            log(evidence.render())
        with timer.stage("fixers"):
            patches, notes = propose_all(evidence, fixers)
            patches = [p for p in patches if p.confidence >= policy.min_confidence][: policy.max_candidates]
        llm = llm if llm is not None else LLMFixer()
        outcome.llm = {"enabled": llm.enabled, "reason": "" if llm.enabled else llm.off_reason()}
        if not patches and not llm.enabled:
            outcome.status = "declined"
            outcome.reason = "no fixer proposed a candidate" + (f" ({'; '.join(notes)})" if notes else "") \
                + f"; root cause: {failure.describe()}" + (
                    "" if evidence.changed else " and no schema drift since the last good run") \
                + f"; {llm.off_reason()}"
            return
        trial = _Trial(workspace, ledger, outcome, log)
        with timer.stage("sandbox"):
            sandbox = Sandbox(spark, pipeline, last_good, expectations, policy)
            try:
                sandbox.prepare()
                best = next((b for b in (trial.run(sandbox, p) for p in patches) if b), None)
                if best is None and llm.enabled:
                    best = _llm_rounds(llm, evidence, workspace, sandbox, trial, outcome, log)
                plan = dict(sandbox.sample_plan)
            finally:
                sandbox.close()
        if best is None:
            outcome.status = "declined"
            tried = " | ".join(f"{c['fixer']}: {'; '.join(c['reasons'])}" for c in outcome.candidates)
            outcome.reason = ("no candidate passed the sandbox: " + tried) if tried else \
                f"no fixer proposed a candidate; root cause: {failure.describe()}"
            if llm.enabled and outcome.llm.get("reason"):
                outcome.reason += f"; {outcome.llm['reason']}"
            return
        patch, verdict = best
        outcome.fixer, outcome.confidence = patch.fixer, patch.confidence
        outcome.validation = {"checks": [asdict(c) for c in verdict.checks], "expectations": verdict.expectations,
                              "sample_sizes": verdict.sample_sizes, "output_rows": verdict.output_rows}
        draft = patch.changes_meaning or patch.confidence < policy.draft_below
        branch = branch_name(failure.pipeline, failure.short_fingerprint)
        if dry_run:
            outcome.status, outcome.branch = "proposed", None
            outcome.reason = f"dry run: {patch.title} passed the sandbox; nothing pushed"
            return
        with timer.stage("proposal"):
            workspace.apply(patch.edits)
            workspace.commit_on_branch(branch, report.commit_message(failure.pipeline, patch, failure))
            workspace.push(branch)
            timings = dict(timer.timings)
            body = report.pr_body(failure, evidence, patch, verdict, timings, branch, draft, plan)
            forge = forge or get_forge(ledger, workspace.remote_url)
            pr = forge.open(title=report.pr_title(failure.pipeline, patch), body=body, branch=branch,
                            base=workspace.base_branch, remote=workspace.remote_url, draft=draft,
                            pipeline=failure.pipeline, fingerprint=failure.fingerprint, heal_id=outcome.heal)
        outcome.status, outcome.branch, outcome.pr, outcome.pr_url, outcome.draft = "proposed", branch, pr.id, pr.url, draft
        outcome.reason = f"{patch.title}; validated in the sandbox" + (" (draft)" if draft else "")
    finally:
        workspace.remove()


class _Trial:
    """Runs one candidate in the sandbox and records it, whatever fixer made it."""

    def __init__(self, workspace, ledger, outcome, log):
        self.workspace, self.ledger, self.outcome, self.log = workspace, ledger, outcome, log

    def run(self, sandbox, patch):
        self.workspace.apply(patch.edits)
        try:
            verdict = sandbox.run(self.workspace.path)
        finally:
            self.workspace.revert()
        self.outcome.candidates.append({"fixer": patch.fixer, "title": patch.title, "confidence": patch.confidence,
                                        "passed": verdict.passed, "reasons": verdict.reasons()})
        self.ledger.insert(candidates, heal_id=self.outcome.heal, fixer=patch.fixer, title=patch.title,
                           confidence=patch.confidence, patch=patch.to_json(), verdict=_jsonable(verdict.to_json()),
                           passed=verdict.passed)
        self.log(f"candidate {patch.fixer}: {'passed' if verdict.passed else 'failed: ' + '; '.join(verdict.reasons())}")
        return (patch, verdict) if verdict.passed else None


def _llm_rounds(llm, evidence, workspace, sandbox, trial, outcome, log):
    """Ask the model, try its fix in the sandbox, send the verdict back; up to the round limit."""
    session = llm.session(evidence, workspace.path)
    outcome.llm["prompt_chars"] = len(session.prompt)
    feedback, best = None, None
    for round_no in range(1, llm.config.rounds + 1):
        log(f"LLM round {round_no} ({session.model})")
        patch = session.propose(feedback)
        outcome.llm["rounds"] = round_no
        if patch is None:
            outcome.llm["reason"] = session.reason
            break
        best = trial.run(sandbox, patch)
        if best:
            break
        verdict_reasons = outcome.candidates[-1]["reasons"]
        feedback = "Failed checks:\n- " + "\n- ".join(verdict_reasons)
    else:
        outcome.llm["reason"] = f"no model fix passed the sandbox in {llm.config.rounds} rounds"
    outcome.llm["refused_edits"] = session.refusals
    outcome.llm["usage"] = session.usage.to_json(session.model)
    if best:
        best[0].details["usage"] = outcome.llm["usage"]
    return best


def _record(ledger: Ledger, failure: Failure, outcome: Outcome) -> None:
    outcome.heal = ledger.insert(heals, run_id=failure.run_id, pipeline=failure.pipeline, repo=failure.repo,
                                 fingerprint=failure.fingerprint, category=failure.category, status=outcome.status,
                                 reason=outcome.reason, branch=outcome.branch, pr_id=outcome.pr,
                                 outcome=_jsonable(outcome.to_json()), started_at=utcnow(), finished_at=utcnow())


def _jsonable(value):
    from healer.ledger import jsonable

    return jsonable(value)
