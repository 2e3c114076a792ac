"""Rule: SQL from another dialect committed to a Spark SQL job -> transpile it, prove it.

Someone pastes a query written for Postgres, T-SQL, BigQuery, Snowflake, MySQL or DuckDB
(``TOP 10``, ``[col]``, ``ISNULL(a, b)``, ``DATE_TRUNC(ts, MONTH)``, ``IFF``,
``DATE_FORMAT(ts, '%Y-%m')``, ``strftime``) and Spark fails to parse or run it.

Detect: the text is read in every candidate dialect. A reading counts when it parses, is
generated for Spark with nothing unsupported, means something else than Spark's own
reading of the text, and is *proved*: sqlglot's optimizer, given the input schemas,
normalizes the dialect reading and the Spark text to the same tree (so it names no column
that does not exist and no construct was lost). Readings are grouped by the Spark query
they give; the group whose dialects know every function in the text (fewest unknown
functions), then the one most dialects agree on, wins. Two groups that tie are a coin
toss: no patch.

Fix: only the tokens that differ are spliced into the job (comments and layout stay);
the result must render exactly as the transpiled query. PySpark jobs get the same for
each ``spark.sql("...")`` string. The sandbox then checks the results on data.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from healer.evidence.lineage import sqlglot_schema
from healer.fixers import pyedit, sqledit
from healer.fixers.base import FileEdit, Patch

log = logging.getLogger(__name__)

DIALECTS = ("postgres", "tsql", "bigquery", "snowflake", "mysql", "duckdb", "hive", "trino")
# read only when none of the others gives a reading: Trino shares MySQL's DATE_FORMAT and Hive is
# close to Spark, so letting them vote everywhere would turn clear readings into ties
FALLBACK = ("hive", "trino")
FALLBACK_CATEGORIES = {"parse", "unresolved_function", "unknown", "legacy_behavior"}
NAMES = {"postgres": "PostgreSQL", "tsql": "T-SQL", "bigquery": "BigQuery", "snowflake": "Snowflake",
         "mysql": "MySQL", "duckdb": "DuckDB", "hive": "Hive", "trino": "Trino"}
# Spark's errors for text in another dialect: a parse error, an unknown function, a wrong
# argument count, a column that is really a keyword (DATE_TRUNC(ts, MONTH)), a bad pattern,
# or no error but wrong values ("channel" is a string literal in Spark): then only when the
# job changed since the last good run
CATEGORIES = {"parse", "unknown", "unresolved_column", "datatype_mismatch", "unresolved_function", "expectation",
              "legacy_behavior"}  # a strftime pattern (%Y-%m) fails as a Spark 3 datetime pattern


@dataclass(frozen=True)
class Reading:
    dialect: str
    spark_sql: str  # the query generated for Spark
    canonical: str
    unknown_functions: tuple[str, ...]  # functions this dialect does not know either


def readings(sql: str, schema: dict, fallback: bool = False) -> list[Reading]:
    """Every proved reading of ``sql`` in another dialect that Spark reads differently."""
    spark_canonical = sqledit.canonical(sql, "spark")
    out = []
    for dialect in DIALECTS:
        if dialect in FALLBACK and (out or not fallback):
            break
        try:
            tree = sqlglot.parse_one(sql, read=dialect, error_level=ErrorLevel.RAISE)
            spark_sql = tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
        except Exception:
            log.debug("no %s reading of the job", dialect, exc_info=True)
            continue
        canonical = sqledit.canonical(spark_sql, "spark")
        if canonical is None or canonical == spark_canonical:
            continue
        if not proved(tree, dialect, spark_sql, schema):
            continue
        unknown = tuple(sorted({a.name.upper() for a in tree.find_all(exp.Anonymous)}))
        out.append(Reading(dialect, spark_sql, canonical, unknown))
    return out


def proved(tree: exp.Expression, dialect: str, spark_sql: str, schema: dict) -> bool:
    """The dialect reading and the Spark text normalize to the same tree under sqlglot's
    optimizer (qualified against the input schemas; normalized once more from Spark)."""
    from sqlglot.optimizer import optimize

    def again(sql):
        return optimize(sqlglot.parse_one(sql, read="spark"), schema=schema, dialect="spark").sql("spark")

    try:
        left = optimize(tree.copy(), schema=schema, dialect=dialect).sql("spark")
        right = optimize(sqlglot.parse_one(spark_sql, read="spark"), schema=schema, dialect="spark").sql("spark")
        return left == right or again(left) == again(right)
    except Exception:
        log.debug("the %s reading was not proved equal to the Spark text", dialect, exc_info=True)
        return False


def choose(found: list[Reading]) -> tuple[list[Reading], list[list[Reading]]] | None:
    """(winning group, other groups), or None when nothing reads or two groups tie."""
    if not found:
        return None
    groups: dict[str, list[Reading]] = {}
    for r in found:
        groups.setdefault(r.canonical, []).append(r)
    ranked = sorted(groups.values(), key=lambda g: (min(len(r.unknown_functions) for r in g), -len(g)))
    best = ranked[0]
    key = (min(len(r.unknown_functions) for r in best), len(best))
    if len(ranked) > 1 and (min(len(r.unknown_functions) for r in ranked[1]), len(ranked[1])) == key:
        return None
    return best, ranked[1:]


class DialectSlip:
    name = "rule:dialect_slip"

    def propose(self, evidence) -> list[Patch]:
        f = evidence.failure
        if f.category not in CATEGORIES:
            return []
        if f.category == "legacy_behavior" and "%" not in (f.params.get("pattern") or "%"):
            return []  # a Java pattern Spark 3 reads differently: datetime_pattern's case, not a dialect
        if f.category != "parse" and (evidence.changed or not _job_changed(evidence)):
            return []  # schema drift, or a job that ran fine as it is, is not a dialect slip
        schemas = (evidence.last_good.input_schemas if evidence.last_good else None) or {}
        schemas = {**{k: v for k, v in evidence.current_schemas.items() if v}, **{k: v for k, v in schemas.items() if v}}
        schema = sqlglot_schema(schemas)
        source = evidence.job_source
        fallback = f.category in FALLBACK_CATEGORIES  # Spark could not run the text at all
        if evidence.pipeline.kind == "sql":
            fixed = self._fix(source, schema, fallback)
            if not fixed:
                return []
            after, best, others, whole = fixed
            return [self._patch(evidence, after, best, others, whole, "the job")]
        edits, chosen = [], []
        for node, span in _sql_strings(source):
            fixed = self._fix(node.value, schema, fallback)
            if fixed:
                after, best, others, whole = fixed
                edits.append((span, after))
                chosen.append((best, others, whole))
        if not edits:
            return []
        after = pyedit.replace_spans(source, edits)
        if after is None or not pyedit.parses(after):
            return []
        best = [r for b, _, _ in chosen for r in b]
        others = [g for _, o, _ in chosen for g in o]
        return [self._patch(evidence, after, best, others, any(w for *_, w in chosen), "the job's spark.sql query")]

    def _fix(self, sql: str, schema: dict, fallback: bool = False):
        picked = choose(readings(sql, schema, fallback))
        if picked is None:
            return None
        best, others = picked
        reading = best[0]
        tree = sqlglot.parse_one(sql, read=reading.dialect)
        after = sqledit.splice(sql, reading.dialect, tree.sql(dialect=reading.dialect), reading.spark_sql)
        whole = after is None
        if whole:  # the changes could not be placed token by token: the whole query, transpiled
            after = tree.sql(dialect="spark", pretty=True) + ("\n" if sql.endswith("\n") else "")
        if sqledit.canonical(after, "spark") != reading.canonical:
            return None
        return after, best, others, whole

    def _patch(self, evidence, after, best, others, whole, where) -> Patch:
        dialects = sorted({r.dialect for r in best}, key=DIALECTS.index)
        names = NAMES[dialects[0]] + (f" (and as {', '.join(NAMES[d] for d in dialects[1:])})" if dialects[1:] else "")
        doubts = []
        if others:
            alt = sorted({NAMES[r.dialect] for g in others for r in g})
            doubts.append(f"the text also reads as {', '.join(alt)} with another meaning; "
                          f"{NAMES[dialects[0]]} was chosen because it knows every function the query uses")
        if whole:
            doubts.append("the changes could not be placed token by token, so the whole query was rewritten "
                          "by the transpiler (comments kept, layout not)")
        unknown = sorted({u for r in best for u in r.unknown_functions})
        if unknown:
            doubts.append(f"functions unknown to {NAMES[dialects[0]]} too: {', '.join(unknown)}")
        confidence = 0.85 if not others and not unknown else 0.7
        if whole:
            confidence -= 0.1
        return Patch(
            fixer=self.name,
            title=f"{where} is in the {NAMES[dialects[0]]} dialect, not Spark SQL",
            rationale=(f"Spark could not run {where} ({evidence.failure.error_class}). It reads as {names}: "
                       f"transpiled to Spark SQL with sqlglot, and proved the same query — sqlglot's optimizer "
                       f"normalizes the {NAMES[dialects[0]]} reading and the Spark text, qualified against the input "
                       "schemas, to the same tree. Only the tokens that differ changed."),
            confidence=round(confidence, 2),
            edits=[FileEdit(evidence.pipeline.job, evidence.job_source, after)],
            doubts=doubts,
            details={"dialects": dialects, "spark_sql": [r.spark_sql for r in best][:1]},
        )


def _job_changed(evidence) -> bool:
    """False when the last good run ran this very commit (so the job's text is not new)."""
    good = evidence.last_good
    return not (good and good.commit and evidence.failure.commit and good.commit == evidence.failure.commit)


def _sql_strings(source: str) -> list[tuple[ast.Constant, pyedit.Span]]:
    """String literals passed as the query to ``spark.sql(...)`` in a PySpark module."""
    tree = ast.parse(source)
    queries = {id(n.args[0]) for n in ast.walk(tree)
               if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "sql" and n.args}
    literals = pyedit.string_literals(source)
    # string_literals parses its own tree: match by position instead of identity
    positions = {(n.lineno, n.col_offset) for n in ast.walk(tree) if id(n) in queries}
    return [(node, span) for node, span, _ in literals if (node.lineno, node.col_offset) in positions]
