"""Policy files: the ``healing:`` blocks of the three levels, read and validated, each value with where it is written.

    organisation   the file HEALER_POLICY_FILE names      healing: {...}
    repo           healer.yml at the repo's root          healing: {...}
    pipeline       healer.yml                             pipelines.<name>.healing: {...}

Every level has the same keys (``KEYS``); unknown keys, wrong types and bad values are
errors naming the file and the key, one line each::

    healer.yml:pipelines.revenue.healing.fixers.alow: unknown key (allowed: allow, deny)

A value is a :class:`Written`: the value and its place, ``file:key``, which every decline
caused by policy quotes. Merging the levels is ``healer.governance.effective``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from healer.errors import PolicyError
from healer.manifest import MANIFEST_NAME, read_yaml

LevelName = Literal["org", "repo", "pipeline"]
Mode = Literal["off", "draft", "propose", "auto_merge"]
MODES: tuple[Mode, ...] = ("off", "draft", "propose", "auto_merge")  # loosest last


@dataclass(frozen=True)
class Written:
    """One value as a level writes it, and where: ``file:key`` (e.g. ``healer.yml:healing.mode``)."""

    value: Any
    where: str


@dataclass(frozen=True)
class Level:
    """One level's ``healing:`` block: its values by key (``fixers.deny``), each with its place."""

    name: LevelName
    file: str  # as shown in messages: the org file's path, or "healer.yml"
    values: dict[str, Written]

    def get(self, key: str) -> Written | None:
        return self.values.get(key)


def _names(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise ValueError("expected a list of names (or one name)")
    return tuple(v.strip() for v in items)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number >= 0")
    return value


def _positive_count(value: Any) -> int:
    if _count(value) < 1:
        raise ValueError("expected a whole number >= 1")
    return value


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError("expected a number >= 0")
    return float(value)


def _seconds(value: Any) -> float:
    if _amount(value) <= 0:
        raise ValueError("expected a number of seconds > 0")
    return float(value)


def _mode(value: Any) -> Mode:
    if value is False:
        return "off"  # YAML 1.1 reads an unquoted `off` as false
    if not isinstance(value, str) or value not in MODES:
        raise ValueError(f"expected one of: {', '.join(MODES)}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


@dataclass(frozen=True)
class Key:
    """One policy key: how it is read, how levels combine it, what it means (for ``policy show``)."""

    parse: Callable[[Any], Any]
    merge: Literal["order", "min", "intersect", "union", "only_false"]
    meaning: str
    levels: tuple[LevelName, ...] = ("org", "repo", "pipeline")


KEYS: dict[str, Key] = {
    "mode": Key(_mode, "order", "off | draft (every PR a draft) | propose | auto_merge (named fixers, ready and "
                               "identical data only)"),
    "fixers.allow": Key(_names, "intersect", "fixers that may run (globs; 'llm' is the model, 'rule' every rule)"),
    "fixers.deny": Key(_names, "union", "fixers that may not run"),
    "files.allow": Key(_names, "intersect", "repo files a fix may touch (globs; '*' crosses '/')"),
    "files.deny": Key(_names, "union", "repo files a fix may not touch"),
    "budgets.prs_per_pipeline_per_day": Key(_count, "min", "pull requests opened per pipeline per UTC day"),
    "budgets.model_tokens_per_day": Key(_count, "min", "model tokens per UTC day (org file: org-wide; healer.yml: "
                                                      "this repo)", ("org", "repo")),
    "budgets.model_cost_usd_per_day": Key(_amount, "min", "model cost in USD per UTC day (org-wide / this repo)",
                                          ("org", "repo")),
    "budgets.sandbox_seconds": Key(_seconds, "min", "one candidate's sandbox run (HEALER_SANDBOX_SECONDS)"),
    "budgets.shadow_seconds": Key(_seconds, "min", "one candidate's shadow run (HEALER_MAX_SHADOW_SECONDS)"),
    "pull_requests.reviewers": Key(_names, "union", "reviewers requested on every PR"),
    "pull_requests.labels": Key(_names, "union", "labels put on every PR"),
    "pull_requests.assignees": Key(_names, "union", "assignees of every PR"),
    "breaker.after": Key(_positive_count, "min", "closed-without-merge or reverted Healer PRs that pause a "
                                                 "pipeline (or a fixer, on every pipeline)"),
    "auto_merge.fixers": Key(_names, "intersect", "fixers whose ready, identical-data PRs mode auto_merge merges"),
    "auto_merge.model": Key(_flag, "only_false", "model fixes may be auto-merged (only the org file may allow it)"),
}
_SECTIONS = sorted({k.split(".")[0] for k in KEYS})


def read_block(block: Any, level: LevelName, file: str, prefix: str, errors: list[str]) -> Level:
    """A ``healing:`` mapping as a Level; every problem is appended to ``errors`` as one line."""
    values: dict[str, Written] = {}
    if block is None:
        return Level(level, file, values)
    if not isinstance(block, dict):
        errors.append(f"{file}:{prefix}: expected a mapping of policy keys (allowed: {', '.join(_SECTIONS)})")
        return Level(level, file, values)
    for section, body in block.items():
        section = str(section)
        if section in KEYS:
            _read_key(section, body, level, file, prefix, values, errors)
            continue
        children = sorted(k.split(".", 1)[1] for k in KEYS if k.startswith(section + "."))
        if not children:
            errors.append(f"{file}:{prefix}.{section}: unknown key (allowed: {', '.join(_SECTIONS)})")
        elif not isinstance(body, dict):
            errors.append(f"{file}:{prefix}.{section}: expected a mapping with {', '.join(children)}")
        else:
            for child, value in body.items():
                key = f"{section}.{child}"
                if key not in KEYS:
                    errors.append(f"{file}:{prefix}.{key}: unknown key (allowed: {', '.join(children)})")
                else:
                    _read_key(key, value, level, file, prefix, values, errors)
    return Level(level, file, values)


def _read_key(key: str, raw: Any, level: LevelName, file: str, prefix: str, values: dict, errors: list[str]) -> None:
    where = f"{file}:{prefix}.{key}"
    spec = KEYS[key]
    if level not in spec.levels:
        errors.append(f"{where}: not a {level}-level key (set it in: {', '.join(spec.levels)})")
        return
    try:
        values[key] = Written(spec.parse(raw), where)
    except ValueError as exc:
        errors.append(f"{where}: {raw!r}: {exc}")


@dataclass(frozen=True)
class Sources:
    """The levels of one repo as written: the org file's, the repo's and each pipeline's."""

    org: Level | None
    repo: Level
    pipelines: dict[str, Level]
    errors: tuple[str, ...]  # every problem found reading them, one line each

    def levels(self, pipeline: str | None) -> list[Level]:
        """Highest first: org, repo, then the pipeline's (when it has a block)."""
        found = [lvl for lvl in (self.org, self.repo) if lvl is not None]
        if pipeline is not None and pipeline in self.pipelines:
            found.append(self.pipelines[pipeline])
        return found


def read_org(path: str | Path | None, errors: list[str]) -> Level | None:
    """The organisation file (``HEALER_POLICY_FILE``), or None when none is set."""
    if not path:
        return None
    path = Path(path).expanduser()
    if not path.is_file():
        errors.append(f"{path}: the policy file (HEALER_POLICY_FILE) does not exist")
        return None
    try:
        raw = read_yaml(path, PolicyError)
    except PolicyError as exc:
        errors.append(str(exc))
        return None
    if raw is None:
        return Level("org", str(path), {})
    if not isinstance(raw, dict):
        errors.append(f"{path}: expected a mapping with a 'healing' key")
        return None
    for key in raw:
        if key != "healing":
            errors.append(f"{path}:{key}: unknown key (allowed: healing)")
    return read_block(raw.get("healing"), "org", str(path), "healing", errors)


def read_repo(repo: str | Path, errors: list[str]) -> tuple[Level, dict[str, Level]]:
    """healer.yml's ``healing:`` block and each pipeline's. The rest of healer.yml is the manifest's to check."""
    path = Path(repo) / MANIFEST_NAME if Path(repo).is_dir() else Path(repo)
    empty = Level("repo", MANIFEST_NAME, {})
    if not path.is_file():
        errors.append(f"{path}: no {MANIFEST_NAME} found")
        return empty, {}
    try:
        raw = read_yaml(path, PolicyError)
    except PolicyError as exc:
        errors.append(str(exc))
        return empty, {}
    if not isinstance(raw, dict):
        return empty, {}  # the manifest's own check says what is wrong with it
    repo_level = read_block(raw.get("healing"), "repo", MANIFEST_NAME, "healing", errors)
    pipelines = {}
    for name, body in (raw.get("pipelines") or {}).items() if isinstance(raw.get("pipelines"), dict) else ():
        if isinstance(body, dict) and "healing" in body:
            pipelines[str(name)] = read_block(body["healing"], "pipeline", MANIFEST_NAME,
                                              f"pipelines.{name}.healing", errors)
    return repo_level, pipelines


def read_sources(repo: str | Path, org_file: str | Path | None) -> Sources:
    errors: list[str] = []
    org = read_org(org_file, errors)
    repo_level, pipelines = read_repo(repo, errors)
    return Sources(org, repo_level, pipelines, tuple(errors))
