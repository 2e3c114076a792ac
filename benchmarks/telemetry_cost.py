"""What heal telemetry costs: the spans and metrics of one heal, off and on, and the Prometheus
endpoint's computation over a ledger of many heals.

    python -m benchmarks.telemetry_cost [--heals 2000] [--ledger 1000,10000]

1. The telemetry calls a proposed rule heal makes (a root span, 7 stages, 14 fixers, one
   candidate with its gate, sample run and shadow run, the outcome's attributes and metrics),
   repeated N times: with the ``OTEL_*`` variables unset (the default: no-op objects, nothing of
   OpenTelemetry imported), and exporting over OTLP/HTTP to a receiver on 127.0.0.1 (batched, in
   the SDK's background thread). Printed per heal, beside a 15 s heal.
2. ``/api/metrics``: ``ledger_figures`` + ``render`` over a SQLite ledger holding that many
   finished heals (outcomes of realistic size), in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("triage", "lease", "workspace", "evidence", "fixers", "sandbox", "proposal")
FIXERS = 14


def one_heal(telemetry) -> None:
    """The telemetry calls of one proposed rule heal, in the order heal() makes them."""
    trace = telemetry.start_heal("revenue_by_category", 42, {"traceparent": "00-" + "4b" * 16 + "-" + "0f" * 8 + "-01"})
    for stage in STAGES:
        with trace.stage(stage):
            if stage == "fixers":
                for i in range(FIXERS):
                    with telemetry.span("healer.fixer", {"healer.fixer": f"rule:{i}"}) as span:
                        span.set({"healer.candidates": i % 2})
            elif stage == "sandbox":
                with telemetry.span("healer.candidate", {"healer.fixer": "rule:1"}) as candidate:
                    for name in ("healer.gate", "healer.sample_run", "healer.shadow"):
                        with telemetry.span(name) as span:
                            span.set({"healer.passed": True})
                    candidate.set({"healer.passed": True})
    outcome = SimpleNamespace(pr=None, heal=7, status="proposed", fixer="rule:1", category="unresolved_column",
                              duplicate=False, fingerprint="f" * 16, draft=False, confidence=0.9, candidates=[{}],
                              llm={"usage": {"input_tokens": 0}}, timings={"sandbox": 9.5})
    trace.end(outcome, None, None)


def per_heal_us(n: int) -> float:
    from healer import telemetry

    telemetry.reset()
    one_heal(telemetry)  # the first call decides on or off (and on, starts the SDK)
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            one_heal(telemetry)
        samples.append((time.perf_counter() - t0) / n * 1e6)
    telemetry.flush()
    return statistics.median(samples)


def spans_cost(n: int) -> dict:
    for name in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[name]
    off = per_heal_us(n * 10)
    imported = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    sys.path.insert(0, str(ROOT / "tests"))
    from otlpserver import OtlpReceiver  # imports opentelemetry.proto: only after the count above
    with OtlpReceiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        on = per_heal_us(n)
        from healer import telemetry

        telemetry.reset()
        received = len(receiver.spans())
    return {"off_us": off, "on_us": on, "opentelemetry_modules_when_off": len(imported), "spans_received": received}


def endpoint_cost(sizes: list[int]) -> dict:
    from healer.ledger import Ledger, heals, prs, runs, utcnow
    from healer.telemetry import prometheus
    from healer.telemetry.figures import ledger_figures

    out = {}
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            ledger = Ledger(f"sqlite:///{tmp}/ledger.db")
            now = utcnow()
            evidence = {"diffs": [{"input": "order_items", "dropped": {"c%d" % i: "double" for i in range(20)}}],
                        "lineage": {f"out{i}": [f"in{i}"] * 5 for i in range(30)}}
            with ledger.engine.begin() as conn:
                conn.execute(runs.insert(), [dict(pipeline=f"p{i % 300}", repo="/r", status="failed", started_at=now,
                                                  finished_at=now) for i in range(size)])
                conn.execute(prs.insert(), [dict(forge="local", heal_id=i + 1, status=("open", "merged", "closed")[i % 3],
                                                 draft=bool(i % 4 == 0), created_at=now) for i in range(0, size, 2)])
                conn.execute(heals.insert(), [dict(
                    run_id=i + 1, pipeline=f"p{i % 300}", repo="/r", fingerprint="f", category="unresolved_column",
                    status=("proposed", "declined", "error")[i % 3], fixer="rule:renamed_column" if i % 3 == 0 else None,
                    pr_id=(i // 2 + 1) if i % 2 == 0 else None, started_at=now, finished_at=now,
                    outcome={"duplicate": False, "timings": {"sandbox": 9.5}, "evidence": evidence,
                             "llm": {"usage": {"input_tokens": 1200, "output_tokens": 200, "cost_usd": 0.0066}}})
                    for i in range(size)])
            t0 = time.perf_counter()
            text = prometheus.render(ledger_figures(ledger))  # the first scrape reads every heal
            first = (time.perf_counter() - t0) * 1000
            samples = []
            for _ in range(3):  # later scrapes read only new and running heals
                t0 = time.perf_counter()
                text = prometheus.render(ledger_figures(ledger))
                samples.append((time.perf_counter() - t0) * 1000)
            out[size] = {"first_ms": first, "ms": statistics.median(samples), "bytes": len(text)}
            ledger.engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heals", type=int, default=2000, help="heals per timing round with telemetry on")
    parser.add_argument("--ledger", default="1000,10000", help="ledger sizes (heals) for the endpoint")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.ledger.split(",") if s.strip()]
    spans = spans_cost(args.heals)
    print(f"{'telemetry per heal (24 spans, metrics)':<52}{'off':>12}{'on (OTLP/HTTP)':>18}")
    print(f"{'  microseconds':<52}{spans['off_us']:>12.2f}{spans['on_us']:>18.1f}")
    print(f"{'  share of a 15 s heal':<52}{spans['off_us'] / 15e6:>12.2e}{spans['on_us'] / 15e6:>18.2e}")
    print(f"{'  OpenTelemetry modules imported when off':<52}{spans['opentelemetry_modules_when_off']:>12}")
    print(f"{'  spans the receiver decoded (on)':<52}{'':>12}{spans['spans_received']:>18}")
    print(f"{'/api/metrics (ms)':<52}{'first scrape':>12}{'later scrapes':>18}")
    for size, figures in endpoint_cost(sizes).items():
        label = f"  over {size:,} heals ({figures['bytes']} bytes of text)"
        print(f"{label:<52}{figures['first_ms']:>12.1f}{figures['ms']:>18.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
