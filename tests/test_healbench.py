"""HealBench cannot rot silently: a few scenarios through the bench's own code path.

The same ``run_scenario`` that ``make bench`` runs, on a small data set: a rule fix that
must come out correct (its branch's full-data output equals the hand-written fix's), a
draft for a fix that changes what the data means, and a case that must be declined. The
scorer is checked too: a branch whose output differs from the golden is a false fix.
"""

from __future__ import annotations

import pytest

from benchmarks.healbench.bench import Result, run_scenario, same_output, summarize
from benchmarks.healbench.scenarios import SCENARIOS, by_name

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.shadow]


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory):
    from pipelines.generate import generate, write

    out = tmp_path_factory.mktemp("healbench-data")
    write(generate(4000, seed=7), out)
    return out


@pytest.fixture
def bench_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HEALER_HOME", str(tmp_path / "healer-home"))
    monkeypatch.delenv("HEALER_LEDGER_URL", raising=False)
    for var in ("WAREHOUSE", "OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.mark.parametrize("name, verdict, fixer, draft", [
    ("rename-sql-table-prefix", "correct", "rule:renamed_column", False),
    ("cast-py-new-bad-values", "correct", "rule:unsafe_cast", True),
    ("decline-only-a-backup-left", "declined", None, False),
])
def test_scenario_verdicts(name, verdict, fixer, draft, spark, bench_data, bench_home):
    [scenario] = by_name([name])
    result = run_scenario(spark, scenario, bench_data, bench_home / "work", log=lambda _m: None)
    assert result.verdict == verdict, (result.status, result.detail, result.reason)
    assert result.fixer == fixer
    assert result.draft is draft
    if verdict == "correct":
        assert result.heal_s and result.heal_s > 0
        assert "equal to the golden output" in result.detail
    else:
        assert result.status == "declined"


def test_scorer_calls_a_different_output_a_false_fix(spark, tmp_path):
    """same_output compares rows as multisets: one changed value is a difference."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    spark.createDataFrame([(1, 2.0), (2, 3.0)], ["k", "v"]).write.parquet(a)
    spark.createDataFrame([(2, 3.0000000001), (1, 2.0)], ["k", "v"]).write.parquet(b)
    assert same_output(spark, a, b)[0]  # order and float noise do not matter
    c = str(tmp_path / "c")
    spark.createDataFrame([(1, 2.0), (2, 3.5)], ["k", "v"]).write.parquet(c)
    equal, detail = same_output(spark, a, c)
    assert not equal and "1 rows only in the fix's output" in detail


def test_summary_counts_and_the_catalogue_covers_every_rule():
    results = [Result("a", "sql", "rule:renamed_column", "correct", "proposed", "rule:renamed_column", heal_s=4.0),
               Result("b", "sql", "rule:zero_divisor", "false fix", "proposed", "rule:zero_divisor", heal_s=6.0),
               Result("c", "sql", "decline", "declined", "declined"),
               Result("d", "python", "rule:unsafe_cast", "missed", "declined")]
    s = summarize(results, spark_startup_s=10.0, rows=100, wall_s=1.0)
    assert (s.proposed, s.correct, s.false_fixes, s.declined_correctly, s.missed) == (2, 1, 1, 1, 1)
    assert s.median_heal_s == 4.0 and s.median_time_to_pr_s == 14.0  # only correct rule fixes are timed
    from healer.fixers import default_fixers

    rules = {f.name for f in default_fixers()}
    for kind in ("sql", "python"):
        assert rules <= {s.rule for s in SCENARIOS if s.kind == kind}, kind
    assert len(SCENARIOS) >= 25 and sum(1 for s in SCENARIOS if not s.healable) >= 5
