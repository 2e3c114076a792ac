"""healer.yml: loading, interpolation, sqlglot input discovery and one-line errors.

Pure Python (no Spark): every test writes a small repo into tmp_path and loads it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from healer.errors import ConfigError
from healer.manifest import load_manifest, sql_job_tables

SQL = "SELECT o.order_id, o.amount FROM orders AS o WHERE o.amount > 0\n"
PY = "def transform(spark):\n    return spark.table('orders')\n"
EXPECTATIONS = "- {expect: row_count_between, min: 1}\n"

VALID = """
vars:
  WAREHOUSE: lake
pipelines:
  daily:
    description: daily orders
    job: jobs/daily.sql
    inputs:
      orders: {path: "${WAREHOUSE}/orders", format: parquet}
    output: {path: out/daily, format: parquet, partition_by: day}
    expectations: jobs/daily.expectations.yml
  cleaned:
    job: jobs/cleaned.py
    inputs:
      orders: {table: sales.orders}
    output: {table: analytics.cleaned}
"""


def make_repo(root: Path, manifest: str, files: dict[str, str] | None = None) -> Path:
    """A repo folder with healer.yml and job files (defaults plus ``files``)."""
    contents = {
        "jobs/daily.sql": SQL,
        "jobs/cleaned.py": PY,
        "jobs/daily.expectations.yml": EXPECTATIONS,
        **(files or {}),
    }
    for rel, text in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "healer.yml").write_text(textwrap.dedent(manifest))
    return root


def config_error(root: Path, manifest: str, files=None, env=None) -> str:
    """Load a broken manifest; return the ConfigError message after checking it is one line."""
    make_repo(root, manifest, files)
    with pytest.raises(ConfigError) as info:
        load_manifest(root, env={} if env is None else env)
    message = str(info.value)
    assert "\n" not in message, f"error is not one line: {message!r}"
    return message


def one_pipeline(job="jobs/daily.sql", inputs='orders: {path: data/orders, format: parquet}',
                 output="{path: out/daily, format: parquet}", extra="") -> str:
    return f"""
pipelines:
  daily:
    job: {job}
    inputs:
      {inputs}
    output: {output}
{extra}"""


# -- a valid manifest ------------------------------------------------------------------


def test_valid_manifest_loads_typed_pipelines(tmp_path):
    make_repo(tmp_path, VALID)
    manifest = load_manifest(tmp_path, env={})

    assert manifest.path == (tmp_path / "healer.yml").resolve()
    assert set(manifest.pipelines) == {"daily", "cleaned"}

    daily = manifest.pipeline("daily")
    assert daily.kind == "sql"
    assert daily.description == "daily orders"
    assert daily.job_path.read_text() == SQL
    assert daily.expectations_path.read_text() == EXPECTATIONS
    orders = daily.inputs["orders"]
    assert orders.path == str((tmp_path / "lake" / "orders").resolve())
    assert orders.table is None and orders.format == "parquet" and orders.declared
    assert daily.output.path == str((tmp_path / "out" / "daily").resolve())
    assert daily.output.partition_by == ("day",)
    assert daily.undeclared_inputs == []

    cleaned = manifest.pipeline("cleaned")
    assert cleaned.kind == "python"
    assert cleaned.inputs["orders"].table == "sales.orders"
    assert cleaned.inputs["orders"].path is None
    assert cleaned.inputs["orders"].location == "table sales.orders"
    assert cleaned.output.table == "analytics.cleaned"
    assert cleaned.expectations is None and cleaned.expectations_path is None


def test_relative_paths_resolve_against_the_manifest_dir_not_the_cwd(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    make_repo(repo, one_pipeline(output='{path: "../shared/out", format: csv}'))
    monkeypatch.chdir(elsewhere)

    # loading by the folder and by the file itself gives the same answer
    for target in (repo, repo / "healer.yml", Path("../repo")):
        pipeline = load_manifest(target, env={}).pipeline("daily")
        assert pipeline.inputs["orders"].path == str(repo / "data" / "orders")
        assert pipeline.output.path == str(tmp_path / "shared" / "out")
        assert pipeline.output.format == "csv"
        assert pipeline.root == repo


def test_absolute_and_url_paths_are_kept_as_written(tmp_path):
    make_repo(tmp_path, one_pipeline(
        inputs='orders: {path: "s3a://bucket/orders", format: json, options: {mode: FAILFAST}}',
        output='{path: /srv/out/daily, format: orc}'))
    pipeline = load_manifest(tmp_path, env={}).pipeline("daily")
    assert pipeline.inputs["orders"].path == "s3a://bucket/orders"
    assert pipeline.inputs["orders"].format == "json"
    assert pipeline.inputs["orders"].options == {"mode": "FAILFAST"}
    assert pipeline.output.path == "/srv/out/daily"


# -- interpolation ---------------------------------------------------------------------


def test_default_syntax_is_used_only_when_the_variable_is_unset(tmp_path):
    make_repo(tmp_path, one_pipeline(inputs='orders: {path: "${WAREHOUSE:-lake}/orders"}',
                                     output='{table: "${SCHEMA:-analytics}.daily"}'))
    unset = load_manifest(tmp_path, env={}).pipeline("daily")
    assert unset.inputs["orders"].path == str(tmp_path / "lake" / "orders")
    assert unset.output.table == "analytics.daily"

    set_ = load_manifest(tmp_path, env={"WAREHOUSE": "/mnt/wh", "SCHEMA": "prod"}).pipeline("daily")
    assert set_.inputs["orders"].path == "/mnt/wh/orders"
    assert set_.output.table == "prod.daily"


def test_default_syntax_treats_an_empty_variable_as_unset(tmp_path):
    make_repo(tmp_path, one_pipeline(inputs='orders: {path: "${WAREHOUSE:-lake}/orders"}'))
    pipeline = load_manifest(tmp_path, env={"WAREHOUSE": ""}).pipeline("daily")
    assert pipeline.inputs["orders"].path == str(tmp_path / "lake" / "orders")


def test_environment_overrides_vars(tmp_path, monkeypatch):
    make_repo(tmp_path, VALID)
    assert load_manifest(tmp_path, env={}).pipeline("daily").inputs["orders"].path == \
        str(tmp_path / "lake" / "orders")
    assert load_manifest(tmp_path, env={"WAREHOUSE": "/data/wh"}).pipeline("daily").inputs["orders"].path == \
        "/data/wh/orders"
    # env=None reads the process environment
    monkeypatch.setenv("WAREHOUSE", "/from/process/env")
    assert load_manifest(tmp_path).pipeline("daily").inputs["orders"].path == "/from/process/env/orders"


def test_undefined_variable_names_file_pipeline_key_and_variable(tmp_path):
    message = config_error(tmp_path, one_pipeline(inputs='orders: {path: "${WAREHOUSE}/orders"}'))
    assert message.startswith(f"{tmp_path / 'healer.yml'}: pipeline 'daily': inputs.orders.path: ")
    assert "undefined variable ${WAREHOUSE}" in message


def test_undefined_variable_in_the_job_path(tmp_path):
    message = config_error(tmp_path, one_pipeline(job='"jobs/${JOB_NAME}.sql"'))
    assert message.startswith(f"{tmp_path / 'healer.yml'}: pipeline 'daily': job: ")
    assert "undefined variable ${JOB_NAME}" in message


# -- one-line errors -------------------------------------------------------------------

M = "healer.yml"
CASES = [
    # id, manifest, extra files, (pipeline or None), key or None, fragment of the message
    ("unknown-top-level-key", "pipeline:\n  daily: {}\n", None, None, "pipeline",
     "unknown key (allowed: pipelines, vars)"),
    ("unknown-pipeline-key", one_pipeline(extra="    schedule: daily\n"), None, "daily", "schedule",
     "unknown key (allowed: description, expectations, inputs, job, output, owner)"),
    ("unknown-input-key", one_pipeline(inputs="orders: {path: data/orders, fromat: parquet}"), None, "daily",
     "inputs.orders.fromat", "unknown key (allowed: format, options, path, table)"),
    ("unknown-output-key", one_pipeline(output="{path: out/daily, mode: overwrite}"), None, "daily",
     "output.mode", "unknown key (allowed: format, options, partition_by, path, table)"),
    ("missing-job-file", one_pipeline(job="jobs/nope.sql"), None, "daily", "job", "job file not found"),
    ("job-not-sql-or-py", one_pipeline(job="jobs/daily.expectations.yml"), None, "daily", "job",
     "unknown job kind '.yml'"),
    ("no-job", "pipelines:\n  daily:\n    output: {path: out}\n", None, "daily", "job", "required"),
    ("unknown-input-format", one_pipeline(inputs="orders: {path: data/orders, format: delta}"), None, "daily",
     "inputs.orders.format", "unknown format 'delta'"),
    ("unknown-output-format", one_pipeline(output="{path: out/daily, format: xlsx}"), None, "daily",
     "output.format", "unknown format 'xlsx'"),
    ("path-and-table", one_pipeline(inputs="orders: {path: data/orders, table: sales.orders}"), None, "daily",
     "inputs.orders", "exactly one of 'path'"),
    ("table-with-format", one_pipeline(inputs="orders: {table: sales.orders, format: parquet}"), None, "daily",
     "inputs.orders.format", "a catalog table has no format"),
    ("no-output", "pipelines:\n  daily:\n    job: jobs/daily.sql\n", None, "daily", "output", "required"),
    ("missing-expectations-file", one_pipeline(extra="    expectations: jobs/missing.yml\n"), None, "daily",
     "expectations", "expectations file not found"),
    ("sql-two-statements", one_pipeline(), {"jobs/daily.sql": "SELECT 1 AS a;\nSELECT * FROM orders;\n"}, "daily",
     "job", "exactly one SELECT statement (found 2 statements)"),
    ("sql-insert", one_pipeline(), {"jobs/daily.sql": "INSERT INTO daily SELECT * FROM orders"}, "daily", "job",
     "a single SELECT query (found INSERT)"),
    ("sql-empty", one_pipeline(), {"jobs/daily.sql": "-- nothing here\n"}, "daily", "job",
     "found 0 statements"),
    ("py-without-transform", one_pipeline(job="jobs/cleaned.py"),
     {"jobs/cleaned.py": "def run(spark):\n    return spark.table('orders')\n"}, "daily", "job",
     "must define a top-level 'def transform(spark)'"),
    ("py-transform-without-spark", one_pipeline(job="jobs/cleaned.py"),
     {"jobs/cleaned.py": "def transform():\n    return None\n"}, "daily", "job",
     "transform must take the SparkSession"),
    ("py-syntax-error", one_pipeline(job="jobs/cleaned.py"),
     {"jobs/cleaned.py": "def transform(spark):\n    return spark.table('orders'\n"}, "daily", "job",
     "Python syntax error in"),
    ("py-without-inputs", "pipelines:\n  daily:\n    job: jobs/cleaned.py\n    output: {path: out}\n", None,
     "daily", "inputs", "a PySpark job must declare its inputs"),
    ("non-mapping-file", "- daily\n- weekly\n", None, None, None, "expected a mapping with a 'pipelines' key"),
    ("empty-pipelines", "pipelines: {}\n", None, None, "pipelines", "non-empty mapping"),
    ("vars-not-a-mapping", "vars: [A, B]\n" + one_pipeline(), None, None, "vars", "expected a mapping"),
    ("invalid-yaml", "pipelines:\n  daily: {job: [unclosed\n", None, None, None, "invalid YAML at line"),
]


@pytest.mark.parametrize("manifest, files, pipeline, key, fragment",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_errors_are_one_line_naming_file_pipeline_and_key(tmp_path, manifest, files, pipeline, key, fragment):
    message = config_error(tmp_path, manifest, files)
    prefix = str(tmp_path / M)
    if pipeline:
        prefix += f": pipeline '{pipeline}'"
    if key:
        prefix += f": {key}"
    assert message.startswith(prefix + ": "), message
    assert fragment in message, message


def test_python_syntax_error_names_the_line(tmp_path):
    message = config_error(tmp_path, one_pipeline(job="jobs/cleaned.py"),
                           {"jobs/cleaned.py": "import os\n\ndef transform(spark)\n    return 1\n"})
    assert str(tmp_path / "jobs" / "cleaned.py") in message
    assert "line 3" in message


def test_missing_manifest(tmp_path):
    with pytest.raises(ConfigError, match=r"no healer\.yml found"):
        load_manifest(tmp_path, env={})


def test_unknown_pipeline_lists_the_known_ones(tmp_path):
    make_repo(tmp_path, VALID)
    manifest = load_manifest(tmp_path, env={})
    with pytest.raises(ConfigError) as info:
        manifest.pipeline("weekly")
    assert str(info.value) == f"{tmp_path / M}: unknown pipeline 'weekly' (known: cleaned, daily)"


# -- SQL inputs found by sqlglot -------------------------------------------------------


def test_sql_inputs_that_are_not_declared_are_found_by_sqlglot(tmp_path):
    sql = """
    WITH recent AS (SELECT * FROM orders WHERE order_ts > '2024-06-01'),
         big AS (SELECT customer_id FROM recent WHERE amount > 100)
    SELECT c.name, r.order_id
    FROM recent AS r
    JOIN customers AS c ON c.customer_id = r.customer_id
    WHERE r.customer_id IN (SELECT customer_id FROM vip_list)
      AND r.customer_id IN (SELECT customer_id FROM big)
    """
    make_repo(tmp_path, one_pipeline(), {"jobs/daily.sql": sql})
    pipeline = load_manifest(tmp_path, env={}).pipeline("daily")

    assert pipeline.undeclared_inputs == ["customers", "vip_list"]  # CTE names 'recent' and 'big' excluded
    assert set(pipeline.inputs) == {"orders", "customers", "vip_list"}
    assert pipeline.inputs["orders"].declared and pipeline.inputs["orders"].path is not None
    customers = pipeline.inputs["customers"]
    assert customers.table == "customers" and customers.path is None and not customers.declared


def test_sql_job_may_omit_inputs_entirely(tmp_path):
    make_repo(tmp_path, "pipelines:\n  daily:\n    job: jobs/daily.sql\n    output: {path: out}\n",
              {"jobs/daily.sql": "SELECT * FROM sales.orders o JOIN sales.customers c USING (customer_id)"})
    pipeline = load_manifest(tmp_path, env={}).pipeline("daily")
    assert pipeline.undeclared_inputs == ["sales.customers", "sales.orders"]
    assert pipeline.inputs["sales.orders"].table == "sales.orders"


def test_sql_job_tables_on_text_sqlglot_cannot_parse_leaves_it_to_spark():
    assert sql_job_tables("SELECT FROM WHERE ((") == []


def test_sql_name_matching_is_case_insensitive_like_spark(tmp_path):
    sql = "WITH Recent AS (SELECT * FROM ORDERS) SELECT * FROM recent"
    make_repo(tmp_path, one_pipeline(), {"jobs/daily.sql": sql})
    pipeline = load_manifest(tmp_path, env={}).pipeline("daily")
    assert pipeline.undeclared_inputs == []
