"""Rule (last resort, draft only): revert the hunk of the commit that introduced the failing construct.

When the job's code changed since the last good run and the name or token Spark failed on
sits on a line those commits added, undoing that one hunk restores the code that last
worked — at the cost of whatever the hunk meant to add. So this is never a ready fix: it is
a draft that names the commit and its author, shows the hunk, and says plainly that the
hunk's intended change is dropped. Never a whole-commit revert: other hunks stay.

It runs after every other rule (its confidence is the lowest that is still tried), so a fix
that keeps the feature wins whenever one passes the sandbox.
"""

from __future__ import annotations

import re

from healer.evidence.history import revert_hunk
from healer.fixers.base import Declined, FileEdit, Patch

CATEGORIES = {"unresolved_column", "missing_table", "unresolved_function", "parse", "datatype_mismatch",
              "legacy_behavior", "type_cast", "divide_by_zero"}
CONFIDENCE = 0.5  # the lowest a candidate may have and still be tried: last of all, and a draft


def failing_word(failure) -> str | None:
    """The identifier, function, table or token Spark names in its error."""
    p = failure.params or {}
    for key in ("objectName", "relationName", "routineName", "functionName", "fieldName", "error", "pattern"):
        value = p.get(key)
        if value:
            word = value.replace("`", "").strip().strip("'\"")
            return word.split(".")[-1] if key != "pattern" else word
    match = re.search(r"near '([^']+)'", failure.message or "")
    return match.group(1) if match else None


def _count(word: str, lines: list[str]) -> int:
    """How often ``word`` occurs in ``lines`` (as a name, any case; a pattern or token as text)."""
    pattern = re.compile(rf"(?<![\w$]){re.escape(word)}(?![\w$])" if re.fullmatch(r"\w+", word) else re.escape(word),
                         re.IGNORECASE)
    return sum(len(pattern.findall(line)) for line in lines)


class RevertHunk:
    name = "rule:revert_hunk"

    def propose(self, evidence) -> list[Patch]:
        f, changes, job = evidence.failure, evidence.changes, evidence.pipeline.job
        if f.category not in CATEGORIES or changes is None or not changes.touches(job):
            return []
        word = failing_word(f)
        if not word:
            return []
        found = [h for h in changes.net_hunks(job) if _count(word, h.added) > _count(word, h.removed)]
        if not found:
            return []  # the failing construct is older than these commits: reverting them would not help
        if len(found) > 1:
            raise Declined(f"'{word}' was added in {len(found)} hunks of {job}: reverting one would not be enough "
                           "and reverting all drops more than the failing change")
        hunk = found[0]
        after = revert_hunk(evidence.job_source, hunk)
        if after is None or after == evidence.job_source:
            raise Declined(f"the hunk that added '{word}' no longer applies to {job} in reverse")
        commits = changes.commits_touching(job, hunk) or changes.commits_touching(job)
        names = ", ".join(f"{c.sha[:10]} by {c.author} ({c.subject[:80]})" for c in commits) or "unknown commits"
        kept = {line.strip().rstrip(",") for line in hunk.removed}
        lost = [line.strip() for line in hunk.added if line.strip() and line.strip().rstrip(",") not in kept]
        sha = commits[-1].sha[:10] if commits else "?"
        return [Patch(
            fixer=self.name,
            title=f"revert the change to {job} that introduced '{word}' (commit {sha})",
            rationale=(f"Spark failed on '{word}' ({f.error_class}), which {names} added to {job}. No rule found a "
                       "fix that keeps the change, so this draft undoes that one hunk and restores the lines of the "
                       "last good run; the rest of the commit stays."),
            confidence=CONFIDENCE, changes_meaning=True,
            edits=[FileEdit(job, evidence.job_source, after)],
            doubts=[f"drops what the hunk meant to add: {'; '.join(lost)[:300]}",
                    "the author should fix the change forward instead; this restores the last good code"],
            details={"reverted_hunk": hunk.text(), "commits": [c.sha for c in commits],
                     "authors": sorted({c.author for c in commits})})]
