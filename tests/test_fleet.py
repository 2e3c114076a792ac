"""The fleet's figures (healer.fleet), its SVG charts (healer.charts) and the PR body as
sanitised HTML (healer.markdown_html), without Airflow.

The ledger rows are recorded history written through the Ledger's public API by
tests/fleet_history.py, with a real heal as the template: tests/fixtures/fleet/real_heal.json
is the heals row, failed run and PR that ``healer demo`` wrote (a rule fix of a renamed
column), as read back from its ledger.
"""

from __future__ import annotations

import datetime as dt
import re
from statistics import median

import pytest

from fleet_history import PIPELINES, SHARED_INPUT, expected_counts, load_template, plan, write_history
from healer import charts, fleet
from healer.errors import ConfigError
from healer.ledger import Ledger, prs
from healer.markdown_html import render, safe_href
from test_lease import pg_url  # noqa: F401 (a fresh PostgreSQL database, a fixture)

TODAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """One ledger of recorded history for the module's tests, which only read it."""
    ledger = Ledger(f"sqlite:///{tmp_path_factory.mktemp('fleet') / 'ledger.db'}")
    heal, run, pr = load_template()
    planned = plan(TODAY)
    return ledger, planned, write_history(ledger, heal, run, pr, planned)


def test_figures_match_the_ledger(history):
    ledger, planned, written = history
    f = fleet.FleetFilter.parse(since=str(TODAY - dt.timedelta(days=13)), until=str(TODAY))
    got = fleet.figures(ledger, f)
    want = expected_counts(ledger, f.start)
    assert got.heals == want["heals"] == len(planned) == 22
    for status, n in want["by_status"].items():
        assert got.status_total(status) == n, status
    assert {s: n for s, n in got.prs.counts if n} == want["pr_states"]
    assert got.prs.count("merged") == 5 and got.prs.count("closed") == 2 and got.prs.count("open") == 4
    assert got.prs.decided_merge_rate == pytest.approx(5 / 7)
    # a duplicate's wait is not a time to PR: 11 PRs opened, by 11 of the 13 proposed heals
    assert got.time_to_pr_all.heals == len(want["waits"]) == 11
    assert got.time_to_pr_all.p50_s == pytest.approx(median(want["waits"])) == 66.0
    assert got.time_to_pr_all.p90_s == pytest.approx(150.0)  # 95.0 + (212 - 95) ... interpolated rank 9 of 0..10
    # per day: the day of four heals holds three PRs (41, 58, 95 s), the duplicate not counted
    day9 = next(p for p in got.time_to_pr if p.start == TODAY - dt.timedelta(days=9))
    assert (day9.heals, day9.p50_s) == (3, 58.0)
    # spend: the outcome's model usage, per day
    assert got.spend_tokens == sum(p.tokens for p in planned) == 65_200
    assert got.spend_cost_usd == pytest.approx(sum(p.cost_usd for p in planned))
    day8 = next(d for d in got.spend if d.day == TODAY - dt.timedelta(days=8))
    assert (day8.heals, day8.tokens) == (2, 15_500)


def test_the_shared_upstream_input_ranks_first(history):
    ledger, planned, _ = history
    got = fleet.figures(ledger, fleet.FleetFilter.parse(since=str(TODAY - dt.timedelta(days=13)), until=str(TODAY)))
    top = got.broken_inputs[0]
    assert top.location == SHARED_INPUT
    assert top.pipelines == ("margin_by_sku", "orders_daily", "returns_weekly")
    drifted = [p for p in planned if p.drift_input and PIPELINES[p.pipeline][1][p.drift_input] == SHARED_INPUT]
    assert top.heals == len(drifted) == 6
    assert all(len(b.pipelines) == 1 for b in got.broken_inputs[1:])
    assert set(top.changes) == {"unit_price dropped", "item_price added"}


def test_filters_by_pipeline_repo_and_dates(history):
    ledger, planned, _ = history
    only = fleet.figures(ledger, fleet.FleetFilter.parse(pipeline="customer_ltv", since="2026-11-01", until=str(TODAY)))
    assert only.heals == sum(p.pipeline == "customer_ltv" for p in planned) == 5
    assert [p.pipeline for p in only.pipelines] == ["customer_ltv"]
    finance_only = fleet.FleetFilter.parse(repo="/repos/finance", since="2026-11-01", until=str(TODAY))
    finance = fleet.figures(ledger, finance_only)
    assert finance.heals == sum(PIPELINES[p.pipeline][0] == "/repos/finance" for p in planned) == 10
    assert finance.prs.total == 4  # returns_weekly 3, customer_ltv 1
    last3 = fleet.figures(ledger, fleet.FleetFilter.parse(since=str(TODAY - dt.timedelta(days=2)), until=str(TODAY)))
    assert last3.heals == sum(p.failed_at.date() >= TODAY - dt.timedelta(days=2) for p in planned) == 7
    assert len(last3.outcomes) == 3 and last3.bucket_days == 1
    long = fleet.FleetFilter.parse(since="2026-01-01", until=str(TODAY))
    assert fleet.figures(ledger, long).bucket_days == 7


def test_pipeline_table_shows_each_pipelines_state(history):
    ledger, planned, written = history
    got = {p.pipeline: p for p in fleet.figures(ledger, fleet.FleetFilter.parse(today=TODAY)).pipelines}
    assert set(got) == set(PIPELINES)
    orders = got["orders_daily"]
    last = max(i for i, p in enumerate(planned) if p.pipeline == "orders_daily")
    assert orders.last_heal_id == written.heal_ids[last] and orders.last_heal_status == "declined"
    assert orders.last_failure_id == written.run_ids[last]
    open_pr = ledger.select(prs, prs.c.pipeline == "orders_daily", prs.c.status == "open")[0]
    assert orders.open_pr_id == open_pr["id"]
    assert got["customer_ltv"].open_pr_id is None  # its only PR was merged


@pytest.mark.parametrize("since, until, words", [
    ("2026-13-01", None, "since='2026-13-01': expected a date as YYYY-MM-DD"),
    ("2026-11-20", "2026-11-01", "since=2026-11-20 is after until=2026-11-01"),
    ("2020-01-01", "2026-01-01", "at most 366"),
])
def test_bad_filters_say_what_and_where(since, until, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        fleet.FleetFilter.parse(since=since, until=until)


def test_percentile_interpolates_between_ranks():
    assert fleet.percentile([], 50) is None
    assert fleet.percentile([7.0], 90) == 7.0
    assert fleet.percentile([1, 2, 3, 4], 50) == 2.5
    assert fleet.percentile([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 90) == pytest.approx(91.0)


def test_charts_are_escaped_svg_with_titles():
    hostile = '<script>alert(1)</script>"'
    svg = charts.bars(hostile, ["a", "b"], [charts.Series(hostile, (3, None), "#123456")], limit=5.0,
                      limit_label=hostile)
    assert "<script" not in svg and "&lt;script&gt;" in svg and svg.startswith("<svg")
    assert svg.count("<rect") == 1 and "a · &lt;script&gt;alert(1)&lt;/script&gt;&#34;: 3" in svg
    line = charts.lines("t", ["a", "b", "c"], [charts.Series("p50", (1.0, None, 4.0), "#000")])
    assert line.count("<circle") == 2 and "<polyline" not in line  # a gap: no line across it
    assert charts.nice_ceiling(0) == 1 and charts.nice_ceiling(7) == 10 and charts.nice_ceiling(212) == 250


HOSTILE_BODY = """## Healer fixed `orders`
| column | value |
|---|---|
| <script>alert('col')</script> | <img src=x onerror=alert(1)> |
| `</code><svg onload=alert(2)>` | [click](javascript:alert(3)) |

[tab](java&#09;script:alert(4)) [enc](JaVaScRiPt%3Aalert(5)) [data](data:text/html;base64,PHNjcmlwdD4=)
[ok](https://github.com/acme/sales/pull/7) ![pixel](https://tracker.example/p.png)
<iframe src="https://evil.example"></iframe><a href="javascript:alert(6)" onclick="x()">raw</a>
<div style="background:url(javascript:alert(7))">styled</div>
"""


def test_pr_body_renders_as_sanitised_html():
    html = str(render(HOSTILE_BODY))
    tags = set(re.findall(r"<([a-zA-Z0-9]+)", html))
    assert tags <= {"h2", "code", "table", "thead", "tbody", "tr", "th", "td", "p", "a"}, tags
    for attr in re.findall(r"<[a-z0-9]+([^>]*)>", html):
        assert not re.search(r"\bon\w+=", attr) and "style=\"background" not in attr, attr
    hrefs = re.findall(r'<a href="([^"]*)"', html)  # real links; the raw <a> of the body is text
    # an image becomes a plain link: nothing is fetched when the page is viewed
    assert hrefs == ["https://github.com/acme/sales/pull/7", "https://tracker.example/p.png"], hrefs
    assert "&lt;a href=&quot;javascript:alert(6)&quot;" in html or '&lt;a href="javascript:alert(6)"' in html
    assert "javascript:" not in "".join(hrefs) and "<img" not in html and "<iframe" not in html
    # what the body said stays readable, as text
    assert "&lt;script&gt;alert(&#x27;col&#x27;)&lt;/script&gt;" in html or "&lt;script&gt;alert('col')" in html
    assert "<h2>Healer fixed <code>orders</code></h2>" in html and "<th>column</th>" in html
    assert 'rel="nofollow noopener noreferrer"' in html


def test_a_reports_folds_become_headings_and_other_html_stays_text():
    from healer.report import _details  # the fold exactly as the PR report writes it

    folded = "\n".join(_details("Traceback", "```\nline 1\n```"))
    html = str(render(folded + "\n<details><summary><b onclick=x()>hi</b></summary>\n"))
    assert "<p><strong>Traceback</strong></p>" in html and "details" not in html
    assert "<pre><code>line 1\n</code></pre>" in html
    assert "<strong>&lt;b onclick=x()&gt;hi&lt;/b&gt;</strong>" in html  # the summary's own tags are text


def test_safe_href_refuses_scripts_however_spelled():
    for url in ("javascript:alert(1)", " JAVASCRIPT:x", "java\tscript:x", "javascript&#58;x", "JaVa%09script:x",
                "vbscript:x", "data:text/html,x", "//evil.example/x", "file:///etc/passwd"):
        assert not safe_href(url), url
    for url in ("https://example.com/a:b", "http://x", "mailto:a@example.com", "/healer/heals/1", "#top"):
        assert safe_href(url), url


def test_template_is_a_real_heal():
    heal, run, pr = load_template()
    assert heal["status"] == "proposed" and heal["outcome"]["fixer"].startswith("rule:")
    assert any(d.get("dropped") for d in heal["outcome"]["evidence"]["diffs"])
    assert run.status == "failed" and pr["heal_id"] == heal["id"]


def test_governance_shows_mode_budget_pause_verification_and_audited_spend(ledger, tmp_path, monkeypatch):
    """Policy mode and budget from real policy files, a pause from the circuit breaker, verification
    and model requests from the audit trail: each read through its governance module."""
    from healer.governance import audit, breaker

    repo = tmp_path / "sales"
    repo.mkdir()
    (repo / "healer.yml").write_text("healing:\n  mode: draft\n  budgets: {model_cost_usd_per_day: 0.5}\n"
                                     "pipelines: {}\n")
    org = tmp_path / "org-policy.yml"
    org.write_text("healing:\n  budgets:\n    model_cost_usd_per_day: 2.0\n    model_tokens_per_day: 400000\n")
    monkeypatch.setenv("HEALER_POLICY_FILE", str(org))
    heal, run, pr = load_template()
    planned = [p for p in plan(TODAY) if p.pipeline in ("orders_daily", "margin_by_sku")][:4]
    monkeypatch.setitem(PIPELINES, "orders_daily", (str(repo), PIPELINES["orders_daily"][1]))
    written = write_history(ledger, heal, run, pr, planned)
    breaker.trip(ledger, pipeline="margin_by_sku", reason="3 Healer PRs closed without merge")
    audit.record(ledger, written.heal_ids[0], audit.Action.VERIFICATION, state="verified", run=1)
    audit.record(ledger, written.heal_ids[1], audit.Action.VERIFICATION, state="unverified")
    audit.record(ledger, written.heal_ids[1], audit.Action.VERIFICATION, state="regressed", run=2)  # newest wins
    for tokens in (1000, 500):  # a heal with audited requests counts them, not its outcome's total
        audit.record(ledger, written.heal_ids[0], audit.Action.MODEL_REQUEST, model="claude-sonnet-4-5",
                     input_tokens=tokens, output_tokens=100, cost_usd=0.01)

    today = dt.datetime.now(dt.timezone.utc).date()
    got = fleet.figures(ledger, fleet.FleetFilter.parse(since=str(TODAY - dt.timedelta(days=13)), until=str(today)))
    rows = {p.pipeline: p for p in got.pipelines}
    assert rows["orders_daily"].policy_mode == "draft (healer.yml:healing.mode)"
    assert rows["margin_by_sku"].policy_mode is None  # its repo is not on this machine
    assert rows["margin_by_sku"].paused and "closed without merge" in rows["margin_by_sku"].pause_reason
    assert not rows["orders_daily"].paused
    assert dict(got.verification.counts) == {"verified": 1, "regressed": 1, "unverified": 0}
    assert got.budget == fleet.Budget(cost_usd=2.0, tokens=400000,
                                      source=f"{org}:healing.budgets.model_cost_usd_per_day")
    assert got.spend_tokens == 1700 and got.spend_cost_usd == pytest.approx(0.02)  # audited today, not day 9
    by_repo = fleet.figures(ledger, fleet.FleetFilter.parse(repo=str(repo), since="2026-11-01", until=str(today)))
    assert by_repo.budget.cost_usd == 0.5 and by_repo.budget.source.startswith("healer.yml:")

    from healer.airflow import dashboard, pages

    page = pages.render("fleet", prefix="/healer", user="admin", **dashboard.values(got))
    assert f"budget $2.00 per day ({org}:healing.budgets.model_cost_usd_per_day)" in page
    assert page.count('stroke-dasharray="6 4"') == 1  # the budget's line across the spend chart
    assert "draft (healer.yml:healing.mode)" in page and "3 Healer PRs closed without merge" in page
    assert 'data-verification="regressed">1<' in page


@pytest.mark.postgres
def test_figures_are_the_same_on_postgresql(history, pg_url):
    """The JSON paths the figures extract in the database read the same on PostgreSQL as on SQLite."""
    heal, run, pr = load_template()
    pg = Ledger(pg_url)
    write_history(pg, heal, run, pr, plan(TODAY))
    f = fleet.FleetFilter.parse(since=str(TODAY - dt.timedelta(days=13)), until=str(TODAY))
    on_pg, on_sqlite = fleet.figures(pg, f), fleet.figures(history[0], f)
    assert on_pg.heals == on_sqlite.heals == 22
    assert (on_pg.outcomes, on_pg.time_to_pr, on_pg.time_to_pr_all, on_pg.prs, on_pg.spend) == \
        (on_sqlite.outcomes, on_sqlite.time_to_pr, on_sqlite.time_to_pr_all, on_sqlite.prs, on_sqlite.spend)
    assert on_pg.broken_inputs == on_sqlite.broken_inputs and on_pg.broken_inputs[0].location == SHARED_INPUT
    assert [p.pipeline for p in on_pg.pipelines] == [p.pipeline for p in on_sqlite.pipelines]


def test_dashboard_routes_need_credentials_and_say_what_is_wrong(history, monkeypatch):
    """The plugin's app in process (FastAPI's test client): the page and /api/fleet refuse a
    request without credentials, answer the API token, and a bad filter is a 400 naming it."""
    from fastapi.testclient import TestClient

    from healer.airflow.api import create_app

    ledger = history[0]
    monkeypatch.setenv("HEALER_LEDGER_URL", ledger.url)
    monkeypatch.setenv("HEALER_API_TOKEN", "fleet-test-token")
    client = TestClient(create_app())
    query = f"since={TODAY - dt.timedelta(days=13)}&until={TODAY}"
    for route in (f"/dashboard?{query}", f"/api/fleet?{query}"):
        refused = client.get(route)
        assert refused.status_code == 401 and "orders_daily" not in refused.text, route
    auth = {"Authorization": "Bearer fleet-test-token"}
    answer = client.get(f"/api/fleet?{query}", headers=auth)
    assert answer.status_code == 200
    body = answer.json()
    assert sum(n for day in body["outcomes"] for _, n in day["counts"]) == 22
    assert body["broken_inputs"][0]["location"] == SHARED_INPUT
    page = client.get(f"/dashboard?{query}", headers={**auth, "Accept": "text/html"})
    assert page.status_code == 200 and '<b class="figure" id="kpi-heals">22</b>' in page.text
    bad = client.get("/api/fleet?until=2026-02-30", headers=auth)
    assert bad.status_code == 400
    assert bad.json()["detail"] == "dashboard filter until='2026-02-30': expected a date as YYYY-MM-DD"
