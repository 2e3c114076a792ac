"""Real Airflow for the tests: one migrated Airflow home per session, DAGs in its database,
an API server on loopback, and headless Chromium driven over the DevTools protocol.

Airflow reads AIRFLOW_HOME when it is first imported, so nothing here imports it at module
level: the ``airflow_env`` fixture sets the environment first.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
START = "2024-01-01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AirflowEnv:
    home: Path
    port: int
    password: str
    token: str  # HEALER_API_TOKEN
    ledger_url: str
    dags: dict = field(default_factory=dict)  # the DAGs of dags/, as parsed into the database
    server: "ApiServer | None" = None  # started early when the session has tests that need it
    plugins_listing: "subprocess.Popen | None" = None  # `airflow plugins -o json`, likewise

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def airflow_env(request, tmp_path_factory):
    """A migrated Airflow (SQLite) whose dags folder is the repo's dags/, the plugin enabled.

    ``airflow db migrate`` runs in a subprocess while the test session's Spark starts.
    """
    if "airflow" in sys.modules:
        pytest.fail("airflow was imported before the test session set AIRFLOW_HOME; import it inside tests")
    home = tmp_path_factory.mktemp("airflow-home")
    port, password = free_port(), secrets.token_urlsafe(12)
    env = AirflowEnv(home=home, port=port, password=password, token=secrets.token_urlsafe(24),
                     ledger_url=f"sqlite:///{home / 'healer-ledger.db'}")
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__BASE_URL": env.base_url,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__HEALER__ENABLED": "True",
        "HEALER_STORM_WINDOW": "0",  # one failure at a time here: no storm to settle (test_celery_storm has them)
    }
    started = time.monotonic()
    patch = pytest.MonkeyPatch()
    for key, value in settings.items():
        patch.setenv(key, value)
    try:
        migrate = subprocess.Popen([sys.executable, "-m", "airflow", "db", "migrate"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        request.getfixturevalue("spark")  # started meanwhile: the DAGs run in this process and use it
        output, _ = migrate.communicate(timeout=600)
        assert migrate.returncode == 0, output[-3000:]
        if any(item.path.name in ("test_airflow_plugin.py", "test_airflow_dashboard.py")
               for item in request.session.items):
            # both take seconds to start: let them while the heal tests run
            env.server = ApiServer(env)
            env.plugins_listing = subprocess.Popen([sys.executable, "-m", "airflow", "plugins", "-o", "json"],
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        env.dags = sync_dags_folder()
        print(f"\nairflow_env: migrated and DAGs parsed in {time.monotonic() - started:.1f}s", file=sys.stderr)
        yield env
    finally:
        if env.server is not None:
            env.server.stop()
        if env.plugins_listing is not None and env.plugins_listing.poll() is None:
            env.plugins_listing.kill()
        patch.undo()


def sync_dags_folder() -> dict:
    """Parse dags/ into the database, as the DAG processor would; the DAGs by id."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = BundleDagBag(dag_folder=DAGS, bundle_path=DAGS, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return dict(bag.dags)


def sync_dags(*dags) -> None:
    """Serialize DAGs built in a test into the database, so dag.test() and triggers find them."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(include_examples=False, collect_dags=False)
    for dag in dags:
        bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def dag_runs(dag_id: str) -> list[dict]:
    """Runs of a DAG in the metadata database, oldest first."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id)).all()
        return [{"run_id": r.run_id, "conf": dict(r.conf or {}), "state": str(r.state), "run_type": str(r.run_type)}
                for r in rows]


def task_states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id + ("" if ti.map_index < 0 else f"[{ti.map_index}]"): str(ti.state)
                for ti in dag_run.get_task_instances(session=session)}


# -- the API server ----------------------------------------------------------------------

class ApiServer:
    """``airflow api-server`` on loopback, started in the background and awaited on first use."""

    def __init__(self, env: AirflowEnv):
        self.env = env
        self.log = env.home / "api-server.log"
        # the session's ledger, whatever a test's ``ledger`` fixture points HEALER_* at meanwhile
        environ = {**os.environ, "HEALER_LEDGER_URL": env.ledger_url, "HEALER_API_TOKEN": env.token}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(env.port), "-w", "1"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True, env=environ)
        self._ready = False

    def wait(self, timeout: float = 180) -> "ApiServer":
        deadline = time.monotonic() + timeout
        while not self._ready:
            if self.proc.poll() is not None:
                raise AssertionError(f"api-server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.env.base_url}/api/v2/monitor/health", timeout=2):
                    self._ready = True
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"api-server not up in {timeout}s:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.5)
        return self

    def jwt(self) -> str:
        """An Airflow user's token, from the auth manager's login endpoint."""
        body = json.dumps({"username": "admin", "password": self.env.password}).encode()
        req = urllib.request.Request(f"{self.env.base_url}/auth/token", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)["access_token"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)  # the server and its uvicorn worker, by our own process group
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)


# -- headless Chromium over the DevTools protocol -----------------------------------------

class Browser:
    """Headless Chromium driven over CDP: set a cookie, open a page, read its text, screenshot it."""

    def __init__(self):
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="healer-chromium-")
        self.proc = subprocess.Popen(
            [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             "--window-size=1400,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            page = next(t for t in json.load(resp) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self._id = 0
        self.call("Page.enable")
        self.call("Network.enable")

    def call(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def set_cookie(self, url: str, name: str, value: str) -> None:
        assert self.call("Network.setCookie", name=name, value=value, url=url, httpOnly=True).get("success")

    def open(self, url: str, settle: float = 0.0) -> int:
        """Navigate and wait for the load event; the HTTP status of the document."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": "Page.navigate", "params": {"url": url}}))
        status, loaded, deadline = None, False, time.monotonic() + 60
        while not loaded:
            msg = json.loads(self.ws.recv(timeout=max(1.0, deadline - time.monotonic())))
            if msg.get("method") == "Network.responseReceived" and msg["params"].get("type") == "Document":
                status = msg["params"]["response"]["status"]
            loaded = msg.get("method") == "Page.loadEventFired"
        time.sleep(settle)
        return status

    def text(self, expression: str = "document.body.innerText") -> str:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value") or ""

    def framed_text(self, expect: str, tries: int = 60) -> str:
        """The text of the page's iframe (a plugin view inside Airflow's UI), once it shows ``expect``
        or after ``tries`` half-second waits."""
        framed = ""
        for _ in range(tries):
            framed = self.text("(() => { const f = document.querySelector('iframe');"
                               " return f && f.contentDocument ? f.contentDocument.body.innerText : ''; })()")
            if expect in framed:
                break
            time.sleep(0.5)
        return framed

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(timeout=20)
            shutil.rmtree(self.profile, ignore_errors=True)


# -- pipelines as Airflow tasks -----------------------------------------------------------

def start_date():
    import datetime as dt

    return dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def operator_dag(dag_id: str, repo: Path, pipeline: str, **default_args):
    """A DAG with one HealerPipelineOperator task (task id = the pipeline's name)."""
    from airflow.sdk import DAG

    from healer.airflow import HealerPipelineOperator

    with DAG(dag_id, schedule=None, start_date=start_date(), catchup=False, default_args=default_args) as dag:
        HealerPipelineOperator(task_id=pipeline, pipeline=pipeline, repo=str(repo))
    return dag




@dataclass
class OperatorHeal:
    """The operator path, end to end, as it happened (see the ``operator_heal`` fixture)."""

    repo: Path
    dag_id: str
    task_id: str
    good: object  # the successful DagRun
    failed: object  # the failed DagRun
    failure: object  # the failed run's ledger record
    handoffs_before: list  # hand-offs right after the failure, before the healer ran
    triggered: list  # healer DAG runs the failing task created (none: it records and returns)
    healer_run: object  # the healer DagRun that healed it: a plain `dags test healer`, as a person would
    healer_states: dict
    seconds: dict  # how long each step took, for the test's report


@pytest.fixture(scope="session")
def operator_heal(airflow_env, spark, retail_data, tmp_path_factory) -> OperatorHeal:
    """A HealerPipelineOperator task fails on drifted data, the callback hands it off, a plain
    run of the healer DAG (no conf) heals it. Session-wide: the plugin's pages and API show it."""
    from healer.airflow import heal_on_failure, queue
    from healer.ledger import Ledger
    from pipelines import drift

    seconds, t0 = {}, time.monotonic()

    def lap(step):
        nonlocal t0
        seconds[step], t0 = round(time.monotonic() - t0, 1), time.monotonic()

    from conftest import make_pipeline_repo  # conftest loads this module as a plugin: import late

    repo = make_pipeline_repo(tmp_path_factory.mktemp("operator-heal"), retail_data)
    dag = operator_dag("pipeline_operator", repo, "revenue_by_category", on_failure_callback=heal_on_failure)
    sync_dags(dag)
    lap("setup")
    with pytest.MonkeyPatch.context() as patch:  # the session's ledger, which the API server reads
        patch.setenv("HEALER_LEDGER_URL", airflow_env.ledger_url)
        good = dag.test()
        lap("good run")
        drift.rename_column(repo / "data", "order_items", "unit_price", "item_price")
        before = {r["run_id"] for r in dag_runs("healer")}
        failed = dag.test()
        lap("failed run")
        ledger = Ledger(airflow_env.ledger_url)
        failure = ledger.last_failure("revenue_by_category", repo=str(repo.resolve()))
        handoffs = queue.for_run(ledger, failure.id) if failure else []
        triggered = [r for r in dag_runs("healer") if r["run_id"] not in before]
        healer_run = airflow_env.dags["healer"].test() if failure else None
        lap("healer run")
    return OperatorHeal(repo=repo, dag_id=dag.dag_id, task_id="revenue_by_category", good=good, failed=failed,
                        failure=failure, handoffs_before=handoffs, triggered=triggered, healer_run=healer_run,
                        healer_states=task_states(healer_run) if healer_run else {}, seconds=seconds)
