"""Airflow with the Celery executor on this machine: what the fleet tests and `make bench-fleet` run.

    scheduler ─┐                      ┌─ celery worker w1 ─ task processes (pipelines, heals)
    dag-processor ─ PostgreSQL (metadata DB, Healer ledger) ─┤
    api-server (execution API) ─┘     └─ celery worker w2 ─ ...
                       Redis (broker: one db, one queue of its own)

Every component is its own process group, started with the same environment and stopped
(SIGTERM, then SIGKILL) whatever happened. Two PostgreSQL databases are created for the
deployment (``airflow_fleet_<pid>``, ``healer_fleet_<pid>``) and dropped afterwards; the broker
uses a Redis database and a Celery queue named after this process, flushed afterwards.

Nothing here imports Airflow: the processes run it, this process talks to them over the
REST API. That keeps a test session free to use another AIRFLOW_HOME in-process.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PG = "postgres@127.0.0.1:5432"
REDIS = "127.0.0.1:6379"

# The healer DAG of the deployment: its heals run in the `healer` pool (HEALER_POOL_SLOTS), which bounds
# them, not max_parallel_heals; hand-offs start runs through its watcher (triggerer), the schedule sweeps.
HEALER_DAG = '''\
import datetime as dt
from healer.airflow.dag import healer_dag

dag = healer_dag(schedule=dt.timedelta(seconds={sweep_seconds}), max_parallel_heals=16)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _psql(sql: str, db: str = "test") -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


class DeploymentError(RuntimeError):
    """A component did not start, or the deployment did not do what was asked in time."""


@dataclass
class Deployment:
    """A running Celery deployment (see ``start``)."""

    home: Path
    port: int
    password: str
    env: dict[str, str]
    ledger_url: str
    airflow_db: str
    ledger_db: str
    redis_db: int
    queue: str
    concurrency: int = 4  # task slots of each worker (pipelines and heals; the pool bounds heals)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _jwt: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dags(self) -> Path:
        return self.home / "dags"

    # -- processes ------------------------------------------------------------------------
    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.home / "logs" / f"{name}.log").open("a")
        proc = subprocess.Popen([sys.executable, "-m", "airflow", *args], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.home)
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str, concurrency: int | None = None) -> subprocess.Popen:
        # serving logs would bind the same port in every worker of this machine: skipped
        return self.spawn(name, "celery", "worker", "-H", f"{name}@%h", "-q", self.queue,
                          "-c", str(concurrency or self.concurrency),
                          "--skip-serve-logs", "--without-gossip", "--without-mingle")

    def stop(self, name: str, kill: bool = False) -> None:
        """Stop one component's whole process group (its task processes too)."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            proc.wait(timeout=5 if kill else 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def group_of(self, pid: int) -> str | None:
        """The component whose process group a process (a task's) belongs to."""
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return None
        return next((name for name, p in self.procs.items() if p.pid == pgid), None)

    def ran_on(self, task_id: str) -> set[str]:
        """The workers whose logs show they executed a task of this id."""
        return {path.stem for path in (self.home / "logs").glob("w*.log")
                if f"task_id={task_id}/" in path.read_text(errors="replace")}

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.home / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise DeploymentError(f"{name} exited {proc.returncode}:\n{self.log(name)}")

    # -- the REST API ---------------------------------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        if self._jwt is None:
            self._jwt = self._token()
        req = urllib.request.Request(f"{self.base_url}/api/v2{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self._jwt}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            raise DeploymentError(f"{method} {path}: HTTP {exc.code} {exc.read()[:500]!r}") from None

    def _token(self) -> str:
        body = json.dumps({"username": "admin", "password": self.password}).encode()
        req = urllib.request.Request(f"{self.base_url}/auth/token", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)["access_token"]

    def wait_for_dags(self, *dag_ids: str, timeout: float = 240) -> None:
        """Until the dag-processor has parsed these DAGs into the database."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                found = {d["dag_id"] for d in self.api("GET", "/dags?limit=100")["dags"]}
            except (DeploymentError, OSError):
                found = set()
            if set(dag_ids) <= found:
                return
            if time.monotonic() > deadline:
                errors = self.api("GET", "/importErrors").get("import_errors", [])
                raise DeploymentError(f"DAGs {sorted(set(dag_ids) - found)} not parsed in {timeout:.0f}s; "
                                      f"import errors: {errors}\n{self.log('dag-processor')}")
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns?limit=200")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")["task_instances"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise DeploymentError(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f}s")
            self.check_alive()
            time.sleep(2)

    def pool(self, name: str) -> dict | None:
        try:
            return self.api("GET", f"/pools/{name}")
        except DeploymentError:
            return None


def start(base: Path, *, workers: int = 2, concurrency: int = 4, healer_env: dict[str, str] | None = None,
          pool_slots: int = 2, sweep_seconds: int = 600, timeout: float = 600) -> Deployment:
    """Start the deployment under ``base``; stop it with ``stop_all`` (also when this raises)."""
    tag = f"{os.getpid()}_{secrets.token_hex(2)}"
    home = base / "airflow-home"
    (home / "dags").mkdir(parents=True)
    (home / "logs").mkdir()
    port, password = free_port(), secrets.token_urlsafe(12)
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    (home / "dags" / "healer_dag.py").write_text(HEALER_DAG.format(sweep_seconds=sweep_seconds))
    airflow_db, ledger_db = f"airflow_fleet_{tag}", f"healer_fleet_{tag}"
    redis_db = 1 + os.getpid() % 15  # db 0 is everyone's default; the queue name keeps deployments apart too
    queue = f"healer_fleet_{tag}"
    metadata = f"postgresql+psycopg2://{PG}/{airflow_db}"
    ledger_url = f"postgresql+psycopg2://{PG}/{ledger_db}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEALER_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS}/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{PG}/{airflow_db}",
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        # a killed worker's task is failed (and its pool slot freed) within a minute, not five
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__HEALER__ENABLED": "True",
        "HEALER_LEDGER_URL": ledger_url,
        "HEALER_HOME": str(base / "healer-home"),
        "HEALER_POOL_SLOTS": str(pool_slots),
        "HEALER_API_TOKEN": secrets.token_urlsafe(24),
        **(healer_env or {}),
    })
    d = Deployment(home=home, port=port, password=password, env=env, ledger_url=ledger_url, airflow_db=airflow_db,
                   ledger_db=ledger_db, redis_db=redis_db, queue=queue, concurrency=concurrency)
    try:
        _psql(f'CREATE DATABASE "{airflow_db}"')
        _psql(f'CREATE DATABASE "{ledger_db}"')
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, cwd=home,
                                 capture_output=True, text=True, timeout=timeout)
        if migrate.returncode != 0:
            raise DeploymentError(f"airflow db migrate exited {migrate.returncode}:\n{migrate.stdout[-2000:]}"
                                  f"{migrate.stderr[-2000:]}")
        d.spawn("api-server", "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1")
        d.spawn("scheduler", "scheduler")
        d.spawn("dag-processor", "dag-processor")
        d.spawn("triggerer", "triggerer", "--skip-serve-logs")  # the healer DAG's watcher of hand-offs
        for i in range(1, workers + 1):
            d.start_worker(f"w{i}", concurrency)
        _wait_healthy(d, timeout)
        return d
    except BaseException:
        stop_all(d)
        raise


def _wait_healthy(d: Deployment, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        d.check_alive()
        try:
            with urllib.request.urlopen(f"{d.base_url}/api/v2/monitor/health", timeout=5) as resp:
                health = json.load(resp)
            if health.get("scheduler", {}).get("status") == "healthy":
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise DeploymentError(f"the deployment was not healthy in {timeout:.0f}s:\n{d.log('api-server')}\n"
                                  f"{d.log('scheduler')}")
        time.sleep(1)


def stop_all(d: Deployment, keep_logs: Path | None = None) -> None:
    """Stop every component, drop the databases, flush the broker's db; never raises."""
    for name in list(d.procs):
        try:
            d.stop(name)
        except Exception:
            pass
    if keep_logs is not None:
        shutil.copytree(d.home / "logs", keep_logs, dirs_exist_ok=True)
    for db in (d.airflow_db, d.ledger_db):
        try:
            _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        except Exception as exc:
            print(f"fleet deployment: could not drop {db}: {exc}", file=sys.stderr)
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, db=d.redis_db).delete(d.queue, f"{d.queue}\x06\x16")
    except Exception:
        pass
