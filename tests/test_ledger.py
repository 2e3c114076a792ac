"""The run ledger: concurrent writers on SQLite, queries, JSON round trips, and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from healer.errors import LedgerError
from healer.ledger import Ledger, RunRecord, utcnow

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from healer.ledger import Ledger, RunRecord, utcnow

    url, name, go, n, other = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    Path(sys.argv[3] + "." + name).touch()          # ready
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    ledger = Ledger(url)                            # both race to create the tables, too
    ids = []
    for i in range(n):
        run = ledger.start_run(RunRecord(pipeline=name, repo="/repo", started_at=utcnow(), context={"i": i}))
        run.status, run.row_count, run.finished_at = "success", i, utcnow()
        run.output_profile = {"row_count": i, "writer": name}
        ledger.finish_run(run)
        ids.append(run.id)
        if i == 0:  # on a loaded machine one writer could finish before the other starts: meet once
            Path(f"{go}.{name}.first").touch()
            while not Path(f"{go}.{other}.first").exists() and time.monotonic() < deadline:
                time.sleep(0.005)
    print(json.dumps(ids))
""")


def test_two_processes_write_runs_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared' / 'ledger.db'}"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    go = tmp_path / "go"
    n = 50
    procs = [subprocess.Popen([sys.executable, str(script), url, name, str(go), str(n), other], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, other in (("writer_a", "writer_b"), ("writer_b", "writer_a"))]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{name}").exists() for name in ("writer_a", "writer_b")):
        assert time.monotonic() < deadline, "writers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()  # start both at once
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    ids_a, ids_b = (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)

    assert len(ids_a) == len(ids_b) == n
    assert len(set(ids_a) | set(ids_b)) == 2 * n  # distinct ids across processes
    assert set(ids_a) & set(ids_b) == set()
    # the writes interleaved (both processes were writing at the same time)
    assert min(ids_b) < max(ids_a) and min(ids_a) < max(ids_b)

    ledger = Ledger(url)
    runs = ledger.runs(limit=1000)
    assert len(runs) == 2 * n
    assert all(r.status == "success" for r in runs)
    for name, ids in (("writer_a", ids_a), ("writer_b", ids_b)):
        mine = ledger.runs(pipeline=name, limit=1000)
        assert sorted(r.id for r in mine) == sorted(ids)
        assert all(r.row_count == r.context["i"] == r.output_profile["row_count"] for r in mine)
        assert all(r.output_profile["writer"] == name for r in mine)
        assert ledger.last_success(name).id == max(ids)


def add(ledger: Ledger, pipeline: str, status: str, repo: str = "/repo", **fields) -> RunRecord:
    run = ledger.start_run(RunRecord(pipeline=pipeline, repo=repo, started_at=utcnow(), **fields))
    run.status, run.finished_at = status, utcnow()
    ledger.finish_run(run)
    return run


def test_last_success_picks_the_newest_success(ledger):
    first = add(ledger, "p", "success", row_count=1)
    add(ledger, "p", "failed", stage="job")
    second = add(ledger, "p", "success", row_count=2)
    add(ledger, "p", "failed", stage="audit")
    ledger.start_run(RunRecord(pipeline="p", repo="/repo"))  # still running
    add(ledger, "q", "success")  # another pipeline, newer
    other_repo = add(ledger, "p", "success", repo="/other")

    assert ledger.last_success("p").id == other_repo.id
    assert ledger.last_success("p", repo="/repo").id == second.id
    assert ledger.last_success("p", repo="/repo").row_count == 2
    assert ledger.last_success("p", before_id=second.id).id == first.id
    assert ledger.last_success("p", before_id=first.id) is None
    assert ledger.last_success("nope") is None

    newest_first = ledger.runs(pipeline="p", limit=100)
    assert [r.id for r in newest_first] == sorted((r.id for r in newest_first), reverse=True)
    assert len(newest_first) == 6
    assert [r.stage for r in ledger.runs(pipeline="p", status="failed")] == ["audit", "job"]
    assert len(ledger.runs(pipeline="p", limit=2)) == 2


SCHEMA = {"type": "struct", "fields": [
    {"name": "unit_price", "type": "double", "nullable": True, "metadata": {}},
    {"name": "tags", "type": {"type": "array", "elementType": "string", "containsNull": True},
     "nullable": True, "metadata": {"comment": "ünïcødé"}}]}
PROFILE = {"row_count": 3, "columns": {"unit_price": {"type": "double", "null_fraction": 1 / 3, "distinct": 2,
                                                      "min": -1.5, "max": 2.25, "sum": 0.75}}}


def full_record(pipeline: str) -> RunRecord:
    return RunRecord(
        pipeline=pipeline, repo="/repos/retail", status="failed", commit="a" * 40, dirty=True, stage="audit",
        error_class="EXPECTATIONS_FAILED", error_params={"failed": "1", "objectName": "`i`.`unit_prize`"},
        error_message="expectations failed: ...", traceback="Traceback...\n  line 1\n",
        failed_expectations=[{"expectation": "column_values_between(column=revenue, min=0)", "success": False,
                              "unexpected_count": 2, "examples": [-1.5, None, "x"], "observed": None}],
        input_schemas={"order_items": SCHEMA}, input_profiles={"order_items": PROFILE},
        input_locations={"order_items": "/data/order_items", "products": "table sales.products"},
        output_schema=SCHEMA, output_profile=PROFILE, output_location="/out/x", row_count=2**40,
        context={"source": "airflow", "dag_id": "d", "try_number": 2, "sandbox": False},
        started_at=utcnow(), finished_at=utcnow(), duration_s=1.25)


JSON_FIELDS = ["error_params", "failed_expectations", "input_schemas", "input_profiles", "input_locations",
               "output_schema", "output_profile", "context"]
PLAIN_FIELDS = ["pipeline", "repo", "status", "commit", "dirty", "stage", "error_class", "error_message",
                "traceback", "output_location", "row_count", "duration_s"]


def assert_round_trip(ledger: Ledger, pipeline: str) -> RunRecord:
    record = full_record(pipeline)
    record.id = ledger.start_run(RunRecord(pipeline=pipeline, repo=record.repo)).id
    ledger.finish_run(record)  # every field written by the update
    stored = ledger.get_run(record.id)
    for name in JSON_FIELDS + PLAIN_FIELDS:
        assert getattr(stored, name) == getattr(record, name), name
    for name in ("started_at", "finished_at"):  # the same instant, with its zone (naive == aware is False)
        assert getattr(stored, name).tzinfo is not None, name
        assert getattr(stored, name) == getattr(record, name), name
    # JSON fields come back as the same plain structures, not strings
    assert stored.input_schemas["order_items"]["fields"][1]["metadata"]["comment"] == "ünïcødé"
    assert stored.failed_expectations[0]["examples"] == [-1.5, None, "x"]
    assert ledger.get_run(record.id + 10_000) is None
    return stored


def test_get_run_round_trips_json_fields(ledger):
    assert_round_trip(ledger, "roundtrip")


def test_start_run_sets_the_id_and_finish_run_updates_in_place(ledger):
    run = ledger.start_run(RunRecord(pipeline="p", repo="/r"))
    assert isinstance(run.id, int)
    assert ledger.get_run(run.id).status == "running"
    run.status, run.stage, run.error_message = "failed", "input", "input 'orders': path /x not found"
    ledger.finish_run(run)
    stored = ledger.get_run(run.id)
    assert (stored.status, stored.stage) == ("failed", "input")
    assert stored.one_line() == f"run {run.id}: p failed at input: input 'orders': path /x not found"
    assert len(ledger.runs()) == 1


def test_datetimes_round_trip_timezone_aware_on_sqlite(ledger):
    run = add(ledger, "p", "success")
    stored = ledger.get_run(run.id)
    assert stored.started_at.tzinfo is not None
    assert stored.started_at == run.started_at


def test_unreachable_database_is_a_one_line_ledger_error():
    with pytest.raises(LedgerError) as info:
        Ledger("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere?connect_timeout=3")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("ledger postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")


# -- PostgreSQL ------------------------------------------------------------------------

PG = "postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url():
    """The local PostgreSQL server, or a skip that says why it cannot be used."""
    import psycopg2

    try:
        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {PG} is not reachable: {str(exc).strip().splitlines()[0]}")
    return f"postgresql+psycopg2://{PG}"


@pytest.fixture
def pg_pipeline(pg_url):
    """A pipeline name of this test's own; its rows are removed afterwards."""
    import sqlalchemy as sa

    name = f"pg-test-{uuid.uuid4().hex[:12]}"
    yield name
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM runs WHERE pipeline = :p"), {"p": name})
    engine.dispose()


@pytest.mark.postgres
def test_postgres_round_trip_and_last_success(pg_url, pg_pipeline):
    ledger = Ledger(pg_url)
    stored = assert_round_trip(ledger, pg_pipeline)  # the datetimes come back as the same aware instants
    assert stored.started_at.utcoffset() == dt.timedelta(0), stored.started_at  # and in UTC

    first = add(ledger, pg_pipeline, "success", row_count=1)
    add(ledger, pg_pipeline, "failed", stage="job")
    second = add(ledger, pg_pipeline, "success", row_count=2)
    add(ledger, pg_pipeline, "failed", stage="audit")
    assert ledger.last_success(pg_pipeline).id == second.id
    assert ledger.last_success(pg_pipeline, before_id=second.id).id == first.id
    assert [r.id for r in ledger.runs(pipeline=pg_pipeline, limit=3)] == sorted(
        (r.id for r in ledger.runs(pipeline=pg_pipeline, limit=3)), reverse=True)


@pytest.mark.postgres
def test_postgres_plain_url(pg_url, pg_pipeline):
    ledger = Ledger(f"postgresql://{PG}")
    run = add(ledger, pg_pipeline, "success")
    assert ledger.last_success(pg_pipeline).id == run.id
