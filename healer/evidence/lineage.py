"""Column lineage of a job: which output columns depend on which input columns.

SQL jobs get real column lineage from sqlglot. For PySpark jobs the module's syntax tree
gives the input columns the code names (string literals matching known columns); which
output each feeds is not derived, so every output is treated as possibly affected.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from healer.runner.profile import schema_columns


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
        return Lineage(exact=False)
    names = output_columns or [p.alias_or_name for p in tree.selects if p.alias_or_name and p.alias_or_name != "*"]
    for name in names:
        try:
            node = lineage(name, tree, schema=schema, dialect="spark")
        except Exception:
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
    return Lineage(outputs={o: set(referenced) for o in output_columns}, exact=False, referenced=referenced)
