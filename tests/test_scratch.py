"""HEALER_SCRATCH_URI: where it may point for which Spark master, per-heal directories, the sweep."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from healer import scratch
from healer.errors import ConfigError
from healer.scratch import Area


def test_local_spark_defaults_to_the_local_temp_dir(monkeypatch):
    monkeypatch.delenv("HEALER_SCRATCH_URI", raising=False)
    assert scratch.base_uri("local[*]") == Path(tempfile.gettempdir()).resolve().as_uri()
    assert scratch.base_uri(None) == Path(tempfile.gettempdir()).resolve().as_uri()


@pytest.mark.parametrize("configured, says", [
    (None, "HEALER_SCRATCH_URI is unset"),
    ("/var/healer-scratch", "is a local path, which the executors of HEALER_SPARK_MASTER=spark://10.0.0.5:7077"),
])
def test_a_cluster_refuses_scratch_its_executors_cannot_see(monkeypatch, configured, says):
    monkeypatch.delenv("HEALER_SCRATCH_URI", raising=False)
    if configured:
        monkeypatch.setenv("HEALER_SCRATCH_URI", configured)
    with pytest.raises(ConfigError) as info:
        scratch.base_uri("spark://10.0.0.5:7077")
    message = str(info.value)
    assert says in message and "file:///shared" in message and "\n" not in message


@pytest.mark.parametrize("configured", ["file:///mnt/shared/healer/", "hdfs://nn:8020/healer", "s3a://bucket/healer"])
def test_a_cluster_takes_any_hadoop_fs_uri(monkeypatch, configured):
    monkeypatch.setenv("HEALER_SCRATCH_URI", configured)
    assert scratch.base_uri("spark://10.0.0.5:7077") == configured.rstrip("/")
    assert scratch.base_uri("yarn") == configured.rstrip("/")


def test_a_malformed_uri_is_one_line(monkeypatch):
    monkeypatch.setenv("HEALER_SCRATCH_URI", "file:relative/dir")
    with pytest.raises(ConfigError, match="expected a Hadoop-FS URI"):
        scratch.base_uri("local[*]")


def test_a_plain_path_is_fine_for_local_spark(monkeypatch, tmp_path):
    monkeypatch.setenv("HEALER_SCRATCH_URI", str(tmp_path / "s"))
    assert scratch.base_uri("local[2]") == (tmp_path / "s").resolve().as_uri()


def test_spark_paths_of_a_shared_mount_are_file_uris_and_of_a_remote_store_mirror_paths(tmp_path):
    shared = Area(tmp_path, tmp_path.as_uri())
    assert not shared.mirrored
    assert shared.spark_path(tmp_path / "inputs" / "orders") == (tmp_path / "inputs" / "orders").as_uri()
    assert shared.spark_path(Path("/elsewhere/x")) == "/elsewhere/x"
    remote = Area(tmp_path, "hdfs://nn/healer/healer-heal-abc-7")
    assert remote.mirrored
    assert remote.spark_path(tmp_path / "runs" / "01" / "output") == "hdfs://nn/healer/healer-heal-abc-7/runs/01/output"


def test_the_sweep_removes_the_scratch_of_heals_without_a_lease_only(ledger, tmp_path, monkeypatch):
    base = tmp_path / "scratch"
    monkeypatch.setenv("HEALER_SCRATCH_URI", base.as_uri())
    live = ledger.take_lease("cause-live", dict(run_id=1, pipeline="p", repo="/r"))
    dead = ledger.take_lease("cause-dead", dict(run_id=2, pipeline="p", repo="/r"))
    dirs = {}
    for name, heal_id in (("live", live.heal_id), ("dead", dead.heal_id)):
        dirs[name] = base / scratch.heal_dir_name(ledger.url, heal_id)
        (dirs[name] / "inputs").mkdir(parents=True)
    other_ledger = base / scratch.heal_dir_name("sqlite:////elsewhere/ledger.db", dead.heal_id)
    other_ledger.mkdir()
    unrelated = base / "keep-me"
    unrelated.mkdir()
    dead.release()  # as if the sweep had abandoned it: the heal's lease is gone

    removed = scratch.sweep(ledger)

    assert removed == [dirs["dead"].as_uri()]
    assert not dirs["dead"].exists()
    assert dirs["live"].exists() and other_ledger.exists() and unrelated.exists()
    live.release()
    assert scratch.sweep(ledger) == [dirs["live"].as_uri()]


HOSTILE_WRITES = '''
import os

def transform(spark):
    r = {{}}
    for name, path in {targets!r}.items():
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write("pwned")
            r[name] = "done"
        except BaseException as exc:
            r[name] = "failed:" + type(exc).__name__
    try:
        spark.range(3).write.parquet({spark_target!r})
        r["spark_write_other_heal"] = "done"
    except BaseException as exc:
        r["spark_write_other_heal"] = "failed:" + type(exc).__name__
    return spark.createDataFrame(sorted(r.items()), "k string, v string")
'''


@pytest.mark.spark
def test_a_candidate_writes_nothing_in_shared_scratch_but_its_own_run_dir(spark, tmp_path):
    """On a cluster the sandbox lives in shared scratch beside other heals and production data.

    The candidate (handed straight to a bubblewrap worker, as if the gate had missed it) may
    write its run dir only: not its samples, not the heal's directory, not another heal's, not
    the scratch root, not the production data on the same mount.
    """
    from healer.runner import jvm_cache
    from healer.sandbox.isolation import Isolation, Worker

    mount = tmp_path / "shared"  # the mount every machine of the cluster sees
    production = mount / "warehouse" / "orders"
    spark.range(20).write.parquet(str(production))
    area = Area(mount / "scratch" / "healer-heal-k-1", (mount / "scratch" / "healer-heal-k-1").as_uri())
    other_heal = mount / "scratch" / "healer-heal-k-2"
    (other_heal / "inputs").mkdir(parents=True)
    inputs = area.local / "healer-sandbox-x" / "inputs"
    spark.range(5).write.parquet(str(inputs / "orders"))
    run_dir = area.local / "healer-sandbox-x" / "runs" / "01"
    targets = {"own_samples": str(inputs / "orders" / "pwned"), "heal_dir": str(area.local / "pwned"),
               "other_heal": str(other_heal / "inputs" / "pwned"), "scratch_root": str(mount / "scratch" / "pwned"),
               "production": str(production / "pwned"), "own_run_dir": str(run_dir / "mine.txt")}
    worker = Worker(Isolation.BUBBLEWRAP, run_dir, inputs, [str(production)], jvm_cache.existing_archive_options())
    code = run_dir / "code" / "jobs"
    code.mkdir(parents=True)
    (code / "evil.py").write_text(HOSTILE_WRITES.format(targets=targets,
                                                        spark_target=str(other_heal / "out")))
    try:
        ran = worker.run({"kind": "python", "job": "jobs/evil.py", "code_dir": str(run_dir / "code"),
                          "inputs": {"orders": str(inputs / "orders")}, "output": str(run_dir / "output")},
                         timeout_s=300)
    finally:
        worker.kill()
    assert ran.result == {"ok": True}, ran.log_tail
    seen = dict(spark.read.parquet(str(run_dir / "output")).collect())
    assert seen.pop("own_run_dir") == "done" and (run_dir / "mine.txt").read_text() == "pwned"
    for name, path in targets.items():
        if name != "own_run_dir":
            assert not Path(path).exists(), f"the candidate wrote {name}: {path}"
    assert not (other_heal / "out").exists()
    assert sorted(p.name for p in (mount / "scratch").iterdir()) == ["healer-heal-k-1", "healer-heal-k-2"]
    assert spark.read.parquet(str(production)).count() == 20
    # what failed inside may have "succeeded" into the worker's private /tmp; nothing reached the mount
    assert set(seen) == set(targets) - {"own_run_dir"} | {"spark_write_other_heal"}


def test_a_heal_checks_the_configured_master_before_it_starts(monkeypatch):
    monkeypatch.setenv("HEALER_SPARK_MASTER", "spark://127.0.0.1:7077")
    monkeypatch.delenv("HEALER_SCRATCH_URI", raising=False)
    with pytest.raises(ConfigError, match="HEALER_SCRATCH_URI is unset"):
        scratch.check_configured()
    monkeypatch.setenv("HEALER_SCRATCH_URI", "file:///mnt/shared/healer")
    scratch.check_configured()
    monkeypatch.delenv("HEALER_SPARK_MASTER")
    monkeypatch.setenv("HEALER_SCRATCH_URI", "/var/healer")  # local Spark: a plain path is fine
    scratch.check_configured()
