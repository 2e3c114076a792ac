"""What the audit trail costs a heal: milliseconds per recorded event, and reading a heal's trail back.

    python -m benchmarks.audit_cost [--events 200] [--postgres postgresql://postgres@127.0.0.1:5432/test]

A heal of the demo's breakage records about 15 events (tests/test_governance_audit.py lists
them); each is one redacted INSERT in its own transaction, so a heal pays ~15 of these.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def measure(url: str, n: int) -> dict:
    from healer.governance import audit
    from healer.governance.audit import Action
    from healer.ledger import Ledger, heals, utcnow

    ledger = Ledger(url)
    heal_id = ledger.insert(heals, pipeline="bench", repo="/bench", status="running", started_at=utcnow())
    detail = dict(gate="sample", fixer="rule:renamed_column", passed=True, isolation="bubblewrap",
                  sample_rows={"order_items": 20000, "orders": 9000, "products": 200}, output_rows=96,
                  reasons=["expectations: 9/9 passed"], seconds=6.3)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        audit.record(ledger, heal_id, Action.GATE, **detail)
        times.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    read = audit.events(ledger, heal_id=heal_id)
    read_ms = (time.perf_counter() - t0) * 1000
    assert len(read) == n
    return {"median_ms": statistics.median(times), "p95_ms": sorted(times)[int(0.95 * (n - 1))],
            "read_ms": read_ms}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL ledger URL ('' to skip)")
    args = parser.parse_args(argv)
    urls = {"sqlite": f"sqlite:///{tempfile.mkdtemp(prefix='healer-audit-bench-')}/ledger.db"}
    if args.postgres:
        urls["postgresql"] = args.postgres
    print(f"{'ledger':<11} {'record median ms':>17} {'p95 ms':>8} {f'read {args.events} events ms':>22}")
    for name, url in urls.items():
        try:
            got = measure(url, args.events)
        except Exception as exc:  # an unreachable PostgreSQL is a line, not a traceback
            print(f"{name:<11} unavailable: {str(exc).splitlines()[0][:100]}")
            continue
        print(f"{name:<11} {got['median_ms']:>17.2f} {got['p95_ms']:>8.2f} {got['read_ms']:>22.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
