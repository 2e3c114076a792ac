"""The fleet dashboard page: the figures of ``healer.fleet`` as server-side SVG charts and tables.

``values(fleet)`` turns a Fleet into what the ``fleet`` template prints: charts (escaped SVG
Markup from ``healer.charts``) and, beside each, the same numbers as text. The template lives
here as a string like the other pages' (a wheel carries no loose template files) and is
registered with them in ``pages``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from healer import charts
from healer.airflow.links import heal_path, pr_path
from healer.fleet import Fleet, FleetFilter

# one colour per heal outcome, the same hues as the pages' badges
STATUS_COLORS = {"proposed": "#2f9e5b", "declined": "#d4a72c", "skipped": "#9aa4b2", "error": "#d1453b",
                 "abandoned": "#8c5ac8", "running": "#3b82d6"}
PR_COLORS = {"merged": "#2f9e5b", "open": "#3b82d6", "closed": "#d1453b", "reverted": "#8c5ac8"}
VERIFY_COLORS = {"verified": "#2f9e5b", "regressed": "#d1453b", "unverified": "#9aa4b2"}
OTHER_COLOR = "#5d6878"


def duration(seconds: float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``42s``; an em dash for None."""
    if seconds is None:
        return "—"
    from healer.airflow.views import duration_words

    return duration_words(seconds)


def money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def _label(day: dt.date) -> str:
    return day.strftime("%m-%d")


def values(fleet: Fleet) -> dict:
    """What the template prints for one Fleet."""
    days = [d.day for d in fleet.outcomes]
    labels = [_label(d) for d in days]
    statuses = [s for s, _ in fleet.outcomes[0].counts] if fleet.outcomes else []
    shown = [s for s in statuses if fleet.status_total(s) or s in ("proposed", "declined", "error")]
    outcome_series = [charts.Series(s, tuple(d.count(s) for d in fleet.outcomes), STATUS_COLORS.get(s, OTHER_COLOR))
                      for s in shown]
    ttp_labels = [_label(p.start) for p in fleet.time_to_pr]
    # p90 first and dashed: on a day of one PR both are the same point, and p50 stays visible on top
    ttp = [charts.Series("p90", tuple(p.p90_s for p in fleet.time_to_pr), "#d1453b", dashed=True),
           charts.Series("p50", tuple(p.p50_s for p in fleet.time_to_pr), "#1b5fc1")]
    budget = fleet.budget
    spend = charts.bars(
        "Model spend per day (USD)", labels,
        [charts.Series("cost", tuple(d.cost_usd for d in fleet.spend), "#6f42c1")], fmt=money,
        limit=budget.cost_usd if budget else None,
        limit_label=f"budget {money(budget.cost_usd)}/day" if budget and budget.cost_usd is not None else "",
        desc=f"Model spend per day, {money(fleet.spend_cost_usd)} in total")
    pr_parts = [(s, n, PR_COLORS.get(s, OTHER_COLOR)) for s, n in fleet.prs.counts]
    verify = fleet.verification
    f = fleet.filter
    return {
        "f": f, "fleet": fleet, "duration": duration,
        "heal_total": fleet.heals,
        "status_totals": [(s, fleet.status_total(s), STATUS_COLORS.get(s, OTHER_COLOR)) for s in shown],
        "outcomes_chart": charts.bars(
            "Heals per day by outcome", labels, outcome_series, counts=True,
            desc=f"{fleet.heals} heals from {f.since} to {f.until}: "
                 + ", ".join(f"{s} {fleet.status_total(s)}" for s in shown)),
        "outcome_rows": [(d.day.isoformat(), [d.count(s) for s in shown], d.total) for d in fleet.outcomes if d.total],
        "outcome_statuses": shown,
        "ttp_chart": charts.lines(
            f"Time to PR per {'week' if fleet.bucket_days == 7 else 'day'}, p50 and p90", ttp_labels, ttp, fmt=duration,
            tops=charts.DURATION_TOPS,
            desc=f"Over the range: p50 {duration(fleet.time_to_pr_all.p50_s)}, "
                 f"p90 {duration(fleet.time_to_pr_all.p90_s)} over {fleet.time_to_pr_all.heals} PRs"),
        "ttp_all": fleet.time_to_pr_all,
        "ttp_rows": [(p.start.isoformat(), p.heals, duration(p.p50_s), duration(p.p90_s))
                     for p in fleet.time_to_pr if p.heals],
        "pr_chart": charts.share("Pull requests opened in the range, by state now", pr_parts,
                                 desc=", ".join(f"{s} {n}" for s, n, _ in pr_parts) or "none"),
        "pr_parts": pr_parts,
        "merge_rate": fleet.prs.decided_merge_rate,
        "verify_chart": charts.share("Merged fixes by post-merge verification",
                                     [(s, n, VERIFY_COLORS[s]) for s, n in verify.counts]) if verify else None,
        "verify_counts": [(s, n, VERIFY_COLORS[s]) for s, n in verify.counts] if verify else [],
        "spend_chart": spend,
        "spend_rows": [(d.day.isoformat(), d.heals, d.tokens, money(d.cost_usd))
                       for d in fleet.spend if d.tokens or d.cost_usd],
        "spend_total": money(fleet.spend_cost_usd),
        "budget": budget,
        "budget_text": _budget_text(budget),
        "broken": fleet.broken_inputs[:10],
        "pipelines": [asdict(p) | {"heal_page": heal_path(p.last_heal_id) if p.last_heal_id else None,
                                   "pr_page": pr_path(p.open_pr_id) if p.open_pr_id else None,
                                   "last_failure": _when(p.last_failure_at), "last_heal": _when(p.last_heal_at)}
                      for p in fleet.pipelines],
        "query": _query(f),
    }


def _budget_text(budget) -> str | None:
    if budget is None:
        return None
    amount = f"{money(budget.cost_usd)} per day" if budget.cost_usd is not None else f"{budget.tokens} tokens per day"
    return f"{amount} ({budget.source})"


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _query(f: FleetFilter) -> dict:
    return {"pipeline": f.pipeline or "", "repo": f.repo or "", "since": f.since.isoformat(), "until": f.until.isoformat()}


TEMPLATE = """{% extends "base" %}
{% block title %}Healer · fleet{% endblock %}
{% block main %}
<style>
  .filters { display: flex; gap: 12px; align-items: end; flex-wrap: wrap; margin: 6px 0 16px; }
  .filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
  .filters input, .filters select { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 4px; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 8px 28px; }
  .panel h2 { margin-top: 14px; }
  .legend { display: flex; gap: 14px; flex-wrap: wrap; font-size: 12.5px; margin: 2px 0 4px; }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
  .figure { font-size: 22px; font-weight: 600; }
  .kpis { display: flex; gap: 30px; margin: 4px 0 6px; }
  .kpis div span { display: block; font-size: 12px; color: var(--muted); }
  table.num td.n, table.num th.n { text-align: right; font-variant-numeric: tabular-nums; }
  details summary { cursor: pointer; color: var(--muted); font-size: 12.5px; }
  #pipelines td.when { white-space: nowrap; }
</style>
<h2>Fleet</h2>
<form class="filters" method="get" action="{{ prefix }}/dashboard">
  <label>pipeline<select name="pipeline"><option value="">all</option>{% for p in fleet.known_pipelines %}<option{% if p == f.pipeline %} selected{% endif %}>{{ p }}</option>{% endfor %}</select></label>
  <label>repo<select name="repo"><option value="">all</option>{% for r in fleet.known_repos %}<option{% if r == f.repo %} selected{% endif %}>{{ r }}</option>{% endfor %}</select></label>
  <label>from<input type="date" name="since" value="{{ query.since }}"></label>
  <label>to<input type="date" name="until" value="{{ query.until }}"></label>
  <button type="submit">Show</button>
</form>
<div class="kpis" id="kpis">
  <div><span>heals</span><b class="figure" id="kpi-heals">{{ heal_total }}</b></div>
  <div><span>time to PR p50 / p90</span><b class="figure" id="kpi-ttp">{{ duration(ttp_all.p50_s) }} / {{ duration(ttp_all.p90_s) }}</b></div>
  <div><span>PRs merged of decided</span><b class="figure" id="kpi-merge">{% if merge_rate is not none %}{{ "%.0f%%"|format(100 * merge_rate) }}{% else %}—{% endif %}</b></div>
  <div><span>model spend</span><b class="figure" id="kpi-spend">{{ spend_total }}</b></div>
</div>
<div class="grid">
<section class="panel" aria-labelledby="h-outcomes">
  <h2 id="h-outcomes">Heals per day by outcome</h2>
  <div class="legend">{% for s, n, color in status_totals %}<span><i class="swatch" style="background:{{ color }}"></i>{{ s }} <b data-status="{{ s }}">{{ n }}</b></span>{% endfor %}</div>
  {{ outcomes_chart }}
  <details><summary>as a table</summary><table class="num" id="outcomes"><tr><th>day</th>{% for s in outcome_statuses %}<th class="n">{{ s }}</th>{% endfor %}<th class="n">total</th></tr>
  {% for day, counts, total in outcome_rows %}<tr><td>{{ day }}</td>{% for n in counts %}<td class="n">{{ n }}</td>{% endfor %}<td class="n">{{ total }}</td></tr>{% endfor %}</table></details>
</section>
<section class="panel" aria-labelledby="h-ttp">
  <h2 id="h-ttp">Time to PR</h2>
  <div class="legend"><span><i class="swatch" style="background:#1b5fc1"></i>p50 <b id="ttp-p50">{{ duration(ttp_all.p50_s) }}</b></span><span><i class="swatch" style="background:#d1453b"></i>p90 <b id="ttp-p90">{{ duration(ttp_all.p90_s) }}</b></span><span class="muted">over <b id="ttp-n">{{ ttp_all.heals }}</b> PRs; a duplicate's wait is not counted</span></div>
  {{ ttp_chart }}
  <details><summary>as a table</summary><table class="num"><tr><th>{{ "week of" if fleet.bucket_days == 7 else "day" }}</th><th class="n">PRs</th><th class="n">p50</th><th class="n">p90</th></tr>
  {% for start, n, p50, p90 in ttp_rows %}<tr><td>{{ start }}</td><td class="n">{{ n }}</td><td class="n">{{ p50 }}</td><td class="n">{{ p90 }}</td></tr>{% endfor %}</table></details>
</section>
<section class="panel" aria-labelledby="h-prs">
  <h2 id="h-prs">Pull requests</h2>
  <div class="legend" id="pr-states">{% for s, n, color in pr_parts %}<span><i class="swatch" style="background:{{ color }}"></i>{{ s }} <b data-state="{{ s }}">{{ n }}</b></span>{% endfor %}<span class="muted">drafts {{ fleet.prs.drafts }}</span></div>
  {{ pr_chart }}
  <h2>Post-merge verification</h2>
  {% if verify_chart %}<div class="legend" id="verification">{% for s, n, color in verify_counts %}<span><i class="swatch" style="background:{{ color }}"></i>{{ s }} <b data-verification="{{ s }}">{{ n }}</b></span>{% endfor %}</div>{{ verify_chart }}
  {% else %}<p class="muted" id="verification">Not recorded: post-merge verification (governance) is not installed with this Healer.</p>{% endif %}
</section>
<section class="panel" aria-labelledby="h-spend">
  <h2 id="h-spend">Model spend per day</h2>
  <div class="legend"><span><i class="swatch" style="background:#6f42c1"></i>cost <b id="spend-total">{{ spend_total }}</b>, <b id="spend-tokens">{{ fleet.spend_tokens }}</b> tokens</span>
  <span class="muted">{% if budget_text %}budget {{ budget_text }}{% else %}no daily model budget set{% endif %}</span></div>
  {{ spend_chart }}
  <details><summary>as a table</summary><table class="num"><tr><th>day</th><th class="n">heals</th><th class="n">tokens</th><th class="n">cost</th></tr>
  {% for day, n, tokens, cost in spend_rows %}<tr><td>{{ day }}</td><td class="n">{{ n }}</td><td class="n">{{ tokens }}</td><td class="n">{{ cost }}</td></tr>{% endfor %}</table></details>
</section>
</div>
<h2>Upstream inputs that broke the most pipelines</h2>
{% if broken %}<table class="num" id="broken-inputs"><tr><th>input</th><th class="n">pipelines</th><th class="n">heals</th><th>which</th><th>what changed</th></tr>
{% for b in broken %}<tr><td><code>{{ b.location }}</code></td><td class="n">{{ b.pipelines|length }}</td><td class="n">{{ b.heals }}</td><td>{{ b.pipelines|join(", ") }}</td><td class="muted">{{ b.changes|join("; ") }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">No heal in this range found an input whose schema changed.</p>{% endif %}
<p class="muted">{{ fleet.heals_without_input_change }} heals found no input schema change (a bad commit, or bad values in unchanged columns).</p>
<h2>Pipelines</h2>
{% if pipelines %}<table id="pipelines"><tr><th>pipeline</th><th>repo</th><th>last failure</th><th>last heal</th><th>open PR</th><th>policy mode</th><th>paused</th></tr>
{% for p in pipelines %}<tr><td><a href="{{ prefix }}/dashboard?pipeline={{ p.pipeline|urlencode }}&amp;since={{ query.since }}&amp;until={{ query.until }}">{{ p.pipeline }}</a></td>
<td class="muted"><code>{{ p.repo }}</code></td>
<td class="when">{% if p.last_failure_id %}#{{ p.last_failure_id }} <span class="muted">{{ p.last_failure }}</span>{% endif %}</td>
<td class="when">{% if p.heal_page %}<a href="{{ p.heal_page }}">#{{ p.last_heal_id }}</a> <span class="badge {{ p.last_heal_status }}">{{ p.last_heal_status }}</span> <span class="muted">{{ p.last_heal }}</span>{% endif %}</td>
<td>{% if p.pr_page %}<a href="{{ p.pr_page }}">PR #{{ p.open_pr_id }}</a> {{ p.open_pr_title or "" }}{% endif %}</td>
<td>{{ p.policy_mode or "—" }}</td>
<td>{% if p.paused %}<span class="badge error">paused</span> <span class="muted">{{ p.pause_reason }}</span>{% else %}no{% endif %}</td></tr>{% endfor %}</table>
{% else %}<div class="empty">No pipeline has failed or been healed{% if f.pipeline or f.repo %} under this filter{% endif %}.</div>{% endif %}
<p class="muted">Policy mode: the effective mode and where it is written (healer.yml, the org file); "—" where the repo is not on this machine.</p>
{% endblock %}
"""
