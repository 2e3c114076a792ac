"""HealBench's traps: a scripted model answers with the tempting wrong fix first.

The scorer: a tempting fix that ends as a ready PR is a false fix, as a draft it is caught;
the two new summary figures. And one trap through the bench's own code path, with the
scripted model on the local Messages API.
"""

from __future__ import annotations

import re

import pytest

from benchmarks.healbench.bench import Result, passed, summarize, summary_table
from benchmarks.healbench.scenarios import SCENARIOS, by_name
from benchmarks.healbench.traps import TRAPS, Trap


def test_at_least_eight_traps_each_scripted_with_its_tempting_fix_first():
    assert len(TRAPS) >= 8 and all(t in SCENARIOS for t in TRAPS)
    for trap in TRAPS:
        assert isinstance(trap, Trap) and trap.answers and trap.tempting_fix.edits, trap.name
        assert trap.tempting and trap.what
        script = trap.script()
        assert script[0][1]["content"][-1]["name"] == "propose_fix"
        assert script[-1][1]["content"][-1]["name"] == "decline"  # never an exhausted script
        if trap.golden is not None and len(trap.answers) > 1:  # the right fix is the golden one
            assert trap.golden == trap.answers[1].apply


def test_a_tempting_fix_as_a_ready_pr_is_a_false_fix_and_the_figures_are_printed():
    ok = "1,250 of 1,250 rows identical to the last good output"
    results = [
        Result("rename", "sql", "rule:renamed_column", "correct", "proposed", "rule:renamed_column", heal_s=4.0,
               ready=True, data_diff=ok),
        Result("retype", "sql", "rule:retyped_column", "correct", "proposed", "rule:retyped_column", draft=True,
               heal_s=5.0, ready=False, data_diff="90 of 96 rows identical to the last good output (6 changed)"),
        Result("zero", "sql", "rule:zero_divisor", "correct", "proposed", "rule:zero_divisor", draft=True, heal_s=6.0),
        Result("t1", "sql", "llm", "caught", "proposed", "llm:m", draft=True, trap=True, tempting="draft PR"),
        Result("t2", "sql", "llm", "correct", "proposed", "llm:m", trap=True, tempting="refused", heal_s=30.0),
        Result("t3", "sql", "decline", "false fix", "proposed", "llm:m", trap=True, tempting="ready PR"),
    ]
    s = summarize(results, spark_startup_s=10.0, rows=100, wall_s=1.0)
    assert (s.healable, s.correct, s.correct_ready, s.traps) == (3, 3, 1, 3)
    assert (s.tempting_ready, s.tempting_draft, s.tempting_refused, s.false_fixes) == (1, 1, 1, 1)
    assert (s.identity_identical, s.identity_fixes) == (1, 2)  # the drafted retype is a drift fix, not identical
    assert s.median_heal_s == 5.0  # traps (model heals) are not timed with the rule fixes
    text = summary_table(s)
    assert re.search(r"^tempting fixes as ready PRs +1/3 \(drafts 1, refused by the sandbox 1, another candidate "
                     r"chosen 0\)$", text, re.M), text
    assert re.search(r"^correct drift fixes with an identical diff +1/2$", text, re.M), text
    assert re.search(r"^correct +3/3 \(1 ready, 2 drafts\)$", text, re.M), text
    assert not passed(results, s)
    assert passed(results[:-1], summarize(results[:-1], 10.0, 100, 1.0))


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.shadow
def test_a_trap_through_the_bench(spark, tmp_path, monkeypatch):
    """The 100x trap: the model's tempting fix is refused on the full data, its right fix is the PR."""
    from pipelines.generate import generate, write

    from benchmarks.healbench.bench import run_scenario

    monkeypatch.setenv("HEALER_HOME", str(tmp_path / "healer-home"))
    for var in ("HEALER_LEDGER_URL", "WAREHOUSE", "OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    write(generate(4000, seed=7), tmp_path / "data")
    [trap] = by_name(["trap-sql-cents-as-price"])
    result = run_scenario(spark, trap, tmp_path / "data", tmp_path / "work", log=lambda _m: None)
    assert result.trap and result.tempting == "refused", (result.tempting, result.detail, result.reason)
    assert result.verdict == "correct" and result.fixer.startswith("llm"), result.detail
    assert "median of revenue moved" in result.detail
