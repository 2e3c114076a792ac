"""Column lineage of a job: which output columns depend on which input columns.

SQL jobs get real column lineage from sqlglot. For PySpark jobs the module's syntax tree
gives the input columns the code names (string literals matching known columns). An output
the code derives by name — ``<expr>.alias("day")``, ``.withColumn("day", <expr>)``,
``.withColumnRenamed("a", "day")``, through variables and other derived names — gets the
input columns named in that derivation (a month from a date, a key from a split); an output
passed through under an input column's name gets that column. Anything else, or a
derivation the tree cannot see into (``F.expr("...")``, SQL text), may depend on every
column the job reads. The lineage stays inexact either way.
"""

from __future__ import annotations

import logging
import ast
from dataclasses import dataclass, field

from healer.runner.profile import schema_columns

log = logging.getLogger(__name__)


@dataclass
class Lineage:
    """output column -> set of "input.column" it is computed from."""

    outputs: dict[str, set[str]] = field(default_factory=dict)
    exact: bool = True  # False for PySpark or when sqlglot could not trace a column
    referenced: set[str] = field(default_factory=set)  # "input.column" the job reads

    def affected_by(self, sources: set[str]) -> list[str]:
        """Output columns computed from any of ``sources`` ("input.column", case-insensitive)."""
        low = {s.lower() for s in sources}
        return sorted(o for o, srcs in self.outputs.items() if {s.lower() for s in srcs} & low)

    def to_json(self) -> dict:
        return {"outputs": {k: sorted(v) for k, v in self.outputs.items()}, "exact": self.exact,
                "referenced": sorted(self.referenced)}


def sqlglot_schema(input_schemas: dict) -> dict:
    """{input: {column: type}} for sqlglot, from Spark schema JSON."""
    return {name: schema_columns(s) for name, s in input_schemas.items() if s}


def sql_lineage(sql: str, input_schemas: dict, output_columns: list[str] | None = None) -> Lineage:
    import sqlglot
    from sqlglot import exp
    from sqlglot.lineage import lineage

    schema = sqlglot_schema(input_schemas)
    result = Lineage()
    try:
        tree = sqlglot.parse_one(sql, read="spark")
    except Exception:
        log.debug("the job's SQL does not parse: its lineage is not exact", exc_info=True)
        return Lineage(exact=False)
    names = output_columns or [p.alias_or_name for p in tree.selects if p.alias_or_name and p.alias_or_name != "*"]
    for name in names:
        try:
            node = lineage(name, tree, schema=schema, dialect="spark")
        except Exception:  # sqlglot cannot trace it: the lineage says it is not exact
            log.debug("no lineage for output column %s", name, exc_info=True)
            result.exact = False
            result.outputs[name] = set()
            continue
        sources = set()
        for n in node.walk():
            if isinstance(n.expression, exp.Table) or not n.downstream:
                src = _leaf(n)
                if src:
                    sources.add(src)
        result.outputs[name] = sources
        result.referenced |= sources
    return result


def _leaf(node) -> str | None:
    from sqlglot import exp

    if isinstance(node.source, exp.Table) and not node.downstream:
        column = node.name.split(".")[-1]
        return f"{node.source.name}.{column}"
    return None


def python_lineage(source: str, input_schemas: dict, output_columns: list[str]) -> Lineage:
    """Input columns named in a PySpark module; every output possibly depends on all of them."""
    known = {}
    for name, cols in sqlglot_schema(input_schemas).items():
        for col in cols:
            known.setdefault(col.lower(), set()).add(f"{name}.{col}")
    referenced = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return Lineage(exact=False)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            referenced |= known.get(node.value.lower(), set())
        elif isinstance(node, ast.Call) and _call_name(node) in SQL_TEXT_CALLS:
            for arg in node.args:  # F.expr("split(sku, '-')[0]"), .where("paid_at IS NOT NULL")
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    referenced |= _sql_text_columns(arg.value, known) or set()
    derived, assigned = _derivations(tree)
    outputs = {}
    for o in output_columns:
        found = None
        if o.lower() in derived:
            found = _derived_sources(derived[o.lower()], derived, assigned, known, {o.lower()}, set())
        elif o.lower() in known:
            found = set(known[o.lower()])  # passed through under its own name
        outputs[o] = found & referenced if found else set(referenced)
    return Lineage(outputs=outputs, exact=False, referenced=referenced)


OPAQUE_CALLS = {"sql", "udf", "pandas_udf"}  # whole queries or code the tree cannot follow
SQL_TEXT_CALLS = {"expr", "selectExpr", "where", "filter"}  # SQL expressions as text: parsed for their columns


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _sql_text_columns(text: str, known: dict) -> set[str] | None:
    """Input columns a Spark SQL expression in a string names; None when it does not parse."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(text, read="spark")
    except Exception:
        log.debug("an SQL expression in a string does not parse: %.80s", text, exc_info=True)
        return None
    return {src for col in tree.find_all(exp.Column) for src in known.get(col.name.lower(), set())}


def _derivations(tree: ast.AST) -> tuple[dict[str, list[ast.AST]], dict[str, ast.AST]]:
    """(derived name -> the expressions that compute it, variable -> its last assigned value)."""
    derived: dict[str, list[ast.AST]] = {}
    assigned: dict[str, ast.AST] = {}

    def const(node):
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned[node.targets[0].id] = node.value
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, args = node.func.attr, node.args
        if attr in ("alias", "name") and len(args) == 1 and const(args[0]):
            derived.setdefault(const(args[0]).lower(), []).append(node.func.value)
        elif attr == "withColumn" and len(args) == 2 and const(args[0]):
            derived.setdefault(const(args[0]).lower(), []).append(args[1])
        elif attr == "withColumnRenamed" and len(args) == 2 and const(args[0]) and const(args[1]):
            derived.setdefault(const(args[1]).lower(), []).append(args[0])
    return derived, assigned


def _derived_sources(exprs: list[ast.AST], derived: dict, assigned: dict, known: dict, names: set[str],
                     variables: set[str], depth: int = 0) -> set[str] | None:
    """Input columns ("input.column") named in the expressions that derive a column, following
    variables and other derived names; None when one of them cannot be followed."""
    if depth > 12:
        return None
    out: set[str] = set()
    for expr in exprs:
        for n in ast.walk(expr):
            inner = None
            if isinstance(n, ast.Call) and _call_name(n) in OPAQUE_CALLS:
                return None
            if isinstance(n, ast.Call) and _call_name(n) in SQL_TEXT_CALLS:
                for arg in n.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found = _sql_text_columns(arg.value, known)
                        if found is None:
                            return None
                        out |= found
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                name = n.value.lower()
                out |= known.get(name, set())  # an input column, or a derived one of the same name: both
                if name in derived and name not in names:
                    inner = _derived_sources(derived[name], derived, assigned, known, names | {name}, variables,
                                             depth + 1)
            elif isinstance(n, ast.Attribute) and n.attr.lower() in known and not isinstance(n.ctx, ast.Store):
                out |= known[n.attr.lower()]  # df.amount
            elif isinstance(n, ast.Name) and n.id in assigned and n.id not in variables:
                inner = _derived_sources([assigned[n.id]], derived, assigned, known, names, variables | {n.id},
                                         depth + 1)
            if inner is None and (isinstance(n, ast.Name) and n.id in assigned and n.id not in variables
                                  or isinstance(n, ast.Constant) and isinstance(n.value, str)
                                  and n.value.lower() in derived and n.value.lower() not in names):
                return None
            out |= inner or set()
    return out
