"""The circuit breaker: healing pauses for a pipeline (or one fixer on it) whose fixes keep being refused.

A pause is tripped by hand or by Healer itself: by post-merge verification when a merged fix
regresses (``trip``), or by ``evaluate`` when N Healer pull requests for the pipeline (or the
fixer) were closed without merge or reverted since the last ``resume``. While paused, a heal of
that pipeline is declined with the pause's reason; ``healer policy resume`` lifts it.

The record is append-only (the table ``breaker_events``): a trip and a resume are both rows,
and the state of a pipeline is its newest row. Nothing is updated in place, so the history of
every pause and who lifted it stays readable.

``pipeline="*"`` pauses a fixer (or everything) on every pipeline.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from healer.errors import ConfigError
from healer.ledger import Ledger, UTCDateTime, heals, metadata, prs, utcnow

log = logging.getLogger(__name__)

EventKind = Literal["trip", "resume"]
ANY_PIPELINE = "*"
# PR states that count against a pipeline: a reviewer closed it, or merged and then reverted it
REFUSED_STATES = ("closed", "reverted")

events = sa.Table(
    "breaker_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),  # or "*" for every pipeline
    sa.Column("fixer", sa.String(100)),  # NULL: every fixer
    sa.Column("kind", sa.String(10), nullable=False),  # trip | resume
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("heal_id", sa.Integer),  # the heal whose fix regressed, when one did
    sa.Column("by", sa.String(200)),  # who: "healer" for automatic trips, the user for the CLI
    sa.Column("at", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True)
class Pause:
    """A pause in force: healing of ``pipeline`` (by ``fixer``, or any fixer when None) is off."""

    id: int
    pipeline: str
    fixer: str | None
    reason: str
    heal_id: int | None
    by: str | None
    at: dt.datetime

    def scope(self) -> str:
        where = "every pipeline" if self.pipeline == ANY_PIPELINE else f"pipeline {self.pipeline!r}"
        return f"fixer {self.fixer!r} on {where}" if self.fixer else where

    def one_line(self) -> str:
        return (f"circuit breaker: healing of {self.scope()} paused since {self.at:%Y-%m-%d %H:%M} UTC "
                f"({self.reason}); lift it with `healer policy resume "
                f"{self.pipeline}{' --fixer ' + self.fixer if self.fixer else ''}`")


def _check(pipeline: str, fixer: str | None) -> None:
    if not pipeline or not pipeline.strip():
        raise ConfigError("circuit breaker: a pipeline name is required ('*' for every pipeline)")
    if fixer is not None and not fixer.strip():
        raise ConfigError("circuit breaker: --fixer must name a fixer")


def _newest(ledger: Ledger, pipeline: str, fixer: str | None) -> dict | None:
    """The newest event of exactly this scope."""
    ledger.ensure(events)
    where = [events.c.pipeline == pipeline,
             events.c.fixer.is_(None) if fixer is None else events.c.fixer == fixer]
    found = ledger.select(events, *where, limit=1)
    return found[0] if found else None


def _pause(row: dict) -> Pause:
    return Pause(row["id"], row["pipeline"], row["fixer"], row["reason"], row["heal_id"], row["by"], row["at"])


def trip(ledger: Ledger, *, pipeline: str, fixer: str | None = None, reason: str, heal_id: int | None = None,
         by: str = "healer") -> Pause:
    """Pause healing of ``pipeline`` (only ``fixer``'s fixes, when given). Tripping a paused scope keeps
    the first pause (its reason is what a reviewer must read) and returns it."""
    _check(pipeline, fixer)
    current = _newest(ledger, pipeline, fixer)
    if current is not None and current["kind"] == "trip":
        return _pause(current)
    values = dict(pipeline=pipeline, fixer=fixer, kind="trip", reason=reason, heal_id=heal_id, by=by, at=utcnow())
    row_id = ledger.insert(events, **values)
    log.warning("circuit breaker tripped for %s%s: %s", pipeline, f" (fixer {fixer})" if fixer else "", reason)
    return Pause(row_id, pipeline, fixer, reason, heal_id, by, values["at"])


def paused(ledger: Ledger, pipeline: str, fixer: str | None = None) -> Pause | None:
    """The pause that stops healing ``pipeline`` (with ``fixer``, when given), if any.

    Without a fixer only whole-pipeline pauses count; with one, a pause of that fixer counts too.
    A pause of ``"*"`` applies to every pipeline.
    """
    fixers = (None,) if fixer is None else (None, fixer)
    for scope_pipeline, scope_fixer in [(p, f) for p in (pipeline, ANY_PIPELINE) for f in fixers]:
        row = _newest(ledger, scope_pipeline, scope_fixer)
        if row is not None and row["kind"] == "trip":
            return _pause(row)
    return None


def pauses(ledger: Ledger) -> list[Pause]:
    """Every pause in force, newest first."""
    ledger.ensure(events)
    seen, found = set(), []
    for row in ledger.select(events, limit=10000):
        key = (row["pipeline"], row["fixer"])
        if key in seen:
            continue
        seen.add(key)
        if row["kind"] == "trip":
            found.append(_pause(row))
    return found


def resume(ledger: Ledger, pipeline: str, fixer: str | None = None, *, by: str | None = None) -> Pause:
    """Lift the pause of exactly this scope; returns the pause lifted. Raises ConfigError when none is in force."""
    _check(pipeline, fixer)
    current = _newest(ledger, pipeline, fixer)
    if current is None or current["kind"] != "trip":
        others = [p for p in pauses(ledger) if p.pipeline in (pipeline, ANY_PIPELINE)]
        hint = ("; in force: " + ", ".join(p.scope() for p in others)) if others else ""
        what = f"fixer {fixer!r} on {pipeline!r}" if fixer else repr(pipeline)
        raise ConfigError(f"circuit breaker: {what} is not paused{hint}")
    ledger.insert(events, pipeline=pipeline, fixer=fixer, kind="resume", reason=f"resumed (was: {current['reason']})",
                  heal_id=None, by=by or _user(), at=utcnow())
    log.info("circuit breaker resumed for %s%s", pipeline, f" (fixer {fixer})" if fixer else "")
    return _pause(current)


def pipeline_prs(pipeline: str):
    """The ``prs`` rows of a pipeline: its own, and storm PRs (whose pipeline column lists several, comma-joined)."""
    return sa.or_(prs.c.pipeline == pipeline, prs.c.pipeline.like(f"{pipeline},%"),
                  prs.c.pipeline.like(f"%,{pipeline}"), prs.c.pipeline.like(f"%,{pipeline},%"))


def _refused(ledger: Ledger, pipeline: str, fixer: str | None = None) -> list:
    """The ``prs`` conditions of Healer PRs of ``pipeline`` (``"*"``: of any pipeline) by ``fixer`` (None: any
    fixer) closed without merge or reverted since that scope last resumed."""
    last = _newest(ledger, pipeline, fixer)
    since = last["at"] if last is not None and last["kind"] == "resume" else None
    where = [prs.c.status.in_(REFUSED_STATES)]
    if pipeline != ANY_PIPELINE:
        where.append(pipeline_prs(pipeline))
    if since is not None:
        where.append(prs.c.updated_at > since)
    if fixer is not None:
        where.append(prs.c.heal_id.in_(sa.select(heals.c.id).where(heals.c.fixer == fixer)))
    return where


def refused_prs(ledger: Ledger, pipeline: str, fixer: str | None = None, limit: int = 1000) -> list[dict]:
    """Those PRs (see ``_refused``), newest first."""
    return ledger.select(prs, *_refused(ledger, pipeline, fixer), limit=limit)


def _trip_if(ledger: Ledger, pipeline: str, fixer: str | None, threshold: int) -> Pause | None:
    """Trip the scope when ``threshold`` of its PRs were refused; counted by the database, the reason
    naming the newest."""
    count = ledger.count(prs, *_refused(ledger, pipeline, fixer))
    if count < threshold:
        return None
    reason = _reason(refused_prs(ledger, pipeline, fixer, limit=10), count, threshold,
                     None if pipeline == ANY_PIPELINE else pipeline, fixer)
    return _tripped(ledger, trip(ledger, pipeline=pipeline, fixer=fixer, reason=reason))


def evaluate(ledger: Ledger, pipeline: str, fixers: list[str] | tuple[str, ...] | None = None, *,
             threshold: int) -> Pause | None:
    """Trip the breaker by itself when ``threshold`` Healer PRs were refused (closed without merge, or
    reverted): those of ``pipeline`` pause the pipeline; those of one of ``fixers`` on any pipeline
    pause that fixer everywhere (``"*"``). ``threshold`` 0 turns the automatic trip off.

    Returns the whole-pipeline pause in force afterwards, or None (fixer pauses: ``paused(..., fixer)``).
    """
    current = paused(ledger, pipeline)
    if current is not None or threshold <= 0:
        return current
    if fixers is None:  # every fixer with a refused PR somewhere
        refused_heals = sa.select(prs.c.heal_id).where(prs.c.status.in_(REFUSED_STATES))
        fixers = sorted(ledger.distinct(heals.c.fixer, heals.c.id.in_(refused_heals)))
    for fixer in fixers:
        if paused(ledger, ANY_PIPELINE, fixer) is None:
            _trip_if(ledger, ANY_PIPELINE, fixer, threshold)
    return _trip_if(ledger, pipeline, None, threshold)


def _tripped(ledger: Ledger, pause: Pause) -> Pause:
    """An automatic trip goes on the audit trail too (no heal of its own: it is the pipeline's)."""
    from healer.governance.audit import Action, record

    record(ledger, None, Action.BREAKER_TRIPPED, pipeline=pause.pipeline, fixer=pause.fixer, reason=pause.reason)
    return pause


def _reason(newest: list[dict], count: int, threshold: int, pipeline: str | None, fixer: str | None = None) -> str:
    # one line: the newest ten PRs say enough
    ids = ("... " if count > len(newest) else "") + ", ".join(
        f"#{r['id']} {r['status']}" for r in sorted(newest, key=lambda r: r["id"]))
    what = f"pull requests by fixer {fixer!r}" if fixer else "Healer's pull requests"
    where = f" for {pipeline!r}" if pipeline else ""
    return (f"{count} of {what}{where} were closed without merge or reverted "
            f"(breaker at {threshold}): {ids}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"
