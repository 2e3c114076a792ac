"""The one SparkSession factory: local by default, any cluster by configuration."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from healer.errors import EnvironmentProblem

_LOG4J = Path(__file__).with_name("log4j2.properties")
JAVA_HINT = "install Java 17+ (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


def java_version() -> int | None:
    """Major version of the Java Spark will use, or None when there is none."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
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


def get_spark(app_name: str = "healer", conf: dict[str, str] | None = None):
    """Return the active SparkSession, or build one.

    Master: ``HEALER_SPARK_MASTER`` if set, else whatever standard Spark configuration says
    (``spark-submit``, ``SPARK_CONF_DIR``), else ``local[*]``. Local sessions get a temporary
    warehouse, few shuffle partitions and no UI; cluster sessions keep their own settings.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    check_java()
    quiet_python_logging()
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", _python()))
    builder = SparkSession.builder.appName(app_name)
    master = os.environ.get("HEALER_SPARK_MASTER")
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
                "spark.sql.shuffle.partitions": os.environ.get("HEALER_SHUFFLE_PARTITIONS", "4"),
                "spark.sql.warehouse.dir": tempfile.mkdtemp(prefix="healer-warehouse-"),
                "spark.driver.memory": os.environ.get("HEALER_DRIVER_MEMORY", "2g"),
                "spark.sql.adaptive.enabled": "true",
            }
        )
    for key, value in {**defaults, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # Job errors reach Python as exceptions with Spark's error condition; the JVM's own
    # copies of them (task aborted, writer aborted) would only bury the one-line message.
    spark.sparkContext.setLogLevel(os.environ.get("HEALER_SPARK_LOG_LEVEL", "FATAL"))
    return spark


def _python() -> str:
    import sys

    return sys.executable


if __name__ == "__main__":
    raise SystemExit(main())
