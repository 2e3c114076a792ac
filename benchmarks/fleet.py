"""`make bench-fleet`: a storm healed by Airflow's Celery workers, timed.

    python -m benchmarks.fleet [--repos 2] [--per-repo 4] [--workers 1,2] [--no-cluster]

Starts the Celery deployment of benchmarks/fleet_deployment.py (scheduler, dag-processor,
triggerer, api-server, Celery workers; PostgreSQL metadata DB and ledger; Redis broker),
then for each worker count: a fresh world of ``repos`` repos × ``per-repo`` SQL pipelines over
one shared table, every pipeline's last good run, one upstream rename, and the DAG that runs
every pipeline at once. It prints, per worker count:

- time from the first failure to each repo's storm PR;
- heals per minute (failures accounted for / minutes from the first failure to the last outcome);
- p50/p90 time-to-PR of the failures (each failure's end to its PR's opening);
- duplicate PRs (PRs beyond one per repo and root cause) and lost failures (no final outcome,
  or a hand-off left open): both must be 0;

and, unless ``--no-cluster``, the time-to-PR of one rule fix on a Spark standalone cluster
beside ``local[*]`` (benchmarks/cluster_cost.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import fleet_deployment
from benchmarks.fleet_world import break_upstream, make_world, run_all_good, write_storm_dag

BENCH_ENV = {"HEALER_STORM_WINDOW": "60", "HEALER_LEASE_SECONDS": "60"}


@dataclass(frozen=True)
class Round:
    workers: int
    failures: int
    accounted: int
    lost: int
    prs: int
    duplicate_prs: int
    first_failure_to_pr: list[float]  # per storm PR, seconds
    time_to_pr: list[float]  # per failure, seconds
    heals_per_minute: float
    wall: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def storm_round(d, spark, base: Path, workers: int, repos: int, per_repo: int, timeout: float = 1800) -> Round:
    from healer.airflow import queue
    from healer.ledger import Ledger, heals, prs

    ledger = Ledger(d.ledger_url)
    tag = f"w{workers}"
    world = make_world(base / tag, repos=repos, per_repo=per_repo, tag=f"{tag}")
    run_all_good(world, spark, ledger)
    dag_id = f"storm_{tag}"
    write_storm_dag(world, d.dags, dag_id)
    d.wait_for_dags(dag_id)
    names = {p for ps in world.pipelines.values() for p in ps}
    break_upstream(world)
    started = time.monotonic()
    d.trigger(dag_id)
    deadline = time.monotonic() + timeout
    while True:
        failed = [r for r in ledger.runs(status="failed", limit=500) if r.pipeline in names]
        finals = {}
        for r in failed:
            rows = [h for h in ledger.select(heals, heals.c.run_id == r.id, limit=20)
                    if h["status"] not in ("running", "abandoned")]
            if rows:
                finals[r.id] = rows[0]
        open_handoffs = [h for r in failed for h in queue.for_run(ledger, r.id) if h["status"] != queue.DONE]
        if len(failed) == len(names) and len(finals) == len(failed) and not open_handoffs:
            break
        if time.monotonic() > deadline:
            print(f"  round with {workers} worker(s): gave up after {timeout:.0f}s "
                  f"({len(finals)}/{len(names)} failures with an outcome)", file=sys.stderr)
            break
        d.check_alive()
        time.sleep(2)
    wall = time.monotonic() - started
    opened = {p["id"]: p for p in ledger.select(prs, prs.c.pipeline.is_not(None), limit=1000)
              if set((p["pipeline"] or "").split(",")) & names}
    per_repo_prs: dict[str, set[int]] = {}
    to_pr = []
    for r in failed:
        final = finals.get(r.id)
        if final and final["pr_id"] in opened:
            per_repo_prs.setdefault(r.repo, set()).add(final["pr_id"])
            to_pr.append((opened[final["pr_id"]]["created_at"] - r.finished_at).total_seconds())
    first = min((r.finished_at for r in failed), default=None)
    last = max((f["finished_at"] for f in finals.values() if f["finished_at"]), default=None)
    minutes = (last - first).total_seconds() / 60 if first and last else float("nan")
    lost = len(names) - len(finals) + sum(1 for r in failed for h in queue.for_run(ledger, r.id)
                                          if h["status"] != queue.DONE)
    return Round(workers=workers, failures=len(failed), accounted=len(finals), lost=lost, prs=len(opened),
                 duplicate_prs=len(opened) - len(per_repo_prs),
                 first_failure_to_pr=sorted((p["created_at"] - first).total_seconds() for p in opened.values()),
                 time_to_pr=to_pr, heals_per_minute=len(finals) / minutes if minutes == minutes and minutes else 0.0,
                 wall=wall)


def print_round(r: Round) -> None:
    firsts = ", ".join(f"{s:.0f}" for s in r.first_failure_to_pr) or "-"
    print(f"{r.workers} worker(s): {r.failures} failures, {r.accounted} accounted for, {r.prs} PRs")
    print(f"  first failure -> storm PR     {firsts} s")
    print(f"  heals per minute              {r.heals_per_minute:.1f}")
    print(f"  time-to-PR p50 / p90          {percentile(r.time_to_pr, 0.5):.0f} s / {percentile(r.time_to_pr, 0.9):.0f} s")
    print(f"  duplicate PRs                 {r.duplicate_prs}")
    print(f"  lost failures                 {r.lost}")
    print(f"  (round wall time {r.wall:.0f} s)")


def cluster_row() -> None:
    from benchmarks import cluster_cost

    try:
        print(cluster_cost.render(cluster_cost.measure(echo=lambda line: print(f"  {line}", flush=True))))
    except Exception as exc:
        print(f"single rule fix, cluster vs local[*]: {type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=2)
    parser.add_argument("--per-repo", type=int, default=4)
    parser.add_argument("--workers", default="1,2", help="worker counts to run the storm with")
    parser.add_argument("--no-cluster", action="store_true", help="skip the standalone cluster row")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    if args.repos < 1 or args.per_repo < 1 or not counts or min(counts) < 1:
        parser.error("--repos, --per-repo and --workers need whole numbers >= 1")

    from healer.expectations import preload
    from healer.runner.session import get_spark

    base = Path(tempfile.mkdtemp(prefix="healer-bench-fleet-"))
    t0 = time.monotonic()
    d = fleet_deployment.start(base, workers=max(counts), healer_env=BENCH_ENV)
    print(f"Celery deployment up in {time.monotonic() - t0:.0f} s ({max(counts)} workers, pool of 2 heals)")
    try:
        preload()
        spark = get_spark("healer-bench-fleet", quick_jit=True)
        rounds = []
        for n in sorted(counts):
            for i in range(1, max(counts) + 1):  # exactly n workers running
                name = f"w{i}"
                if i <= n and name not in d.procs:
                    d.start_worker(name)
                elif i > n and name in d.procs:
                    d.stop(name)
            rounds.append(storm_round(d, spark, base, n, args.repos, args.per_repo))
            print_round(rounds[-1])
    finally:
        fleet_deployment.stop_all(d)
    if not args.no_cluster:
        cluster_row()
    bad = [r for r in rounds if r.duplicate_prs or r.lost]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
