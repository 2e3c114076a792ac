"""``python -m benchmarks.healbench`` (``make bench``): run HealBench, print and write the scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.healbench.bench import RESULTS, passed, run_bench
from benchmarks.healbench.scenarios import SCENARIOS, by_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.healbench", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30000, help="order lines of generated data (default 30000)")
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the repos and data here")
    parser.add_argument("--warm", action="store_true",
                        help="heal in the bench's own process and Spark session (faster; time-to-PR then adds the "
                             "measured start-up instead of timing a new `healer heal` process)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:32} {s.kind:6} {(s.rule or 'decline').replace('rule:', ''):16} {s.what}")
        return 0
    scenarios = by_name([n.strip() for n in args.only.split(",") if n.strip()]) if args.only else SCENARIOS
    results, summary = run_bench(scenarios, rows=args.rows, workdir=args.workdir, json_path=args.json,
                                 keep=args.workdir is not None, cold=not args.warm)
    return 0 if passed(results, summary) else 1


if __name__ == "__main__":
    sys.exit(main())
