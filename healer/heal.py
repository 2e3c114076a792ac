"""The orchestration: heal(failure) -> Outcome.

    failure ─► triage ─► workspace ─► evidence ─► fixers ─► sandbox ─► proposal (branch, push, PR)

Each stage is timed and the whole attempt is recorded in the ledger. No candidate that has
not passed the sandbox is ever proposed.
"""

from __future__ import annotations

import logging
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from healer import report, telemetry
from healer.errors import HealerError, WorkspaceError
from healer.evidence import gather
from healer.expectations import load_expectations
from healer.failure import Failure, from_run, stop_before_work
from healer.fixers import default_fixers, propose_all
from healer.fixers.binding import binding_key, candidate_pipeline
from healer.fixers.llm import LLMFixer, merit, model_rounds
from healer.forges import get_forge
from healer.governance import enforce, people, trail
from healer.governance.effective import Effective
from healer.ledger import HealStatus, Lease, Ledger, candidates, heals, lease_wait_seconds, utcnow
from healer.logs import info_lines
from healer.manifest import load_manifest
from healer.policy import Policy
from healer.redact import redact, redact_json
from healer.rootcause import group_by_root_cause, storm_fingerprint
from healer.sandbox import Sandbox
from healer import scratch
from healer.scratch import Area, heal_area
from healer.workspace import Workspace, branch_name

# a heal's progress (stages, evidence, candidates) at INFO: `healer heal` and `healer demo`
# show it through healer.logs.progress(), the Airflow task log takes it as it is
log = logging.getLogger(__name__)

EXIT_CODES = {"proposed": 0, "declined": 3, "skipped": 3, "error": 1, "abandoned": 1}


@dataclass
class Outcome:
    """What a heal ended with; ``healer heal --json`` prints exactly this."""

    status: HealStatus  # abandoned: stopped by a signal, or killed (see ledger leases)
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
    duplicate_of: int | None = None  # the heal of the same cause whose result this is (its PR, or it still runs)
    validation: dict | None = None
    candidates: list[dict] = field(default_factory=list)
    llm: dict = field(default_factory=dict)  # enabled, reason, rounds, usage (tokens, cost)
    timings: dict[str, float] = field(default_factory=dict)
    evidence: dict | None = None  # what the heal knew (Evidence.to_json without the failure itself)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_json(self) -> dict:
        # what leaves the heal (--json, the ledger, XCom): data and logs quoted in it are redacted
        return redact_json(asdict(self))


class _Timer:
    def __init__(self, trace=telemetry.OFF):
        self.timings: dict[str, float] = {}
        self.trace = trace  # the heal's root span: each stage is a child span (telemetry.OFF when not exported)

    @contextmanager
    def stage(self, name: str):
        t0 = time.monotonic()
        log.info("%s ...", name)
        try:
            with self.trace.stage(name):
                yield
        finally:
            self.timings[name] = round(time.monotonic() - t0, 2)


def heal(repo: str | Path, pipeline: str | None = None, failure_id: int | None = None, *, spark=None,
         ledger: Ledger | None = None, policy: Policy | None = None, forge=None, fixers=None,
         dry_run: bool = False, llm=None) -> Outcome:
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
    attempt = _Attempt.start(run, ledger, policy)
    if attempt.early:
        return attempt.outcome
    try:
        validated = _validate(attempt, policy, fixers, spark, llm)
        if validated and dry_run:
            attempt.outcome.status = "proposed"
            attempt.outcome.reason = f"dry run: {validated.patch.title} passed the sandbox; nothing pushed"
        elif validated:
            _propose([validated], ledger, policy, forge, attempt.timer)
    except HealerError as exc:
        attempt.outcome.status, attempt.outcome.reason = "error", str(exc)
    except BaseException as exc:
        _mark_stopped([attempt], exc)
        raise
    finally:
        if attempt.workspace is not None:
            attempt.workspace.remove()
        attempt.finish()
    return attempt.outcome


def heal_storm(repo: str | Path, pipelines: list[str] | None = None, *, spark=None, ledger: Ledger | None = None,
               policy: Policy | None = None, forge=None, fixers=None, dry_run: bool = False,
               llm=None) -> list[Outcome]:
    """Heal every pipeline of the repo whose latest run failed.

    One upstream change often breaks many jobs at once: failures whose fixes passed the
    sandbox and share a root cause (the same schema change of the same physical input, at
    the same commit) are proposed together on one branch with one pull request. With
    ``dry_run`` the fixes are validated and grouped, but nothing is pushed and no PR opened.
    """
    ledger = ledger or Ledger()
    policy = policy or Policy.from_env()
    repo = str(Path(repo).resolve())
    names = pipelines or list(load_manifest(repo).pipelines)
    attempts, validated = [], []
    try:
        for name in names:
            latest = ledger.runs(pipeline=name, repo=repo, limit=1)
            if not latest or latest[0].status != "failed":
                continue
            attempt = _Attempt.start(latest[0], ledger, policy)
            attempts.append(attempt)
            if attempt.early:
                continue
            try:
                v = _validate(attempt, policy, fixers, spark, llm)
                if v:
                    validated.append(v)
            except HealerError as exc:
                attempt.outcome.status, attempt.outcome.reason = "error", str(exc)
        for group in group_by_root_cause(validated):
            if dry_run:
                together = f" (one PR for {len(group)} pipelines)" if len(group) > 1 else ""
                for v in group:
                    v.attempt.outcome.status = "proposed"
                    v.attempt.outcome.reason = (f"dry run: {v.patch.title} passed the sandbox; nothing pushed"
                                                f"{together}")
                continue
            try:
                _propose(group, ledger, policy, forge, group[0].attempt.timer)
            except HealerError as exc:
                for v in group:
                    v.attempt.outcome.status, v.attempt.outcome.reason = "error", str(exc)
    except BaseException as exc:
        _mark_stopped(attempts, exc)
        raise
    finally:
        for attempt in attempts:
            if attempt.workspace is not None:
                attempt.workspace.remove()
            attempt.finish()
    return [a.outcome for a in attempts]


@dataclass
class _Attempt:
    """One failure on its way through the stages, with its timer and ledger row."""

    run: object
    failure: Failure
    outcome: Outcome
    ledger: Ledger
    timer: "_Timer"
    workspace: Workspace | None = None
    early: bool = False  # stopped at triage; already recorded
    lease: Lease | None = None  # this heal's hold on its root cause, renewed until finish()
    rules: Effective | None = None  # the effective policy of the pipeline (healer.governance)

    @classmethod
    def start(cls, run, ledger: Ledger, policy: Policy | None = None) -> "_Attempt":
        timer = _Timer(telemetry.start_heal(run.pipeline, run.id, run.context))
        with timer.stage("triage"):
            failure = from_run(run)
            early = _triage(failure, ledger)
            rules = None
            if early is None and policy is not None:
                # policy before the lease and the clone: a declined pipeline costs nothing
                rules, early = _admit(failure, ledger, policy)
        lease = None
        if early is None:
            with timer.stage("lease"):
                lease, early = _take_lease(failure, ledger)
        if early:
            early.timings = timer.timings
            _record(ledger, failure, early)
            timer.trace.end(early, ledger, run.finished_at)
            trail.heal_ended(ledger, early, early=True)
            return cls(run, failure, early, ledger, timer, early=True)
        outcome = Outcome("running", "", pipeline=failure.pipeline, failure=failure.run_id,
                          fingerprint=failure.fingerprint, category=failure.category, heal=lease.heal_id)
        trail.heal_started(ledger, lease.heal_id, failure)
        return cls(run, failure, outcome, ledger, timer, lease=lease.keep_alive(), rules=rules)

    def finish(self) -> None:
        if self.early:
            return
        o = self.outcome
        if o.status == "running":
            o.status, o.reason = "error", o.reason or "the heal stopped unexpectedly"
        o.timings = dict(self.timer.timings)
        o.timings["total"] = round(sum(self.timer.timings.values()), 2)
        try:
            self.ledger.update(heals, o.heal, status=o.status, reason=redact(o.reason), fixer=o.fixer, branch=o.branch,
                               pr_id=o.pr, outcome=_jsonable(o.to_json()), finished_at=utcnow())
            trail.heal_ended(self.ledger, o)
        finally:
            self.timer.trace.end(o, self.ledger, self.run.finished_at)
            if self.lease is not None:
                # only now: a heal of the same cause waiting for the lease must find this one's result
                self.lease.release()


@dataclass
class Validated:
    """A fix that passed the sandbox, with everything the proposal needs."""

    attempt: _Attempt
    evidence: object
    patch: object
    verdict: object
    plan: dict
    alternative: tuple | None = None  # (patch, verdict) that also passed, and lost on Healer's figures


def _triage(failure: Failure, ledger: Ledger) -> Outcome | None:
    """An outcome when the heal should stop before any work: transient, retrying, invalid config
    (the failure's own triage, healer.failure), or a duplicate of an open PR (the ledger's)."""
    base = dict(pipeline=failure.pipeline, failure=failure.run_id, fingerprint=failure.fingerprint,
                category=failure.category)
    stop = stop_before_work(failure)
    if stop is not None:
        status, reason = stop
        return Outcome(status, reason, **base)
    existing = ledger.open_pr_for(failure.fingerprint)
    if existing:
        return _duplicate_of_pr(existing, base)
    return None


def _admit(failure: Failure, ledger: Ledger, policy: Policy) -> tuple[Effective | None, Outcome | None]:
    """The pipeline's effective policy, or the outcome that stops the heal: declined by policy (mode off, a
    paused pipeline, the daily PR budget), or an error for a policy file that is invalid."""
    base = dict(pipeline=failure.pipeline, failure=failure.run_id, fingerprint=failure.fingerprint,
                category=failure.category)
    try:
        admission = enforce.admit(ledger, failure.repo, failure.pipeline, policy)
    except HealerError as exc:
        return None, Outcome("error", str(exc), **base)
    if admission.status == "declined":
        return admission.rules, Outcome("declined", admission.reason, **base)
    return admission.rules, None


def _duplicate_of_pr(pr: dict, base: dict) -> Outcome:
    return Outcome("proposed", f"an open proposal already exists for this cause: PR #{pr['id']}",
                   branch=pr["branch"], pr=pr["id"], pr_url=pr["url"], draft=bool(pr["draft"]),
                   duplicate=True, duplicate_of=pr.get("heal_id"), **base)


def _take_lease(failure: Failure, ledger: Ledger) -> tuple[Lease | None, Outcome | None]:
    """The lease of this failure's root cause, or the outcome that makes this heal a duplicate.

    One heal per cause at a time, across processes and machines. While another heal holds the
    lease, this one waits for it (``HEALER_LEASE_WAIT``) and then returns its result as a
    duplicate: ``proposed`` with its PR, or ``skipped`` naming it when it ended without one.
    When the wait runs out first, ``skipped`` naming the heal still running. A holder that
    died is taken over once its lease expires, and marked ``abandoned``.
    """
    base = dict(pipeline=failure.pipeline, failure=failure.run_id, fingerprint=failure.fingerprint,
                category=failure.category)
    row = dict(run_id=failure.run_id, pipeline=failure.pipeline, repo=failure.repo, category=failure.category)
    ledger.abandon_expired()  # every heal sweeps: dead heals of any cause do not wait for the healer DAG
    scratch.sweep(ledger)  # and removes their scratch (local or file: scratch; remote stores by `healer sweep`)
    wait = lease_wait_seconds()
    deadline, seen = time.monotonic() + wait, None
    while True:
        got = ledger.take_lease(failure.fingerprint, row)
        if isinstance(got, Lease):
            # the holder we waited for (or one that finished between triage and now) may have done the work
            existing = ledger.open_pr_for(failure.fingerprint)
            ended = ledger.get(heals, seen) if seen is not None else None
            if existing:
                got.release(discard=True)
                return None, _duplicate_of_pr(existing, base)
            if ended and ended["status"] not in ("running", "abandoned"):
                got.release(discard=True)
                return None, Outcome("skipped", f"heal #{seen} of this cause ran at the same time and ended "
                                                f"{ended['status']}: {ended['reason']}",
                                     duplicate=True, duplicate_of=seen, **base)
            if got.took_over:
                log.info("heal #%s of this cause died (%s); marked abandoned", got.took_over.heal_id, got.took_over.holder)
            return got, None
        if seen != got.heal_id:
            log.info("heal #%s (%s) is healing this cause; waiting up to %.0fs for its result", got.heal_id, got.holder, wait)
        seen = got.heal_id
        if time.monotonic() >= deadline:
            return None, Outcome("skipped", f"heal #{got.heal_id} of this cause is still running ({got.holder}, "
                                            f"lease renewed {got.renewed_at:%H:%M:%S} UTC); waited {wait:.0f}s for it",
                                 duplicate=True, duplicate_of=got.heal_id, **base)
        time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))


def _mark_stopped(attempts: list["_Attempt"], exc: BaseException) -> None:
    """Heals cut short by SIGTERM (the CLI raises it as SystemExit), Ctrl-C or Airflow killing the task
    end ``abandoned``, not ``running`` forever; program errors (any Exception) stay ``error``."""
    if isinstance(exc, Exception):
        return
    why = str(exc) if str(exc) and not str(exc).isdigit() else type(exc).__name__
    for attempt in attempts:
        if not attempt.early and attempt.outcome.status == "running":
            attempt.outcome.status, attempt.outcome.reason = "abandoned", f"the heal was stopped before it finished: {why}"


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


@trail.within_heal
def _validate(attempt: _Attempt, policy, fixers, spark, llm) -> Validated | None:
    """Workspace, evidence, fixers, sandbox: the best fix that passed, or None (outcome says why)."""
    from healer.expectations import preload
    from healer.runner.session import get_spark
    from healer.runner.warm import warm_up_for_heal

    failure, ledger = attempt.failure, attempt.ledger
    if attempt.rules is not None:
        policy = attempt.rules.tighten(policy)  # the policy files' sandbox and shadow seconds
    scratch.check_configured()  # a cluster with unshared scratch: one line before the clone and Spark
    if failure.dirty:
        raise WorkspaceError(f"{failure.repo}: run #{failure.run_id} used uncommitted changes; commit them so "
                             "Healer can reproduce the job from git")
    with attempt.timer.stage("workspace"):
        workspace = attempt.workspace = Workspace.create(failure.repo, failure.commit, failure.pipeline)
        trail.cloned(failure.repo, workspace.commit, workspace.base_branch, workspace.remote_url)
    if spark is None:
        warm_up_for_heal()  # Spark and GX; a no-op when the caller started them already
    else:
        preload()
    with attempt.timer.stage("evidence"):
        spark = spark or get_spark("healer-heal", quick_jit=True)
        manifest = load_manifest(workspace.path, data_root=failure.repo)
        pipeline = bind_recorded_locations(manifest.pipeline(failure.pipeline), attempt.run)
        expectations = load_expectations(pipeline.expectations_path) if pipeline.expectations else []
        last_good = ledger.last_success(failure.pipeline, before_id=failure.run_id, repo=failure.repo)
        # samples and sandbox outputs go where the cluster's executors can read them; removed at close
        area = heal_area(spark, ledger.url, attempt.outcome.heal)
        sandboxes = _Sandboxes(spark, pipeline, last_good, expectations, policy, area)
        try:
            # Sampling needs only the inputs: it runs while the evidence is gathered.
            sandboxes.for_patch(None).prepare_in_background()
            try:
                evidence = gather(spark, failure, pipeline, last_good, repo=workspace.repo, expectations=expectations)
            except Exception as exc:  # evidence that cannot be gathered is an outcome with a reason, never a crash
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                raise HealerError(f"evidence could not be gathered: {type(exc).__name__}: {first}") from exc
            info_lines(log, redact(evidence.render()))
            attempt.outcome.evidence = _jsonable({k: v for k, v in evidence.to_json().items() if k != "failure"})
        except BaseException:
            sandboxes.close()
            raise
    try:
        return _try_candidates(attempt, evidence, sandboxes, policy, fixers, llm)
    finally:
        sandboxes.close()


class _Sandboxes:
    """One sandbox per input binding: a patch that moves an input runs on samples of where it now points."""

    def __init__(self, spark, pipeline, last_good, expectations, policy, area: Area | None = None):
        self.spark, self.pipeline, self.last_good = spark, pipeline, last_good
        self.expectations, self.policy, self.area = expectations, policy, area
        self.by_binding: dict = {}

    def for_patch(self, patch) -> Sandbox:
        bound = candidate_pipeline(self.pipeline, patch) if patch is not None else self.pipeline
        key = binding_key(bound)
        if key not in self.by_binding:
            self.by_binding[key] = Sandbox(self.spark, bound, self.last_good, self.expectations, self.policy,
                                           area=self.area)
        return self.by_binding[key]

    def close(self) -> None:
        for sandbox in self.by_binding.values():
            sandbox.close()
        if self.area is not None:
            self.area.remove(self.spark)


def _try_candidates(attempt: _Attempt, evidence, sandboxes: _Sandboxes, policy, fixers, llm) -> Validated | None:
    """Rule candidates, then the model's, through the sandbox until one passes."""
    failure, outcome, timer = attempt.failure, attempt.outcome, attempt.timer
    with timer.stage("fixers"):
        fixers, refused = enforce.allowed_fixers(attempt.ledger, attempt.rules, failure.pipeline,
                                                 fixers if fixers is not None else default_fixers())
        proposals = propose_all(evidence, fixers)
        notes = refused + proposals.notes()
        patches = [p for p in proposals.patches if p.confidence >= policy.min_confidence][: policy.max_candidates]
    llm = enforce.gate_model(llm if llm is not None else LLMFixer(), attempt.ledger, attempt.rules, failure.pipeline,
                             failure.repo)
    outcome.llm = {"enabled": llm.enabled, "reason": "" if llm.enabled else llm.off_reason()}
    if not patches and not llm.enabled:
        outcome.status = "declined"
        cause = evidence.cause()  # the concrete change first: "orders.order_ts (timestamp) was dropped upstream"
        outcome.reason = (f"{cause}: " if cause else "") + "no fixer proposed a candidate" \
            + (f" ({'; '.join(notes)})" if notes else "") \
            + f"; root cause: {failure.describe()}" + (
                "" if evidence.changed else " and no schema drift since the last good run") \
            + _code_change_note(evidence) + f"; {llm.off_reason()}"
        return None
    trial = _Trial(attempt.workspace, attempt.ledger, outcome, attempt.rules)
    with timer.stage("sandbox"):
        best = next((b for b in (trial.run(sandboxes.for_patch(p), p) for p in patches) if b), None)
        alternative = None
        if best is None and llm.enabled:
            best = model_rounds(llm, evidence, attempt.workspace, sandboxes.for_patch(None), trial, outcome)
        elif best is not None and llm.enabled and is_draft(best[0], best[1], policy.draft_below):
            # A rule's draft does not end the search: the model may know the fix that is ready.
            best, alternative = _second_opinion(best, llm, evidence, attempt.workspace, sandboxes, trial, outcome)
        plan = dict(sandboxes.for_patch(best[0]).sample_plan) if best else {}
    if best is None:
        outcome.status = "declined"
        tried = " | ".join(f"{c['fixer']}: {'; '.join(c['reasons'])}" for c in outcome.candidates)
        cause = evidence.cause()
        outcome.reason = (f"{cause}: " if cause else "") + (("no candidate passed the sandbox: " + tried) if tried else
                                                            f"no fixer proposed a candidate; root cause: {failure.describe()}")
        if llm.enabled and outcome.llm.get("reason"):
            outcome.reason += f"; {outcome.llm['reason']}"
        return None
    patch, verdict = best
    outcome.fixer, outcome.confidence = patch.fixer, patch.confidence
    readiness, shadow = verdict.readiness, verdict.shadow
    outcome.validation = {"checks": [asdict(c) for c in verdict.checks],
                          "expectations": [e.to_json() for e in verdict.expectations],
                          "sample_sizes": verdict.sample_sizes, "output_rows": verdict.output_rows,
                          "ready": readiness.ready if readiness else None,
                          "draft_reasons": list(readiness.reasons) if readiness else [],
                          "shadow_rows_read": shadow.rows_read if shadow and shadow.ran else None,
                          "data_diff": shadow.diff.summary() if shadow and shadow.diff else None,
                          "diff": asdict(shadow.diff) if shadow and shadow.diff else None}
    return Validated(attempt, evidence, patch, verdict, plan, alternative)


def _second_opinion(rule_best, llm, evidence, workspace, sandboxes, trial, outcome):
    """Ask the model beside a rule's draft; Healer's own figures choose. Returns (chosen, the other or None)."""
    try:
        model_best = model_rounds(llm, evidence, workspace, sandboxes.for_patch(None), trial, outcome)
    except HealerError as exc:  # the rule's draft stands; the model's trouble is said in the outcome
        outcome.llm["error"] = str(exc)
        return rule_best, None
    if model_best is None:
        return rule_best, None
    ranked = sorted([rule_best, model_best], key=merit, reverse=True)
    return ranked[0], ranked[1]


def _code_change_note(evidence) -> str:
    """What the commits since the last good run changed, for a decline's reason (issue 17)."""
    changes = getattr(evidence, "changes", None)
    if changes is None or not changes.commits:
        return ""
    last = changes.commits[-1].commit
    return (f"; the code changed since the last good run: {len(changes.commits)} commit(s) to "
            f"{', '.join(changes.changed_paths) or 'the pipeline'}, the last {last.sha[:10]} by {last.author} "
            f"({last.subject[:80]})")


@trail.within_heal
def _propose(group: list[Validated], ledger: Ledger, policy: Policy, forge, timer) -> None:
    """Commit every validated fix of the group on one branch, push, open one pull request.

    A group of one is the usual heal; a larger group is a storm: one upstream change that
    broke several pipelines, fixed together and reviewed together.
    """
    lead = group[0]
    failure, workspace = lead.attempt.failure, lead.attempt.workspace
    storm = len(group) > 1
    # Healer's own verdict (shadow run, data diff) decides; a fixer's doubts can only add caution.
    verdict_draft = any(is_draft(v.patch, v.verdict, policy.draft_below) for v in group)
    by_policy = next((r for r in (enforce.draft_reason(v.attempt.rules) for v in group) if r), None)
    draft = verdict_draft or by_policy is not None
    fingerprint = storm_fingerprint(group) if storm else failure.fingerprint
    branch = f"healer/storm/{fingerprint[:8]}" if storm else branch_name(failure.pipeline, failure.short_fingerprint)
    with timer.stage("proposal"):
        for v in group:
            if v.attempt.lease is not None:
                v.attempt.lease.check()  # a heal that stalled past its lease must not push over its successor
        # Choose the forge before pushing: a forge misconfiguration must not leave an orphan branch.
        forge = forge or get_forge(ledger, workspace.remote_url)
        for v in group:
            workspace.apply(v.patch.edits)
        if storm:
            title = f"heal(storm): {lead.patch.title} — {len(group)} pipelines"
            message = title + "\n\n" + "\n".join(report.commit_message(v.attempt.failure.pipeline, v.patch, v.attempt.failure)
                                                 for v in group)
        else:
            title = report.pr_title(failure.pipeline, lead.patch)
            message = report.commit_message(failure.pipeline, lead.patch, failure)
        sha = workspace.commit_on_branch(branch, redact(message))
        workspace.push(branch)
        trail.pushed(branch, sha, workspace.remote_url)
        for v in group:
            v.attempt.outcome.branch = branch  # pushed: say so even if opening the PR fails below
        bodies = [report.pr_body(v.attempt.failure, v.evidence, v.patch, v.verdict, dict(v.attempt.timer.timings),
                                 branch, verdict_draft, v.plan, draft_below=policy.draft_below,
                                 alternative=v.alternative)
                  for v in group]
        draft_lead = next((v for v in group if is_draft(v.patch, v.verdict, policy.draft_below)), group[0])
        body = bodies[0] if not storm else report.storm_body(
            [(v.attempt.failure, v.patch, v.verdict) for v in group], bodies, fingerprint,
            draft_below=policy.draft_below if verdict_draft else None,
            draft_lead=(draft_lead.patch, draft_lead.verdict))
        if by_policy is not None:
            body = f"> **Draft by policy:** {by_policy.removeprefix('policy: ')}.\n\n{body}"
        audience, sources = people.audience_for(lead.attempt.rules, workspace.path,
                                                sorted({f for v in group for f in v.patch.files}), forge)
        asked = dict(audience=audience) if audience and getattr(forge, "SUPPORTS_AUDIENCE", False) else {}
        # the error class as a label; a storm's members share one root cause, and its last member's class names it
        labels = report.pr_labels(group[-1].attempt.failure)
        pr = forge.open(title=redact(title), body=redact(body), branch=branch, base=workspace.base_branch, remote=workspace.remote_url,
                        draft=draft, pipeline=",".join(v.attempt.failure.pipeline for v in group),
                        fingerprint=fingerprint, heal_id=lead.attempt.outcome.heal, labels=labels, **asked)
        people.record(ledger, pr.id, audience, sources)
        merged = enforce.auto_merge(lead.attempt.rules, forge, pr.id, lead.patch.fixer, lead.verdict, draft=draft,
                                    storm=storm)
        trail.pr_proposed(ledger, pr)
    for v in group:
        o = v.attempt.outcome
        o.status, o.branch, o.pr, o.pr_url, o.draft = "proposed", branch, pr.id, pr.url, draft
        o.reason = f"{v.patch.title}; validated in the sandbox" + (" (draft)" if draft else "") + (
            f"; {by_policy}" if by_policy else "") + (f"; {merged}" if merged else "") + (
            f"; one PR for {len(group)} pipelines with the same root cause" if storm else "")


def is_draft(patch, verdict, draft_below: float) -> bool:
    """Draft unless Healer's evidence says ready (and the fixer itself was not less sure)."""
    readiness = getattr(verdict, "readiness", None)
    if readiness is not None:
        return not readiness.ready
    return patch.changes_meaning or patch.confidence < draft_below


class _Trial:
    """Runs one candidate in the sandbox and records it, whatever fixer made it."""

    def __init__(self, workspace, ledger, outcome, rules: Effective | None = None):
        self.workspace, self.ledger, self.outcome = workspace, ledger, outcome
        self.rules = rules

    def run(self, sandbox, patch):
        refusal = enforce.patch_refusal(self.rules, patch)
        if refusal is not None:  # never applied, never run: the model hears the rule like any failed check
            self.outcome.candidates.append({"fixer": patch.fixer, "title": patch.title, "confidence": patch.confidence,
                                            "passed": False, "reasons": [refusal]})
            self.ledger.insert(candidates, heal_id=self.outcome.heal, fixer=patch.fixer, title=redact(patch.title),
                               confidence=patch.confidence, patch=_jsonable(patch.to_json()),
                               verdict=_jsonable({"passed": False, "reasons": [refusal]}), passed=False)
            info_lines(log, f"candidate {patch.fixer}: refused: {refusal}")
            return None
        with telemetry.span("healer.candidate", {"healer.fixer": patch.fixer}) as span:
            self.workspace.apply(patch.edits)
            try:
                verdict = sandbox.run(self.workspace.path, patch)
            finally:
                self.workspace.revert()
            span.set({"healer.passed": verdict.passed})
        self.outcome.candidates.append({"fixer": patch.fixer, "title": patch.title, "confidence": patch.confidence,
                                        "passed": verdict.passed, "reasons": verdict.reasons()})
        # the stored patch is for reading (nothing re-applies it: the branch holds the fix), so it is redacted too
        trail.candidate_tried(sandbox, patch, verdict)
        self.ledger.insert(candidates, heal_id=self.outcome.heal, fixer=patch.fixer, title=redact(patch.title),
                           confidence=patch.confidence, patch=_jsonable(patch.to_json()),
                           verdict=_jsonable(verdict.to_json()),
                           passed=verdict.passed)
        info_lines(log, redact(f"candidate {patch.fixer}: {'passed' if verdict.passed else 'failed: ' + '; '.join(verdict.reasons())}"))
        return (patch, verdict) if verdict.passed else None


def _record(ledger: Ledger, failure: Failure, outcome: Outcome) -> None:
    outcome.heal = ledger.insert(heals, run_id=failure.run_id, pipeline=failure.pipeline, repo=failure.repo,
                                 fingerprint=failure.fingerprint, category=failure.category, status=outcome.status,
                                 reason=redact(outcome.reason), branch=outcome.branch, pr_id=outcome.pr,
                                 outcome=_jsonable(outcome.to_json()), started_at=utcnow(), finished_at=utcnow())


def _jsonable(value):
    """A record for the ledger: JSON-storable, with secrets redacted and secret columns masked."""
    from healer.ledger import jsonable

    return redact_json(jsonable(value))


class _CallableModule(types.ModuleType):
    """``from healer import heal`` gives this module; calling it calls its ``heal`` function.

    One name for both uses, so ``healer.heal`` stays the module every import uses
    (``from healer.heal import Outcome``, ``monkeypatch.setattr(healer.heal, ...)``).
    """

    def __call__(self, *args, **kwargs) -> Outcome:
        return heal(*args, **kwargs)  # looked up at call time: a patched heal is the one called


sys.modules[__name__].__class__ = _CallableModule
