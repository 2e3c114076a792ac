"""The one SparkSession factory: local by default, any cluster by configuration."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from healer.errors import EnvironmentProblem
from healer.settings import Settings

_LOG4J = Path(__file__).with_name("log4j2.properties")
JAVA_HINT = "install Java 17+ (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


def java_binary() -> str | None:
    """The ``java`` Spark will use (``JAVA_HOME`` first, then ``PATH``), or None."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return java if java and Path(java).exists() else None


def java_version() -> int | None:
    """Major version of the Java Spark will use, or None when there is none."""
    java = java_binary()
    if java is None:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def check_java() -> None:
    """Raise EnvironmentProblem with one clear line when Java is missing or older than 17."""
    version = java_version()
    if version is None:
        raise EnvironmentProblem(f"Java not found: Spark 4 needs Java 17+; {JAVA_HINT}")
    if version < 17:
        raise EnvironmentProblem(f"Java {version} found: Spark 4 needs Java 17+; {JAVA_HINT}")


def main() -> int:
    """``python -m healer.runner.session``: exit 1 with one line when Java will not do."""
    try:
        check_java()
    except EnvironmentProblem as exc:
        print(f"healer: {exc}")
        return 1
    return 0


def quiet_python_logging() -> None:
    """Silence pyspark's Python-side loggers that repeat every SQL error with its context."""
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger", "py4j", "py4j.clientserver", "great_expectations"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def get_spark(app_name: str = "healer", conf: dict[str, str] | None = None, *, quick_jit: bool = False):
    """Return the active SparkSession, or build one.

    Master: ``HEALER_SPARK_MASTER`` if set, else whatever standard Spark configuration says
    (``spark-submit``, ``SPARK_CONF_DIR``), else ``local[*]``. Local sessions get a temporary
    warehouse, few shuffle partitions, no UI and the class-data-sharing archive of
    ``jvm_cache``; cluster sessions keep their own settings. ``quick_jit`` is for short-lived
    sessions on small data (heals, tests): the JIT stops at its first tier, which starts a
    2-core machine's JVM seconds sooner but runs long jobs slower. ``HEALER_SPARK_JAVA_OPTIONS``
    is appended to the local driver's JVM options.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    starting = _starting
    if starting is not None and starting is not threading.current_thread():
        session = starting.result()
        if session is not None:
            return session  # the JVM's active session is per thread: this one was built in another
    return _build(app_name, conf, quick_jit)


def start_spark(app_name: str = "healer", conf: dict[str, str] | None = None, *, quick_jit: bool = False) -> None:
    """Start building the session in a background thread; the next ``get_spark()`` waits for it.

    The JVM takes seconds to start: a command that will need Spark calls this first and
    meanwhile imports its modules, reads the ledger and clones the repo. A failure to start
    is raised by that ``get_spark()``.
    """
    global _starting
    import pyspark.sql  # noqa: F401  -- in this thread first: two threads importing pyspark deadlock
    from pyspark.sql import SparkSession

    with _start_lock:
        if _starting is not None or SparkSession.getActiveSession() is not None:
            return
        _starting = _Starting(app_name, conf, quick_jit)


class _Starting(threading.Thread):
    def __init__(self, app_name, conf, quick_jit):
        super().__init__(name="healer-spark-start", daemon=True)
        self.args, self.session, self.error = (app_name, conf, quick_jit), None, None
        self.start()

    def run(self):
        try:
            self.session = _build(*self.args)
        except BaseException as exc:  # noqa: BLE001 -- handed to the thread that asks for the session
            self.error = exc

    def result(self):
        """The session built, None once it was stopped; raises (once) what stopped it from starting."""
        global _starting
        self.join()
        if self.error is not None or self.session is None or self.session.sparkContext._jsc is None:
            with _start_lock:
                if _starting is self:
                    _starting = None
            if self.error is not None:
                raise self.error
            return None
        return self.session


_starting: _Starting | None = None
_start_lock = threading.Lock()


def _build(app_name: str, conf: dict[str, str] | None, quick_jit: bool):
    from pyspark.sql import SparkSession

    check_java()
    quiet_python_logging()
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", _python()))
    builder = SparkSession.builder.appName(app_name)
    settings = Settings.from_env()
    master = settings.spark_master
    if master:
        builder = builder.master(master)
    elif "PYSPARK_SUBMIT_ARGS" not in os.environ and not os.environ.get("SPARK_CONF_DIR"):
        builder = builder.master("local[*]")
    is_local = (master or "local").startswith("local")
    defaults = {
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{_LOG4J}",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
    }
    if is_local:
        defaults.update(
            {
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
                "spark.sql.warehouse.dir": _temporary_warehouse(),
                "spark.driver.memory": settings.driver_memory,
                "spark.sql.adaptive.enabled": "true",
            }
        )
        from healer.runner import jvm_cache

        defaults["spark.driver.extraJavaOptions"] = " ".join(filter(None, [
            defaults["spark.driver.extraJavaOptions"],
            jvm_cache.java_options(),
            "-XX:TieredStopAtLevel=1" if quick_jit else "",
            settings.spark_java_options,
        ]))
    for key, value in {**defaults, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # Job errors reach Python as exceptions with Spark's error condition; the JVM's own
    # copies of them (task aborted, writer aborted) would only bury the one-line message.
    spark.sparkContext.setLogLevel(settings.spark_log_level)
    return spark


def _temporary_warehouse() -> str:
    """A warehouse directory for this process alone, removed when it exits (a worker that runs
    thousands of tasks must not leave one behind per session)."""
    import atexit

    path = tempfile.mkdtemp(prefix="healer-warehouse-")
    atexit.register(shutil.rmtree, path, True)
    return path


def _python() -> str:
    import sys

    return sys.executable


if __name__ == "__main__":
    raise SystemExit(main())
