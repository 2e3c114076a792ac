"""The pull request body, title and commit message, rendered from real heal records (no Spark)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from forgeserver import _examples_module, example
from healer import report
from healer.evidence.history import CommitInfo
from healer.fixers.base import FileEdit
from healer.forges.remote import fingerprint_in, labels_for
from healer.sandbox import Check

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECTIONS = ["### Summary", "### What failed", "### Root cause", "### The change", "### Validation", "### Lineage",
            "### Confidence and doubts", "### Cost", "### Reproduce"]


def body(ex: dict, **options) -> str:
    """Called exactly as heal.py calls it: eight positional arguments."""
    return report.pr_body(ex["failure"], ex["evidence"], ex["patch"], ex["verdict"], ex["timings"], ex["branch"],
                          ex["draft"], ex["sample_plan"], **options)


def section(text: str, title: str) -> str:
    start = text.index(title)
    following = [text.index(s) for s in SECTIONS if s in text and text.index(s) > start]
    return text[start: min(following, default=len(text))]


@pytest.mark.parametrize("name", ["example-pr-rule-fix.md", "example-pr-draft.md"])
def test_committed_examples_match_the_renderer(name):
    rendered = _examples_module().render(name)
    committed = (DOCS / name).read_text() if (DOCS / name).exists() else ""
    assert committed == rendered, (f"docs/{name} is out of date with healer/report.py; regenerate it with "
                                   "`.venv/bin/python docs/render_examples.py` and review the diff")


def test_title_is_the_pipeline_and_the_root_cause_on_one_short_line():
    ex = example("rule_fix")
    assert report.pr_title("revenue_by_category", ex["patch"]) == \
        "heal(revenue_by_category): upstream column was renamed in order_items: unit_price → item_price"
    long = dataclasses.replace(ex["patch"], title="a\nb  " + "x" * 300)
    title = report.pr_title("p", long)
    assert title.startswith("heal(p): a b x") and len(title) == 200 and "\n" not in title


def test_rule_fix_body_answers_the_reviewer_in_order():
    ex = example("rule_fix")
    text = body(ex)

    assert [text.index(s) for s in SECTIONS] == sorted(text.index(s) for s in SECTIONS)
    assert not text.startswith(">")  # no draft banner
    summary = section(text, "### Summary")
    assert "run #41 (commit `4f1c2a9e7b`) with `UNRESOLVED_COLUMN.WITH_SUGGESTION`" in summary
    assert "7/7 sandbox checks and 9/9 expectations passed on 26,631 sampled input rows" in summary
    assert "96 of 96 rows identical to the last good output, shadow run on 67,249 input rows" in summary
    # the one doubt it had was "sampled only"; the shadow run read every row, so none is left
    assert "**0.93**, with 0 doubts" in summary and "rule fix: no model cost" in summary
    assert "96 rows on the sample (last good run: 96 rows on the full data)" in summary
    # root cause with the schema diff as a table
    assert "| order_items | unit_price | renamed? | -> item_price (score 0.93) |" in section(text, "### Root cause")
    # the readable diff, not folded when short
    change = section(text, "### The change")
    assert "-  ROUND(SUM(i.quantity * i.unit_price" in change and "+  ROUND(SUM(i.quantity * i.item_price" in change
    assert "<details>" not in change
    # every expectation with counts, sample sizes, output rows
    validation = section(text, "### Validation")
    assert "| column_values_between(column=revenue, min=0) | pass | 96 | 0 |  |" in validation
    assert "| row_count_between(min=1) | pass |  |  | observed 96 |" in validation
    assert "| order_items | 20,000 | seeded 3.61% sample |" in validation
    assert "Output on the sample: **96** rows; the last good run wrote 96 rows on the full data." in validation
    # key column stats before vs after; expectation and lineage columns first, the rest folded
    key, _, rest = validation.partition("<details><summary>Other output columns (1)</summary>")
    assert "| revenue | 0.0% | 10234.5 → 2911.25 | 88123.8 → 25410 |" in key
    assert "| category | 0.0% | books | toys |" in key
    assert "| orders | 0.0% |" in rest and "| orders | 0.0% |" not in key
    assert "Output columns computed from what changed: `revenue`." in section(text, "### Lineage")
    assert "healer heal --repo /srv/pipelines/retail --pipeline revenue_by_category --failure 41 --dry-run" in text
    assert text.rstrip().endswith(report.markers(ex["failure"]))
    assert fingerprint_in(text) == ex["failure"].fingerprint


def test_draft_body_says_why_plainly_and_lists_every_doubt():
    ex = example("draft_fix")
    text = body(ex, draft_below=0.7)

    # what the fixer says, then Healer's own figure, then the low confidence: every reason in the first line
    assert text.startswith("> **Draft: this fix changes what the data means; order_number differs on 1,283 of 18,198 "
                           "rows, median -8%; its confidence 0.62 is below the 0.70 bar for a ready pull request.**")
    doubts = section(text, "### Confidence and doubts")
    bullets = [line for line in doubts.splitlines() if line.startswith("- ")]
    assert len(bullets) == 5 and "**0.62**, with 5 doubts" in text
    assert bullets[0].startswith("- 14 of 2,000 distinct order_ts values")
    assert "- Draft because this fix changes what the data means." in bullets
    # the shadow run read every row: no "sample only" doubt, which would not be true here
    assert report.SAMPLE_DOUBT not in text
    assert "| `order_number` | 1,283 | 3 | 75.0% | -8.0% | order_id=118; order_id=342; order_id=907 |" in text
    assert "| order_ts | 0.0% → 0.7% |" in text and "| days_since_previous | 8.1% → 9.2% |" in text
    assert "model claude-sonnet-4-5: 18,234 input + 1,412 output + 6,100 cache tokens, about $0.0781" in text
    # without the bar, the banner still gives a reason
    plain = body(dict(ex, patch=dataclasses.replace(ex["patch"], changes_meaning=False),
                      verdict=dataclasses.replace(ex["verdict"], shadow=None, readiness=None)))
    assert bullets_of(plain)[-1] == "- " + report.SAMPLE_DOUBT  # no shadow run: the sample doubt is true
    assert plain.startswith("> **Draft: its confidence 0.62 is below the bar for a ready pull request.**")


def bullets_of(text: str) -> list[str]:
    return [line for line in section(text, "### Confidence and doubts").splitlines() if line.startswith("- ")]


def test_cost_line():
    patch = example("rule_fix")["patch"]
    assert report.cost_line(patch) == "rule fix: no model cost"
    llm = dataclasses.replace(patch, fixer="llm:claude-sonnet-4-5", details={})
    assert report.cost_line(llm) == "model fix: the model's usage was not recorded"
    heal_usage = {"model": "m", "input_tokens": 1000, "output_tokens": 20, "cost_usd": 0.5}
    assert report.cost_line(llm, usage=heal_usage) == "model m: 1,000 input + 20 output tokens, about $0.5000"


def test_failed_expectation_and_failed_check_are_shown_not_hidden():
    ex = example("rule_fix")
    verdict = ex["verdict"]
    exps = list(verdict.expectations)
    exps[5] = dataclasses.replace(exps[5], success=False, unexpected_count=3)
    checks = verdict.checks[:1] + [Check("expectations", False, "8/9 passed")] + verdict.checks[2:]
    text = body(dict(ex, verdict=dataclasses.replace(verdict, expectations=exps, checks=checks, passed=False)))
    assert "| column_values_between(column=revenue, min=0) | FAIL | 96 | 3 |  |" in text
    assert "| expectations | FAIL | 8/9 passed |" in text
    assert "- The expectations check did not pass: 8/9 passed" in text
    assert "6/7 sandbox checks and 8/9 expectations passed" in text


def test_untrusted_text_cannot_break_the_body_or_forge_markers():
    ex = example("rule_fix")
    evil = ("boom ``` </details> <!-- healer:fingerprint=deadbeefdeadbeef -->\n```\n# injected heading @octocat")
    failure = dataclasses.replace(ex["failure"], message=evil, error_class="EVIL <b>|x", traceback=evil)
    patch = dataclasses.replace(ex["patch"], rationale="ping @data-team <!-- hide", doubts=["see <script>"])
    commits = [CommitInfo(sha="a" * 40, author="Mallory | @boss", date="2025-01-01T00:00:00", subject="x `y` | z",
                          files=())]
    evidence = dataclasses.replace(ex["evidence"], commits=commits)
    text = body(dict(ex, failure=failure, patch=patch, evidence=evidence))

    # the message is fenced with a longer fence than any run of backticks inside it
    what = section(text, "### What failed")
    assert "````\nboom ``` </details>" in what
    assert fingerprint_in(text) == failure.fingerprint  # the last marker is Healer's own
    assert "ping @\u200bdata-team &lt;!-- hide" in text and "see &lt;script>" in text
    assert "| `aaaaaaaaaa` | 2025-01-01 | Mallory \\| @\u200bboss | ``x `y` \\| z`` |" in text
    assert report.pr_labels(failure) == ("EVIL__b__x",)  # the error class is a label, not a marker in the body
    assert labels_for(report.pr_labels(failure)) == ["healer", "EVIL__b__x"] and "healer:error-class" not in text


def test_long_diffs_fold_and_huge_ones_are_cut_to_fit_the_forge():
    ex = example("rule_fix")
    before = "".join(f"SELECT {i} AS c{i}\n" for i in range(100))
    folded = dataclasses.replace(ex["patch"], edits=[FileEdit("jobs/x.sql", before, before.replace("SELECT", "select"))])
    assert "<details><summary>The diff (203 lines)</summary>" in section(body(dict(ex, patch=folded)), "### The change")

    huge_before = "".join(f"SELECT {i} AS column_number_{i}\n" for i in range(6000))
    huge = dataclasses.replace(ex["patch"], edits=[FileEdit("jobs/x.sql", huge_before, huge_before.replace("SELECT", "select"))])
    text = body(dict(ex, patch=huge))
    assert len(text) <= report.MAX_BODY
    assert re.search(r"\.\.\. [\d,]+ more lines: see the branch", text)
    assert text.rstrip().endswith(report.markers(ex["failure"]))


def test_no_good_run_is_said_and_counted_as_a_doubt():
    ex = example("rule_fix")
    evidence = dataclasses.replace(ex["evidence"], last_good=None, diffs=[])
    text = body(dict(ex, evidence=evidence))
    assert "No good run is recorded, so there is no schema to compare with." in text
    assert "- No good run is recorded: the output schema and profile were not compared" in text
    assert "no good run is recorded to compare with" in text


def test_reproduce_commands_quote_paths():
    failure = dataclasses.replace(example("rule_fix")["failure"], repo="/srv/my pipelines")
    commands = report.reproduce_commands(failure, "healer/p/abc")
    assert "--repo '/srv/my pipelines' --pipeline revenue_by_category --failure 41 --dry-run" in commands
    assert "git fetch origin healer/p/abc && git checkout healer/p/abc" in commands


def test_commit_message_has_the_title_and_trailers():
    ex = example("rule_fix")
    message = report.commit_message("revenue_by_category", ex["patch"], ex["failure"])
    first, _, rest = message.partition("\n\n")
    assert first == report.pr_title("revenue_by_category", ex["patch"])
    assert f"Healer-Fingerprint: {ex['failure'].fingerprint}\n" in rest and "Fixer: rule:renamed_column" in rest
