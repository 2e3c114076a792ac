"""A hostile or broken model: malformed answers, outages, a hung gateway, oversized replies.

Every case goes through the real ``anthropic`` SDK to the local Messages API server. What
must hold: a malformed answer is refused with a one-line reason (told to the model where that
makes sense) and after a few of them the heal ends ``error``; a model that cannot be reached
ends it ``error`` "model unavailable: ..." (never ``declined``); the deadline bounds the time
all model calls of a heal take; an oversized reply is never read whole nor sent back; and
``healer heal --json`` prints one JSON outcome whatever happens.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from healer.errors import ConfigError, LLMUnavailable, ModelAnswerError, RunFailed
from healer.fixers.llm import MAX_MALFORMED, LLMFixer
from healer.heal import heal
from healer.ledger import heals
from healer.llm_client import LLMConfig
from healer.runner.run import run_pipeline
from messages_server import Hang, MessagesServer, Raw, Trickle, error, fix, tool_answer, usage
from pipelines import drift
from test_llm import BROKEN, JOB, NO_DISCOUNT, evidence_for

MARK = "MALFORMED-ANSWER-7f3a"  # planted in every malformed answer: it must never be sent back
GOOD_INPUT = {"root_cause": f"{MARK} discount dropped", "rationale": "because", "confidence": 0.8,
              "changes_meaning": False, "edits": [{"path": JOB, "search": BROKEN, "replace": NO_DISCOUNT}]}
DROP = object()


def good_fix():
    return fix([{"path": JOB, "search": BROKEN, "replace": NO_DISCOUNT}], root_cause="discount dropped")


def with_input(**changes) -> dict:
    data = json.loads(json.dumps(GOOD_INPUT))
    for key, value in changes.items():
        if value is DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


def message(content, stop_reason="tool_use"):
    return 200, {"id": "msg_x", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                 "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage()}, {}


def tool_use(name="propose_fix", tool_input=None, id="toolu_x"):
    block = {"type": "tool_use", "name": name, "input": GOOD_INPUT if tool_input is None else tool_input}
    if id is not None:
        block["id"] = id
    return block


# name: (answer, what the one-line reason says, whether the model is told)
MALFORMED = {
    "doubts is a number": (tool_answer("propose_fix", with_input(doubts=5)),
                           "propose_fix.doubts must be an array, not a number", True),
    "input is a list": (tool_answer("propose_fix", [GOOD_INPUT]), "propose_fix must be an object, not an array", True),
    "input is a string": (tool_answer("propose_fix", json.dumps(GOOD_INPUT)),
                          "propose_fix must be an object, not a string", True),
    "edits missing": (tool_answer("propose_fix", with_input(edits=DROP)), "propose_fix.edits is missing", True),
    "edits is a string": (tool_answer("propose_fix", with_input(edits=f"replace {MARK}")),
                          "propose_fix.edits must be an array, not a string", True),
    "edits are strings": (tool_answer("propose_fix", with_input(edits=[f"s/{MARK}/x/"])),
                          "propose_fix.edits[0] must be an object, not a string", True),
    "edits empty": (tool_answer("propose_fix", with_input(edits=[])),
                    "propose_fix.edits must have at least 1 item(s)", True),
    "edit without search": (tool_answer("propose_fix", with_input(edits=[{"path": JOB, "replace": MARK}])),
                            "propose_fix.edits[0].search is missing", True),
    "confidence missing": (tool_answer("propose_fix", with_input(confidence=DROP)),
                           "propose_fix.confidence is missing", True),
    "confidence is a string": (tool_answer("propose_fix", with_input(confidence="high")),
                               "propose_fix.confidence must be a number, not a string", True),
    "confidence out of range": (tool_answer("propose_fix", with_input(confidence=7)),
                                "propose_fix.confidence must be between 0 and 1, not 7", True),
    "confidence is a boolean": (tool_answer("propose_fix", with_input(confidence=True)),
                                "propose_fix.confidence must be a number, not a boolean", True),
    "changes_meaning is a string": (tool_answer("propose_fix", with_input(changes_meaning="yes")),
                                    "propose_fix.changes_meaning must be a boolean, not a string", True),
    "root_cause is an object": (tool_answer("propose_fix", with_input(root_cause={"x": MARK})),
                                "propose_fix.root_cause must be a string, not an object", True),
    "decline without a reason": (tool_answer("decline", {"why": MARK}), "decline.reason is missing", True),
    "unknown tool": (tool_answer("run_shell", {"cmd": f"env # {MARK}"}), "unknown tool 'run_shell'", True),
    "tool call without id": (message([tool_use(id=None)]), "the tool call has no id", True),
    "two tool calls": (message([tool_use(id="toolu_a"), tool_use(id="toolu_b")]), "the answer has 2 tool calls", True),
    "empty content": (message([]), "the answer has no tool call", True),
    "text only": (message([{"type": "text", "text": f"I would rather chat. {MARK}"}], stop_reason="end_turn"),
                  "the answer has no tool call", True),
    "cut at max_tokens": (message([tool_use(tool_input={"root_cause": MARK})], stop_reason="max_tokens"),
                          "the answer was cut off at the 4096-token limit", True),
    # not a message at all: a gateway's fault; nothing to tell the model, the request is simply sent again
    "body is not JSON": (Raw(200, f"<html>502 Bad Gateway {MARK}</html>".encode(), "text/html"),
                         "the API answered with a body that is not JSON (text/html, ", False),
    "empty body": (Raw(200, b""), "the API answered with a body that is not JSON (application/json, 0 bytes)", False),
    "NaN in JSON": (Raw(200, json.dumps(message([tool_use(tool_input=with_input(confidence=math.nan))])[1]).encode()),
                    "not JSON", False),
    "deeply nested JSON": (Raw(200, b"[" * 100_000 + b"]" * 100_000), "not JSON", False),
    "JSON array": (Raw(200, json.dumps([GOOD_INPUT]).encode()), "JSON that is not a message (list)", False),
    "error object with 200": ((200, {"type": "error", "error": {"type": "overloaded_error", "message": MARK}}, {}),
                              "JSON that is not a message (error)", False),
    "content is a string": ((200, {"type": "message", "role": "assistant", "content": MARK, "usage": usage()}, {}),
                            "content is not a list of blocks", False),
    "content of strings": ((200, {"type": "message", "role": "assistant", "content": [MARK], "usage": usage()}, {}),
                           "content is not a list of blocks", False),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, retail_data):
    """One pipeline repo for the tests that only read it (a session never writes the files it edits)."""
    from conftest import make_pipeline_repo

    return make_pipeline_repo(tmp_path_factory.mktemp("hostile"), retail_data)


def hostile_llm(server_url: str, **config) -> LLMFixer:
    config = {"max_retries": 2, "backoff_s": 0.01, **config}
    return LLMFixer(LLMConfig(api_key="test-key", base_url=server_url, **config))


def sent_after_first(server) -> str:
    return json.dumps([r["body"] for r in server.requests[1:]])


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_malformed_answers_end_the_heal_as_an_error_with_one_line(shape, repo):
    answer, says, _told = MALFORMED[shape]
    with MessagesServer([answer] * MAX_MALFORMED) as server:
        session = hostile_llm(server.url).session(evidence_for(repo), repo)
        assert session.propose() is None
    assert isinstance(session.failure, ModelAnswerError), session.reason
    reason = str(session.failure)
    assert reason.startswith("model answer unusable: ") and says in reason, reason
    assert "\n" not in reason and len(reason) < 400
    assert f"({MAX_MALFORMED} answers refused)" in reason
    assert len(server.requests) == MAX_MALFORMED and session.usage.requests == MAX_MALFORMED
    assert MARK not in sent_after_first(server)  # the malformed answer was never sent back


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_after_a_malformed_answer_the_model_may_answer_again(shape, repo):
    answer, says, told = MALFORMED[shape]
    with MessagesServer([answer, good_fix()]) as server:
        session = hostile_llm(server.url).session(evidence_for(repo), repo)
        patch = session.propose()
    assert patch is not None and patch.title == "discount dropped", session.reason
    assert session.failure is None and len(session.malformed) == 1 and says in session.malformed[0]
    first, second = (r["body"]["messages"] for r in server.requests)
    if told:  # the answer's turn is a placeholder, and the model reads why it was refused
        assert second[:-2] == first and second[-2]["role"] == "assistant"
        assert second[-1]["role"] == "user" and says in second[-1]["content"]
    else:  # nothing to tell the model about a gateway's garbage: the same request again
        assert second == first
    assert MARK not in sent_after_first(server)


def test_an_unknown_tool_is_refused_at_most_a_few_times(repo):
    with MessagesServer([tool_answer("run_shell", {"cmd": "env"})] * 10) as server:
        session = hostile_llm(server.url, rounds=3).session(evidence_for(repo), repo)
        assert session.propose(max_requests=10) is None
    assert len(server.requests) == MAX_MALFORMED
    assert str(session.failure).startswith("model answer unusable: unknown tool 'run_shell'")


def test_a_huge_string_under_the_cap_is_cut_where_it_is_shown(repo):
    answer = tool_answer("propose_fix", with_input(root_cause="x" * 150_000, doubts=["d" * 50_000]))
    with MessagesServer([answer]) as server:
        patch = hostile_llm(server.url).session(evidence_for(repo), repo).propose()
    assert len(patch.title) == 200 and all(len(d) <= 500 for d in patch.doubts)


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "read-until-close"])
def test_a_2mb_reply_is_refused_unread_and_never_sent_back(content_length, repo):
    huge = json.dumps(message([tool_use(tool_input=with_input(rationale=MARK * 100_000))])[1]).encode()
    assert len(huge) > 2_000_000
    with MessagesServer([Raw(200, huge, content_length=content_length), good_fix()]) as server:
        session = hostile_llm(server.url).session(evidence_for(repo), repo)
        patch = session.propose()
    assert patch is not None and session.failure is None
    refused = session.malformed[0]
    # with a content-length the reply is refused before a byte of it is read; without, at the cap
    expected = r"the reply is \d\.\d MB, over the 256 KB cap" if content_length else "the reply is over the 256 KB cap"
    assert re.match(expected, refused) and "HEALER_LLM_MAX_REPLY_BYTES" in refused, refused
    later = sent_after_first(server)
    assert MARK not in later and len(later) < 100_000  # told it was too big, in a few words
    assert "over the 256 KB cap" in server.requests[1]["body"]["messages"][-1]["content"]


def test_replies_over_the_cap_every_time_end_the_heal(repo):
    huge = Raw(200, json.dumps(message([tool_use(tool_input=with_input(rationale=MARK * 100_000))])[1]).encode())
    with MessagesServer([huge] * MAX_MALFORMED) as server:
        session = hostile_llm(server.url).session(evidence_for(repo), repo)
        assert session.propose() is None
    assert re.match(r"model answer unusable: the reply is \d\.\d MB, over the 256 KB cap", str(session.failure))
    assert MARK not in sent_after_first(server)


def test_the_size_cap_is_a_setting(repo):
    with MessagesServer([good_fix(), good_fix()]) as server:
        session = hostile_llm(server.url, max_reply_bytes=200).session(evidence_for(repo), repo)
        assert session.propose(max_requests=1) is None
    assert "over the 200 bytes cap" in str(session.failure)


# -- the model unreachable: errors, not declines ------------------------------------------

def test_an_outage_through_the_retries_is_model_unavailable(repo):
    with MessagesServer([error(500, "api_error", "Internal server error")] * 3) as server:
        session = hostile_llm(server.url, max_retries=2).session(evidence_for(repo), repo)
        t0 = time.monotonic()
        assert session.propose() is None
        took = time.monotonic() - t0
    assert isinstance(session.failure, LLMUnavailable)
    assert str(session.failure) == "model unavailable: LLM API answered 500 after 2 retries: " \
        "Error code: 500 - {'type': 'error', 'error': {'type': 'api_error', 'message': 'Internal server error'}}"
    assert session.reason.startswith("LLM API answered 500 after 2 retries")
    assert len(server.requests) == 3 and took < 2


def test_a_refused_key_is_not_retried(repo):
    with MessagesServer([error(401, "authentication_error", "invalid x-api-key")] * 3) as server:
        session = hostile_llm(server.url).session(evidence_for(repo), repo)
        assert session.propose() is None
    assert str(session.failure).startswith("model unavailable: LLM API answered 401: ")
    assert len(server.requests) == 1


def test_a_gateway_that_is_not_there_is_model_unavailable(repo):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    session = hostile_llm(url).session(evidence_for(repo), repo)
    assert session.propose() is None
    assert str(session.failure).startswith(f"model unavailable: LLM API unreachable at {url} after 2 retries: ")


def test_a_hung_gateway_holds_the_heal_for_the_deadline_only(repo):
    with MessagesServer([Hang(60)] * 4) as server:
        session = hostile_llm(server.url, max_retries=3, deadline_s=1.5).session(evidence_for(repo),
                                                                                 repo)
        t0 = time.monotonic()
        assert session.propose() is None
        took = time.monotonic() - t0
    assert str(session.failure).startswith("model unavailable: deadline of 1.5s for all model calls of this heal "
                                           "passed (HEALER_LLM_DEADLINE) after 1 requests; the last attempt timed out")
    assert 1.4 < took < 4  # the attempt's timeout was the time left: no second attempt, no 120 s default
    assert len(server.requests) == 1


def test_the_deadline_is_shared_by_every_call_of_the_heal(repo):
    slow_refused = Hang(1.2, then=fix([{"path": JOB, "search": "no such text", "replace": "x"}]))
    with MessagesServer([slow_refused, Hang(60)]) as server:
        session = hostile_llm(server.url, deadline_s=2.0).session(evidence_for(repo), repo)
        t0 = time.monotonic()
        assert session.propose() is None
        took = time.monotonic() - t0
    assert len(server.requests) == 2  # the second call got the 0.8 s that were left
    assert str(session.failure).startswith("model unavailable: deadline of 2s")
    assert 1.9 < took < 4


def test_a_long_retry_after_does_not_outlive_the_deadline(repo):
    with MessagesServer([error(529, "overloaded_error", "Overloaded", retry_after_ms=30_000)] * 2) as server:
        session = hostile_llm(server.url, deadline_s=1.0).session(evidence_for(repo), repo)
        t0 = time.monotonic()
        assert session.propose() is None
        took = time.monotonic() - t0
    failure = str(session.failure)
    assert failure.startswith("model unavailable: deadline of 1s") and "answered 529" in failure
    assert took < 1 and len(server.requests) == 1


def test_a_reply_that_trickles_in_is_cut_at_the_deadline(repo):
    body = json.dumps(good_fix()[1]).encode()
    with MessagesServer([Trickle(body, step=4, every_s=0.1)]) as server:
        session = hostile_llm(server.url, deadline_s=1.0).session(evidence_for(repo), repo)
        t0 = time.monotonic()
        assert session.propose() is None
        took = time.monotonic() - t0
    assert str(session.failure).startswith("model unavailable: deadline of 1s")
    assert took < 2.5


def test_declines_and_a_spent_budget_stay_declines(repo):
    with MessagesServer([tool_answer("decline", {"reason": "the discount is gone"}),
                         message([{"type": "text", "text": "no"}], stop_reason="refusal")]) as server:
        fixer = hostile_llm(server.url)
        declined = fixer.session(evidence_for(repo), repo)
        assert declined.propose() is None and declined.failure is None
        refused = fixer.session(evidence_for(repo), repo)
        assert refused.propose() is None and refused.failure is None
    assert refused.reason == "the model declined: it refused to answer (stop_reason refusal)"
    with MessagesServer([fix([{"path": JOB, "search": "no such text", "replace": "x"}], input_tokens=5000)]) as server:
        session = hostile_llm(server.url, token_budget=4000).session(evidence_for(repo), repo)
        assert session.propose() is None
    assert session.failure is None and session.reason.startswith("LLM budget spent")


def test_settings_come_from_the_environment_and_a_bad_one_is_one_line(monkeypatch):
    monkeypatch.setenv("HEALER_LLM_DEADLINE", "30")
    monkeypatch.setenv("HEALER_LLM_MAX_REPLY_BYTES", "65536")
    monkeypatch.setenv("HEALER_LLM_BACKOFF", "0")
    config = LLMConfig.from_env()
    assert (config.deadline_s, config.max_reply_bytes, config.backoff_s) == (30.0, 65536, 0.0)
    monkeypatch.delenv("HEALER_LLM_DEADLINE")
    assert LLMConfig.from_env().deadline_s == 120.0 and LLMConfig(None, None).max_reply_bytes == 256 * 1024
    monkeypatch.setenv("HEALER_LLM_DEADLINE", "two minutes")
    with pytest.raises(ConfigError, match=r"^HEALER_LLM_DEADLINE='two minutes': expected a number of seconds > 0$"):
        LLMConfig.from_env()


# -- `healer heal --json`: one JSON outcome, whatever happens -------------------------------

def _cli_heal(monkeypatch, capsys, *argv):
    from healer import cli, cli_heal
    from healer.runner import warm

    monkeypatch.setattr(warm, "warm_up_for_heal", lambda: None)
    monkeypatch.setattr(cli_heal, "_exit_on_sigterm", lambda: None)  # not in the test runner's process
    code = cli.main(["heal", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_unexpected_exception_is_an_error_outcome_on_stdout_and_a_traceback_on_stderr(monkeypatch, capsys, tmp_path):
    import healer.heal

    def crash(*args, **kwargs):
        raise RuntimeError("the heal tripped\nover a second line")

    monkeypatch.setattr(healer.heal, "heal", crash)
    monkeypatch.setattr(healer.heal, "heal_storm", crash)
    code, out, err = _cli_heal(monkeypatch, capsys, "--repo", str(tmp_path), "--pipeline", "p", "--json")
    assert code == 1
    [line] = out.splitlines()
    outcome = json.loads(line)
    assert outcome["status"] == "error" and outcome["pipeline"] == "p"
    assert outcome["reason"] == "unexpected RuntimeError: the heal tripped"
    assert "Traceback (most recent call last)" in err and "in crash" in err
    code, out, err = _cli_heal(monkeypatch, capsys, "--repo", str(tmp_path), "--all", "--json")
    assert code == 1 and json.loads(out)[0]["reason"] == "unexpected RuntimeError: the heal tripped"
    code, out, err = _cli_heal(monkeypatch, capsys, "--repo", str(tmp_path), "--pipeline", "p")
    assert code == 1 and out == "" and err.rstrip().endswith("healer: unexpected RuntimeError: the heal tripped")


def test_a_healer_error_outside_the_heal_is_an_error_outcome_too(monkeypatch, capsys, tmp_path):
    import healer.heal
    from healer.errors import LedgerError

    def broken_ledger(*args, **kwargs):
        raise LedgerError("the ledger sqlite:///x is locked")

    monkeypatch.setattr(healer.heal, "heal", broken_ledger)
    code, out, err = _cli_heal(monkeypatch, capsys, "--repo", str(tmp_path), "--pipeline", "p", "--json")
    outcome = json.loads(out)
    assert code == 1 and (outcome["status"], outcome["reason"]) == ("error", "the ledger sqlite:///x is locked")
    assert "Traceback" not in err
    code, out, err = _cli_heal(monkeypatch, capsys, "--repo", str(tmp_path), "--json")
    assert code == 1 and json.loads(out)["reason"] == "heal needs --pipeline NAME, --failure ID or --all"


# -- through the whole heal: real Spark, real sandbox, real git ------------------------------

def break_revenue(spark, ledger, repo):
    """Upstream dropped order_items.discount: no rule can fix it, so the model is asked."""
    run_pipeline(repo, "revenue_by_category", spark=spark, ledger=ledger)
    drift.drop_column(repo / "data", "order_items", "discount")
    with pytest.raises(RunFailed):
        run_pipeline(repo, "revenue_by_category", spark=spark, ledger=ledger)


def model_env(monkeypatch, server, **settings):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    for name, value in {"HEALER_LLM_RETRIES": "2", "HEALER_LLM_BACKOFF": "0.01", **settings}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.spark
@pytest.mark.slow
def test_heal_with_the_model_down_is_an_error_not_a_decline(spark, ledger, pipeline_repo, monkeypatch):
    break_revenue(spark, ledger, pipeline_repo)
    with MessagesServer([error(500, "api_error", "Internal server error")] * 3) as server:
        model_env(monkeypatch, server)
        outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert outcome.status == "error" and outcome.exit_code == 1, outcome.reason
    assert outcome.reason.startswith("model unavailable: LLM API answered 500 after 2 retries")
    assert outcome.llm["error"] == outcome.reason and outcome.llm["usage"]["requests"] == 0
    assert ledger.select(heals, heals.c.id == outcome.heal)[0]["status"] == "error"


@pytest.mark.spark
@pytest.mark.slow
def test_heal_with_a_hung_gateway_ends_at_the_deadline(spark, ledger, pipeline_repo, monkeypatch):
    break_revenue(spark, ledger, pipeline_repo)
    with MessagesServer([Hang(300)] * 4) as server:
        model_env(monkeypatch, server, HEALER_LLM_DEADLINE="2")
        t0 = time.monotonic()
        outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
        took = time.monotonic() - t0
    assert outcome.status == "error" and outcome.reason.startswith("model unavailable: deadline of 2s"), outcome.reason
    assert took < 60, took  # the gateway would have held it for 300 s; before, 120 s x 4 attempts + backoff
    assert outcome.timings["sandbox"] < 10


@pytest.mark.spark
@pytest.mark.slow
def test_heal_with_malformed_answers_ends_with_the_reason(spark, ledger, pipeline_repo, monkeypatch):
    break_revenue(spark, ledger, pipeline_repo)
    with MessagesServer([tool_answer("propose_fix", with_input(doubts=5))] * MAX_MALFORMED) as server:
        model_env(monkeypatch, server)
        outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert outcome.status == "error"
    assert outcome.reason == "model answer unusable: propose_fix.doubts must be an array, not a number " \
                             f"({MAX_MALFORMED} answers refused)"
    assert outcome.llm["unusable_answers"] == ["propose_fix.doubts must be an array, not a number"] * MAX_MALFORMED


@pytest.mark.shadow  # a ready rule fix: a draft one (no shadow run) asks the model for a second opinion
@pytest.mark.spark
@pytest.mark.slow
def test_when_a_rule_fixes_it_the_model_is_never_asked_even_if_down(spark, ledger, pipeline_repo, monkeypatch):
    run_pipeline(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    drift.rename_column(pipeline_repo / "data", "order_items", "unit_price", "item_price")
    with pytest.raises(RunFailed):
        run_pipeline(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    with MessagesServer([error(500, "api_error", "down")] * 10) as server:
        model_env(monkeypatch, server)
        outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert outcome.status == "proposed" and outcome.fixer == "rule:renamed_column", outcome.reason
    assert server.requests == []


@pytest.mark.spark
@pytest.mark.slow
def test_heal_when_the_model_declines_is_a_decline(spark, ledger, pipeline_repo, monkeypatch):
    break_revenue(spark, ledger, pipeline_repo)
    with MessagesServer([tool_answer("decline", {"reason": "discount is gone and cannot be derived"})]) as server:
        model_env(monkeypatch, server)
        outcome = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert outcome.status == "declined" and outcome.exit_code == 3
    assert outcome.reason.endswith("the model declined: discount is gone and cannot be derived"), outcome.reason
    assert "error" not in outcome.llm


CLI_CASES = {
    # name: (answers, how the reason starts)
    "doubts is a number": ([tool_answer("propose_fix", with_input(doubts=5))] * MAX_MALFORMED,
                           "model answer unusable: propose_fix.doubts must be an array, not a number"),
    "input is a list": ([tool_answer("propose_fix", [GOOD_INPUT])] * MAX_MALFORMED,
                        "model answer unusable: propose_fix must be an object, not an array"),
    "body is not JSON": ([Raw(200, b"<html>oops</html>", "text/html")] * MAX_MALFORMED,
                         "model answer unusable: the API answered with a body that is not JSON (text/html, 17 bytes)"),
}  # an outage through the CLI is the same outcome: test_heal_with_the_model_down_is_an_error_not_a_decline


@pytest.mark.spark
@pytest.mark.slow
def test_cli_heal_json_prints_one_error_outcome_for_every_model_failure(spark, ledger, pipeline_repo):
    """`healer heal --json` as a user runs it: a real process, whatever the model answers."""
    break_revenue(spark, ledger, pipeline_repo)
    for name, (answers, starts) in CLI_CASES.items():
        with MessagesServer(answers) as server:
            env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url,
                   "HEALER_LLM_RETRIES": "1", "HEALER_LLM_BACKOFF": "0.01"}
            proc = subprocess.run([sys.executable, "-m", "healer.cli", "heal", "--repo", str(pipeline_repo),
                                   "--pipeline", "revenue_by_category", "--json"], capture_output=True, text=True,
                                  env=env, timeout=300)
        assert proc.returncode == 1, (name, proc.stdout[-1000:], proc.stderr[-2000:])
        [line] = proc.stdout.splitlines()  # one JSON document and nothing else
        outcome = json.loads(line)
        assert outcome["status"] == "error" and outcome["reason"].startswith(starts), (name, outcome["reason"])
        assert "Traceback" not in proc.stderr, (name, proc.stderr[-2000:])
