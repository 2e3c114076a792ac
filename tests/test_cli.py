"""`healer run` as a user runs it: a real subprocess, exit codes, one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from healer.ledger import Ledger

ROOT = Path(__file__).resolve().parents[1]
HEALER = ROOT / ".venv" / "bin" / "healer"


def healer(*args, home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEALER_HOME": str(home)}
    env.pop("HEALER_LEDGER_URL", None)
    return subprocess.run([str(HEALER), *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.slow
@pytest.mark.spark
def test_run_succeeds_and_names_output_and_rows(pipeline_repo, tmp_path):
    home = tmp_path / "home"
    done = healer("run", "revenue_by_category", "--repo", str(pipeline_repo), home=home)
    assert done.returncode == 0, done.stderr
    out = pipeline_repo / "output" / "revenue_by_category"
    rows = pq.read_table(str(out)).num_rows
    line = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"revenue_by_category: success: {rows} rows -> {re.escape(str(out))} "
                        r"\(run 1, \d+\.\ds\)", line), line
    run = Ledger(f"sqlite:///{home / 'ledger.db'}").get_run(1)
    assert run.ok and run.row_count == rows and run.context == {"source": "cli"}


def test_unknown_pipeline_exits_2_with_one_line(pipeline_repo, tmp_path):
    home = tmp_path / "home"
    done = healer("run", "no_such_pipeline", "--repo", str(pipeline_repo), home=home, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("healer: no_such_pipeline: config failed: ")
    assert f"{pipeline_repo / 'healer.yml'}: unknown pipeline 'no_such_pipeline'" in lines[0]
    assert lines[0].endswith("(run 1)")
    run = Ledger(f"sqlite:///{home / 'ledger.db'}").get_run(1)
    assert (run.status, run.stage, run.error_class) == ("failed", "config", "ConfigError")


def test_reading_commands_name_their_ledger_and_never_create_one(tmp_path):
    elsewhere = tmp_path / "elsewhere" / ".healer"  # a HEALER_HOME where nothing ever ran
    for args in (["prs"], ["runs"]):
        done = healer(*args, home=elsewhere)
        assert done.returncode == 0, done.stderr
        assert f"healer: warning: no ledger at {elsewhere / 'ledger.db'}" in done.stderr
        assert "HEALER_LEDGER_URL" in done.stderr
        assert done.stdout.strip() in ("no open pull requests", "no runs recorded")
    shown = healer("pr", "show", "1", home=elsewhere)
    assert shown.returncode != 0 and "no pull request #1: there is no ledger here" in shown.stderr
    assert not elsewhere.exists()  # nothing was created on the way

    home = tmp_path / "home"
    Ledger(f"sqlite:///{home / 'ledger.db'}")  # a ledger that exists (empty)
    done = healer("prs", home=home)
    assert done.returncode == 0 and "warning" not in done.stderr
    assert f"healer: ledger sqlite:///{home / 'ledger.db'}" in done.stderr
