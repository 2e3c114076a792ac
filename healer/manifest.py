"""The pipeline contract: ``healer.yml`` loaded into typed, validated records.

Every error names the file, the pipeline and the key, in one line, so a user can go
straight to the mistake::

    healer.yml: pipeline 'revenue': inputs.orders.fromat: unknown key (allowed: format, options, path, table)
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

import yaml

from healer.errors import ConfigError

MANIFEST_NAME = "healer.yml"
FORMATS = ("parquet", "csv", "json", "orc")
# healing: the policy blocks (repo and pipeline level), read and checked by healer.governance
PIPELINE_KEYS = {"job", "inputs", "output", "expectations", "description", "owner", "key", "healing"}
INPUT_KEYS = {"path", "table", "format", "options"}
OUTPUT_KEYS = {"path", "table", "format", "options", "partition_by"}
TOP_KEYS = {"pipelines", "vars", "healing"}

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # a scheme (file:/x, s3a://b/x), as Hadoop reads one
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class InputSpec:
    """Where a logical input name reads from: a path with a format, or a catalog table."""

    name: str
    path: str | None = None
    table: str | None = None
    format: str = "parquet"
    options: Mapping[str, str] = field(default_factory=dict)
    declared: bool = True  # False when sqlglot found it in the SQL but healer.yml omits it

    @property
    def location(self) -> str:
        return self.path if self.path is not None else f"table {self.table}"


@dataclass(frozen=True)
class OutputSpec:
    """Where the result is published."""

    path: str | None = None
    table: str | None = None
    format: str = "parquet"
    options: Mapping[str, str] = field(default_factory=dict)
    partition_by: tuple[str, ...] = ()

    @property
    def location(self) -> str:
        return self.path if self.path is not None else f"table {self.table}"


@dataclass(frozen=True)
class Pipeline:
    """One pipeline of a manifest, with paths resolved against the repo root."""

    name: str
    job: str  # relative to the repo root, as written in healer.yml
    kind: str  # "sql" or "python"
    inputs: Mapping[str, InputSpec]
    output: OutputSpec
    expectations: str | None
    root: Path
    description: str = ""
    key: tuple[str, ...] = ()  # the output's key columns, for the data diff (else a uniqueness expectation's)

    @property
    def job_path(self) -> Path:
        return self.root / self.job

    @property
    def expectations_path(self) -> Path | None:
        return self.root / self.expectations if self.expectations else None

    @property
    def undeclared_inputs(self) -> list[str]:
        return sorted(n for n, spec in self.inputs.items() if not spec.declared)

    def job_source(self) -> str:
        return self.job_path.read_text()


@dataclass(frozen=True)
class Manifest:
    """A loaded ``healer.yml``."""

    path: Path
    pipelines: Mapping[str, Pipeline]

    @property
    def root(self) -> Path:
        return self.path.parent

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called ``name``, or a ConfigError listing the known ones."""
        try:
            return self.pipelines[name]
        except KeyError:
            known = ", ".join(sorted(self.pipelines)) or "none"
            raise ConfigError(f"{self.path}: unknown pipeline '{name}' (known: {known})") from None


class _Where:
    """Builds the 'file: pipeline 'x': key' prefix of an error."""

    def __init__(self, path: Path, pipeline: str | None = None):
        self.path, self.pipeline = path, pipeline

    def error(self, key: str | None, message: str) -> ConfigError:
        parts = [str(self.path)]
        if self.pipeline:
            parts.append(f"pipeline '{self.pipeline}'")
        if key:
            parts.append(key)
        return ConfigError(": ".join(parts) + f": {message}")


def interpolate(value: str, env: Mapping[str, str], where: _Where, key: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` from ``env``; an undefined variable is an error."""

    def sub(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if default is not None and not env.get(name):
            return default  # as in the shell, ${VAR:-x} also covers a variable set to ""
        if name in env:
            return env[name]
        raise where.error(key, f"undefined variable ${{{name}}} (set it in the environment or under 'vars:')")

    return _VAR.sub(sub, value)


def load_manifest(repo: str | os.PathLike, env: Mapping[str, str] | None = None,
                  data_root: str | os.PathLike | None = None) -> Manifest:
    """Load and validate ``healer.yml`` at the root of ``repo`` (or the file itself).

    Relative data paths resolve against the manifest's folder, or ``data_root`` when given
    (a healer workspace is a clone elsewhere, but the data is where the pipeline ran).
    """
    path = Path(repo)
    if path.is_dir():
        path = path / MANIFEST_NAME
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: no {MANIFEST_NAME} found")
    raw = read_yaml(path, ConfigError)
    where = _Where(path)
    data_base = Path(data_root).resolve() if data_root else path.parent
    if not isinstance(raw, dict):
        raise where.error(None, "expected a mapping with a 'pipelines' key")
    _reject_unknown(raw, TOP_KEYS, where, None)
    variables = raw.get("vars") or {}
    if not isinstance(variables, dict):
        raise where.error("vars", "expected a mapping of NAME: value")
    # The environment wins over defaults written in the manifest.
    merged = {str(k): str(v) for k, v in variables.items()}
    merged.update(os.environ if env is None else env)
    pipelines_raw = raw.get("pipelines")
    if not isinstance(pipelines_raw, dict) or not pipelines_raw:
        raise where.error("pipelines", "expected a non-empty mapping of pipeline name to definition")
    pipelines = {
        str(name): _load_pipeline(str(name), body, path.parent, _Where(path, str(name)), merged, data_base)
        for name, body in pipelines_raw.items()
    }
    return Manifest(path=path, pipelines=pipelines)


def read_yaml(path: Path, error: type[ConfigError]):
    """Parse a YAML file; a syntax error is ``error`` naming the file, line and problem."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: invalid YAML{at}: {problem}") from None


def _reject_unknown(body: Mapping, allowed: set[str], where: _Where, prefix: str | None) -> None:
    for key in body:
        if key not in allowed:
            full = f"{prefix}.{key}" if prefix else str(key)
            raise where.error(full, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _load_pipeline(name: str, body: Any, root: Path, where: _Where, env: Mapping[str, str], data_base: Path) -> Pipeline:
    if not isinstance(body, dict):
        raise where.error(None, "expected a mapping with job, inputs, output, expectations")
    _reject_unknown(body, PIPELINE_KEYS, where, None)
    job = body.get("job")
    if not isinstance(job, str) or not job:
        raise where.error("job", "required: a .sql file or a .py module, relative to the repo root")
    job = interpolate(job, env, where, "job")
    job_path = _inside_repo(root, job, where, "job")
    if not job_path.is_file():
        raise where.error("job", f"job file not found: {job_path}")
    if job_path.suffix == ".sql":
        kind = "sql"
    elif job_path.suffix == ".py":
        kind = "python"
    else:
        raise where.error("job", f"unknown job kind '{job_path.suffix}' (expected .sql or .py)")

    inputs: dict[str, InputSpec] = {}
    raw_inputs = body.get("inputs") or {}
    if not isinstance(raw_inputs, dict):
        raise where.error("inputs", "expected a mapping of logical name to {path, format} or {table}")
    for input_name, spec in raw_inputs.items():
        inputs[str(input_name)] = _load_input(str(input_name), spec, where, env, data_base)

    if kind == "sql":
        referenced = sql_job_tables(job_path.read_text(), where)
        declared = {n.lower() for n in inputs}
        for table in referenced:
            if table.lower() not in declared:  # Spark resolves names case-insensitively
                inputs[table] = InputSpec(name=table, table=table, declared=False)
    else:
        _check_transform(job_path, where)
        if not inputs:
            raise where.error("inputs", "a PySpark job must declare its inputs")

    output = _load_output(body.get("output"), where, env, data_base)
    clash = output_overlap(output, inputs.values())
    if clash:
        raise where.error("output", clash)
    expectations = body.get("expectations")
    if expectations is not None:
        if not isinstance(expectations, str):
            raise where.error("expectations", "expected a path to an expectations YAML file")
        expectations = interpolate(expectations, env, where, "expectations")
        expectations_path = _inside_repo(root, expectations, where, "expectations")
        if not expectations_path.is_file():
            raise where.error("expectations", f"expectations file not found: {expectations_path}")
    return Pipeline(
        name=name,
        job=job,
        kind=kind,
        inputs=inputs,
        output=output,
        expectations=expectations,
        root=root,
        description=str(body.get("description") or ""),
        key=_output_key(body.get("key"), where),
    )


def _output_key(raw: Any, where: _Where) -> tuple[str, ...]:
    """``key:``, the output's key columns (a name or a list): what the data diff matches rows on."""
    if raw is None:
        return ()
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise where.error("key", "expected a column name or a list of column names")
    return tuple(names)


def _inside_repo(root: Path, relative: str, where: _Where, key: str) -> Path:
    """``relative`` resolved against the repo root, symlinks included; refused when it lands
    outside the repo (a manifest must not make Healer read, patch or run files elsewhere)."""
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise where.error(key, f"{relative} resolves to {resolved}, outside the repo {root}: "
                               f"refused (a pipeline's files must live in its repo)")
    return resolved


# Hadoop names one store several ways: s3, s3n and s3a reach the same buckets.
_SCHEME_ALIASES = {"s3": "s3a", "s3n": "s3a"}
_GLOB = re.compile(r"[*?\[{]")


def normalize_location(path: str) -> tuple[str, str]:
    """A data path as (store, absolute path) for comparing locations.

    Local paths and ``file:`` URIs become the real path (``..``, ``.``, repeated and trailing
    slashes and symlinks resolved) on the store ``"file"``. Other URIs (``s3a://bucket/x``,
    ``hdfs://nn/x``) are compared textually: lower-cased scheme (s3/s3n/s3a as one) and
    authority, with the path normalised the same way minus symlinks. A glob's wildcard tail is
    dropped, so ``/data/orders/*.parquet`` stands for ``/data/orders``.
    """
    parts = urlsplit(path)
    scheme = parts.scheme.lower()
    if len(scheme) <= 1 or scheme == "file":  # no scheme (a one-letter one would be a drive)
        local = unquote(parts.path) if scheme == "file" else path
        return "file", os.path.realpath(_before_glob(local) or "/")
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    where = posixpath.normpath("/" + _before_glob(parts.path).lstrip("/"))
    return f"{scheme}://{parts.netloc.lower()}", "/" + where.lstrip("/")


def _before_glob(path: str) -> str:
    kept = []
    for part in path.split("/"):
        if _GLOB.search(part):
            break
        kept.append(part)
    return "/".join(kept)


def _same_store(a: str, b: str) -> bool:
    if a == b:
        return True
    # hdfs:///x means the default namenode, whichever that is: assume it could be the other one
    scheme_a, _, host_a = a.partition("://")
    scheme_b, _, host_b = b.partition("://")
    return scheme_a == scheme_b and not (host_a and host_b)


def _table_key(name: str) -> str:
    """A catalog table name as Spark resolves it: case-insensitive, unqualified means ``default``."""
    parts = [p.strip().strip("`").lower() for p in name.split(".")]
    if len(parts) == 3 and parts[0] == "spark_catalog":
        parts = parts[1:]
    if len(parts) == 1:
        parts = ["default", *parts]
    return ".".join(parts)


def output_overlap(output: OutputSpec, inputs) -> str | None:
    """Why publishing ``output`` would overwrite one of ``inputs``, or None when it would not.

    A path output equal to, inside or containing an input path, or an output table that is an
    input table, replaces (or deletes) data the job reads.
    """
    for spec in inputs:
        if output.table is not None and spec.table is not None:
            if _table_key(output.table) == _table_key(spec.table):
                return (f"output table {output.table} is input '{spec.name}' (table {spec.table}): "
                        "publishing would replace the input")
        if output.path is None or spec.path is None:
            continue
        (out_store, out), (in_store, src) = normalize_location(output.path), normalize_location(spec.path)
        if not _same_store(out_store, in_store):
            continue
        out_p, in_p = PurePosixPath(out), PurePosixPath(src)
        if out_p == in_p:
            relation, effect = "is the same location as", "replace"
        elif out_p.is_relative_to(in_p):
            relation, effect = "lies inside", "write into"
        elif in_p.is_relative_to(out_p):
            relation, effect = "contains", "delete"
        else:
            continue
        return (f"output {output.path} {relation} input '{spec.name}' ({spec.path}): "
                f"publishing would {effect} the input")
    return None


def _location(spec: Mapping, where: _Where, key: str, env: Mapping[str, str], allowed: set[str], data_base: Path):
    _reject_unknown(spec, allowed, where, key)
    path, table = spec.get("path"), spec.get("table")
    if (path is None) == (table is None):
        raise where.error(key, "give exactly one of 'path' (with 'format') or 'table'")
    fmt = spec.get("format", "parquet")
    if fmt not in FORMATS:
        raise where.error(f"{key}.format", f"unknown format '{fmt}' (expected one of: {', '.join(FORMATS)})")
    if table is not None and "format" in spec:
        raise where.error(f"{key}.format", "a catalog table has no format: drop 'format' or use 'path'")
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        raise where.error(f"{key}.options", "expected a mapping of Spark reader/writer options")
    if path is not None:
        path = interpolate(str(path), env, where, f"{key}.path")
        if not _URI.match(path) and not path.startswith("/"):
            path = str((data_base / path).resolve())  # relative to the repo root, not the cwd
    if table is not None:
        table = interpolate(str(table), env, where, f"{key}.table")
    return path, table, fmt, {str(k): str(v) for k, v in options.items()}


def _load_input(name: str, spec: Any, where: _Where, env: Mapping[str, str], data_base: Path) -> InputSpec:
    key = f"inputs.{name}"
    if not isinstance(spec, dict):
        raise where.error(key, "expected {path: ..., format: ...} or {table: ...}")
    path, table, fmt, options = _location(spec, where, key, env, INPUT_KEYS, data_base)
    return InputSpec(name=name, path=path, table=table, format=fmt, options=options)


def _load_output(spec: Any, where: _Where, env: Mapping[str, str], data_base: Path) -> OutputSpec:
    if not isinstance(spec, dict):
        raise where.error("output", "required: {path: ..., format: ...} or {table: ...}")
    path, table, fmt, options = _location(spec, where, "output", env, OUTPUT_KEYS, data_base)
    partition_by = spec.get("partition_by") or []
    if isinstance(partition_by, str):
        partition_by = [partition_by]
    return OutputSpec(path=path, table=table, format=fmt, options=options, partition_by=tuple(partition_by))


def sql_job_tables(sql: str, where: _Where | None = None) -> list[str]:
    """Tables a Spark SQL job reads, found with sqlglot (CTE names excluded).

    Raises ConfigError when the text parses but is not exactly one query. When sqlglot
    cannot parse it at all, Spark is the judge: the run fails at the job stage with
    Spark's own error instead.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    where = where or _Where(Path("<sql>"))
    try:
        statements = [s for s in sqlglot.parse(sql, read="spark") if s is not None]
    except (ParseError, TokenError):
        return []
    if len(statements) != 1:
        raise where.error("job", f"a SQL job must be exactly one SELECT statement (found {len(statements)} statements)")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise where.error("job", f"a SQL job must be a single SELECT query (found {tree.key.upper()})")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names: list[str] = []
    for table in tree.find_all(exp.Table):
        if not table.name or (table.name.lower() in ctes and not table.db):
            continue
        full = ".".join(p for p in (table.catalog, table.db, table.name) if p)
        if full.lower() not in {n.lower() for n in names}:
            names.append(full)
    return names


def _check_transform(job_path: Path, where: _Where) -> None:
    try:
        tree = ast.parse(job_path.read_text(), filename=str(job_path))
    except SyntaxError as exc:
        raise where.error("job", f"Python syntax error in {job_path} line {exc.lineno}: {exc.msg}") from None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "transform":
            if len(node.args.args) + len(node.args.posonlyargs) < 1:
                raise where.error("job", f"{job_path}: transform must take the SparkSession: def transform(spark)")
            return
    raise where.error("job", f"{job_path}: a PySpark job must define a top-level 'def transform(spark)' returning a DataFrame")
