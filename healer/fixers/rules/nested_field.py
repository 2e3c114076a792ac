"""Rule: a field moved inside a struct or JSON column -> read it at its new path.

Struct columns: the schema diff, walked into structs, shows a leaf gone from one path and
present, alone and with the same type, at another (``address.city`` ->
``address.location.city``; ``city`` -> ``address.city``). The job's references to the old
path are pointed at the new one; the output keeps its names (a bare reference is named
by its leaf, which does not change).

JSON string columns: the job extracts ``'$.customer.city'`` but no current document has
that path, while one other path ending in the same key is present in most of them (the
evidence probes parse a bounded sample). The path literal is changed.

Two possible new homes for a field is a coin toss: no patch.
"""

from __future__ import annotations


from healer.evidence import jobscan
from healer.evidence.schema import FieldMove, field_moves
from healer.fixers import pyedit, sqledit
from healer.fixers.base import FileEdit, Patch
from healer.fixers.rules._common import input_columns

CATEGORIES = {"unresolved_column", "expectation", "datatype_mismatch", "unknown"}
JSON_MIN_SHARE = 0.5  # the new JSON path must be in at least this share of documents


class NestedField:
    name = "rule:nested_field"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES:
            return []
        patches = []
        moves = self._moves(evidence)
        if moves:
            patch = self._struct_patch(evidence, moves)
            if patch:
                patches.append(patch)
        json_patch = self._json_patch(evidence)
        if json_patch:
            patches.append(json_patch)
        return patches

    # -- structs -----------------------------------------------------------------------------
    def _moves(self, evidence) -> list[FieldMove]:
        if not evidence.last_good:
            return []
        out = []
        for diff in evidence.changed:
            old = (evidence.last_good.input_schemas or {}).get(diff.input)
            new = evidence.current_schemas.get(diff.input)
            if old and new:
                out += field_moves(diff.input, old, new)
        return out

    def _struct_patch(self, evidence, moves: list[FieldMove]) -> Patch | None:
        source = evidence.job_source
        if evidence.pipeline.kind == "sql":
            cols = input_columns(evidence)
            edits, used = [], []
            for move in moves:
                refs = sqledit.path_refs(source, move.input, move.old, cols)
                if refs and move.ambiguous:
                    return None
                if refs:
                    used.append(move)
                    new_text = ".".join(sqledit.quote(p) for p in move.new)
                    edits += [(start, end, new_text) for start, end in refs]
            after = sqledit.splice_text(source, edits) if edits else None
            if after is None or not sqledit.reparses(after):
                return None
        else:
            after, used = source, []
            for move in moves:
                old_dotted = ".".join(move.old)
                if len(move.old) == 1:
                    # a top-level column went into a struct: the read brings it back under its name
                    if not _py_mentions(after, old_dotted):
                        continue
                    if move.ambiguous:
                        return None
                    base, fn = pyedit.ensure_functions_import(after)
                    wrapped = pyedit.wrap_reads(base, move.input, f".withColumn({pyedit.py_string(move.old[0])}, "
                                                                  f"{fn}.col({pyedit.py_string('.'.join(move.new))}))")
                    if wrapped is None:
                        continue
                    after = wrapped
                    used.append(move)
                else:
                    spans = [span for node, span, _ in pyedit.string_literals(after) if node.value.lower() == old_dotted.lower()]
                    if not spans:
                        continue
                    if move.ambiguous:
                        return None
                    after = pyedit.replace_spans(after, [(s, ".".join(move.new)) for s in spans])
                    used.append(move)
            if not used or after is None or after == source or not pyedit.parses(after):
                return None
        if not used:
            return None
        mapping = ", ".join(f"{m.input}.{'.'.join(m.old)} → {m.input}.{'.'.join(m.new)}" for m in used)
        return Patch(
            fixer=self.name,
            title=f"upstream moved a nested field: {mapping}",
            rationale=("Since the last good run, " + "; ".join(
                f"{m.input}.{'.'.join(m.old)} ({m.type}) is gone and {m.input}.{'.'.join(m.new)} with the same name and "
                f"type appeared" for m in used) + ". The job now reads the field at its new path; its output "
                "columns keep their names and types."),
            confidence=0.85,
            edits=[FileEdit(evidence.pipeline.job, source, after)],
            details={"moves": [{"input": m.input, "old": list(m.old), "new": list(m.new)} for m in used]},
        )

    # -- JSON strings ------------------------------------------------------------------------
    def _json_patch(self, evidence) -> Patch | None:
        if evidence.probes is None or not evidence.probes.json:
            return None
        source = evidence.job_source
        if evidence.pipeline.kind == "sql":
            uses = [(u.input, u.column, u.path) for u in jobscan.sql_json_paths(source, input_columns(evidence))]
        else:
            uses = [(None, column, path) for _node, column, path in jobscan.py_json_paths(source)]
        replacements, found = {}, []
        for input_name, column, path in uses:
            probe = evidence.probes.json_paths(input_name, column)
            if probe is None or not probe.docs or probe.paths.get(path):
                continue
            leaf = path.rsplit(".", 1)[-1].lower()
            same = [p for p, n in probe.paths.items() if p.rsplit(".", 1)[-1].lower() == leaf]
            if len(same) != 1 or probe.paths[same[0]] < JSON_MIN_SHARE * probe.docs:
                return None  # nowhere, or more than one place: not a move we can name
            replacements[path] = same[0]
            found.append((probe.input, column, path, same[0], probe.paths[same[0]], probe.docs))
        if not replacements:
            return None
        if evidence.pipeline.kind == "sql":
            after = sqledit.replace_string_literals(source, replacements)
        else:
            spans = [(span, replacements[node.value]) for node, span, _ in pyedit.string_literals(source)
                     if node.value in replacements]
            after = pyedit.replace_spans(source, spans) if spans else None
        if after is None or after == source:
            return None
        return Patch(
            fixer=self.name,
            title="upstream moved a JSON field: " + ", ".join(f"{i}.{c} {o} → {n}" for i, c, o, n, _, _ in found),
            rationale="; ".join(f"No current document of {i}.{c} has {o}; {n} is in {k} of {d} sampled documents"
                                for i, c, o, n, k, d in found)
                      + ". The job now extracts the field at its new path.",
            confidence=0.8,
            edits=[FileEdit(evidence.pipeline.job, source, after)],
            doubts=["JSON paths were read from a bounded sample of current documents"],
            details={"json": [{"input": i, "column": c, "old": o, "new": n} for i, c, o, n, _, _ in found]},
        )


def _py_mentions(source: str, name: str) -> bool:
    return any(node.value.lower() == name.lower() for node, _, _ in pyedit.string_literals(source))
