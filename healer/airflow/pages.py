"""HTML pages of the plugin: the list of heals, a heal's evidence, a PR, a task instance's heals.

Templates are kept here as strings (a wheel carries no loose template files) and rendered
with Jinja2's autoescaping: every value shown comes from logs and data, so none is trusted.
Every value is redacted as it is printed too (``finalize``), whatever a view passed in.
"""

from __future__ import annotations

import jinja2
import markupsafe

from healer.airflow import dashboard
from healer.redact import redact


def _shown(value):
    """What a ``{{ ... }}`` prints: text with its secrets redacted (autoescaping follows).

    Markup (a macro's output, such as the diff) is left alone: its own values were redacted
    as the macro printed them, and redacting it again would turn it into text to escape.
    """
    return redact(value) if isinstance(value, str) and not isinstance(value, markupsafe.Markup) else value


_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}Healer{% endblock %}</title>
<style>
  :root { --fg:#1d2430; --muted:#5d6878; --line:#dfe3ea; --bg:#f7f8fa; --ok:#1f7a3f; --bad:#b42318; --warn:#9a6700; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0; background: #fff; }
  header { padding: 14px 24px; border-bottom: 1px solid var(--line); display: flex; gap: 18px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header a { color: var(--muted); text-decoration: none; }
  main { padding: 18px 24px 40px; max-width: 1280px; }
  h2 { font-size: 16px; margin: 26px 0 8px; }
  table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); background: var(--bg); }
  a { color: #1b5fc1; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
           background: #eef0f3; color: var(--muted); }
  .proposed, .pass, .open, .merged, .done, .triggered, .verified { background: #e3f4e8; color: var(--ok); }
  .declined, .skipped, .waiting, .healing, .draft, .pending, .watching, .unverified { background: #fdf3d8; color: var(--warn); }
  .error, .FAIL, .closed, .reverted, .regressed { background: #fde7e5; color: var(--bad); }
  pre { background: var(--bg); border: 1px solid var(--line); padding: 10px 12px; overflow-x: auto; font-size: 12.5px;
        white-space: pre-wrap; word-break: break-word; }
  .diff .add { color: var(--ok); } .diff .del { color: var(--bad); } .diff .hunk { color: #6f42c1; }
  .muted { color: var(--muted); }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 6px 0; }
  dt { color: var(--muted); } dd { margin: 0; }
  .summary { display: flex; gap: 10px; margin: 4px 0 14px; }
  .empty { padding: 24px; background: var(--bg); border: 1px dashed var(--line); color: var(--muted); }
  .markdown { max-width: 980px; } .markdown pre { white-space: pre; }
  .markdown code { background: var(--bg); padding: 0 3px; border-radius: 3px; font-size: 12.5px; }
</style></head>
<body>
<header><h1>Healer</h1><a href="{{ prefix }}/dashboard">Fleet</a><a href="{{ prefix }}/heals">Heals</a><a href="{{ prefix }}/prs">Pull requests</a>
<span class="muted">signed in as {{ user }}</span></header>
<main>{% block main %}{% endblock %}</main>
</body></html>
"""

_HEALS = """{% extends "base" %}
{% block title %}Healer · heals{% endblock %}
{% block main %}
<div class="summary">{% for status, n in counts.items() %}<span class="badge {{ status }}">{{ status }} {{ n }}</span>{% endfor %}</div>
{% if heals %}
<table id="heals">
<tr><th>#</th><th>status</th><th>pipeline</th><th>root cause</th><th>fixer</th><th>pull request</th><th>time to PR</th><th>Airflow task</th><th>started</th></tr>
{% for h in heals %}
<tr>
  <td><a href="{{ h.page }}">{{ h.id }}</a></td>
  <td><span class="badge {{ h.status }}">{{ h.status }}</span>{% if h.duplicate %} <span class="muted">(existing PR)</span>{% endif %}</td>
  <td>{{ h.pipeline }}</td>
  <td>{{ h.root_cause }}</td>
  <td>{{ h.fixer or "" }}</td>
  <td>{% if h.pr %}<a href="{{ h.pr.href }}">PR #{{ h.pr.id }}</a> <span class="badge {{ h.pr.status }}">{{ h.pr.status }}</span>{% if h.pr.draft %} <span class="badge draft">draft</span>{% endif %}{% endif %}</td>
  <td>{{ h.time_to_pr }}{% if h.duplicate_wait %}<span class="muted">waited {{ h.duplicate_wait }} (duplicate)</span>{% endif %}</td>
  <td>{% if h.airflow.dag_id %}{% if h.airflow.log_url %}<a href="{{ h.airflow.log_url }}">{{ h.airflow.dag_id }}.{{ h.airflow.task_id }}</a>{% else %}{{ h.airflow.dag_id }}.{{ h.airflow.task_id }}{% endif %}{% if h.airflow.try_number %} <span class="muted">try {{ h.airflow.try_number }}</span>{% endif %}{% endif %}</td>
  <td class="muted">{{ h.started_at or "" }}</td>
</tr>
{% endfor %}
</table>
{% else %}<div class="empty">No heals yet. Failures of healer-managed tasks appear here once the healer DAG has run.</div>{% endif %}
{% endblock %}
"""

_DIFF = """{% macro diff(text) %}<pre class="diff">{% for line in text.splitlines() %}{% if line.startswith("+++") or line.startswith("---") %}<span class="muted">{{ line }}</span>{% elif line.startswith("+") %}<span class="add">{{ line }}</span>{% elif line.startswith("-") %}<span class="del">{{ line }}</span>{% elif line.startswith("@@") %}<span class="hunk">{{ line }}</span>{% else %}{{ line }}{% endif %}{{ "\n" }}{% endfor %}</pre>{% endmacro %}"""

_HEAL = """{% extends "base" %}{% from "diff" import diff %}
{% block title %}Healer · heal {{ h.id }}{% endblock %}
{% block main %}
<h2>Heal #{{ h.id }} of {{ h.pipeline }} <span class="badge {{ h.status }}">{{ h.status }}</span></h2>
<dl>
  <dt>root cause</dt><dd>{{ h.root_cause }}</dd>
  <dt>outcome</dt><dd>{{ h.reason or "" }}</dd>
  <dt>fixer</dt><dd>{{ h.fixer or "none" }}{% if h.confidence is not none %} · confidence {{ "%.2f"|format(h.confidence) }}{% endif %}</dd>
  <dt>pull request</dt><dd>{% if h.pr %}<a href="{{ h.pr.href }}">PR #{{ h.pr.id }}: {{ h.pr.title }}</a> <span class="badge {{ h.pr.status }}">{{ h.pr.status }}</span> · branch <code>{{ h.pr.branch }}</code>{% else %}none{% endif %}</dd>
  <dt>time to PR</dt><dd>{{ h.time_to_pr or "—" }}</dd>
  {% if h.duplicate_wait %}<dt>its own wait</dt><dd id="duplicate-wait">{{ h.duplicate_wait }}, from its failure until it joined the heal of its cause (a duplicate has no time to PR of its own)</dd>{% endif %}
  {% if h.verification %}<dt>after the merge</dt><dd id="verification"><span class="badge {{ h.verification.state }}">{{ h.verification.state }}</span> {{ h.verification.reason }}</dd>{% endif %}
  <dt>fingerprint</dt><dd><code>{{ h.fingerprint or "" }}</code></dd>
</dl>
{% set f = h.failure_run %}
{% if f %}
<h2>What failed</h2>
<dl>
  <dt>run</dt><dd>#{{ f.id }} at the <b>{{ f.stage }}</b> stage, commit <code>{{ (f.commit or "unknown")[:10] }}</code>, {{ f.finished_at }}</dd>
  <dt>error</dt><dd><code>{{ f.error_class }}</code></dd>
  {% if f.airflow.dag_id %}<dt>Airflow task</dt><dd>{% if f.airflow.log_url %}<a href="{{ f.airflow.log_url }}">{{ f.airflow.dag_id }}.{{ f.airflow.task_id }}</a>{% else %}{{ f.airflow.dag_id }}.{{ f.airflow.task_id }}{% endif %} · run {{ f.airflow.run_id }} · try {{ f.airflow.try_number }} of {{ (f.airflow.max_tries or 0) + 1 }}</dd>{% endif %}
</dl>
<pre>{{ f.message or "" }}</pre>
{% if f.failed_expectations %}<table><tr><th>failed expectation</th><th>column</th><th>detail</th></tr>
{% for e in f.failed_expectations %}<tr><td>{{ e.kind or e.expectation }}</td><td>{{ e.column or "" }}</td><td>{{ e.detail or e.unexpected_count or "" }}</td></tr>{% endfor %}</table>{% endif %}
{% endif %}
<h2>Evidence</h2>
{% if h.evidence.drift %}
<p class="muted">Schema drift since the last good run (#{{ h.evidence.last_good }}):</p>
<table id="drift"><tr><th>input</th><th>column</th><th>change</th><th>detail</th></tr>
{% for r in h.evidence.drift %}<tr><td>{{ r[0] }}</td><td>{{ r[1] }}</td><td>{{ r[2] }}</td><td>{{ r[3] }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">No schema drift recorded{% if h.evidence.last_good %} since the last good run (#{{ h.evidence.last_good }}){% else %} (no earlier good run){% endif %}.</p>{% endif %}
{% if h.candidates %}
<h2>Candidates</h2>
<table id="candidates"><tr><th>fixer</th><th>proposal</th><th>confidence</th><th>sandbox</th></tr>
{% for c in h.candidates %}<tr><td>{{ c.fixer }}</td><td>{{ c.title }}</td><td>{{ "%.2f"|format(c.confidence or 0) }}</td>
<td><span class="badge {{ 'pass' if c.passed else 'FAIL' }}">{{ 'pass' if c.passed else 'FAIL' }}</span>{% for r in c.reasons %}<div class="muted">{{ r }}</div>{% endfor %}</td></tr>{% endfor %}</table>
{% endif %}
{% if h.diff %}<h2>The change</h2>{{ diff(h.diff) }}{% endif %}
{% if h.validation %}
<h2>Validation</h2>
<p class="muted">The patched job on a deterministic sample of the current inputs{% if h.validation.output_rows is not none %} ({{ h.validation.output_rows }} output rows){% endif %}.</p>
<table id="validation"><tr><th>check</th><th>result</th><th>detail</th></tr>
{% for c in h.validation.checks or [] %}<tr><td>{{ c.name }}</td><td><span class="badge {{ 'pass' if c.passed else 'FAIL' }}">{{ 'pass' if c.passed else 'FAIL' }}</span></td><td>{{ c.detail }}</td></tr>{% endfor %}</table>
{% if h.validation.expectations %}<table><tr><th>expectation</th><th>result</th><th>failing rows</th></tr>
{% for e in h.validation.expectations %}<tr><td>{{ e.expectation }}</td><td><span class="badge {{ 'pass' if e.success else 'FAIL' }}">{{ 'pass' if e.success else 'FAIL' }}</span></td><td>{% if e.unexpected_count is not none %}{{ e.unexpected_count }} of {{ e.element_count }}{% endif %}</td></tr>{% endfor %}</table>{% endif %}
{% if h.validation.sample_sizes %}<p class="muted">Sample: {% for name, n in h.validation.sample_sizes.items() %}{{ name }} {{ n }} rows{% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
<h2>Full data against the last good output</h2>
{% if h.validation.ready is not none %}<p>Healer's verdict: <span class="badge {{ 'pass' if h.validation.ready else 'draft' }}">{{ 'ready' if h.validation.ready else 'draft' }}</span>{% for r in h.validation.draft_reasons or [] %}<div class="muted">{{ r }}</div>{% endfor %}</p>{% endif %}
{% if h.validation.shadow_rows_read is not none %}<p id="data-diff">Shadow run on {{ h.validation.shadow_rows_read }} input rows: <b>{{ h.validation.data_diff or "no last good output to compare" }}</b>.</p>
{% else %}<p id="data-diff" class="muted">No shadow run: validated on a sample only.</p>{% endif %}
{% if h.validation.diff and h.validation.diff.columns %}<table id="diff-columns"><tr><th>column</th><th>rows changed</th><th>max abs diff</th><th>max rel diff</th><th>median change</th><th>example keys</th></tr>
{% for c in h.validation.diff.columns %}<tr><td>{{ c.column }}</td><td>{{ c.rows }}</td><td>{{ c.max_abs if c.max_abs is not none else "" }}</td><td>{{ "%.1f%%"|format(100 * c.max_rel) if c.max_rel is not none else "" }}</td><td>{{ "%+.1f%%"|format(100 * c.median_rel) if c.median_rel is not none else "" }}</td><td class="muted">{{ (c.examples or [])|join("; ") }}</td></tr>{% endfor %}</table>{% endif %}
{% endif %}
{% if h.timings %}<h2>Timings</h2><table><tr><th>stage</th><th>seconds</th></tr>
{% for k, v in h.timings.items() %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>{% endif %}
{% if h.handoffs %}<h2>Hand-offs</h2><table><tr><th>status</th><th>from</th><th>healer run</th><th>note</th></tr>
{% for x in h.handoffs %}<tr><td><span class="badge {{ x.status }}">{{ x.status }}</span></td><td>{{ x.source }} · {{ x.dag_id }}.{{ x.task_id }} try {{ x.try_number }}</td><td>{{ x.healer_dag_id or "" }} {{ x.healer_run_id or "" }}</td><td class="muted">{{ x.error or "" }}</td></tr>{% endfor %}</table>{% endif %}
{% if h.audit %}<h2>Audit trail</h2><table id="audit"><tr><th>at (UTC)</th><th>action</th><th>detail</th></tr>
{% for e in h.audit %}<tr><td>{{ e.at[:23] }}</td><td>{{ e.action }}</td><td class="muted">{{ e.summary }}</td></tr>{% endfor %}</table>{% endif %}
{% if h.pr_body %}<details><summary>Pull request body</summary><pre>{{ h.pr_body }}</pre></details>{% endif %}
{% endblock %}
"""

_PRS = """{% extends "base" %}
{% block title %}Healer · pull requests{% endblock %}
{% block main %}
{% if prs %}<table id="prs"><tr><th>#</th><th>status</th><th>pipeline</th><th>title</th><th>branch</th><th>forge</th><th>opened</th></tr>
{% for p in prs %}<tr><td><a href="{{ p.page }}">{{ p.id }}</a></td><td><span class="badge {{ p.status }}">{{ p.status }}</span>{% if p.draft %} <span class="badge draft">draft</span>{% endif %}</td>
<td>{{ p.pipeline or "" }}</td><td><a href="{{ p.href }}">{{ p.title }}</a></td><td><code>{{ p.branch }}</code></td><td>{{ p.forge }}</td><td class="muted">{{ p.created_at or "" }}</td></tr>{% endfor %}</table>
{% else %}<div class="empty">No pull requests yet.</div>{% endif %}
{% endblock %}
"""

_PR = """{% extends "base" %}
{% block title %}Healer · PR {{ p.id }}{% endblock %}
{% block main %}
<h2>PR #{{ p.id }}: {{ p.title }} <span class="badge {{ p.status }}">{{ p.status }}</span>{% if p.draft %} <span class="badge draft">draft</span>{% endif %}</h2>
<dl><dt>branch</dt><dd><code>{{ p.branch }}</code> → <code>{{ p.base }}</code></dd>
<dt>forge</dt><dd>{{ p.forge }}{% if p.url and p.href != p.page %} · <a href="{{ p.url }}">{{ p.url }}</a>{% endif %}</dd>
<dt>remote</dt><dd><code>{{ p.remote }}</code></dd>
{% if p.heal %}<dt>heal</dt><dd><a href="{{ prefix }}/heals/{{ p.heal }}">#{{ p.heal }}</a></dd>{% endif %}</dl>
<article id="body" class="markdown">{{ body_html }}</article>
{% endblock %}
"""

_TASK = """{% extends "base" %}
{% block title %}Healer · {{ t.dag_id }}.{{ t.task_id }}{% endblock %}
{% block main %}
<h2>{{ t.dag_id }}.{{ t.task_id }} <span class="muted">run {{ t.run_id }}</span></h2>
{% if t.pr %}<p>Pull request: <a href="{{ t.pr.href }}">PR #{{ t.pr.id }}: {{ t.pr.title }}</a> <span class="badge {{ t.pr.status }}">{{ t.pr.status }}</span></p>{% endif %}
{% if t.tries %}<table id="task"><tr><th>try</th><th>hand-off</th><th>heal</th><th>root cause</th><th>outcome</th></tr>
{% for i in t.tries %}<tr><td>{{ i.handoff.try_number }}</td><td><span class="badge {{ i.handoff.status }}">{{ i.handoff.status }}</span> <span class="muted">{{ i.handoff.error or "" }}</span></td>
<td>{% if i.heal %}<a href="{{ i.heal.page }}">#{{ i.heal.id }}</a> <span class="badge {{ i.heal.status }}">{{ i.heal.status }}</span>{% else %}<span class="muted">not healed yet</span>{% endif %}</td>
<td>{{ i.heal.root_cause if i.heal else "" }}</td><td>{{ i.heal.reason if i.heal else "" }}</td></tr>{% endfor %}</table>
{% else %}<div class="empty">Healer has no failure of this task instance. Tries that Airflow retries are healed only after the last one fails.</div>{% endif %}
{% endblock %}
"""

_ERROR = """{% extends "base" %}{% block title %}Healer · {{ title }}{% endblock %}
{% block main %}<h2>{{ title }}</h2><p>{{ message }}</p>{% if login %}<p><a href="{{ login }}">Log in to Airflow</a></p>{% endif %}{% endblock %}
"""

_env = jinja2.Environment(
    loader=jinja2.DictLoader({"base": _BASE, "diff": _DIFF, "heals": _HEALS, "heal": _HEAL, "prs": _PRS, "pr": _PR,
                              "task": _TASK, "error": _ERROR, "fleet": dashboard.TEMPLATE}),
    autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True, finalize=_shown)


def render(name: str, **values) -> str:
    """One page as HTML."""
    return _env.get_template(name).render(**values)
