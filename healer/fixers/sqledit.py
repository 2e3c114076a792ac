"""SQL edits driven by sqlglot's syntax tree.

sqlglot finds the exact column references to change (by scope, so a CTE's column of the
same name is left alone) and their positions in the text; the text is spliced there, so
the diff a reviewer sees is the change and nothing else (comments and layout stay). The
result must re-parse with sqlglot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.scope import Scope, traverse_scope


@dataclass(frozen=True)
class ColumnRef:
    start: int  # first character of the reference (qualifier included)
    end: int  # one past its last character
    column: str
    qualified: bool
    projected_bare: bool  # a SELECT item on its own, so its output name comes from the column


def parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="spark")


def reparses(sql: str) -> bool:
    try:
        parse(sql)
        return True
    except ParseError:
        return False


def column_refs(sql: str, input_name: str, column: str, input_columns: dict[str, set[str]]) -> list[ColumnRef]:
    """References to ``input_name.column`` in the query, resolved per scope.

    ``input_columns`` maps each input to its column names (lower-case) at the last good
    run; an unqualified reference belongs to the input when it is the only source of the
    scope that has that column.
    """
    tree = parse(sql)
    target = column.lower()
    refs = []
    for scope in traverse_scope(tree):
        for col in scope.columns:
            if col.name.lower() != target or not _belongs(col, scope, input_name, input_columns):
                continue
            ident = col.this
            start, end = ident.meta.get("start"), ident.meta.get("end")
            if start is None:
                continue
            qualifier = col.args.get("table")
            if qualifier is not None and qualifier.meta.get("start") is not None:
                start = qualifier.meta["start"]
            refs.append(ColumnRef(start=start, end=end + 1, column=col.name, qualified=qualifier is not None,
                                  projected_bare=isinstance(col.parent, exp.Select) and col in col.parent.expressions))
    return sorted(set(refs), key=lambda r: r.start)


def _belongs(col: exp.Column, scope: Scope, input_name: str, input_columns: dict[str, set[str]]) -> bool:
    sources = scope.sources
    if col.table:
        source = sources.get(col.table)
        return isinstance(source, exp.Table) and source.name.lower() == input_name.lower()
    providers = []
    for alias, source in sources.items():
        if isinstance(source, exp.Table):
            if col.name.lower() in input_columns.get(source.name, set()) or len(sources) == 1:
                providers.append(source.name.lower())
        elif isinstance(source, Scope):
            names = {s.alias_or_name.lower() for s in source.expression.selects} if hasattr(source.expression, "selects") else set()
            if col.name.lower() in names:
                providers.append(f"scope:{alias}")
    return providers == [input_name.lower()]


def rewrite_refs(sql: str, refs: list[ColumnRef], replace: Callable[[str, ColumnRef], str], keep_name: bool = True) -> str:
    """Replace each reference's text with ``replace(text, ref)``; bare SELECT items keep
    their output name with ``AS <column>`` so downstream names never change."""
    out, last = [], 0
    for ref in refs:
        text = sql[ref.start:ref.end]
        new = replace(text, ref)
        if keep_name and ref.projected_bare:
            new = f"{new} AS {quote(ref.column)}"
        out.append(sql[last:ref.start])
        out.append(new)
        last = ref.end
    out.append(sql[last:])
    return "".join(out)


def replace_identifier(text: str, new_name: str) -> str:
    """``i.unit_price`` -> ``i.item_price``: only the column part changes."""
    qualifier, dot, _ = text.rpartition(".")
    return f"{qualifier}{dot}{quote(new_name)}"


def quote(name: str) -> str:
    """An identifier, backquoted only when Spark needs it."""
    return name if name.replace("_", "a").isalnum() and not name[0].isdigit() else f"`{name.replace('`', '``')}`"


def string_literal(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="spark")
