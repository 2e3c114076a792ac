"""Unreadable inputs are evidence, never a crash (issue 17, item 4).

One repo holds one pipeline per input fault: the same job over its own copy of ``orders``,
which is then broken in its own way (another format, compression, garbage, truncation, an
empty folder, a file where a folder was, a nested layout, a mix of formats). Every pipeline
fails at the input stage; then one real ``healer heal --all --json`` subprocess heals them
all. Each must end in a JSON outcome with a one-line reason, recorded in the ledger; where
the files are one format Spark reads, the fix is healer.yml's ``format:``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.orc as porc
import pyarrow.parquet as pq
import pytest

from healer.ledger import Ledger, heals

ROOT = Path(__file__).resolve().parents[1]
HEALER = ROOT / ".venv" / "bin" / "healer"
JOB = "SELECT channel, COUNT(DISTINCT order_id) AS orders FROM orders GROUP BY channel\n"


def _table(folder: Path) -> pa.Table:
    return pq.read_table(folder)


def _clear(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.mkdir()


def _text_ts(t: pa.Table) -> pa.Table:
    """Timestamps as plain text, as an export writes them."""
    text = pc.strftime(t.column("order_ts"), "%Y-%m-%d %H:%M:%S")
    return t.set_column(t.column_names.index("order_ts"), "order_ts", text)


def to_csv(folder: Path) -> None:
    t = _table(folder)
    _clear(folder)
    pcsv.write_csv(_text_ts(t), folder / "part-00000.csv")


def to_json_gz(folder: Path) -> None:
    import gzip

    t = _text_ts(_table(folder))
    _clear(folder)
    with gzip.open(folder / "part-00000.json.gz", "wt") as out:
        for row in t.to_pylist():
            out.write(json.dumps(row) + "\n")


def to_orc(folder: Path) -> None:
    t = _table(folder)
    _clear(folder)
    porc.write_table(t, str(folder / "part-00000.orc"))


def garbage(folder: Path) -> None:
    for f in folder.glob("*.parquet"):
        f.write_bytes(os.urandom(2048))


def truncated(folder: Path) -> None:
    for f in folder.glob("*.parquet"):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def emptied(folder: Path) -> None:
    _clear(folder)
    (folder / "_SUCCESS").write_text("")


def file_not_folder(folder: Path) -> None:
    t = _table(folder)
    shutil.rmtree(folder)
    pcsv.write_csv(_text_ts(t), folder)  # the path itself is now one CSV file


def nested(folder: Path) -> None:
    sub = folder / "v2"
    sub.mkdir()
    for f in list(folder.glob("*.parquet")):
        f.rename(sub / f.name)


def mixed(folder: Path) -> None:
    t = _table(folder)
    pcsv.write_csv(_text_ts(t.slice(0, 10)), folder / "late-export.csv")


def gzip_garbage(folder: Path) -> None:
    import gzip

    for f in folder.glob("*.parquet"):
        f.write_bytes(gzip.compress(os.urandom(512)))


# fault -> (break it, the outcome's status, the fixer when proposed)
FAULTS = {
    "csv": (to_csv, "proposed", "rule:input_format"),
    "json_gz": (to_json_gz, "proposed", "rule:input_format"),
    "orc": (to_orc, "proposed", "rule:input_format"),
    "garbage": (garbage, "declined", None),
    "truncated": (truncated, "declined", None),
    "emptied": (emptied, "declined", None),
    "file_not_folder": (file_not_folder, None, None),  # Spark may read a lone CSV file as Parquet's error
    "nested": (nested, "proposed", "rule:input_format"),
    "mixed": (mixed, "declined", None),
    "gzip_garbage": (gzip_garbage, "declined", None),
}


def _repo(base: Path, retail_data: Path) -> Path:
    repo, origin = base / "repo", base / "origin.git"
    (repo / "jobs").mkdir(parents=True)
    lines = ["pipelines:"]
    for fault in FAULTS:
        shutil.copytree(retail_data / "orders", repo / "data" / fault / "orders")
        lines += [f"  mix_{fault}:", "    job: jobs/mix.sql", "    inputs:",
                  f'      orders: {{path: "data/{fault}/orders", format: parquet}}',
                  f'    output: {{path: "output/mix_{fault}", format: parquet}}']
    (repo / "healer.yml").write_text("\n".join(lines) + "\n")
    (repo / "jobs" / "mix.sql").write_text(JOB)
    (repo / ".gitignore").write_text("data/\noutput/\n")
    git = ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com"]
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "mix pipelines"],
                 ["remote", "add", "origin", str(origin)], ["push", "-q", "origin", "main"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    return repo


@pytest.mark.slow
@pytest.mark.spark
def test_every_input_fault_ends_in_a_json_outcome(spark, retail_data, tmp_path, monkeypatch):
    from healer.runner.run import run_pipeline

    home = tmp_path / "home"
    monkeypatch.setenv("HEALER_HOME", str(home))
    monkeypatch.delenv("HEALER_LEDGER_URL", raising=False)
    ledger = Ledger()
    repo = _repo(tmp_path, retail_data)
    for fault, (breaks, _, _) in FAULTS.items():
        assert run_pipeline(repo, f"mix_{fault}", spark=spark, ledger=ledger, check=False).ok
        breaks(repo / "data" / fault / "orders")
        failed = run_pipeline(repo, f"mix_{fault}", spark=spark, ledger=ledger, check=False)
        assert not failed.ok and failed.stage == "input", (fault, failed.stage, failed.error_message)

    env = {**os.environ, "HEALER_HOME": str(home), "HEALER_LLM": "off", "HEALER_FORGE": "local"}
    env.pop("HEALER_LEDGER_URL", None)
    env.pop("ANTHROPIC_API_KEY", None)
    done = subprocess.run([str(HEALER), "heal", "--repo", str(repo), "--all", "--json"], capture_output=True,
                          text=True, env=env, timeout=1800)
    assert done.stdout.strip(), done.stderr[-2000:]
    outcomes = {o["pipeline"]: o for o in json.loads(done.stdout.strip().splitlines()[-1])}
    assert set(outcomes) == {f"mix_{f}" for f in FAULTS}, done.stderr[-2000:]
    recorded = {row["pipeline"]: row for row in ledger.select(heals)}
    for fault, (_, status, fixer) in FAULTS.items():
        o = outcomes[f"mix_{fault}"]
        assert o["status"] in ("proposed", "declined", "error"), (fault, o)
        assert o["reason"] and "\n" not in o["reason"] and "Traceback" not in o["reason"], (fault, o["reason"])
        assert "\tat " not in o["reason"] and "java." not in o["reason"].split(":")[0], (fault, o["reason"])
        if status:
            assert o["status"] == status, (fault, o["status"], o["reason"])
        if fixer:
            assert o["fixer"] == fixer, (fault, o)
        assert o["category"] in ("unreadable_input", "missing_table"), (fault, o["category"])
        row = recorded[f"mix_{fault}"]
        assert row["status"] == o["status"] and row["reason"], (fault, row)
    # the evidence says what is there
    csv_evidence = outcomes["mix_csv"]["evidence"]["unreadable"]["orders"]
    assert csv_evidence["format"] == "csv" and csv_evidence["layout"] == "flat", csv_evidence
    assert "files are not of one format" in outcomes["mix_mixed"]["reason"] or \
        "not of one format" in outcomes["mix_mixed"]["reason"], outcomes["mix_mixed"]["reason"]
