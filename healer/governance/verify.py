"""Post-merge verification: did a merged Healer fix hold on the pipeline's next real runs?

    watching     the fix is merged; the next run that carries it decides
    verified     that run succeeded
    regressed    that run failed with the same fingerprint, or failed an expectation:
                 a revert pull request is opened (``git revert`` of the merged change on a
                 ``healer/revert/...`` branch; where no revert can be made, a comment on the PR
                 says why) and the circuit breaker pauses healing of the pipeline
    unverified   no run carried the fix within the window (``HEALER_VERIFY_DAYS``, default 7)

Where the check runs, and why there:
- ``on_run`` when a run is recorded (``healer run``, the Airflow operators): the verdict and the
  breaker are database writes, so the pipeline's own path stays fast and the breaker is tripped
  before the next failure can be healed again; no git or forge work happens inside a run.
- ``check`` on ``healer sync``, in the healer DAG's sweep and by ``healer verify``: it starts
  watching PRs that became merged, judges runs the hook missed (a run recorded by an older
  Healer, or in another ledger writer), expires the window, and does the slow part of a
  regression — cloning, reverting, pushing, opening the revert PR — outside any pipeline run.

Verification states live in their own append-only table (``verifications``): a heal's state is
its newest row; a change is a new row, never an update.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from dataclasses import dataclass
from typing import Literal, Mapping

import git
import sqlalchemy as sa

from healer.errors import ForgeError, HealerError
from healer.governance import trail
from healer.governance.audit import Action, events, record
from healer.ledger import Ledger, RunRecord, UTCDateTime, as_utc, heals, metadata, prs, runs, utcnow
from healer.redact import redact

log = logging.getLogger(__name__)

State = Literal["watching", "verified", "regressed", "unverified"]
STATES: tuple[State, ...] = ("watching", "verified", "regressed", "unverified")
REVERT_PREFIX = "healer/revert/"

verifications = sa.Table(
    "verifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("heal_id", sa.Integer, nullable=False, index=True),
    sa.Column("pr_id", sa.Integer, index=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("repo", sa.Text),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("merged_at", UTCDateTime()),
    sa.Column("run_id", sa.Integer),  # the run that decided it
    sa.Column("reason", sa.Text),
    sa.Column("at", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True)
class Verification:
    """A heal's verification state as of ``at``."""

    heal_id: int
    pr_id: int | None
    pipeline: str
    repo: str | None
    state: State
    merged_at: dt.datetime | None
    run_id: int | None
    reason: str
    at: dt.datetime

    def one_line(self) -> str:
        return f"heal #{self.heal_id} ({self.pipeline}, PR #{self.pr_id}): {self.state}: {self.reason}"

    def to_json(self) -> dict:
        return {"heal_id": self.heal_id, "pr_id": self.pr_id, "pipeline": self.pipeline, "state": self.state,
                "merged_at": self.merged_at.isoformat() if self.merged_at else None, "run_id": self.run_id,
                "reason": self.reason, "at": self.at.isoformat()}


@dataclass(frozen=True)
class Revert:
    """What a regression led to on the forge: a revert pull request, or a comment where none could be made."""

    kind: Literal["pr", "comment"]
    detail: str
    pr_id: int | None = None
    branch: str | None = None
    sha: str | None = None


@dataclass(frozen=True)
class Checked:
    """One heal's line of ``healer verify``: its state now, what was done about a regression, what went wrong."""

    verification: Verification
    revert: Revert | None = None
    problem: str | None = None

    @property
    def heal_id(self) -> int:
        return self.verification.heal_id

    def one_line(self) -> str:
        line = self.verification.one_line()
        if self.revert is not None:
            line += f"; {self.revert.detail}"
        return line + (f"; problem: {self.problem}" if self.problem else "")

    def to_json(self) -> dict:
        return {**self.verification.to_json(), "revert": None if self.revert is None else {
            "kind": self.revert.kind, "detail": self.revert.detail, "pr_id": self.revert.pr_id,
            "branch": self.revert.branch, "sha": self.revert.sha}, "problem": self.problem}


# -- reading ----------------------------------------------------------------------------------

def state(ledger: Ledger, heal_id: int) -> Verification | None:
    """The heal's verification state now (its newest row), or None when its fix was never merged."""
    _ensure(ledger)
    rows = ledger.select(verifications, verifications.c.heal_id == heal_id, limit=1)
    return _verification(rows[0]) if rows else None


def latest(ledger: Ledger, states: tuple[State, ...] = STATES) -> list[Verification]:
    """Every verified heal's current state, when it is one of ``states``."""
    _ensure(ledger)
    newest = sa.select(sa.func.max(verifications.c.id)).group_by(verifications.c.heal_id)
    rows = ledger.select(verifications, verifications.c.id.in_(newest), verifications.c.state.in_(states),
                         order_desc=False, limit=100_000)
    return [_verification(r) for r in rows]


def for_pr(ledger: Ledger, pr_id: int) -> Verification | None:
    """The verification state of a merged PR's fix (of a storm PR, its worst member's)."""
    _ensure(ledger)
    found = [v for v in latest(ledger) if v.pr_id == pr_id]
    order = ("regressed", "unverified", "watching", "verified")
    return min(found, key=lambda v: order.index(v.state)) if found else None


def history(ledger: Ledger, heal_id: int) -> list[Verification]:
    """Every state a heal's verification went through, oldest first."""
    _ensure(ledger)
    return [_verification(r) for r in ledger.select(verifications, verifications.c.heal_id == heal_id,
                                                     order_desc=False, limit=1000)]


# -- the checks -------------------------------------------------------------------------------

def on_run(ledger: Ledger, run: RunRecord) -> list[Verification]:
    """A run was recorded: judge the merged fixes of its pipeline it carries (database only; never raises)."""
    if run.status not in ("success", "failed"):
        return []
    try:
        watch_merged(ledger)  # a PR merged since the last sync or sweep is watched from this run on
        changed = []
        for v in latest(ledger, ("watching", "unverified")):
            if v.pipeline == run.pipeline and v.repo == run.repo and not _withdrawn(ledger, v):
                judged = _judge(ledger, v, [run])
                if judged is not None:
                    changed.append(judged)
        return changed
    except Exception as exc:  # verification must never fail a pipeline run
        log.warning("verification of run #%s of %s failed: %s", run.id, run.pipeline, exc)
        return []


def check(ledger: Ledger, *, now: dt.datetime | None = None, window_days: float | None = None) -> list[Checked]:
    """Watch newly merged Healer PRs, judge their next runs, expire the window, act on regressions."""
    now = now or utcnow()
    window = dt.timedelta(days=window_days if window_days is not None else _window_days())
    watch_merged(ledger)
    results = []
    for v in latest(ledger, ("watching", "unverified")):
        if _withdrawn(ledger, v):  # reverted by a person: later runs do not carry the fix
            if v.state == "watching":
                results.append(Checked(_add(ledger, v, "unverified", None, f"PR #{v.pr_id} was reverted on its base "
                                                                           "before a run carried the fix")))
            continue
        candidates = _runs_after(ledger, v)
        judged = _judge(ledger, v, candidates) if candidates else None
        if judged is None and v.state == "watching" and v.merged_at is not None and now - v.merged_at > window:
            days = window.total_seconds() / 86400
            judged = _add(ledger, v, "unverified", None,
                          f"no run of {v.pipeline} carried the fix within {days:g} days of its merge "
                          f"({v.merged_at:%Y-%m-%d %H:%M} UTC); nothing says whether it held")
        if judged is not None:
            results.append(Checked(judged))
    for v in latest(ledger, ("regressed",)):
        if _reverted_already(ledger, v.heal_id):
            continue
        try:
            revert, problem = act_on_regression(ledger, v), None
        except HealerError as exc:  # the next check tries again; the breaker is tripped already
            revert, problem = None, str(exc)
        results = [c for c in results if c.heal_id != v.heal_id] + [Checked(v, revert, problem)]
    return results


def verify_after_sync(ledger: Ledger, results) -> list[Checked]:
    """After ``healer sync``: the state changes it read back go on their heals' trails, then ``check``."""
    actions = {"merged": Action.PR_MERGED, "closed": Action.PR_CLOSED, "reverted": Action.PR_REVERTED,
               "open": Action.PR_OPENED}
    for r in results:
        if r.changed and r.after in actions:
            row = ledger.get(prs, r.pr_id)
            if row is not None:
                trail.pr_event(ledger, row, actions[r.after], status=r.after, was=r.before, via="healer sync")
    return check(ledger)


def watch_merged(ledger: Ledger) -> list[Verification]:
    """Start watching every merged Healer fix not watched yet (revert PRs are not fixes to verify).

    One query for the heals to start (runs call this too, so it must stay cheap as PRs pile up)."""
    _ensure(ledger)
    merged = sa.select(prs.c.id).where(prs.c.status == "merged", sa.not_(prs.c.branch.startswith(REVERT_PREFIX)))
    fresh = ledger.select(heals, heals.c.pr_id.in_(merged), heals.c.status == "proposed",
                          heals.c.id.not_in(sa.select(verifications.c.heal_id)), order_desc=False, limit=10_000)
    started = []
    for h in fresh:
        if (h["outcome"] or {}).get("duplicate"):
            continue  # a duplicate heal points at the PR; the heal that made it is the one verified
        pr = ledger.get(prs, h["pr_id"])
        merged_at = _merged_at(ledger, pr)
        v = Verification(h["id"], pr["id"], h["pipeline"], h["repo"], "watching", merged_at, None, "", merged_at)
        started.append(_add(ledger, v, "watching", None,
                            f"PR #{pr['id']} merged {merged_at:%Y-%m-%d %H:%M} UTC; the next run of "
                            f"{h['pipeline']} that carries the fix decides"))
    return started


def _judge(ledger: Ledger, v: Verification, candidates: list[RunRecord]) -> Verification | None:
    """The first run that carries the fix and says something decides; None while none does."""
    heal = ledger.get(heals, v.heal_id) or {}
    failed_run = ledger.get_run(heal["run_id"]) if heal.get("run_id") else None
    for run in candidates:
        if not _carries_fix(v, run, failed_run):
            continue
        if run.status == "success":
            return _add(ledger, v, "verified", run.id, f"run #{run.id} succeeded after the merge "
                                                       f"({run.row_count} rows)")
        if run.status != "failed":
            continue
        from healer.failure import from_run

        failure = from_run(run)
        if failure.fingerprint == heal.get("fingerprint"):
            why = f"run #{run.id} failed again with the same cause ({failure.error_class}, fingerprint {failure.fingerprint})"
        elif run.stage == "audit":
            why = f"run #{run.id} failed an expectation after the merge: {(run.error_message or '')[:200]}"
        else:
            continue  # another cause (an outage, a new breakage): it says nothing about this fix
        regressed = _add(ledger, v, "regressed", run.id, why)
        _trip(ledger, regressed, heal)
        return regressed
    return None


def _carries_fix(v: Verification, run: RunRecord, failed_run: RunRecord | None) -> bool:
    """A run after the merge, of the same repo, not at the commit that failed (which cannot hold the fix)."""
    if run.pipeline != v.pipeline or run.repo != v.repo:
        return False
    if v.merged_at is not None and run.started_at is not None and as_utc(run.started_at) < v.merged_at:
        return False
    if failed_run is not None and failed_run.id is not None and run.id is not None and run.id <= failed_run.id:
        return False
    return not (failed_run is not None and failed_run.commit and run.commit == failed_run.commit)


def _runs_after(ledger: Ledger, v: Verification) -> list[RunRecord]:
    where = [runs.c.pipeline == v.pipeline, runs.c.status.in_(("success", "failed"))]
    if v.repo:
        where.append(runs.c.repo == v.repo)
    if v.merged_at is not None:
        where.append(runs.c.started_at >= v.merged_at)
    rows = ledger.select(runs, *where, order_desc=False, limit=1000)
    return [ledger.get_run(r["id"]) for r in rows]


# -- acting on a regression -------------------------------------------------------------------

def act_on_regression(ledger: Ledger, v: Verification) -> Revert:
    """Open a revert PR for a regressed fix (or comment where none can be made), once; trip the breaker."""
    heal = ledger.get(heals, v.heal_id) or {}
    _trip(ledger, v, heal)
    pr = ledger.get(prs, v.pr_id) if v.pr_id is not None else None
    if pr is None:
        raise ForgeError(f"heal #{v.heal_id} regressed but its pull request is not in the ledger {ledger.url}")
    from healer.forges import forge_for

    forge = forge_for(ledger, pr)
    why = f"Healer's fix from PR #{pr['id']} ({pr['title']}) regressed: {v.reason}."
    made = _revert_branch(pr, v)
    if isinstance(made, str):  # no revert could be made: say so on the PR
        text = f"{why} No revert could be made automatically: {made}. Please revert it by hand."
        said = _comment(forge, pr, redact(text))
        result = Revert("comment", (f"commented on PR #{pr['id']}: " if said else "no revert PR: ") + made)
        record(ledger, v.heal_id, Action.REVERT_PROPOSED, kind="comment", pr=pr["id"], reason=made)
        return result
    branch, sha = made
    body = "\n".join([
        f"### Revert of PR #{pr['id']}: the fix regressed", "",
        why, "",
        f"- the regressed run: #{v.run_id} of `{v.pipeline}`",
        f"- the revert: `{sha[:12]}` on `{branch}` (`git revert` of the merged change)",
        f"- healing of `{v.pipeline}` is paused by the circuit breaker until "
        f"`healer policy resume {v.pipeline}`", "",
        f"<!-- healer:revert-of={pr['id']} -->"])
    opened = forge.open(title=redact(f"revert: {pr['title']}")[:250], body=redact(body), branch=branch,
                        base=pr["base"], remote=pr["remote"], draft=False, pipeline=pr["pipeline"],
                        fingerprint=("revert" + (pr["fingerprint"] or str(pr["id"])))[:64], heal_id=v.heal_id)
    record(ledger, v.heal_id, Action.PUSH, branch=branch, sha=sha, remote=pr["remote"], revert_of=pr["id"])
    trail.pr_event(ledger, ledger.get(prs, opened.id), Action.PR_OPENED, status=opened.status, revert_of=pr["id"])
    record(ledger, v.heal_id, Action.REVERT_PROPOSED, kind="pr", pr=opened.id, branch=branch, sha=sha,
           revert_of=pr["id"])
    return Revert("pr", f"revert PR #{opened.id} opened ({branch})", opened.id, branch, sha)


def _revert_branch(pr: Mapping, v: Verification) -> tuple[str, str] | str:
    """Push a branch reverting the merged change: (branch, sha), or why it cannot be done."""
    from healer.workspace import healer_identity

    tmp = tempfile.mkdtemp(prefix="healer-revert-")
    branch = f"{REVERT_PREFIX}{v.pipeline.split(',')[0]}/{pr['id']}"
    try:
        repo = git.Repo.clone_from(pr["remote"], tmp, branch=pr["base"])
        name, email = healer_identity()
        with repo.config_writer() as cfg:
            cfg.set_value("user", "name", name)
            cfg.set_value("user", "email", email)
        target = _merged_commit(repo, pr)
        if target is None:
            return (f"no commit on {pr['base']} brings {pr['branch']} in (a squash or rebase merge, "
                    "or history rewritten)")
        sha, is_merge = target
        repo.git.checkout("-b", branch)
        try:
            repo.git.revert("--no-edit", *(["-m", "1"] if is_merge else []), sha)
        except git.GitCommandError as exc:
            repo.git.revert("--abort")
            return f"`git revert {sha[:12]}` does not apply cleanly on {pr['base']}: {_first(exc)}"
        repo.git.push("--force", "origin", f"{branch}:refs/heads/{branch}")
        return branch, repo.head.commit.hexsha
    except git.GitCommandError as exc:
        raise ForgeError(f"cannot revert PR #{pr['id']} on {pr['remote']}: {_first(exc)}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merged_commit(repo: git.Repo, pr: Mapping) -> tuple[str, bool] | None:
    """The commit on the base that brought the PR's branch in: a merge naming the branch (the local
    forge's, GitHub's and GitLab's merge messages all do), else the pushed fix itself when it is on the base."""
    base = f"origin/{pr['base']}"
    merges = repo.git.log(base, "--merges", "--format=%H", "-F", f"--grep={pr['branch']}").split()
    if merges:
        return merges[0], True
    # a fast-forward or rebase merge leaves the branch's own commits on the base
    try:
        repo.git.fetch("origin", f"{pr['branch']}:refs/remotes/origin/{pr['branch']}")
        head = repo.git.rev_parse(f"origin/{pr['branch']}")
        repo.git.merge_base("--is-ancestor", head, base)
        return head, False
    except git.GitCommandError:
        return None


def _comment(forge, pr: Mapping, text: str) -> bool:
    """A comment on the PR, where the forge has comments (GitHub, GitLab): True when made. The local
    forge has none: there the audit trail and ``healer verify`` say it."""
    if pr["forge"] == "local" or not pr["number"]:
        return False
    try:
        forge._comment(forge._fetch(pr["number"]), text)  # the forge's own comment call, as open's update uses it
    except HealerError as exc:
        raise ForgeError(f"cannot comment on PR #{pr['id']}: {exc}") from None
    return True


def _trip(ledger: Ledger, v: Verification, heal: Mapping) -> None:
    from healer.governance import breaker

    for pipeline in v.pipeline.split(","):
        if breaker.paused(ledger, pipeline) is not None:
            continue  # paused already: the first pause's reason is the one a reviewer reads
        pause = breaker.trip(ledger, pipeline=pipeline, reason=f"a merged Healer fix regressed: {v.reason}"[:500],
                             heal_id=v.heal_id)
        record(ledger, v.heal_id, Action.BREAKER_TRIPPED, pipeline=pipeline, reason=pause.reason)


def _withdrawn(ledger: Ledger, v: Verification) -> bool:
    pr = ledger.get(prs, v.pr_id) if v.pr_id is not None else None
    return bool(pr and pr["status"] == "reverted")


def _reverted_already(ledger: Ledger, heal_id: int) -> bool:
    return any(True for _ in events(ledger, heal_id=heal_id, actions=(Action.REVERT_PROPOSED,)))


# -- plumbing ---------------------------------------------------------------------------------

def _add(ledger: Ledger, v: Verification, new: State, run_id: int | None, reason: str) -> Verification:
    _ensure(ledger)
    now = utcnow()
    reason = redact(reason)
    values = dict(heal_id=v.heal_id, pr_id=v.pr_id, pipeline=v.pipeline, repo=v.repo, state=new,
                  merged_at=v.merged_at, run_id=run_id, reason=reason, at=now)
    ledger.insert(verifications, **values)
    record(ledger, v.heal_id, Action.VERIFICATION, state=new, run=run_id, pr=v.pr_id, reason=reason)
    log.info("heal #%s: %s: %s", v.heal_id, new, reason)
    return Verification(v.heal_id, v.pr_id, v.pipeline, v.repo, new, v.merged_at, run_id, reason, now)


def _merged_at(ledger: Ledger, pr: Mapping) -> dt.datetime:
    """When the PR was merged: its merge on the trail when Healer saw it happen, else when the ledger learnt it."""
    if pr["heal_id"] is not None:
        for e in events(ledger, heal_id=pr["heal_id"], actions=(Action.PR_MERGED,)):
            if e.detail.get("pr") == pr["id"]:
                return e.at
    return as_utc(pr["updated_at"]) or utcnow()


def _window_days() -> float:
    from healer.settings import Settings

    return Settings.from_env().verify_days


def _ensure(ledger: Ledger) -> None:
    """The table, on a ledger opened before this module was imported (create_all ran without it)."""
    ledger.ensure(verifications)


def _verification(row: Mapping) -> Verification:
    return Verification(row["heal_id"], row["pr_id"], row["pipeline"], row["repo"], row["state"],
                        as_utc(row["merged_at"]), row["run_id"], row["reason"] or "", as_utc(row["at"]))


def _first(exc: git.GitCommandError) -> str:
    return " ".join((exc.stderr or str(exc)).replace("stderr:", "").split())[:300]
