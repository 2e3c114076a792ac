"""PySpark edits driven by the module's syntax tree.

Jobs read inputs with ``spark.table("<logical name>")``; a repair that changes how an
input is read (rename a column back, parse a retyped one) wraps that call, so the rest of
the job sees the input exactly as it looked at the last good run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def _offsets(source: str) -> list[int]:
    starts, total = [], 0
    for line in source.splitlines(True):
        starts.append(total)
        total += len(line.encode("utf-8"))
    return starts


def _span(source: str, node: ast.AST) -> Span:
    # ast gives byte offsets per line; convert through utf-8 to character offsets.
    starts = _offsets(source)
    data = source.encode("utf-8")
    start = starts[node.lineno - 1] + node.col_offset
    end = starts[node.end_lineno - 1] + node.end_col_offset
    return Span(len(data[:start].decode("utf-8")), len(data[:end].decode("utf-8")))


def table_reads(source: str, input_name: str) -> list[Span]:
    """Spans of ``<x>.table("input_name")`` calls (``spark.table``, ``spark.read.table``)."""
    tree = ast.parse(source)
    spans = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "table"
                and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == input_name):
            spans.append(_span(source, node))
    return sorted(spans, key=lambda s: s.start)


def wrap_reads(source: str, input_name: str, suffix: str) -> str | None:
    """Append ``suffix`` (e.g. ``.withColumnRenamed("a", "b")``) to every read of the input."""
    spans = table_reads(source, input_name)
    if not spans:
        return None
    out, last = [], 0
    for span in spans:
        out += [source[last:span.end], suffix]
        last = span.end
    out.append(source[last:])
    return "".join(out)


def functions_alias(source: str) -> str | None:
    """The name ``pyspark.sql.functions`` is imported as, if it is."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "pyspark.sql":
            for a in node.names:
                if a.name == "functions":
                    return a.asname or a.name
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "pyspark.sql.functions" and a.asname:
                    return a.asname
    return None


def ensure_functions_import(source: str) -> tuple[str, str]:
    """(source, alias): adds ``from pyspark.sql import functions as F`` after the imports if missing."""
    alias = functions_alias(source)
    if alias:
        return source, alias
    tree = ast.parse(source)
    last_import = max((n.end_lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))), default=0)
    if last_import == 0 and tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(getattr(tree.body[0], "value", None), ast.Constant):
        last_import = tree.body[0].end_lineno  # after the module docstring
    lines = source.splitlines(True)
    lines.insert(last_import, "from pyspark.sql import functions as F\n")
    return "".join(lines), "F"


def py_string(value: str) -> str:
    return repr(value) if '"' in value else f'"{value}"'


def parses(source: str) -> bool:
    try:
        ast.parse(source)
        return True
    except SyntaxError:
        return False


def node_span(source: str, node: ast.AST) -> Span:
    """Character span of an ``ast`` node in ``source``."""
    return _span(source, node)


def replace_spans(source: str, edits: list[tuple[Span, str]]) -> str | None:
    """``source`` with each span replaced by its text; None when spans overlap."""
    out, last = [], 0
    for span, text in sorted(edits, key=lambda e: e[0].start):
        if span.start < last:
            return None
        out += [source[last:span.start], text]
        last = span.end
    out.append(source[last:])
    return "".join(out)


def string_literals(source: str) -> list[tuple[ast.Constant, Span, int]]:
    """Plain string literals whose text between the quotes is exactly their value:
    (node, span of the value inside the quotes, index of the call argument or -1).

    Only those can be edited by splicing text (no escapes, no f-strings, no implicit
    concatenation); the caller gets the span of the value itself.
    """
    out = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        span = _span(source, node)
        text = source[span.start:span.end]
        prefix = ""
        while text and text[0] in "rRuU":
            prefix += text[0]
            text = text[1:]
        for quote in ('"""', "'''", '"', "'"):
            if text.startswith(quote) and text.endswith(quote) and len(text) >= 2 * len(quote):
                inner = text[len(quote):-len(quote)]
                if inner == node.value and "\\" not in inner:
                    start = span.start + len(prefix) + len(quote)
                    out.append((node, Span(start, start + len(inner)), -1))
                break
    return out


def read_followers(source: str, input_name: str) -> list[tuple[Span, str | None]]:
    """Each ``<x>.table("input_name")`` read with the method called on it directly
    (``spark.table("orders").dropDuplicates(...)`` -> ``"dropDuplicates"``), or None."""
    tree = ast.parse(source)
    followers: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call):
            followers[id(node.value)] = node.attr
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "table"
                and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == input_name):
            out.append((_span(source, node), followers.get(id(node))))
    return sorted(out, key=lambda r: r[0].start)


def append_at(source: str, spans: list[Span], suffix: str) -> str | None:
    """``suffix`` appended right after each span (e.g. after chosen reads of an input)."""
    return replace_spans(source, [(Span(s.end, s.end), suffix) for s in spans]) if spans else None
