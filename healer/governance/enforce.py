"""Where the policy acts on a heal: the few questions ``healer.heal`` asks, each answered with a reason.

    admit(...)            before any work (no clone): mode off, a paused pipeline, the daily PR budget
    allowed_fixers(...)   the rule fixers policy lets run, and why the others may not
    gate_model(...)       the model fixer, or an off switch saying which rule or budget stopped it
    patch_refusal(...)    a candidate touching a file policy keeps it from
    draft_reason(...)     mode draft: every PR a draft, saying where that is written
    auto_merge(...)       mode auto_merge: merge a named fixer's ready PR with an identical data diff

Every reason that comes from policy starts with ``policy:`` (or is the circuit breaker's own
line) and names the rule and the place it is written (``file:key``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from healer.governance import breaker, budgets
from healer.governance.effective import Effective, effective
from healer.ledger import Ledger
from healer.policy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    """Whether a heal may start, under which rules."""

    status: Literal["admitted", "declined"]
    reason: str
    rules: Effective


def admit(ledger: Ledger, repo: str, pipeline: str, policy: Policy) -> Admission:
    """The effective policy of ``pipeline`` and whether its heal may go on. Raises PolicyError for a bad policy."""
    rules = effective(repo, pipeline, policy)
    if rules.mode.value == "off":
        return Admission("declined", f"policy: mode off set by {rules.mode.where}: Healer does not heal "
                                     f"'{pipeline}'", rules)
    pause = breaker.evaluate(ledger, pipeline, threshold=rules.breaker_after.value)
    if pause is not None:
        return Admission("declined", pause.one_line(), rules)
    refusal = budgets.pr_refusal(ledger, rules, pipeline)
    if refusal is not None:
        return Admission("declined", refusal, rules)
    return Admission("admitted", "", rules)


def _fixer_refusal(ledger: Ledger, rules: Effective, pipeline: str, name: str) -> str | None:
    refusal = rules.fixer_refusal(name)
    if refusal is None:
        pause = breaker.paused(ledger, pipeline, name)
        refusal = pause.one_line() if pause is not None and pause.fixer is not None else None
    return refusal


def allowed_fixers(ledger: Ledger, rules: Effective | None, pipeline: str, fixers: list) -> tuple[list, list[str]]:
    """The fixers that may run, and one note per fixer that may not (its rule and where it is written)."""
    if rules is None:
        return list(fixers), []
    kept, notes = [], []
    for fixer in fixers:
        refusal = _fixer_refusal(ledger, rules, pipeline, fixer.name)
        if refusal is None:
            kept.append(fixer)
        else:
            notes.append(refusal)
    return kept, notes


class ModelOff:
    """The model fixer, switched off by policy: looks like an LLMFixer that is not enabled, saying why."""

    enabled = False

    def __init__(self, reason: str):
        self.reason = reason

    def off_reason(self) -> str:
        return self.reason


def gate_model(llm, ledger: Ledger, rules: Effective | None, pipeline: str, repo: str):
    """``llm`` when policy lets the model be asked for this heal, else a ModelOff naming the rule or budget."""
    if rules is None or not llm.enabled:
        return llm
    config = getattr(llm, "config", None)
    name = f"llm:{config.model}" if config is not None and getattr(config, "model", None) else "llm"
    refusal = _fixer_refusal(ledger, rules, pipeline, name) or budgets.model_refusal(ledger, rules, repo)
    if refusal is not None:
        log.info("model fixer off for %s: %s", pipeline, refusal)
        return ModelOff(refusal)
    return llm


def patch_refusal(rules: Effective | None, patch) -> str | None:
    """Why a candidate may not be tried: the first file it edits that policy keeps fixes away from."""
    if rules is None:
        return None
    for path in patch.files:
        refusal = rules.file_refusal(path)
        if refusal is not None:
            return refusal
    return None


def draft_reason(rules: Effective | None) -> str | None:
    """Why every PR of this heal is a draft by policy (mode draft), or None."""
    if rules is not None and rules.mode.value == "draft":
        return f"policy: mode draft set by {rules.mode.where}: every pull request is a draft"
    return None


def auto_merge_refusal(rules: Effective, fixer: str, *, ready: bool, identical: bool, draft: bool,
                       storm: bool) -> str | None:
    """Why mode auto_merge does not merge this PR, or None when it does."""
    why = rules.may_auto_merge(fixer)
    if why is not None:
        return why
    if storm:
        return "a PR for several pipelines is merged by a person"
    if draft:
        return "the PR is a draft"
    if not ready:
        return "Healer's verdict is not ready"
    if not identical:
        return "the data diff against the last good output is not identical"
    return None


def auto_merge(rules: Effective | None, forge, pr_id: int, fixer: str, verdict, *, draft: bool, storm: bool) -> str:
    """Under mode auto_merge, merge the PR through the forge when every condition holds. Returns what happened,
    for the outcome's reason ("" when the mode is not auto_merge); a merge the forge refuses leaves the PR open."""
    from healer.errors import ForgeError

    if rules is None or rules.mode.value != "auto_merge":
        return ""
    readiness = getattr(verdict, "readiness", None)
    shadow = getattr(verdict, "shadow", None)
    diff = getattr(shadow, "diff", None)
    why = auto_merge_refusal(rules, fixer, ready=bool(readiness is not None and readiness.ready),
                             identical=bool(diff is not None and diff.is_identical), draft=draft, storm=storm)
    if why is None and not getattr(forge, "SUPPORTS_MERGE", False):
        why = f"the {forge.name} forge cannot merge"
    if why is not None:
        return f"not auto-merged: {why}"
    try:
        forge.merge(pr_id)
    except ForgeError as exc:
        log.warning("auto-merge of PR #%s failed: %s", pr_id, exc)
        return f"auto-merge failed, the PR stays open: {exc}"
    allowed = ", ".join(w.where for w in rules.auto_merge_fixers)
    return f"auto-merged by policy (mode auto_merge set by {rules.mode.where}; fixer named in {allowed})"
