"""The fleet's figures, from the ledger only: how often Healer heals, how fast, what it costs,
whether its pull requests are merged and hold, which upstream inputs broke the most pipelines.

    FleetFilter.parse(pipeline, repo, since, until)   what to look at (bad input: ConfigError)
    figures(ledger, fleet_filter, today=None)          -> Fleet, every figure of the dashboard

No Airflow here: the plugin's dashboard renders a Fleet, and anything else (a CLI, a metrics
exporter) can read the same numbers. Governance is read through its own modules: pauses
(``breaker``), verification and model requests (``audit``), budgets and policy modes
(``effective``); a figure whose source cannot be read says so (``None``) instead of showing zero.

Days are UTC calendar days of a heal's start. Per heal, the figures are the metrics' own
(``healer.telemetry.figures``: time to PR, only for the heal that opened the PR, as a
duplicate's wait is not one; tokens and cost); this module buckets them by day and filter.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Literal

import sqlalchemy as sa

from healer.errors import ConfigError, HealerError
from healer.governance import audit, breaker, effective
from healer.governance.policy_file import read_org
from healer.ledger import HEAL_STATUSES, Ledger, as_utc, heals, prs, runs
from healer.telemetry.figures import heal_figures, time_to_pr, verification

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
MAX_DAYS = 366  # a longer range is refused: one bar per day stops being readable well before
WEEKLY_AFTER = 45  # ranges longer than this are bucketed by week for the time-to-PR percentiles
PR_STATES = ("open", "merged", "closed", "reverted")
VerificationState = Literal["verified", "regressed", "unverified"]
VERIFICATION_STATES: tuple[VerificationState, ...] = ("verified", "regressed", "unverified")


@dataclass(frozen=True)
class FleetFilter:
    """What the dashboard looks at: one pipeline or all, one repo or all, UTC days since..until (inclusive)."""

    since: dt.date
    until: dt.date
    pipeline: str | None = None
    repo: str | None = None

    @classmethod
    def parse(cls, pipeline: str | None = None, repo: str | None = None, since: str | None = None,
              until: str | None = None, today: dt.date | None = None) -> "FleetFilter":
        """From query-string values; the last ``DEFAULT_DAYS`` days when no dates are given."""
        today = today or dt.datetime.now(dt.timezone.utc).date()
        end = _date("until", until) or today
        start = _date("since", since) or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise ConfigError(f"dashboard filter: since={start} is after until={end}")
        if (end - start).days + 1 > MAX_DAYS:
            raise ConfigError(f"dashboard filter: {start}..{end} spans {(end - start).days + 1} days; "
                              f"at most {MAX_DAYS}")
        return cls(since=start, until=end, pipeline=(pipeline or "").strip() or None, repo=(repo or "").strip() or None)

    @property
    def days(self) -> tuple[dt.date, ...]:
        return tuple(self.since + dt.timedelta(days=i) for i in range((self.until - self.since).days + 1))

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.since, dt.time(), dt.timezone.utc)

    @property
    def end(self) -> dt.datetime:
        """The first instant after the range."""
        return dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def _date(name: str, value: str | None) -> dt.date | None:
    if value is None or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"dashboard filter {name}={value.strip()[:40]!r}: expected a date as YYYY-MM-DD") from None


@dataclass(frozen=True)
class DayOutcomes:
    """Heals that started on one day, by how they ended (``running`` for those still going)."""

    day: dt.date
    counts: tuple[tuple[str, int], ...]  # (status, heals) in HEAL_STATUSES order, zeros included

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)

    def count(self, status: str) -> int:
        return dict(self.counts).get(status, 0)


@dataclass(frozen=True)
class Percentiles:
    """Time from the failed run to the PR its heal opened, over the heals of one bucket (or all)."""

    start: dt.date  # the bucket's first day
    heals: int
    p50_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class PRAcceptance:
    """Pull requests opened in the range, by their state now."""

    counts: tuple[tuple[str, int], ...]  # (state, PRs): PR_STATES first, then any other state seen
    drafts: int

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)

    def count(self, state: str) -> int:
        return dict(self.counts).get(state, 0)

    @property
    def decided_merge_rate(self) -> float | None:
        """Merged of merged + closed + reverted; None before any was decided."""
        decided = sum(n for s, n in self.counts if s != "open")
        return self.count("merged") / decided if decided else None


@dataclass(frozen=True)
class Verification:
    """Merged fixes by what their next runs said (post-merge verification, from governance)."""

    counts: tuple[tuple[VerificationState, int], ...]
    source: str  # where the states were read


@dataclass(frozen=True)
class DaySpend:
    """Model spend on one day: from the audit trail's model requests where a heal has them,
    else from the heal's outcome (tokens and cost the heal recorded when it ended)."""

    day: dt.date
    tokens: int
    cost_usd: float
    heals: int  # heals that spent anything


@dataclass(frozen=True)
class Budget:
    """The daily model budget in force for this view, and who set it."""

    cost_usd: float | None
    tokens: int | None
    source: str


@dataclass(frozen=True)
class BrokenInput:
    """One upstream input (its physical location) whose schema change broke pipelines."""

    location: str
    pipelines: tuple[str, ...]
    heals: int
    changes: tuple[str, ...]  # "unit_price dropped", "amount retyped int -> string", "input missing"


@dataclass(frozen=True)
class PipelineRow:
    """One pipeline's state now (not limited to the date range)."""

    pipeline: str
    repo: str
    last_failure_id: int | None
    last_failure_at: dt.datetime | None
    last_heal_id: int | None
    last_heal_status: str | None
    last_heal_at: dt.datetime | None
    open_pr_id: int | None
    open_pr_title: str | None
    open_pr_url: str | None
    policy_mode: str | None  # "draft (healer.yml:healing.mode)"; None where the repo's policy cannot be read here
    paused: bool  # the circuit breaker holds a pause of the whole pipeline
    pause_reason: str | None


@dataclass(frozen=True)
class Fleet:
    """Every figure of the dashboard for one filter."""

    filter: FleetFilter
    outcomes: tuple[DayOutcomes, ...]
    time_to_pr: tuple[Percentiles, ...]  # per bucket (day, or week over long ranges)
    time_to_pr_all: Percentiles
    bucket_days: int
    prs: PRAcceptance
    verification: Verification | None  # None until post-merge verification is installed
    spend: tuple[DaySpend, ...]
    budget: Budget | None  # None: no daily budget configured
    broken_inputs: tuple[BrokenInput, ...]
    heals_without_input_change: int  # heals whose evidence shows no input schema change (code, data values)
    pipelines: tuple[PipelineRow, ...]
    known_pipelines: tuple[str, ...] = field(default=())  # for the filter's choices
    known_repos: tuple[str, ...] = field(default=())

    @property
    def heals(self) -> int:
        return sum(d.total for d in self.outcomes)

    def status_total(self, status: str) -> int:
        return sum(d.count(status) for d in self.outcomes)

    @property
    def spend_cost_usd(self) -> float:
        return round(sum(d.cost_usd for d in self.spend), 6)

    @property
    def spend_tokens(self) -> int:
        return sum(d.tokens for d in self.spend)


# -- the figures ---------------------------------------------------------------------------------

def figures(ledger: Ledger, fleet_filter: FleetFilter) -> Fleet:
    """Every figure of the dashboard, read from the ledger."""
    f = fleet_filter
    heal_rows = _heals_in_range(ledger, f)
    run_rows = _rows_by_id(ledger, runs, {h["run_id"] for h in heal_rows if h["run_id"] is not None},
                           (runs.c.id, runs.c.finished_at, runs.c.input_locations))
    pr_rows = _rows_by_id(ledger, prs, {h["pr_id"] for h in heal_rows if h["pr_id"] is not None},
                          (prs.c.id, prs.c.heal_id, prs.c.created_at))
    bucket = 7 if len(f.days) > WEEKLY_AFTER else 1
    waits = [(_day(h), s) for h in heal_rows
             if (s := time_to_pr(h, run_rows.get(h["run_id"]), pr_rows.get(h["pr_id"]))) is not None]
    broken, unchanged = _broken_inputs(heal_rows, run_rows)
    return Fleet(
        filter=f,
        outcomes=_outcomes(heal_rows, f.days),
        time_to_pr=_percentiles_by_bucket(waits, f, bucket),
        time_to_pr_all=_percentiles(f.since, [s for _, s in waits]),
        bucket_days=bucket,
        prs=_pr_acceptance(ledger, f),
        verification=_verification(ledger, f),
        spend=_spend(ledger, heal_rows, f),
        budget=_budget(f),
        broken_inputs=broken,
        heals_without_input_change=unchanged,
        pipelines=pipeline_rows(ledger, f),
        known_pipelines=_distinct(ledger, heals.c.pipeline, runs.c.pipeline),
        known_repos=_distinct(ledger, heals.c.repo, runs.c.repo),
    )


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100), interpolated between the closest ranks; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _heals_in_range(ledger: Ledger, f: FleetFilter) -> list[dict]:
    """The heals in range, each outcome cut down to the fields the figures read. The database
    extracts them (JSON paths): an outcome holds the heal's whole evidence (lineage, probes,
    profiles), and decoding thousands of them would make the page take seconds."""
    cols = (heals.c.id, heals.c.run_id, heals.c.pipeline, heals.c.repo, heals.c.status, heals.c.pr_id,
            heals.c.started_at, heals.c.outcome[("duplicate",)].as_json().label("duplicate"),
            heals.c.outcome[("llm", "usage")].as_json().label("usage"),
            heals.c.outcome[("evidence", "diffs")].as_json().label("diffs"))
    q = sa.select(*cols).where(heals.c.started_at >= f.start, heals.c.started_at < f.end)
    q = _scoped(q, heals, f).order_by(heals.c.id)
    with ledger.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    out = []
    for r in rows:
        outcome = {"duplicate": r["duplicate"], "llm": {"usage": r["usage"] if isinstance(r["usage"], dict) else {}}}
        if isinstance(r["diffs"], list):  # a heal that gathered evidence (a triage stop has none)
            outcome["evidence"] = {"diffs": r["diffs"]}
        out.append({k: r[k] for k in ("id", "run_id", "pipeline", "repo", "status", "pr_id", "started_at")}
                   | {"outcome": outcome})
    return out


def _scoped(q, table: sa.Table, f: FleetFilter):
    if f.pipeline:
        q = q.where(table.c.pipeline == f.pipeline)
    if f.repo and "repo" in table.c:
        q = q.where(table.c.repo == f.repo)
    return q


def _rows_by_id(ledger: Ledger, table: sa.Table, ids: set, cols: tuple) -> dict[int, dict]:
    found: dict[int, dict] = {}
    ids_list = sorted(ids)
    with ledger.engine.connect() as conn:
        for i in range(0, len(ids_list), 500):  # bounded IN lists
            q = sa.select(*cols).where(table.c.id.in_(ids_list[i:i + 500]))
            found.update({r["id"]: dict(r) for r in conn.execute(q).mappings()})
    return found


def _day(heal: dict) -> dt.date:
    return as_utc(heal["started_at"]).date()


def _outcomes(heal_rows: list[dict], days: tuple[dt.date, ...]) -> tuple[DayOutcomes, ...]:
    by_day: dict[dt.date, Counter] = defaultdict(Counter)
    for h in heal_rows:
        by_day[_day(h)][h["status"]] += 1
    statuses = list(HEAL_STATUSES) + sorted({h["status"] for h in heal_rows} - set(HEAL_STATUSES))
    return tuple(DayOutcomes(d, tuple((s, by_day[d][s]) for s in statuses)) for d in days)


def _percentiles(start: dt.date, seconds: list[float]) -> Percentiles:
    return Percentiles(start, len(seconds), percentile(seconds, 50), percentile(seconds, 90))


def _percentiles_by_bucket(waits: list[tuple[dt.date, float]], f: FleetFilter, bucket: int) -> tuple[Percentiles, ...]:
    starts = f.days[::bucket]
    grouped: dict[dt.date, list[float]] = defaultdict(list)
    for day, seconds in waits:
        grouped[starts[(day - f.since).days // bucket]].append(seconds)
    return tuple(_percentiles(s, grouped[s]) for s in starts)


def _pr_acceptance(ledger: Ledger, f: FleetFilter) -> PRAcceptance:
    q = sa.select(prs.c.status, prs.c.draft, heals.c.repo).select_from(
        prs.outerjoin(heals, heals.c.id == prs.c.heal_id)).where(prs.c.created_at >= f.start, prs.c.created_at < f.end)
    if f.pipeline:
        q = q.where(prs.c.pipeline == f.pipeline)
    if f.repo:
        q = q.where(heals.c.repo == f.repo)
    with ledger.engine.connect() as conn:
        rows = conn.execute(q).all()
    counts = Counter(status for status, _, _ in rows)
    states = list(PR_STATES) + sorted(set(counts) - set(PR_STATES))
    return PRAcceptance(tuple((s, counts[s]) for s in states), drafts=sum(1 for _, draft, _ in rows if draft))


def _broken_inputs(heal_rows: list[dict], run_rows: dict[int, dict]) -> tuple[tuple[BrokenInput, ...], int]:
    """Inputs whose schema changed under a heal's failure, across pipelines, most pipelines first.

    An input is named by where it lives (path or table) so that two pipelines reading one
    upstream table under different logical names count as one input."""
    pipelines: dict[str, set] = defaultdict(set)
    heal_ids: dict[str, set] = defaultdict(set)
    changes: dict[str, Counter] = defaultdict(Counter)
    unchanged = 0
    for h in heal_rows:
        evidence = (h.get("outcome") or {}).get("evidence") or {}
        locations = (run_rows.get(h["run_id"]) or {}).get("input_locations") or {}
        changed = [d for d in evidence.get("diffs") or [] if isinstance(d, dict) and _input_changed(d)]
        if not changed:
            unchanged += 1 if evidence else 0
            continue
        for d in changed:
            where = str(locations.get(d.get("input")) or f"{h['pipeline']}:{d.get('input')}")
            pipelines[where].add(h["pipeline"])
            heal_ids[where].add(h["id"])
            changes[where].update(_change_words(d))
    found = [BrokenInput(where, tuple(sorted(pipelines[where])), len(heal_ids[where]),
                         tuple(c for c, _ in changes[where].most_common(4))) for where in pipelines]
    found.sort(key=lambda b: (-len(b.pipelines), -b.heals, b.location))
    return tuple(found), unchanged


def _input_changed(diff: dict) -> bool:
    return bool(diff.get("gone") or diff.get("added") or diff.get("dropped") or diff.get("retyped"))


def _change_words(diff: dict) -> list[str]:
    words = ["input missing"] if diff.get("gone") else []
    words += [f"{c} dropped" for c in diff.get("dropped") or {}]
    words += [f"{c} retyped {'→'.join(map(str, t))}" for c, t in (diff.get("retyped") or {}).items()]
    words += [f"{c} added" for c in diff.get("added") or {}]
    return words


def _spend(ledger: Ledger, heal_rows: list[dict], f: FleetFilter) -> tuple[DaySpend, ...]:
    tokens: Counter = Counter()
    cost: Counter = Counter()
    spenders: dict[dt.date, set] = defaultdict(set)
    audited = _model_requests(ledger, f)
    for req in audited:
        day = as_utc(req.at).date()
        if f.since <= day <= f.until:
            tokens[day] += req.input_tokens + req.output_tokens
            cost[day] += req.cost_usd
            spenders[day].add(req.heal_id)
    audited_heals = {r.heal_id for r in audited}
    for h in heal_rows:
        if h["id"] in audited_heals:
            continue  # its requests were counted one by one above
        spent = heal_figures(h, None, None)  # the metrics' reading of the outcome's model usage
        spent_tokens = sum(n for _, n in spent.tokens)
        if spent_tokens or spent.cost_usd:
            day = _day(h)
            tokens[day] += spent_tokens
            cost[day] += spent.cost_usd
            spenders[day].add(h["id"])
    return tuple(DaySpend(d, tokens[d], round(cost[d], 6), len(spenders[d])) for d in f.days)


def _model_requests(ledger: Ledger, f: FleetFilter) -> list:
    """The audit trail's model requests in range."""
    found = audit.model_requests(ledger, f.start, repo=f.repo)
    return [r for r in found if r.at < f.end and (not f.pipeline or r.pipeline == f.pipeline)]


def _verification(ledger: Ledger, f: FleetFilter) -> Verification | None:
    """Merged fixes by their newest verification state (all time: a fix merged before the range
    may be verified in it), through the metrics' own count."""
    found = verification(ledger, pipeline=f.pipeline, repo=f.repo)
    if found is None:
        return None
    counts = dict(found)
    return Verification(tuple((s, counts.get(s, 0)) for s in VERIFICATION_STATES), source="audit trail")


def pipeline_rows(ledger: Ledger, f: FleetFilter) -> tuple[PipelineRow, ...]:
    """Every pipeline the ledger knows (within the pipeline and repo filter), its state now."""
    with ledger.engine.connect() as conn:
        failed = conn.execute(_scoped(sa.select(runs.c.pipeline, runs.c.repo, sa.func.max(runs.c.id))
                                      .where(runs.c.status == "failed"), runs, f)
                              .group_by(runs.c.pipeline, runs.c.repo)).all()
        newest_heal = conn.execute(_scoped(sa.select(sa.func.max(heals.c.id)), heals, f)
                                   .group_by(heals.c.pipeline, heals.c.repo)).scalars().all()
        open_prs = conn.execute(_scoped(sa.select(prs.c.id, prs.c.title, prs.c.url, prs.c.pipeline, heals.c.repo)
                                        .select_from(prs.outerjoin(heals, heals.c.id == prs.c.heal_id))
                                        .where(prs.c.status == "open"), prs, f)
                                .where(*([heals.c.repo == f.repo] if f.repo else []))
                                .order_by(prs.c.id)).all()
    failures = _rows_by_id(ledger, runs, {i for _, _, i in failed}, (runs.c.id, runs.c.finished_at))
    last_heals = _rows_by_id(ledger, heals, set(newest_heal),
                             (heals.c.id, heals.c.pipeline, heals.c.repo, heals.c.status, heals.c.started_at))
    keys = {(p, r) for p, r, _ in failed} | {(h["pipeline"], h["repo"]) for h in last_heals.values()}
    by_key_failure = {(p, r): failures.get(i) for p, r, i in failed}
    by_key_heal = {(h["pipeline"], h["repo"]): h for h in last_heals.values()}
    by_key_pr = {(p, r): (i, t, u) for i, t, u, p, r in open_prs}  # ordered by id: the newest stays
    out = []
    for pipeline, repo in sorted(keys, key=lambda k: (k[0], k[1] or "")):
        fail, heal = by_key_failure.get((pipeline, repo)), by_key_heal.get((pipeline, repo))
        pr = by_key_pr.get((pipeline, repo))
        pause = breaker.paused(ledger, pipeline)
        out.append(PipelineRow(
            pipeline=pipeline, repo=repo or "",
            last_failure_id=fail["id"] if fail else None, last_failure_at=as_utc(fail["finished_at"]) if fail else None,
            last_heal_id=heal["id"] if heal else None, last_heal_status=heal["status"] if heal else None,
            last_heal_at=as_utc(heal["started_at"]) if heal else None,
            open_pr_id=pr[0] if pr else None, open_pr_title=pr[1] if pr else None, open_pr_url=pr[2] if pr else None,
            policy_mode=_policy_mode(repo, pipeline), paused=pause is not None,
            pause_reason=getattr(pause, "reason", None)))
    return tuple(out)


def _budget(f: FleetFilter) -> Budget | None:
    """The daily model budget the governance policy sets: the org file's (``HEALER_POLICY_FILE``), or
    with a repo filter that repo's (the smaller of its healer.yml and the org file); None when unset."""
    cost = tokens = None
    if f.repo:
        try:
            rules = effective.effective(f.repo)
            cost, tokens = rules.model_cost_usd_per_day_repo, rules.model_tokens_per_day_repo
        except HealerError as exc:  # the repo is not on this machine, or its policy is invalid
            log.info("dashboard: no repo budget for %s: %s", f.repo, exc)
    if cost is None and tokens is None:
        org = read_org(effective.org_file(), [])
        if org is not None:
            cost, tokens = org.get("budgets.model_cost_usd_per_day"), org.get("budgets.model_tokens_per_day")
    if cost is None and tokens is None:
        return None
    return Budget(cost_usd=float(cost.value) if cost else None, tokens=int(tokens.value) if tokens else None,
                  source=(cost or tokens).where)


def _policy_mode(repo: str | None, pipeline: str) -> str | None:
    """The pipeline's effective mode and where it is written, read from its repo's healer.yml and the
    org file; None when the repo is not on this machine or its policy does not read."""
    try:
        mode = effective.effective(repo, pipeline).mode if repo else None
    except HealerError as exc:
        log.info("dashboard: no policy mode for %s in %s: %s", pipeline, repo, exc)
        return None
    return f"{mode.value} ({mode.where})" if mode else None


def _distinct(ledger: Ledger, *columns) -> tuple[str, ...]:
    found: set[str] = set()
    with ledger.engine.connect() as conn:
        for col in columns:
            found.update(v for v in conn.execute(sa.select(col).distinct()).scalars() if v)
    return tuple(sorted(found))
