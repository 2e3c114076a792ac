"""Rule: an input's files changed format -> declare the format they now have.

An upstream team switches a feed from Parquet to CSV or JSON lines (often gzip-compressed),
or to ORC/Avro; the path is the same, so Spark fails reading it as declared (a footer that
is not Parquet, a schema it cannot infer). The evidence sniffed every data file's first
bytes (healer.evidence.sniff).

Fix, only when unambiguous: every sniffed data file has the same format, one Spark reads
natively, different from the declared one, and (for CSV) comma-separated with a header
row, which is how the runner reads CSV. Then healer.yml's ``format:`` of that input changes
and nothing else; gzip needs nothing (Spark decompresses by extension). A mix of formats,
an empty folder, unrecognised bytes, another CSV delimiter or a Delta table is declined with
what was found.
"""

from __future__ import annotations

from healer.fixers import yamledit
from healer.fixers.base import Declined, FileEdit, Patch, Rebinding

READABLE = {"parquet", "csv", "json", "orc", "avro"}
MANIFEST = "healer.yml"


class InputFormat:
    name = "rule:input_format"

    def propose(self, evidence) -> list[Patch]:
        if evidence.failure.category != "unreadable_input" or not evidence.unreadable:
            return []
        if len(evidence.unreadable) > 1:
            raise Declined(f"{len(evidence.unreadable)} inputs do not read as declared "
                           f"({', '.join(evidence.unreadable)}): one change at a time")
        name, found = next(iter(evidence.unreadable.items()))
        spec = evidence.pipeline.inputs[name]
        if not found.exists or not found.files:
            raise Declined(f"input {name}: {found.describe()}")
        fmt = found.format
        if fmt is None:
            raise Declined(f"input {name}: the data files are not of one format ({found.describe()})")
        if fmt not in READABLE:
            raise Declined(f"input {name}: {found.describe()}; not a format the runner reads by itself")
        if found.layout == "nested" and found.nested_dir and "=" not in found.nested_dir:
            return self._nested(evidence, name, spec, found, fmt)
        if fmt == spec.format:
            raise Declined(f"input {name}: the files are {fmt} as declared but do not read "
                           f"({found.error}): damaged files, not a format change")
        if fmt == "csv" and (found.delimiter != "," or not found.header):
            raise Declined(f"input {name}: now CSV with delimiter {found.delimiter!r} and "
                           f"{'a' if found.header else 'no'} header; the manifest would need reader options too")
        if found.layout == "mixed folders" or found.note:
            raise Declined(f"input {name}: {found.describe()}")
        path = evidence.pipeline.root / MANIFEST
        try:
            text = path.read_text()
        except OSError:
            return []
        keys = ["pipelines", evidence.pipeline.name, "inputs", name, "format"]
        after = yamledit.replace_scalar(text, keys, fmt)
        if after is None:
            raise Declined(f"input {name}: healer.yml has no plain format: value to change in place")
        comp = f" ({', '.join(found.compression)}-compressed)" if found.compression else ""
        doubts = []
        if fmt in ("csv", "json"):
            doubts.append(f"{fmt} carries no types: Spark infers them from the data, so a column may come out "
                          "with another type than before (the sandbox compares the output schema)")
        return [Patch(
            fixer=self.name,
            title=f"input {name} is now {fmt}{comp}, not {spec.format}",
            rationale=(f"Spark could not read {name} as {spec.format}: {found.error}. Its location holds "
                       f"{found.files} data file(s), every sniffed one {fmt}{comp} ({found.describe()}). "
                       f"healer.yml now declares format {fmt}; the path is unchanged."),
            confidence=0.8 if not doubts else 0.75,
            edits=[FileEdit(MANIFEST, text, after)], doubts=doubts,
            rebinding=Rebinding(name, path=spec.path, format=fmt))]

    def _nested(self, evidence, name, spec, found, fmt) -> list[Patch]:
        """Every data file moved one folder deeper (``orders/v2/...``): the path follows it."""
        path = evidence.pipeline.root / MANIFEST
        try:
            text = path.read_text()
        except OSError:
            return []
        keys = ["pipelines", evidence.pipeline.name, "inputs", name]
        node = yamledit.scalar_node(text, [*keys, "path"])
        if node is None or fmt == "csv" and fmt != spec.format:
            raise Declined(f"input {name}: {found.describe()}; healer.yml's path cannot be changed in place")
        after = yamledit.replace_scalar(text, [*keys, "path"], node.value.rstrip("/") + "/" + found.nested_dir)
        if after is not None and fmt != spec.format:
            after = yamledit.replace_scalar(after, [*keys, "format"], fmt)
        if after is None:
            raise Declined(f"input {name}: {found.describe()}; healer.yml's path cannot be changed in place")
        new_path = spec.path.rstrip("/") + "/" + found.nested_dir
        return [Patch(
            fixer=self.name,
            title=f"input {name} moved one folder down, into {found.nested_dir}/",
            rationale=(f"Spark could not read {name} at {spec.path}: {found.error}. Every one of its "
                       f"{found.files} data file(s) is now under {found.nested_dir}/ ({found.describe()}); "
                       "healer.yml's path follows them."),
            confidence=0.75, edits=[FileEdit(MANIFEST, text, after)],
            doubts=["the folder above may fill again the old way: the upstream team should confirm the layout"],
            rebinding=Rebinding(name, path=new_path, format=fmt))]
