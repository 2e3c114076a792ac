"""Where a candidate runs: a worker process with no secrets, under bubblewrap on Linux.

The worker (``worker.py``) gets an environment built from an allowlist, so model and forge
tokens, the ledger URL and cloud credentials never reach it. Under bubblewrap (the
mechanism Anthropic's sandbox runtime and OpenAI's Codex CLI use on Linux) it also gets:

- a new network namespace with loopback only (the local Spark driver needs 127.0.0.1);
- a read-only view of just what Python, Spark and Java need (``/usr``, ``/etc`` without its
  secrets, the interpreter, the virtualenv, Healer's package, Java, the JVM class archive);
  no home directory, no pipeline repo, no production data path;
- a private ``/tmp``; the sampled inputs read-only; one writable directory, its own run
  directory, where it writes its output and its result.

``HEALER_SANDBOX=process`` is the explicit weaker mode: the same worker with the scrubbed
environment but no namespaces. The healer reads back only ``result.json`` and the output
Parquet, both size-capped (see ``run.py``).
"""

from __future__ import annotations

import collections
import enum
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from healer.errors import EnvironmentProblem
from healer.sandbox.worker import READY, RESULT_FILE
from healer.settings import Settings

log = logging.getLogger(__name__)

BWRAP_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) "
              "or set HEALER_SANDBOX=process for the weaker process-only isolation")
MAX_RESULT_BYTES = 64 * 1024
MAX_LOG_CHARS = 16 * 1024

# What the worker's environment may carry over from the healer's: locale, time zone, Java.
PASSED_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "JAVA_HOME", "HEALER_DRIVER_MEMORY")
SECRET_NAME = re.compile(r"SECRET|TOKEN|KEY|PASSWORD|PASSWD|CREDENTIAL|AUTH|SESSION|COOKIE|PRIVATE", re.I)
# Files under /etc that hold secrets of the machine; masked even in the read-only view.
MASKED_ETC = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/ssh", "/etc/ssl/private",
              "/etc/sudoers", "/etc/sudoers.d", "/etc/krb5.keytab", "/etc/netrc")


class Isolation(str, enum.Enum):
    BUBBLEWRAP = "bubblewrap"
    PROCESS = "process"

    @property
    def label(self) -> str:
        return "bubblewrap (no network, read-only system, sampled inputs only)" if self is Isolation.BUBBLEWRAP \
            else "process only (scrubbed environment, no namespaces)"


def isolation_from_env() -> Isolation:
    """``HEALER_SANDBOX``: ``bubblewrap`` (default; also ``bwrap``) or ``process``."""
    return Isolation.PROCESS if Settings.from_env().sandbox == "process" else Isolation.BUBBLEWRAP


_probe_lock = threading.Lock()
_probed: dict[str, str | None] = {}


def check_isolation(mode: Isolation) -> None:
    """Raise EnvironmentProblem (one line, with how to install) when ``mode`` cannot run here."""
    if mode is Isolation.PROCESS:
        return
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise EnvironmentProblem(f"bubblewrap (bwrap) not found: Healer runs every candidate fix under it; {BWRAP_HINT}")
    with _probe_lock:
        if bwrap not in _probed:
            _probed[bwrap] = _probe(bwrap)
    if _probed[bwrap]:
        raise EnvironmentProblem(f"bubblewrap cannot create namespaces here ({_probed[bwrap]}); "
                                 "allow unprivileged user namespaces, or set HEALER_SANDBOX=process")


def _probe(bwrap: str) -> str | None:
    try:
        done = subprocess.run([bwrap, *_system_mounts(), "--unshare-all", "--die-with-parent", "true"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[0]


def worker_env(run_dir: Path, mode: Isolation) -> dict[str, str]:
    """The worker's whole environment: an allowlist, and never a name that looks like a secret."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ and not SECRET_NAME.search(k)}
    tmp = "/tmp" if mode is Isolation.BUBBLEWRAP else str(run_dir / "tmp")
    env.update({
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(run_dir),
        "TMPDIR": tmp,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "localhost",
        "_JAVA_OPTIONS": f"-Djava.io.tmpdir={tmp}",
    })
    return env


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind", "/etc", "/etc"]
    for secret in MASKED_ETC:
        if os.path.isdir(secret) and not os.path.islink(secret):
            args += ["--tmpfs", secret]
        elif os.path.lexists(secret):
            args += ["--ro-bind", "/dev/null", secret]
    return args + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def runtime_dirs() -> list[str]:
    """Directories the worker needs to read: the interpreter, its packages, Healer, Java, the JVM archive."""
    import py4j
    import pyspark

    import healer
    from healer.runner import jvm_cache

    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
            str(Path(healer.__file__).resolve().parent), str(Path(pyspark.__file__).resolve().parent),
            str(Path(py4j.__file__).resolve().parent)}
    if os.environ.get("JAVA_HOME"):
        dirs.add(str(Path(os.environ["JAVA_HOME"]).resolve()))
    try:
        dirs.add(str(jvm_cache.cache_dir()))
    except Exception:  # noqa: BLE001 -- no archive: the worker's JVM just starts slower
        log.debug("no JVM class archive directory for the sandbox", exc_info=True)
    resolved = sorted({str(Path(d).resolve()) for d in dirs if d and Path(d).is_dir()})
    # A directory inside another is bound by its parent already.
    return [d for d in resolved if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in resolved)]


def bwrap_command(run_dir: Path, inputs_dir: Path, hidden: list[str], argv: list[str],
                  env: dict[str, str], readable: list[str] = ()) -> list[str]:
    """The bubblewrap command line for one worker (``readable``: full inputs a shadow run reads)."""
    args = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--hostname", "localhost", *_system_mounts()]
    bound = runtime_dirs()
    for d in bound:
        if not d.startswith("/usr/") and d != "/usr":
            args += ["--ro-bind", d, d]
    # Production data that happens to sit inside a bound directory is covered by an empty one.
    for path in hidden:
        local = local_path(path)
        if local and any(local == d or local.startswith(d.rstrip("/") + "/") for d in bound + ["/usr", "/etc"]):
            args += ["--tmpfs", local] if os.path.isdir(local) else ["--ro-bind", "/dev/null", local]
    for path in readable:
        local = local_path(path)
        if local and os.path.exists(local):
            args += ["--ro-bind", local, local]
    args += ["--ro-bind", str(inputs_dir), str(inputs_dir), "--bind", str(run_dir), str(run_dir),
             "--chdir", str(run_dir), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + ["--", *argv]


def local_path(location: str) -> str | None:
    """The real local path of a data location (a path or ``file:`` URI), None for tables and remote URIs."""
    from healer.manifest import normalize_location

    if location.startswith("table "):
        return None
    store, path = normalize_location(location)
    return path if store == "file" else None


@dataclass(frozen=True)
class WorkerResult:
    """What came back from one worker: its own report (capped) and how it ended."""

    result: dict | None  # worker.run's record, or None when it wrote none
    exit_code: int | None
    timed_out: bool
    log_tail: str  # the last lines of its stdout/stderr, for the reviewer when it crashed
    seconds: float


class Worker:
    """One worker process: started early (Spark takes seconds), given one candidate, then gone."""

    def __init__(self, mode: Isolation, run_dir: Path, inputs_dir: Path, hidden: list[str], java_options: str,
                 readable: list[str] = ()):
        self.mode, self.run_dir = mode, run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "tmp").mkdir(exist_ok=True)
        env = worker_env(run_dir, mode)
        argv = [sys.executable, "-I", "-B", "-m", "healer.sandbox.worker", str(run_dir), java_options]
        cmd = bwrap_command(run_dir, inputs_dir, hidden, argv, env, readable) if mode is Isolation.BUBBLEWRAP else argv
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, cwd=str(run_dir), start_new_session=True)
        self._log: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_output, name="healer-sandbox-worker-log", daemon=True)
        self._reader.start()

    def _read_output(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw[:2000].decode("utf-8", "replace").rstrip()
            if line == READY:
                self._ready.set()
            else:
                self._log.append(line)
        self._ready.set()  # the worker is gone: nobody waits for it

    def log_tail(self) -> str:
        return "\n".join(self._log)[-MAX_LOG_CHARS:]

    def run(self, request: dict, timeout_s: float) -> WorkerResult:
        """Hand the worker its candidate; wait at most ``timeout_s`` (start-up included)."""
        deadline = self.started + timeout_s
        self._ready.wait(max(0.0, deadline - time.monotonic()))
        timed_out = False
        try:
            if self.proc.poll() is None and self._ready.is_set():
                self.proc.stdin.write((json.dumps(request) + "\n").encode())
                self.proc.stdin.close()
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
        except (BrokenPipeError, OSError):
            log.debug("sandbox worker closed its input early", exc_info=True)
        finally:
            self.kill()
        self._reader.join(timeout=5)
        return WorkerResult(read_result(self.run_dir / RESULT_FILE), self.proc.returncode, timed_out,
                            self.log_tail(), round(time.monotonic() - self.started, 2))

    def kill(self) -> None:
        """Stop the worker and everything it started (its process group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("sandbox worker %s did not stop after SIGKILL", self.proc.pid)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


def read_result(path: Path) -> dict | None:
    """The worker's result record: a regular file (never a link), at most MAX_RESULT_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_RESULT_BYTES + 1)
    if len(data) > MAX_RESULT_BYTES:
        return {"ok": False, "error_class": "SandboxResultTooLarge",
                "message": f"the worker's result is over {MAX_RESULT_BYTES} bytes"}
    try:
        result = json.loads(data)
    except ValueError:
        return {"ok": False, "error_class": "SandboxResultMalformed", "message": "the worker's result is not JSON"}
    return result if isinstance(result, dict) else None
