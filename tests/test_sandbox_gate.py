"""The static gate: hostile SQL and PySpark refused with a reason; every real job let through.

No Spark: the gate reads syntax trees only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from healer.manifest import load_manifest
from healer.sandbox.gate import GateContext, check_candidate, check_python, check_sql, repo_modules

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "rules"
CTX = GateContext(inputs=frozenset({"orders", "order_items", "products", "sales.customers"}),
                  repo_modules=frozenset({"session_rules"}))

HOSTILE_SQL = {
    "reflect getenv": "SELECT reflect('java.lang.System', 'getenv', 'ANTHROPIC_API_KEY') AS k FROM orders",
    "qualified builtin": "SELECT system.builtin.reflect('java.lang.System', 'getenv', 'X') AS k FROM orders",
    "quoted java_method": "SELECT `java_method`('java.lang.System', 'getProperty', 'user.home') FROM orders",
    "try_reflect": "SELECT TRY_REFLECT('java.lang.Runtime', 'getRuntime') FROM orders",
    "current_user": "SELECT current_user() AS u FROM orders",
    "two statements": "SELECT * FROM orders; SELECT 1",
    "set": "SET spark.sql.ansi.enabled=false",
    "add jar": "ADD JAR /tmp/evil.jar",
    "create function": "CREATE TEMPORARY FUNCTION f AS 'com.evil.F'",
    "insert": "INSERT INTO orders SELECT * FROM orders",
    "insert overwrite dir": "INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT * FROM orders",
    "load data": "LOAD DATA LOCAL INPATH '/etc/passwd' INTO TABLE orders",
    "file read": "SELECT * FROM parquet.`/data/warehouse/orders`",
    "csv file read": "SELECT * FROM csv.`file:///etc/passwd`",
    "undeclared table": "SELECT * FROM other_db.secrets",
    "identifier": "SELECT * FROM IDENTIFIER('orders')",
    "read_files": "SELECT * FROM read_files('/etc')",
    "script transform": "SELECT TRANSFORM(order_id) USING 'sh -c id' AS (x) FROM orders",
    "reflect in a cte": "WITH t AS (SELECT reflect('java.lang.System', 'getenv', 'X') AS k FROM orders) SELECT * FROM t",
}


@pytest.mark.parametrize("name", HOSTILE_SQL)
def test_hostile_sql_is_refused_with_a_reason(name):
    problems = check_sql(HOSTILE_SQL[name], CTX, "jobs/x.sql")
    assert problems, name
    assert all(p.startswith("jobs/x.sql") for p in problems)


def test_reflect_refusal_names_the_function():
    [problem] = check_sql(HOSTILE_SQL["reflect getenv"], CTX, "jobs/x.sql")
    assert "reflect()" in problem and "JVM" in problem


HOSTILE_PY = {
    "os.environ": "import os\ndef transform(spark):\n    os.environ['X']\n",
    "from os import": "from os import environ\n",
    "subprocess": "import subprocess\nsubprocess.run(['id'])\n",
    "socket": "import socket\nsocket.create_connection(('1.2.3.4', 80))\n",
    "open": "def transform(spark):\n    open('/tmp/x', 'w').write('x')\n",
    "exec": "exec('import os')\n",
    "eval": "eval('1')\n",
    "__import__": "__import__('os').system('id')\n",
    "importlib": "import importlib\n",
    "sys": "import sys\n",
    "shutil": "import shutil\n",
    "pathlib": "from pathlib import Path\n",
    "dunder escape": "().__class__.__base__.__subclasses__()\n",
    "builtins via globals": "globals()['__builtins__']\n",
    "dynamic getattr": "def transform(spark):\n    return getattr(spark, 'spark' + 'Context')\n",
    "getattr private": "def transform(spark):\n    return getattr(spark, '_jvm')\n",
    "_jvm": "def transform(spark):\n    spark._jvm.java.lang.System.getenv()\n",
    "_jsc": "def transform(spark):\n    spark.sparkContext._jsc\n",
    "spark.conf": "def transform(spark):\n    spark.conf.set('a', 'b')\n",
    "write": "def transform(spark):\n    spark.table('orders').write.parquet('/tmp/x')\n",
    "saveAsTable": "def transform(spark):\n    df = spark.table('orders')\n    df.saveAsTable('x')\n",
    "insertInto": "def transform(spark):\n    spark.table('orders').insertInto('orders')\n",
    "spark.read": "def transform(spark):\n    return spark.read.parquet('/data/orders')\n",
    "sql non-literal": "def transform(spark):\n    q = 'SELECT 1'\n    return spark.sql(q)\n",
    "sql non-select": "def transform(spark):\n    return spark.sql('DROP TABLE orders')\n",
    "sql reflect": "def transform(spark):\n    return spark.sql(\"SELECT reflect('java.lang.System','getenv','K') FROM orders\")\n",
    "expr reflect": "from pyspark.sql import functions as F\ndef transform(spark):\n"
                    "    return spark.table('orders').select(F.expr(\"java_method('java.lang.System','getenv','K')\"))\n",
    "selectExpr dynamic": "def transform(spark):\n    c = 'x'\n    return spark.table('orders').selectExpr(c)\n",
    "filter reflect": "def transform(spark):\n    return spark.table('orders').filter(\"reflect('a','b') IS NULL\")\n",
    "F.reflect": "from pyspark.sql import functions as F\ndef transform(spark):\n"
                 "    return spark.table('orders').select(F.reflect(F.lit('java.lang.System'), F.lit('getenv')))\n",
    "call_function": "from pyspark.sql import functions as F\ndef transform(spark):\n"
                     "    return spark.table('orders').select(F.call_function('java_method', F.lit('a')))\n",
    "undeclared table": "def transform(spark):\n    return spark.table('secrets')\n",
    "SparkSession builder": "from pyspark.sql import SparkSession\ndef transform(spark):\n"
                            "    return SparkSession.builder.config('spark.x', '1').getOrCreate()\n",
    "new repo module": "import evil_helpers\n",
    "getattr as a value": "import functools\ndef transform(spark):\n    return functools.reduce(getattr, ['_jvm'], spark)\n",
    "getattr via map": "def transform(spark):\n    return list(map(getattr, [spark], ['sparkContext']))\n",
    "pyspark internals": "from pyspark import SparkContext\n",
}


@pytest.mark.parametrize("name", HOSTILE_PY)
def test_hostile_pyspark_is_refused_with_a_reason(name):
    problems = check_python(HOSTILE_PY[name], CTX, "jobs/x.py")
    assert problems, name
    assert all(p.startswith("jobs/x.py") for p in problems)


def test_python_refusals_say_the_line():
    problems = check_python("from pyspark.sql import functions as F\n\nimport os\n", CTX, "jobs/x.py")
    assert problems == ["jobs/x.py line 3: import of 'os' is not allowed"]


ALLOWED_PY = """
from __future__ import annotations
import datetime as dt
import re, json, math
from collections import Counter
from decimal import Decimal
from pyspark.sql import DataFrame, Window, functions as F
from pyspark.sql.types import StringType
import pyspark.sql.functions as G
from session_rules import SESSION_GAP_DAYS

@F.udf(StringType())
def clean(s):
    return re.sub(r"\\s+", " ", s or "")

def transform(spark) -> DataFrame:
    w = Window.partitionBy("customer_id").orderBy("order_ts")
    df = spark.table("orders").where("status <> 'cancelled'").filter(F.col("order_id") > 0)
    df = df.selectExpr("order_id", "customer_id AS c").withColumn("x", F.expr("coalesce(c, 0)"))
    df = df.withColumn("n", F.row_number().over(w)).withColumn("s", clean(F.col("status")))
    other = spark.sql("SELECT o.order_id FROM orders o JOIN sales.customers c ON o.customer_id = c.id")
    df = df.withColumn("n2", getattr(F, "col")("n"))
    return df.join(other, "order_id").withColumn("gap", F.lit(SESSION_GAP_DAYS) + G.lit(math.pi))
"""


def test_an_ordinary_pyspark_job_passes():
    assert check_python(ALLOWED_PY, CTX, "jobs/x.py") == []


def test_ordinary_sql_with_ctes_joins_and_table_functions_passes():
    sql = """WITH recent AS (SELECT * FROM orders WHERE order_ts > DATE '2024-01-01')
             SELECT r.order_id, p.category, e.col AS tag, TRY_CAST(i.quantity AS INT) AS q
             FROM recent r JOIN order_items i ON r.order_id = i.order_id
             JOIN products p ON p.product_id = i.product_id
             LATERAL VIEW explode(array('a', 'b')) e
             CROSS JOIN range(3) AS n
             CROSS JOIN sales.customers"""
    assert check_sql(sql, CTX, "jobs/x.sql") == []


def test_every_example_pipeline_job_passes_the_gate():
    manifest = load_manifest(ROOT / "pipelines")
    for pipeline in manifest.pipelines.values():
        source = pipeline.job_source()
        context = GateContext(inputs=frozenset(n.lower() for n in pipeline.inputs),
                              repo_modules=repo_modules(source, pipeline.job_path, pipeline.root))
        assert check_candidate(pipeline, pipeline.root, [pipeline.job], context, may_edit_manifest=True) == [], \
            pipeline.name


def _golden_cases():
    for path in sorted(FIXTURES.glob("*.yml")):
        for case in yaml.safe_load(path.read_text()) or []:
            if case.get("expect"):
                yield pytest.param(case, id=f"{path.stem}:{case['name']}")


@pytest.mark.parametrize("case", _golden_cases())
def test_every_golden_rule_fix_passes_the_gate(case):
    """A rule's correct fix is never refused: the gate must not cost a true heal."""
    inputs = frozenset(n.lower() for n in case.get("inputs", {})) | {"orders", "customers"}
    context = GateContext(inputs=inputs, repo_modules=frozenset({"session_rules", "helpers"}))
    check = check_sql if case.get("kind", "sql") == "sql" else check_python
    assert check(case["expect"], context, "job") == []


def test_a_model_may_not_rebind_inputs_but_a_rule_may(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "j.sql").write_text("SELECT order_id FROM orders")
    (tmp_path / "healer.yml").write_text(
        "pipelines:\n  p:\n    job: jobs/j.sql\n    inputs: {orders: {path: /d/orders}}\n    output: {path: /d/out}\n")
    pipeline = load_manifest(tmp_path).pipeline("p")
    context = GateContext(inputs=frozenset({"orders"}), repo_modules=frozenset())
    assert check_candidate(pipeline, tmp_path, ["healer.yml"], context, may_edit_manifest=True) == []
    [problem] = check_candidate(pipeline, tmp_path, ["healer.yml"], context, may_edit_manifest=False)
    assert "healer.yml" in problem
    assert check_candidate(pipeline, tmp_path, ["jobs/other.txt"], context, may_edit_manifest=True)

