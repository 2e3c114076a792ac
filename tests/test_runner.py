"""Write-audit-publish on a real local Spark: each stage's failure, records and untouched outputs.

About ten pipeline runs in all. One good run of revenue_by_category (module-scoped) is shared:
its output is copied in as "the previous output" wherever a failure must leave it untouched.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import uuid
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from healer.errors import RunFailed
from healer.ledger import Ledger
from healer.runner.profile import schema_columns
from healer.runner.run import run_pipeline

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = "revenue_by_category"


# -- helpers ---------------------------------------------------------------------------


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(base: Path, retail_data: Path) -> Path:
    """Like the pipeline_repo fixture, for module-scoped scenarios (no origin needed)."""
    repo = base / "repo"
    shutil.copytree(ROOT / "pipelines", repo, ignore=shutil.ignore_patterns("data", "output", "__pycache__", "*.pyc"))
    shutil.copytree(retail_data, repo / "data")
    (repo / ".gitignore").write_text("data/\noutput/\n__pycache__/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "user.name", "Dev")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "retail pipelines")
    return repo


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder (hidden ones included) with its bytes."""
    assert folder.is_dir(), f"{folder} does not exist"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(output_parent: Path) -> list[str]:
    return sorted(p.name for p in output_parent.iterdir() if "healer-staging" in p.name)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def read_output(path: Path):
    return pq.read_table(str(path))  # pyarrow skips _SUCCESS and .crc files


@pytest.fixture(scope="module")
def good_run(spark, retail_data, tmp_path_factory):
    """revenue_by_category run once successfully: (repo, record, ledger)."""
    base = tmp_path_factory.mktemp("good-run")
    repo = make_repo(base, retail_data)
    ledger = Ledger(f"sqlite:///{base / 'ledger.db'}")
    record = run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger, context={"source": "test"})
    return repo, record, ledger


def with_previous_output(repo: Path, good_run) -> Path:
    """Put the good run's published output in place; return the output folder."""
    out = repo / "output" / PIPELINE
    shutil.copytree(good_run[0] / "output" / PIPELINE, out)
    return out


# -- success ---------------------------------------------------------------------------


def test_revenue_by_category_records_schemas_profiles_and_commit(good_run):
    repo, record, ledger = good_run
    assert record.ok and record.stage is None and record.error_class is None
    assert record.commit == git(repo, "rev-parse", "HEAD") and record.dirty is False
    assert record.context == {"source": "test"}
    assert record.duration_s > 0 and record.finished_at >= record.started_at

    # output exists, with the recorded row count
    out = repo / "output" / PIPELINE
    table = read_output(out)
    assert record.output_location == str(out)
    assert record.row_count == table.num_rows > 0
    assert leftovers(out.parent) == []

    # input schemas: per logical input, Spark's schema JSON of what was read
    assert set(record.input_schemas) == {"order_items", "orders", "products"}
    assert record.input_locations["order_items"] == str(repo / "data" / "order_items")
    for name, schema in record.input_schemas.items():
        assert schema["type"] == "struct"
        parquet_columns = pq.read_schema(next((repo / "data" / name).glob("*.parquet"))).names
        assert [f["name"] for f in schema["fields"]] == parquet_columns
    assert schema_columns(record.input_schemas["order_items"])["unit_price"] == "double"
    assert schema_columns(record.input_schemas["orders"])["order_ts"] == "timestamp"

    # input profiles (bounded samples; the test data is below the bound)
    items = pq.read_table(str(repo / "data" / "order_items"))
    items_profile = record.input_profiles["order_items"]
    assert items_profile["row_count"] == items.num_rows == 3000
    price = items_profile["columns"]["unit_price"]
    assert price["null_fraction"] == 0.0
    assert price["min"] == pc.min(items["unit_price"]).as_py()
    assert price["max"] == pc.max(items["unit_price"]).as_py()
    assert math.isclose(price["sum"], pc.sum(items["unit_price"]).as_py(), rel_tol=1e-9)
    assert items_profile["columns"]["quantity"]["min"] == 1 and items_profile["columns"]["quantity"]["max"] == 5

    # output schema and profile
    assert schema_columns(record.output_schema) == {
        "category": "string", "month": "date", "orders": "bigint", "units": "bigint", "revenue": "double"}
    prof = record.output_profile
    assert prof["row_count"] == table.num_rows
    revenue = prof["columns"]["revenue"]
    assert revenue["null_fraction"] == 0.0
    assert revenue["min"] == pc.min(table["revenue"]).as_py() and revenue["max"] == pc.max(table["revenue"]).as_py()
    assert math.isclose(revenue["sum"], pc.sum(table["revenue"]).as_py(), rel_tol=1e-9)
    assert prof["columns"]["category"]["distinct"] == 8
    assert "sum" not in prof["columns"]["category"]
    assert prof["columns"]["month"]["min"] == "2024-01-01" and prof["columns"]["month"]["max"] == "2024-12-01"

    # all of it round-trips through the ledger
    stored = ledger.get_run(record.id)
    assert stored.status == "success" and stored.row_count == record.row_count
    assert stored.input_schemas == record.input_schemas
    assert stored.input_profiles == record.input_profiles
    assert stored.output_profile == record.output_profile
    assert stored.commit == record.commit
    assert ledger.last_success(PIPELINE).id == record.id


@pytest.mark.parametrize("name", ["customer_lifetime", "customer_sessions", "clean_customers"])
def test_example_pipeline_runs(spark, ledger, pipeline_repo, name):
    record = run_pipeline(pipeline_repo, name, spark=spark, ledger=ledger)
    out = pipeline_repo / "output" / name
    table = read_output(out)
    assert record.ok and record.output_location == str(out)
    assert record.row_count == table.num_rows == record.output_profile["row_count"]
    assert sorted(table.column_names) == sorted(f["name"] for f in record.output_schema["fields"])
    assert record.commit == git(pipeline_repo, "rev-parse", "HEAD")
    assert ledger.last_success(name).id == record.id
    data = pipeline_repo / "data"
    if name == "clean_customers":  # one row per customer, names trimmed, emails lower-cased
        assert table.num_rows == pq.read_table(str(data / "customers")).num_rows
        assert all(n == n.strip() for n in table["name"].to_pylist())
        assert all(e == e.lower() for e in table["email"].to_pylist())
    elif name == "customer_lifetime":  # one row per distinct paid order
        orders = pq.read_table(str(data / "orders"))
        assert table.num_rows == len(set(orders["order_id"].to_pylist()))
    else:  # sessions cover every distinct order once
        orders = pq.read_table(str(data / "orders"))
        assert pc.sum(table["orders"]).as_py() == len(set(orders["order_id"].to_pylist()))


# -- failures at each stage ------------------------------------------------------------


def test_job_crash_fails_at_job_and_leaves_previous_output_untouched(spark, ledger, pipeline_repo, good_run):
    out = with_previous_output(pipeline_repo, good_run)
    before = snapshot(out)
    edit(pipeline_repo / "jobs" / f"{PIPELINE}.sql", "i.unit_price", "i.unit_prize")

    with pytest.raises(RunFailed) as info:
        run_pipeline(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)

    assert info.value.stage == "job"
    run = info.value.run
    assert run.status == "failed" and run.stage == "job"
    assert run.error_class.startswith("UNRESOLVED_COLUMN"), run.error_class
    assert "unit_prize" in run.error_params["objectName"]
    assert "unit_price" in run.error_params.get("proposal", "")
    assert "unit_prize" in run.error_message and run.traceback
    assert run.dirty is True  # the job file was edited after the commit
    assert run.input_schemas and run.output_profile is None
    assert snapshot(out) == before
    assert leftovers(out.parent) == []
    stored = ledger.get_run(run.id)
    assert (stored.status, stored.stage, stored.error_class) == ("failed", "job", run.error_class)
    assert stored.error_params == run.error_params


@pytest.fixture(scope="module")
def audit_failure(spark, retail_data, tmp_path_factory, good_run):
    """revenue_by_category with its revenue expectation tightened to max: 1, over a previous output."""
    base = tmp_path_factory.mktemp("audit-failure")
    repo = make_repo(base, retail_data)
    out = with_previous_output(repo, good_run)
    before = snapshot(out)
    edit(repo / "jobs" / f"{PIPELINE}.expectations.yml", "column: revenue, min: 0}", "column: revenue, min: 0, max: 1}")
    ledger = Ledger(f"sqlite:///{base / 'ledger.db'}")
    with pytest.raises(RunFailed) as info:
        run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger)
    return {"repo": repo, "out": out, "before": before, "error": info.value, "ledger": ledger}


def test_audit_failure_fails_at_audit_and_publishes_nothing(audit_failure, good_run):
    error, out = audit_failure["error"], audit_failure["out"]
    run = error.run
    assert error.stage == "audit" and run.stage == "audit"
    assert run.error_class == "EXPECTATIONS_FAILED"
    assert "expectations failed" in run.error_message
    assert len(run.failed_expectations) == 1
    failed = run.failed_expectations[0]
    assert failed["success"] is False
    assert failed["unexpected_count"] == failed["element_count"] == run.row_count == good_run[1].row_count
    assert failed["examples"] and all(v > 1 for v in failed["examples"])  # revenue values above max: 1
    # the staged result was profiled before the audit rejected it
    assert run.output_profile["row_count"] == run.row_count
    # the previous output is byte-for-byte intact and no staging folder is left behind
    assert snapshot(out) == audit_failure["before"]
    assert leftovers(out.parent) == []
    stored = audit_failure["ledger"].get_run(run.id)
    assert stored.stage == "audit" and stored.failed_expectations == run.failed_expectations


def test_audit_failure_names_the_expectation_that_failed(audit_failure):
    failed = audit_failure["error"].run.failed_expectations[0]
    assert failed["expectation"] == "column_values_between(column=revenue, min=0, max=1)"
    assert failed["column"] == "revenue"


def test_missing_input_fails_at_input(spark, ledger, pipeline_repo):
    shutil.rmtree(pipeline_repo / "data" / "products")
    with pytest.raises(RunFailed) as info:
        run_pipeline(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)
    run = info.value.run
    assert info.value.stage == run.stage == "input"
    assert run.error_class == "INPUT_NOT_FOUND"
    assert run.error_params == {"input": "products", "location": str(pipeline_repo / "data" / "products")}
    assert "products" in run.error_message
    assert set(run.input_schemas) == {"order_items", "orders"}  # read before the missing one
    assert not (pipeline_repo / "output").exists()
    assert ledger.get_run(run.id).stage == "input"


def test_bad_manifest_fails_at_config_and_is_recorded(ledger, pipeline_repo):
    manifest = pipeline_repo / "healer.yml"
    edit(manifest, "    expectations: jobs/revenue_by_category.expectations.yml",
         "    expectations: jobs/revenue_by_category.expectations.yml\n    schedule: hourly")
    with pytest.raises(RunFailed) as info:
        run_pipeline(pipeline_repo, PIPELINE, ledger=ledger)  # no Spark needed to fail here
    run = info.value.run
    assert info.value.stage == "config"
    assert f"{manifest}: pipeline '{PIPELINE}': schedule: unknown key" in run.error_message
    stored = ledger.get_run(run.id)
    assert (stored.status, stored.stage, stored.error_class) == ("failed", "config", "ConfigError")
    assert stored.commit == git(pipeline_repo, "rev-parse", "HEAD") and stored.dirty is True
    assert ledger.last_success(PIPELINE) is None

    git(pipeline_repo, "checkout", "--", "healer.yml")
    run = run_pipeline(pipeline_repo, "no_such_pipeline", ledger=ledger, check=False)  # returned, not raised
    assert (run.status, run.stage) == ("failed", "config")
    assert "unknown pipeline 'no_such_pipeline' (known: " in run.error_message
    stored = ledger.get_run(run.id)
    assert stored.pipeline == "no_such_pipeline" and stored.dirty is False


def test_table_input(spark, ledger, pipeline_repo, good_run):
    table = f"retail_products_{uuid.uuid4().hex[:8]}"
    spark.read.parquet(str(pipeline_repo / "data" / "products")).write.saveAsTable(table)
    try:
        shutil.rmtree(pipeline_repo / "data" / "products")  # only the catalog table is left to read
        edit(pipeline_repo / "healer.yml",
             'products:    {path: "${WAREHOUSE}/products", format: parquet}', f"products: {{table: {table}}}")
        record = run_pipeline(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    assert record.ok
    assert record.input_locations["products"] == f"table {table}"
    assert "category" in schema_columns(record.input_schemas["products"])
    assert record.input_profiles["products"]["row_count"] > 0
    # same data through a table gives the same result as through the path
    key = [("category", "ascending"), ("month", "ascending")]
    got = read_output(pipeline_repo / "output" / PIPELINE).sort_by(key).to_pylist()
    want = read_output(good_run[0] / "output" / PIPELINE).sort_by(key).to_pylist()
    assert len(got) == len(want) == record.row_count
    for g, w in zip(got, want):
        assert {k: g[k] for k in ("category", "month", "orders", "units")} == \
            {k: w[k] for k in ("category", "month", "orders", "units")}
        assert math.isclose(g["revenue"], w["revenue"], abs_tol=0.011)


def test_sql_job_reading_a_qualified_catalog_table(spark, ledger, pipeline_repo):
    from pyspark.errors import AnalysisException

    table = f"default.retail_products_{uuid.uuid4().hex[:8]}"
    spark.read.parquet(str(pipeline_repo / "data" / "products")).write.saveAsTable(table)
    (pipeline_repo / "jobs" / "products_per_category.sql").write_text(
        f"SELECT category, COUNT(*) AS products FROM {table} GROUP BY category")
    with (pipeline_repo / "healer.yml").open("a") as f:
        f.write("\n  products_per_category:\n    job: jobs/products_per_category.sql\n"
                '    output: {path: "${OUTPUT}/products_per_category", format: parquet}\n')
    try:
        try:
            record = run_pipeline(pipeline_repo, "products_per_category", spark=spark, ledger=ledger)
        except AnalysisException:
            last = ledger.runs(limit=1)[0]
            assert last.error_class != "InternalError", "raw Spark error escaped run_pipeline"
            raise
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    assert record.ok and record.row_count == 8
    assert record.input_locations == {table: f"table {table}"}


def test_drifted_input_fails_at_job_with_the_drift_in_the_record(spark, ledger, pipeline_repo, good_run):
    from pipelines.drift import rename_column

    rename_column(pipeline_repo / "data", "order_items", "unit_price", "price")
    with pytest.raises(RunFailed) as info:
        run_pipeline(pipeline_repo, PIPELINE, spark=spark, ledger=ledger)
    run = info.value.run
    assert run.stage == "job"
    assert run.error_class.startswith("UNRESOLVED_COLUMN"), run.error_class
    assert "unit_price" in run.error_params["objectName"]
    assert run.dirty is False  # the code did not change; the data did
    # the record holds the evidence: the input schema now versus the last good run's
    now = schema_columns(run.input_schemas["order_items"])
    then = schema_columns(good_run[1].input_schemas["order_items"])
    assert set(then) - set(now) == {"unit_price"} and set(now) - set(then) == {"price"}
    assert now["price"] == then["unit_price"] == "double"
    assert not (pipeline_repo / "output").exists()
