"""Rule: a typo the last commit put in the job -> fix the name, keep the feature.

A commit adds a column to the report and misspells it (``chanel``), reads an input under a
misspelt name (``ordrs``), calls ``COALESE`` or writes ``SELEC``/``FORM``. Spark fails with
an unresolved column, table or function, or a syntax error.

Detect: the commits since the last good run changed the job, and the name Spark could not
resolve is on a line they added (a name that was always there is not a typo of this commit;
schema drift is the data rules' case). The candidates are the names that exist — the
inputs' columns and the aliases the query defines, the declared inputs, Spark's functions,
SQL's keywords — and exactly one must be closest, within a small edit distance (one edit for
short names, two for longer ones, never more than a third of the name). Spark's own "Did
you mean" list is a hint, not proof. A column used in arithmetic must get a numeric column.

Fix: the misspelt name is replaced where it occurs (SQL tokens; PySpark string literals and
attributes); the text must still parse. Two candidates equally close: no patch, and the
reason says which.
"""

from __future__ import annotations

import ast
import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from healer.fixers import pyedit
from healer.fixers.base import Declined, FileEdit, Patch
from healer.fixers.rules._spark_functions import SPARK_FUNCTIONS
from healer.runner.profile import schema_columns

log = logging.getLogger(__name__)

CATEGORIES = {"unresolved_column", "missing_table", "unresolved_function", "parse"}
KEYWORDS = ("SELECT", "FROM", "WHERE", "GROUP", "ORDER", "BY", "HAVING", "JOIN", "INNER", "LEFT", "RIGHT",
            "OUTER", "FULL", "CROSS", "ON", "AS", "AND", "OR", "NOT", "CASE", "WHEN", "THEN", "ELSE", "END",
            "DISTINCT", "LIMIT", "UNION", "ALL", "IS", "NULL", "IN", "BETWEEN", "LIKE", "WITH", "OVER",
            "PARTITION", "CAST", "DESC", "ASC", "EXISTS", "INTERVAL", "USING", "QUALIFY", "WINDOW", "ROWS")
NUMERIC = ("int", "long", "short", "byte", "float", "double", "decimal", "integer", "bigint")


def distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (adjacent transpositions count once), case-insensitive."""
    a, b = a.lower(), b.lower()
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def max_edits(name: str) -> int:
    return 1 if len(name) <= 5 else 2


def closest(name: str, candidates: set[str]) -> tuple[int, list[str]]:
    """(distance, the candidates at the smallest distance within the limit) — an empty list when none."""
    limit = min(max_edits(name), max(1, len(name) // 3))
    scored = sorted((distance(name, c), c) for c in candidates if c.lower() != name.lower())
    scored = [(d, c) for d, c in scored if d <= limit]
    if not scored:
        return 0, []
    best = scored[0][0]
    return best, sorted({c for d, c in scored if d == best}, key=str.lower)


class CodeTypo:
    name = "rule:code_typo"

    def propose(self, evidence) -> list[Patch]:
        f = evidence.failure
        changes = evidence.changes
        job = evidence.pipeline.job
        if f.category not in CATEGORIES or changes is None or not changes.touches(job):
            return []
        if f.category == "parse":
            return self._keyword(evidence)
        name = _unquote((f.params.get("objectName") or f.params.get("relationName") or f.params.get("routineName")
                         or f.params.get("functionName") or f.params.get("input") or ""))
        if not name:
            return []
        if f.category == "unresolved_column":
            return self._column(evidence, name.split(".")[-1])
        if f.category == "missing_table":
            return self._table(evidence, name.split(".")[-1])
        return self._function(evidence, name.split(".")[-1])

    # -- what kind of name --------------------------------------------------------------------
    def _column(self, evidence, name: str) -> list[Patch]:
        changes, job = evidence.changes, evidence.pipeline.job
        if not changes.introduced(name, job):
            return []  # not new in this commit: a schema change, or another rule's case
        if any(name.lower() in {c.lower() for c in [*d.dropped, *[r.old for r in d.renames]]} for d in evidence.diffs):
            return []  # the data renamed or dropped it: renamed_column's case
        types = _column_types(evidence)
        aliases = _aliases(evidence)
        known = set(types) | aliases
        dist, best = closest(name, known)
        if not best:
            return []
        if len(best) > 1:
            raise Declined(f"'{name}' (added by the commit) is {dist} edit(s) from {_names(best)}: "
                           "which one was meant is a guess")
        new = best[0]
        numeric = _numeric_use(evidence, name)
        if numeric and new.lower() in types and not types[new.lower()].startswith(NUMERIC):
            raise Declined(f"'{name}' is used in arithmetic but its closest name '{new}' is "
                           f"{types[new.lower()]}: not the column that was meant")
        return self._patch(evidence, name, new, "column", dist)

    def _table(self, evidence, name: str) -> list[Patch]:
        changes, job = evidence.changes, evidence.pipeline.job
        # an undeclared name of a SQL job is an input only sqlglot found: not a candidate for itself
        inputs = {n for n, s in evidence.pipeline.inputs.items() if getattr(s, "declared", True)}
        if name.lower() in {n.lower() for n in inputs} or not changes.introduced(name, job):
            return []
        if changes.touches("healer.yml") and any(
                changes.introduced(n, "healer.yml") or any(re.search(rf"\b{re.escape(n)}\b", x)
                                                           for x in changes.removed_lines("healer.yml"))
                for n in inputs):
            return []  # the manifest's names changed too: manifest_drift's case
        dist, best = closest(name, inputs)
        if not best:
            return []
        if len(best) > 1:
            raise Declined(f"input '{name}' (added by the commit) is {dist} edit(s) from {_names(best)}")
        return self._patch(evidence, name, best[0], "input", dist)

    def _function(self, evidence, name: str) -> list[Patch]:
        if name.lower() in SPARK_FUNCTIONS or not evidence.changes.introduced(name, evidence.pipeline.job):
            return []
        dist, best = closest(name, set(SPARK_FUNCTIONS))
        if not best:
            return []
        if len(best) > 1:
            raise Declined(f"function '{name}' (added by the commit) is {dist} edit(s) from Spark's "
                           f"{_names(best)}")
        new = best[0].upper() if name.isupper() else best[0]
        return self._patch(evidence, name, new, "function", dist)

    def _keyword(self, evidence) -> list[Patch]:
        """A misspelt keyword: the one identifier on an added line near a keyword whose fix makes the SQL parse."""
        if evidence.pipeline.kind != "sql":
            return []
        source, job = evidence.job_source, evidence.pipeline.job
        known = {c.lower() for c in _column_types(evidence)} | {n.lower() for n in evidence.pipeline.inputs}
        try:
            tokens = sqlglot.Dialect.get_or_raise("spark").tokenize(source)
        except Exception:
            log.debug("%s does not tokenize", job, exc_info=True)
            return []
        fixes = []
        for tok in tokens:
            if tok.token_type != TokenType.VAR or tok.text.lower() in known:
                continue
            if not evidence.changes.introduced(tok.text, job):
                continue
            dist, best = closest(tok.text, set(KEYWORDS))
            for kw in best:
                word = kw if tok.text.isupper() or not tok.text.islower() else kw.lower()
                after = source[:tok.start] + word + source[tok.end + 1:]
                if _parses(after):
                    fixes.append((tok, word, dist, after))
        if not fixes:
            return []
        if len({(t.start, w.upper()) for t, w, _, _ in fixes}) > 1:
            options = ", ".join(f"'{t.text}' -> {w}" for t, w, _, _ in fixes[:4])
            raise Declined(f"the syntax error has more than one keyword fix that parses ({options})")
        tok, word, dist, after = fixes[0]
        return [self._make(evidence, after, tok.text, word, "keyword", dist, [])]

    # -- the edit ----------------------------------------------------------------------------------
    def _patch(self, evidence, old: str, new: str, what: str, dist: int) -> list[Patch]:
        source = evidence.job_source
        if evidence.pipeline.kind == "sql":
            after = _replace_sql_names(source, old, new)
            if after is None or not _parses(after):
                return []
        else:
            after = _replace_py_names(source, old, new, what)
            if after is None or not pyedit.parses(after):
                return []
        hints, agree = [], ""
        proposal = evidence.failure.params.get("proposal") or ""
        if what == "column" and proposal:
            first = _unquote(proposal.split(",")[0]).split(".")[-1]
            if first.lower() == new.lower():
                agree = f" Spark's own first suggestion is '{first}' too."
            else:  # Spark's list is a hint, not proof: a disagreement is said, not followed
                hints.append(f"Spark's first suggestion was '{first}', not '{new}'")
        return [self._make(evidence, after, old, new, what, dist, hints, agree)]

    def _make(self, evidence, after: str, old: str, new: str, what: str, dist: int, hints: list[str],
              agree: str = "") -> Patch:
        commits = evidence.changes.commits_touching(evidence.pipeline.job) if evidence.changes else []
        who = commits[-1] if commits else None
        by = f" in commit {who.sha[:10]} by {who.author}" if who else ""
        doubts = list(hints)
        if dist > 1:
            doubts.append(f"'{old}' is {dist} edits from '{new}'")
        return Patch(
            fixer=self.name,
            title=f"typo in the job: {what} '{old}' should be '{new}'",
            rationale=(f"'{old}' was added{by} and does not exist; '{new}' is the only {what} within {dist} "
                       f"edit(s) of it, so the commit's change is kept with the name corrected.{agree}"),
            confidence=0.85 if dist == 1 and not doubts else 0.75,
            edits=[FileEdit(evidence.pipeline.job, evidence.job_source, after)],
            doubts=doubts,
            details={"typo": old, "fixed": new, "what": what, "commit": who.sha if who else None,
                     **({"drop_inputs": [old]} if what == "input" else {})},
        )


def _unquote(name: str) -> str:
    return name.replace("`", "").strip()


def _names(names: list[str]) -> str:
    return " and ".join(f"'{n}'" for n in names)


def _parses(sql: str) -> bool:
    try:
        tree = sqlglot.parse_one(sql, read="spark", error_level=sqlglot.ErrorLevel.RAISE)
    except Exception:
        log.debug("a candidate text does not parse", exc_info=True)
        return False
    # a keyword typo sqlglot reads as an alias (``SELECT a FORM orders``) still leaves the VAR behind
    return tree is not None and not any(isinstance(a, exp.TableAlias) and a.name.upper() in KEYWORDS
                                        for a in tree.find_all(exp.TableAlias))


def _column_types(evidence) -> dict[str, str]:
    """lower-case column -> Spark type name, over every input now (or at the last good run)."""
    out = {}
    schemas = {**((evidence.last_good.input_schemas if evidence.last_good else None) or {}),
               **{k: v for k, v in evidence.current_schemas.items() if v}}
    for s in schemas.values():
        if s:
            out.update({c.lower(): str(t).lower() for c, t in schema_columns(s).items()})
    return out


def _aliases(evidence) -> set[str]:
    """Names the job itself defines: SQL aliases and CTE names; PySpark alias/withColumn names."""
    source = evidence.job_source
    if evidence.pipeline.kind == "sql":
        try:
            tree = sqlglot.parse_one(source, read="spark")
        except Exception:
            log.debug("the job's SQL does not parse: no aliases", exc_info=True)
            return set()
        return {a.alias for a in tree.find_all(exp.Alias) if a.alias} | {
            c.alias for c in tree.find_all(exp.CTE) if c.alias}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and isinstance(
                node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            if node.func.attr in ("alias", "withColumn", "name"):
                out.add(node.args[0].value)
            elif (node.func.attr == "withColumnRenamed" and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant)):
                out.add(str(node.args[1].value))
    return out


ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Sum, exp.Avg)


def _numeric_use(evidence, name: str) -> bool:
    """Whether the job does arithmetic (or SUM/AVG) on ``name`` (SQL only; PySpark is not traced)."""
    if evidence.pipeline.kind != "sql":
        return False
    try:
        tree = sqlglot.parse_one(evidence.job_source, read="spark")
    except Exception:
        log.debug("the job's SQL does not parse: %s taken as not numeric", name, exc_info=True)
        return False
    for col in tree.find_all(exp.Column):
        if col.name.lower() == name.lower():
            parent = col.parent
            while parent is not None and isinstance(parent, (exp.Paren, exp.Cast, exp.Coalesce)):
                parent = parent.parent
            if isinstance(parent, ARITHMETIC):
                return True
    return False


def _replace_sql_names(sql: str, old: str, new: str) -> str | None:
    """Every identifier token spelled ``old`` (any case, quoted or not) renamed ``new``."""
    try:
        tokens = sqlglot.Dialect.get_or_raise("spark").tokenize(sql)
    except Exception:
        log.debug("the SQL does not tokenize: %s not renamed", old, exc_info=True)
        return None
    edits = []
    for tok in tokens:
        if tok.token_type in (TokenType.VAR, TokenType.IDENTIFIER) and tok.text.lower() == old.lower():
            quoted = sql[tok.start] == "`"
            text = f"`{new}`" if quoted else new
            edits.append((tok.start, tok.end + 1, text))
    if not edits:
        return None
    out, last = [], 0
    for start, end, text in edits:
        out += [sql[last:start], text]
        last = end
    out.append(sql[last:])
    return "".join(out)


def _replace_py_names(source: str, old: str, new: str, what: str) -> str | None:
    """String literals equal to ``old`` (and ``df.old`` attributes, for columns) renamed; SQL strings by token."""
    edits = []
    for node, span, _ in pyedit.string_literals(source):
        if node.value == old:
            edits.append((span, new))
        elif what != "input" and re.search(rf"\b{re.escape(old)}\b", node.value) and " " in node.value.strip():
            fixed = _replace_sql_names(node.value, old, new)
            if fixed is not None and fixed != node.value:
                edits.append((span, fixed))
    if what == "column":
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == old and isinstance(node.value, ast.Name):
                span = pyedit.node_span(source, node)
                edits.append((pyedit.Span(span.end - len(old), span.end), new))
    return pyedit.replace_spans(source, edits) if edits else None
