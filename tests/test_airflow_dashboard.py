"""The fleet dashboard and the PR page, served by a real ``airflow api-server`` and read by
headless Chromium.

The ledger holds one real heal (the ``operator_heal`` fixture: a HealerPipelineOperator task
fails on a renamed column, the healer DAG heals it and opens a PR) and 22 recorded heals over
four more pipelines, written through the Ledger's public API by tests/fleet_history.py with
that real heal's failed run, outcome and PR as the template. The numbers the page shows are
checked against the ledger, counted here without healer.fleet. The screenshot is saved under
the test's tmp dir and, when the test passes, copied to docs/ for the README.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
from pathlib import Path

import pytest

from airflow_fixtures import CHROMIUM, ApiServer, Browser
from fleet_history import PIPELINES, SHARED_INPUT, expected_counts, plan, write_history

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium is not installed")]

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECRET = "AKIAIOSFODNN7EXAMPLE"
HOSTILE = f"""## Column `<img src=x onerror="window.__pwned=1">` was renamed
| column | sample |
|---|---|
| <script>window.__pwned=2</script> | [see](javascript:window.__pwned=3) |

<iframe src="https://tracker.example/frame"></iframe> ![pixel](https://tracker.example/p.png)
<a href="#" onclick="window.__pwned=4">raw link</a> aws_access_key_id={SECRET}

"""


@pytest.fixture(scope="module")
def server(airflow_env, operator_heal) -> ApiServer:
    """The session's api-server (shared with test_airflow_plugin), reading the ledger the heal wrote."""
    airflow_env.server = airflow_env.server or ApiServer(airflow_env)  # stopped with the session
    return airflow_env.server.wait()


@pytest.fixture(scope="module")
def history(server, operator_heal):
    """The real heal as the template, 22 recorded heals after it; a hostile body on one PR."""
    from healer.ledger import Ledger, heals, prs

    ledger = Ledger(server.env.ledger_url)
    [real] = ledger.select(heals, heals.c.run_id == operator_heal.failure.id)
    assert real["status"] == "proposed" and real["pr_id"], real["reason"]
    template_pr = ledger.get(prs, real["pr_id"])
    today = dt.datetime.now(dt.timezone.utc).date()
    written = write_history(ledger, real, ledger.get_run(real["run_id"]), template_pr, plan(today))
    hostile_pr = max(written.pr_ids.values())
    ledger.update(prs, hostile_pr, body=HOSTILE + (template_pr["body"] or ""))
    return ledger, today, written, hostile_pr


def _page_figures(browser: Browser) -> dict:
    """What the dashboard shows, read from its elements."""
    script = """(() => {
      const by = (sel, key) => Object.fromEntries([...document.querySelectorAll(sel)]
          .map(e => [e.dataset[key], Number(e.textContent)]));
      const rows = sel => [...document.querySelectorAll(sel + ' tr')].slice(1)
          .map(r => [...r.cells].map(c => c.innerText.trim()));
      return {heals: Number(document.getElementById('kpi-heals').textContent),
              status: by('[data-status]', 'status'), prs: by('[data-state]', 'state'),
              p50: document.getElementById('ttp-p50').textContent, p90: document.getElementById('ttp-p90').textContent,
              ttp_n: Number(document.getElementById('ttp-n').textContent),
              tokens: Number(document.getElementById('spend-tokens').textContent),
              broken: rows('#broken-inputs'), pipelines: rows('#pipelines'),
              charts: [...document.querySelectorAll('svg[role=img]')].map(s => s.querySelector('title').textContent),
              fetched: performance.getEntriesByType('resource').map(e => e.name)};
    })()"""
    return json.loads(browser.text(f"JSON.stringify({script})"))


def test_dashboard_shows_what_the_ledger_holds(server, history, tmp_path):
    from healer.airflow.views import duration_words
    from healer.ledger import heals

    ledger, today, written, _ = history
    since = today - dt.timedelta(days=13)
    start = dt.datetime.combine(since, dt.time(), dt.timezone.utc)
    want = expected_counts(ledger, start)
    assert want["heals"] >= 20 and len(want["pipelines"]) >= 3
    base = server.env.base_url
    browser = Browser()
    try:
        browser.set_cookie(base, "_token", server.jwt())
        url = f"{base}/healer/dashboard?since={since}&until={today}"
        assert browser.open(url, settle=0.3) == 200
        shot = browser.screenshot(tmp_path / "healer-fleet.png")
        got = _page_figures(browser)

        assert got["heals"] == want["heals"]
        assert {s: n for s, n in got["status"].items() if n} == want["by_status"]
        assert {s: n for s, n in got["prs"].items() if n} == want["pr_states"]
        waits = want["waits"]  # the heals that opened their PR; duplicates excluded
        assert got["ttp_n"] == len(waits)
        assert got["p50"] == duration_words(statistics.median(waits))
        assert got["p90"] == duration_words(statistics.quantiles(waits, n=10, method="inclusive")[8])
        outcomes = [h["outcome"] or {} for h in ledger.select(heals, heals.c.started_at >= start, limit=10_000)]
        assert got["tokens"] == sum(((o.get("llm") or {}).get("usage") or {}).get("total_tokens", 0) for o in outcomes)
        assert got["tokens"] > 0
        # the shared upstream table broke three pipelines, and ranks first
        top = got["broken"][0]
        assert top[0] == SHARED_INPUT and top[1] == "3" and top[3] == "margin_by_sku, orders_daily, returns_weekly"
        shown = {row[0] for row in got["pipelines"]}
        assert set(PIPELINES) | {"revenue_by_category"} <= shown
        assert len(got["charts"]) == 5 and "Heals per day by outcome" in got["charts"]
        # nothing fetched but the page itself: no CDN, font or image (air-gapped installs)
        assert all(name.startswith(base) for name in got["fetched"]), got["fetched"]

        # filters: one pipeline; a bad date is a 400 that says what and where
        assert browser.open(f"{base}/healer/dashboard?pipeline=customer_ltv&since={since}&until={today}") == 200
        only = _page_figures(browser)
        assert only["heals"] == sum(p.pipeline == "customer_ltv" for p in plan(today)) == 5
        assert [row[0] for row in only["pipelines"]] == ["customer_ltv"]
        assert browser.open(f"{base}/healer/dashboard?since=yesterday") == 400
        assert "since='yesterday': expected a date as YYYY-MM-DD" in browser.text()

        # the nav entry opens it inside Airflow's UI
        browser.open(f"{base}/plugin/healer_fleet", settle=1.0)
        framed = browser.framed_text("Heals per day by outcome")
        assert "Heals per day by outcome" in framed and SHARED_INPUT in framed
    finally:
        browser.close()
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(shot, DOCS / "healer-fleet.png")


def test_pr_page_renders_a_hostile_body_as_safe_html(server, history, tmp_path):
    _, _, _, hostile_pr = history
    base = server.env.base_url
    browser = Browser()
    try:
        browser.set_cookie(base, "_token", server.jwt())
        assert browser.open(f"{base}/healer/prs/{hostile_pr}", settle=0.5) == 200
        browser.screenshot(tmp_path / "healer-pr.png")
        found = json.loads(browser.text("""JSON.stringify((() => {
          const body = document.getElementById('body');
          return {pwned: window.__pwned === undefined ? null : window.__pwned,
                  tags: [...new Set([...body.querySelectorAll('*')].map(e => e.tagName.toLowerCase()))],
                  handlers: [...body.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))
                             .filter(n => n.startsWith('on')),
                  hrefs: [...body.querySelectorAll('a')].map(a => a.getAttribute('href')),
                  text: body.innerText, html: document.documentElement.outerHTML,
                  fetched: performance.getEntriesByType('resource').map(e => e.name)};
        })())"""))
        assert found["pwned"] is None
        assert not {"script", "img", "iframe", "svg"} & set(found["tags"]), found["tags"]
        assert {"h2", "table", "code", "a"} <= set(found["tags"])  # the Markdown is rendered, not shown raw
        assert found["handlers"] == []
        assert all(h.startswith(("https://", "http://", "/")) for h in found["hrefs"]), found["hrefs"]
        assert '<img src=x onerror="window.__pwned=1">' in found["text"]  # the hostile name, as text
        assert "<script>window.__pwned=2</script>" in found["text"]
        assert SECRET not in found["html"]
        assert found["fetched"] == [] or all(n.startswith(base) for n in found["fetched"]), found["fetched"]
    finally:
        browser.close()
