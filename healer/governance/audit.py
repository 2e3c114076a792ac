"""The audit trail: an append-only record of every action a heal took, with its time.

    record(ledger, heal_id, action, **detail)     append one event (redacted); never updated
    events(ledger, heal_id=None, since=None)      the events, oldest first, as AuditEvent
    model_requests(ledger, since, repo=None)      the model requests, as ModelRequest (budgets)
    recording(ledger, heal_id) / note(...)        the current heal's recorder, for code deep in a heal

A heal's stages live in many modules (workspace, sandbox, the model client, the forges);
rather than threading an ``audit`` argument through all of them, the heal sets a context
variable for as long as it runs, and each stage calls ``note(action, ...)``, which records
to the current heal or does nothing outside one. Everything recorded is redacted: details
quote data, logs and model output, which are untrusted. A prompt is recorded as its sha256
only, unless ``HEALER_AUDIT_PROMPTS=keep`` (then its redacted text too).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import hashlib
import json
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import sqlalchemy as sa

from healer.errors import ConfigError
from healer.ledger import Ledger, UTCDateTime, heals, jsonable, metadata, utcnow
from healer.redact import redact, redact_json
from healer.settings import Settings

log = logging.getLogger(__name__)


class Action(str, enum.Enum):
    """What a heal did. The value is what the ledger and ``healer audit --json`` hold."""

    HEAL_STARTED = "heal_started"  # failure (run id), fingerprint, category
    TRIAGE = "triage"  # a heal that stopped before any work: skipped, declined, duplicate
    CLONE = "clone"  # source, commit, base branch, workspace
    INPUT_READ = "input_read"  # input, location, rows, bytes (where known), purpose (sample | shadow)
    MODEL_REQUEST = "model_request"  # model, input_tokens, output_tokens, cost_usd, prompt_sha256
    CANDIDATE = "candidate"  # fixer, title, confidence, files
    GATE = "gate"  # gate (static | sample | shadow | readiness), fixer, passed, reasons
    PUSH = "push"  # branch, sha, remote
    PR_OPENED = "pr_opened"
    PR_UPDATED = "pr_updated"
    PR_MERGED = "pr_merged"
    PR_CLOSED = "pr_closed"
    PR_REVERTED = "pr_reverted"
    HEAL_FINISHED = "heal_finished"  # status, reason, fixer, pr
    VERIFICATION = "verification"  # state (verified | regressed | unverified), run, why
    REVERT_PROPOSED = "revert_proposed"  # revert PR (branch, sha) or a comment where no revert is possible
    BREAKER_TRIPPED = "breaker_tripped"  # pipeline, reason


audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("heal_id", sa.Integer, index=True),
    sa.Column("pipeline", sa.String(200), index=True),
    sa.Column("repo", sa.Text),
    sa.Column("at", UTCDateTime(), nullable=False, index=True),
    sa.Column("action", sa.String(40), nullable=False, index=True),
    sa.Column("detail", sa.JSON),
)


@dataclass(frozen=True)
class AuditEvent:
    """One recorded action. ``detail`` is the action's redacted JSON (see Action for its keys)."""

    id: int
    heal_id: int | None
    pipeline: str | None
    repo: str | None
    at: dt.datetime
    action: Action
    detail: Mapping[str, Any]

    def summary(self, width: int = 110) -> str:
        """The detail on one line (key=value, long values shortened), for the CLI table and the heal page."""
        parts = []
        for key, value in self.detail.items():
            if value in (None, "", [], {}):
                continue
            text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
            text = " ".join(text.split())
            parts.append(f"{key}={text[:60] + '…' if len(text) > 60 else text}")
        line = " ".join(parts)
        return line if len(line) <= width else line[: width - 1] + "…"

    def to_json(self) -> dict:
        """One JSON Lines record, as a SIEM takes it."""
        return {"id": self.id, "heal_id": self.heal_id, "pipeline": self.pipeline, "repo": self.repo,
                "at": self.at.isoformat(), "action": self.action.value, "detail": dict(self.detail)}


@dataclass(frozen=True)
class ModelRequest:
    """One model request as budgets count it."""

    heal_id: int | None
    pipeline: str | None
    repo: str | None
    at: dt.datetime
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float


def record(ledger: Ledger, heal_id: int | None, action: Action | str, *, pipeline: str | None = None,
           repo: str | None = None, **detail) -> AuditEvent:
    """Append one event to the trail; its pipeline and repo are the heal's unless given.

    The detail is made JSON-storable and redacted before it is written. Nothing in the
    table is ever updated: a later fact is a later event.
    """
    action = Action(action)
    _ensure_table(ledger)
    if heal_id is not None and (pipeline is None or repo is None):
        known = _heal_place(ledger, heal_id)
        pipeline, repo = pipeline or known[0], repo or known[1]
    stored = redact_json(jsonable({k: v for k, v in detail.items() if v is not None}))
    now = utcnow()
    values = dict(heal_id=heal_id, pipeline=pipeline, repo=repo, at=now, action=action.value, detail=stored)
    event_id = ledger.insert(audit_events, **values)
    return AuditEvent(event_id, heal_id, pipeline, repo, now, action, stored)


def events(ledger: Ledger, heal_id: int | None = None, since: dt.datetime | None = None,
           actions: tuple[Action, ...] = (), pipeline: str | None = None, limit: int = 100_000) -> list[AuditEvent]:
    """The recorded events, oldest first (the order they happened in)."""
    _ensure_table(ledger)
    where = []
    if heal_id is not None:
        where.append(audit_events.c.heal_id == heal_id)
    if since is not None:
        where.append(audit_events.c.at >= since)
    if actions:
        where.append(audit_events.c.action.in_([Action(a).value for a in actions]))
    if pipeline is not None:
        where.append(audit_events.c.pipeline == pipeline)
    rows = ledger.select(audit_events, *where, order_desc=False, limit=limit)
    return [_event(r) for r in rows if r["action"] in _VALUES]


def model_requests(ledger: Ledger, since: dt.datetime, repo: str | None = None) -> list[ModelRequest]:
    """Every model request since a time (org-wide, or one repo's), for token and cost budgets."""
    found = []
    for e in events(ledger, since=since, actions=(Action.MODEL_REQUEST,)):
        if repo is not None and e.repo != repo:
            continue
        d = e.detail
        found.append(ModelRequest(e.heal_id, e.pipeline, e.repo, e.at, str(d.get("model", "")),
                                  _int(d.get("input_tokens")), _int(d.get("output_tokens")),
                                  float(d.get("cost_usd") or 0.0)))
    return found


# -- the current heal's recorder -------------------------------------------------------------

@dataclass(frozen=True)
class Recorder:
    """Records to the trail of one heal, or of every heal of a storm (one push and PR serve them all).

    A recording failure is logged, never raised into the heal: the ledger's own errors surface
    when the heal writes its result."""

    ledger: Ledger
    heal_ids: tuple[int, ...]

    def __call__(self, action: Action | str, **detail) -> list[AuditEvent]:
        recorded = []
        for heal_id in self.heal_ids:
            try:
                recorded.append(record(self.ledger, heal_id, action, **detail))
            except Exception as exc:  # the trail must not turn a good heal into a crash
                log.warning("heal #%s: could not record %s in the audit trail: %s", heal_id, action, exc)
        return recorded


_current: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("healer_audit", default=None)


@contextmanager
def recording(ledger: Ledger, heal_ids: int | Iterable[int | None] | None) -> Iterator[Recorder]:
    """Make ``note`` record to this heal (or these heals) for the duration of the block."""
    ids = (heal_ids,) if heal_ids is None or isinstance(heal_ids, int) else tuple(heal_ids)
    recorder = Recorder(ledger, tuple(i for i in ids if i is not None))
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)


def current() -> Recorder | None:
    """The recorder of the heal running in this context, if any."""
    return _current.get()


def note(action: Action | str, **detail) -> list[AuditEvent]:
    """Record to the current heal; outside a heal (a plain ``healer run``, a test) nothing happens."""
    recorder = _current.get()
    return recorder(action, **detail) if recorder is not None else []


def prompt_detail(prompt: Any) -> dict:
    """How a prompt is recorded: its sha256, and its redacted text only when prompts are kept."""
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, default=str)
    detail = {"prompt_sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(),
              "prompt_chars": len(text)}
    if keep_prompts():
        detail["prompt"] = redact(text)
    return detail


def keep_prompts() -> bool:
    """``HEALER_AUDIT_PROMPTS``: ``hash`` (default) records a prompt's sha256 only; ``keep`` its text too."""
    return Settings.from_env().audit_prompts == "keep"


# -- times ----------------------------------------------------------------------------------

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``7d``, ``12h``, ``30m`` ago, or an ISO date/time (UTC unless it says otherwise)."""
    raw = (text or "").strip()
    match = _AGO.match(raw.lower())
    if match:
        return (now or utcnow()) - dt.timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {raw!r}: expected an ISO date or time (2026-11-30, 2026-11-30T06:00) "
                          "or an age such as 7d, 12h, 30m") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


# -- plumbing -------------------------------------------------------------------------------

_VALUES = {a.value for a in Action}
_places: dict[tuple[str, int], tuple[str | None, str | None]] = {}


def _ensure_table(ledger: Ledger) -> None:
    """The table, on a ledger opened before this module was imported (create_all ran without it)."""
    ledger.ensure(audit_events)


def _heal_place(ledger: Ledger, heal_id: int) -> tuple[str | None, str | None]:
    key = (ledger.url, heal_id)
    if key not in _places:
        row = ledger.get(heals, heal_id)
        if row is None:
            return (None, None)  # not cached: the heal's row may be written a moment later
        _places[key] = (row["pipeline"], row["repo"])
    return _places[key]


def _event(row: Mapping) -> AuditEvent:
    return AuditEvent(row["id"], row["heal_id"], row["pipeline"], row["repo"], row["at"], Action(row["action"]),
                      row["detail"] or {})


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
