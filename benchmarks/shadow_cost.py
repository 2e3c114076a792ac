"""What the shadow run and the data diff cost as data grows, beside the sample gate.

    python -m benchmarks.shadow_cost [--rows 50000,500000,5000000]

For each size: the retail data with that many order lines, a real pipeline repo, a good run,
upstream renames a column, the run fails, and an in-process heal (rules only) fixes it.
Prints, per size, the sample gate's seconds (the candidate on the samples, worker start-up
included), the shadow run's (the candidate on every input row, isolated the same way) and
the data diff's share of it. The sample gate must stay flat as data grows; the shadow run
grows with the data: that is its job. Figures go to benchmarks/results/shadow_cost.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "shadow_cost.json"
PIPELINE = "revenue_by_category"


def measure(rows: int, spark, workdir: Path) -> dict:
    from healer.demo import make_repo
    from healer.errors import RunFailed
    from healer.examples import drift
    from healer.examples.generate import generate, write
    from healer.heal import heal
    from healer.ledger import Ledger
    from healer.runner.run import run_pipeline

    base = workdir / f"rows-{rows}"
    repo = make_repo(base / "repo", base / "origin.git", template=ROOT / "pipelines")
    t0 = time.monotonic()
    write(generate(rows), repo / "data")
    generated = time.monotonic() - t0
    ledger = Ledger(f"sqlite:///{base / 'ledger.db'}")
    run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger)
    drift.rename_column(repo / "data", "order_items", "unit_price", "item_price")
    try:
        run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger)
    except RunFailed:
        pass
    outcome = heal(repo, PIPELINE, spark=spark, ledger=ledger)
    [row] = [c for c in ledger_candidates(ledger, outcome.heal) if c["passed"]] or [None]
    verdict = row["verdict"] if row else {}
    shadow = verdict.get("shadow") or {}
    total = float(verdict.get("duration_s") or 0.0)
    return {"order_lines": rows, "status": outcome.status, "ready": (outcome.validation or {}).get("ready"),
            "data_diff": (outcome.validation or {}).get("data_diff"), "input_rows": shadow.get("rows_read"),
            "sample_gate_s": round(total - float(shadow.get("seconds") or 0.0), 2),
            "shadow_s": shadow.get("seconds"), "diff_s": shadow.get("diff_seconds"),
            "heal_s": outcome.timings.get("total"), "generate_s": round(generated, 1)}


def ledger_candidates(ledger, heal_id: int) -> list[dict]:
    from sqlalchemy import select

    from healer.ledger import candidates

    with ledger.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(candidates).where(candidates.c.heal_id == heal_id))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shadow_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="50000,500000,5000000", help="order-line counts, comma separated")
    args = parser.parse_args(argv)
    from healer.expectations import preload
    from healer.runner.session import get_spark

    preload()
    spark = get_spark("healer-shadow-cost")
    workdir = Path(tempfile.mkdtemp(prefix="healer-shadow-cost-"))
    results = []
    try:
        for rows in (int(r) for r in args.rows.split(",")):
            result = measure(rows, spark, workdir)
            results.append(result)
            print(json.dumps(result), flush=True)
            shutil.rmtree(workdir / f"rows-{rows}", ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    header = f"{'order lines':>12} {'input rows':>11} {'sample gate s':>14} {'shadow s':>9} {'of it diff s':>13} {'heal s':>7}  verdict"
    print(header + "\n" + "-" * len(header))
    for r in results:
        print(f"{r['order_lines']:>12,} {r['input_rows'] or 0:>11,} {r['sample_gate_s']:>14} {r['shadow_s']:>9} "
              f"{r['diff_s']:>13} {r['heal_s']:>7}  {'ready' if r['ready'] else 'draft'}: {r['data_diff']}")
    if len(results) > 1 and results[0]["sample_gate_s"]:
        print(f"sample gate, {results[1]['order_lines']:,} vs {results[0]['order_lines']:,} order lines: "
              f"{results[1]['sample_gate_s'] / results[0]['sample_gate_s']:.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
