"""Rule: a commit renamed an input on one side only -> align the smaller side.

The logical input names of healer.yml and the names the job reads must agree. A commit
renames ``orders`` to ``order_events`` in healer.yml but not in the SQL (or in the PySpark
``spark.table(...)`` but not in healer.yml); Spark then cannot find a table, or the runner
an input.

Detect: the code changed since the last good run; exactly one name the job reads is not a
declared input, and exactly one declared input is not read by the job. The commits changed
one of the two names (a line they added holds the new one, or a line they removed the old).

Fix: rename on the side with fewer occurrences (the job's references against the input's
one key in healer.yml). When both are one, the side the commit did not touch follows the
one it did: the commit's intent wins. A renamed healer.yml key keeps the input's location.
"""

from __future__ import annotations

import logging
import ast
import re

import yaml

from healer.fixers import yamledit
from healer.fixers.base import Declined, FileEdit, Patch, Rebinding
from healer.fixers.rules.code_typo import _parses, _replace_py_names, _replace_sql_names, distance, max_edits
from healer.manifest import sql_job_tables

log = logging.getLogger(__name__)

MANIFEST = "healer.yml"


def job_reads(evidence) -> list[str]:
    """The input names the job reads (SQL tables; PySpark ``spark.table("...")`` literals)."""
    source = evidence.job_source
    if evidence.pipeline.kind == "sql":
        try:
            return sql_job_tables(source)
        except Exception:  # a job that does not parse names no tables
            log.debug("no tables read from %s", evidence.pipeline.job, exc_info=True)
            return []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return list(dict.fromkeys(
        n.args[0].value for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "table" and n.args
        and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str)))


def rename_key(text: str, keys: list[str], old: str, new: str) -> str | None:
    """healer.yml with the mapping key ``old`` under ``keys`` renamed ``new``; nothing else changes."""
    node = yamledit.node_at(text, keys)
    if not isinstance(node, yaml.MappingNode):
        return None
    found = next((k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == old), None)
    if found is None or found.style is not None or any(
            isinstance(k, yaml.ScalarNode) and k.value == new for k, _ in node.value):
        return None
    new_text = text[:found.start_mark.index] + new + text[found.end_mark.index:]
    before, after = yaml.safe_load(text), yaml.safe_load(new_text)
    target = before
    for key in keys:
        target = target[key]
    target[new] = target.pop(old)
    return new_text if before == after else None


class ManifestDrift:
    name = "rule:manifest_drift"

    def propose(self, evidence) -> list[Patch]:
        f, changes = evidence.failure, evidence.changes
        job = evidence.pipeline.job
        if f.category != "missing_table" or changes is None or not (changes.touches(job) or changes.touches(MANIFEST)):
            return []
        declared = [n for n, s in evidence.pipeline.inputs.items() if getattr(s, "declared", True)]
        reads = job_reads(evidence)
        low_declared = {n.lower() for n in declared}
        missing = [r for r in reads if r.lower() not in low_declared]
        unread = [n for n in declared if n.lower() not in {r.lower() for r in reads}]
        if not missing or not unread:
            return []
        if len(missing) > 1 or len(unread) > 1:
            raise Declined(f"the job reads {', '.join(missing)} and healer.yml declares {', '.join(unread)} "
                           "unread: which name goes with which is not certain")
        code_name, yml_name = missing[0], unread[0]
        if distance(code_name, yml_name) <= min(max_edits(code_name), max(1, len(code_name) // 3)):
            return []  # a misspelling, not a rename: code_typo's case
        code_changed = changes.introduced(code_name, job) or _removed(changes, yml_name, job)
        yml_changed = changes.introduced(yml_name, MANIFEST) or _removed(changes, code_name, MANIFEST)
        if not code_changed and not yml_changed:
            return []  # neither name is this change's: an input that went missing, not drift
        refs = self._code_refs(evidence, code_name)
        # the smaller side moves; on a tie, the side the commit did not touch follows the one it did
        if refs > 1 or (refs == 1 and code_changed and not yml_changed):
            return self._manifest_edit(evidence, yml_name, code_name, refs, code_changed)
        if code_changed and yml_changed:
            raise Declined(f"the commit renamed the input on both sides ('{code_name}' in the job, "
                           f"'{yml_name}' in healer.yml): which name is meant is not certain")
        return self._code_edit(evidence, code_name, yml_name, refs)

    def _code_refs(self, evidence, name: str) -> int:
        src = evidence.job_source
        if evidence.pipeline.kind == "sql":
            return len(re.findall(rf"(?<![\w`.]){re.escape(name)}(?![\w`])", src, re.IGNORECASE))
        return len(re.findall(rf"[\"']{re.escape(name)}[\"']", src))

    def _code_edit(self, evidence, old: str, new: str, refs: int) -> list[Patch]:
        src = evidence.job_source
        if evidence.pipeline.kind == "sql":
            after = _replace_sql_names(src, old, new)
            if after is None or not _parses(after):
                return []
        else:
            after = _replace_py_names(src, old, new, "input")
            if after is None:
                return []
        who = _who(evidence, MANIFEST)
        return [Patch(
            fixer=self.name,
            title=f"healer.yml renamed input '{old}' to '{new}' but the job still reads '{old}'",
            rationale=(f"The input is declared as '{new}' in healer.yml{who}, and the job reads '{old}' in "
                       f"{refs} place(s): the job follows the manifest (the side the commit did not change)."),
            confidence=0.85, edits=[FileEdit(evidence.pipeline.job, src, after)],
            rebinding=Rebinding(dropped=(old,)), details={"aligned": "job", "old": old, "new": new})]

    def _manifest_edit(self, evidence, old: str, new: str, refs: int, code_changed: bool) -> list[Patch]:
        path = evidence.pipeline.root / MANIFEST
        try:
            text = path.read_text()
        except OSError:
            return []
        after = rename_key(text, ["pipelines", evidence.pipeline.name, "inputs"], old, new)
        if after is None:
            raise Declined(f"healer.yml's input key '{old}' could not be renamed in place")
        who = _who(evidence, evidence.pipeline.job)
        why = ("the job reads it in " + (f"{refs} places" if refs > 1 else "one place")
               + (f", renamed{who}" if code_changed else ""))
        return [Patch(
            fixer=self.name,
            title=f"the job reads input '{new}' but healer.yml still declares it as '{old}'",
            rationale=(f"healer.yml's input '{old}' is renamed '{new}' ({why}); its location and format are "
                       "unchanged — only the logical name follows the job."),
            confidence=0.8, edits=[FileEdit(MANIFEST, text, after)],
            rebinding=Rebinding(renamed=(old, new)), details={"aligned": "healer.yml", "old": old, "new": new})]


def _removed(changes, word: str, path: str) -> bool:
    pattern = re.compile(rf"(?<![\w$]){re.escape(word)}(?![\w$])", re.IGNORECASE)
    return any(pattern.search(line) for line in changes.removed_lines(path))


def _who(evidence, path: str) -> str:
    commits = evidence.changes.commits_touching(path) if evidence.changes else []
    return f" by commit {commits[-1].sha[:10]} ({commits[-1].author})" if commits else ""
