"""Evidence: what a careful engineer looks at, gathered once and shared by every fixer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from healer.evidence.history import CodeChanges, CommitInfo, changes_since, pipeline_paths, recent_commits
from healer.evidence.lineage import Lineage, python_lineage, sql_lineage
from healer.evidence.locations import Moves
from healer.evidence.probes import Probes
from healer.evidence.schema import InputDiff, RenameCandidate, diff_inputs
from healer.failure import Failure
from healer.ledger import RunRecord
from healer.manifest import Pipeline

log = logging.getLogger(__name__)

__all__ = ["Evidence", "gather", "InputDiff", "RenameCandidate", "Lineage", "CommitInfo"]


@dataclass
class Evidence:
    """Everything fixers may read about one failure."""

    failure: Failure
    pipeline: Pipeline  # as declared at the failed commit, rooted in the workspace
    job_source: str
    last_good: RunRecord | None
    current_schemas: dict  # input -> Spark schema JSON (None when the input is missing)
    current_profiles: dict  # input -> profile of a bounded sample
    diffs: list[InputDiff]
    lineage: Lineage
    commits: list[CommitInfo]
    samples: dict = field(default_factory=dict)  # input -> a few rows (dicts), untrusted
    expectations: list = field(default_factory=list)
    values: dict = field(default_factory=dict)  # (input, column) -> distinct values of retyped columns
    # -- added by the repair catalogue (issue 4); see probes.py and locations.py ----------------
    probes: Probes | None = None  # rows the job's casts, divisors, JSON paths touch; duplicate rows
    moves: Moves | None = None  # where missing inputs may have gone
    # -- issue 17: the code's own changes, and inputs that no longer read as declared ---------------
    changes: CodeChanges | None = None  # every commit since the last good run's commit (None: code unchanged)
    unreadable: dict = field(default_factory=dict)  # input -> healer.evidence.sniff.Sniffed (what is there now)

    @property
    def changed(self) -> list[InputDiff]:
        return [d for d in self.diffs if d.changed]

    def diff_for(self, input_name: str) -> InputDiff | None:
        return next((d for d in self.diffs if d.input == input_name), None)

    def renames(self) -> list[RenameCandidate]:
        return [r for d in self.diffs for r in d.renames]

    def cause(self) -> str | None:
        """What the evidence names as the likely root cause, in one line (a decline leads with it);
        None when the inputs did not change."""
        found = []
        for d in self.changed:
            renamed = {r.old for r in d.renames}
            found += [f"input {d.input} is missing"] if d.gone else []
            found += [f"{d.input}.{c} ({t}) was dropped upstream" for c, t in d.dropped.items() if c not in renamed]
            found += [f"{d.input}.{r.old} may have been renamed to {r.new}" for r in d.renames]
            found += [f"{d.input}.{c} changed type {old} -> {new}" for c, (old, new) in d.retyped.items()]
        found += [f"input {name} does not read as declared: {s.describe()}" for name, s in self.unreadable.items()]
        return "; ".join(found) or None

    def affected_outputs(self) -> list[str]:
        sources = {f"{d.input}.{c}" for d in self.changed for c in [*d.dropped, *d.retyped]}
        return self.lineage.affected_by(sources)

    def render(self) -> str:
        """A plain-text report, for the terminal and for logs."""
        f = self.failure
        lines = [
            f"failure: {f.pipeline} failed at {f.stage}: {f.error_class} ({f.describe()})",
            f"  message: {(f.message or '').splitlines()[0][:300] if f.message else ''}",
            f"  commit: {f.commit or 'unknown'}  fingerprint: {f.fingerprint}",
            f"last good run: {self.last_good.id if self.last_good else 'none recorded'}",
        ]
        if self.changed:
            lines.append("schema drift since the last good run:")
            for d in self.changed:
                for row in d.rows():
                    lines.append("  " + "  ".join(x for x in row if x))
        else:
            lines.append("schema drift since the last good run: none")
        affected = self.affected_outputs()
        if affected:
            lines.append(f"output columns affected: {', '.join(affected)}")
        if self.commits:
            lines.append("recent commits to the job:")
            lines += [f"  {c.sha[:10]} {c.date[:10]} {c.author}: {c.subject[:100]}" for c in self.commits]
        lines += self._catalogue_lines()
        if self.changes is not None and self.changes.commits:
            lines.append(f"code changed since the last good run ({len(self.changes.commits)} commit(s)):")
            lines += ["  " + x for x in self.changes.render(2000).splitlines()]
        for name, found in self.unreadable.items():
            lines.append(f"input {name} does not read as declared: {found.describe()}")
        return "\n".join(lines)

    def _catalogue_lines(self) -> list[str]:
        lines = []
        p = self.probes
        if p is not None:
            found = [f"  CAST({c.operand} AS {c.type}) on {c.input}: {c.failing} of {c.non_null} non-NULL values fail"
                     for c in p.casts if c.failing]
            found += [f"  {z.input}.{z.column}: {z.zeros} zero(s) in {z.rows} rows" for z in p.zeros if z.zeros]
            found += [f"  {d.input}: {d.duplicates} exact duplicate row(s) in {d.rows} rows" for d in p.duplicates
                      if d.duplicates]
            found += [f"  {w.input}.{w.column} widened {w.old_type} -> {w.new_type}: {w.misfits} of {w.non_null} "
                      f"values do not fit {w.old_type}" for w in p.widenings]
            found += [f"  {n.input}.{n.column}: {n.nulls} NULL(s) in {n.rows} rows" for n in p.nulls if n.nulls]
            found += [f"  {j.input}.{j.column}: JSON paths {', '.join(sorted(j.paths)[:8])} in {j.docs} documents"
                      for j in p.json]
            lines += ["value probes on the current inputs:", *found] if found else []
        if self.moves is not None:
            for name, cands in self.moves.candidates.items():
                lines.append(f"where {name} may have gone: " + (", ".join(
                    f"{c.location} ({'its columns match' if c.found_by == 'fingerprint' else 'name'} "
                    f"{c.name_score:.2f})" for c in cands[:5]) or "nothing similar found"))
            lines += [f"  note: {n}" for n in self.moves.notes]
        return lines

    def to_json(self) -> dict:
        """What the heal knew, for the ledger, ``healer heal --json`` and the Airflow pages."""
        from dataclasses import asdict

        moves = None
        if self.moves is not None:
            moves = {"notes": list(self.moves.notes), "candidates": {
                name: [{"location": c.location, "kind": c.kind, "name_score": c.name_score,
                        "columns": len((c.schema or {}).get("fields", [])), "modified_ms": c.modified_ms,
                        "found_by": c.found_by}
                       for c in cands] for name, cands in self.moves.candidates.items()}}
        return {
            "failure": self.failure.to_json(),
            "last_good_run": self.last_good.id if self.last_good else None,
            "diffs": [d.to_json() for d in self.changed],
            "lineage": self.lineage.to_json(),
            "affected_outputs": self.affected_outputs(),
            "commits": [c.__dict__ for c in self.commits],
            "probes": asdict(self.probes) if self.probes is not None else None,
            "moves": moves,
            "changes": self.changes.to_json() if self.changes is not None else None,
            "unreadable": {n: s.to_json() for n, s in self.unreadable.items()},
        }


def gather(spark, failure: Failure, pipeline: Pipeline, last_good: RunRecord | None, repo=None,
           expectations=None, sample_rows: int = 5, profile_rows: int = 10000) -> Evidence:
    """Read the inputs as they are now and compare them with the last good run."""
    from healer.runner import io
    from healer.runner.profile import profile, schema_json

    current_schemas, current_profiles, samples = {}, {}, {}
    frames = {}  # input -> its DataFrame now, read once for every use below
    unreadable = {}
    for spec in pipeline.inputs.values():
        try:
            df = io.read_input(spark, spec)
            current_schemas[spec.name] = schema_json(df)
            frames[spec.name] = df
        except io.MissingInput:
            current_schemas[spec.name] = None
            continue
        except Exception as exc:  # the input does not read as declared: what is there is the evidence
            current_schemas[spec.name] = None
            unreadable[spec.name] = sniff_input(spark, spec, exc)
            continue
        try:
            current_profiles[spec.name] = profile(df, row_limit=profile_rows)
            samples[spec.name] = [r.asDict() for r in df.limit(sample_rows).collect()]
        except Exception:  # a column that no longer reads is evidence too, not a crash
            log.info("input %s: no profile or sample rows now", spec.name, exc_info=True)
    old_schemas = last_good.input_schemas if last_good else {}
    old_profiles = last_good.input_profiles if last_good else {}
    diffs = diff_inputs(old_schemas or {}, current_schemas, old_profiles, current_profiles)
    values = {}
    for d in diffs:
        for col in d.retyped:
            try:
                rows = frames[d.input].select(col).where(f"`{col}` IS NOT NULL").distinct().limit(2000).collect()
                values[(d.input, col)] = [r[0] for r in rows]
            except Exception:  # no values of a retyped column: its fixers decide on the types alone
                log.info("input %s: values of retyped column %s not read", d.input, col, exc_info=True)
    source = pipeline.job_source()
    schemas_for_lineage = old_schemas or {k: v for k, v in current_schemas.items() if v}
    outputs = _output_columns(last_good)
    if pipeline.kind == "sql":
        lineage = sql_lineage(source, schemas_for_lineage, outputs or None)
    else:
        lineage = python_lineage(source, schemas_for_lineage, outputs)
    probes, moves = _catalogue_evidence(spark, failure, pipeline, source, frames, current_schemas, diffs,
                                        profile_rows, lineage=lineage, old_schemas=old_schemas or {})
    commits, changes = [], None
    if repo is not None:
        paths = [pipeline.job] + ([pipeline.expectations] if pipeline.expectations else [])
        commits = recent_commits(repo, paths, rev=failure.commit or "HEAD")
        changes = changes_since(repo, last_good.commit if last_good else None, failure.commit,
                                pipeline_paths(pipeline.root, pipeline.job, pipeline.expectations, pipeline.kind))
    return Evidence(failure=failure, pipeline=pipeline, job_source=source, last_good=last_good,
                    current_schemas=current_schemas, current_profiles=current_profiles, diffs=diffs,
                    lineage=lineage, commits=commits, samples=samples, expectations=list(expectations or []),
                    values=values, probes=probes, moves=moves, changes=changes, unreadable=unreadable)


def sniff_input(spark, spec, exc: BaseException):
    """What an unreadable input's location holds now; never raises (it is evidence, not a crash)."""
    from healer.evidence.sniff import Sniffed, sniff

    try:
        return sniff(spark, spec, exc)
    except Exception as inner:  # noqa: BLE001 - a sniff that fails still says the input did not read
        return Sniffed(location=spec.location, declared=spec.format or "table", error=_first_line(exc),
                       note=f"could not look: {type(inner).__name__}: {_first_line(inner)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# -- hook: evidence for the repair catalogue's rules (issue 4) ------------------------------------
def _catalogue_evidence(spark, failure, pipeline, source, frames, current_schemas, diffs, profile_rows,
                        lineage=None, old_schemas=None):
    """Value probes for jobs that cast, divide or extract JSON, duplicate rows when a uniqueness
    expectation failed, NULLs behind a failed not-NULL expectation, values of widened columns;
    candidates for missing inputs.

    Best effort: evidence that cannot be gathered is left out, never a crash.
    """
    from healer.evidence.locations import find_moves
    from healer.evidence.probes import WANTED, probe, wanted_kinds, widened_columns
    from healer.runner.profile import schema_columns

    probes = moves = None
    kinds = wanted_kinds(failure) if failure.category in WANTED else set()
    widened = widened_columns(diffs)  # a rename often comes with a widening: do the values still fit?
    if kinds or widened:
        try:
            columns = {n: {c.lower() for c in schema_columns(s)} for n, s in current_schemas.items() if s}
            nulls = _not_null_sources(failure, lineage, list(frames)) if "nulls" in kinds else {}
            probes = probe(spark, frames, source, pipeline.kind, columns, kinds=kinds, widened=widened,
                           null_columns=nulls)
        except Exception:  # no probes: the fixers that need them decline, and this says why
            log.info("evidence probes failed", exc_info=True)
            probes = None
    missing = [d.input for d in diffs if d.gone] or [n for n, s in current_schemas.items() if s is None]
    if missing:
        try:
            moves = find_moves(spark, pipeline, missing, profile_rows=profile_rows, old_schemas=old_schemas)
        except Exception:  # no search for moved inputs: a missing input is declined, not moved
            log.info("no search for where %s moved", ", ".join(missing), exc_info=True)
            moves = None
    return probes, moves


def _not_null_sources(failure, lineage, inputs: list[str]) -> dict[str, set[str]]:
    """input -> the columns the outputs of failed not-NULL expectations are computed from."""
    if lineage is None:
        return {}
    by_lower = {n.lower(): n for n in inputs}
    out: dict[str, set[str]] = {}
    for e in failure.failed_expectations or []:
        if e.kind != "column_values_not_null" or not e.column:
            continue
        sources = next((v for k, v in lineage.outputs.items() if k.lower() == e.column.lower()), None)
        for src in sources if sources else lineage.referenced:
            name, _, column = src.partition(".")
            if name.lower() in by_lower and column:
                out.setdefault(by_lower[name.lower()], set()).add(column)
    return out


def _output_columns(last_good: RunRecord | None) -> list[str]:
    if not last_good or not last_good.output_schema:
        return []
    return [f["name"] for f in last_good.output_schema.get("fields", [])]

