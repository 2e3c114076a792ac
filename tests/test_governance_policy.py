"""Policy as code at three levels: loading, merging (a lower level only tightens), check and show."""

from __future__ import annotations

import json
import textwrap

import pytest

from healer.governance.effective import check, effective
from healer.errors import PolicyError
from healer.policy import Policy

MANIFEST = """\
pipelines:
  revenue:
    job: jobs/revenue.sql
    output: {path: out/revenue}
  orders:
    job: jobs/orders.sql
    output: {path: out/orders}
"""


def _repo(tmp_path, healing: str = "", revenue: str = "", orders: str = ""):
    repo = tmp_path / "repo"
    (repo / "jobs").mkdir(parents=True, exist_ok=True)
    text = MANIFEST
    if revenue:
        text = text.replace("    output: {path: out/revenue}\n", "    output: {path: out/revenue}\n    healing:\n"
                            + textwrap.indent(textwrap.dedent(revenue), "      "))
    if orders:
        text = text.replace("    output: {path: out/orders}\n", "    output: {path: out/orders}\n    healing:\n"
                            + textwrap.indent(textwrap.dedent(orders), "      "))
    if healing:
        text += "healing:\n" + textwrap.indent(textwrap.dedent(healing), "  ")
    (repo / "healer.yml").write_text(text)
    return repo


def _org(tmp_path, text: str):
    path = tmp_path / "org-policy.yml"
    path.write_text("healing:\n" + textwrap.indent(textwrap.dedent(text), "  "))
    return path


def test_no_policy_anywhere_is_the_default(tmp_path):
    eff = effective(_repo(tmp_path), "revenue", Policy(), org="")
    assert eff.mode.value == "propose" and eff.mode.where == "default"
    assert eff.fixer_refusal("llm:claude-sonnet-4-5") is None and eff.file_refusal("jobs/revenue.sql") is None
    assert eff.sandbox_seconds.value == 600.0 and eff.sandbox_seconds.where == "HEALER_SANDBOX_SECONDS"
    assert eff.breaker_after.value == 3 and eff.prs_per_pipeline_per_day is None
    assert check(_repo(tmp_path), Policy(), org="") == []


def test_three_levels_merge_and_say_where(tmp_path):
    org = _org(tmp_path, """
        mode: auto_merge
        fixers: {allow: ["rule", "llm"]}
        budgets: {prs_per_pipeline_per_day: 5, model_tokens_per_day: 1000000, sandbox_seconds: 300}
        pull_requests: {labels: [healer]}
        auto_merge: {fixers: ["rule:renamed_column", "rule:retyped_column"]}
    """)
    repo = _repo(tmp_path, healing="""
        mode: propose
        files: {deny: ["secrets/*"]}
        budgets: {prs_per_pipeline_per_day: 3, model_tokens_per_day: 200000}
        pull_requests: {reviewers: [data-team]}
    """, revenue="""
        mode: draft
        fixers: {deny: [llm]}
        files: {allow: ["jobs/*"]}
        budgets: {sandbox_seconds: 120}
    """)
    eff = effective(repo, "revenue", Policy(), org=org)
    assert (eff.mode.value, eff.mode.where) == ("draft", "healer.yml:pipelines.revenue.healing.mode")
    assert eff.fixer_refusal("llm:claude-sonnet-4-5") == \
        'policy: fixer "llm:claude-sonnet-4-5" denied by healer.yml:pipelines.revenue.healing.fixers.deny (\'llm\')'
    assert eff.fixer_refusal("rule:renamed_column") is None
    assert eff.file_refusal("secrets/key.txt").startswith(
        'policy: file "secrets/key.txt" denied by healer.yml:healing.files.deny')
    assert "not allowed by healer.yml:pipelines.revenue.healing.files.allow" in eff.file_refusal("healer.yml")
    assert eff.prs_per_pipeline_per_day == eff.prs_per_pipeline_per_day.__class__(
        3, "healer.yml:healing.budgets.prs_per_pipeline_per_day")
    assert eff.model_tokens_per_day_org.value == 1000000 and eff.model_tokens_per_day_repo.value == 200000
    assert (eff.sandbox_seconds.value, eff.sandbox_seconds.where) == (
        120, "healer.yml:pipelines.revenue.healing.budgets.sandbox_seconds")
    assert eff.tighten(Policy()).sandbox_seconds == 120 and eff.tighten(Policy()).max_shadow_seconds == 1800
    assert eff.people("reviewers") == ("data-team",) and eff.people("labels") == ("healer",)
    # the other pipeline only has the org and repo levels
    other = effective(repo, "orders", Policy(), org=org)
    assert other.mode.value == "propose" and other.fixer_refusal("llm:x") is None
    assert other.sandbox_seconds.value == 300
    assert other.may_auto_merge("rule:renamed_column") == "mode is propose (healer.yml:healing.mode)"


def test_loosening_is_an_error_naming_both_places(tmp_path):
    org = _org(tmp_path, """
        mode: propose
        fixers: {allow: ["rule"], deny: ["rule:revert_hunk"]}
        budgets: {prs_per_pipeline_per_day: 2, model_cost_usd_per_day: 10}
    """)
    repo = _repo(tmp_path, healing="""
        mode: auto_merge
        budgets: {model_cost_usd_per_day: 50}
    """, revenue="""
        fixers: {allow: ["rule:renamed_column", "llm", "rule:revert_hunk"]}
        budgets: {prs_per_pipeline_per_day: 10}
        auto_merge: {model: true}
    """)
    problems = check(repo, Policy(), org=org)
    assert f"healer.yml:healing.mode: 'auto_merge' loosens 'propose' set by {org}:healing.mode " \
           "(a lower level may only tighten)" in problems
    assert any(p.startswith("healer.yml:healing.budgets.model_cost_usd_per_day: 50.0 loosens 10.0") for p in problems)
    assert any(p.startswith("healer.yml:pipelines.revenue.healing.fixers.allow: allows 'llm', which "
                            f"{org}:healing.fixers.allow does not") for p in problems)
    assert any("allows 'rule:revert_hunk', which" in p and "denies" in p for p in problems)
    assert any(p.startswith("healer.yml:pipelines.revenue.healing.budgets.prs_per_pipeline_per_day: 10 loosens 2")
               for p in problems)
    assert any(p.startswith("healer.yml:pipelines.revenue.healing.auto_merge.model: True loosens False set by default")
               for p in problems)
    assert len(problems) == 6, problems
    with pytest.raises(PolicyError, match=r"^policy: healer.yml:healing.mode: 'auto_merge' loosens .* \(and 5 more"):
        effective(repo, "revenue", Policy(), org=org)


def test_auto_merge_needs_the_org_file(tmp_path):
    repo = _repo(tmp_path, healing="mode: auto_merge\n")
    assert check(repo, Policy(), org="") == [
        "healer.yml:healing.mode: 'auto_merge' loosens 'propose' set by default (a lower level may only tighten)"]


@pytest.mark.parametrize("healing, message", [
    ("mode: yolo\n", "healer.yml:healing.mode: 'yolo': expected one of: off, draft, propose, auto_merge"),
    ("fixers: {alow: [x]}\n", "healer.yml:healing.fixers.alow: unknown key (allowed: allow, deny)"),
    ("reviewers: [a]\n", "healer.yml:healing.reviewers: unknown key (allowed: auto_merge, breaker, budgets, "
                         "files, fixers, mode, pull_requests)"),
    ("budgets: {prs_per_pipeline_per_day: -1}\n",
     "healer.yml:healing.budgets.prs_per_pipeline_per_day: -1: expected a whole number >= 0"),
    ("breaker: {after: 0}\n", "healer.yml:healing.breaker.after: 0: expected a whole number >= 1"),
    ("files: [a]\n", "healer.yml:healing.files: expected a mapping with allow, deny"),
    ("fixers: {deny: [1, 2]}\n", "healer.yml:healing.fixers.deny: [1, 2]: expected a list of names (or one name)"),
])
def test_bad_values_are_one_line_errors(tmp_path, healing, message):
    assert check(_repo(tmp_path, healing=healing), Policy(), org="") == [message]


def test_repo_scoped_keys_and_bad_org_file(tmp_path):
    repo = _repo(tmp_path, revenue="budgets: {model_tokens_per_day: 5}\n", orders="mode: off\n")
    assert check(repo, Policy(), org="") == ["healer.yml:pipelines.revenue.healing.budgets.model_tokens_per_day: "
                                            "not a pipeline-level key (set it in: org, repo)"]
    # a mistake in revenue's block does not stop orders' heals
    assert effective(repo, "orders", Policy(), org="").mode.value == "off"
    bad = tmp_path / "bad.yml"
    bad.write_text("healing: {mode: off}\nteam: x\n")
    assert check(_repo(tmp_path), Policy(), org=bad) == [f"{bad}:team: unknown key (allowed: healing)"]
    assert check(_repo(tmp_path), Policy(), org=tmp_path / "missing.yml") == [
        f"{tmp_path / 'missing.yml'}: the policy file (HEALER_POLICY_FILE) does not exist"]


def test_settings_are_the_ceiling_of_seconds(tmp_path):
    repo = _repo(tmp_path, healing="budgets: {shadow_seconds: 5000, sandbox_seconds: 30}\n")
    eff = effective(repo, "revenue", Policy(max_shadow_seconds=1800), org="")
    assert (eff.shadow_seconds.value, eff.shadow_seconds.where) == (1800, "HEALER_MAX_SHADOW_SECONDS")
    assert eff.sandbox_seconds.value == 30
    assert json.dumps(eff.to_json())  # policy show --json


def test_auto_merge_conditions(tmp_path):
    from healer.governance.enforce import auto_merge_refusal

    org = _org(tmp_path, "mode: auto_merge\nauto_merge: {fixers: [rule, llm]}\n")
    eff = effective(_repo(tmp_path), "revenue", Policy(), org=org)
    ok = dict(ready=True, identical=True, draft=False, storm=False)
    assert auto_merge_refusal(eff, "rule:renamed_column", **ok) is None
    assert auto_merge_refusal(eff, "llm:claude-sonnet-4-5", **ok) == (
        "model fixes are never auto-merged unless the org file allows it (default)")
    assert auto_merge_refusal(eff, "rule:x", **dict(ok, identical=False)) == \
        "the data diff against the last good output is not identical"
    assert auto_merge_refusal(eff, "rule:x", **dict(ok, ready=False)) == "Healer's verdict is not ready"
    assert auto_merge_refusal(eff, "rule:x", **dict(ok, draft=True)) == "the PR is a draft"
    org.write_text("healing:\n  mode: auto_merge\n  auto_merge: {fixers: [llm], model: true}\n")
    assert auto_merge_refusal(effective(_repo(tmp_path), "revenue", Policy(), org=org), "llm:claude-sonnet-4-5",
                              **ok) is None  # the org file allowed the model
    assert check(_repo(tmp_path, healing="auto_merge: {fixers: [rule]}\n"), Policy(), org=org) == [
        "healer.yml:healing.auto_merge.fixers: allows 'rule', which " f"{org}:healing.auto_merge.fixers does not "
        "(allows: llm; a lower level may only tighten)"]
