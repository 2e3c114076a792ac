"""Rule: an input table or path was renamed or moved -> point healer.yml at where it went.

The manifest input points nowhere now. The evidence lists readable places near the old
one with similar names (``orders_v2``, ``sales/orders``, ``sales_v2.orders``) with their
schemas and bounded profiles. A candidate must carry every column the job reads from the
input with the same type, and values that look like the last good run's (a snapshot from
another time does not); it is scored on its name, how much of the old schema it keeps and
how alike its values are. A stale copy (``orders_backup``, ``old/orders``) is never chosen,
nor a pipeline's output folder, and two candidates that score alike are a coin toss: no
patch. The fix edits the one scalar in healer.yml, keeping ``${VARS}``, quoting and layout.

A move under a new naming standard can leave nothing of the old name (``payments`` ->
``billing/settlements``): such a place, found by its columns (``found_by="fingerprint"``),
is taken only when it holds exactly the old columns and its values match the last good
run's closely, and no other place does; it says so as a doubt. A move often widens a few
types too (INT -> BIGINT): the job casts such a column back where it reads it when every
value fits, or keeps the wider type and says so.
"""

from __future__ import annotations

from dataclasses import replace

from healer.evidence.locations import basename
from healer.evidence.probes import widens
from healer.evidence.schema import profile_similarity, words
from healer.fixers import pyedit, sqledit, yamledit
from healer.fixers.base import Declined, FileEdit, Patch, Rebinding
from healer.fixers.rules._common import input_columns
from healer.fixers.rules.retyped_column import cast_back_refs, widen_summary, widened_backs
from healer.manifest import MANIFEST_NAME
from healer.runner.profile import schema_columns

CATEGORIES = {"missing_table"}
STALE = {"backup", "backups", "bak", "bkp", "old", "archive", "archived", "tmp", "temp", "copy", "snapshot",
         "deprecated", "test", "staging", "trash", "deleted", "legacy", "dev", "scratch"}
MIN_SCORE = 0.7
MIN_PROFILE = 0.75  # the values must look like the last good run's: not a stale snapshot
MARGIN = 0.05
FINGERPRINT_PROFILE = 0.9  # a place found by its columns alone must hold values this much alike
FINGERPRINT_CONFIDENCE = 0.75  # and is never as sure as a place that also kept the name


class MovedInput:
    name = "rule:moved_input"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES or evidence.moves is None or not evidence.last_good:
            return []
        patches = []
        for name, candidates in evidence.moves.candidates.items():
            patch = self._patch(evidence, name, candidates)
            if patch:
                patches.append(patch)
        return patches

    def _needed(self, evidence, name, old_cols) -> dict[str, str]:
        """Columns of the input the job reads (all of them when that is not known)."""
        refs = {r.split(".", 1)[1].lower() for r in evidence.lineage.referenced if r.lower().startswith(name.lower() + ".")}
        if evidence.pipeline.kind == "python":
            src = evidence.job_source.lower()
            refs |= {c.lower() for c in old_cols if f'"{c.lower()}"' in src or f"'{c.lower()}'" in src}
        picked = {c: t for c, t in old_cols.items() if c.lower() in refs}
        return picked or dict(old_cols)

    def _score(self, evidence, name, cand, old_cols, needed):
        if cand.schema is None:
            return None
        cols = {c.lower(): t for c, t in schema_columns(cand.schema).items()}
        if any(cols.get(c.lower()) != t and not widens(t, cols.get(c.lower()) or "") for c, t in needed.items()):
            return None  # the job could not read it as it is (a widened type it can: it is cast back)
        kept = sum(1 for c, t in old_cols.items() if cols.get(c.lower()) == t or widens(t, cols.get(c.lower()) or "")
                   ) / max(len(old_cols), 1)
        extra = len(set(cols) - {c.lower() for c in old_cols}) / max(len(cols), 1)
        schema_score = kept * (1 - 0.5 * extra)
        old_profile = (evidence.last_good.input_profiles or {}).get(name, {}).get("columns", {})
        new_profile = {k.lower(): v for k, v in (cand.profile or {}).get("columns", {}).items()}
        known = [c for c in needed if old_profile.get(c) and new_profile.get(c.lower())]
        sims = [profile_similarity(old_profile[c], new_profile[c.lower()]) for c in known]
        profile_score = sum(sims) / len(sims) if sims else 0.5  # nothing to compare: unknown
        # a moved folder keeps its name: the path around it is part of the name
        score = 0.4 * cand.name_score + 0.3 * schema_score + 0.3 * profile_score
        if cand.found_by == "fingerprint":
            # nothing of the name is left: the columns and values are all there is to go on
            if schema_score < 1 or profile_score < FINGERPRINT_PROFILE:
                return None
            score = 0.5 * schema_score + 0.5 * profile_score
        return round(score, 3), schema_score, profile_score

    def _patch(self, evidence, name, candidates) -> Patch | None:
        pipeline = evidence.pipeline
        spec = pipeline.inputs.get(name)
        old_schema = (evidence.last_good.input_schemas or {}).get(name)
        if spec is None or not spec.declared or not old_schema:
            return None
        old_cols = schema_columns(old_schema)
        old_location = spec.path if spec.path is not None else spec.table
        scored = self._ranked(evidence, name, candidates, old_cols, old_location,
                              "path" if spec.path is not None else "table")
        if scored is None:
            return None
        (score, schema_score, profile_score), best = scored[0]
        by_print = best.found_by == "fingerprint"
        key = "path" if spec.path is not None else "table"
        edit = _manifest_edit(pipeline, name, key, old_location, best.location)
        if edit is None:
            return None
        text, after, raw, current = edit
        job_edit, backs = self._cast_back(evidence, name, best, old_cols)
        doubts = []
        if by_print:
            doubts.append(f"{best.location} was found by its columns and values, not its name (name similarity "
                          f"{best.name_score:.2f}): check it is where {name} moved, not a copy of it")
        if schema_score < 1:
            doubts.append(f"{best.location} does not have exactly the columns {name} had at the last good run")
        if profile_score < 0.8:
            doubts.append(f"the values at {best.location} look different from the last good run's "
                          f"(profile similarity {profile_score:.2f})")
        if len(scored) > 1:
            doubts.append(f"also considered: {scored[1][1].location} (score {scored[1][0][0]:.2f})")
        others = [p for p, s in _manifest_users(text, key, current) if p != pipeline.name]
        if others:
            doubts.append(f"{', '.join(sorted(others))} also read{'s' if len(others) == 1 else ''} "
                          f"{current} and will need the same change")
        doubts += [b.doubt for b in backs if b.doubt]
        rebinding = (Rebinding(name, path=best.location, format=spec.format) if key == "path"
                     else Rebinding(name, table=best.location))
        confidence = round(min(0.95, 0.5 + 0.5 * score), 3) if len(scored) == 1 else round(min(0.9, score), 3)
        if by_print:
            confidence = min(confidence, FINGERPRINT_CONFIDENCE)
        if any(not b.cast for b in backs):
            confidence = round(confidence * 0.9, 3)
        widened = any(cast_type != t for cast_type, t in
                      ((schema_columns(best.schema).get(c), t) for c, t in old_cols.items()) if cast_type)
        return Patch(
            fixer=self.name,
            title=f"input {name} moved from {old_location} to {best.location}",
            rationale=(f"{old_location} no longer exists. {best.location} "
                       + ("has a name unlike the old one but " if by_print else "has a similar name and ")
                       + ("every column" if schema_score == 1 else "every column the job reads")
                       + f" {name} had at the last good run with the same "
                       + ("or wider " if widened else "")
                       + f"types; its values look alike (profile similarity {profile_score:.2f}; score {score:.2f}). "
                       f"healer.yml now reads {name} from {raw}."
                       + (" " + widen_summary(backs) if backs else "")),
            confidence=confidence,
            edits=[FileEdit(MANIFEST_NAME, text, after)] + ([job_edit] if job_edit else []),
            doubts=doubts,
            rebinding=rebinding,
            details={"manifest_value": raw, "found_by": best.found_by,
                     "widened": {b.now: {"type": b.old_type, "now": b.new_type, "cast_back": b.cast} for b in backs}},
        )

    def _ranked(self, evidence, name, candidates, old_cols, old_location, kind) -> list | None:
        """The candidates that fit, best first, as ((score, schema, profile), candidate); None
        when none fits well enough or two fit alike (a person must say which)."""
        needed = self._needed(evidence, name, old_cols)
        old_words = set(words(basename(old_location, kind)))
        scored = []
        for cand in candidates:
            _, tail = _tails(old_location, cand.location, "/" if cand.kind == "path" else ".")
            cand_words = {w for part in tail for w in words(part)}
            if (cand_words - old_words) & STALE:
                continue  # a copy left behind, not where the data went
            s = self._score(evidence, name, cand, old_cols, needed)
            if s and s[2] >= MIN_PROFILE:
                scored.append((s, cand))
        scored.sort(key=lambda x: -x[0][0])
        named = [x for x in scored if x[1].found_by != "fingerprint" and x[0][0] >= MIN_SCORE]
        prints = [x for x in scored if x[1].found_by == "fingerprint"]
        if not named and len(prints) > 1:  # the same columns and values in two places: which is the copy?
            raise Declined(f"{name} is gone and {' and '.join(c.location for _, c in prints[:3])} hold its columns "
                           "and values alike, under names unlike the old one: which one it moved to is a guess")
        if not named and prints:
            scored = prints
        if not scored or scored[0][0][0] < MIN_SCORE:
            return None
        if len(scored) > 1 and scored[0][0][0] - scored[1][0][0] < MARGIN:
            return None  # two places fit as well: a person must say which
        return scored

    def _cast_back(self, evidence, name, best, old_cols) -> tuple[FileEdit | None, list]:
        """The job edit casting the candidate's widened columns back (when their values fit)."""
        now = schema_columns(best.schema)
        now_l = {c.lower(): (c, t) for c, t in now.items()}
        pairs = {}
        for c, t in old_cols.items():
            found = now_l.get(c.lower())
            if found and found[1] != t and widens(t, found[1]):
                pairs[found[0]] = (c, t, found[1])
        if not pairs:
            return None, []
        backs = widened_backs(evidence, name, pairs, probes=list(best.widened), profile=best.profile)
        if not any(b.cast for b in backs):
            return None, backs
        source, pipeline = evidence.job_source, evidence.pipeline
        if pipeline.kind == "sql":
            refs = dict(cast_back_refs(source, name, backs, input_columns(evidence)))
            after = sqledit.rewrite_refs(source, sorted(refs, key=lambda r: r.start), lambda text, ref: refs[ref].sql(text))
            ok = after != source and sqledit.reparses(after)
        else:
            with_import, alias = pyedit.ensure_functions_import(source)
            after = pyedit.wrap_reads(with_import, name, "".join(b.python(alias) for b in backs if b.cast))
            ok = after is not None and pyedit.parses(after)
        if not ok:  # the job reads it where no edit reaches: keep the wider type, say so
            return None, [replace(b, cast=False, doubt=f"{b.describe()} could not be cast back where the job reads "
                                                       f"it: the output keeps {b.new_type}") if b.cast else b
                          for b in backs]
        return FileEdit(pipeline.job, source, after), backs


def _tails(old: str, new: str, sep: str) -> tuple[list[str], list[str]]:
    """The components of ``old`` and of ``new`` after the leading part they share."""
    o, n = old.rstrip(sep).split(sep), new.rstrip(sep).split(sep)
    k = 0
    while k < min(len(o), len(n)) and o[k] == n[k]:
        k += 1
    return o[k:], n[k:]


def _swap_tail(raw: str, old: str, new: str, sep: str) -> str | None:
    """The manifest value that points at ``new``, written like ``raw`` (which points at ``old``).

    ``${WAREHOUSE}/orders`` read /data/orders; /data/orders -> /data/sales/orders_v2
    gives ``${WAREHOUSE}/sales/orders_v2``. None when ``raw`` does not end with the part
    of the old location that changed.
    """
    old_tail, new_tail = _tails(old, new, sep)
    parts = raw.rstrip(sep).split(sep)
    if not old_tail:
        return None
    if len(parts) >= len(old_tail) and [p.lower() for p in parts[len(parts) - len(old_tail):]] == [p.lower() for p in old_tail]:
        return sep.join(parts[:len(parts) - len(old_tail)] + new_tail)
    if sep == "." and "$" not in raw:
        return new  # an unqualified table name: write the full new name
    return None


def _manifest_users(text: str, key: str, value: str) -> list[tuple[str, str]]:
    """(pipeline, input) pairs in healer.yml whose input ``key`` is exactly ``value``."""
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return []
    out = []
    for pname, body in (data.get("pipelines") or {}).items():
        for iname, spec in ((body or {}).get("inputs") or {}).items():
            if isinstance(spec, dict) and spec.get(key) == value:
                out.append((pname, iname))
    return out


def _manifest_edit(pipeline, name: str, key: str, old_location: str, new_location: str):
    """healer.yml with ``name``'s path or table pointed at ``new_location``, keeping the rest
    of the value (``${VAR}`` prefixes) as written: (text, after, new value, current value),
    or None when the value cannot be rewritten in place."""
    try:
        text = (pipeline.root / MANIFEST_NAME).read_text()
    except OSError:
        return None
    keys = ["pipelines", pipeline.name, "inputs", name, key]
    node = yamledit.scalar_node(text, keys)
    if node is None:
        return None
    sep = "/" if key == "path" else "."
    old_full = old_location if key == "path" or "." in old_location else f"default.{old_location}"
    raw = _swap_tail(node.value, old_full, new_location, sep)
    if raw is None:
        return None
    after = yamledit.replace_scalar(text, keys, raw)
    if after is None:
        return None
    return text, after, raw, node.value
