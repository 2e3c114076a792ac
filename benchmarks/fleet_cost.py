"""How long the fleet dashboard's figures take as the ledger grows.

    python -m benchmarks.fleet_cost [--heals 500,2000] [--repeat 3]

For each size, a fresh SQLite ledger gets that many heals (the tests' recorded history, with
the real heal of tests/fixtures/fleet/real_heal.json as the template, repeated over earlier
weeks), then ``healer.fleet.figures`` runs for the default 30 days and for a year; prints the
median seconds of each, and the page's render time (figures to HTML).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the recorded-history writer the tests use

from fleet_history import load_template, plan, write_history  # noqa: E402

from healer import fleet  # noqa: E402
from healer.airflow import dashboard, pages  # noqa: E402
from healer.ledger import Ledger  # noqa: E402


def build(path: Path, heals: int, today: dt.date) -> Ledger:
    ledger = Ledger(f"sqlite:///{path}")
    heal, run, pr = load_template()
    one = plan(today)
    weeks = -(-heals // len(one))
    for week in range(weeks):
        shifted = [replace(p, failed_at=p.failed_at - dt.timedelta(days=7 * week)) for p in one]
        write_history(ledger, heal, run, pr, shifted[: heals - week * len(one)])
    return ledger


def timed(fn, repeat: int) -> float:
    spent = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - t0)
    return statistics.median(spent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heals", default="500,2000", help="ledger sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    today = dt.datetime.now(dt.timezone.utc).date()
    month = fleet.FleetFilter.parse(today=today)
    year = fleet.FleetFilter.parse(since=str(today - dt.timedelta(days=365)), until=str(today))
    print(f"{'heals':>6}  {'build (s)':>9}  {'30 days (s)':>11}  {'365 days (s)':>12}  {'render (s)':>10}")
    for size in [int(n) for n in args.heals.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            ledger = build(Path(tmp) / "ledger.db", size, today)
            built = time.perf_counter() - t0
            last_month = timed(lambda: fleet.figures(ledger, month), args.repeat)
            last_year = timed(lambda: fleet.figures(ledger, year), args.repeat)
            figures = fleet.figures(ledger, year)
            render = timed(lambda: pages.render("fleet", prefix="/healer", user="bench",
                                                **dashboard.values(figures)), args.repeat)
            print(f"{size:>6}  {built:>9.1f}  {last_month:>11.3f}  {last_year:>12.3f}  {render:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
