"""What a job does with its inputs, read from its syntax tree: casts, divisions, JSON paths.

Fixers that make a job tolerate new values need to know where the job casts, divides or
extracts, and which input column each of those reads; the evidence probes need the same
to count the rows such a repair would touch. SQL jobs are read with sqlglot (scopes
followed through CTEs and derived tables); PySpark jobs with ``ast`` (``F.col("x").cast``,
``a / b``, ``F.get_json_object``).
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

log = logging.getLogger(__name__)

# PySpark type classes -> Spark SQL type names
PY_TYPES = {"IntegerType": "int", "LongType": "bigint", "ShortType": "smallint", "ByteType": "tinyint",
            "DoubleType": "double", "FloatType": "float", "DateType": "date", "TimestampType": "timestamp",
            "StringType": "string", "BooleanType": "boolean", "TimestampNTZType": "timestamp_ntz"}
DIVISIONS = (exp.Div, exp.IntDiv, exp.Mod)


@dataclass(frozen=True)
class CastUse:
    """An unsafe cast of values read from one input: ``CAST(<operand> AS <type>)``."""

    input: str | None  # None when the operand's columns are not all from one input
    columns: tuple[str, ...]  # input columns in the operand
    operand: str  # Spark SQL over the input's own columns (no qualifiers), for probing
    type: str  # Spark SQL type, lower-case: int, date, decimal(10,2)


@dataclass(frozen=True)
class DivisorUse:
    """A division whose divisor reads input columns."""

    columns: tuple[tuple[str | None, str], ...]  # (input, column)
    divisor: str  # the divisor's text (for messages)
    guarded: bool  # already NULLIF(..., 0) / a non-zero literal


@dataclass(frozen=True)
class JsonPathUse:
    input: str | None
    column: str
    path: str  # '$.a.b'


# -- SQL ---------------------------------------------------------------------------------------

def parse_sql(sql: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(sql, read="spark")
    except Exception:
        log.debug("the job's SQL does not parse", exc_info=True)
        return None


def column_scopes(tree: exp.Expression) -> dict[int, Scope]:
    """id(column node) -> the scope it is resolved in."""
    out = {}
    for scope in traverse_scope(tree):
        for col in scope.columns:
            out[id(col)] = scope
    return out


def resolve_column(col: exp.Column, scope: Scope | None, input_columns: dict[str, set[str]],
                   depth: int = 0) -> tuple[str, str] | None:
    """(input, column) a reference reads: through aliases, CTEs and derived tables that
    project the column bare (or renamed with AS); None when it is computed or unknown."""
    if scope is None or depth > 8:
        return None
    name = col.name.lower()
    sources = scope.sources
    if col.table:
        source = sources.get(col.table)
        candidates = [source] if source is not None else []
    else:
        candidates = []
        for source in sources.values():
            if isinstance(source, exp.Table):
                if name in input_columns.get(source.name, set()) or len(sources) == 1:
                    candidates.append(source)
            elif isinstance(source, Scope) and _projects(source, name) is not None:
                candidates.append(source)
    if len(candidates) != 1:
        return None
    source = candidates[0]
    if isinstance(source, exp.Table):
        return (source.name, col.name)
    inner = _projects(source, name)
    if isinstance(inner, exp.Column):
        return resolve_column(inner, source, input_columns, depth + 1)
    return None


def _projects(scope: Scope, name: str):
    """The expression a scope's SELECT projects under ``name`` (unaliased), or None."""
    selects = getattr(scope.expression, "selects", None) or []
    for sel in selects:
        if sel.alias_or_name.lower() == name:
            return sel.this if isinstance(sel, exp.Alias) else sel
    return None


def is_unsafe_cast(node: exp.Expression) -> bool:
    """A CAST that raises on bad values (Spark's ANSI CAST), not TRY_CAST."""
    if isinstance(node, exp.TryCast):
        return not node.args.get("safe")
    return isinstance(node, exp.Cast)


def sql_casts(sql: str, input_columns: dict[str, set[str]]) -> list[CastUse]:
    tree = parse_sql(sql)
    if tree is None:
        return []
    scopes = column_scopes(tree)
    out = []
    for node in tree.find_all(exp.Cast):
        if not is_unsafe_cast(node):
            continue
        cols = list(node.this.find_all(exp.Column))
        if not cols:
            continue
        resolved = [resolve_column(c, scopes.get(id(c)), input_columns) for c in cols]
        inputs = {r[0] for r in resolved if r}
        if None in resolved or len(inputs) != 1:
            out.append(CastUse(None, tuple(c.name for c in cols), node.this.sql("spark"), node.to.sql("spark").lower()))
            continue
        out.append(CastUse(inputs.pop(), tuple(r[1] for r in resolved), unqualified(node.this, [r[1] for r in resolved]),
                           node.to.sql("spark").lower()))
    return out


def unqualified(expression: exp.Expression, names: list[str]) -> str:
    """Spark SQL of ``expression`` with its columns (in ``find_all`` order) renamed to ``names``."""
    copy = expression.copy()
    columns = list(copy.find_all(exp.Column))
    for col, name in zip(columns, names):
        new = exp.column(name, quoted=True)
        if col is copy:
            return new.sql("spark")
        col.replace(new)
    return copy.sql("spark")


def divisor_guarded(divisor: exp.Expression) -> bool:
    """True when a divisor cannot be a new zero: a non-zero literal, NULLIF(x, 0), no columns."""
    while isinstance(divisor, exp.Paren):
        divisor = divisor.this
    if isinstance(divisor, exp.Literal):
        try:
            return float(divisor.this) != 0
        except ValueError:
            return False
    if isinstance(divisor, exp.Nullif):
        return True
    return not list(divisor.find_all(exp.Column))


def sql_divisors(sql: str, input_columns: dict[str, set[str]]) -> list[DivisorUse]:
    tree = parse_sql(sql)
    if tree is None:
        return []
    scopes = column_scopes(tree)
    out = []
    for node in tree.find_all(*DIVISIONS):
        divisor = node.expression
        cols = []
        for c in divisor.find_all(exp.Column):
            r = resolve_column(c, scopes.get(id(c)), input_columns)
            cols.append(r if r else (None, c.name))
        out.append(DivisorUse(tuple(cols), divisor.sql("spark"), divisor_guarded(divisor)))
    return out


def sql_json_paths(sql: str, input_columns: dict[str, set[str]]) -> list[JsonPathUse]:
    tree = parse_sql(sql)
    if tree is None:
        return []
    scopes = column_scopes(tree)
    out = []
    for node in tree.find_all(exp.JSONExtractScalar, exp.JSONExtract):
        col, path = node.this, node.expression
        if not isinstance(col, exp.Column):
            continue
        r = resolve_column(col, scopes.get(id(col)), input_columns)
        text = path.sql("spark").strip("'") if path is not None else ""
        out.append(JsonPathUse(r[0] if r else None, r[1] if r else col.name, text))
    return out


# -- PySpark -------------------------------------------------------------------------------------

def _parse_py(source: str) -> ast.AST | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def py_call_name(call: ast.Call) -> str | None:
    """The name a call calls: ``F.col(...)`` and ``col(...)`` -> "col"; None for other callees."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def py_column_name(node: ast.AST) -> str | None:
    """``F.col("x")`` / ``col("x")`` / ``F.column("x")`` -> "x"."""
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str) and py_call_name(node) in ("col", "column")):
        return node.args[0].value
    return None


def py_type(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.lower()
    if isinstance(node, ast.Call):
        name = py_call_name(node)
        if name in PY_TYPES:
            return PY_TYPES[name]
        if name == "DecimalType":
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            return f"decimal({args[0]},{args[1]})" if len(args) == 2 else "decimal(10,0)"
    return None


def py_casts(source: str) -> list[tuple[ast.Call, str, str]]:
    """(call node, column, type) for ``<col("x")>.cast(<type>)`` in a PySpark module."""
    tree = _parse_py(source)
    out = []
    for node in ast.walk(tree) if tree else []:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "cast"
                and len(node.args) == 1):
            column = py_column_name(node.func.value)
            typ = py_type(node.args[0])
            if column and typ:
                out.append((node, column, typ))
    return out


def py_names_in(node: ast.AST, known: set[str]) -> list[str]:
    """Column names (string constants that are known columns) inside an expression."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and n.value.lower() in known]


def py_divisors(source: str, known: set[str]) -> list[tuple[ast.BinOp, list[str]]]:
    """(division node, columns in its divisor) for ``a / b`` and ``a % b`` over columns."""
    tree = _parse_py(source)
    out = []
    for node in ast.walk(tree) if tree else []:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mod, ast.FloorDiv)):
            if isinstance(node.right, ast.Constant):
                continue
            cols = py_names_in(node.right, known)
            out.append((node, cols))
    return out


def py_json_paths(source: str) -> list[tuple[ast.Constant, str, str]]:
    """(path constant node, column, path) for ``F.get_json_object(F.col("c"), "$.a")``."""
    tree = _parse_py(source)
    out = []
    for node in ast.walk(tree) if tree else []:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_json_object"
                and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)):
            col = node.args[0]
            column = py_column_name(col) or (col.value if isinstance(col, ast.Constant) else None)
            if column:
                out.append((node.args[1], column, node.args[1].value))
    return out
