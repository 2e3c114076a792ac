"""Shared fixtures: one real SparkSession per test session, isolated ledgers and repos."""

from __future__ import annotations

from pathlib import Path

import pytest

import sys

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as messages_server
pytest_plugins = ["airflow_fixtures", "cluster_fixtures"]  # real Airflow; a Spark standalone cluster


def pytest_collection_modifyitems(config, items):
    """A test that uses the ``spark`` fixture (directly or through another fixture) is marked ``spark``;
    so is one that uses ``airflow_env``, which starts Spark itself (getfixturevalue, not a parameter)."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if ("spark" in names or "airflow_env" in names) and not item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.spark)


def pytest_configure(config):
    """When the run deselects ``spark`` tests (``make test-fast``), no JVM may start, even in a subprocess."""
    from _pytest.mark.expression import Expression

    markexpr = config.option.markexpr
    if markexpr and not Expression.compile(markexpr).evaluate(lambda mark: mark == "spark"):
        import os
        import shutil
        import tempfile

        # pyspark starts its JVM through $SPARK_HOME/bin/spark-submit: this one refuses, saying why.
        home = Path(tempfile.mkdtemp(prefix="healer-no-spark-"))
        (home / "bin").mkdir()
        submit = home / "bin" / "spark-submit"
        submit.write_text("#!/bin/sh\necho 'this run deselects spark tests, but this test started Spark: "
                          "mark it @pytest.mark.spark (or slow)' >&2\nexit 97\n")
        submit.chmod(0o755)
        os.environ["SPARK_HOME"] = str(home)
        config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Each test has its own HEALER_HOME, and the ledger engines it opened are closed after it."""
    from healer import ledger as ledger_module

    monkeypatch.setenv("HEALER_HOME", str(tmp_path_factory.mktemp("healer-home")))
    engines = set(ledger_module._engines)
    yield
    for url in set(ledger_module._engines) - engines:  # per-test SQLite files; session ledgers stay open
        ledger_module._engines.pop(url).dispose()
    api = sys.modules.get("healer.airflow.api")
    if api is not None:
        api._ledger_for.cache_clear()  # its Ledger objects hold the engines just closed


@pytest.fixture(autouse=True)
def shadow_where_tested(request, monkeypatch):
    """The shadow run (a second isolated JVM, on the full data) about doubles a heal's time, so a test
    heals without it unless it is marked ``shadow``: the tests of the shadow run, the data diff, and
    what they make of a PR (ready or draft, auto-merge, the audit's gates, the spans). Without it a
    PR is a draft saying it was validated on a sample only. Heals in module- or session-scoped
    fixtures start before this and keep the default (on)."""
    if request.node.get_closest_marker("shadow") is None:
        monkeypatch.setenv("HEALER_SHADOW", "off")


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
