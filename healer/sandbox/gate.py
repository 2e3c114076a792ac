"""The static gate: what a candidate's code may contain before it runs at all.

Every candidate (a rule's or the model's) passes here first. The gate is the first of two
walls: it refuses code that reaches the JVM, the OS, files, the network or the
environment, so most hostile candidates never start; whatever slips past it still runs
only inside the isolated worker (``isolation.py``). Its refusal reasons go back to the
model and into the heal's outcome, so they name the construct and where it is.

SQL is checked on sqlglot's syntax tree; Python on its ``ast``. Both are allowlists where
an allowlist is possible (statements, imports, tables) and denylists where Spark's
surface is too large to list (functions, attributes).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# From Spark 4's `SHOW ALL FUNCTIONS`: the ones that call arbitrary Java (reflect and its
# kin) or read the process's identity. Everything else there works on the data it is given.
DENIED_SQL_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect", "current_user", "user", "session_user"})
# Table-valued functions that only generate rows from their arguments.
SAFE_TABLE_FUNCTIONS = frozenset({"range", "explode", "explode_outer", "inline", "inline_outer", "posexplode",
                                  "posexplode_outer", "stack", "json_tuple", "variant_explode",
                                  "variant_explode_outer"})
# `parquet.`/path`` and its kin read files directly, around the declared inputs.
FILE_SOURCES = frozenset({"parquet", "json", "csv", "orc", "text", "avro", "delta", "binaryfile", "jdbc", "xml",
                          "hive", "iceberg", "file"})
# Statements and clauses a job's one SELECT must never hold.
DENIED_SQL_NODES = ("Insert", "Create", "Drop", "Alter", "Command", "Set", "LoadData", "Delete", "Update",
                    "Merge", "QueryTransform", "Use", "Cache", "Uncache", "Refresh", "Pragma", "TruncateTable")

STANDARD_MODULES = frozenset({"datetime", "decimal", "math", "re", "json", "functools", "itertools", "collections",
                              "typing", "string", "__future__"})
PYSPARK_MODULES = frozenset({"pyspark.sql", "pyspark.sql.functions", "pyspark.sql.types", "pyspark.sql.window",
                             "pyspark.sql.column", "pyspark.sql.dataframe"})
PYSPARK_NAMES = frozenset({"functions", "types", "window", "column", "DataFrame", "Window", "Column", "Row",
                           "SparkSession"})
DENIED_NAMES = frozenset({"open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
                          "input", "setattr", "delattr", "help", "exit", "quit", "__builtins__", "__loader__",
                          "__spec__", "__file__"})
# Attributes that reach the JVM, the session's configuration, storage, or Python's internals.
DENIED_ATTRIBUTES = frozenset({"sparkContext", "conf", "catalog", "builder", "dataSource",
                               "write", "writeTo", "writeStream", "save", "saveAsTable", "insertInto",
                               "saveAsTextFile", "read", "readStream", "streams", "newSession", "addArtifact",
                               "addArtifacts", "addPyFile", "copyFromLocalToFs", "registerJavaFunction",
                               "registerJavaUDAF", "stop", "checkpoint", "localCheckpoint"}) | DENIED_SQL_FUNCTIONS
# Calls whose string arguments are SQL: checked as SQL, and they must be literal.
SQL_TEXT_CALLS = frozenset({"sql"})
SQL_EXPRESSION_CALLS = frozenset({"expr", "selectExpr"})
SQL_CONDITION_CALLS = frozenset({"filter", "where"})
NAMED_FUNCTION_CALLS = frozenset({"call_function", "call_udf"})


@dataclass(frozen=True)
class GateContext:
    """What the candidate may reference: its inputs, and the repo modules its job already used."""

    inputs: frozenset[str]  # logical input names, lower case
    repo_modules: frozenset[str]  # module names the unpatched job imported from the repo

    def allows_table(self, name: str) -> bool:
        return name.lower() in self.inputs


# -- SQL ---------------------------------------------------------------------------------
def check_sql(text: str, context: GateContext, where: str) -> list[str]:
    """Refusals for a whole SQL job: one query, no reach beyond the declared inputs."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        trees = [t for t in sqlglot.parse(text, read="spark") if t is not None]
    except (ParseError, TokenError) as exc:
        return [f"{where}: the SQL does not parse with sqlglot (spark): {str(exc).splitlines()[0][:200]}"]
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        kinds = ", ".join(type(t).__name__.upper() for t in trees) or "nothing"
        return [f"{where}: a SQL job must be exactly one query (SELECT / WITH … SELECT); found {kinds}"]
    return _check_sql_tree(trees[0], context, where)


def check_sql_expression(text: str, where: str) -> list[str]:
    """Refusals for a SQL expression embedded in PySpark (``F.expr``, ``selectExpr``, ``filter``)."""
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    try:
        tree = sqlglot.parse_one(text, read="spark")
    except (ParseError, TokenError) as exc:
        return [f"{where}: the SQL expression {text[:80]!r} does not parse: {str(exc).splitlines()[0][:160]}"]
    if tree is None:
        return []
    return _function_problems(tree, where) + _node_problems(tree, where)


def _check_sql_tree(tree, context: GateContext, where: str) -> list[str]:
    from sqlglot import exp

    problems = _function_problems(tree, where) + _node_problems(tree, where)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            name = (table.this.name if isinstance(table.this, exp.Func) else type(table.this).__name__).lower()
            if name not in SAFE_TABLE_FUNCTIONS:
                problems.append(f"{where}: table function {name}(…) is not allowed; read inputs by their logical names")
            continue
        parts = [p for p in (table.catalog, table.db, table.name) if p]
        full = ".".join(parts)
        if (table.db and table.db.lower() in FILE_SOURCES) or "/" in table.name or ":" in table.name:
            problems.append(f"{where}: direct file read {full!r} is not allowed; only the declared inputs may be read")
        elif not (context.allows_table(full) or (not table.db and table.name.lower() in ctes)):
            problems.append(f"{where}: table {full!r} is not a declared input of this pipeline "
                            f"(inputs: {', '.join(sorted(context.inputs)) or 'none'})")
    return problems


def _function_problems(tree, where: str) -> list[str]:
    from sqlglot import exp

    problems = []
    for func in tree.find_all(exp.Func):
        names = {func.name.lower() if isinstance(func, exp.Anonymous) else "", func.sql_name().lower()}
        denied = names & DENIED_SQL_FUNCTIONS
        if denied:
            problems.append(f"{where}: function {sorted(denied)[0]}() reaches the JVM or the environment and is not allowed")
        if isinstance(func, exp.Anonymous) and func.name.lower() == "identifier":
            problems.append(f"{where}: IDENTIFIER(…) names tables at run time and is not allowed")
    return problems


def _node_problems(tree, where: str) -> list[str]:
    from sqlglot import exp

    denied = tuple(getattr(exp, name) for name in DENIED_SQL_NODES if hasattr(exp, name))
    found = sorted({type(node).__name__ for node in tree.walk() if isinstance(node, denied)})
    return [f"{where}: {name} is not allowed inside a job's query" for name in found]


# -- Python ------------------------------------------------------------------------------
def check_python(text: str, context: GateContext, where: str) -> list[str]:
    """Refusals for one PySpark module of a candidate."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return [f"{where}: Python syntax error line {exc.lineno}: {exc.msg}"]
    checker = _PythonChecker(context, where)
    checker.visit(tree)
    return checker.problems


class _PythonChecker(ast.NodeVisitor):
    def __init__(self, context: GateContext, where: str):
        self.context, self.where, self.problems = context, where, []
        self._checked_getattr: set[int] = set()  # getattr names called with a literal, allowed name

    def refuse(self, node: ast.AST, what: str) -> None:
        self.problems.append(f"{self.where} line {getattr(node, 'lineno', '?')}: {what}")

    # imports: an allowlist
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self._module_allowed(alias.name):
                self.refuse(node, f"import of {alias.name!r} is not allowed")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            if not any(m.split(".")[-1] == module.split(".")[-1] or m == module for m in self.context.repo_modules) \
                    and not all(a.name in self.context.repo_modules for a in node.names):
                self.refuse(node, f"relative import {'.' * node.level}{module} is not a module the job already used")
            return
        if module == "pyspark.sql":
            for alias in node.names:
                if alias.name not in PYSPARK_NAMES:
                    self.refuse(node, f"'from pyspark.sql import {alias.name}' is not allowed")
        elif not self._module_allowed(module):
            self.refuse(node, f"import from {module!r} is not allowed")

    def _module_allowed(self, name: str) -> bool:
        return name in STANDARD_MODULES or name in {"collections.abc"} or name in PYSPARK_MODULES \
            or name in self.context.repo_modules

    # names and attributes: a denylist of the doors out
    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "getattr" and id(node) not in self._checked_getattr:
            # passed around as a value (functools.reduce(getattr, …)) it takes any name at run time
            self.refuse(node, "getattr is allowed only when called with a literal name")
        elif node.id in DENIED_NAMES:
            self.refuse(node, f"{node.id} is not allowed")
        elif node.id.startswith("__") and node.id.endswith("__") and node.id not in {"__name__", "__all__", "__doc__"}:
            self.refuse(node, f"{node.id} is not allowed")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("__") and attr.endswith("__"):
            self.refuse(node, f"attribute {attr} is not allowed")
        elif attr.startswith("_j") or attr in {"_sc", "_jvm"}:
            self.refuse(node, f"attribute {attr} reaches the JVM and is not allowed")
        elif attr in DENIED_ATTRIBUTES:
            self.refuse(node, f"attribute .{attr} is not allowed in a job (jobs compute; they never read, "
                              "write or configure anything themselves)")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.attr if isinstance(node.func, ast.Attribute) else \
            node.func.id if isinstance(node.func, ast.Name) else ""
        literals = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        dynamic = len(literals) != len(node.args)
        if name == "getattr":
            if len(node.args) < 2 or not (isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                self.refuse(node, "getattr with a computed name is not allowed")
            elif node.args[1].value.startswith("_") or node.args[1].value in DENIED_ATTRIBUTES:
                self.refuse(node, f"getattr(…, {node.args[1].value!r}) is not allowed")
            else:
                self._checked_getattr.add(id(node.func))
        elif name in SQL_TEXT_CALLS:
            if dynamic or not literals or node.keywords:
                self.refuse(node, "spark.sql(…) takes only a literal SELECT")
            for text in literals:
                self.problems += [f"{p} (line {node.lineno})" for p in check_sql(text, self.context, f"{self.where} spark.sql")]
        elif name in SQL_EXPRESSION_CALLS:
            if dynamic:
                self.refuse(node, f"{name}(…) takes only literal SQL expressions")
            for text in literals:
                self.problems += [f"{p} (line {node.lineno})" for p in check_sql_expression(text, f"{self.where} {name}")]
        elif name in SQL_CONDITION_CALLS:
            for text in literals:
                self.problems += [f"{p} (line {node.lineno})" for p in check_sql_expression(text, f"{self.where} {name}")]
        elif name in NAMED_FUNCTION_CALLS:
            if not literals or literals[0].lower() in DENIED_SQL_FUNCTIONS or (node.args and dynamic and
                                                                               not isinstance(node.args[0], ast.Constant)):
                self.refuse(node, f"{name}(…) must name an allowed function literally")
        elif name == "table" and literals and not self.context.allows_table(literals[0]):
            self.refuse(node, f"spark.table({literals[0]!r}) is not a declared input "
                              f"(inputs: {', '.join(sorted(self.context.inputs))})")
        self.generic_visit(node)


# -- a candidate -------------------------------------------------------------------------
def repo_modules(job_source: str, job_path: Path, root: Path) -> frozenset[str]:
    """Module names a job imports from its own repo (its folder or the repo root)."""
    try:
        tree = ast.parse(job_source)
    except SyntaxError:
        return frozenset()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" if node.module else a.name for a in node.names]
        else:
            continue
        for name in filter(None, names):
            for base in (job_path.parent, root):
                if (base / (name.replace(".", "/") + ".py")).is_file() or (base / name.replace(".", "/")).is_dir():
                    found.add(name)
    return frozenset(found)


def check_candidate(pipeline, root: Path, edited: list[str], context: GateContext, *,
                    may_edit_manifest: bool) -> list[str]:
    """Every refusal for the candidate whose files are under ``root`` (``edited``: the files it changed)."""
    problems = []
    for path in edited:
        if path == "healer.yml":
            if not may_edit_manifest:
                problems.append("healer.yml: only Healer's own rules may rebind inputs; a model's fix may not")
            continue
        if path != pipeline.job and not (pipeline.kind == "python" and path.endswith(".py")):
            problems.append(f"{path}: a fix may edit only the job and, for PySpark, its Python modules")
    job_text = (root / pipeline.job).read_text()
    if pipeline.kind == "sql":
        problems += check_sql(job_text, context, pipeline.job)
    else:
        for path in dict.fromkeys([pipeline.job, *[p for p in edited if p.endswith(".py")]]):
            problems += check_python((root / path).read_text(), context, path)
    return problems
