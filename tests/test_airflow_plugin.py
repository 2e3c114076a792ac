"""The Healer plugin on real Airflow: loaded through its entry point, its API and pages served
by a real ``airflow api-server`` on loopback behind authentication, the operator's PR link,
and the pages rendered by headless Chromium (screenshots in tests/artifacts/).
"""

from __future__ import annotations

import importlib
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from airflow_fixtures import ARTIFACTS, CHROMIUM, ApiServer, Browser

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow, pytest.mark.shadow]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str, *, bearer: str | None = None, cookie: str | None = None, accept: str = "application/json"):
    """(status, headers, body) of a GET, without following redirects."""
    headers = {"Accept": accept}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    if cookie:
        headers["Cookie"] = f"_token={cookie}"
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture(scope="module")
def api_server(airflow_env, operator_heal):
    """``airflow api-server`` on a free loopback port (started with the session), reading the
    ledger the operator heal wrote."""
    airflow_env.server = airflow_env.server or ApiServer(airflow_env)  # stopped with the session
    return airflow_env.server.wait()


def test_plugin_loads_through_its_entry_point(airflow_env):
    listing = airflow_env.plugins_listing
    stdout, stderr = listing.communicate(timeout=300)
    assert listing.returncode == 0, stderr[-2000:]
    [plugin] = [p for p in json.loads(stdout) if p["name"] == "healer"]
    assert "healer.airflow.plugin:HealerPlugin" in plugin["source"] and plugin["source"].startswith("healer==")
    assert plugin["listeners"] == ["healer.airflow.listener"]
    assert [(a["url_prefix"], a["name"]) for a in plugin["fastapi_apps"]] == [("/healer", "Healer")]
    assert {v["destination"] for v in plugin["external_views"]} == {"nav", "task_instance"}
    assert any("HealerPRLink" in link for link in plugin["operator_extra_links"])


def test_plugin_switch_turns_it_all_off(monkeypatch):
    import healer.airflow.plugin as plugin_module

    monkeypatch.setenv("AIRFLOW__HEALER__ENABLED", "false")
    try:
        off = importlib.reload(plugin_module).HealerPlugin
        assert (off.listeners, off.fastapi_apps, off.external_views, off.operator_extra_links) == ([], [], [], [])
    finally:
        monkeypatch.setenv("AIRFLOW__HEALER__ENABLED", "true")
        on = importlib.reload(plugin_module).HealerPlugin
    assert on.listeners and on.fastapi_apps


def test_every_route_refuses_an_unauthenticated_request(api_server, operator_heal):
    base = api_server.env.base_url + "/healer"
    heal = _heal_id(api_server)
    routes = ["/api/heals", f"/api/heals/{heal}", "/api/prs", "/api/prs/1", "/api/handoffs", "/api/metrics",
              "/api/task?dag_id=d&run_id=r&task_id=t", "/", "/heals", f"/heals/{heal}", "/prs", "/prs/1",
              "/task?dag_id=d&run_id=r&task_id=t"]
    for route in routes:
        status, _, body = get(base + route)
        assert status == 401 and "revenue_by_category" not in body, (route, status)
    for unprotected in ("/docs", "/redoc", "/openapi.json"):  # FastAPI's own pages are not served at all
        assert get(base + unprotected)[0] == 404, unprotected
    assert get(base + "/api/heals", bearer="not-the-token")[0] == 401
    assert get(base + "/api/heals", cookie="not.a.jwt")[0] in (401, 403)
    status, _, page = get(base + "/heals", accept="text/html")
    assert status == 401 and "Log in to Airflow" in page


def _heal_id(server: ApiServer) -> int:
    status, _, body = get(server.env.base_url + "/healer/api/heals", bearer=server.env.token)
    assert status == 200, body
    [heal] = [h for h in json.loads(body)["heals"] if h["pipeline"] == "revenue_by_category"]
    return heal["id"]


def test_api_answers_the_token_and_an_airflow_user(api_server, operator_heal):
    base = api_server.env.base_url + "/healer/api"
    status, _, body = get(base + "/heals", bearer=api_server.env.token)
    assert status == 200
    [heal] = [h for h in json.loads(body)["heals"] if h["pipeline"] == "revenue_by_category"]
    assert heal["status"] == "proposed" and heal["fixer"] == "rule:renamed_column"
    assert "unit_price" in heal["root_cause"] and heal["pr"]["status"] == "open"
    assert heal["time_to_pr_s"] > 0 and heal["airflow"]["dag_id"] == operator_heal.dag_id
    # the same API for an Airflow user: the API server's JWT, as a header or as the UI's cookie
    jwt = api_server.jwt()
    status, _, detail = get(f"{base}/heals/{heal['id']}", bearer=jwt)
    assert status == 200
    detail = json.loads(detail)
    assert ["order_items", "unit_price", "dropped"] in [r[:3] for r in detail["evidence"]["drift"]]
    assert "+" in detail["diff"] and "item_price" in detail["diff"]
    assert detail["validation"]["checks"] and all(c["passed"] for c in detail["validation"]["checks"])
    assert detail["validation"]["ready"] is True and detail["validation"]["shadow_rows_read"] > 0
    assert detail["validation"]["data_diff"].endswith("rows identical to the last good output")
    status, _, prs = get(base + "/prs", cookie=jwt)
    assert status == 200 and heal["pr"]["id"] in [p["id"] for p in json.loads(prs)["prs"]]
    # the Prometheus endpoint: the same authentication, text that counts this heal
    for credentials in ({"bearer": api_server.env.token}, {"bearer": jwt}):
        status, headers, text = get(base + "/metrics", accept="text/plain", **credentials)
        content_type = {k.lower(): v for k, v in headers.items()}["content-type"]
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4"), text[:300]
        assert 'healer_heals_total{status="proposed",fixer="rule:renamed_column",category=' in text


def test_operator_extra_link_leads_to_the_tasks_pr(api_server, operator_heal):
    jwt = api_server.jwt()
    h = operator_heal
    links_url = (f"{api_server.env.base_url}/api/v2/dags/{h.dag_id}/dagRuns/"
                 f"{urllib.parse.quote(h.failed.run_id, safe='')}/taskInstances/{h.task_id}/links")
    status, _, body = get(links_url, bearer=jwt)
    assert status == 200, body
    link = json.loads(body)["extra_links"]["Healer PR"]
    assert link.startswith(api_server.env.base_url + "/healer/task?")
    status, headers, _ = get(link, cookie=jwt, accept="text/html")
    assert status == 302
    heals = json.loads(get(api_server.env.base_url + "/healer/api/heals", bearer=jwt)[2])["heals"]
    [pr] = [h["pr"] for h in heals if h["pipeline"] == "revenue_by_category"]
    assert headers["location"].endswith(f"/healer/prs/{pr['id']}")
    status, _, page = get(headers["location"], cookie=jwt, accept="text/html")
    assert status == 200 and pr["branch"] in page
    # the task instance's tab (the external view), as the UI fills in its ids
    tab = (f"{api_server.env.base_url}/healer/task?dag_id={h.dag_id}&run_id={urllib.parse.quote(h.failed.run_id, safe='')}"
           f"&task_id={h.task_id}&map_index=-1")
    status, _, page = get(tab, cookie=jwt, accept="text/html")
    assert status == 200 and f"PR #{pr['id']}" in page and "proposed" in page


def test_pr_link_shows_on_callback_and_decorator_tasks_once_handed_off(api_server, operator_heal, monkeypatch):
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, task

    from airflow_fixtures import start_date, sync_dags, task_states
    from healer.airflow import heal_on_failure, self_healing

    def spark_submit():
        raise RuntimeError("spark-submit exited 1")

    h = operator_heal
    monkeypatch.setenv("HEALER_LEDGER_URL", api_server.env.ledger_url)  # the ledger the API server reads
    # hand-offs for a healer DAG no sweep of this session runs: they stay as they are
    callback = heal_on_failure(pipeline="revenue_by_category", repo=str(h.repo), healer_dag_id="healer_links")
    with DAG("link_kinds", schedule=None, start_date=start_date(), catchup=False) as dag:
        PythonOperator(task_id="by_callback", python_callable=spark_submit, on_failure_callback=callback)

        @task(task_id="by_decorator", on_failure_callback=heal_on_failure(healer_dag_id="healer_links"))
        @self_healing(pipeline="no_such_pipeline", repo=str(h.repo))
        def by_decorator():
            return None

        by_decorator()
        PythonOperator(task_id="not_healed", python_callable=spark_submit)
    sync_dags(dag)
    run = dag.test()
    assert task_states(run) == {"by_callback": "failed", "by_decorator": "failed", "not_healed": "failed"}

    jwt = api_server.jwt()
    links = {}
    for task_id in ("by_callback", "by_decorator", "not_healed"):
        url = (f"{api_server.env.base_url}/api/v2/dags/link_kinds/dagRuns/{urllib.parse.quote(run.run_id, safe='')}"
               f"/taskInstances/{task_id}/links")
        status, _, body = get(url, bearer=jwt)
        assert status == 200, body
        links[task_id] = json.loads(body)["extra_links"].get("Healer PR")
    for task_id in ("by_callback", "by_decorator"):
        assert links[task_id].startswith(api_server.env.base_url + "/healer/task?dag_id=link_kinds"), links
        assert f"task_id={task_id}" in links[task_id] and links[task_id].endswith("go=pr")
    assert links["not_healed"] is None  # an ordinary task that handed nothing off has no button
    status, _, page = get(links["by_callback"], cookie=jwt, accept="text/html")
    assert status == 200 and "waiting" in page  # no PR yet: the page says where the hand-off stands


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium is not installed (apt-get install chromium)")
def test_pages_render_in_headless_chromium(api_server, operator_heal):
    base = api_server.env.base_url
    heal = _heal_id(api_server)
    browser = Browser()
    try:
        assert browser.open(f"{base}/healer/heals") == 401  # no Airflow session yet
        assert "Log in to Airflow" in browser.text()
        browser.set_cookie(base, "_token", api_server.jwt())

        assert browser.open(f"{base}/healer/heals") == 200
        text = browser.text()
        assert "revenue_by_category" in text and "proposed" in text and "rule:renamed_column" in text
        assert "PR #" in text
        browser.screenshot(ARTIFACTS / "healer-heals.png")

        assert browser.open(f"{base}/healer/heals/{heal}") == 200
        text = browser.text()
        assert "Schema drift since the last good run" in text and "unit_price" in text
        assert "Validation" in text and "item_price" in text
        assert "Full data against the last good output" in text and "rows identical to the last good output" in text
        browser.screenshot(ARTIFACTS / "healer-heal.png")

        # inside Airflow's own UI: the nav entry opens the page in an iframe
        browser.open(f"{base}/plugin/healer", settle=1.0)
        assert "revenue_by_category" in browser.framed_text("revenue_by_category")
        browser.screenshot(ARTIFACTS / "airflow-healer-view.png")
    finally:
        browser.close()
