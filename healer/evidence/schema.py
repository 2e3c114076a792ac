"""Schema drift: what changed in each input since the last good run, and likely renames."""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field, replace

from healer.runner.profile import schema_columns

NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double"}
TEMPORAL = {"date", "timestamp", "timestamp_ntz"}
AMBIGUOUS_MARGIN = 0.05  # two candidates closer than this are a coin toss: no rename


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
    runner_up: str | None = None  # the next best new name for ``old``, when there is one
    margin: float = 1.0  # score - the runner-up's score: small means ambiguous
    why: str = ""  # how the names relate: "same words", "table-wide prefix l_ dropped", ...
    values_decide: bool = False  # its values match the old column's exactly, the runner-up's do not

    @property
    def ambiguous(self) -> bool:
        return self.margin < AMBIGUOUS_MARGIN and not self.values_decide


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
    """Name split into lower-case words: camelCase, PascalCase, snake_case, kebab and digits."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)  # HTTPCode -> HTTP Code
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def word_similarity(a: str, b: str) -> float:
    """1 for the same word, 0.8 for an abbreviation (qty/quantity, cust/customer) or a typo."""
    if a == b:
        return 1.0
    short, long_ = sorted((a, b), key=len)
    if len(short) >= 2 and short[0] == long_[0] and _subsequence(short, long_):
        return 0.8
    if len(short) >= 4 and difflib.SequenceMatcher(None, a, b).ratio() >= 0.8:
        return 0.8
    return 0.0


def _subsequence(short: str, long_: str) -> bool:
    it = iter(long_)
    return all(ch in it for ch in short)


def name_similarity(a: str, b: str) -> float:
    """0..1: same words in any case style score 1; a dropped or added prefix/suffix word
    0.85; otherwise the share of words that match (abbreviations and typos count 0.8).
    Letters alone do not count: unit_price is no closer to net_price than to gross_price."""
    wa, wb = words(a), words(b)
    if wa == wb:
        return 1.0
    if "".join(wa) == "".join(wb):  # unitprice vs unit_price
        return 0.95
    sa, sb = set(wa), set(wb)
    if sa and sb and (sa <= sb or sb <= sa):
        return 0.85
    pairs = sorted(((word_similarity(x, y), i, j) for i, x in enumerate(wa) for j, y in enumerate(wb)), reverse=True)
    used_a, used_b, total = set(), set(), 0.0
    for score, i, j in pairs:
        if score and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            total += score
    return round(total / max(len(wa), len(wb), 1), 3)


def affix_renames(dropped: list[str], added: list[str]) -> dict[tuple[str, str], str]:
    """Pairs explained by one prefix or suffix word dropped or added across the table.

    ``l_extendedprice -> extendedprice`` on its own is a guess; the same ``l_`` gone from
    every column of the table is a pattern. Returns {(old, new): "prefix 'l' dropped"} for
    the affix that explains the most pairs, when it explains at least two.
    """
    best: dict[tuple[str, str], str] = {}
    by_words_added = {tuple(words(n)): n for n in added}
    by_words_dropped = {tuple(words(n)): n for n in dropped}
    options = []
    for side, names, others, verb in ((0, dropped, by_words_added, "dropped"), (1, added, by_words_dropped, "added")):
        for where, cut in (("prefix", lambda w: (w[0], tuple(w[1:]))), ("suffix", lambda w: (w[-1], tuple(w[:-1])))):
            groups: dict[str, dict[tuple[str, str], str]] = {}
            for n in names:
                w = words(n)
                if len(w) < 2:
                    continue
                affix, rest = cut(w)
                if rest in others:
                    pair = (n, others[rest]) if side == 0 else (others[rest], n)
                    groups.setdefault(affix, {})[pair] = f"table-wide {where} '{affix}' {verb}"
            options += list(groups.values())
    if options:
        best = max(options, key=len)
    return best if len(best) >= 2 else {}


def type_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if a in NUMERIC and b in NUMERIC or a.startswith("decimal") and b in NUMERIC | {"decimal"}:
        return 0.7
    if a.startswith("decimal") and b.startswith("decimal"):  # DECIMAL(10,2) -> DECIMAL(18,2): a widening
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

    Score = 0.5 name + 0.25 type + 0.25 value profile. Names score 1 when they have the same
    words in another case style (unitPrice, unit_price) or when one prefix/suffix word was
    dropped or added across the whole table. The assignment is one-to-one, greedy by score;
    each kept candidate carries its runner-up and margin, so a coin toss is visible.
    """
    old_cols = (old_profile or {}).get("columns", {})
    new_cols = (new_profile or {}).get("columns", {})
    affixes = affix_renames(list(dropped), list(added))
    pairs = []
    for old, old_type in dropped.items():
        for new, new_type in added.items():
            n = name_similarity(old, new)
            why = "same words" if n == 1.0 else "similar names"
            if (old, new) in affixes:
                n, why = 1.0, affixes[(old, new)]
            t = type_similarity(old_type, new_type)
            p = profile_similarity(old_cols.get(old), new_cols.get(new))
            score = 0.5 * n + 0.25 * t + 0.25 * p
            if score >= threshold and t > 0:
                pairs.append(RenameCandidate(name, old, new, round(score, 3), round(n, 3), t, round(p, 3), why=why))
    pairs.sort(key=lambda c: (-c.score, c.old, c.new))
    chosen, used_old, used_new = [], set(), set()
    for c in pairs:
        if c.old not in used_old and c.new not in used_new:
            rivals = [r for r in pairs if r is not c and (r.old == c.old or r.new == c.new)]
            if rivals:
                rival = max(rivals, key=lambda r: r.score)
                c = replace(c, runner_up=rival.new if rival.old == c.old else rival.old,
                            margin=round(c.score - rival.score, 3),
                            values_decide=c.profile_score == 1.0 and rival.profile_score < 0.9)
            chosen.append(c)
            used_old.add(c.old)
            used_new.add(c.new)
    return chosen


# -- nested fields: a field that moved inside (or into, or out of) a struct column ----------------

@dataclass(frozen=True)
class FieldMove:
    """A leaf field that is gone from one path and present, alone, at another."""

    input: str
    old: tuple[str, ...]  # ("address", "city")
    new: tuple[str, ...]  # ("address", "location", "city")
    type: str
    rivals: tuple[tuple[str, ...], ...] = ()  # other new paths with the same leaf name and type

    @property
    def ambiguous(self) -> bool:
        return bool(self.rivals)


def leaf_paths(schema: dict) -> dict[tuple[str, ...], str]:
    """Every leaf of a Spark schema JSON as a path of field names -> simple type (structs are
    walked into; arrays and maps are leaves)."""
    out: dict[tuple[str, ...], str] = {}

    def walk(fields, prefix):
        for f in fields:
            t = f["type"]
            path = prefix + (f["name"],)
            if isinstance(t, dict) and t.get("type") == "struct":
                walk(t["fields"], path)
            else:
                out[path] = _simple(t)

    walk(schema.get("fields", []), ())
    return out


def _simple(t) -> str:
    if isinstance(t, str):
        return {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}.get(t, t)
    return t.get("type", "complex")


def field_moves(name: str, old_schema: dict, new_schema: dict) -> list[FieldMove]:
    """Leaves gone from their old path that reappear under the same name and type elsewhere,
    where at least one of the two paths is nested (a top-level rename is not a move)."""
    old, new = leaf_paths(old_schema), leaf_paths(new_schema)
    old_l = {tuple(p.lower() for p in k): k for k in old}
    new_l = {tuple(p.lower() for p in k): k for k in new}
    gone = [old_l[k] for k in old_l if k not in new_l]
    fresh = [new_l[k] for k in new_l if k not in old_l]
    moves = []
    for path in gone:
        same = [p for p in fresh if p[-1].lower() == path[-1].lower() and new[p] == old[path]]
        same = [p for p in same if len(p) > 1 or len(path) > 1]
        if same:
            moves.append(FieldMove(name, path, same[0], old[path], tuple(same[1:])))
    return moves
