"""OS isolation of the sandbox worker, tried with code the static gate would have refused.

The gate is the first wall; these tests hand hostile code straight to a worker (as if the
gate had missed it) and check the second wall: the worker runs it with no secrets, no
network beyond its own loopback, no production data and nothing writable but its run dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from pathlib import Path

import pytest

import healer
from healer.errors import EnvironmentProblem
from healer.runner import jvm_cache
from healer.sandbox import isolation
from healer.sandbox.isolation import Isolation, Worker, check_isolation, worker_env

pytestmark = [pytest.mark.spark]

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-isolation-test-0123456789abcdef",
    "GITHUB_TOKEN": "ghp_isolationtest0123456789abcdefABCDEF",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYISOLATION",
    "HEALER_LEDGER_URL": "postgresql://healer:ledger-pw-123@db.internal/healer",
    "HEALER_API_TOKEN": "api-token-isolation-456",
    "MY_SERVICE_PASSWORD": "hunter2-isolation",
}

HOSTILE_JOB = '''
import json, os, shutil, socket, subprocess

def transform(spark):
    r = {{}}
    def attempt(name, fn):
        try:
            value = fn()
            r[name] = "done" if value is None else "done:" + str(value)[:200]
        except BaseException as exc:
            r[name] = "failed:" + type(exc).__name__
    r["env"] = json.dumps(dict(os.environ))
    attempt("read_production_input", lambda: len(open({prod_file!r}, "rb").read()))
    attempt("spark_read_production", lambda: spark.read.parquet({prod_input!r}).count())
    attempt("delete_production_output", lambda: shutil.rmtree({prod_output!r}))
    attempt("write_outside", lambda: open({outside!r}, "w").write("pwned"))
    attempt("write_into_healer", lambda: open({in_healer!r}, "w").write("pwned"))
    attempt("socket_to_host", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close())
    attempt("socket_to_internet", lambda: socket.create_connection(("1.1.1.1", 443), timeout=3).close())
    attempt("subprocess_writes", lambda: subprocess.run(["sh", "-c", "echo pwned > {outside2}"], check=True))
    attempt("list_home", lambda: os.listdir(os.path.expanduser("~root")))
    attempt("read_ledger", lambda: len(open({ledger!r}, "rb").read()))
    attempt("jvm_getenv", lambda: spark.sql(
        "SELECT reflect('java.lang.System', 'getenv', 'ANTHROPIC_API_KEY')").collect()[0][0])
    return spark.createDataFrame(sorted(r.items()), "k string, v string")
'''


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def listener():
    """A TCP server on the host's loopback; records whether anything ever connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    hits, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                hits.append(1)
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    server.close()


def run_hostile(spark, tmp_path, monkeypatch, listener, mode):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    port, hits = listener
    prod = tmp_path / "production"
    spark.range(50).withColumnRenamed("id", "order_id").write.parquet(str(prod / "orders"))
    spark.range(5).write.parquet(str(prod / "output"))
    ledger_file = tmp_path / "home" / "ledger.db"
    ledger_file.parent.mkdir()
    ledger_file.write_text("ledger contents")
    before = checksum(prod)
    workdir = tmp_path / "sandbox"
    inputs = workdir / "inputs"
    spark.range(10).withColumnRenamed("id", "order_id").write.parquet(str(inputs / "orders"))
    outside, outside2 = tmp_path / "pwned.txt", tmp_path / "pwned2.txt"
    in_healer = Path(healer.__file__).parent / "pwned-by-sandbox.txt"
    run_dir = workdir / "runs" / "01"
    worker = Worker(mode, run_dir, inputs, [str(prod / "orders"), str(prod / "output"), str(tmp_path / "home")],
                    jvm_cache.existing_archive_options())
    code = run_dir / "code" / "jobs"
    code.mkdir(parents=True)
    prod_file = next(p for p in (prod / "orders").iterdir() if p.suffix == ".parquet")
    (code / "evil.py").write_text(HOSTILE_JOB.format(
        prod_file=str(prod_file), prod_input=str(prod / "orders"), prod_output=str(prod / "output"),
        outside=str(outside), outside2=str(outside2), in_healer=str(in_healer), port=port, ledger=str(ledger_file)))
    try:
        ran = worker.run({"kind": "python", "job": "jobs/evil.py", "code_dir": str(run_dir / "code"),
                          "inputs": {"orders": str(inputs / "orders")}, "output": str(run_dir / "output")},
                         timeout_s=300)
        assert ran.result == {"ok": True}, ran.log_tail
        seen = dict(spark.read.parquet(str(run_dir / "output")).collect())
    finally:
        worker.kill()
        in_healer.unlink(missing_ok=True)
    return seen, before, checksum(prod), hits, (outside, outside2)


def test_hostile_code_under_bubblewrap_has_no_effect(spark, tmp_path, monkeypatch, listener):
    seen, before, after, hits, outside = run_hostile(spark, tmp_path, monkeypatch, listener, Isolation.BUBBLEWRAP)
    env = json.loads(seen.pop("env"))
    for name, value in SECRETS.items():
        assert name not in env and value not in json.dumps(env), name
    # Only what PySpark sets for itself in every process (SPARK_AUTH_SOCKET_TIMEOUT) may look like one.
    assert not [k for k in env if isolation.SECRET_NAME.search(k) and not k.startswith(("SPARK_", "PYSPARK_"))]
    home = Path(os.path.expanduser("~root"))
    given = {Path(d).relative_to(home).parts[0] for d in isolation.runtime_dirs() if Path(d).is_relative_to(home)}
    for attempt, outcome in seen.items():
        if attempt == "jvm_getenv":
            assert outcome in ("done:None", "done:null"), outcome  # the JVM's environment is the worker's
        elif attempt == "list_home":
            # only what the runtime was given (the interpreter, the JVM archive), never ~/.ssh and the like
            assert outcome.startswith("failed:") or set(eval(outcome[len("done:"):])) <= given, outcome
        elif attempt not in ("write_outside", "subprocess_writes"):
            # Those two may succeed inside: they land in the worker's private /tmp, checked below on the host.
            assert outcome.startswith("failed:"), (attempt, outcome)
    assert after == before, "production data changed"
    assert hits == [], "the worker reached a port on the host"
    assert not any(p.exists() for p in outside)


def test_process_mode_still_scrubs_the_environment(spark, tmp_path, monkeypatch, listener):
    """The weaker mode keeps secrets out, though files and the network stay reachable (hence its PR warning)."""
    seen, *_ = run_hostile(spark, tmp_path, monkeypatch, listener, Isolation.PROCESS)
    env = json.loads(seen["env"])
    for name, value in SECRETS.items():
        assert name not in env and value not in seen["env"], name
    assert seen["jvm_getenv"] in ("done:None", "done:null")


def test_worker_env_is_an_allowlist(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", "/usr/lib/jvm/x")
    monkeypatch.setenv("SOME_RANDOM_SETTING", "1")
    env = worker_env(tmp_path, Isolation.BUBBLEWRAP)
    assert env["JAVA_HOME"] == "/usr/lib/jvm/x" and "SOME_RANDOM_SETTING" not in env
    assert env["HOME"] == str(tmp_path) and env["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_missing_bubblewrap_is_one_line_with_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem) as err:
        check_isolation(Isolation.BUBBLEWRAP)
    message = str(err.value)
    assert "\n" not in message and "apt-get install bubblewrap" in message and "HEALER_SANDBOX=process" in message
    check_isolation(Isolation.PROCESS)  # the explicit weaker mode needs nothing


def test_unknown_sandbox_mode_is_a_config_error(monkeypatch):
    from healer.errors import ConfigError

    monkeypatch.setenv("HEALER_SANDBOX", "docker")
    with pytest.raises(ConfigError, match="HEALER_SANDBOX='docker'"):
        isolation.isolation_from_env()


def test_a_worker_that_hangs_is_stopped_at_its_deadline(spark, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    run_dir = tmp_path / "runs" / "01"
    worker = Worker(Isolation.BUBBLEWRAP, run_dir, inputs, [], jvm_cache.existing_archive_options())
    code = run_dir / "code"
    code.mkdir()
    (code / "slow.py").write_text("import time\ndef transform(spark):\n    time.sleep(600)\n")
    ran = worker.run({"kind": "python", "job": "slow.py", "code_dir": str(code), "inputs": {},
                      "output": str(run_dir / "output")}, timeout_s=40)
    assert ran.timed_out and ran.result is None
    assert ran.seconds < 60
    assert worker.proc.poll() is not None


def test_output_links_and_oversize_outputs_are_never_read(tmp_path):
    from healer.sandbox.run import output_problem

    out = tmp_path / "output"
    out.mkdir()
    (out / "_SUCCESS").write_text("")
    (out / "part-0.parquet").write_bytes(b"x" * 100)
    assert output_problem(out, 1000) is None
    assert output_problem(out, 10)[0] == "SANDBOX_OUTPUT_TOO_LARGE"
    (out / "part-1.parquet").symlink_to("/etc/passwd")
    assert output_problem(out, 1000)[0] == "SANDBOX_OUTPUT_REFUSED"
    (out / "part-1.parquet").unlink()
    (out / "_SUCCESS").unlink()
    assert output_problem(out, 1000)[0] == "SANDBOX_NO_OUTPUT"
