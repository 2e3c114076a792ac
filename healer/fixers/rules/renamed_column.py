"""Rule: an upstream column was renamed. Point the job at the new name, keep output names."""

from __future__ import annotations

from healer.fixers import pyedit, sqledit
from healer.fixers.base import Declined, FileEdit, Patch
from healer.evidence.probes import widens
from healer.fixers.rules._common import input_columns, job_mentions
from healer.fixers.rules.retyped_column import cast_back_refs, widen_summary, widened_backs

CATEGORIES = {"unresolved_column", "expectation", "datatype_mismatch"}
WEAK_VALUES = 0.8  # below this profile similarity a rename by partly shared names is only a draft


class RenamedColumn:
    """Renames found in the schema diff (scored by name, type and values) applied to the job."""

    name = "rule:renamed_column"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category not in CATEGORIES:
            return []
        patches, ties = [], []
        for diff in evidence.changed:
            renames = [r for r in diff.renames if job_mentions(evidence, diff.input, r.old)]
            tied = [r for r in renames if r.ambiguous]
            if tied:  # a coin toss between two new names is not a fix
                ties += [f"{diff.input}.{r.old} -> {r.new} scores {r.score:.2f}, only {r.margin:.2f} ahead of "
                         f"{r.runner_up}" for r in tied]
                continue
            patch = self._patch(evidence, diff.input, renames) if renames else None
            if patch:
                patches.append(patch)
        if ties and not patches:
            raise Declined("; ".join(ties) + ": too close to choose")
        return patches

    def _widened(self, evidence, input_name, renames):
        """The widened columns of the input the job reads: renamed and widened in one go, or
        widened in place beside the renames (one release often does both)."""
        diff = evidence.diff_for(input_name)
        if diff is None:
            return []
        pairs = {c: (c, old, new) for c, (old, new) in diff.retyped.items() if widens(old, new)}
        for r in renames:
            old, new = diff.dropped.get(r.old), diff.added.get(r.new)
            if old and new and widens(old, new):
                pairs[r.new] = (r.old, old, new)
        return widened_backs(evidence, input_name, pairs)

    def _patch(self, evidence, input_name, renames) -> Patch | None:
        pipeline = evidence.pipeline
        source = evidence.job_source
        backs = self._widened(evidence, input_name, renames)
        cast = {b.column.lower(): b for b in backs if b.cast}
        if pipeline.kind == "sql":
            cols = input_columns(evidence)
            # every reference is found in the original text first, so a swap (a -> b, b -> c)
            # never renames a reference twice
            new_name = {r.old.lower(): r.new for r in renames}
            refs = sorted({ref for r in renames for ref in sqledit.column_refs(source, input_name, r.old, cols)},
                          key=lambda ref: ref.start)
            widened = dict(cast_back_refs(source, input_name, backs, cols))

            def rewrite(text, ref):
                if ref in widened:  # widened in place: the same name, cast back
                    return widened[ref].sql(text)
                renamed = sqledit.replace_identifier(text, new_name[ref.column.lower()])
                back = cast.get(ref.column.lower())
                return back.sql(renamed) if back else renamed

            after = sqledit.rewrite_refs(source, sorted({*refs, *widened}, key=lambda ref: ref.start), rewrite)
            if after == source or not sqledit.reparses(after):
                return None
        else:
            if len(renames) > 2:
                pairs = ", ".join(f"{pyedit.py_string(r.new)}: {pyedit.py_string(r.old)}" for r in renames)
                suffix = f".withColumnsRenamed({{{pairs}}})"
            else:
                suffix = "".join(f".withColumnRenamed({pyedit.py_string(r.new)}, {pyedit.py_string(r.old)})"
                                 for r in renames)
            if cast:
                source_, alias = pyedit.ensure_functions_import(source)
                suffix += "".join(b.python(alias) for b in backs if b.cast)
            else:
                source_ = source
            after = pyedit.wrap_reads(source_, input_name, suffix)
            if after is None or not pyedit.parses(after):
                return None
        key = {k.lower().rsplit(".", 1)[-1] for k in evidence.failure.key_objects}
        named = any(r.old.lower() in key for r in renames)
        # a widened type cast back with every value fitting is the old type again: it costs no confidence
        fitted = {b.column.lower() for b in backs if b.cast}
        confidence = min(r.score + (0.25 * (1 - r.type_score) if r.old.lower() in fitted else 0)
                         for r in renames) * (1.0 if named or evidence.failure.category != "unresolved_column" else 0.8)
        doubts = []
        for r in renames:
            if r.runner_up and r.margin < 0.15:
                doubts.append(f"{input_name}.{r.runner_up} was the next best match for {r.old} "
                              f"(score {r.score - r.margin:.2f} against {r.score:.2f})")
            if r.type_score < 1 and r.old.lower() not in {b.column.lower() for b in backs}:
                doubts.append(f"{input_name}.{r.new} has a different type than {r.old} had")
            if r.profile_score < WEAK_VALUES and r.why == "similar names":
                # only some words in common and values that differ: maybe another column altogether
                confidence = min(confidence, 0.6)
                doubts.append(f"{r.old} and {r.new} share only part of their names and the values of {input_name}.{r.new} "
                              f"look different from {r.old}'s at the last good run (profile similarity "
                              f"{r.profile_score:.2f}): it may be a new column rather than the old one renamed")
            elif r.profile_score < 0.6:
                doubts.append(f"the values of {input_name}.{r.new} look different from {r.old}'s at the last good run "
                              f"(profile similarity {r.profile_score:.2f})")
        mapping = ", ".join(f"{r.old} → {r.new}" for r in renames)
        plural = "columns were" if len(renames) > 1 else "column was"
        return Patch(
            fixer=self.name,
            title=f"upstream {plural} renamed in {input_name}: {mapping}",
            rationale=(f"Since the last good run, {input_name} lost "
                       + ", ".join(r.old for r in renames) + " and gained "
                       + ", ".join(r.new for r in renames)
                       + " with matching " + ("types and values" if all(r.type_score == 1 for r in renames) else "values")
                       + f" (scores {', '.join(f'{r.score:.2f}' for r in renames)}"
                       + "".join(sorted({f'; {r.why}' for r in renames if r.why.startswith('table-wide')}))
                       + "). The job now reads the new "
                       "names; its output columns keep their names."
                       + (" " + widen_summary(backs) if backs else "")),
            confidence=round(min(confidence, 0.99) * (0.9 if any(not b.cast for b in backs) else 1), 3),
            edits=[FileEdit(pipeline.job, source, after)],
            doubts=doubts + [b.doubt for b in backs if b.doubt],
            details={"input": input_name, "renames": {r.old: r.new for r in renames},
                     "widened": {b.now: {"type": b.old_type, "now": b.new_type, "cast_back": b.cast} for b in backs}},
        )
