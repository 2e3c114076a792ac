"""A real Spark standalone cluster on this machine: one master and one worker, from pyspark's jars.

    with StandaloneCluster.start(base_dir, shared_dir) as cluster:
        env = cluster.client_env(scratch_uri)   # HEALER_SPARK_MASTER, SPARK_CONF_DIR, ...

Used by the cluster tests (``tests/cluster_fixtures.py``) and by ``benchmarks.cluster_cost``.
The worker (and so every executor it launches) runs under bubblewrap with a private ``/tmp``
and sees only the system, the Python environment, Java, its own directory and ``shared_dir``
(read-write, at the same path): a path only the driver can see — its ``/tmp``, a test's
``tmp_path`` — fails loudly on the cluster, as it would on a real one. The network is shared
(executors connect back to the driver on 127.0.0.1). Small on purpose: the worker offers 1
core and 1 GiB, executors take 512 MiB, the daemons 256 MiB each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """The cluster did not start; the message names the daemon and ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the process that started it dies (a test run killed
    by a timeout never runs its fixtures' teardown; the daemons must not outlive it)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _daemon_env(base: Path, **extra: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "JAVA_HOME") if k in os.environ}
    env.update({
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "localhost",
        "SPARK_DAEMON_MEMORY": "256m",
        "SPARK_LOG_DIR": str(base / "logs"),
        "SPARK_CONF_DIR": str(base / "daemon-conf"),  # an empty one: no stray spark-defaults.conf
        "PYSPARK_PYTHON": sys.executable,
        "HOME": str(base),
    })
    env.update(extra)
    return env


def worker_bwrap(base: Path, shared: Path, env: dict[str, str]) -> list[str]:
    """bubblewrap for the worker: a private /tmp, only what it needs, the shared dir read-write.

    Unlike a sandbox worker it keeps the network (executors talk to the driver and the master)
    and is not a security boundary: it stands for another machine.
    """
    from healer.sandbox.isolation import _system_mounts, runtime_dirs

    args = [shutil.which("bwrap") or "bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc",
            "--die-with-parent", *_system_mounts()]
    for d in runtime_dirs() + [str(spark_home())]:
        if not d.startswith("/usr/"):
            args += ["--ro-bind", d, d]
    args += ["--bind", str(base), str(base), "--bind", str(shared), str(shared), "--chdir", str(base), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + ["--"]


@dataclass
class StandaloneCluster:
    base: Path  # logs, the worker's directory, the clients' Spark conf
    shared: Path  # the only host directory the worker shares with the driver
    master_url: str
    master_ui: str
    procs: tuple[subprocess.Popen, ...] = ()

    @classmethod
    def start(cls, base: Path, shared: Path, *, cores: int = 1, memory: str = "1g",
              sandboxed_worker: bool = True) -> "StandaloneCluster":
        """Start a master and one worker; raise ClusterError (stopping what started) if either fails."""
        base, shared = Path(base).resolve(), Path(shared).resolve()
        for d in (base / "logs", base / "daemon-conf", base / "worker", base / "client-conf", shared):
            d.mkdir(parents=True, exist_ok=True)
        port, ui = free_port(), free_port()
        cluster = cls(base, shared, f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}")
        spark_class = str(spark_home() / "bin" / "spark-class")
        try:
            master = cluster._spawn("master", [spark_class, "org.apache.spark.deploy.master.Master",
                                               "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)],
                                    _daemon_env(base))
            cluster._wait(lambda: cluster.state() is not None, "master", master)
            worker_env = _daemon_env(base, SPARK_WORKER_DIR=str(base / "worker"), TMPDIR="/tmp")
            argv = [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url, "--host", "127.0.0.1",
                    "--port", str(free_port()), "--webui-port", str(free_port()), "--cores", str(cores),
                    "--memory", memory, "--work-dir", str(base / "worker")]
            if sandboxed_worker:
                argv = worker_bwrap(base, shared, worker_env) + argv
            worker = cluster._spawn("worker", argv, worker_env)
            cluster._wait(lambda: cluster.alive_workers() > 0, "worker", worker)
        except BaseException:
            cluster.stop()
            raise
        cluster._write_client_conf()
        return cluster

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.base / "logs" / f"{name}.out", "ab")
        try:
            proc = subprocess.Popen(argv, env=env, cwd=str(self.base), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            log.close()
        self.procs = (*self.procs, proc)
        return proc

    def _wait(self, ready, name: str, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ClusterError(f"the Spark {name} exited with {proc.returncode}: {self.log_tail(name)}")
            if ready():
                return
            time.sleep(0.5)
        raise ClusterError(f"the Spark {name} did not start within {START_TIMEOUT:.0f}s: {self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = (self.base / "logs" / f"{name}.out").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def state(self) -> dict | None:
        """The master's JSON status (workers, applications), or None when it does not answer."""
        try:
            with urllib.request.urlopen(self.master_ui + "/json/", timeout=2) as reply:
                return json.loads(reply.read())
        except (OSError, ValueError):
            return None

    def alive_workers(self) -> int:
        state = self.state() or {}
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def _write_client_conf(self) -> None:
        # What a driver of this cluster needs beyond the master URL: advertise loopback, stay
        # within the worker's 1 core and 1 GiB, and few shuffle partitions for small data.
        (self.base / "client-conf" / "spark-defaults.conf").write_text(
            "spark.driver.host 127.0.0.1\n"
            "spark.driver.bindAddress 127.0.0.1\n"
            "spark.executor.memory 512m\n"
            "spark.cores.max 1\n"
            "spark.sql.shuffle.partitions 4\n"
            # short jobs on small data: the JIT's first tier starts executors seconds sooner on 2 cores
            "spark.executor.extraJavaOptions -XX:TieredStopAtLevel=1\n"
            "spark.ui.enabled false\n"
        )

    def client_env(self, scratch_uri: str | None = None) -> dict[str, str]:
        """Environment for a Healer process that drives this cluster (merge it into os.environ)."""
        env = {"HEALER_SPARK_MASTER": self.master_url, "SPARK_CONF_DIR": str(self.base / "client-conf"),
               "SPARK_LOCAL_IP": "127.0.0.1"}
        if scratch_uri:
            env["HEALER_SCRATCH_URI"] = scratch_uri
        return env

    def stop(self) -> None:
        """Stop every daemon (its whole process group: the worker's executors too)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)

    def __enter__(self) -> "StandaloneCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
