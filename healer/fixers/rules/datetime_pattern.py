"""Rule: a datetime pattern Spark 3+ rejects -> the pattern the job meant.

Spark 3 replaced SimpleDateFormat with java.time and refuses patterns whose meaning changed
(``INCONSISTENT_BEHAVIOR_CROSS_VERSION.DATETIME_PATTERN_RECOGNITION``): ``YYYY`` is the
week-based year, ``aa`` is no longer an am/pm marker. Code ported from an old cluster, or a
commit written from memory, fails with it. The other legacy-behaviour families (ancient
dates in Parquet/Avro, values the new parser reads differently) are classified the same way
but need a reader option or a data decision, not a code edit: the rule says so and declines.

Fix, only when unambiguous: the pattern literal named in the error is rewritten letter run by
letter run — ``Y``+ -> ``y``+ when the pattern also has a month (a week-based year next to a
month is always a slip), ``a``+ -> ``a``. A pattern with week fields (``w``, ``W``, ``u``,
``e``, ``c``) has no calendar equivalent: declined with the reason. Setting
``spark.sql.legacy.timeParserPolicy`` is never proposed: it changes every job on the cluster.
"""

from __future__ import annotations

import re

from healer.fixers import pyedit, sqledit
from healer.fixers.base import Declined, FileEdit, Patch

WEEK_FIELDS = set("wWuec")


def rewrite(pattern: str) -> tuple[str, list[str]] | None:
    """(the Spark 3 pattern, what changed) or None when nothing safe changes; Declined when ambiguous."""
    runs = _runs(pattern)
    letters = {r[0] for r, quoted in runs if not quoted and r[0].isalpha()}
    week = sorted(letters & WEEK_FIELDS)
    if week:
        raise Declined(f"pattern '{pattern}' uses week fields ({', '.join(week)}) that Spark 3+ does not support "
                       "and that have no calendar equivalent")
    out, changed = [], []
    for run, quoted in runs:
        if not quoted and run[0] == "Y":
            if "M" not in letters and "L" not in letters:
                raise Declined(f"pattern '{pattern}' has a week-based year ({run}) without a month: "
                               "a calendar year is likely meant but not certain")
            out.append("y" * len(run))
            changed.append(f"{run} (week-based year) -> {'y' * len(run)} (year)")
        elif not quoted and run[0] == "a" and len(run) > 1:
            out.append("a")
            changed.append(f"{run} -> a (am/pm marker)")
        else:
            out.append(run)
    new = "".join(out)
    return (new, changed) if new != pattern else None


def _runs(pattern: str) -> list[tuple[str, bool]]:
    """Letter runs and quoted literals of a pattern: [(text, quoted)]."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            j = pattern.find("'", i + 1)
            j = len(pattern) - 1 if j < 0 else j
            out.append((pattern[i:j + 1], True))
            i = j + 1
            continue
        j = i
        while j < len(pattern) and pattern[j] == ch:
            j += 1
        out.append((pattern[i:j], False))
        i = j
    return out


class DatetimePattern:
    name = "rule:datetime_pattern"

    def propose(self, evidence) -> list[Patch]:
        f = evidence.failure
        if f.category != "legacy_behavior":
            return []
        family = f.error_class.split(".", 1)[1] if "." in f.error_class else f.error_class
        if family not in ("DATETIME_PATTERN_RECOGNITION", "DATETIME_WEEK_BASED_PATTERN"):
            raise Declined(f"{f.error_class}: a change of Spark's behaviour that needs a reader option or a "
                           "decision about the data, not a code edit")
        pattern = (f.params.get("pattern") or "").strip()
        if pattern[:1] == pattern[-1:] == "'" and len(pattern) > 1:
            pattern = pattern[1:-1]
        if not pattern:
            match = re.search(r"Fail to recognize '(.+?)' pattern", f.message or "")
            pattern = match.group(1) if match else ""
        if not pattern or "%" in pattern:
            return []  # none named, or a strftime pattern from another dialect: dialect_slip's case
        fixed = rewrite(pattern)
        if fixed is None:
            raise Declined(f"pattern '{pattern}' has no rewrite Healer is sure of")
        new, changed = fixed
        source = evidence.job_source
        if evidence.pipeline.kind == "sql":
            after = sqledit.replace_string_literals(source, {pattern: new})
        else:
            edits = [(span, new) for node, span, _ in pyedit.string_literals(source) if node.value == pattern]
            after = pyedit.replace_spans(source, edits) if edits else None
        if after is None or after == source:
            return []
        return [Patch(
            fixer=self.name,
            title=f"datetime pattern '{pattern}' is rejected by Spark 3+: '{new}' meant",
            rationale=(f"Spark refused the pattern '{pattern}' ({f.error_class}): its meaning changed with the "
                       f"java.time parser. Rewritten to '{new}': {'; '.join(changed)}. The cluster-wide "
                       "spark.sql.legacy.timeParserPolicy is left alone."),
            confidence=0.85, edits=[FileEdit(evidence.pipeline.job, source, after)],
            details={"pattern": pattern, "fixed": new})]
