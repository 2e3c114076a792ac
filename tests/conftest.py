"""Shared fixtures: one real SparkSession per test session, isolated ledgers and repos."""

from __future__ import annotations

from pathlib import Path

import pytest

import sys

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as messages_server
pytest_plugins = ["airflow_fixtures", "cluster_fixtures"]  # real Airflow; a Spark standalone cluster


@pytest.fixture(autouse=True)
def hermetic_llm(monkeypatch):
    """No test reaches a real model by accident: the key and gateway come from each test."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "HEALER_LLM_MODEL", "HEALER_LLM"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The one local SparkSession of the test run (Spark takes ~10 s to start)."""
    from healer.expectations import preload
    from healer.runner.session import get_spark

    preload()
    session = get_spark("healer-tests", quick_jit=True)  # short jobs on small data, like a heal
    yield session
    session.stop()


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    """A fresh SQLite ledger in a temporary HEALER_HOME."""
    from healer.ledger import Ledger

    home = tmp_path / "healer-home"
    monkeypatch.setenv("HEALER_HOME", str(home))
    monkeypatch.delenv("HEALER_LEDGER_URL", raising=False)
    return Ledger()


@pytest.fixture(scope="session")
def retail_data(tmp_path_factory):
    """Generated retail tables (small), shared read-only by the tests."""
    from pipelines.generate import generate, write

    out = tmp_path_factory.mktemp("retail-data")
    write(generate(3000, seed=7), out)
    return out


def make_pipeline_repo(base: Path, retail_data: Path) -> Path:
    """A real git repo made from pipelines/ with its own copy of the data and a bare origin.

    Returns ``base/repo``; its data lives under data/ (a copy, so tests may drift it) and its
    origin is ``base/origin.git``.
    """
    from healer.demo import make_repo

    return make_repo(base / "repo", base / "origin.git", template=PIPELINES, data=retail_data,
                     author=("Dev", "dev@example.com"))


@pytest.fixture
def pipeline_repo(tmp_path, retail_data):
    """A fresh pipeline repo per test (see make_pipeline_repo)."""
    return make_pipeline_repo(tmp_path, retail_data)
