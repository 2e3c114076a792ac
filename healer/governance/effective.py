"""The effective policy of one pipeline: the three levels merged, a lower level only tightening.

    mode          the tightest wins (off < draft < propose < auto_merge); unset means propose, and
                  only the org file may allow auto_merge
    allow lists   intersect: a name must match every level's list
    deny lists    union: denied at any level is denied
    budgets       the smallest wins; the settings (HEALER_SANDBOX_SECONDS, HEALER_MAX_SHADOW_SECONDS)
                  are the ceiling of the sandbox and shadow seconds
    PR people     union (reviewers, labels, assignees)

A lower level that tries to loosen a higher one (a mode above it, a fixer or file its allow list
lacks or its deny list names, a bigger budget, the model in auto_merge) is an error naming both
places, not silently clamped: ``healer policy check`` reports it, and a heal of that repo ends
in an ``error`` that says it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path

from healer.errors import PolicyError
from healer.governance.policy_file import KEYS, MODES, Level, Mode, Sources, Written, read_sources
from healer.policy import Policy
from healer.settings import Settings

DEFAULT_MODE = Written("propose", "default")
DEFAULT_BREAKER_AFTER = Written(3, "default")
DEFAULT_MODEL_AUTO_MERGE = Written(False, "default")


def org_file() -> str | None:
    """The organisation's policy file (``HEALER_POLICY_FILE``), or None."""
    path = Settings.from_env().policy_file
    return str(path) if path is not None else None


def matches(name: str, pattern: str) -> bool:
    """A fixer or file name against a policy glob; ``llm`` also names every model (``llm:<model>``), ``rule``
    every rule (``rule:<name>``)."""
    return fnmatchcase(name, pattern) or name.startswith(pattern + ":")


@dataclass(frozen=True)
class Effective:
    """What a heal of ``pipeline`` may do, each value with the place (``file:key``) that set it."""

    pipeline: str | None
    mode: Written
    fixers_allow: tuple[Written, ...]  # each a tuple of globs; a fixer must match every one
    fixers_deny: tuple[Written, ...]
    files_allow: tuple[Written, ...]
    files_deny: tuple[Written, ...]
    prs_per_pipeline_per_day: Written | None
    model_tokens_per_day_org: Written | None
    model_tokens_per_day_repo: Written | None
    model_cost_usd_per_day_org: Written | None
    model_cost_usd_per_day_repo: Written | None
    sandbox_seconds: Written
    shadow_seconds: Written
    reviewers: tuple[Written, ...]
    labels: tuple[Written, ...]
    assignees: tuple[Written, ...]
    breaker_after: Written
    auto_merge_fixers: tuple[Written, ...]
    auto_merge_model: Written

    @property
    def mode_value(self) -> Mode:
        return self.mode.value

    def fixer_refusal(self, fixer: str) -> str | None:
        """Why policy stops ``fixer`` from running, naming the rule and where it is written; None when it may."""
        return _refusal("fixer", fixer, self.fixers_allow, self.fixers_deny)

    def file_refusal(self, path: str) -> str | None:
        """Why policy stops a fix from touching the repo file ``path``; None when it may."""
        return _refusal("file", path, self.files_allow, self.files_deny)

    def may_auto_merge(self, fixer: str) -> str | None:
        """None when ``fixer``'s ready, identical-data PR may be merged; else why not (with where)."""
        if self.mode.value != "auto_merge":
            return f"mode is {self.mode.value} ({self.mode.where})"
        if fixer.startswith("llm") and not self.auto_merge_model.value:
            return f"model fixes are never auto-merged unless the org file allows it ({self.auto_merge_model.where})"
        if not self.auto_merge_fixers:
            return "no fixer is named under auto_merge.fixers"
        for allow in self.auto_merge_fixers:
            if not any(matches(fixer, p) for p in allow.value):
                return f"fixer \"{fixer}\" is not in {allow.where}"
        return None

    def people(self, key: str) -> tuple[str, ...]:
        """Reviewers, labels or assignees of every level, in order, without repeats."""
        lists = {"reviewers": self.reviewers, "labels": self.labels, "assignees": self.assignees}[key]
        return tuple(dict.fromkeys(name for w in lists for name in w.value))

    def tighten(self, policy: Policy) -> Policy:
        """The thresholds object the sandbox reads, with this policy's seconds (never looser than it was)."""
        return replace(policy, sandbox_seconds=min(policy.sandbox_seconds, self.sandbox_seconds.value),
                       max_shadow_seconds=min(policy.max_shadow_seconds, self.shadow_seconds.value))

    def rows(self) -> list[tuple[str, str, str]]:
        """(key, value, where) for ``healer policy show``: every key, set or not."""
        out: list[tuple[str, str, str]] = []

        def one(key: str, w: Written | None, unit: str = "") -> None:
            out.append((key, "unlimited" if w is None else f"{w.value}{unit}", "-" if w is None else w.where))

        def lists(key: str, ws: tuple[Written, ...], empty: str) -> None:
            if not ws:
                out.append((key, empty, "-"))
            for w in ws:
                out.append((key, ", ".join(w.value), w.where))

        one("mode", self.mode)
        lists("fixers.allow", self.fixers_allow, "every fixer")
        lists("fixers.deny", self.fixers_deny, "none")
        lists("files.allow", self.files_allow, "every file")
        lists("files.deny", self.files_deny, "none")
        one("budgets.prs_per_pipeline_per_day", self.prs_per_pipeline_per_day)
        one("budgets.model_tokens_per_day (org-wide)", self.model_tokens_per_day_org)
        one("budgets.model_tokens_per_day (this repo)", self.model_tokens_per_day_repo)
        one("budgets.model_cost_usd_per_day (org-wide)", self.model_cost_usd_per_day_org)
        one("budgets.model_cost_usd_per_day (this repo)", self.model_cost_usd_per_day_repo)
        one("budgets.sandbox_seconds", self.sandbox_seconds, " s")
        one("budgets.shadow_seconds", self.shadow_seconds, " s")
        lists("pull_requests.reviewers", self.reviewers, "none")
        lists("pull_requests.labels", self.labels, "none")
        lists("pull_requests.assignees", self.assignees, "none")
        one("breaker.after", self.breaker_after, " refused PRs")
        lists("auto_merge.fixers", self.auto_merge_fixers, "none")
        one("auto_merge.model", self.auto_merge_model)
        return out

    def to_json(self) -> dict:
        return {"pipeline": self.pipeline,
                "settings": [{"key": k, "value": v, "where": w} for k, v, w in self.rows()]}


def _refusal(kind: str, name: str, allows: tuple[Written, ...], denies: tuple[Written, ...]) -> str | None:
    for deny in denies:
        hit = next((p for p in deny.value if matches(name, p)), None)
        if hit is not None:
            return f"policy: {kind} \"{name}\" denied by {deny.where}" + (f" ({hit!r})" if hit != name else "")
    for allow in allows:
        if not any(matches(name, p) for p in allow.value):
            return f"policy: {kind} \"{name}\" not allowed by {allow.where} (allows: {', '.join(allow.value)})"
    return None


def resolve(sources: Sources, pipeline: str | None, policy: Policy) -> tuple[Effective, list[str]]:
    """Merge the levels of ``pipeline`` (the repo's alone when None); returns it and every loosening found."""
    m = _Merge(sources, sources.levels(pipeline), policy)
    effective = Effective(
        pipeline=pipeline,
        mode=m.scalar("mode", DEFAULT_MODE),
        fixers_allow=m.listed("fixers.allow", "fixers.deny"),
        fixers_deny=m.listed("fixers.deny"),
        files_allow=m.listed("files.allow", "files.deny"),
        files_deny=m.listed("files.deny"),
        prs_per_pipeline_per_day=m.scalar("budgets.prs_per_pipeline_per_day", None),
        model_tokens_per_day_org=m.budget("budgets.model_tokens_per_day", "org"),
        model_tokens_per_day_repo=m.budget("budgets.model_tokens_per_day", "repo"),
        model_cost_usd_per_day_org=m.budget("budgets.model_cost_usd_per_day", "org"),
        model_cost_usd_per_day_repo=m.budget("budgets.model_cost_usd_per_day", "repo"),
        sandbox_seconds=m.capped("budgets.sandbox_seconds"),
        shadow_seconds=m.capped("budgets.shadow_seconds"),
        reviewers=m.listed("pull_requests.reviewers"),
        labels=m.listed("pull_requests.labels"),
        assignees=m.listed("pull_requests.assignees"),
        breaker_after=m.scalar("breaker.after", DEFAULT_BREAKER_AFTER),
        auto_merge_fixers=m.listed("auto_merge.fixers"),
        auto_merge_model=m.scalar("auto_merge.model", DEFAULT_MODEL_AUTO_MERGE),
    )
    return effective, m.problems


class _Merge:
    """One pipeline's levels merged key by key; every loosening found goes to ``problems``."""

    def __init__(self, sources: Sources, levels: list[Level], policy: Policy):
        self.sources, self.levels = sources, levels
        self.problems: list[str] = []
        # the environment's time limits are ceilings no level may raise
        self.seconds = {"budgets.sandbox_seconds": Written(policy.sandbox_seconds, "HEALER_SANDBOX_SECONDS"),
                        "budgets.shadow_seconds": Written(policy.max_shadow_seconds, "HEALER_MAX_SHADOW_SECONDS")}

    def _loosens(self, w: Written, current: Written) -> None:
        self.problems.append(f"{w.where}: {w.value!r} loosens {current.value!r} set by {current.where} "
                             f"(a lower level may only tighten)")

    def scalar(self, key: str, default: Written | None) -> Written | None:
        kind = KEYS[key].merge
        current = None
        for level in self.levels:
            w = level.get(key)
            if current is None and default is not None and level.name != "org":
                current = default  # the default is the ceiling below the org file
            if w is None:
                continue
            if current is not None and _looser(kind, w.value, current.value):
                self._loosens(w, current)
                continue
            current = w
        return current if current is not None else default

    def listed(self, key: str, deny_key: str | None = None) -> tuple[Written, ...]:
        found: list[Written] = []
        for level in self.levels:
            w = level.get(key)
            if w is None:
                continue
            if KEYS[key].merge == "intersect":
                for pattern in w.value:
                    self._check_allowed(w, pattern, found, deny_key, level)
            found.append(w)
        return tuple(found)

    def _check_allowed(self, w: Written, pattern: str, above: list[Written], deny_key: str | None,
                       level: Level) -> None:
        """An allow-list entry must be allowed by every level above and denied by none."""
        outside = next((a for a in above if not any(pattern == p or matches(pattern, p) for p in a.value)), None)
        denied = next((d for d in _all(self.levels, deny_key, above=level)
                       if any(matches(pattern, p) for p in d.value)), None) if deny_key else None
        if outside is not None:
            self.problems.append(f"{w.where}: allows {pattern!r}, which {outside.where} does not "
                                 f"(allows: {', '.join(outside.value)}; a lower level may only tighten)")
        elif denied is not None:
            self.problems.append(f"{w.where}: allows {pattern!r}, which {denied.where} denies "
                                 f"(a lower level may only tighten)")

    def budget(self, key: str, level_name: str) -> Written | None:
        """A daily model budget of one scope; the repo's may not exceed the org's."""
        level = next((lvl for lvl in self.levels if lvl.name == level_name), None)
        w = level.get(key) if level is not None else None
        org = self.sources.org.get(key) if self.sources.org is not None else None
        if level_name == "repo" and w is not None and org is not None and w.value > org.value:
            self._loosens(w, org)
        return w

    def capped(self, key: str) -> Written:
        written = self.scalar(key, None)
        base = self.seconds[key]
        return written if written is not None and written.value < base.value else base


def _all(levels: list[Level], key: str, above: Level) -> list[Written]:
    """``key`` as written by the levels above ``above``."""
    out = []
    for level in levels:
        if level is above:
            break
        if level.get(key) is not None:
            out.append(level.get(key))
    return out


def _looser(kind: str, value, than) -> bool:
    if kind == "order":
        return MODES.index(value) > MODES.index(than)
    if kind == "only_false":
        return bool(value) and not than
    return value > than  # min: a bigger budget is looser


def check(repo: str | Path, policy: Policy | None = None, org: str | Path | None = None) -> list[str]:
    """Every problem of the org file and the repo's healer.yml: one line each (file:key: why). Empty when valid."""
    policy = policy or Policy.from_env()
    sources = read_sources(repo, org if org is not None else org_file())
    problems = list(sources.errors)
    for pipeline in [None, *sources.pipelines]:
        for problem in resolve(sources, pipeline, policy)[1]:
            if problem not in problems:
                problems.append(problem)
    return problems


def effective(repo: str | Path, pipeline: str | None = None, policy: Policy | None = None,
              org: str | Path | None = None) -> Effective:
    """The effective policy of ``pipeline`` in ``repo``; a PolicyError (the first problem, one line) when a
    file is invalid or a level loosens one above it."""
    policy = policy or Policy.from_env()
    sources = read_sources(repo, org if org is not None else org_file())
    result, problems = resolve(sources, pipeline, policy)
    # another pipeline's mistake is `policy check`'s to report: it does not stop this pipeline's heal
    others = tuple(f":pipelines.{name}.healing" for name in sources.pipelines if name != pipeline)
    problems = [e for e in sources.errors if not any(o in e for o in others)] + problems
    if problems:
        more = f" (and {len(problems) - 1} more: `healer policy check`)" if len(problems) > 1 else ""
        raise PolicyError(f"policy: {problems[0]}{more}")
    return result
