"""`healer run` and `healer heal` against a real Spark standalone cluster (tests/cluster_fixtures.py).

The cluster's worker does not share the driver's /tmp: the pipeline repo, its data and the
healer's scratch live in the one directory both see (``spark_cluster.shared``). Every command
runs in a new process, as a user runs it, with ``HEALER_SPARK_MASTER=spark://127.0.0.1:PORT``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_pipeline_repo

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.shadow]

PIPELINE = "revenue_by_category"


def healer(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "healer.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout)


def outcome(proc: subprocess.CompletedProcess) -> dict:
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no JSON outcome; stderr: {proc.stderr[-2000:]}"
    return json.loads(lines[-1])


def leftovers(*bases: Path) -> list[str]:
    return sorted(str(p) for base in bases for p in base.glob("healer-heal-*"))


def broken_on_the_cluster(spark_cluster, retail_data, tmp_path, spark, name: str):
    """A pipeline repo in shared storage: a good run and, after an upstream rename, a failed one, both on the cluster."""
    from healer.examples import drift

    work = Path(spark_cluster.shared) / name
    repo = make_pipeline_repo(work, retail_data)
    scratch = work / "scratch"
    env = {**spark_cluster.client_env(scratch.as_uri()), "HEALER_HOME": str(tmp_path / "home")}

    ran = healer(["run", PIPELINE, "--repo", str(repo), "--json"], env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert outcome(ran)["status"] == "success"
    assert spark.read.parquet(str(repo / "output" / PIPELINE)).count() > 0  # the executors wrote to shared storage

    drift.rename_column(repo / "data", "order_items", "unit_price", "item_price")
    broken = healer(["run", PIPELINE, "--repo", str(repo), "--json"], env)
    assert broken.returncode == 4, broken.stderr[-2000:]  # the job stage, on the cluster
    return repo, scratch, env


def test_runs_on_the_cluster_and_a_heal_with_unshared_scratch_stops_in_one_line(spark_cluster, retail_data,
                                                                                  tmp_path, spark):
    repo, scratch, env = broken_on_the_cluster(spark_cluster, retail_data, tmp_path, spark, "unshared")
    # a cluster with its scratch on the driver's own disk: one line, before anything is written
    unshared = healer(["heal", "--repo", str(repo), "--pipeline", PIPELINE, "--json"],
                      {**env, "HEALER_SCRATCH_URI": str(tmp_path / "driver-only")})
    said = outcome(unshared)
    assert unshared.returncode == 1 and said["status"] == "error"
    assert "is a local path, which the executors of HEALER_SPARK_MASTER=spark://127.0.0.1:" in said["reason"]
    assert not (tmp_path / "driver-only").exists()


def test_heal_on_the_cluster(spark_cluster, retail_data, tmp_path, spark):
    """A drift healed on the cluster: evidence, the sample gate and the shadow run; scratch left empty.

    One run of it (load ~45 on 2 cores) was declined with "the inputs could not be sampled:
    py4j.reflection does not exist in the JVM"; the next (load ~25) passed. Not understood yet.
    """
    repo, scratch, env = broken_on_the_cluster(spark_cluster, retail_data, tmp_path, spark, "heal")
    healed = healer(["heal", "--repo", str(repo), "--pipeline", PIPELINE, "--json"], env)
    result = outcome(healed)
    assert healed.returncode == 0 and result["status"] == "proposed", (result.get("reason"), healed.stderr[-3000:])
    assert result["fixer"].startswith("rule:renamed_column")
    validation = result["validation"]
    assert validation["sample_sizes"]["order_items"] > 0
    assert all(c["passed"] for c in validation["checks"]), validation["checks"]
    assert validation["shadow_rows_read"] > 0  # the full-data run, its output judged on the cluster
    assert validation["data_diff"].endswith("rows identical to the last good output")
    assert leftovers(scratch) == []  # the heal removed its scratch


def test_a_path_only_the_driver_sees_fails_loudly_on_the_cluster(spark_cluster, retail_data, tmp_path):
    """The worker has its own /tmp: a repo under the driver's tmp_path cannot run on the cluster."""
    repo = make_pipeline_repo(tmp_path, retail_data)
    env = {**spark_cluster.client_env((Path(spark_cluster.shared) / "scratch").as_uri()),
           "HEALER_HOME": str(tmp_path / "home")}
    ran = healer(["run", PIPELINE, "--repo", str(repo), "--json"], env)
    assert ran.returncode != 0
    assert outcome(ran)["status"] == "failed"
    assert not (repo / "output" / PIPELINE).exists()
