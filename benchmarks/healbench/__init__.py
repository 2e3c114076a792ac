"""HealBench: broken pipelines, the heals Healer proposes for them, and a scorer.

Each scenario is a working pipeline, an upstream drift or a bad commit that breaks it,
and a hand-written correct fix. The bench runs the real loop in one process with one
SparkSession: ``run_pipeline`` (succeeds) -> drift -> ``run_pipeline`` (fails) -> ``heal``,
then runs the proposed branch on the *full* drifted data and compares its output with the
output of the hand-written fix. A proposal whose output differs, or that fails its
expectations, is a false fix. Scenarios where no safe fix exists must be declined.

    python -m benchmarks.healbench [--rows N] [--only NAME,...] [--json PATH]
"""

from benchmarks.healbench.bench import Result, Summary, run_bench, run_scenario, summarize
from benchmarks.healbench.scenarios import SCENARIOS, Scenario

__all__ = ["Result", "Scenario", "SCENARIOS", "Summary", "run_bench", "run_scenario", "summarize"]
