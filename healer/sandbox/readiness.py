"""Ready or draft: Healer's own verdict from its evidence, never the fixer's say-so.

A pull request is *ready* only when the shadow run passed on the full data, the output
contract holds, and the data diff fits the kind of fix: a repair of drift that only moves,
renames or retypes data must leave the last good output's rows identical. Anything else is
a *draft* whose first line names the figure. Some figures are not doubts but failures: a
fix that loses most of the rows, moves a numeric column's median tenfold or flips its sign,
or empties a column is refused outright. A fixer's (or model's) confidence and
``changes_meaning`` can only make the result more cautious.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# Repairs of drift that carry the same data to the same output: their diff must be identical.
IDENTITY_FIXERS = frozenset({"rule:renamed_column", "rule:retyped_column", "rule:moved_input", "rule:nested_field",
                             "rule:dialect_slip"})
ROWS_LOST_LIMIT = 0.5  # output rows may not fall below half of the last good run's (input change aside)
MEDIAN_FACTOR_LIMIT = 10.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    headline: str | None  # a draft's first line: the figure that made it one
    reasons: tuple[str, ...] = ()  # every reason it is a draft
    failures: tuple[str, ...] = ()  # figures that refuse the candidate outright
    figure: str | None = None  # the data diff's figure, when the diff (not the fixer's word) made it a draft

    @property
    def refused(self) -> bool:
        return bool(self.failures)


def judge(patch, shadow, *, draft_below: float, last_good_input_rows: dict[str, int] | None = None,
          new_columns_intended: bool = False) -> Readiness:
    """Healer's verdict on a candidate that passed the sample gate.

    ``new_columns_intended``: the code changed since the last good run and the output met the
    new commit's contract, so columns it adds are the commit's intent, not a difference.
    """
    failures = list(shadow.failures()) if shadow is not None and shadow.ran else []
    # what the fixer itself says comes first; Healer's figures follow, then a low confidence
    reasons: list[str] = ["this fix changes what the data means"] if patch.changes_meaning else []
    headline = None
    if shadow is None or not shadow.ran:
        why = shadow.reason if shadow is not None else "no shadow run"
        reasons.append(f"it was validated on a sample only ({why})")
    elif not failures:
        d = shadow.diff
        if d is None:
            reasons.append("there is no last good output to compare the fix's output with")
        else:
            failures += _hard_failures(shadow, d, last_good_input_rows or {})
            if new_columns_intended and d.columns_only_after:
                d = replace(d, columns_only_after=())
            # new rows are new data only for a repair that carries data unchanged (a rule's rename, move,
            # retype); rows a model's or another rule's fix lets through may hold what it invented
            new_data = patch.fixer in IDENTITY_FIXERS and _only_new_rows(d, shadow, last_good_input_rows or {})
            if not d.is_identical and not new_data:
                headline = d.headline()
                if patch.fixer in IDENTITY_FIXERS:
                    reasons.append(f"its output is not identical to the last good output: {headline}")
                else:
                    reasons.append(f"its output differs from the last good output: {headline}")
    if patch.confidence < draft_below:
        reasons.append(f"its confidence {patch.confidence:.2f} is below the {draft_below:.2f} bar for a ready pull request")
    figure = headline
    if headline is None and reasons:
        headline = reasons[0]
    return Readiness(ready=not reasons and not failures, headline=headline, reasons=tuple(reasons),
                     failures=tuple(failures), figure=figure)


def _input_ratio(shadow, before: dict[str, int]) -> float:
    """How much the inputs grew or shrank since the last good run (1.0 when unknown)."""
    now = shadow.input_rows_now or {}
    names = [n for n in now if before.get(n)]
    if not names:
        return 1.0
    return sum(now[n] for n in names) / max(1, sum(before[n] for n in names))


def _only_new_rows(d, shadow, before: dict[str, int]) -> bool:
    """Inputs grew and the fix only added rows: new data, not a changed meaning."""
    return (d.changed == 0 and d.only_before == 0 and d.only_after > 0 and _input_ratio(shadow, before) > 1.0
            and not d.columns_only_before and not d.columns_only_after
            and not d.uniform_new)  # new rows all alike where data used to vary: a constant may hide a gap


def _hard_failures(shadow, d, before: dict[str, int]) -> list[str]:
    failures = []
    if d.rows_before:
        expected = d.rows_before * min(1.0, _input_ratio(shadow, before))
        if d.rows_after < expected * ROWS_LOST_LIMIT:
            failures.append(f"the output fell from {d.rows_before:,} to {d.rows_after:,} rows against the last good run, "
                            "more than the inputs' own row counts explain")
    for stats in d.numeric:
        b, a = stats.before[2], stats.after[2]
        if b is None or a is None or b == 0:
            continue
        if (a < 0) != (b < 0) and a != 0:
            failures.append(f"the median of {stats.column} changed sign ({b:g} → {a:g})")
        elif a != 0 and not (1 / MEDIAN_FACTOR_LIMIT <= abs(a / b) <= MEDIAN_FACTOR_LIMIT):
            failures.append(f"the median of {stats.column} moved {abs(a / b):.3g}× ({b:g} → {a:g})")
    for column in d.all_null_after:
        failures.append(f"{column} is NULL in every row of the fix's output")
    return failures
