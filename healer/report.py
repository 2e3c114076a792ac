"""The pull request body: the evidence a reviewer needs to trust a fix at a glance."""

from __future__ import annotations

SAMPLE_DOUBT = ("The sandbox ran on a sample of the current inputs; values that only occur outside the "
                "sample were not seen. Re-run the pipeline on the branch before merging if in doubt.")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:120]


def table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def pr_title(pipeline: str, patch) -> str:
    return f"heal({pipeline}): {patch.title}"


def reproduce_commands(failure, branch: str) -> str:
    return "\n".join([
        "# replay the heal (sandbox only, nothing pushed):",
        f"healer heal --repo {failure.repo} --pipeline {failure.pipeline} --failure {failure.run_id} --dry-run",
        "# run the fixed job on the full current data:",
        f"git fetch origin {branch} && git checkout {branch}",
        f"healer run {failure.pipeline} --repo .",
    ])


def pr_body(failure, evidence, patch, verdict, timings: dict, branch: str, draft: bool, sample_plan: dict) -> str:
    """Markdown body: summary, what failed, root cause, change, validation, lineage, doubts, reproduce."""
    lines = []
    if draft:
        lines += ["> **Draft: " + ("this fix changes what the data means" if patch.changes_meaning
                                   else f"confidence {patch.confidence:.2f} is below the bar for a ready PR")
                  + ". Review the doubts below before merging.**", ""]
    lines += [
        "### Summary",
        f"`{failure.pipeline}` failed at the **{failure.stage}** stage with `{failure.error_class}` "
        f"(commit `{(failure.commit or 'unknown')[:10]}`, run #{failure.run_id}). Root cause: {patch.title}. "
        f"Healer's `{patch.fixer}` fix ran on sampled current inputs and passed "
        f"{sum(1 for c in verdict.checks if c.passed)}/{len(verdict.checks)} checks. Confidence **{patch.confidence:.2f}**.",
        "",
        "### What failed",
        "```",
        (failure.message or "").strip().splitlines()[0][:500] if failure.message else failure.error_class,
        "```",
        "",
        "### Root cause",
        patch.rationale,
        "",
    ]
    drift = [list(r) for d in evidence.changed for r in d.rows()]
    if drift:
        last = f"run #{evidence.last_good.id}" if evidence.last_good else "no recorded good run"
        lines += [f"Schema drift since the last good run ({last}):", "", table(["input", "column", "change", "detail"], drift), ""]
    lines += ["### The change", "```diff", patch.diff().rstrip(), "```", ""]
    lines += ["### Validation", "Sandbox run of the patched job on a deterministic sample of the current inputs:", "",
              table(["check", "result", "detail"], [[c.name, "pass" if c.passed else "FAIL", c.detail] for c in verdict.checks]), ""]
    if verdict.expectations:
        rows = [[e["expectation"], "pass" if e["success"] else "FAIL",
                 "" if e.get("unexpected_count") is None else f"{e['unexpected_count']} of {e.get('element_count')}"]
                for e in verdict.expectations]
        lines += ["Expectations on the sample output:", "", table(["expectation", "result", "failing rows"], rows), ""]
    sizes = [[name, rows, sample_plan.get(name, "")] for name, rows in verdict.sample_sizes.items()]
    lines += ["Sample sizes:", "", table(["input", "rows", "how"], sizes), "",
              f"Output on the sample: {verdict.output_rows} rows"
              + (f" (last good run on full data: {evidence.last_good.row_count} rows)" if evidence.last_good else ""), ""]
    if verdict.profile_rows:
        prow = [[r["column"], r["null_before"], r["null_after"], r["min_before"], r["min_after"], r["max_before"], r["max_after"]]
                for r in verdict.profile_rows]
        lines += ["<details><summary>Output profile: last good run vs sandbox</summary>", "",
                  table(["column", "nulls before", "nulls after", "min before", "min after", "max before", "max after"], prow),
                  "", "</details>", ""]
    affected = evidence.affected_outputs()
    lines += ["### Lineage", (f"Output columns computed from what changed: {', '.join(f'`{a}`' for a in affected)}."
                              if affected else "No output column is traced to the changed inputs.")
              + ("" if evidence.lineage.exact else " (Lineage of this job is approximate.)"), ""]
    doubts = list(patch.doubts) + [SAMPLE_DOUBT]
    lines += ["### Confidence and doubts", f"Confidence: **{patch.confidence:.2f}**.", ""] + [f"- {d}" for d in doubts] + [""]
    lines += ["### Timings", table(["stage", "seconds"], [[k, f"{v:.1f}"] for k, v in timings.items()]), ""]
    lines += ["### Reproduce", "```sh", reproduce_commands(failure, branch), "```", "",
              f"<!-- healer:fingerprint={failure.fingerprint} -->"]
    return "\n".join(lines)


def commit_message(pipeline: str, patch, failure) -> str:
    return (f"heal({pipeline}): {patch.title}\n\n{patch.rationale}\n\nFixer: {patch.fixer}\n"
            f"Confidence: {patch.confidence:.2f}\nFailed run: #{failure.run_id} ({failure.error_class})\n"
            f"Healer-Fingerprint: {failure.fingerprint}\n")
