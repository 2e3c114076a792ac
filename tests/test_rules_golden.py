"""Golden cases for the rule fixers: broken job + drift -> the exact patched text.

Every case lives in ``tests/fixtures/rules/<rule>.yml`` and runs through one helper,
``check``, in the spirit of sqlglot's ``validate_identity``/``validate_all``. A case says
what failed, how each input looked at the last good run and looks now, the job, and the
text the fix must produce (or ``expect: null`` when the right answer is no patch at all).
The Evidence is built directly — real triage, real schema diff and lineage, real probes
over given documents — without Spark, so the whole file runs in about a second.

Case keys::

    name, kind (sql | python), job, expect            the job before and after (null: decline)
    failure: {error_class, params, stage, message}    classified by healer.failure.classify
    inputs: {name: {before: {col: type}, after: {col: type} | null,
                    profile_before / profile_after: {col: {min, max, null_fraction, distinct}},
                    location: /abs/path | table: db.name, format}}
    values: {"input.column": [distinct values now]}
    probes: {casts, zeros, duplicates, widenings, nulls: [...]}  as healer.evidence.probes records
    json_docs: {"input.column": [documents now]}       parsed by probes.json_probe
    moves: {input: [{location, kind, schema, profile, found_by, widened: [WidenProbe fields]}]}
    manifest / expect_manifest                         healer.yml before and after
    job_before / manifest_before / author / subject    the last good run's job (healer.yml): a real git repo
                                                       with that commit and a commit by ``author`` making
                                                       ``job`` (``manifest``); their diff is evidence.changes
    unreadable: {input: {formats, files, ...}}         healer.evidence.sniff.Sniffed fields of an input
                                                       that no longer reads as declared
    fixer, changes_meaning, doubts, rationale, title   what the winning patch must say (regexes)
    declined, declined_by                              a decline reason (regex) and the rule that gave it
                                                       (default: ``fixer``)
    min_confidence, max_confidence                     bounds on its confidence
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from healer.evidence import Evidence
from healer.evidence.lineage import python_lineage, sql_lineage
from healer.evidence.locations import LocationCandidate, Moves
from healer.evidence.probes import (CastProbe, DuplicateProbe, NullProbe, Probes, WidenProbe, ZeroProbe,
                                   json_probe)
from healer.evidence.schema import diff_inputs
from healer.expectations import ExpectationResult
from healer.failure import Failure, classify
from healer.fixers import default_fixers, propose_all
from healer.ledger import RunRecord
from healer.manifest import InputSpec, OutputSpec, Pipeline

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
SIMPLE = {"bigint": "long", "int": "integer", "smallint": "short", "tinyint": "byte"}


# -- Spark schema JSON from simple type strings ("bigint", "struct<city:string>") ---------------

def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur] if cur else parts


def spark_type(simple: str):
    simple = simple.strip()
    if simple.startswith("struct<"):
        fields = []
        for part in _split_top(simple[len("struct<"):-1]):
            name, _, typ = part.partition(":")
            fields.append({"name": name.strip(), "type": spark_type(typ), "nullable": True, "metadata": {}})
        return {"type": "struct", "fields": fields}
    if simple.startswith("array<"):
        return {"type": "array", "elementType": spark_type(simple[len("array<"):-1]), "containsNull": True}
    return SIMPLE.get(simple, simple)


def spark_schema(columns: dict | None) -> dict | None:
    if columns is None:
        return None
    return {"type": "struct", "fields": [{"name": n, "type": spark_type(t), "nullable": True, "metadata": {}}
                                         for n, t in columns.items()]}


def _profile(columns: dict | None) -> dict | None:
    return {"row_count": 1000, "columns": columns} if columns else None


# -- the one helper ----------------------------------------------------------------------------

def evidence_for(case: dict, root: Path) -> Evidence:
    """The Evidence a heal would gather for ``case``, with the job (and healer.yml) in ``root``."""
    kind = case.get("kind", "sql")
    job = f"jobs/job.{'sql' if kind == 'sql' else 'py'}"
    (root / "jobs").mkdir(parents=True, exist_ok=True)
    (root / job).write_text(case["job"])
    if case.get("manifest"):
        (root / "healer.yml").write_text(case["manifest"])
    inputs = case["inputs"]
    specs = {}
    for name, spec in inputs.items():
        if spec.get("table"):
            specs[name] = InputSpec(name=name, table=spec["table"])
        else:
            specs[name] = InputSpec(name=name, path=spec.get("location", f"/warehouse/{name}"),
                                    format=spec.get("format", "parquet"))
    pipeline = Pipeline(name=case.get("pipeline", "job"), job=job, kind=kind, inputs=specs,
                        output=OutputSpec(path="/out/job"), expectations=None, root=root)
    before = {n: spark_schema(s["before"]) for n, s in inputs.items()}
    # "after" absent: unchanged; "after: null": the input is gone
    after = {n: spark_schema(s["after"] if "after" in s else s["before"]) for n, s in inputs.items()}
    profiles_before = {n: _profile(s.get("profile_before")) for n, s in inputs.items() if s.get("profile_before")}
    profiles_after = {n: _profile(s.get("profile_after")) for n, s in inputs.items() if s.get("profile_after")}
    f = case.get("failure", {})
    audit = [ExpectationResult.from_json(e) for e in f.get("failed_expectations", [])]  # as the ledger's rows are read
    failure = classify(Failure(pipeline=pipeline.name, repo=str(root), stage=f.get("stage", "job"),
                               error_class=f.get("error_class", "unknown"), message=f.get("message", ""),
                               params=f.get("params", {}), failed_expectations=audit))
    output = case.get("output")
    last_good = RunRecord(pipeline=pipeline.name, repo=str(root), status="success", id=1, input_schemas=before,
                          input_profiles=profiles_before, output_schema=spark_schema(output) if output else None)
    outputs = list(output) if output else []
    if kind == "sql":
        lineage = sql_lineage(case["job"], before, outputs or None)
    else:
        lineage = python_lineage(case["job"], before, outputs)
    values = {tuple(k.split(".", 1)): v for k, v in (case.get("values") or {}).items()}
    probes = None
    if "probes" in case or "json_docs" in case:
        p = case.get("probes") or {}
        probes = Probes(casts=[CastProbe(**{**c, "examples": tuple(c.get("examples", ()))}) for c in p.get("casts", [])],
                        zeros=[ZeroProbe(**z) for z in p.get("zeros", [])],
                        duplicates=[DuplicateProbe(**d) for d in p.get("duplicates", [])],
                        widenings=[WidenProbe(**w) for w in p.get("widenings", [])],
                        nulls=[NullProbe(**n) for n in p.get("nulls", [])],
                        json=[json_probe(*k.split(".", 1), docs) for k, docs in (case.get("json_docs") or {}).items()])
    moves = None
    if "moves" in case:
        moves = Moves({name: [LocationCandidate(input=name, kind=c.get("kind", "path"), location=c["location"],
                                                name_score=c.get("name_score", 0.0),
                                                schema=spark_schema(c.get("schema")), profile=_profile(c.get("profile")),
                                                found_by=c.get("found_by", "name"),
                                                widened=tuple(WidenProbe(**w) for w in c.get("widened", [])))
                              for c in cands] for name, cands in case["moves"].items()})
        _score_names(moves, specs)
    changes, unreadable = _code_changes(case, root, job), _unreadable(case, specs)
    if changes is not None:
        last_good.commit, failure.commit = changes.base, changes.head
    return Evidence(failure=failure, pipeline=pipeline, job_source=case["job"], last_good=last_good,
                    current_schemas=after, current_profiles=profiles_after,
                    diffs=diff_inputs(before, after, profiles_before, profiles_after), lineage=lineage, commits=[],
                    values=values, probes=probes, moves=moves, changes=changes, unreadable=unreadable)


def _code_changes(case: dict, root: Path, job: str):
    """A real git repo: the last good commit (job_before, manifest_before), then the author's commit."""
    if "job_before" not in case and "manifest_before" not in case:
        return None
    import git

    from healer.evidence.history import changes_since, pipeline_paths

    repo = git.Repo.init(root)
    now = {job: case["job"], "healer.yml": case.get("manifest")}
    then = {job: case.get("job_before", case["job"]), "healer.yml": case.get("manifest_before", case.get("manifest"))}
    shas = []
    authors = ("Old Hand <old@example.com>", case.get("author", "Ann Author <ann@example.com>"))
    for files, author in zip((then, now), authors):
        for path, text in files.items():
            if text is not None:
                (root / path).write_text(text)
                repo.index.add([path])
        actor = git.Actor(*author[:-1].split(" <"))
        shas.append(repo.index.commit(case.get("subject", "change the job") if shas else "good", author=actor,
                                      committer=actor).hexsha)
    return changes_since(repo, shas[0], shas[1], pipeline_paths(root, job, None, case.get("kind", "sql")))


def _unreadable(case: dict, specs: dict) -> dict:
    from healer.evidence.sniff import Sniffed

    return {name: Sniffed(location=specs[name].location, declared=specs[name].format,
                          **{"error": "cannot read",
                             **{k: (tuple(v) if isinstance(v, list) else v) for k, v in found.items()}})
            for name, found in (case.get("unreadable") or {}).items()}


def _score_names(moves: Moves, specs: dict) -> None:
    """Name scores as healer.evidence.locations computes them, unless the case gives one."""
    from dataclasses import replace

    from healer.evidence.locations import basename
    from healer.evidence.schema import name_similarity

    for name, cands in moves.candidates.items():
        spec = specs[name]
        old = basename(spec.path or spec.table, "path" if spec.path else "table")
        moves.candidates[name] = [c if c.name_score else replace(c, name_score=round(name_similarity(
            old, basename(c.location, c.kind)), 3)) for c in cands]


def check(case: dict, root: Path) -> None:
    """The fixers, given the case's evidence, produce exactly the expected text (or nothing)."""
    evidence = evidence_for(case, root)
    patches, declines, errors = propose_all(evidence, default_fixers())
    assert not errors, errors  # no rule may crash on a case
    if case.get("declined"):  # a rule that recognised the case says why it refused
        by = case.get("declined_by", case["fixer"])  # another rule's decline, when a last resort still proposes
        assert any(re.search(case["declined"], d) for d in declines if d.startswith(f"{by} declined: ")), \
            (case["declined"], declines)
    if case.get("expect") is None and case.get("expect_manifest") is None:
        assert patches == [], f"expected no patch, got {[(p.fixer, p.title) for p in patches]}: " + (
            patches[0].diff() if patches else "")
        return
    assert patches, f"no patch; evidence:\n{evidence.render()}"
    patch = patches[0]
    assert patch.fixer == case["fixer"], (patch.fixer, patch.title)
    edits = {e.path: e.after for e in patch.edits}
    if case.get("expect") is not None:
        assert edits.get(evidence.pipeline.job) == case["expect"], patch.diff()
    if case.get("expect_manifest") is not None:
        assert edits.get("healer.yml") == case["expect_manifest"], patch.diff()
    assert patch.changes_meaning == case.get("changes_meaning", False), patch.rationale
    for text in case.get("doubts", []):
        assert any(re.search(text, d) for d in patch.doubts), (text, patch.doubts)
    for text in case.get("rationale", []):
        assert re.search(text, patch.rationale), (text, patch.rationale)
    if case.get("title"):
        assert re.search(case["title"], patch.title), patch.title
    if "min_confidence" in case:
        assert patch.confidence >= case["min_confidence"], patch.confidence
    if "max_confidence" in case:
        assert patch.confidence <= case["max_confidence"], patch.confidence


def load_cases() -> list:
    out = []
    for path in sorted(FIXTURES.glob("*.yml")):
        rule = path.stem
        for case in yaml.safe_load(path.read_text()):
            case.setdefault("fixer", f"rule:{rule}")
            out.append(pytest.param(case, id=f"{rule}/{case['name']}"))
    return out


@pytest.mark.parametrize("case", load_cases())
def test_rule_golden(case, tmp_path):
    check(case, tmp_path)


def test_every_rule_has_cases_on_both_kinds_and_a_decline():
    """The catalogue is covered: every registered rule, SQL and PySpark, and a decline."""
    cases = [p.values[0] for p in load_cases()]
    for fixer in default_fixers():
        mine = [c for c in cases if c["fixer"] == fixer.name]
        kinds = {c.get("kind", "sql") for c in mine if c.get("expect") is not None or c.get("expect_manifest")}
        assert kinds == {"sql", "python"}, (fixer.name, kinds)
        assert any(c.get("expect") is None and not c.get("expect_manifest") for c in mine), fixer.name
