"""Recorded heal history for the fleet dashboard's tests, written through the Ledger's public API.

A real heal is the template: ``write_history`` copies its failed run, its outcome (evidence,
candidates, validation, timings, model usage) and its PR, and writes them again for other
pipelines, days and outcomes, changing only what differs between heals (ids, pipeline, repo,
times, status, the inputs that drifted and the model's usage). The rows are the shapes a
real heal writes, so the dashboard reads them as it reads real heals.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from healer.ledger import Ledger, RunRecord, as_utc, heals, prs, runs

# the heals row, failed run and PR that `healer demo` wrote (a rule fix of a renamed column)
TEMPLATE = Path(__file__).parent / "fixtures" / "fleet" / "real_heal.json"

# three pipelines of one repo that read one upstream table, and one of another repo
SHARED_INPUT = "/lake/raw/order_items"
PIPELINES = {
    "orders_daily": ("/repos/sales", {"items": SHARED_INPUT, "orders": "/lake/raw/orders"}),
    "margin_by_sku": ("/repos/sales", {"order_items": SHARED_INPUT, "skus": "/lake/raw/skus"}),
    "returns_weekly": ("/repos/finance", {"lines": SHARED_INPUT, "returns": "/lake/raw/returns"}),
    "customer_ltv": ("/repos/finance", {"customers": "/lake/raw/customers"}),
}
# the column each upstream input renamed (old -> new), put in place of the template's rename
RENAMED = {SHARED_INPUT: ("unit_price", "item_price"), "/lake/raw/orders": ("order_ts", "ordered_at"),
           "/lake/raw/customers": ("segment", "customer_segment"), "/lake/raw/returns": ("refund", "refund_amount"),
           "/lake/raw/skus": ("sku", "sku_code")}


@dataclass(frozen=True)
class Planned:
    """One recorded heal: which pipeline, when its run failed, how it ended."""

    pipeline: str
    failed_at: dt.datetime
    status: str  # proposed | declined | error | skipped
    to_pr_s: float | None = None  # seconds from the failure to its PR (proposed heals)
    duplicate_of: int | None = None  # index in the plan of the heal whose PR a duplicate points at
    pr_state: str = "open"  # open | merged | closed, for a PR this heal opened
    drift_input: str | None = None  # the logical input whose column was dropped
    tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Written:
    """What write_history wrote, by plan index."""

    heal_ids: list[int] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    pr_ids: dict[int, int] = field(default_factory=dict)


def load_template() -> tuple[dict, RunRecord, dict]:
    """The recorded real heal: its heals row, its failed run and its PR."""
    data = json.loads(TEMPLATE.read_text())
    run = data["run"]
    for key in ("started_at", "finished_at"):
        run[key] = as_utc(dt.datetime.fromisoformat(run[key])) if run.get(key) else None
    return data["heal"], RunRecord(**run), data["pr"]


def plan(today: dt.date) -> list[Planned]:
    """22 heals over 4 pipelines in the 10 days before ``today``: proposals (merged, closed, open),
    declines, errors, a skip, two duplicates, model spend on some days."""
    def at(days_ago: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(hour, 5), dt.timezone.utc)

    return [
        Planned("orders_daily", at(9, 6), "proposed", 41.0, pr_state="merged", drift_input="items"),
        Planned("margin_by_sku", at(9, 7), "proposed", 58.0, pr_state="merged", drift_input="order_items"),
        Planned("returns_weekly", at(9, 8), "proposed", 95.0, pr_state="closed", drift_input="lines"),
        Planned("margin_by_sku", at(9, 9), "proposed", duplicate_of=1),
        Planned("customer_ltv", at(8, 6), "declined", tokens=12_400, cost_usd=0.0612),
        Planned("customer_ltv", at(8, 9), "error", tokens=3_100, cost_usd=0.0155),
        Planned("orders_daily", at(7, 6), "proposed", 37.0, pr_state="merged", drift_input="orders"),
        Planned("returns_weekly", at(7, 10), "skipped"),
        Planned("customer_ltv", at(6, 6), "proposed", 212.0, pr_state="merged", drift_input="customers",
                tokens=18_900, cost_usd=0.0934),
        Planned("margin_by_sku", at(5, 6), "declined"),
        Planned("orders_daily", at(5, 7), "proposed", 44.0, pr_state="closed"),
        Planned("returns_weekly", at(4, 6), "proposed", 120.0, pr_state="merged", drift_input="returns"),
        Planned("margin_by_sku", at(4, 8), "error"),
        Planned("orders_daily", at(3, 6), "proposed", 39.0, pr_state="open", drift_input="items"),
        Planned("orders_daily", at(3, 7), "proposed", duplicate_of=13),
        Planned("customer_ltv", at(2, 6), "declined", tokens=9_800, cost_usd=0.0488),
        Planned("margin_by_sku", at(2, 7), "proposed", 66.0, pr_state="open", drift_input="order_items"),
        Planned("returns_weekly", at(2, 9), "declined"),
        Planned("returns_weekly", at(1, 6), "proposed", 150.0, pr_state="open", drift_input="lines",
                tokens=21_000, cost_usd=0.1011),
        Planned("customer_ltv", at(1, 8), "error"),
        Planned("orders_daily", at(0, 1), "declined"),
        Planned("margin_by_sku", at(0, 2), "proposed", 73.0, pr_state="open"),
    ]


def write_history(ledger: Ledger, template_heal: dict, template_run: RunRecord, template_pr: dict,
                  planned: list[Planned]) -> Written:
    """Write each planned heal as a real heal writes it: a failed run, a heals row with the
    template's outcome adapted, and (for a proposal that is not a duplicate) its PR."""
    out = Written()
    for i, p in enumerate(planned):
        repo, locations = PIPELINES[p.pipeline]
        run = copy.deepcopy(template_run)
        run.id, run.pipeline, run.repo = None, p.pipeline, repo
        run.input_locations = dict(locations)
        run.started_at, run.finished_at = p.failed_at - dt.timedelta(seconds=20), p.failed_at
        run.context = {**(run.context or {}), "dag_id": f"{p.pipeline}_dag", "task_id": p.pipeline}
        run = ledger.start_run(run)
        ledger.finish_run(run)
        outcome = copy.deepcopy(template_heal["outcome"])
        outcome.update(status=p.status, pipeline=p.pipeline, failure=run.id, duplicate=p.duplicate_of is not None,
                       duplicate_of=out.heal_ids[p.duplicate_of] if p.duplicate_of is not None else None)
        outcome["evidence"] = _evidence(outcome.get("evidence") or {}, p.drift_input,
                                        RENAMED.get(locations.get(p.drift_input or "")))
        outcome["llm"] = _llm(outcome.get("llm") or {}, p.tokens, p.cost_usd)
        if p.status != "proposed":
            outcome.update(fixer=None, branch=None, pr=None, pr_url=None, confidence=None, candidates=[],
                           validation=None)
        started = p.failed_at + dt.timedelta(seconds=3)
        values = dict(run_id=run.id, pipeline=p.pipeline, repo=repo, fingerprint=f"{template_heal['fingerprint']}-{i}",
                      category=template_heal["category"], status=p.status, reason=_reason(p, template_heal),
                      fixer=outcome.get("fixer"), branch=outcome.get("branch"), outcome=outcome,
                      started_at=started, finished_at=started + dt.timedelta(seconds=(p.to_pr_s or 30) - 3))
        heal_id = ledger.insert(heals, **values)
        pr_id = None
        if p.duplicate_of is not None:
            pr_id = out.pr_ids[p.duplicate_of]
        elif p.status == "proposed":
            pr = {k: v for k, v in template_pr.items() if k != "id"}
            opened = p.failed_at + dt.timedelta(seconds=p.to_pr_s)
            pr.update(heal_id=heal_id, pipeline=p.pipeline, fingerprint=values["fingerprint"], status=p.pr_state,
                      branch=f"healer/{p.pipeline}/{i}", url=f"healer://{p.pipeline}/{i}",
                      title=_title(template_pr.get("title") or "", template_heal["pipeline"], p,
                                   RENAMED.get(locations.get(p.drift_input or ""))),
                      created_at=opened, updated_at=opened)
            pr_id = out.pr_ids[i] = ledger.insert(prs, **pr)
        outcome.update(heal=heal_id, pr=pr_id)
        ledger.update(heals, heal_id, pr_id=pr_id, outcome=outcome)
        out.heal_ids.append(heal_id)
        out.run_ids.append(run.id)
    return out


def _title(template: str, template_pipeline: str, p: Planned, renamed: tuple[str, str] | None) -> str:
    """The template PR's title for this pipeline, naming this heal's rename when it has one."""
    if renamed:
        return f"heal({p.pipeline}): upstream column was renamed in {p.drift_input}: {renamed[0]} → {renamed[1]}"
    return template.replace(template_pipeline, p.pipeline)


def _evidence(template: dict, drift_input: str | None, renamed: tuple[str, str] | None) -> dict:
    """The template's evidence with its schema diff (one renamed column) moved onto ``drift_input``
    and that input's column names (none without one)."""
    evidence = copy.deepcopy(template)
    diffs = [d for d in evidence.get("diffs") or [] if d.get("dropped") or d.get("retyped") or d.get("gone")]
    if drift_input and diffs:
        moved = copy.deepcopy(diffs[0])
        moved["input"] = drift_input
        if renamed and len(moved.get("dropped") or {}) == 1 and len(moved.get("added") or {}) == 1:
            old, new = renamed
            moved["dropped"] = {old: next(iter(moved["dropped"].values()))}
            moved["added"] = {new: next(iter(moved["added"].values()))}
            for r in moved.get("renames") or []:
                r.update(input=drift_input, old=old, new=new)
        evidence["diffs"] = [moved]
    else:
        evidence["diffs"] = []
    return evidence


def _llm(template: dict, tokens: int, cost: float) -> dict:
    llm = copy.deepcopy(template)
    if tokens:
        llm.update(enabled=True, rounds=1, usage={"requests": 1, "input_tokens": tokens - tokens // 10,
                                                  "output_tokens": tokens // 10, "cache_creation_input_tokens": 0,
                                                  "cache_read_input_tokens": 0, "total_tokens": tokens,
                                                  "cost_usd": cost, "model": "claude-sonnet-4-5"})
    else:
        llm.pop("usage", None)
    return llm


def _reason(p: Planned, template_heal: dict) -> str:
    return {"proposed": template_heal.get("reason") or "proposed",
            "declined": "no fixer proposed a candidate: the column 'segment' was dropped upstream",
            "error": "model unavailable: connection refused",
            "skipped": "transient infrastructure error: executor lost; Airflow retries it"}.get(p.status, p.status)


def expected_counts(ledger: Ledger, since: dt.datetime) -> dict:
    """The ledger's own answer, counted here without healer.fleet: heals by status, PR states,
    time to PR of the heals that opened their PR."""
    found = ledger.select(heals, heals.c.started_at >= since, limit=10_000)
    by_status: dict[str, int] = {}
    for h in found:
        by_status[h["status"]] = by_status.get(h["status"], 0) + 1
    opened = ledger.select(prs, prs.c.created_at >= since, limit=10_000)
    states: dict[str, int] = {}
    for p in opened:
        states[p["status"]] = states.get(p["status"], 0) + 1
    waits = []
    for h in found:
        pr = next((p for p in opened if p["id"] == h["pr_id"] and p["heal_id"] == h["id"]), None)
        if pr is not None:
            run = ledger.get(runs, h["run_id"])
            waits.append((pr["created_at"] - run["finished_at"]).total_seconds())
    return {"heals": len(found), "by_status": by_status, "pr_states": states, "waits": sorted(waits),
            "pipelines": {h["pipeline"] for h in found}}
