"""The shadow run, the data diff and Healer's own ready/draft verdict, through whole heals.

Real Spark, real git, the local forge, and a local Messages API scripted to answer with the
tempting wrong fix a real model may well write: it runs and passes the expectations on a
sample, and only the full data against the last good output shows it is wrong.
"""

from __future__ import annotations

import pytest

from healer.errors import RunFailed
from healer.fixers.llm import LLMFixer
from healer.forges import LocalForge
from healer.heal import heal
from healer.llm_client import LLMConfig
from healer.policy import Policy
from healer.runner.run import run_pipeline
from messages_server import MessagesServer, fix
from pipelines import drift

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.shadow]

JOB = "jobs/revenue_by_category.sql"
BROKEN = "ROUND(SUM(i.quantity * i.unit_price * (1 - i.discount)), 2) AS revenue"
NO_DISCOUNT = "ROUND(SUM(i.quantity * i.unit_price), 2) AS revenue"
TIMES_100 = "ROUND(SUM(i.quantity * i.unit_price) * 100, 2) AS revenue"


def break_it(spark, ledger, repo, pipeline, change):
    run_pipeline(repo, pipeline, spark=spark, ledger=ledger)
    change(repo / "data")
    with pytest.raises(RunFailed):
        run_pipeline(repo, pipeline, spark=spark, ledger=ledger)


def test_a_rule_fix_is_ready_because_the_full_data_is_identical(spark, ledger, pipeline_repo):
    break_it(spark, ledger, pipeline_repo, "revenue_by_category",
             lambda d: drift.rename_column(d, "order_items", "unit_price", "item_price"))
    outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert outcome.status == "proposed" and not outcome.draft, outcome.reason
    assert outcome.validation["ready"] is True
    assert outcome.validation["data_diff"] == "96 of 96 rows identical to the last good output"
    assert outcome.validation["shadow_rows_read"] > sum(outcome.validation["sample_sizes"].values())
    body = LocalForge(ledger).get(outcome.pr).body
    assert "**96 of 96 rows identical to the last good output** (matched on `category`, `month`)" in body
    assert "sample were not seen" not in body  # the shadow run read every row: no sample doubt


def test_a_tempting_100x_fix_is_refused_and_the_honest_one_is_a_draft_that_names_the_figure(
        spark, ledger, pipeline_repo, monkeypatch):
    break_it(spark, ledger, pipeline_repo, "revenue_by_category",
             lambda d: drift.drop_column(d, "order_items", "discount"))
    script = [fix([{"path": JOB, "search": BROKEN, "replace": TIMES_100}], root_cause="discount dropped",
                  confidence=0.9),
              fix([{"path": JOB, "search": BROKEN, "replace": NO_DISCOUNT}], root_cause="discount dropped",
                  confidence=0.9)]
    with MessagesServer(script) as server:
        llm = LLMFixer(LLMConfig(api_key="test-key", base_url=server.url, max_retries=0))
        outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger, llm=llm)
    assert outcome.status == "proposed", outcome.reason
    first, second = outcome.candidates
    # 100x passes every expectation on the sample; the full data against the last good output refuses it
    assert not first["passed"]
    assert any("median of revenue moved" in r for r in first["reasons"]), first["reasons"]
    assert "median of revenue moved" in server.user_texts(1)  # and the model is told why
    # the honest fix ignores discounts: the model said 0.9 and no change of meaning; Healer says draft
    assert second["passed"] and outcome.draft
    # and a draft on Healer's figures does not end the search: the model hears the figure (its script then ends)
    assert len(server.requests) == 3 and "Healer would only open it as a draft: revenue differs" in server.user_texts(2)
    body = LocalForge(ledger).get(outcome.pr).body
    first_line = body.splitlines()[0]
    assert first_line.startswith("> **Draft: revenue differs on ") and "median +" in first_line, first_line


def test_above_the_shadow_bound_a_fix_is_validated_on_a_sample_only_and_is_a_draft(spark, ledger, pipeline_repo):
    break_it(spark, ledger, pipeline_repo, "revenue_by_category",
             lambda d: drift.rename_column(d, "order_items", "unit_price", "item_price"))
    outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger,
                   policy=Policy(max_shadow_rows=1000))
    assert outcome.status == "proposed" and outcome.draft
    body = LocalForge(ledger).get(outcome.pr).body
    assert body.startswith("> **Draft: it was validated on a sample only (the inputs hold ")
    assert "over the shadow-run bound of 1,000" in body
    assert "sample were not seen" in body  # here the sample doubt is true
