"""The sandbox worker: runs one candidate's job on the sampled inputs, in its own process.

Started by ``isolation.Worker`` (under bubblewrap on Linux) with a scrubbed environment.
It starts a local Spark session first (that is the slow part, so the healer starts workers
before it has a candidate for them), then reads one request line from stdin, binds each
logical input to its sample, runs the job, writes the result to the run directory and
exits. It trusts nothing it runs and reports only through ``result.json`` and the output
Parquet directory; the healer caps what it reads back.

This module must stay light: it is imported in a process that has no secrets and should
start fast, so it loads only pyspark and Healer's job runner.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from healer.settings import Settings

READY = "healer-sandbox-worker-ready"
RESULT_FILE = "result.json"
MAX_MESSAGE_CHARS = 4000


def start_session(run_dir: Path, java_options: str):
    """A local Spark session that binds to loopback and keeps every file inside ``run_dir``."""
    from pyspark.sql import SparkSession

    scratch = run_dir / "spark"
    scratch.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.appName("healer-sandbox").master("local[*]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.driver.memory", Settings.from_env().driver_memory)
        .config("spark.driver.extraJavaOptions", java_options)
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("FATAL")
    return spark


def bind_samples(spark, inputs: dict[str, str | dict]) -> None:
    """Each logical input name reads its data: a temp view, or a table in the worker's own catalog.

    A value is a sample's Parquet path, or (for the shadow run) ``{path, format, options}``
    of a full input, read the way the job's own runner reads it.
    """
    from healer.manifest import InputSpec
    from healer.runner.io import read_input

    for name, where in inputs.items():
        if isinstance(where, dict):
            frame = read_input(spark, InputSpec(name=name, path=where["path"], format=where.get("format", "parquet"),
                                                options=dict(where.get("options") or {})))
        else:
            frame = spark.read.parquet(where)
        if "." in name:
            database, _, table = name.rpartition(".")
            spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            frame.write.mode("overwrite").saveAsTable(f"`{database}`.`{table}`")
        else:
            frame.createOrReplaceTempView(name)


def run(request: dict, spark) -> dict:
    """Run the job of ``request``; the result record (never raises)."""
    from healer.runner.jobs import describe_error, run_python_job

    code = Path(request["code_dir"])
    try:
        bind_samples(spark, request["inputs"])
        job = code / request["job"]
        if request["kind"] == "sql":
            result = spark.sql(job.read_text())
        else:
            result = run_python_job(spark, job, code)
        result.write.mode("errorifexists").parquet(request["output"])
    except BaseException as exc:  # noqa: BLE001 -- whatever the candidate raised is its verdict
        info = describe_error(exc)
        return {"ok": False, "error_class": info.error_class[:200], "message": info.message[:MAX_MESSAGE_CHARS],
                "traceback": info.traceback[-MAX_MESSAGE_CHARS:]}
    return {"ok": True}


def main() -> int:
    run_dir = Path(sys.argv[1])
    java_options = sys.argv[2] if len(sys.argv) > 2 else ""
    spark = start_session(run_dir, java_options)
    print(READY, flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the healer had no candidate for this worker
    request = json.loads(line)
    result = run(request, spark)
    # Written last and renamed in: a result file that exists is a whole one.
    tmp = run_dir / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(run_dir / RESULT_FILE)
    try:
        spark.stop()
    except Exception:  # noqa: BLE001 -- the process ends either way
        traceback.print_exc()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
