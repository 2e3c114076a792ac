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
     "unknown key (allowed: healing, pipelines, vars)"),
    ("unknown-pipeline-key", one_pipeline(extra="    schedule: daily\n"), None, "daily", "schedule",
     "unknown key (allowed: description, expectations, healing, inputs, job, key, output, owner)"),
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


# -- safety: an output never overwrites an input; a job never lives outside its repo ---


OVERLAPS = [
    # id, inputs, output, the relation the message names
    ("same-relative-path", "orders: {path: data/orders}", "{path: data/orders}", "is the same location as"),
    ("same-with-trailing-slash", "orders: {path: data/orders}", "{path: data/orders/}", "is the same location as"),
    ("same-through-dotdot", "orders: {path: data/orders}", "{path: out/../data/./orders}", "is the same location as"),
    ("same-as-file-uri", "orders: {path: 'file://${ROOT}/data/orders'}", "{path: '${ROOT}/data//orders/'}",
     "is the same location as"),
    ("same-as-file-uri-one-slash", "orders: {path: '${ROOT}/data/orders'}", "{path: 'file:${ROOT}/data/orders'}",
     "is the same location as"),
    ("output-inside-input", "orders: {path: data/orders}", "{path: data/orders/daily}", "lies inside"),
    ("output-contains-input", "orders: {path: data/orders}", "{path: data}", "contains"),
    ("output-contains-a-glob-input", "orders: {path: 'data/orders/*.parquet'}", "{path: data/orders}",
     "is the same location as"),
    ("s3a-same", "orders: {path: 's3a://lake/orders'}", "{path: 's3a://lake/orders/'}", "is the same location as"),
    ("s3a-inside", "orders: {path: 's3a://lake/orders'}", "{path: 's3a://LAKE/orders/x/../daily'}", "lies inside"),
    ("s3-and-s3a-are-one-store", "orders: {path: 's3://lake/orders'}", "{path: 's3a://lake/orders'}",
     "is the same location as"),
    ("second-input", "customers: {path: data/customers}\n      orders: {path: data/orders}",
     "{path: data/orders}", "is the same location as"),
]


@pytest.mark.parametrize("inputs, output, relation", [c[1:] for c in OVERLAPS], ids=[c[0] for c in OVERLAPS])
def test_an_output_that_overlaps_an_input_is_a_one_line_config_error(tmp_path, inputs, output, relation):
    message = config_error(tmp_path, one_pipeline(inputs=inputs, output=output), env={"ROOT": str(tmp_path)})
    assert message.startswith(f"{tmp_path / M}: pipeline 'daily': output: output "), message
    assert f" {relation} input '" in message, message
    assert "orders" in message and "publishing would" in message


def test_the_overlap_message_names_the_output_and_the_input_as_written(tmp_path):
    message = config_error(tmp_path, one_pipeline(inputs="orders: {path: data/orders}", output="{path: data/orders/}"))
    assert message == (f"{tmp_path / M}: pipeline 'daily': output: output {tmp_path / 'data' / 'orders'} is the same "
                       f"location as input 'orders' ({tmp_path / 'data' / 'orders'}): publishing would replace the input")


def test_an_output_reached_through_a_symlink_to_an_input_is_refused(tmp_path):
    (tmp_path / "data" / "orders").mkdir(parents=True)
    (tmp_path / "out").symlink_to(tmp_path / "data")
    message = config_error(tmp_path, one_pipeline(inputs="orders: {path: data/orders}", output="{path: out/orders}"))
    assert "is the same location as input 'orders'" in message


TABLE_OVERLAPS = [
    ("same-table", "orders: {table: sales.orders}", "{table: sales.orders}"),
    ("case-and-backticks", "orders: {table: sales.orders}", "{table: '`Sales`.`Orders`'}"),
    ("unqualified-is-default", "orders: {table: orders}", "{table: spark_catalog.default.orders}"),
]


@pytest.mark.parametrize("inputs, output", [c[1:] for c in TABLE_OVERLAPS], ids=[c[0] for c in TABLE_OVERLAPS])
def test_an_output_table_that_is_an_input_table_is_a_config_error(tmp_path, inputs, output):
    message = config_error(tmp_path, one_pipeline(inputs=inputs, output=output))
    assert message.startswith(f"{tmp_path / M}: pipeline 'daily': output: output table "), message
    assert "is input 'orders' (table " in message and "publishing would replace the input" in message


def test_an_undeclared_sql_input_that_is_the_output_table_is_a_config_error(tmp_path):
    make_repo(tmp_path, "pipelines:\n  daily:\n    job: jobs/daily.sql\n    output: {table: sales.orders}\n",
              {"jobs/daily.sql": "SELECT * FROM sales.orders WHERE amount > 0"})
    with pytest.raises(ConfigError, match=r"output table sales\.orders is input 'sales\.orders'"):
        load_manifest(tmp_path, env={})


NO_OVERLAPS = [
    ("sibling-with-a-common-prefix", "orders: {path: data/orders}", "{path: data/orders_daily}"),
    ("other-bucket", "orders: {path: 's3a://lake/orders'}", "{path: 's3a://lake2/orders'}"),
    ("other-store", "orders: {path: 's3a://lake/orders'}", "{path: 'gs://lake/orders'}"),
    ("local-and-s3", "orders: {path: /lake/orders}", "{path: 's3a://lake/orders'}"),
    ("other-table", "orders: {table: sales.orders}", "{table: sales.orders_daily}"),
    ("other-database", "orders: {table: sales.orders}", "{table: analytics.orders}"),
    ("table-and-path", "orders: {table: sales.orders}", "{path: data/orders}"),
]


@pytest.mark.parametrize("inputs, output", [c[1:] for c in NO_OVERLAPS], ids=[c[0] for c in NO_OVERLAPS])
def test_outputs_apart_from_every_input_load(tmp_path, inputs, output):
    make_repo(tmp_path, one_pipeline(inputs=inputs, output=output))
    assert load_manifest(tmp_path, env={}).pipeline("daily").output is not None


def test_a_job_path_outside_the_repo_is_refused(tmp_path):
    repo = tmp_path / "repo"
    (tmp_path / "elsewhere.sql").write_text(SQL)
    for job in ("../elsewhere.sql", str(tmp_path / "elsewhere.sql"), "jobs/../../elsewhere.sql"):
        message = config_error(make_repo(repo, ""), one_pipeline(job=job))
        assert message.startswith(f"{repo / M}: pipeline 'daily': job: {job} resolves to "), message
        assert f"{tmp_path / 'elsewhere.sql'}, outside the repo {repo}: refused" in message


def test_a_job_symlinked_outside_the_repo_is_refused(tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, one_pipeline(job="jobs/linked.sql"))
    (tmp_path / "elsewhere.sql").write_text(SQL)
    (repo / "jobs" / "linked.sql").symlink_to(tmp_path / "elsewhere.sql")
    message = config_error(repo, one_pipeline(job="jobs/linked.sql"))
    assert f"job: jobs/linked.sql resolves to {tmp_path / 'elsewhere.sql'}, outside the repo" in message


def test_an_expectations_file_symlinked_outside_the_repo_is_refused(tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, one_pipeline())
    (tmp_path / "secrets.yml").write_text(EXPECTATIONS)
    (repo / "jobs" / "linked.expectations.yml").symlink_to(tmp_path / "secrets.yml")
    message = config_error(repo, one_pipeline(extra="    expectations: jobs/linked.expectations.yml\n"))
    assert message.startswith(f"{repo / M}: pipeline 'daily': expectations: jobs/linked.expectations.yml resolves to "
                              f"{tmp_path / 'secrets.yml'}, outside the repo"), message


def test_a_symlink_that_stays_inside_the_repo_is_fine(tmp_path):
    make_repo(tmp_path, one_pipeline(job="jobs/alias.sql"))
    (tmp_path / "jobs" / "alias.sql").symlink_to(tmp_path / "jobs" / "daily.sql")
    assert load_manifest(tmp_path, env={}).pipeline("daily").kind == "sql"


@pytest.mark.slow
def test_healer_run_refuses_an_output_that_is_its_input_and_leaves_the_input_alone(tmp_path):
    """The original finding: this manifest ran "successfully" and replaced its input."""
    import hashlib
    import os
    import subprocess

    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = tmp_path / "repo"
    make_repo(repo, one_pipeline(inputs="orders: {path: data/orders, format: parquet}",
                                 output="{path: data/orders, format: parquet}"))
    (repo / "data" / "orders").mkdir(parents=True)
    pq.write_table(pa.table({"order_id": [1, 2, 3], "amount": [5.0, -1.0, 7.5]}),
                   repo / "data" / "orders" / "part-0.parquet")

    def checksum() -> str:
        digest = hashlib.sha256()
        for f in sorted((repo / "data").rglob("*")):
            digest.update(str(f.relative_to(repo)).encode())
            if f.is_file():
                digest.update(f.read_bytes())
        return digest.hexdigest()

    before = checksum()
    env = {**os.environ, "HEALER_HOME": str(tmp_path / "home")}
    env.pop("HEALER_LEDGER_URL", None)
    done = subprocess.run([str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "healer"), "run", "daily",
                           "--repo", str(repo)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"healer: daily: config failed: {repo / M}: pipeline 'daily': output: output "), lines[0]
    assert f"is the same location as input 'orders' ({repo / 'data' / 'orders'})" in lines[0]
    assert checksum() == before  # the input is untouched, not replaced


def test_an_output_key_is_read_and_a_bad_one_is_one_line(tmp_path):
    from healer.errors import ConfigError
    from healer.manifest import load_manifest

    (tmp_path / "j.sql").write_text("SELECT order_id FROM orders")
    body = "pipelines:\n  p:\n    job: j.sql\n    inputs: {orders: {path: /d/orders}}\n    output: {path: /d/out}\n"
    (tmp_path / "healer.yml").write_text(body + "    key: [order_id, line_no]\n")
    assert load_manifest(tmp_path).pipeline("p").key == ("order_id", "line_no")
    (tmp_path / "healer.yml").write_text(body + "    key: order_id\n")
    assert load_manifest(tmp_path).pipeline("p").key == ("order_id",)
    (tmp_path / "healer.yml").write_text(body + "    key: {a: 1}\n")
    with pytest.raises(ConfigError, match="key") as err:
        load_manifest(tmp_path)
    assert "\n" not in str(err.value)
