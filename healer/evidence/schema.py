"""Schema drift: what changed in each input since the last good run, and likely renames."""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field

from healer.runner.profile import schema_columns

NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double"}
TEMPORAL = {"date", "timestamp", "timestamp_ntz"}


@dataclass(frozen=True)
class RenameCandidate:
    """A dropped column that probably lives on under a new name."""

    input: str
    old: str
    new: str
    score: float
    name_score: float
    type_score: float
    profile_score: float


@dataclass
class InputDiff:
    """How one input's schema moved between the last good run and now."""

    input: str
    gone: bool = False  # the input itself is missing now
    added: dict[str, str] = field(default_factory=dict)  # column -> type
    dropped: dict[str, str] = field(default_factory=dict)
    retyped: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (old, new)
    renames: list[RenameCandidate] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.gone or bool(self.added or self.dropped or self.retyped)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(input, column, change, detail) rows for a table."""
        out = []
        if self.gone:
            out.append((self.input, "*", "input missing", ""))
        for col, typ in self.dropped.items():
            out.append((self.input, col, "dropped", typ))
        for col, typ in self.added.items():
            out.append((self.input, col, "added", typ))
        for col, (old, new) in self.retyped.items():
            out.append((self.input, col, "retyped", f"{old} -> {new}"))
        for r in self.renames:
            out.append((self.input, r.old, "renamed?", f"-> {r.new} (score {r.score:.2f})"))
        return out

    def to_json(self) -> dict:
        data = asdict(self)
        data["retyped"] = {k: list(v) for k, v in self.retyped.items()}
        return data


def diff_inputs(old_schemas: dict, new_schemas: dict, old_profiles: dict | None = None,
                new_profiles: dict | None = None) -> list[InputDiff]:
    """Compare the last good run's input schemas with the inputs now (Spark schema JSON)."""
    old_profiles, new_profiles = old_profiles or {}, new_profiles or {}
    diffs = []
    for name in sorted(set(old_schemas) | set(new_schemas)):
        d = InputDiff(input=name)
        if name not in new_schemas or new_schemas[name] is None:
            d.gone = name in old_schemas
            diffs.append(d)
            continue
        if name not in old_schemas:
            diffs.append(d)  # a new input: nothing to compare with
            continue
        old, new = schema_columns(old_schemas[name]), schema_columns(new_schemas[name])
        # Columns are matched case-insensitively, as Spark resolves them.
        old_l, new_l = {k.lower(): k for k in old}, {k.lower(): k for k in new}
        for low, col in old_l.items():
            if low not in new_l:
                d.dropped[col] = old[col]
            elif old[col] != new[new_l[low]]:
                d.retyped[col] = (old[col], new[new_l[low]])
        for low, col in new_l.items():
            if low not in old_l:
                d.added[col] = new[col]
        d.renames = rename_candidates(name, d.dropped, d.added, old_profiles.get(name), new_profiles.get(name))
        diffs.append(d)
    return diffs


def words(name: str) -> list[str]:
    """Name split into lower-case words: camelCase, snake_case, kebab and digits."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def name_similarity(a: str, b: str) -> float:
    """0..1: same words score 1; a dropped or added prefix/suffix word scores high."""
    wa, wb = words(a), words(b)
    if wa == wb:
        return 1.0
    ratio = difflib.SequenceMatcher(None, "_".join(wa), "_".join(wb)).ratio()
    sa, sb = set(wa), set(wb)
    overlap = len(sa & sb) / max(len(sa | sb), 1)
    contained = 0.85 if (sa and sb and (sa <= sb or sb <= sa)) else 0.0
    return max(ratio, overlap, contained)


def type_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if a in NUMERIC and b in NUMERIC or a.startswith("decimal") and b in NUMERIC | {"decimal"}:
        return 0.7
    if a in TEMPORAL and b in TEMPORAL:
        return 0.7
    if "string" in (a, b):
        return 0.3
    return 0.0


def profile_similarity(old: dict | None, new: dict | None) -> float:
    """0..1 from null fraction, distinct counts and value ranges; 0.5 when unknown."""
    if not old or not new:
        return 0.5
    scores = [1 - min(abs(old.get("null_fraction", 0) - new.get("null_fraction", 0)) * 2, 1)]
    if old.get("distinct") and new.get("distinct"):
        lo, hi = sorted([old["distinct"], new["distinct"]])
        scores.append(lo / hi)
    if old.get("min") is not None and new.get("min") is not None:
        scores.append(1.0 if (old["min"], old["max"]) == (new["min"], new["max"]) else
                      0.7 if _overlaps(old, new) else 0.2)
    return sum(scores) / len(scores)


def _overlaps(a: dict, b: dict) -> bool:
    try:
        return not (a["max"] < b["min"] or b["max"] < a["min"])
    except TypeError:
        return False


def rename_candidates(name: str, dropped: dict, added: dict, old_profile: dict | None,
                      new_profile: dict | None, threshold: float = 0.55) -> list[RenameCandidate]:
    """Score every dropped x added pair; keep the plausible ones, best first.

    Score = 0.5 name + 0.25 type + 0.25 value profile. When a whole table was renamed
    (same count dropped and added), the assignment is one-to-one, greedy by score.
    """
    old_cols = (old_profile or {}).get("columns", {})
    new_cols = (new_profile or {}).get("columns", {})
    pairs = []
    for old, old_type in dropped.items():
        for new, new_type in added.items():
            n = name_similarity(old, new)
            t = type_similarity(old_type, new_type)
            p = profile_similarity(old_cols.get(old), new_cols.get(new))
            score = 0.5 * n + 0.25 * t + 0.25 * p
            if score >= threshold and t > 0:
                pairs.append(RenameCandidate(name, old, new, round(score, 3), round(n, 3), t, round(p, 3)))
    pairs.sort(key=lambda c: -c.score)
    chosen, used_old, used_new = [], set(), set()
    for c in pairs:
        if c.old not in used_old and c.new not in used_new:
            chosen.append(c)
            used_old.add(c.old)
            used_new.add(c.new)
    return chosen
