"""Healer's metrics, computed once: what one heal adds (``heal_figures``) and the totals over a
whole ledger (``ledger_figures``), so that every worker's heals count.

    heal_figures(heal row, failed run, PR row)  -> HealFigures   one heal, as it ended
    ledger_figures(ledger)                      -> LedgerFigures the sum of every heal's HealFigures,
                                                                 PRs by state, fixes verified/regressed

The OpenTelemetry instruments record each heal's HealFigures when it ends (``telemetry.otel``);
the Prometheus endpoint renders the ledger's totals (``telemetry.prometheus``). Both read the
same fields through the same function, so a fresh ledger's totals equal what the heals
exported. Nothing here reads data values: statuses, names of fixers and categories, numbers.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa

from healer.ledger import Ledger, heals, prs, runs

log = logging.getLogger(__name__)

# Time from the failed run to its PR, in seconds: a rule fix takes 10-30 s, a model's minutes,
# a heal that waited for a lease or a queue up to an hour.
TIME_TO_PR_BUCKETS: tuple[float, ...] = (5, 10, 15, 20, 30, 45, 60, 120, 300, 600, 1800, 3600)
# The model's usage, by the names the Messages API gives them (healer.llm_client.Usage).
TOKEN_TYPES = ("input", "output", "cache_creation_input", "cache_read_input")


@dataclass(frozen=True)
class HealKey:
    """What heals are counted by: how the heal ended, which fixer's fix it proposed, the error's category."""

    status: str
    fixer: str  # "" when no fixer's fix was proposed
    category: str  # "" when unknown


@dataclass(frozen=True)
class HealFigures:
    """One heal's contribution to the metrics."""

    key: HealKey
    time_to_pr_s: float | None  # only for the heal that opened its PR (a duplicate's wait is not one)
    tokens: tuple[tuple[str, int], ...]  # (TOKEN_TYPES item, tokens)
    cost_usd: float
    sandbox_s: float  # seconds in the sandbox stage (sample runs and shadow runs of every candidate)


def heal_figures(heal: dict, failed_run: dict | None, pr: dict | None) -> HealFigures:
    """The figures of one heal from its ledger rows (the in-process exporter builds the same rows)."""
    outcome = heal.get("outcome") or {}
    usage = (outcome.get("llm") or {}).get("usage") or {}
    timings = outcome.get("timings") or {}
    key = HealKey(str(heal.get("status") or ""), str(heal.get("fixer") or ""), str(heal.get("category") or ""))
    return HealFigures(key=key, time_to_pr_s=time_to_pr(heal, failed_run, pr),
                       tokens=tuple((t, _count(usage.get(f"{t}_tokens"))) for t in TOKEN_TYPES),
                       cost_usd=_amount(usage.get("cost_usd")), sandbox_s=_amount(timings.get("sandbox")))


def time_to_pr(heal: dict, failed_run: dict | None, pr: dict | None) -> float | None:
    """Seconds from the failed run's end to the PR, for the heal that opened that PR; None for a
    duplicate (whose PR an earlier heal opened), a heal without a PR, or a missing time."""
    from healer.ledger import as_utc

    if not pr or not failed_run or pr.get("heal_id") != heal.get("id") or (heal.get("outcome") or {}).get("duplicate"):
        return None
    failed_at, opened_at = as_utc(failed_run.get("finished_at")), as_utc(pr.get("created_at"))
    if failed_at is None or opened_at is None:
        return None
    return max(0.0, (opened_at - failed_at).total_seconds())


@dataclass(frozen=True)
class Histogram:
    """Observations in buckets: ``counts[i]`` fell in (bounds[i-1], bounds[i]]; the last is above every bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    @classmethod
    def of(cls, values: Iterable[float], bounds: tuple[float, ...] = TIME_TO_PR_BUCKETS) -> "Histogram":
        counts = [0] * (len(bounds) + 1)
        total = 0.0
        for v in values:
            counts[next((i for i, b in enumerate(bounds) if v <= b), len(bounds))] += 1
            total += v
        return cls(bounds, tuple(counts), total)


@dataclass(frozen=True)
class LedgerFigures:
    """Every metric over the whole ledger (all time, every pipeline and worker)."""

    heals: tuple[tuple[HealKey, int], ...]
    time_to_pr: Histogram
    tokens: tuple[tuple[str, int], ...]
    cost_usd: float
    sandbox_s: float
    prs: tuple[tuple[str, bool, int], ...]  # (state, draft, PRs)
    verification: tuple[tuple[str, int], ...] | None  # (verified | regressed | unverified, fixes); None: not installed

    def heal_count(self, **key: str) -> int:
        """Heals whose key has these fields, e.g. ``heal_count(status="proposed")``."""
        return sum(n for k, n in self.heals if all(getattr(k, f) == v for f, v in key.items()))


def ledger_figures(ledger: Ledger) -> LedgerFigures:
    """The totals of every heal in the ledger, its PRs by state and its fixes by verification."""
    each = _finished.figures(ledger)
    counts = Counter(f.key for f in each)
    tokens: Counter = Counter()
    for f in each:
        tokens.update(dict(f.tokens))
    return LedgerFigures(
        heals=tuple(sorted(counts.items(), key=lambda kv: (kv[0].status, kv[0].fixer, kv[0].category))),
        time_to_pr=Histogram.of(f.time_to_pr_s for f in each if f.time_to_pr_s is not None),
        tokens=tuple((t, tokens[t]) for t in TOKEN_TYPES),
        cost_usd=round(sum(f.cost_usd for f in each), 6),
        sandbox_s=round(sum(f.sandbox_s for f in each), 3),
        prs=pr_states(ledger), verification=verification(ledger))


# Only the few outcome fields the figures read, extracted by the database: an outcome holds the
# heal's whole evidence, and decoding thousands of them made a scrape take seconds.
_HEALS_QUERY = sa.select(
    heals.c.id, heals.c.status, heals.c.fixer, heals.c.category, heals.c.finished_at,
    heals.c.outcome[("duplicate",)].as_json().label("duplicate"),
    heals.c.outcome[("timings", "sandbox")].as_json().label("sandbox"),
    heals.c.outcome[("llm", "usage")].as_json().label("usage"),
    runs.c.finished_at.label("failed_at"), prs.c.heal_id.label("pr_heal_id"), prs.c.created_at.label("pr_created_at"),
).select_from(heals.outerjoin(runs, runs.c.id == heals.c.run_id).outerjoin(prs, prs.c.id == heals.c.pr_id))


class _FinishedHeals:
    """Each ledger's finished heals' figures, kept between scrapes: a heal's row no longer changes
    once it has finished, so a scrape reads only the heals that are new or were still running."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_url: dict[str, tuple[int, dict[int, HealFigures]]] = {}  # url -> (read from id, figures by id)

    def figures(self, ledger: Ledger) -> list[HealFigures]:
        with self._lock:
            start, known = self._by_url.get(ledger.url, (0, {}))
            known = dict(known)
        with ledger.engine.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(heals.c.id))).scalar() or 0
            if known and newest < max(known):  # a new ledger at the same URL
                start, known = 0, {}
            rows = conn.execute(_HEALS_QUERY.where(heals.c.id >= start).order_by(heals.c.id)).mappings().all()
        fresh = {r["id"]: _figures_of_row(r) for r in rows if r["id"] not in known}
        finished = {i: f for i, f in fresh.items() if f.key.status != "running"}
        still_running = [i for i, f in fresh.items() if f.key.status == "running"]
        with self._lock:
            self._by_url[ledger.url] = (min(still_running, default=newest + 1), {**known, **finished})
        return list(known.values()) + list(fresh.values())


_finished = _FinishedHeals()


def _figures_of_row(row) -> HealFigures:
    """``heal_figures`` of one joined row, its outcome cut down to the extracted fields."""
    heal = {"id": row["id"], "status": row["status"], "fixer": row["fixer"], "category": row["category"],
            "outcome": {"duplicate": row["duplicate"], "timings": {"sandbox": row["sandbox"]},
                        "llm": {"usage": row["usage"] if isinstance(row["usage"], dict) else {}}}}
    pr = {"heal_id": row["pr_heal_id"], "created_at": row["pr_created_at"]} if row["pr_created_at"] else None
    return heal_figures(heal, {"finished_at": row["failed_at"]}, pr)


def pr_states(ledger: Ledger) -> tuple[tuple[str, bool, int], ...]:
    """Healer's pull requests by their state now, and whether they are drafts: (state, draft, PRs)."""
    q = sa.select(prs.c.status, prs.c.draft, sa.func.count()).group_by(prs.c.status, prs.c.draft)
    with ledger.engine.connect() as conn:
        found = Counter()
        for state, draft, n in conn.execute(q).all():
            found[(str(state), bool(draft))] += n  # NULL and False drafts are one group
    return tuple((s, d, n) for (s, d), n in sorted(found.items()))


def verification(ledger: Ledger, pipeline: str | None = None,
                 repo: str | None = None) -> tuple[tuple[str, int], ...] | None:
    """Merged fixes by their newest post-merge verification state, from the governance audit trail
    (one pipeline's or one repo's, when given: the fleet dashboard's filters)."""
    try:
        from healer.governance import audit
    except ImportError:  # governance not installed: unknown, not zero
        return None
    latest: dict[Any, str] = {}
    for event in audit.events(ledger, actions=(audit.Action.VERIFICATION,), pipeline=pipeline):
        if repo is None or event.repo == repo:
            latest[event.heal_id] = str(event.detail.get("state", ""))
    found = Counter(latest.values())
    return tuple((s, found[s]) for s in ("verified", "regressed", "unverified"))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _amount(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0.0
