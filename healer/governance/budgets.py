"""Daily budgets: pull requests per pipeline, model tokens and cost (org-wide and per repo).

A day is the UTC calendar day: budgets reset at 00:00 UTC, the same moment on every machine
sharing the ledger. PRs are counted from the ``prs`` table (every forge records its PRs
there); model use from the audit trail's ``model_request`` events.

Each check returns None when the budget allows, or the reason, which starts with
``policy: budget:`` and names where the budget is written.
"""

from __future__ import annotations

import datetime as dt
import logging

from healer.governance import audit
from healer.governance.breaker import pipeline_prs
from healer.governance.effective import Effective
from healer.ledger import Ledger, prs, utcnow

log = logging.getLogger(__name__)


def day_start(now: dt.datetime | None = None) -> dt.datetime:
    """00:00 UTC of today: where every daily budget starts counting."""
    now = now or utcnow()
    return now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def prs_today(ledger: Ledger, pipeline: str, now: dt.datetime | None = None) -> int:
    """Healer PRs opened for ``pipeline`` since 00:00 UTC (storm PRs count for each of their pipelines)."""
    return ledger.count(prs, pipeline_prs(pipeline), prs.c.created_at >= day_start(now))


def pr_refusal(ledger: Ledger, rules: Effective, pipeline: str) -> str | None:
    """Why no PR may be opened for ``pipeline`` today, or None."""
    limit = rules.prs_per_pipeline_per_day
    if limit is None:
        return None
    opened = prs_today(ledger, pipeline)
    if opened < limit.value:
        return None
    return (f"policy: budget: {opened} pull request(s) already opened for '{pipeline}' today (UTC), the most "
            f"{limit.where} allows ({limit.value} a day)")


def model_refusal(ledger: Ledger, rules: Effective, repo: str) -> str | None:
    """Why the model may not be asked today (a daily token or cost budget spent), or None."""
    scopes = [(rules.model_tokens_per_day_org, rules.model_cost_usd_per_day_org, None, "org-wide"),
              (rules.model_tokens_per_day_repo, rules.model_cost_usd_per_day_repo, repo, "this repo")]
    if not any(tokens or cost for tokens, cost, _r, _w in scopes):
        return None
    since = day_start()
    for tokens, cost, scope_repo, what in scopes:
        if tokens is None and cost is None:
            continue
        used = audit.model_requests(ledger, since, repo=scope_repo)
        spent_tokens = sum(r.input_tokens + r.output_tokens for r in used)
        spent_cost = sum(r.cost_usd for r in used)
        if tokens is not None and spent_tokens >= tokens.value:
            return (f"policy: budget: {spent_tokens:,} model tokens spent today (UTC, {what}), the most "
                    f"{tokens.where} allows ({tokens.value:,}); the model fixer is skipped")
        if cost is not None and spent_cost >= cost.value:
            return (f"policy: budget: ${spent_cost:.2f} of model requests today (UTC, {what}), the most "
                    f"{cost.where} allows (${cost.value:.2f}); the model fixer is skipped")
    return None
