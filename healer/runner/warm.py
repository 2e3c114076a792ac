"""Start the slow parts of a heal early: the Spark JVM and the Great Expectations import.

Both take seconds; a heal needs them only after it has read the ledger, cloned the repo and
loaded its own modules, so they start first and run in background threads meanwhile.
Kept free of heavy imports so that callers can run it before importing the heal loop.
"""

from __future__ import annotations


def warm_up_for_heal() -> None:
    """Begin the GX import and the heal's SparkSession (quick JIT) in the background."""
    from healer.expectations import preload
    from healer.runner.session import start_spark

    preload()
    start_spark("healer-heal", quick_jit=True)
