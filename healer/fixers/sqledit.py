"""SQL edits driven by sqlglot's syntax tree.

sqlglot finds the exact column references to change (by scope, so a CTE's column of the
same name is left alone) and their positions in the text; the text is spliced there, so
the diff a reviewer sees is the change and nothing else (comments and layout stay). The
result must re-parse with sqlglot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.scope import Scope, traverse_scope

log = logging.getLogger(__name__)


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


# -- splicing a tree transform back into the original text ------------------------------------
#
# A fixer transforms the parsed tree (wrap a divisor in NULLIF, CAST -> TRY_CAST, transpile
# from another dialect). The text it proposes must be the original with only the changed
# tokens replaced, so comments, layout and casing survive and the diff is the fix:
#
#   original ──tokens──┐
#                      ├─ align: which original token each generated token is
#   tree.sql(read) ────┘
#   tree.sql(read) ──tokens──┐
#                            ├─ align: which tokens the transform changed
#   new_tree.sql(write) ─────┘
#
# Each changed run of tokens is spliced into the original at the position of the tokens it
# replaces. The result must parse and render exactly as ``new_tree`` does, or nothing is
# returned and the caller decides (fall back to the generated text, or decline).

_CLAUSES = {"LIMIT", "WHERE", "GROUP", "HAVING", "ORDER", "QUALIFY", "WINDOW", "FROM"}
_LITERAL_TOKENS = {"STRING", "RAW_STRING", "NATIONAL_STRING", "BIT_STRING", "BYTE_STRING", "HEX_STRING",
                   "UNICODE_STRING", "HEREDOC_STRING", "IDENTIFIER"}


def _tokens(sql: str, dialect: str):
    from sqlglot.dialects.dialect import Dialect

    return Dialect.get_or_raise(dialect).tokenize(sql)


def _keys(sql: str, tokens) -> list[str]:
    out = []
    for t in tokens:
        raw = sql[t.start:t.end + 1]
        out.append(raw if t.token_type.name in _LITERAL_TOKENS else raw.upper())
    return out


def canonical(sql: str, dialect: str = "spark") -> str | None:
    """The query as sqlglot renders it, without comments: equal texts mean the same tree."""
    try:
        return sqlglot.parse_one(sql, read=dialect).sql(dialect=dialect, comments=False)
    except Exception:
        log.debug("no canonical %s text: the query does not parse", dialect, exc_info=True)
        return None


def splice(original: str, read: str, generated_before: str, generated_after: str, write: str = "spark") -> str | None:
    """``original`` with the token changes between two generated texts applied in place.

    ``generated_before`` is the parsed original rendered in ``read``; ``generated_after``
    the transformed tree rendered in ``write``. Where the generator itself normalized the
    original (``IFNULL`` rendered ``COALESCE``, ``x::date`` rendered ``CAST``), a change that
    touches those tokens takes the whole normalized stretch. Returns None when the result
    does not render exactly like ``generated_after``.
    """
    import difflib

    o_tok, g_tok, h_tok = _tokens(original, read), _tokens(generated_before, read), _tokens(generated_after, write)
    o_keys, g_keys, h_keys = _keys(original, o_tok), _keys(generated_before, g_tok), _keys(generated_after, h_tok)
    og = difflib.SequenceMatcher(None, o_keys, g_keys, autojunk=False).get_opcodes()
    gh = difflib.SequenceMatcher(None, g_keys, h_keys, autojunk=False).get_opcodes()
    align = _align(og)
    edits: list[tuple[int, int, str]] = []
    for g1, g2, h1, h2 in _changed_regions(gh, align.bounds, len(g_keys)):
        edit = _region_edit(original, o_tok, generated_after, h_tok, align, (g1, g2, h1, h2))
        if edit is None:
            return None
        edits.append(edit)
    result = splice_text(original, edits)
    if result is None or canonical(result, write) is None or canonical(result, write) != canonical(generated_after, write):
        return None
    return result


@dataclass(frozen=True)
class _Alignment:
    """Where the original's tokens line up with the generated text's."""

    bounds: frozenset[int]  # boundaries between generated tokens where the original lines up
    o_end: dict[int, int]  # boundary -> original token index ending there (exclusive)
    o_start: dict[int, int]  # boundary -> original token index starting there


def _align(og) -> _Alignment:
    bounds: set[int] = set()
    o_end: dict[int, int] = {}
    o_start: dict[int, int] = {}
    for tag, o1, o2, g1, g2 in og:
        if tag == "equal":
            # its first boundary may already be placed by the block before; the rest are its own
            bounds.add(g1)
            o_end.setdefault(g1, o1)
            o_start.setdefault(g1, o1)
            for k in range(1, g2 - g1 + 1):
                bounds.add(g1 + k)
                o_end[g1 + k] = o_start[g1 + k] = o1 + k
        else:
            bounds.update((g1, g2))
            if g1 == g2:  # tokens only the original has: after them for a start, before them for an end
                o_end.setdefault(g1, o1)
                o_start[g1] = o2
            else:
                o_start.setdefault(g1, o1)
                o_end[g2] = o2
    return _Alignment(frozenset(bounds), o_end, o_start)


def _changed_regions(gh, bounds: frozenset[int], n_generated: int) -> list[list[int]]:
    """The changed stretches (g1, g2, h1, h2), merged where they touch and widened until both
    ends sit on a boundary where the original lines up (or cannot widen further)."""
    h_of_g = {}
    regions = []
    for tag, g1, g2, h1, h2 in gh:
        if tag == "equal":
            for k in range(g2 - g1):
                h_of_g[g1 + k] = h1 + k
        else:
            regions.append([g1, g2, h1, h2])
    for _ in range(n_generated + 2):
        regions = _merge_touching(regions)
        moved = False
        for r in regions:
            if r[0] not in bounds and r[0] > 0:
                r[0] -= 1
                r[2] = min(r[2], h_of_g.get(r[0], r[2]))
                moved = True
            if r[1] not in bounds and r[1] < n_generated:
                r[3] = max(r[3], h_of_g[r[1]] + 1 if r[1] in h_of_g else r[3])
                r[1] += 1
                moved = True
        if not moved:
            break
    return regions


def _merge_touching(regions: list[list[int]]) -> list[list[int]]:
    regions.sort()
    merged: list[list[int]] = []
    for r in regions:
        prev = merged[-1] if merged else None
        if prev and (r[0] < prev[1] or (r[0] == prev[1] and (r[0] == r[1] or prev[0] == prev[1]))):
            merged[-1] = [prev[0], max(prev[1], r[1]), min(prev[2], r[2]), max(prev[3], r[3])]
        else:
            merged.append(r)
    return merged


def _region_edit(original: str, o_tok, generated_after: str, h_tok, align: _Alignment,
                 region) -> tuple[int, int, str] | None:
    """The edit of ``original`` that makes one changed region look like the generated text."""
    g1, g2, h1, h2 = region
    if g1 not in align.bounds or g2 not in align.bounds:
        return None
    text = generated_after[h_tok[h1].start:h_tok[h2 - 1].end + 1] if h2 > h1 else ""
    first, last = align.o_start.get(g1), align.o_end.get(g2)
    if first is None or last is None:
        return None
    if g2 > g1 and last > first:
        start, end = o_tok[first].start, o_tok[last - 1].end + 1
        if not text:  # a deletion also takes the whitespace after it
            while end < len(original) and original[end] in " \t":
                end += 1
        return start, end, text
    return _insertion(original, o_tok, h_tok, text, first, last, h1, h2)


def _insertion(original: str, o_tok, h_tok, text: str, first: int, last: int, h1: int,
               h2: int) -> tuple[int, int, str] | None:
    """Where inserted text goes: it sticks to the neighbour it touches in the generated text;
    elsewhere it gets one space unless the original already has whitespace there."""
    tight_after = 0 < h2 < len(h_tok) and h_tok[h2].start == h_tok[h2 - 1].end + 1
    tight_before = h1 > 0 and h_tok[h1].start == h_tok[h1 - 1].end + 1
    prev_end = o_tok[last - 1].end + 1 if last > 0 else None
    next_start = o_tok[first].start if first < len(o_tok) else None
    if (tight_before and tight_after and prev_end is not None and next_start is not None
            and not original[prev_end:next_start].strip()):
        return prev_end, next_start, text  # glued on both sides: the gap goes
    if (text.split(" ", 1)[0].upper() in _CLAUSES and prev_end is not None
            and (prev_end == len(original) or original[prev_end] == "\n")):
        # a new clause after the end of a line goes on a line of its own, indented alike
        line_start = original.rfind("\n", 0, prev_end) + 1
        line = original[line_start:prev_end]
        indent = line[:len(line) - len(line.lstrip(" \t"))]
        return prev_end, prev_end, "\n" + indent + text
    if next_start is not None and (prev_end is None or (tight_after and not tight_before)):
        pad = "" if tight_before or next_start == 0 or original[next_start - 1].isspace() else " "
        return next_start, next_start, pad + text + ("" if tight_after or prev_end is not None else " ")
    if prev_end is not None:
        after_ws = prev_end < len(original) and original[prev_end].isspace()
        return prev_end, prev_end, (("" if tight_before else " ") + text
                                    + ("" if tight_after or after_ws or prev_end == len(original) else " "))
    return None


def transform_text(sql: str, transform: Callable[[exp.Expression], exp.Expression], read: str = "spark",
                   write: str = "spark") -> str | None:
    """Parse ``sql``, apply ``transform`` to the tree, splice the change into the text.

    Returns None when the transform changed nothing or the change cannot be spliced.
    """
    from sqlglot.errors import ErrorLevel

    tree = sqlglot.parse_one(sql, read=read)
    before = tree.sql(dialect=read)
    new = transform(tree.copy())
    after = new.sql(dialect=write, unsupported_level=ErrorLevel.RAISE)
    if canonical(after, write) == canonical(sql, read) and read == write:
        return None
    return splice(sql, read, before, after, write)


def column_parts(col: exp.Column) -> list[exp.Identifier]:
    """A column's identifiers, with struct fields reached through ``.`` (``c.address.geo.city``)."""
    parts = list(col.parts)
    node = col
    while isinstance(node.parent, exp.Dot) and node.parent.this is node and isinstance(node.parent.expression, exp.Identifier):
        parts.append(node.parent.expression)
        node = node.parent
    return parts


def path_refs(sql: str, input_name: str, path: tuple[str, ...], input_columns: dict[str, set[str]]) -> list[tuple[int, int]]:
    """Text spans of references to the struct path ``path`` of ``input_name`` (the qualifier,
    when there is one, stays outside the span)."""
    tree = parse(sql)
    target = [p.lower() for p in path]
    spans = []
    for scope in traverse_scope(tree):
        for col in scope.columns:
            parts = column_parts(col)
            names = [p.name.lower() for p in parts]
            source = scope.sources.get(parts[0].name) if len(parts) > 1 else None
            if isinstance(source, exp.Table):
                if source.name.lower() != input_name.lower():
                    continue
                rest = parts[1:]
            else:
                providers = [s.name.lower() for s in scope.sources.values() if isinstance(s, exp.Table)
                             and (names[0] in input_columns.get(s.name, set()) or len(scope.sources) == 1)]
                if providers != [input_name.lower()]:
                    continue
                rest = parts
            if [p.name.lower() for p in rest] != target:
                continue
            start, end = rest[0].meta.get("start"), rest[-1].meta.get("end")
            if start is None or end is None:
                continue
            spans.append((start, end + 1))
    return sorted(set(spans))


def splice_text(sql: str, edits: list[tuple[int, int, str]]) -> str | None:
    """``sql`` with each (start, end) span replaced; None when spans overlap."""
    out, last = [], 0
    for start, end, text in sorted(edits):
        if start < last:
            return None
        out += [sql[last:start], text]
        last = end
    out.append(sql[last:])
    return "".join(out)


def replace_string_literals(sql: str, replacements: dict[str, str], dialect: str = "spark") -> str | None:
    """``sql`` with string literals whose value is a key of ``replacements`` rewritten."""
    edits = []
    for t in _tokens(sql, dialect):
        if t.token_type.name == "STRING" and t.text in replacements:
            edits.append((t.start, t.end + 1, string_literal(replacements[t.text])))
    return splice_text(sql, edits) if edits else None


# -- where an input is read: filter the rows it gives, or replace the read -----------------------
#
# Repairs of bad input rows (NULLs that surged, a replayed batch) act where the input is
# read, so the rest of the query sees the input as it looked at the last good run. The
# edits are computed from token positions and checked against the same change made to the
# syntax tree: the text must parse to exactly that tree, or no edit is proposed.

# token types that end the FROM (and the WHERE) part of a SELECT at its own nesting level
_CLAUSE_ENDS = {"WHERE", "GROUP_BY", "HAVING", "WINDOW", "QUALIFY", "ORDER_BY", "LIMIT", "OFFSET", "FETCH",
                "UNION", "INTERSECT", "EXCEPT", "SORT_BY", "CLUSTER_BY", "DISTRIBUTE_BY", "SEMICOLON"}


@dataclass(frozen=True)
class TableRead:
    """One place the query reads an input as a table (a CTE of the same name is not one)."""

    scope: Scope
    table: exp.Table

    @property
    def select(self) -> exp.Expression:
        return self.scope.expression

    @property
    def qualifier(self) -> str | None:
        """How the scope's columns name this table: its alias, its name when the scope reads
        other sources too, or nothing."""
        if self.table.alias:
            return self.table.alias
        return self.table.name if len(self.scope.sources) > 1 else None

    @property
    def distinct(self) -> bool:
        """Whether the SELECT reading the table is already a ``SELECT DISTINCT``."""
        return bool(self.select.args.get("distinct"))

    def uses(self, column: str, input_columns: dict[str, set[str]]) -> bool:
        """Whether the scope reads ``column`` of this table (by name, or through a ``*``)."""
        if self.select.is_star:
            return True
        for col in self.scope.columns:
            if col.name.lower() != column.lower():
                continue
            if col.table:
                if self.scope.sources.get(col.table) is self.table:
                    return True
            elif _belongs(col, self.scope, self.table.name, input_columns):
                return True
        return False

    def null_extended(self) -> bool:
        """Whether an outer join may pad this table's columns with NULLs (then a WHERE on
        them also drops the rows that found no match)."""
        for join in self.select.args.get("joins") or []:
            side = (join.side or "").upper()
            own = join.this is self.table
            if (own and side in ("LEFT", "FULL")) or (not own and side in ("RIGHT", "FULL")):
                return True
        return False


def input_reads(tree: exp.Expression, input_name: str) -> list[TableRead]:
    """Every read of ``input_name`` as a table, with the scope that reads it."""
    reads = []
    for scope in traverse_scope(tree):
        for source in scope.sources.values():
            if isinstance(source, exp.Table) and source.name.lower() == input_name.lower():
                reads.append(TableRead(scope, source))
    return reads


def table_span(table: exp.Table) -> tuple[int, int] | None:
    """Text span of a table's name (catalog and database included, alias left out)."""
    parts = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p is not None]
    starts = [p.meta.get("start") for p in parts]
    end = table.this.meta.get("end") if table.this is not None else None
    if None in starts or end is None:
        return None
    return min(starts), end + 1


def _clause_end(tokens, k: int) -> int:
    """Index of the first token from ``k`` that ends the current clause at this nesting
    level: a clause keyword, a closing parenthesis it did not open, or the end."""
    depth = 0
    while k < len(tokens):
        name = tokens[k].token_type.name
        if name == "L_PAREN":
            depth += 1
        elif name == "R_PAREN":
            if depth == 0:
                return k
            depth -= 1
        elif depth == 0 and name in _CLAUSE_ENDS:
            return k
        k += 1
    return k


def and_where(sql: str, read: TableRead, condition: str) -> list[tuple[int, int, str]] | None:
    """Edits that AND ``condition`` into the WHERE of the SELECT that reads the table: after
    the existing condition (parenthesized when it is an OR), or as a new WHERE on its own
    line after the FROM part when the SELECT has none. None when the place is not found."""
    span = table_span(read.table)
    if span is None:
        return None
    tokens = _tokens(sql, "spark")
    first = next((i for i, t in enumerate(tokens) if t.start == span[0]), None)
    if first is None:
        return None
    stop = _clause_end(tokens, first + 1)
    where = read.select.args.get("where")
    if where is not None:
        if stop >= len(tokens) or tokens[stop].token_type.name != "WHERE" or stop + 1 >= len(tokens):
            return None
        last = _clause_end(tokens, stop + 1) - 1
        end = tokens[last].end + 1
        if isinstance(where.this, exp.Or):  # AND binds tighter: keep the OR whole
            return [(tokens[stop + 1].start, tokens[stop + 1].start, "("), (end, end, f") AND {condition}")]
        return [(end, end, f" AND {condition}")]
    end = tokens[stop - 1].end + 1
    next_start = tokens[stop].start if stop < len(tokens) else len(sql)
    newline = sql.find("\n", end, next_start)
    if newline == -1:
        return [(end, end, f" WHERE {condition}")]
    # a clause of its own, indented like the line it follows (a comment ending that line stays there)
    line_start = sql.rfind("\n", 0, end) + 1
    line = sql[line_start:end]
    indent = line[:len(line) - len(line.lstrip(" \t"))]
    return [(newline, newline, f"\n{indent}WHERE {condition}")]


def apply_checked(sql: str, edits: list[tuple[int, int, str]], expected: exp.Expression) -> str | None:
    """``sql`` with the edits applied, when it parses to the same query as ``expected``
    (the edited syntax tree); None otherwise."""
    after = splice_text(sql, edits)
    if after is None or not reparses(after):
        return None
    want = canonical(expected.sql(dialect="spark"))
    return after if want is not None and canonical(after) == want else None
