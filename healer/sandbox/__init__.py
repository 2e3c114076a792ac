"""The sandbox: candidate fixes proven on sampled inputs, as untrusted code.

    gate.py       the static gate: what a candidate's SQL or Python may contain
    isolation.py  the worker process: scrubbed environment, bubblewrap on Linux
    worker.py     what runs inside it: Spark on the samples, the job, the output
    run.py        Sandbox: sampling, one worker per candidate, the verdict

Names are loaded lazily: the worker imports this package and must start without the
healer's heavier modules (Great Expectations, the ledger).
"""

from __future__ import annotations

__all__ = ["Check", "Sandbox", "Verdict"]


def __getattr__(name: str):
    if name in __all__:
        from healer.sandbox import run

        return getattr(run, name)
    raise AttributeError(f"module 'healer.sandbox' has no attribute {name!r}")
