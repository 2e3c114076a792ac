"""Where a missing input may have gone: similarly named paths and catalog tables nearby.

When an input's path or table no longer exists, an upstream team has often renamed or
moved it (``orders`` -> ``orders_v2``, ``data/orders`` -> ``data/sales/orders``,
``sales.orders`` -> ``sales_v2.orders``). This looks around the old location — the
siblings of its folder and their children, two levels up at most — and the catalog, keeps
the readable candidates whose names resemble the old one, and records each candidate's
schema and a bounded profile so a fixer can judge whether it is the same data.

A move under a new naming standard may leave nothing of the old name (``payments`` ->
``billing/settlements``). So the places whose names do not resemble it are fingerprinted
too: their schemas are read (cheap: file footers, the catalog) and the ones holding every
column of the last good input, with the same or a widened type, are profiled like the
rest, marked ``found_by="fingerprint"``. Widened columns (INT -> BIGINT, ...) are probed
for values that no longer fit the old type.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from healer.evidence.probes import WidenProbe, widen_probe, widens
from healer.evidence.schema import name_similarity, words
from healer.runner import io

log = logging.getLogger(__name__)

MAX_LISTED = 500  # directory entries looked at per missing input
MAX_READ = 6  # candidates whose schema and profile are read
MAX_FINGERPRINTED = 40  # unlike-named places whose schema is read, per missing input
MAX_EXTRA = 0.5  # a fingerprint match may carry at most this share of columns the old input did not have


@dataclass(frozen=True)
class LocationCandidate:
    input: str
    kind: str  # "path" | "table"
    location: str  # absolute path, or db.table
    name_score: float  # of the last path component / table name against the old one
    schema: dict | None = None  # Spark schema JSON
    profile: dict | None = None  # bounded profile, same row limit as run profiles
    modified_ms: int | None = None  # newest file modification time (paths only)
    found_by: str = "name"  # "name" (it resembles the old name) | "fingerprint" (its columns match)
    widened: tuple[WidenProbe, ...] = ()  # columns wider than at the last good run, and whether values fit


@dataclass
class Moves:
    """input -> candidates, best named first; notes say what could not be searched."""

    candidates: dict[str, list[LocationCandidate]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# words a naming standard adds or drops around a table's name (``tbl_order`` -> ``orders``)
NAMING_AFFIXES = {"tbl", "tb", "dim", "fct", "fact", "src", "vw"}


def _standard_words(name: str) -> list[str]:
    """A name's words without naming-standard prefixes and with plurals made singular."""
    found = [w for w in words(name) if w not in NAMING_AFFIXES] or words(name)
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in found]


def naming_similarity(old: str, new: str) -> float:
    """``name_similarity``, but a move under a new naming standard (``tblOrder`` -> ``orders``,
    ``OrderItem`` -> ``fct_order_items``) scores 0.9: the same words once a prefix is dropped and
    plurals are made singular."""
    raw = name_similarity(old, new)
    return max(raw, 0.9) if _standard_words(old) == _standard_words(new) else raw


def basename(location: str, kind: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1] if kind == "path" else location.rsplit(".", 1)[-1]


def _dirs(fs, jpath) -> list:
    try:
        if not fs.exists(jpath):
            return []
        return [s.getPath() for s in fs.listStatus(jpath)
                if s.isDirectory() and not s.getPath().getName().startswith((".", "_"))]
    except Exception:
        log.debug("directory not listed", exc_info=True)
        return []


def nearby_paths(spark, old_path: str) -> list[str]:
    """Directories near ``old_path``: siblings, their children, the parent's siblings' children."""
    fs, jpath, _ = io.hadoop_fs(spark, old_path.rstrip("/"))
    parent = jpath.getParent()
    found: list[str] = []
    seen = set()

    def add(p):
        s = p.toString()
        if s not in seen and len(found) < MAX_LISTED:
            seen.add(s)
            found.append(s)

    siblings = _dirs(fs, parent) if parent is not None else []
    for s in siblings:
        add(s)
        for c in _dirs(fs, s):
            add(c)
    grand = parent.getParent() if parent is not None else None
    if grand is not None:
        for uncle in _dirs(fs, grand):
            if uncle.toString() == parent.toString():
                continue
            add(uncle)
            for c in _dirs(fs, uncle):
                add(c)
    old = jpath.toString()
    return [p for p in found if p != old]


def nearby_tables(spark, old_table: str) -> list[str]:
    out = []
    try:
        for db in spark.catalog.listDatabases():
            for t in spark.catalog.listTables(db.name):
                if not t.isTemporary:
                    out.append(f"{db.name}.{t.name}")
    except Exception:  # no catalog to list: no table candidates
        log.debug("catalog tables not listed", exc_info=True)
    old_full = old_table.lower() if "." in old_table else f"default.{old_table.lower()}"
    return [t for t in out if t.lower() != old_full]


def _written_by_pipelines(place: str, pipeline) -> bool:
    """Whether ``place`` is where pipelines write: the output's folder and everything in it
    (a pipeline's own output may look just like one of its inputs; it is never one)."""
    out = pipeline.output
    if out.table is not None:
        return place.lower() == out.table.lower()
    root = _local(out.path.rstrip("/")).rsplit("/", 1)[0]
    return _local(place).rstrip("/") == _local(out.path).rstrip("/") or _local(place).startswith(root + "/")


def _local(path: str) -> str:
    return path[len("file:"):] if path.startswith("file:") else path


def fingerprint_match(old_columns: dict[str, str], columns: dict[str, str]) -> dict[str, tuple[str, str]] | None:
    """The widened columns ({column: (old type, new type)}) when ``columns`` hold every one of
    ``old_columns`` with the same or a wider type and not many more; None when they do not."""
    now = {c.lower(): t for c, t in columns.items()}
    widened = {}
    for column, typ in old_columns.items():
        found = now.get(column.lower())
        if found is None or (found != typ and not widens(typ, found)):
            return None
        if found != typ:
            widened[column] = (typ, found)
    extra = len(set(now) - {c.lower() for c in old_columns})
    return widened if extra <= MAX_EXTRA * len(now) else None


def find_moves(spark, pipeline, missing: list[str], profile_rows: int = 10000,
               old_schemas: dict | None = None) -> Moves:
    """Candidates for every missing input of ``pipeline`` (input names in ``missing``);
    ``old_schemas`` (the last good run's input schemas) let unlike-named places in by fingerprint."""
    from healer.runner.profile import schema_columns, schema_json

    moves = Moves()
    for name in missing:
        spec = pipeline.inputs[name]
        kind = "path" if spec.path is not None else "table"
        old = spec.path if kind == "path" else spec.table
        try:
            places = nearby_paths(spark, old) if kind == "path" else nearby_tables(spark, old)
        except Exception as exc:
            log.debug("could not list near %s", old, exc_info=True)  # the note keeps only the class
            moves.notes.append(f"{name}: could not list near {old}: {type(exc).__name__}")
            continue
        old_base = basename(old, kind)
        # where pipelines write is never an input; nor is where another input of this pipeline lives
        others = {_local(x.path if x.path is not None else x.table or "").rstrip("/").lower()
                  for n, x in pipeline.inputs.items() if n != name}
        places = [p for p in places if not _written_by_pipelines(p, pipeline)
                  and _local(p).rstrip("/").lower() not in others and p.lower() not in others]
        scored = sorted(((naming_similarity(old_base, basename(p, kind)), p) for p in places), key=lambda x: -x[0])
        old_schema = (old_schemas or {}).get(name)
        old_columns = schema_columns(old_schema) if old_schema else None
        out = []
        for score, place in [x for x in scored if x[0] >= 0.5][:MAX_READ]:
            df = _read(spark, spec, kind, place)
            if df is not None:
                out.append(_candidate(spark, name, spec, kind, place, score, df, "name", old_columns, profile_rows))
        kept_name = any(c is not None and c.schema and fingerprint_match(old_columns, schema_columns(c.schema))
                        is not None for c in out) if old_columns else False
        if old_columns and not kept_name:  # nothing under a like name holds its columns: look at the rest
            matched = []
            for score, place in [x for x in scored if x[0] < 0.5][:MAX_FINGERPRINTED]:
                df = _read(spark, spec, kind, place)
                if df is not None and fingerprint_match(old_columns, schema_columns(schema_json(df))) is not None:
                    matched.append((score, place, df))
            if len(matched) > MAX_READ:
                moves.notes.append(f"{name}: {len(matched)} unlike-named places hold its columns; only "
                                   f"{MAX_READ} were profiled")
            for score, place, df in matched[:MAX_READ]:
                out.append(_candidate(spark, name, spec, kind, place, score, df, "fingerprint", old_columns,
                                      profile_rows))
        moves.candidates[name] = [c for c in out if c is not None]
    return moves


def _read(spark, spec, kind: str, place: str):
    """The DataFrame at ``place`` read as the job would read it there (format, options, CSV header
    defaults) with its schema resolved; None when it is not data in that format."""
    from healer.runner.profile import schema_json

    try:
        df = io.read_input(spark, replace(spec, path=place) if kind == "path" else replace(spec, table=place))
        schema_json(df)
        return df
    except Exception:  # does not read as the input's format: not a candidate
        log.debug("candidate %s does not read", place, exc_info=True)
        return None


def _candidate(spark, name, spec, kind, place, score, df, found_by, old_columns, profile_rows):
    from healer.runner.profile import profile, schema_columns, schema_json

    try:
        schema = schema_json(df)
        prof = profile(df, row_limit=profile_rows)
    except Exception:
        log.debug("candidate %s: the schema reads, the rows do not", place, exc_info=True)
        return None  # not a candidate
    widened = fingerprint_match(old_columns, schema_columns(schema)) if old_columns else None
    probes = ()
    if widened:
        try:
            probes = tuple(widen_probe(name, df, widened))
        except Exception as exc:  # no probe: the fixer falls back on the profile and says so
            log.debug("widen probe at %s failed: %s", place, exc)
    location = _local(place) if kind == "path" and spec.path and not spec.path.startswith("file:") else place
    return LocationCandidate(name, kind, location, round(score, 3), schema, prof,
                             _newest(spark, place) if kind == "path" else None, found_by, probes)


def _newest(spark, path: str) -> int | None:
    try:
        fs, jpath, _ = io.hadoop_fs(spark, path)
        files = fs.listFiles(jpath, True)
        newest = 0
        while files.hasNext():
            newest = max(newest, files.next().getModificationTime())
        return newest or None
    except Exception:
        log.debug("no modification time", exc_info=True)
        return None
