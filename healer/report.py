"""The pull request a reviewer can trust at a glance: title, body and commit message.

The body answers a reviewer's questions in the order they are asked: what broke, why, what
the fix changes in the data and how sure Healer is (the summary); then the evidence for
each: the error, the root cause with the schema diff, the diff of the job, the validation
on the sample (checks, every expectation with counts, sample sizes, output rows and column
statistics before vs after), the lineage, every doubt, the cost, and the commands that
reproduce the sandbox run. Long parts fold into ``<details>``.

Error messages, commit subjects, data values and model-written text are untrusted: they are
fenced or escaped so they cannot break the layout, hide the rest of the body inside an HTML
comment, forge Healer's markers, or mention people. They may also hold secrets: each is
redacted (``healer.redact``) before it is cut to length, values of columns named like secrets
are masked whole, and the whole body, title and commit message get a last pass.

The examples under ``docs/`` are rendered from fixed inputs by ``python docs/render_examples.py``.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from healer.llm_client import ModelUsage
from healer.redact import is_secret_name, mask, mask_values, redact

if TYPE_CHECKING:
    from healer.expectations import ExpectationResult

SAMPLE_DOUBT = ("The sandbox ran on a sample of the current inputs; values that only occur outside the "
                "sample were not seen. Re-run the pipeline on the branch before merging if in doubt.")
MAX_BODY = 60_000  # GitHub refuses bodies over 65,536 characters
DIFF_OPEN_LINES = 60  # a longer diff is folded
ERROR_LINES = 12
TRACEBACK_LINES = 40
PROFILE_ROWS = 60

_MENTION = re.compile(r"@(?=[A-Za-z0-9_])")


# -- markdown that untrusted text cannot break ---------------------------------------------

def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.0f}" if 1e6 <= abs(value) < 1e15 else f"{value:.6g}"
    return str(value)


def _safe(text: str) -> str:
    """Text for markdown outside code: no raw HTML (so no comment that swallows the body), no @mentions."""
    return _MENTION.sub("@\u200b", str(text).replace("<", "&lt;"))


def _cell_text(value) -> str:
    text = " ".join(_fmt(value).split())
    return _safe(text if len(text) <= 120 else text[:119] + "…")


def _cell(value) -> str:
    return _cell_text(value).replace("|", "\\|")


def _code(value) -> str:
    """An inline code span that holds any text, backticks included."""
    text = " ".join(str(value).split())
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _fence(text: str, lang: str = "") -> str:
    """A fenced block that the text cannot close early."""
    ticks = "`" * max(3, max((len(run) for run in re.findall(r"`{3,}", text)), default=0) + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _details(summary: str, inner: str) -> list[str]:
    return [f"<details><summary>{summary}</summary>", "", inner, "", "</details>", ""]


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table; cells are escaped and shortened."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A table of cells that are markdown already (code spans); only pipes are escaped."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def _count(n) -> str:
    return "" if n is None else f"{int(n):,}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


# -- title, commit, commands, cost -----------------------------------------------------------

def pr_title(pipeline: str, patch) -> str:
    """``heal(<pipeline>): <root cause in words>``, one line, short enough for any forge."""
    text = redact(f"heal({pipeline}): {' '.join(str(patch.title).split())}")
    return text if len(text) <= 200 else text[:199] + "…"


def commit_message(pipeline: str, patch, failure) -> str:
    """The commit on the healer branch: the title, why, and trailers that tie it to the heal."""
    return redact(f"{pr_title(pipeline, patch)}\n\n{patch.rationale}\n\nFixer: {patch.fixer}\n"
                  f"Confidence: {patch.confidence:.2f}\nFailed run: #{failure.run_id} ({failure.error_class})\n"
                  f"Healer-Fingerprint: {failure.fingerprint}\n")


def reproduce_commands(failure, branch: str) -> str:
    """Shell commands that replay the sandbox run and run the fixed job on the full data."""
    q = shlex.quote
    return "\n".join([
        "# replay the heal (sandbox only, nothing pushed):",
        f"healer heal --repo {q(str(failure.repo))} --pipeline {q(failure.pipeline)} --failure {failure.run_id} --dry-run",
        "# run the fixed job on the full current data:",
        f"git fetch origin {q(branch)} && git checkout {q(branch)}",
        f"healer run {q(failure.pipeline)} --repo .",
    ])


def cost_line(patch, usage: dict | None = None) -> str:
    """What the fix cost: model tokens and dollars, or that a rule needs no model.

    ``usage`` (the whole heal's model usage, as the outcome records it) wins over ``patch.usage``,
    which the LLM fixer sets.
    """
    spent = ModelUsage.from_json(usage) if usage else patch.usage
    if spent is None:
        if str(patch.fixer).startswith("llm"):
            return "model fix: the model's usage was not recorded"
        return "rule fix: no model cost"
    counts = spent.usage
    cached = counts.cache_read_input_tokens + counts.cache_creation_input_tokens
    parts = [f"{counts.input_tokens:,} input", f"{counts.output_tokens:,} output"]
    if cached:
        parts.append(f"{cached:,} cache")
    text = f"model {spent.model or 'unknown'}: " + " + ".join(parts) + " tokens"
    if spent.cost_usd is not None:
        text += f", about ${spent.cost_usd:.4f}"
    return text


def markers(failure) -> str:
    """The hidden marker: the fingerprint, so a forge finds the open PR of a cause (sync and dedupe read it)."""
    return f"<!-- healer:fingerprint={failure.fingerprint} -->"


def pr_labels(failure) -> tuple[str, ...]:
    """The labels of a PR beside ``healer`` and the policy's: its error class, in characters any forge takes."""
    return (re.sub(r"[^A-Za-z0-9_.:-]", "_", redact(failure.error_class or "unknown"))[:80],)


# -- the body --------------------------------------------------------------------------------

def pr_body(failure, evidence, patch, verdict, timings: dict, branch: str, draft: bool, sample_plan: dict, *,
            usage: dict | None = None, draft_below: float | None = None, alternative: tuple | None = None) -> str:
    """Markdown body: summary, what failed, root cause, change, validation, lineage, doubts, cost, reproduce.

    ``usage`` is the heal's model usage when it differs from the patch's; ``draft_below`` is
    the confidence bar of a ready pull request, named in the draft banner when given.
    """
    args = (failure, evidence, patch, verdict, timings, branch, draft, sample_plan, usage, draft_below, alternative)
    body = _render(*args)
    if len(body) > MAX_BODY:
        diff = patch.diff()
        body = _render(*args, diff_limit=max(2_000, len(diff) - (len(body) - MAX_BODY) - 1_000))
    if len(body) > MAX_BODY:
        tail = "\n\n*(The description was cut to fit the forge; the branch holds everything.)*\n\n" + markers(failure)
        body = body[: MAX_BODY - len(tail)] + tail
    return body


def _render(failure, evidence, patch, verdict, timings, branch, draft, sample_plan, usage, draft_below, alternative,
            diff_limit: int | None = None) -> str:
    lines: list[str] = []
    if draft:
        lines += [draft_banner(patch, draft_below, verdict), ""]
    lines += _summary(failure, evidence, patch, verdict, usage, draft, draft_below)
    lines += _what_failed(failure)
    lines += _root_cause(evidence, patch)
    lines += _change(patch, diff_limit)
    lines += _validation(evidence, verdict, sample_plan)
    lines += _lineage(evidence)
    lines += _alternative(alternative)
    lines += _doubts(evidence, patch, verdict, draft, draft_below)
    cost = cost_line(patch, usage)
    lines += ["### Cost", cost[:1].upper() + cost[1:] + ".", ""]
    lines += ["### Reproduce", _fence(reproduce_commands(failure, branch), "sh"), ""]
    if timings:
        lines += _details("Timings", table(["stage", "seconds"], [[k, f"{v:.1f}"] for k, v in timings.items()]))
    lines += [f"<sub>Proposed by Healer on branch {_code(branch)}. Nothing reaches production until a person merges it.</sub>",
              "", markers(failure)]
    # the last pass: whatever untrusted text a section let through (the diff, a check's detail)
    return redact("\n".join(lines) + "\n")


def _draft_reasons(patch, draft_below) -> list[str]:
    reasons = []
    if patch.changes_meaning:
        reasons.append("this fix changes what the data means")
    if draft_below is not None and patch.confidence < draft_below:
        reasons.append(f"its confidence {patch.confidence:.2f} is below the {draft_below:.2f} bar for a ready pull request")
    if not reasons:
        reasons.append(f"its confidence {patch.confidence:.2f} is below the bar for a ready pull request")
    return reasons


def draft_banner(patch, draft_below, verdict=None) -> str:
    """The first line of a draft PR: why it is a draft, the telling figure first when Healer measured one."""
    readiness = getattr(verdict, "readiness", None)
    if readiness is not None and readiness.reasons:
        # each reason once, a measured difference by its figure alone
        shown = [readiness.headline if readiness.headline and readiness.headline in r else r for r in readiness.reasons]
        reasons = "; ".join(_safe(redact(r)) for r in shown)
    else:
        reasons = " and ".join(_draft_reasons(patch, draft_below))
    return (f"> **Draft: {reasons}.** It passed the sandbox, but Healer is not sure enough to ask for a merge. "
            "Read the doubts below before you decide.")


def _summary(failure, evidence, patch, verdict, usage, draft, draft_below) -> list[str]:
    checks_ok = sum(1 for c in verdict.checks if c.passed)
    exp_ok = sum(1 for e in verdict.expectations if e.success)
    sampled = sum(int(v or 0) for v in verdict.sample_sizes.values())
    commit = f" (commit {_code((failure.commit or 'unknown')[:10])})"
    files = ", ".join(_code(f) for f in patch.files) or "no files"
    data = []
    if verdict.output_rows is not None:
        data.append(f"{_plural(verdict.output_rows, 'row')} on the sample"
                    + (f" (last good run: {_plural(evidence.last_good.row_count, 'row')} on the full data)"
                       if evidence.last_good and evidence.last_good.row_count is not None else ""))
    for name in ("output schema", "profile"):
        check = next((c for c in verdict.checks if c.name == name), None)
        if check and check.detail:
            data.append(_safe(redact(check.detail)))
    doubts = len(_doubt_list(evidence, patch, verdict, draft, draft_below))
    return [
        "### Summary",
        f"- **What broke:** {_code(failure.pipeline)} failed at the `{failure.stage}` stage of run #{failure.run_id}{commit} "
        f"with {_code(failure.error_class)}: {failure.describe()}.",
        f"- **Why:** {_safe(redact(patch.title))}.",
        f"- **The fix:** {_code(patch.fixer)} edits {files}.",
        "- **The data after the fix:** " + ("; ".join(data) if data else "not measured") + ".",
        f"- **Validated:** {checks_ok}/{len(verdict.checks)} sandbox checks and {exp_ok}/{len(verdict.expectations)} "
        f"expectations passed on {_plural(sampled, 'sampled input row')}.",
        f"- **Against the last good output:** {_full_data_line(verdict)}.",
        f"- **Confidence:** **{patch.confidence:.2f}**, with {_plural(doubts, 'doubt')} listed below.",
        f"- **Cost:** {cost_line(patch, usage)}.",
        "",
    ]


def _full_data_line(verdict) -> str:
    shadow = getattr(verdict, "shadow", None)
    if shadow is None or not shadow.ran:
        why = f" ({_safe(redact(shadow.reason))})" if shadow is not None else ""
        return f"not compared: validated on a sample only{why}"
    if shadow.diff is None:
        return f"the shadow run read {_plural(shadow.rows_read or 0, 'input row')}; no last good output to compare"
    return f"{_safe(shadow.diff.summary())}, shadow run on {_plural(shadow.rows_read or 0, 'input row')}"


def _what_failed(failure) -> list[str]:
    message = redact(failure.message or "").strip()  # redacted before it is cut
    shown = "\n".join(message.splitlines()[:ERROR_LINES])[:3_000] if message else failure.error_class
    lines = ["### What failed", _fence(shown), ""]
    if failure.failed_expectations:
        rows = [[e.expectation or e.kind,
                 "" if e.unexpected_count is None else f"{e.unexpected_count:,} of {e.element_count or 0:,}",
                 _examples(e)]
                for e in failure.failed_expectations]
        lines += ["Expectations the output failed:", "", table(["expectation", "failing rows", "examples"], rows), ""]
    if failure.traceback:
        trace = redact(failure.traceback).strip().splitlines()
        cut = len(trace) > TRACEBACK_LINES
        lines += _details(f"Traceback (last {TRACEBACK_LINES} lines)" if cut else "Traceback",
                          _fence("\n".join(trace[-TRACEBACK_LINES:])))
    return lines


def _root_cause(evidence, patch) -> list[str]:
    lines = ["### Root cause", _safe(redact(patch.rationale)), ""]
    drift = [list(r) for d in evidence.changed for r in d.rows()]
    last = f"run #{evidence.last_good.id}" if evidence.last_good else "no recorded good run"
    if drift:
        lines += [f"Schema drift since the last good run ({last}):", "",
                  table(["input", "column", "change", "detail"], drift), ""]
    elif evidence.last_good:
        lines += [f"No input schema changed since the last good run ({last}).", ""]
    else:
        lines += ["No good run is recorded, so there is no schema to compare with.", ""]
    if evidence.commits:
        rows = [[_code(c.sha[:10]), _cell_text(c.date[:10]), _cell_text(redact(c.author)), _code(redact(c.subject)[:100])]
                for c in evidence.commits]
        lines += _details(f"Recent commits to the job ({len(evidence.commits)})",
                          _md_table(["commit", "date", "author", "subject"], rows))
    lines += _code_changes(evidence, patch)
    return lines


def _code_changes(evidence, patch) -> list[str]:
    """The commits since the last good run (issue 17): who changed the pipeline, and the hunk the fix touches."""
    from healer.evidence.history import hunks_touched

    changes = getattr(evidence, "changes", None)
    if changes is None or not changes.commits:
        return []
    rows = [[_code(c.commit.sha[:10]), _cell_text(c.commit.date[:10]), _cell_text(redact(c.commit.author)),
             _code(redact(c.commit.subject)[:100]), _cell_text(", ".join(f.path for f in c.files if f.hunks))]
            for c in changes.commits]
    lines = [f"The code changed since the last good run ({_plural(len(changes.commits), 'commit')}):", "",
             _md_table(["commit", "date", "author", "subject", "files"], rows), ""]
    touched = hunks_touched(changes, patch.edits)
    if touched:
        lines += ["The hunk the fix touches, as those commits left it:", _fence(redact("\n\n".join(
            f"--- {h.path}\n{h.text()}" for h in touched))[:3000], "diff"), ""]
    return lines


def _change(patch, diff_limit: int | None) -> list[str]:
    diff = patch.diff().rstrip()
    if diff_limit is not None and len(diff) > diff_limit:
        cut = diff[:diff_limit].rsplit("\n", 1)[0]
        diff = cut + f"\n... {len(diff.splitlines()) - len(cut.splitlines()):,} more lines: see the branch"
    n = len(diff.splitlines())
    lines = ["### The change", f"{_plural(len(patch.edits), 'file')}: " + ", ".join(_code(f) for f in patch.files), ""]
    block = _fence(diff, "diff")
    lines += _details(f"The diff ({_plural(n, 'line')})", block) if n > DIFF_OPEN_LINES else [block, ""]
    return lines


def _validation(evidence, verdict, sample_plan) -> list[str]:
    lines = ["### Validation",
             "The patched job ran on a deterministic sample of the current inputs, as untrusted code: it passed a "
             f"static gate, then ran in a separate worker process. Isolation: {_isolation(verdict)}.", "",
             table(["check", "result", "detail"],
                   [[c.name, "pass" if c.passed else "FAIL", redact(c.detail)] for c in verdict.checks]),
             ""]
    if verdict.expectations:
        rows = []
        for e in verdict.expectations:
            counted = e.unexpected_count is not None
            rows.append([e.expectation, "pass" if e.success else "FAIL",
                         _count(e.element_count) if counted else "",
                         _count(e.unexpected_count) if counted else "",
                         redact(e.error or "") or ("" if counted or e.observed is None else f"observed {_observed(e)}")
                         or _examples(e)])
        lines += ["Every expectation on the sample output:", "",
                  table(["expectation", "result", "rows checked", "failing rows", "detail"], rows), ""]
    sizes = [[name, _count(rows), sample_plan.get(name, "")] for name, rows in verdict.sample_sizes.items()]
    if sizes:
        lines += ["Sample sizes:", "", table(["input", "sampled rows", "how"], sizes), ""]
    last = evidence.last_good
    if verdict.output_rows is not None:
        lines += [f"Output on the sample: **{verdict.output_rows:,}** rows"
                  + (f"; the last good run wrote {last.row_count:,} rows on the full data." if last and last.row_count is not None
                     else "; no good run is recorded to compare with."), ""]
    lines += _column_stats(evidence, verdict)
    lines += _shadow_section(verdict)
    return lines


def _shadow_section(verdict) -> list[str]:
    """The full-data run and the data diff against the last good output."""
    shadow = getattr(verdict, "shadow", None)
    if shadow is None:
        return []
    lines = ["### Full data: shadow run and data diff"]
    if not shadow.ran:
        return lines + [f"Not run: {_safe(redact(shadow.reason))}. **Validated on a sample only.**", ""]
    last = f" (the last good run wrote {shadow.last_good_rows:,})" if shadow.last_good_rows is not None else ""
    out = f", wrote **{shadow.output_rows:,}** rows{last}" if shadow.output_rows is not None else ""
    lines += [f"The patched job ran again, isolated the same way, on all **{shadow.rows_read or 0:,}** rows of the "
              f"current inputs (read-only){out}, in {shadow.seconds:.1f}s.", "",
              table(["check", "result", "detail"],
                    [[c.name, "pass" if c.passed else "FAIL", redact(c.detail)] for c in shadow.checks]), ""]
    d = shadow.diff
    if d is None:
        return lines + ["No last good output was there to compare with.", ""]
    how = f"matched on {', '.join(_code(k) for k in d.key)}" if d.key else "compared as whole rows (no key)"
    lines += [f"**{_safe(d.summary())}** ({how}).", ""]
    rows = [["identical", _count(d.identical)], ["changed", _count(d.changed)],
            ["only in the last good output", _count(d.only_before)], ["only in the fix", _count(d.only_after)]]
    lines += [table(["rows", "count"], rows), ""]
    if d.columns:
        changes = [[_code(c.column), _count(c.rows), _num(c.max_abs), _pct(c.max_rel), _pct(c.median_rel, signed=True),
                    _safe(redact("; ".join(c.examples)))] for c in d.columns]
        lines += table(["column", "rows changed", "max abs diff", "max rel diff", "median change", "example keys"],
                       changes).splitlines() + [""]
    if d.columns_only_before or d.columns_only_after:
        lines += [f"Columns only in the last good output: {', '.join(d.columns_only_before) or 'none'}; "
                  f"only in the fix: {', '.join(d.columns_only_after) or 'none'}.", ""]
    if d.numeric:
        stats = [[_code(n.column), *[f"{_num(b)} → {_num(a)}" for b, a in zip(n.before, n.after)]] for n in d.numeric]
        lines += _details("Numeric columns before → after (count, mean, p50, p95)",
                          table(["column", "count", "mean", "p50", "p95"], stats))
    for note in d.notes:
        lines += [f"Note: {_safe(note)}.", ""]
    return lines


def _alternative(alternative: tuple | None) -> list[str]:
    """The other candidate that passed the sandbox, and the figures it lost on."""
    if not alternative:
        return []
    patch, verdict = alternative
    readiness, shadow = getattr(verdict, "readiness", None), getattr(verdict, "shadow", None)
    standing = "ready" if readiness is not None and readiness.ready else \
        f"draft: {_safe(redact(readiness.headline or ''))}" if readiness is not None else "not judged"
    data = shadow.diff.summary() if shadow is not None and shadow.diff is not None else \
        ("validated on a sample only" if shadow is None or not shadow.ran else "no last good output to compare")
    rows = [[_code(patch.fixer), _safe(redact(patch.title)), f"{patch.confidence:.2f}", standing, _safe(data)]]
    block = table(["fixer", "fix", "confidence", "Healer's verdict", "against the last good output"], rows)
    return ["### Alternative considered",
            "Another candidate also passed the sandbox; Healer chose the one above on these figures:", "", block, ""] \
        + _details("The alternative's diff", _fence(patch.diff().rstrip()[:6000], "diff"))


def _num(value) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:,.4g}"


def _pct(value, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _isolation(verdict) -> str:
    if getattr(verdict, "isolation", "bubblewrap") == "process":
        return "**process only** (HEALER_SANDBOX=process: a scrubbed environment, but no namespaces; the fix " \
               "could have reached files and the network)"
    return "**bubblewrap** (no network but loopback, a read-only system, only the sampled inputs visible, no secrets)"


def _examples(result: ExpectationResult) -> str:
    """An expectation's example values: masked whole for a secret-named column, else redacted."""
    return ", ".join(repr(v) for v in mask_values(result.column, list(result.examples[:5])))


def _observed(result: ExpectationResult):
    column = result.column
    return mask(result.observed) if column and is_secret_name(column) else redact(str(result.observed))


def _stat_row(row: dict) -> dict:
    """A profile row whose min/max are a secret column's values: masked whole (its null fractions stay)."""
    if not is_secret_name(str(row.get("column", ""))):
        return {k: redact(v) if isinstance(v, str) else v for k, v in row.items()}
    return {k: mask(v) if k.startswith(("min", "max")) else v for k, v in row.items()}


def _change_cell(before, after, percent: bool = False) -> str:
    show = (lambda v: "" if v is None else f"{v:.1%}") if percent else _fmt
    if before is None and after is None:
        return ""
    if before == after:
        return show(after)
    return f"{show(before) or '–'} → {show(after) or '–'}"


def _column_stats(evidence, verdict) -> list[str]:
    if not verdict.profile_rows:
        return []
    key = {str(c).lower() for c in evidence.affected_outputs()}
    key |= {e.column.lower() for e in verdict.expectations if e.column}
    rows = [[r["column"], _change_cell(r.get("null_before"), r.get("null_after"), percent=True),
             _change_cell(r.get("min_before"), r.get("min_after")), _change_cell(r.get("max_before"), r.get("max_after"))]
            for r in map(_stat_row, verdict.profile_rows)]
    headers = ["column", "nulls", "min", "max"]
    main = [r for r in rows if r[0].lower() in key] or rows[:12]
    rest = [r for r in rows if r not in main]
    lines = ["Key output columns, last good run (full data) → this fix (sample); one value means unchanged:", "",
             table(headers, main), ""]
    if rest:
        lines += _details(f"Other output columns ({len(rest)})", table(headers, rest[:PROFILE_ROWS]))
    return lines


def _lineage(evidence) -> list[str]:
    lineage = evidence.lineage
    affected = evidence.affected_outputs()
    text = (f"Output columns computed from what changed: {', '.join(_code(a) for a in affected)}."
            if affected else "No output column is traced to the changed inputs.")
    if not lineage.exact:
        text += " (The lineage of this job is approximate.)"
    lines = ["### Lineage", text, ""]
    if lineage.outputs:
        rows = [[_code(out), ", ".join(_code(s) for s in sorted(srcs)) or "(constant or untraced)"]
                for out, srcs in sorted(lineage.outputs.items())]
        lines += _details("Column lineage of the output", _md_table(["output column", "computed from"], rows))
    return lines


def _doubts(evidence, patch, verdict, draft, draft_below) -> list[str]:
    doubts = _doubt_list(evidence, patch, verdict, draft, draft_below)
    return ["### Confidence and doubts", f"Confidence: **{patch.confidence:.2f}**.", ""] + [f"- {d}" for d in doubts] + [""]


def _doubt_list(evidence, patch, verdict, draft, draft_below) -> list[str]:
    """Every doubt: the fixer's, the draft's reasons, missing comparisons, failed checks, the sample."""
    doubts = [_safe(redact(d)) for d in patch.doubts]
    readiness = getattr(verdict, "readiness", None)
    if draft:
        reasons = readiness.reasons if readiness is not None and readiness.reasons else _draft_reasons(patch, draft_below)
        doubts += [f"Draft because {_safe(redact(r))}." for r in reasons]
    if not evidence.last_good:
        doubts.append("No good run is recorded: the output schema and profile were not compared with a known good state.")
    if not evidence.lineage.exact:
        doubts.append("The lineage is approximate, so outputs not listed above may depend on the changed inputs too.")
    doubts += [f"The {c.name} check did not pass: {_safe(redact(c.detail))}" for c in verdict.checks if not c.passed]
    if getattr(verdict, "isolation", "bubblewrap") == "process":
        doubts.append("Isolation: process only. The sandbox ran without bubblewrap (HEALER_SANDBOX=process), so "
                      "the candidate was not kept from files or the network while it was validated.")
    shadow = getattr(verdict, "shadow", None)
    if shadow is None or not shadow.ran:
        doubts.append(SAMPLE_DOUBT)
    elif shadow.diff is None:
        doubts.append("No last good output was there to compare the fix's output with.")
    return doubts


def storm_body(members: list, bodies: list[str], fingerprint: str, draft_below: float | None = None,
               draft_lead: tuple | None = None) -> str:
    """One PR body for a storm of (failure, patch, verdict) members; ``draft_below`` set means it
    is a draft, and its first line says why (for ``draft_lead``, the (patch, verdict) that made it one)."""
    rows = [[failure.pipeline, failure.error_class, patch.fixer, f"{patch.confidence:.2f}",
             "pass" if verdict.passed else "FAIL"] for failure, patch, verdict in members]
    parts = []
    if draft_below is not None:
        patch, verdict = draft_lead or members[0][1:]
        parts += [draft_banner(patch, draft_below, verdict), ""]
    parts += ["### Summary",
             f"One upstream change broke {len(members)} pipelines in this repo: {members[0][1].title}. "
             "Each was fixed and validated in the sandbox on its own; they are proposed together so they merge together.",
             "", table(["pipeline", "error", "fixer", "confidence", "sandbox"], rows), ""]
    for (failure, _, _), body in zip(members, bodies):
        inner = body.replace(f"<!-- healer:fingerprint={failure.fingerprint} -->", "").rstrip()
        parts += [f"## `{failure.pipeline}`", "", inner, ""]
    prints = ",".join(failure.fingerprint for failure, _, _ in members)
    parts.append(f"<!-- healer:fingerprint={fingerprint} members={prints} -->")
    return "\n".join(parts)
