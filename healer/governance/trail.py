"""A heal's stages as audit events: what heal.py and the forges call to fill the trail.

``audit`` stores events; this module knows what a heal's objects mean (a sandbox verdict is
four gates: the static gate, the sample run, the shadow run, the readiness verdict) and
turns each into the events the trail shows, in the order they happened.
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from typing import Any, Callable, Mapping, TypeVar

from healer.governance.audit import Action, AuditEvent, note, record, recording
from healer.ledger import Ledger

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Check names of a sandbox verdict by gate (healer/sandbox/run.py names them).
_STATIC = ("isolation", "gate")
_SHADOW = ("shadow run", "production untouched (full run)")
_READINESS = ("data diff",)


def within_heal(fn: F) -> F:
    """Run a heal stage with the trail of its heal(s) current, so code deep inside can ``note``.

    The stage's first argument is the heal's attempt (``.ledger``, ``.outcome.heal``) or a
    list of validated fixes proposed together (a storm: every member heal gets the events).
    """
    @functools.wraps(fn)
    def wrapper(first, *args, **kwargs):
        attempts = [v.attempt for v in first] if isinstance(first, list) else [first]
        with recording(attempts[0].ledger, [a.outcome.heal for a in attempts]):
            return fn(first, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


def heal_started(ledger: Ledger, heal_id: int | None, failure) -> None:
    """The heal took its cause's lease (or stopped at triage, which ``heal_ended`` says)."""
    _safe(ledger, heal_id, Action.HEAL_STARTED, failure=failure.run_id, fingerprint=failure.fingerprint,
          category=failure.category, error_class=failure.error_class, commit=failure.commit)


def heal_ended(ledger: Ledger, outcome, early: bool = False) -> None:
    """How the heal ended; a heal that stopped at triage (transient, retrying, duplicate) says so."""
    detail = dict(status=outcome.status, reason=outcome.reason, fixer=outcome.fixer, pr=outcome.pr,
                  branch=outcome.branch, draft=outcome.draft if outcome.pr else None,
                  duplicate_of=outcome.duplicate_of, seconds=(outcome.timings or {}).get("total"))
    if early:
        _safe(ledger, outcome.heal, Action.HEAL_STARTED, failure=outcome.failure, fingerprint=outcome.fingerprint,
              category=outcome.category)
        _safe(ledger, outcome.heal, Action.TRIAGE, **detail)
    _safe(ledger, outcome.heal, Action.HEAL_FINISHED, **detail)


def heals_abandoned(ledger: Ledger, abandoned) -> None:
    """Heals the sweep (or a successor) marked ``abandoned``: killed or crashed, they could not say so themselves."""
    for a in abandoned:
        _safe(ledger, a.heal_id, Action.HEAL_FINISHED, status="abandoned", reason=a.reason, holder=a.holder)


def cloned(source: str, commit: str, base: str, remote: str | None) -> None:
    note(Action.CLONE, source=source, commit=commit, base=base, remote=remote or None)


def pushed(branch: str, sha: str | None, remote: str) -> None:
    note(Action.PUSH, branch=branch, sha=sha, remote=remote)


_seen_inputs: "weakref.WeakSet[Any]" = weakref.WeakSet()


def candidate_tried(sandbox, patch, verdict) -> None:
    """One candidate through the sandbox: the inputs (once per sampling), the candidate, each gate's verdict."""
    if sandbox not in _seen_inputs and (sandbox.sample_sizes or sandbox.input_rows):
        _seen_inputs.add(sandbox)
        for name, spec in sandbox.pipeline.inputs.items():
            note(Action.INPUT_READ, input=name, location=spec.location, purpose="sample",
                 rows=sandbox.input_rows.get(name), sampled_rows=sandbox.sample_sizes.get(name),
                 how=sandbox.sample_plan.get(name), bytes=input_bytes(spec.path))
    note(Action.CANDIDATE, fixer=patch.fixer, title=patch.title, confidence=patch.confidence, files=patch.files,
         changes_meaning=patch.changes_meaning)
    for gate, passed, detail in gates(verdict):
        note(Action.GATE, gate=gate, fixer=patch.fixer, passed=passed, **detail)


def gates(verdict) -> list[tuple[str, bool, dict]]:
    """A verdict as the gates it went through, in order: (gate, passed, detail); the gates it never
    reached are left out."""
    checks = list(verdict.checks)
    static = [c for c in checks if c.name in _STATIC]
    out: list[tuple[str, bool, dict]] = []
    if static:
        out.append(("static", False, {"reasons": [c.detail for c in static]}))
        return out
    sample = [c for c in checks if c.name not in _SHADOW + _READINESS]
    if any(c.name == "runs" for c in sample):
        out.append(("static", True, {}))
    out.append(("sample", all(c.passed for c in sample),
                {"isolation": verdict.isolation, "sample_rows": dict(verdict.sample_sizes),
                 "output_rows": verdict.output_rows, "seconds": round(verdict.duration_s, 2),
                 "reasons": [f"{c.name}: {c.detail}" for c in sample if not c.passed]}))
    shadow = verdict.shadow
    if shadow is not None:
        out.append(("shadow", shadow.passed,
                    {"ran": shadow.ran, "reason": shadow.reason, "rows_read": shadow.rows_read,
                     "output_rows": shadow.output_rows, "seconds": round(shadow.seconds, 2),
                     "input_rows": dict(shadow.input_rows_now or {}), "failures": shadow.failures(),
                     "data_diff": shadow.diff.summary() if shadow.diff is not None else None}))
    readiness = verdict.readiness
    if readiness is not None:
        out.append(("readiness", not readiness.refused,
                    {"ready": readiness.ready, "headline": readiness.headline, "reasons": list(readiness.reasons),
                     "failures": list(readiness.failures)}))
    return out


def pr_event(ledger: Ledger, pr: Mapping | Any, action: Action, **detail) -> None:
    """A pull request opened, updated, merged, closed or reverted, on its heal's trail.

    Inside a heal the current recorder knows the heal(s); outside one (``healer pr merge``,
    ``healer sync``) the pull request's own heal is used.
    """
    get = pr.get if isinstance(pr, Mapping) else lambda k: getattr(pr, k, None)
    detail = dict(pr=get("id"), forge=get("forge"), number=get("number"), url=get("url"), branch=get("branch"),
                  base=get("base"), draft=get("draft"), **detail)
    if note(action, **detail):
        return
    _safe(ledger, get("heal_id"), action, pipeline=get("pipeline"), **detail)


def pr_proposed(ledger: Ledger, pr) -> None:
    """The heal's pull request: opened, or an open one for the same cause updated (a row recorded earlier)."""
    from healer.ledger import prs

    row = ledger.get(prs, pr.id) or {}
    created, updated = row.get("created_at"), row.get("updated_at")
    again = bool(created and updated and (updated - created).total_seconds() > 1.0)
    pr_event(ledger, pr, Action.PR_UPDATED if again else Action.PR_OPENED, status=pr.status, title=pr.title)


def page(ledger: Ledger, heal_id: int) -> dict:
    """What the Airflow heal page shows of governance: the verification line and the audit timeline."""
    from healer.governance import verify
    from healer.governance.audit import events

    checked = verify.state(ledger, heal_id)
    return {"verification": checked.to_json() if checked else None,
            "audit": [{"at": e.at.isoformat(timespec="milliseconds"), "action": e.action.value,
                       "summary": e.summary()} for e in events(ledger, heal_id=heal_id, limit=500)]}


def input_bytes(path: str | None) -> int | None:
    """Bytes of a local input (a file, or every file under a folder); None where unknown (tables, remote stores)."""
    if not path or "://" in path and not path.startswith("file:"):
        return None
    local = path[len("file:"):] if path.startswith("file:") else path
    try:
        if os.path.isfile(local):
            return os.path.getsize(local)
        if not os.path.isdir(local):
            return None
        total = 0
        for folder, _dirs, files in os.walk(local):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
        return total
    except OSError:
        return None


def _safe(ledger: Ledger, heal_id: int | None, action: Action, **detail) -> AuditEvent | None:
    """Record, logging instead of raising: the trail must not turn a good heal (or merge) into a crash."""
    try:
        return record(ledger, heal_id, action, **detail)
    except Exception as exc:
        log.warning("heal #%s: could not record %s in the audit trail: %s", heal_id, action.value, exc)
        return None
