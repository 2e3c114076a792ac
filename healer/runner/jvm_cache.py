"""A class-data-sharing (CDS) archive of the classes Spark's driver loads, for fast starts.

A local Spark driver spends most of its start-up loading and verifying some 20 000 classes.
Java 17 can dump the classes one run loaded into an archive that later JVMs map instead
(``-XX:ArchiveClassesAtExit`` / ``-XX:SharedArchiveFile``); on a 2-core machine that halves
the start of a session and speeds up its first jobs.

The archive is keyed by the Java binary and version, the pyspark version and Spark's jars, so a
change of any of them builds a new one. It is built once, either explicitly
(``python -m healer.runner.jvm_cache``, which ``make install`` runs) or by the first session
that finds none: that JVM dumps its classes when it exits and Python waits for it at exit,
then moves the archive into place atomically. A stale or foreign archive is ignored by the JVM
(``-Xshare:auto``); ``HEALER_SPARK_CDS=0`` turns all of this off.
"""

from __future__ import annotations

import logging
import atexit
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from healer.settings import Settings

log = logging.getLogger(__name__)

# CDS reports every class it cannot archive (signed jars, old bytecode) as a warning on stdout.
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
_BUILD_LOCK_STALE_S = 600


def enabled() -> bool:
    """False when ``HEALER_SPARK_CDS`` is 0/false/off."""
    return Settings.from_env().spark_cds


def cache_dir() -> Path:
    """``HEALER_CACHE_DIR``, else ``$XDG_CACHE_HOME/healer``, else ``~/.cache/healer``."""
    explicit = Settings.from_env().cache_dir
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "healer"


def _java() -> str | None:
    from healer.runner.session import java_binary

    java = java_binary()
    return os.path.realpath(java) if java else None


def archive_path() -> Path | None:
    """Where the archive for this Java + Spark lives (it may not exist yet); None without Java."""
    java = _java()
    if java is None:
        return None
    import pyspark

    jars = Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent) / "jars"
    digest = hashlib.sha256()
    stat = os.stat(java)
    for part in (java, str(stat.st_size), str(int(stat.st_mtime)), pyspark.__version__,
                 *sorted(p.name for p in jars.glob("*.jar"))):
        digest.update(part.encode() + b"\0")
    return cache_dir() / f"spark-{pyspark.__version__}-{digest.hexdigest()[:16]}.jsa"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(lock: Path) -> bool:
    """Take the build lock; a lock whose holder died or that is old is taken over."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(lock.read_text().strip() or 0)
                age = time.time() - lock.stat().st_mtime
            except (OSError, ValueError):
                holder, age = 0, _BUILD_LOCK_STALE_S + 1
            if (holder and _alive(holder)) and age < _BUILD_LOCK_STALE_S:
                return False
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def java_options() -> str:
    """JVM options for a local driver: use the archive, or build it in this run when none exists."""
    path = _archive()
    if path is None:
        return ""
    if path.is_file():
        if _verified(path):
            return _use(path)
        # Java 17 crashes on a truncated archive instead of ignoring it: never map one unchecked.
        path.unlink(missing_ok=True)
    lock = path.with_suffix(".lock")
    try:
        if not _claim(lock):
            return ""  # another process is building it right now
    except OSError:
        return ""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    atexit.register(_finish_build, tmp, path, lock)
    return f"-XX:ArchiveClassesAtExit={tmp} {_QUIET}"


def existing_archive_options() -> str:
    """Options that map the archive when a checked one exists; never start building one.

    For JVMs that must not write outside their own directory (the sandbox's workers).
    """
    path = _archive()
    return _use(path) if path is not None and path.is_file() and _verified(path) else ""


def _archive() -> Path | None:
    """Where this Java's and Spark's archive belongs, or None when there is to be none."""
    if not enabled():
        return None
    try:
        return archive_path()
    except Exception:  # noqa: BLE001 -- a cache must never stop Spark from starting
        log.debug("no JVM class archive", exc_info=True)
        return None


def _use(path: Path) -> str:
    return f"-XX:SharedArchiveFile={path} -Xshare:auto {_QUIET}"


def _mark(path: Path) -> Path:
    return path.with_name(path.name + ".ok")


def _verified(path: Path) -> bool:
    """The archive is the one that was checked after its build (same size as then)."""
    try:
        return _mark(path).read_text().strip() == str(path.stat().st_size)
    except (OSError, ValueError):
        return False


def loads(archive: Path) -> bool:
    """Whether a JVM starts with this archive. Java 17 dies of SIGBUS on a truncated archive
    (``-Xshare:auto`` only forgives a valid archive that does not fit), so every new one is
    tried once before any Spark driver maps it."""
    java = _java()
    if java is None:
        return False
    try:
        done = subprocess.run([java, f"-XX:SharedArchiveFile={archive}", "-Xshare:auto", "-Xlog:disable",
                               "-XX:ErrorFile=/dev/null", "-XX:-CreateCoredumpOnCrash", "-version"],
                              capture_output=True, timeout=60)  # a crash here is the answer, not a report
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _finish_build(tmp: Path, path: Path, lock: Path) -> None:
    """At exit: let the JVM exit (it dumps the archive as it does), then move the archive in place."""
    try:
        from pyspark import SparkContext

        gateway = SparkContext._gateway
        proc = getattr(gateway, "proc", None)
        if SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()
        if proc is not None:
            # The gateway JVM exits when its stdin closes; the dump happens on that exit.
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=120)
        if tmp.is_file() and tmp.stat().st_size > 0 and (proc is None or proc.returncode == 0) and loads(tmp):
            for old in path.parent.glob("spark-*.jsa*"):
                if old.name != path.name and not old.name.endswith((".tmp", ".lock")):
                    old.unlink(missing_ok=True)
            # the mark first: whoever sees the archive sees it verified
            _mark(path).write_text(str(tmp.stat().st_size))
            os.replace(tmp, path)
    except Exception:  # noqa: BLE001 -- best effort at interpreter exit
        log.debug("JVM class archive not kept", exc_info=True)
    finally:
        tmp.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)


def _warm_up() -> None:
    """A small workload touching what heals touch: parquet in and out, SQL, windows, GX."""
    import tempfile

    from healer.expectations import Expectation, preload, run_expectations
    from healer.runner.session import get_spark

    preload()
    spark = get_spark("healer-cds-build")
    with tempfile.TemporaryDirectory(prefix="healer-cds-") as tmp:
        spark.range(2000).selectExpr(
            "id", "id % 7 AS k", "CAST(id * 1.5 AS DECIMAL(12,2)) AS amount",
            "date_add(DATE'2024-01-01', CAST(id % 90 AS INT)) AS day",
            "named_struct('a', id, 'b', CAST(id AS STRING)) AS s",
        ).write.parquet(f"{tmp}/t")
        spark.read.parquet(f"{tmp}/t").createOrReplaceTempView("t")
        out = spark.sql(
            "SELECT k, date_trunc('month', day) AS month, SUM(amount) AS total, COUNT(*) AS n, "
            "MAX(s.b) AS b, ROW_NUMBER() OVER (PARTITION BY k ORDER BY MIN(id)) AS rn "
            "FROM t GROUP BY k, date_trunc('month', day)"
        )
        out.write.parquet(f"{tmp}/out")
        out = spark.read.parquet(f"{tmp}/out")
        out.describe().collect()
        run_expectations(out, [
            Expectation("column_values_not_null", {"column": "k"}),
            Expectation("column_values_between", {"column": "total", "min": 0}),
            Expectation("column_values_unique", {"column": "b"}),
            Expectation("column_values_in_set", {"column": "k", "values": list(range(7))}),
            Expectation("column_values_match_regex", {"column": "b", "regex": "^[0-9]+$"}),
            Expectation("compound_columns_unique", {"columns": ["k", "month"]}),
            Expectation("columns_match_set", {"columns": ["k", "month", "total", "n", "b", "rn"]}),
            Expectation("row_count_between", {"min": 1}),
        ])


def main() -> int:
    """Build the archive now if it is missing (``python -m healer.runner.jvm_cache``)."""
    if not enabled():
        print("healer: JVM class cache off (HEALER_SPARK_CDS=0)")
        return 0
    path = archive_path()
    if path is None:
        print("healer: no Java found; skipping the JVM class cache")
        return 0
    if path.is_file() and _verified(path):
        print(f"healer: JVM class cache ready: {path}")
        return 0
    path.unlink(missing_ok=True)
    # A child process, so that its interpreter exit (where the JVM dumps) is awaited here.
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "healer.runner.jvm_cache", "--warm-up"], check=False,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if path.is_file():
        print(f"healer: JVM class cache built in {time.monotonic() - t0:.0f}s: {path} "
              f"({path.stat().st_size // 2**20} MB)")
    else:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"healer: could not build the JVM class cache ({last[:200]}); Spark will start without it")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--warm-up"]:
        _warm_up()
        raise SystemExit(0)
    raise SystemExit(main())
