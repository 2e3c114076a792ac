"""What makes a cold heal fast: the JVM class archive, lazy GX dependencies, background start."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from healer.runner import jvm_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HEALER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HEALER_SPARK_CDS", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def at_exit(monkeypatch):
    """What a build would do at this process's exit, kept here instead of registered."""
    calls = []
    monkeypatch.setattr(jvm_cache.atexit, "register", lambda fn, *args: calls.append((fn, *args)))
    return calls


def test_an_existing_archive_is_mapped_quietly(cache):
    path = jvm_cache.archive_path()
    assert path.parent == cache and path.name.startswith("spark-") and path.suffix == ".jsa"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    path.with_name(path.name + ".ok").write_text(str(len(b"archive")))  # checked after its build
    opts = jvm_cache.java_options()
    assert f"-XX:SharedArchiveFile={path}" in opts and "-Xshare:auto" in opts  # one of another JVM is ignored
    assert "-Xlog:cds=off" in opts


def test_an_archive_never_checked_is_removed_not_mapped(cache, at_exit):
    path = jvm_cache.archive_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\0" * 4096)  # no mark: nobody tried it in a JVM
    opts = jvm_cache.java_options()
    try:
        assert "SharedArchiveFile" not in opts and opts.startswith("-XX:ArchiveClassesAtExit=")  # built anew
        assert not path.exists()
        assert [fn for fn, *_ in at_exit] == [jvm_cache._finish_build]
    finally:
        path.with_suffix(".lock").unlink()


def test_the_built_archive_loads_and_a_truncated_copy_is_caught(tmp_path):
    path = jvm_cache.archive_path()
    if not path.is_file():
        pytest.skip("no archive built on this machine yet (make jvm-cache builds it)")
    assert jvm_cache.loads(path)
    truncated = tmp_path / "truncated.jsa"
    with path.open("rb") as f:
        truncated.write_bytes(f.read(5_000_000))  # a dump cut short (disk full, killed): Java 17 dies of SIGBUS
    assert not jvm_cache.loads(truncated)


def test_the_cache_can_be_switched_off(cache, monkeypatch):
    monkeypatch.setenv("HEALER_SPARK_CDS", "0")
    assert jvm_cache.java_options() == ""


def test_one_process_builds_the_archive_and_a_dead_builders_lock_is_taken_over(cache, at_exit):
    path = jvm_cache.archive_path()
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    builder = subprocess.Popen(["sleep", "30"])
    try:
        lock.write_text(str(builder.pid))  # a live builder
        assert jvm_cache.java_options() == ""  # nobody waits: this session starts without the archive
    finally:
        builder.kill()
        builder.wait()

    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(str(dead.pid))
    opts = jvm_cache.java_options()
    try:
        assert opts.startswith(f"-XX:ArchiveClassesAtExit={path}.")  # dumped to a temporary name ...
        assert lock.read_text() == str(os.getpid())
        [(fn, tmp, final, held)] = at_exit  # ... and moved in place at exit
        assert fn is jvm_cache._finish_build and (final, held) == (path, lock)
        assert f"-XX:ArchiveClassesAtExit={tmp} " in opts
    finally:
        lock.unlink()


@pytest.mark.spark
def test_the_test_sessions_jvm_uses_the_archive_or_builds_it(spark):
    args = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    path = jvm_cache.archive_path()
    if path.is_file():
        assert f"-XX:SharedArchiveFile={path}" in args
    else:
        assert any(a.startswith("-XX:ArchiveClassesAtExit=") for a in args) or jvm_cache.java_options() == ""
    assert "-XX:TieredStopAtLevel=1" in args  # the tests' session is a quick-JIT one, like a heal's


def test_gx_imports_without_executing_its_unused_heavy_dependencies(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import sys\n"
        "import pyspark.sql\n"
        "from healer.expectations import import_gx\n"
        "gx = import_gx()\n"
        "assert gx.expectations.ExpectColumnValuesToNotBeNull(column='a').column == 'a'\n"
        "print(type(sys.modules['scipy.stats']).__name__, type(sys.modules['altair']).__name__)\n"
        "from scipy import stats\n"
        "print(round(stats.norm.cdf(0), 2))\n"  # touching it loads it for real
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["_LazyModule", "_LazyModule", "0.5"]


@pytest.mark.spark
def test_get_spark_in_another_thread_returns_the_running_session(spark):
    from healer.runner.session import get_spark

    seen = []
    worker = threading.Thread(target=lambda: seen.append(get_spark()))
    worker.start()
    worker.join()
    assert seen[0].sparkContext is spark.sparkContext
