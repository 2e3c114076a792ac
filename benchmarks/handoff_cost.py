"""What handing a failure to the healer costs the failing task, in milliseconds.

    python -m benchmarks.handoff_cost [--tasks 60] [--warm-up 5]

Sets up a real Airflow in a temporary AIRFLOW_HOME (``airflow db migrate``, SQLite), then runs
one DAG through ``dag.test()`` whose tasks fail the way a ``HealerPipelineOperator`` task fails:
each records its failed run in the ledger and raises ``RunFailed`` carrying it. Every task's
``on_failure_callback`` is ``heal_on_failure(pipeline=..., repo=...)`` inside a timer: the hand-off as
a failing task pays it, in Airflow's own task runner, with its supervisor connection. The
Healer plugin's listener is loaded too (these tasks are not healer-managed: it returns at once).

For comparison, the same callback then times one ``TriggerDagRun`` request through the task's
supervisor: the round trip the hand-off used to make before it returned. Afterwards it checks
that every hand-off waits in the ledger and that the healer DAG's pick-up finds all of them.
Prints p50/p95/max over the timed hand-offs (the first ``--warm-up`` are left out: they load
modules once per worker process).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMINGS = "HANDOFF_BENCH_TIMINGS"  # the file each callback appends its figures to


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__HEALER__ENABLED": "True",
        "HEALER_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
        "HEALER_HOME": str(home / "healer"),
    }


class TimedCallback:
    """``heal_on_failure(pipeline=..., repo=...)`` as the task runs it, timed; then a TriggerDagRun
    round trip, timed."""

    def __init__(self, pipeline: str, repo: str):
        from healer.airflow.handoff import heal_on_failure

        self.callback = heal_on_failure(pipeline=pipeline, repo=repo)

    def __call__(self, context) -> None:
        started = time.perf_counter()
        self.callback(context)
        handoff_ms = (time.perf_counter() - started) * 1000
        trigger_ms = _trigger_round_trip(context["ti"])
        with open(os.environ[TIMINGS], "a") as out:
            out.write(f"{handoff_ms:.3f} {trigger_ms:.3f}\n")


def _trigger_round_trip(ti) -> float:
    from airflow.sdk.execution_time.comms import TriggerDagRun
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    started = time.perf_counter()
    SUPERVISOR_COMMS.send(TriggerDagRun(dag_id=ti.dag_id, run_id=f"bench__{secrets.token_hex(6)}", conf={}))
    return (time.perf_counter() - started) * 1000


def failing_task(pipeline: str, repo: str, ti=None):
    """What a HealerPipelineOperator does when its run fails: the run is in the ledger with the
    task's Airflow ids (the callback finds it by them), and RunFailed carries it."""
    from healer.airflow.runs import task_context
    from healer.errors import RunFailed
    from healer.ledger import Ledger, RunRecord, utcnow

    ledger = Ledger()
    run = RunRecord(pipeline=pipeline, repo=repo, status="failed", stage="job", context=task_context(ti, "airflow"),
                    error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION", error_params={"objectName": "`unit_price`"},
                    error_message="[UNRESOLVED_COLUMN.WITH_SUGGESTION] unit_price cannot be resolved",
                    started_at=utcnow(), finished_at=utcnow())
    ledger.start_run(run)
    raise RunFailed(f"{pipeline} failed at stage job", "job", run=run)


def build_dag(tasks: int, repo: str):
    import datetime as dt

    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    with DAG("handoff_bench", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
             catchup=False, max_active_tasks=1) as dag:
        for i in range(tasks):
            PythonOperator(task_id=f"pipeline_{i:03d}", python_callable=failing_task,
                           op_kwargs={"pipeline": f"pipeline_{i:03d}", "repo": repo},
                           on_failure_callback=TimedCallback(f"pipeline_{i:03d}", repo))
    return dag


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=60, help="failing tasks (hand-offs) in the DAG")
    parser.add_argument("--warm-up", type=int, default=5, help="first hand-offs left out of the figures")
    args = parser.parse_args(argv)
    if args.tasks - args.warm_up < 50:
        parser.error("time at least 50 hand-offs: --tasks minus --warm-up must be >= 50")

    home = Path(tempfile.mkdtemp(prefix="healer-handoff-bench-"))
    (home / "dags").mkdir()
    os.environ.update(_airflow_env(home))
    os.environ[TIMINGS] = str(home / "timings.txt")
    print(f"airflow home {home}: migrating the metadata database …", file=sys.stderr)
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if migrate.returncode != 0:
        raise SystemExit(f"airflow db migrate failed: {migrate.stdout[-2000:]}{migrate.stderr[-2000:]}")

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    from healer.airflow import queue
    from healer.ledger import Ledger

    dag = build_dag(args.tasks, str(home / "repo"))
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(include_examples=False, collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    print(f"running {args.tasks} failing tasks with dag.test() …", file=sys.stderr)
    started = time.monotonic()
    dag.test()
    wall = time.monotonic() - started

    rows = [tuple(map(float, line.split())) for line in Path(os.environ[TIMINGS]).read_text().splitlines()]
    if len(rows) != args.tasks:
        raise SystemExit(f"expected {args.tasks} timed hand-offs, the callbacks recorded {len(rows)}")
    handoff = [r[0] for r in rows[args.warm_up:]]
    trigger = [r[1] for r in rows[args.warm_up:]]
    waiting = queue.waiting(Ledger(), "healer")
    lost = args.tasks - len(waiting)

    print(f"\nhand-off cost inside a failing Airflow task ({len(handoff)} hand-offs, Airflow's task runner, "
          f"SQLite ledger; dag.test() wall {wall:.1f} s)")
    print(f"{'':44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in (("hand-off (record the failure, return)", handoff),
                         ("a TriggerDagRun round trip (no longer made)", trigger)):
        print(f"{name:44} {statistics.median(values):8.1f} {percentile(values, 0.95):8.1f} {max(values):8.1f}")
    print(f"hand-offs waiting for the healer DAG's pick-up: {len(waiting)} of {args.tasks} (lost: {lost})")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
