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
