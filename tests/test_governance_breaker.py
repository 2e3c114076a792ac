"""The circuit breaker: trips by hand and by itself after N refused PRs, resumes, is append-only."""

from __future__ import annotations

import pytest

from healer.errors import ConfigError
from healer.governance import breaker
from healer.ledger import heals, prs, utcnow


def _pr(ledger, pipeline, status, fixer="rule:renamed_column"):
    heal_id = ledger.insert(heals, pipeline=pipeline, status="proposed", fixer=fixer, started_at=utcnow())
    return ledger.insert(prs, forge="local", pipeline=pipeline, heal_id=heal_id, status=status, branch="b",
                         created_at=utcnow(), updated_at=utcnow())


def test_trip_pause_resume_by_hand(ledger):
    assert breaker.paused(ledger, "revenue") is None
    pause = breaker.trip(ledger, pipeline="revenue", reason="merged fix regressed", heal_id=7)
    assert breaker.paused(ledger, "revenue") == pause
    assert breaker.paused(ledger, "revenue", "rule:x") == pause  # a whole-pipeline pause stops every fixer
    assert breaker.paused(ledger, "orders") is None
    assert "merged fix regressed" in pause.one_line() and "healer policy resume revenue" in pause.one_line()
    again = breaker.trip(ledger, pipeline="revenue", reason="second reason")
    assert again.id == pause.id and again.reason == "merged fix regressed"  # the first reason stands
    lifted = breaker.resume(ledger, "revenue")
    assert lifted.id == pause.id and breaker.paused(ledger, "revenue") is None
    with pytest.raises(ConfigError, match="'revenue' is not paused"):
        breaker.resume(ledger, "revenue")
    kinds = [r["kind"] for r in ledger.select(breaker.events, order_desc=False)]
    assert kinds == ["trip", "resume"]  # append-only: the trip row is still there


def test_fixer_pause_and_every_pipeline(ledger):
    breaker.trip(ledger, pipeline="revenue", fixer="llm", reason="model fixes keep being closed")
    assert breaker.paused(ledger, "revenue") is None  # the pipeline still heals with other fixers
    assert breaker.paused(ledger, "revenue", "llm").fixer == "llm"
    assert breaker.paused(ledger, "revenue", "rule:x") is None
    breaker.trip(ledger, pipeline="*", fixer="rule:null_surge", reason="org-wide stop")
    assert breaker.paused(ledger, "orders", "rule:null_surge").pipeline == "*"
    assert {p.scope() for p in breaker.pauses(ledger)} == {"fixer 'llm' on pipeline 'revenue'",
                                                           "fixer 'rule:null_surge' on every pipeline"}


def test_trips_by_itself_after_n_refused_prs_and_resumes(ledger):
    _pr(ledger, "revenue", "closed")
    _pr(ledger, "revenue", "merged")
    _pr(ledger, "orders", "closed")
    assert breaker.evaluate(ledger, "revenue", threshold=2) is None
    _pr(ledger, "revenue,orders", "reverted")  # a storm PR counts for each of its pipelines
    pause = breaker.evaluate(ledger, "revenue", threshold=2)
    assert pause is not None and "2 of Healer's pull requests for 'revenue'" in pause.reason
    assert "closed" in pause.reason and "reverted" in pause.reason
    from healer.governance.audit import Action, events

    trail = events(ledger, actions=(Action.BREAKER_TRIPPED,))
    # the fixer behind both refused PRs (revenue's and orders') is paused everywhere too
    fixer_pause = breaker.paused(ledger, "customers", "rule:renamed_column")
    assert fixer_pause.reason.startswith("2 of pull requests by fixer 'rule:renamed_column' were closed")
    assert [(e.pipeline, e.detail["reason"]) for e in trail] == [("*", fixer_pause.reason), ("revenue", pause.reason)]
    breaker.resume(ledger, "*", "rule:renamed_column")
    assert breaker.evaluate(ledger, "orders", threshold=3) is None
    breaker.resume(ledger, "revenue")
    # resumed: the PRs refused before the resume no longer count
    assert breaker.evaluate(ledger, "revenue", threshold=2) is None
    assert breaker.evaluate(ledger, "revenue", threshold=0) is None  # 0 turns the automatic trip off


def test_trips_one_fixer_everywhere_by_itself(ledger):
    _pr(ledger, "revenue", "closed", fixer="llm")
    _pr(ledger, "orders", "closed", fixer="llm")
    _pr(ledger, "orders", "merged", fixer="rule:renamed_column")
    assert breaker.evaluate(ledger, "revenue", ["llm", "rule:renamed_column"], threshold=3) is None
    assert breaker.paused(ledger, "revenue", "llm") is None
    assert breaker.evaluate(ledger, "revenue", ["llm", "rule:renamed_column"], threshold=2) is None
    pause = breaker.paused(ledger, "customers", "llm")  # the model's PRs were refused on two pipelines
    assert pause is not None and pause.pipeline == "*" and "fixer 'llm'" in pause.reason
    assert breaker.paused(ledger, "customers", "rule:renamed_column") is None
    assert breaker.paused(ledger, "revenue") is None  # one refused PR of revenue's own: it still heals


def test_bad_scope_is_a_one_line_error(ledger):
    with pytest.raises(ConfigError, match="pipeline name is required"):
        breaker.trip(ledger, pipeline=" ", reason="x")
