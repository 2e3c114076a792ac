"""Time-to-PR of a single rule fix on a Spark standalone cluster beside ``local[*]``.

    python -m benchmarks.cluster_cost [--rows 30000] [--repeat 1]

Starts a standalone master and one worker on this machine (``benchmarks.spark_cluster``: the
worker under bubblewrap with its own /tmp, 1 core, 1 GiB), makes the demo's breakage
(upstream renames order_items.unit_price) in a fresh pipeline repo per heal, and times
`healer heal --json` in a new process until its pull request is open on the local forge:
once with ``local[*]``, once with ``HEALER_SPARK_MASTER=spark://…`` and ``HEALER_SCRATCH_URI``
on the directory the worker shares. Candidates run in local bubblewrap workers either way
(see README, Security model); on the cluster the heal's own session samples, judges and
diffs. Prints one row per setting.

``measure()`` is what ``make bench-fleet`` calls for its row; ``render()`` prints the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.isolation_cost import PIPELINE, ROOT, make_breakage
from benchmarks.spark_cluster import StandaloneCluster


@dataclass(frozen=True)
class CostRow:
    """One setting's heals: wall seconds to an open PR, and the heal's own stage timings (medians)."""

    setting: str  # "local[*]" or "standalone (1 worker, 1 core)"
    walls: tuple[float, ...]
    evidence_s: float
    sandbox_s: float
    propose_s: float

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


def heal_to_pr(repo: Path, env: dict[str, str]) -> tuple[float, dict]:
    """`healer heal --json` in a new process: (wall seconds, outcome); SystemExit unless a PR opened."""
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "healer.cli", "heal", "--repo", str(repo), "--pipeline", PIPELINE,
                           "--json"], env=env, cwd=repo, capture_output=True, text=True)
    wall = time.monotonic() - t0
    try:
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"healer heal printed no outcome: {done.stderr.strip()[-400:]}")
    if outcome.get("status") != "proposed" or not outcome.get("pr") or outcome.get("duplicate"):
        raise SystemExit(f"healer heal opened no pull request: {outcome.get('status')}: {outcome.get('reason')}")
    return wall, outcome


def _stage(outcomes: list[dict], *names: str) -> float:
    return statistics.median(sum(float((o.get("timings") or {}).get(n) or 0.0) for n in names) for o in outcomes)


def measure(rows: int = 30000, repeat: int = 1, cluster: StandaloneCluster | None = None,
            echo=lambda line: None) -> list[CostRow]:
    """Time ``repeat`` heals to PR on ``local[*]`` and on the standalone cluster (started here unless given).

    Each heal gets its own breakage (a heal that opened a PR makes the next one a duplicate).
    The breakage's runs use ``local[*]``; only the timed heal differs between the settings.
    """
    base = Path(tempfile.mkdtemp(prefix="healer-cluster-cost-"))
    own = cluster is None
    try:
        if own:
            cluster = StandaloneCluster.start(base / "daemons", base / "shared")
        shared = Path(cluster.shared)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "ANTHROPIC_", "SPARK_"))}
        env.update(PYTHONPATH=str(ROOT))
        settings = {"local[*]": {}, "standalone (1 worker, 1 core)": cluster.client_env((shared / "scratch").as_uri())}
        results = []
        for name, extra in settings.items():
            walls, outcomes = [], []
            for i in range(repeat):
                work = shared / f"{len(results)}-{i}"
                work.mkdir(parents=True)
                # a ledger per heal: one ledger would find the first PR and call the next heal its duplicate
                own_env = {**env, "HEALER_HOME": str(work / ".healer")}
                repo = make_breakage(work, rows, own_env)
                wall, outcome = heal_to_pr(repo, {**own_env, **extra})
                walls.append(round(wall, 2))
                outcomes.append(outcome)
                echo(f"{name}: heal {i + 1}/{repeat}: {wall:.1f} s to PR #{outcome['pr']}")
            results.append(CostRow(name, tuple(walls), _stage(outcomes, "evidence"), _stage(outcomes, "sandbox"),
                                   _stage(outcomes, "proposal")))
        return results
    finally:
        if own and cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def render(rows: list[CostRow]) -> str:
    lines = [f"{'single rule fix, time to PR':<32} {'median s':>9} {'min s':>7} {'max s':>7} "
             f"{'evidence s':>11} {'sandbox s':>10}"]
    for r in rows:
        lines.append(f"{r.setting:<32} {r.median:>9.1f} {min(r.walls):>7.1f} {max(r.walls):>7.1f} "
                     f"{r.evidence_s:>11.1f} {r.sandbox_s:>10.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30000, help="order lines (HealBench uses 30 000)")
    parser.add_argument("--repeat", type=int, default=1, help="heals per setting (each on a fresh breakage)")
    args = parser.parse_args(argv)
    rows = measure(args.rows, args.repeat, echo=lambda line: print(line, flush=True))
    print(f"\n{args.rows:,} order lines; `healer heal --json` in a new process until its PR is open, "
          f"{args.repeat} heal(s) per setting")
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
