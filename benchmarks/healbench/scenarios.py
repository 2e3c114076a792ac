"""The HealBench scenarios: a pipeline, what breaks it, and the fix a careful engineer writes.

A scenario names a repo template (``retail``: the example pipelines in ``pipelines/``;
``bench``: the extra pipelines in ``benchmarks/healbench/pipelines/``), the pipeline, an
optional ``setup`` of the data before the first good run, the ``drift`` (an upstream data
change, or a bad commit), and the ``golden`` fix: hand-written edits to the repo at the
failing commit. ``rule`` is the fixer expected to heal it; ``None`` means no safe fix
exists and the right answer is to decline.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import drift

Step = Callable[[Path], None]  # gets the repo root; data lives in <repo>/data


@dataclass(frozen=True)
class Scenario:
    name: str
    template: str  # retail | bench
    pipeline: str
    kind: str  # sql | python
    drift: Step
    golden: Step | None = None  # None: no safe fix exists
    rule: str | None = None  # the fixer expected to heal it; None: decline
    setup: Step | None = None
    what: str = ""
    code_fault: bool = False  # broken by a commit to the pipeline's code (issue 17), not by its data

    @property
    def healable(self) -> bool:
        return self.rule is not None


# -- small tools -----------------------------------------------------------------------------------

def edit(repo: Path, path: str, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) in a repo file."""
    target = repo / path
    text = target.read_text()
    if old not in text:
        raise AssertionError(f"{path}: {old!r} not found")
    target.write_text(text.replace(old, new))


def write(repo: Path, path: str, text: str) -> None:
    (repo / path).write_text(text)


def commit(repo: Path, message: str) -> None:
    """Commit everything as a team member and push it, as a deploy would."""
    for args in (["add", "-A"], ["-c", "user.name=Data Team", "-c", "user.email=data@example.com", "commit", "-q",
                                 "-m", message], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)


def data(repo: Path) -> Path:
    return repo / "data"


# -- set-ups: columns an upstream team already ships before the first good run --------------------

def add_line_columns(repo: Path) -> None:
    """order_items gets line_total (after discount) and qty_text (the quantity as text)."""

    def change(t: pa.Table) -> pa.Table:
        q = pc.cast(t.column("quantity"), pa.float64())
        total = pc.round(pc.multiply(pc.multiply(q, t.column("unit_price")),
                                     pc.subtract(pa.scalar(1.0), t.column("discount"))), 2)
        t = t.append_column("line_total", total)
        return t.append_column("qty_text", pc.cast(t.column("quantity"), pa.string()))

    drift._rewrite(data(repo), "order_items", change)


CITIES = {"US": ["Boston", "Denver"], "GB": ["Leeds", "Bristol"], "DE": ["Bonn", "Kiel"], "FR": ["Lyon", "Nantes"],
          "NL": ["Delft", "Utrecht"], "ES": ["Vigo", "Malaga"], "IT": ["Turin", "Bari"], "SE": ["Lund", "Umea"],
          "PL": ["Lodz", "Gdansk"], "CA": ["Halifax", "Regina"]}


def add_address(repo: Path) -> None:
    """customers gets address: struct<city, country>."""

    def change(t: pa.Table) -> pa.Table:
        country = t.column("country").to_pylist()
        ids = t.column("customer_id").to_pylist()
        city = [CITIES[c][i % 2] for c, i in zip(country, ids)]
        address = pa.StructArray.from_arrays([pa.array(city), pa.array(country)], names=["city", "country"])
        return t.append_column("address", address)

    drift._rewrite(data(repo), "customers", change)


def add_payload(repo: Path) -> None:
    """orders gets the raw event as JSON text: {"customer": {"id": ..}, "source": {"channel": ..}}."""
    import json

    def change(t: pa.Table) -> pa.Table:
        docs = [json.dumps({"customer": {"id": c}, "source": {"channel": ch}})
                for c, ch in zip(t.column("customer_id").to_pylist(), t.column("channel").to_pylist())]
        return t.append_column("payload", pa.array(docs, pa.string()))

    drift._rewrite(data(repo), "orders", change)


def move_buyer_in_payload(repo: Path) -> None:
    """The event schema v2 moves the customer under "buyer": {"buyer": {"id": ..}, "source": ..}."""
    import json

    def change(t: pa.Table) -> pa.Table:
        docs = []
        for doc in t.column("payload").to_pylist():
            d = json.loads(doc)
            docs.append(json.dumps({"buyer": d["customer"], "source": d["source"], "version": 2}))
        return t.set_column(t.column_names.index("payload"), "payload", pa.array(docs, pa.string()))

    drift._rewrite(data(repo), "orders", change)


def split_price(repo: Path) -> None:
    """unit_price replaced by a net and a gross price, neither equal to it."""

    def change(t: pa.Table) -> pa.Table:
        price = t.column("unit_price")
        t = t.drop_columns(["unit_price"])
        t = t.append_column("net_price", pc.round(pc.multiply(price, 0.9), 2))
        return t.append_column("gross_price", pc.round(pc.multiply(price, 1.2), 2))

    drift._rewrite(data(repo), "order_items", change)


def line_total_instead_of_price(repo: Path) -> None:
    """unit_price dropped; line_total (quantity x unit_price) added: derivable, but only a model sees it."""

    def change(t: pa.Table) -> pa.Table:
        total = pc.round(pc.multiply(t.column("unit_price"), pc.cast(t.column("quantity"), pa.float64())), 2)
        return t.drop_columns(["unit_price"]).append_column("line_total", total)

    drift._rewrite(data(repo), "order_items", change)


def month_year_text(repo: Path) -> None:
    """signup_date now arrives as "March 2021": no day, nothing a date can be read from."""
    drift.map_values(data(repo), "customers", "signup_date", lambda c: pc.strftime(c, format="%B %Y"))


# -- the jobs of the dialect scenarios (channel_mix as other engines write it) ---------------------

SPARK_CHANNEL_MIX = """-- Orders per channel and month; replayed order events are counted once.
SELECT
  channel,
  {month} AS month,
  COUNT(DISTINCT order_id) AS orders,
  {last_status} AS last_status
FROM orders
GROUP BY channel, {month}
"""

DIALECT_JOBS = {
    "tsql": ("""-- Orders per channel and month; replayed order events are counted once.
SELECT TOP 1000
  [channel],
  DATEFROMPARTS(YEAR(order_ts), MONTH(order_ts), 1) AS month,
  COUNT(DISTINCT order_id) AS orders,
  ISNULL(MAX(status), 'none') AS last_status
FROM orders
GROUP BY [channel], DATEFROMPARTS(YEAR(order_ts), MONTH(order_ts), 1)
ORDER BY [channel], month
""", """-- Orders per channel and month; replayed order events are counted once.
SELECT
  channel,
  MAKE_DATE(YEAR(order_ts), MONTH(order_ts), 1) AS month,
  COUNT(DISTINCT order_id) AS orders,
  COALESCE(MAX(status), 'none') AS last_status
FROM orders
GROUP BY channel, MAKE_DATE(YEAR(order_ts), MONTH(order_ts), 1)
ORDER BY channel, month
LIMIT 1000
"""),
    "bigquery": ("""-- Orders per channel and month; replayed order events are counted once.
SELECT
  channel,
  DATE_TRUNC(DATE(order_ts), MONTH) AS month,
  COUNT(DISTINCT order_id) AS orders,
  IFNULL(MAX(status), 'none') AS last_status
FROM `orders`
GROUP BY channel, month
""", SPARK_CHANNEL_MIX.format(month="TRUNC(DATE(order_ts), 'MM')", last_status="COALESCE(MAX(status), 'none')")),
    "snowflake": ("""-- Orders per channel and month; replayed order events are counted once.
SELECT
  channel,
  DATE_TRUNC('MONTH', order_ts)::DATE AS month,
  COUNT(DISTINCT order_id) AS orders,
  IFF(MAX(status) IS NULL, 'none', MAX(status)) AS last_status
FROM orders
GROUP BY channel, DATE_TRUNC('MONTH', order_ts)::DATE
""", SPARK_CHANNEL_MIX.format(month="CAST(date_trunc('MONTH', order_ts) AS DATE)",
                              last_status="IF(MAX(status) IS NULL, 'none', MAX(status))")),
    "postgres": ("""-- Orders per channel and month; replayed order events are counted once.
SELECT
  "channel",
  date_trunc('month', "order_ts")::date AS "month",
  COUNT(DISTINCT "order_id") AS "orders",
  COALESCE(MAX("status"), 'none') AS "last_status"
FROM "orders"
GROUP BY 1, 2
""", SPARK_CHANNEL_MIX.format(month="CAST(date_trunc('MONTH', order_ts) AS DATE)",
                              last_status="COALESCE(MAX(status), 'none')")),
    "mysql": ("""-- Orders per channel and month; replayed order events are counted once.
SELECT
  channel,
  CAST(DATE_FORMAT(order_ts, '%Y-%m-01') AS DATE) AS month,
  COUNT(DISTINCT order_id) AS orders,
  IFNULL(MAX(status), 'none') AS last_status
FROM orders
GROUP BY channel, CAST(DATE_FORMAT(order_ts, '%Y-%m-01') AS DATE)
""", SPARK_CHANNEL_MIX.format(month="CAST(DATE_FORMAT(order_ts, 'yyyy-MM-01') AS DATE)",
                              last_status="COALESCE(MAX(status), 'none')")),
    "duckdb": ("""-- Orders per channel and month; replayed order events are counted once.
SELECT
  channel,
  strftime(order_ts, '%Y-%m-01')::DATE AS month,
  COUNT(DISTINCT order_id) AS orders,
  COALESCE(MAX(status), 'none') AS last_status
FROM orders
GROUP BY ALL
""", SPARK_CHANNEL_MIX.format(month="CAST(DATE_FORMAT(order_ts, 'yyyy-MM-01') AS DATE)",
                              last_status="COALESCE(MAX(status), 'none')")),
}

PY_TSQL = '''"""Orders per channel and month; replayed order events are counted once."""


def transform(spark):
    return spark.sql("""
        SELECT TOP 1000 [channel],
               DATEFROMPARTS(YEAR(order_ts), MONTH(order_ts), 1) AS month,
               COUNT(DISTINCT order_id) AS orders,
               ISNULL(MAX(status), 'none') AS last_status
        FROM orders
        GROUP BY [channel], DATEFROMPARTS(YEAR(order_ts), MONTH(order_ts), 1)
    """)
'''
PY_TSQL_FIXED = '''"""Orders per channel and month; replayed order events are counted once."""


def transform(spark):
    return spark.sql("""
        SELECT channel,
               MAKE_DATE(YEAR(order_ts), MONTH(order_ts), 1) AS month,
               COUNT(DISTINCT order_id) AS orders,
               COALESCE(MAX(status), 'none') AS last_status
        FROM orders
        GROUP BY channel, MAKE_DATE(YEAR(order_ts), MONTH(order_ts), 1)
        LIMIT 1000
    """)
'''


def dialect_commit(dialect: str) -> Step:
    def step(repo: Path) -> None:
        write(repo, "jobs/channel_mix.sql", DIALECT_JOBS[dialect][0])
        commit(repo, f"channel_mix: port the query from the {dialect} warehouse")
    return step


def dialect_golden(dialect: str) -> Step:
    return lambda repo: write(repo, "jobs/channel_mix.sql", DIALECT_JOBS[dialect][1])


# -- golden edits that are the same across scenarios -----------------------------------------------

REVENUE = "jobs/revenue_by_category.sql"
CLEAN = "jobs/clean_customers.py"
CUSTOMERS_READ = 'customers = spark.table("customers")'


def revenue_columns(mapping: dict[str, str]) -> Step:
    def step(repo: Path) -> None:
        text = (repo / REVENUE).read_text()
        for old, new in mapping.items():
            text = text.replace(f"i.{old}", f"i.{new}")
        write(repo, REVENUE, text)
    return step


def zero_quantities(repo: Path) -> None:
    drift.set_values(data(repo), "order_items", "quantity", 0, fraction=0.005)


def corrected_names(repo: Path) -> None:
    """The CRM re-sent 5% of customers with their names in capitals: same ids, different rows."""
    def amend(t: pa.Table) -> pa.Table:
        return t.set_column(t.column_names.index("name"), "name", pc.utf8_upper(t.column("name")))

    drift.replay_rows(data(repo), "customers", fraction=0.05, amend=amend)


# -- drift that comes in pairs (issue 17): one release does two things ----------------------------

def widen(repo: Path, table: str, columns: dict[str, pa.DataType]) -> None:
    """Upstream widened some columns' types (INT -> BIGINT, ...); the values are the same."""

    def change(t: pa.Table) -> pa.Table:
        for c, typ in columns.items():
            t = t.set_column(t.column_names.index(c), c, pc.cast(t.column(c), typ))
        return t

    drift._rewrite(data(repo), table, change)


def onboard_rows(repo: Path, table: str, fraction: float, amend, seed: int = 23) -> None:
    """A new source is onboarded: ``amend``ed copies of a seeded fraction of rows appended at the
    end of the table, past the first rows a bounded profile reads."""
    import numpy as np

    def change(t: pa.Table) -> pa.Table:
        rng = np.random.default_rng(seed)
        copies = t.take(pa.array(np.flatnonzero(rng.random(t.num_rows) < fraction)))
        return pa.concat_tables([t, amend(copies)])

    drift._rewrite(data(repo), table, change)


def _set(t: pa.Table, column: str, values) -> pa.Table:
    typ = t.schema.field(column).type
    return t.set_column(t.column_names.index(column), column, pa.array(values, typ) if isinstance(values, list)
                        else pc.cast(values, typ))


def _nulls(t: pa.Table, column: str) -> pa.Table:
    return _set(t, column, [None] * t.num_rows)


def marketplace_orders(repo: Path) -> None:
    """Orders of a newly onboarded marketplace arrive without order_ts (new order ids, at the end)."""
    onboard_rows(repo, "orders", 0.015, lambda t: _nulls(_set(t, "order_id", pc.add(t.column("order_id"), 5_000_000)),
                                                       "order_ts"))


def provider_payments(repo: Path) -> None:
    """Payments of a newly onboarded provider arrive without paid_at (new ids, at the end)."""
    onboard_rows(repo, "payments", 0.02, lambda t: _nulls(_set(t, "payment_id", pc.add(t.column("payment_id"), 5_000_000)),
                                                         "paid_at"))


def sample_orders(repo: Path) -> None:
    """A free-sample programme is onboarded: new orders whose lines all have quantity 0 and line_total 0."""

    def amend(t: pa.Table) -> pa.Table:
        t = _set(t, "order_id", pc.add(t.column("order_id"), 10_000_000))
        t = _set(t, "quantity", [0] * t.num_rows)
        return _set(t, "line_total", [0.0] * t.num_rows)

    onboard_rows(repo, "order_items", 0.01, amend)


def reversed_orders(repo: Path) -> None:
    """A new billing system is onboarded: orders booked and fully reversed (a line, then the same line
    negated), so their quantities sum to 0 while no single quantity is 0."""

    def amend(t: pa.Table) -> pa.Table:
        t = _set(t, "order_id", pc.add(t.column("order_id"), 20_000_000))
        back = _set(_set(_set(t, "quantity", pc.negate(t.column("quantity"))), "line_total",
                         pc.negate(t.column("line_total"))), "line_no", pc.add(t.column("line_no"), 100))
        return pa.concat_tables([t, back])

    onboard_rows(repo, "order_items", 0.01, amend)


def float_discount(repo: Path) -> None:
    """The shop's legacy system sends discount as FLOAT."""
    widen(repo, "order_items", {"discount": pa.float32()})


def discount_in_full_precision(repo: Path) -> None:
    """The new shop system: camelCase columns, and discount as DOUBLE holding the rate as booked
    (0.05, which no FLOAT holds exactly): the wider type must stay."""
    def change(t: pa.Table) -> pa.Table:
        rate = pc.round(pc.cast(t.column("discount"), pa.float64()), 2)
        return t.set_column(t.column_names.index("discount"), "discount", rate)

    drift._rewrite(data(repo), "order_items", change)
    drift.restyle_columns(data(repo), "order_items", "camel")


LINE_PRICE_PY = "jobs/line_unit_price_py.py"
ITEMS_READ = 'items = spark.table("order_items")'


# -- the catalogue ----------------------------------------------------------------------------------

# -- bad commits and unreadable inputs (issue 17) ---------------------------------------------------

MIX = "jobs/channel_mix.sql"
MIX_EXPECT = "jobs/channel_mix.expectations.yml"
PAYMENTS_JOB = "jobs/daily_payments.py"
MONTH = "CAST(date_trunc('MONTH', order_ts) AS DATE)"


def bad_commit(*edits: tuple[str, str, str], message: str) -> Step:
    """A deploy: every (path, old, new) edit in one commit by the data team."""
    def step(repo: Path) -> None:
        for path, old, new in edits:
            edit(repo, path, old, new)
        commit(repo, message)
    return step


def golden_edits(*edits: tuple[str, str, str]) -> Step:
    def step(repo: Path) -> None:
        for path, old, new in edits:
            edit(repo, path, old, new)
    return step


def mix_with_customers(expr: str) -> tuple[str, str, str]:
    """channel_mix gains a customers column (the commit also updates its expectations)."""
    return (MIX, "COUNT(DISTINCT order_id) AS orders,", f"COUNT(DISTINCT order_id) AS orders,\n  {expr} AS customers,")


CUSTOMERS_EXPECTED = (MIX_EXPECT, "columns: [channel, month, orders, last_status]",
                      "columns: [channel, month, orders, customers, last_status]")
MIX_INPUT = ("healer.yml", "    job: jobs/channel_mix.sql\n    inputs:\n      orders:",
             "    job: jobs/channel_mix.sql\n    inputs:\n      order_events:")

TSQL_DAYS = """-- Orders per channel and month, ported from the reporting warehouse (T-SQL)
SELECT [channel],
  CAST(date_trunc('MONTH', order_ts) AS DATE) AS month,
  COUNT(DISTINCT order_id) AS orders,
  ISNULL(MAX(status), 'none') AS last_status,
  DATEDIFF(day, MIN(order_ts), MAX(order_ts)) AS active_days
FROM orders
GROUP BY [channel], CAST(date_trunc('MONTH', order_ts) AS DATE)
"""
TSQL_DAYS_FIXED = """-- Orders per channel and month, ported from the reporting warehouse (T-SQL)
SELECT `channel`,
  CAST(date_trunc('MONTH', order_ts) AS DATE) AS month,
  COUNT(DISTINCT order_id) AS orders,
  COALESCE(MAX(status), 'none') AS last_status,
  DATEDIFF(DAY, MIN(order_ts), MAX(order_ts)) AS active_days
FROM orders
GROUP BY `channel`, CAST(date_trunc('MONTH', order_ts) AS DATE)
"""
DAYS_EXPECTED = (MIX_EXPECT, "columns: [channel, month, orders, last_status]",
                 "columns: [channel, month, orders, last_status, active_days]")


def orders_one_folder_down(repo: Path) -> None:
    """The export job now writes its files into a subfolder of the old location."""
    folder = data(repo) / "orders"
    files = [f for f in folder.iterdir() if f.is_file()]
    (folder / "export").mkdir()
    for f in files:
        f.rename(folder / "export" / f.name)


def orders_as_csv(repo: Path) -> None:
    """The shop's export switches orders from Parquet to CSV with a header, same folder."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    folder = data(repo) / "orders"
    table = pq.read_table(folder)
    for f in folder.iterdir():
        f.unlink()
    table = table.set_column(table.column_names.index("order_ts"), "order_ts",
                             pc.strftime(table.column("order_ts"), "%Y-%m-%d %H:%M:%S"))
    pcsv.write_csv(table, folder / "part-00000.csv")


CODE_FAULTS: list[Scenario] = [
    Scenario("typo-sql-new-column", "bench", "channel_mix", "sql",
             bad_commit(mix_with_customers("COUNT(DISTINCT custmer_id)"), CUSTOMERS_EXPECTED,
                        message="channel_mix: count customers too"),
             golden_edits((MIX, "custmer_id", "customer_id")), "rule:code_typo", code_fault=True,
             what="a new column misspells its source (custmer_id); the commit's expectations list it"),
    Scenario("typo-sql-keyword-form", "bench", "channel_mix", "sql",
             bad_commit((MIX, "FROM orders", "FORM orders"), (MIX, "-- Orders", "-- All orders"),
                        message="channel_mix: reword"),
             golden_edits((MIX, "FORM orders", "FROM orders")), "rule:code_typo", code_fault=True,
             what="a syntax typo committed (FORM for FROM)"),
    Scenario("typo-sql-input-name", "bench", "channel_mix", "sql",
             bad_commit((MIX, "FROM orders", "FROM ordrs AS o"), message="channel_mix: alias the input"),
             golden_edits((MIX, "FROM ordrs AS o", "FROM orders AS o")), "rule:code_typo", code_fault=True,
             what="the input misspelt in FROM (ordrs)"),
    Scenario("typo-py-new-column", "bench", "daily_payments", "python",
             bad_commit((PAYMENTS_JOB, 'F.count(F.lit(1)).alias("payments")',
                         'F.count(F.lit(1)).alias("payments"), F.max("paid_att").alias("last_paid")'),
                        message="daily_payments: when was the last payment"),
             golden_edits((PAYMENTS_JOB, '"paid_att"', '"paid_at"')), "rule:code_typo", code_fault=True,
             what="a new PySpark column misspells its source (paid_att)"),
    Scenario("manifest-sql-input-renamed", "bench", "channel_mix", "sql",
             bad_commit(MIX_INPUT, message="healer.yml: event inputs are named *_events"),
             golden_edits((MIX, "FROM orders", "FROM order_events")), "rule:manifest_drift", code_fault=True,
             what="healer.yml renamed the input orders -> order_events; the SQL still reads orders"),
    Scenario("manifest-py-input-renamed-in-code", "bench", "daily_payments", "python",
             bad_commit((PAYMENTS_JOB, 'spark.table("payments")', 'spark.table("payment_events")'),
                        message="daily_payments: read the events input"),
             golden_edits(("healer.yml", "    job: jobs/daily_payments.py\n    inputs:\n      payments:",
                           "    job: jobs/daily_payments.py\n    inputs:\n      payment_events:")),
             "rule:manifest_drift", code_fault=True,
             what="the job reads payment_events; healer.yml still declares payments"),
    Scenario("dialect-sql-tsql-new-column", "bench", "channel_mix", "sql",
             lambda r: (write(r, MIX, TSQL_DAYS), edit(r, *DAYS_EXPECTED), commit(r, "channel_mix: active days")),
             lambda r: write(r, MIX, TSQL_DAYS_FIXED), "rule:dialect_slip", code_fault=True,
             what="a T-SQL port Spark cannot parse ([col], ISNULL, DATEDIFF(day, ..)) adding a column"),
    Scenario("datetime-sql-week-year", "bench", "channel_mix", "sql",
             bad_commit((MIX, MONTH, "CAST(date_format(order_ts, 'YYYY-MM-01') AS DATE)"),
                        message="channel_mix: month without date_trunc"),
             golden_edits((MIX, "'YYYY-MM-01'", "'yyyy-MM-01'")),
             "rule:datetime_pattern", code_fault=True, what="a Spark 2 datetime pattern committed (YYYY)"),
    Scenario("datetime-py-week-year", "bench", "daily_payments", "python",
             bad_commit((PAYMENTS_JOB, 'F.to_date("paid_at").alias("day"), "method"',
                         'F.to_date("paid_at").alias("day"), "method", '
                         'F.date_format("paid_at", "YYYY-MM").alias("month")'),
                        message="daily_payments: month label"),
             golden_edits((PAYMENTS_JOB, '"YYYY-MM"', '"yyyy-MM"')), "rule:datetime_pattern", code_fault=True,
             what="a new month label with a week-based year pattern (YYYY-MM)"),
    Scenario("revert-sql-unknown-column", "bench", "channel_mix", "sql",
             bad_commit((MIX, "COALESCE(MAX(status), 'none')", "COALESCE(MAX(fulfilment_state), 'none')"),
                        message="channel_mix: status from the fulfilment feed"),
             golden_edits((MIX, "fulfilment_state", "status")), "rule:revert_hunk", code_fault=True,
             what="the commit reads a column no input has and nothing is near it: the hunk reverted, as a draft"),
    Scenario("unreadable-sql-now-csv", "bench", "channel_mix", "sql", orders_as_csv,
             golden_edits(("healer.yml", '      orders: {path: "${WAREHOUSE}/orders", format: parquet}\n'
                           '    output: {path: "${OUTPUT}/channel_mix", format: parquet}',
                           '      orders: {path: "${WAREHOUSE}/orders", format: csv}\n'
                           '    output: {path: "${OUTPUT}/channel_mix", format: parquet}')),
             "rule:input_format", what="orders now CSV files where Parquet was declared"),
    Scenario("unreadable-py-one-folder-down", "retail", "customer_sessions", "python", orders_one_folder_down,
             golden_edits(("healer.yml", '      orders: {path: "${WAREHOUSE}/orders", format: parquet}\n'
                           '    output: {path: "${OUTPUT}/customer_sessions", format: parquet}',
                           '      orders: {path: "${WAREHOUSE}/orders/export", format: parquet}\n'
                           '    output: {path: "${OUTPUT}/customer_sessions", format: parquet}')),
             "rule:input_format", what="orders' Parquet files now one folder down, in export/ (a PySpark job)"),
    Scenario("revert-py-unknown-column", "retail", "clean_customers", "python",
             bad_commit((CLEAN, '"segment",', 'F.col("crm_tier").alias("segment"),'),
                        message="clean_customers: segment from the CRM tier"),
             golden_edits((CLEAN, 'F.col("crm_tier").alias("segment"),', '"segment",')), "rule:revert_hunk",
             code_fault=True, what="the commit reads a column no input has and nothing is near it (PySpark)"),
]


SCENARIOS: list[Scenario] = [
    # renamed columns
    Scenario("rename-sql-camel", "retail", "revenue_by_category", "sql",
             lambda r: drift.rename_column(data(r), "order_items", "unit_price", "unitPrice"),
             revenue_columns({"unit_price": "unitPrice"}), "rule:renamed_column",
             what="order_items.unit_price renamed unitPrice"),
    Scenario("rename-sql-table-prefix", "retail", "revenue_by_category", "sql",
             lambda r: drift.prefix_columns(data(r), "order_items", "oi_"),
             revenue_columns({c: f"oi_{c}" for c in ("order_id", "product_id", "quantity", "unit_price", "discount")}),
             "rule:renamed_column", what="every order_items column prefixed oi_"),
    Scenario("rename-py-table-pascal", "retail", "clean_customers", "python",
             lambda r: drift.restyle_columns(data(r), "customers", "pascal"),
             lambda r: edit(r, CLEAN, CUSTOMERS_READ, CUSTOMERS_READ + '.withColumnRenamed("CustomerId", "customer_id")'
                                                      '.withColumnRenamed("SignupDate", "signup_date")'),
             "rule:renamed_column", what="every customers column renamed to PascalCase"),
    Scenario("rename-py-camel", "retail", "customer_sessions", "python",
             lambda r: drift.rename_column(data(r), "orders", "order_ts", "orderTs"),
             lambda r: edit(r, "jobs/customer_sessions.py", 'spark.table("orders")',
                            'spark.table("orders").withColumnRenamed("orderTs", "order_ts")'),
             "rule:renamed_column", what="orders.order_ts renamed orderTs"),
    # retyped columns
    Scenario("retype-sql-currency-text", "retail", "revenue_by_category", "sql",
             lambda r: drift.format_numbers(data(r), "order_items", "unit_price", "us", "$"),
             lambda r: edit(r, REVENUE, "i.unit_price", "CAST(REPLACE(REPLACE(i.unit_price, '$', ''), ',', '') AS DOUBLE)"),
             "rule:retyped_column", what='unit_price now text like "$1,234.50"'),
    Scenario("retype-sql-epoch-seconds", "retail", "customer_lifetime", "sql",
             lambda r: drift.to_epoch(data(r), "orders", "order_ts", "s"),
             lambda r: edit(r, "jobs/customer_lifetime.sql", "SELECT DISTINCT order_id, customer_id, order_ts FROM orders",
                            "SELECT DISTINCT order_id, customer_id, TIMESTAMP_SECONDS(order_ts) AS order_ts FROM orders"),
             "rule:retyped_column", what="orders.order_ts now epoch seconds"),
    Scenario("retype-py-us-dates", "retail", "clean_customers", "python",
             lambda r: drift.to_string(data(r), "customers", "signup_date", "%m/%d/%Y"),
             lambda r: edit(r, CLEAN, CUSTOMERS_READ, CUSTOMERS_READ
                            + '.withColumn("signup_date", F.to_date(F.col("signup_date"), "MM/dd/yyyy"))'),
             "rule:retyped_column", what="signup_date now text MM/dd/yyyy"),
    Scenario("retype-py-eu-numbers", "bench", "daily_payments", "python",
             lambda r: drift.format_numbers(data(r), "payments", "amount", "eu", "€"),
             lambda r: edit(r, "jobs/daily_payments.py", 'spark.table("payments")',
                            'spark.table("payments").withColumn("amount", F.regexp_replace(F.regexp_replace('
                            'F.col("amount"), "[ .€]", ""), ",", ".").cast("double"))'),
             "rule:retyped_column", what='payments.amount now text like "1.234,50 €"'),
    Scenario("retype-py-epoch-millis", "bench", "daily_payments", "python",
             lambda r: drift.to_epoch(data(r), "payments", "paid_at", "ms"),
             lambda r: edit(r, "jobs/daily_payments.py", 'spark.table("payments")',
                            'spark.table("payments").withColumn("paid_at", F.timestamp_millis("paid_at"))'),
             "rule:retyped_column", what="payments.paid_at now epoch millis"),
    # moved inputs
    Scenario("moved-sql-renamed-folder", "retail", "revenue_by_category", "sql",
             lambda r: drift.move_table(data(r), "order_items", "order_items_v2"),
             lambda r: edit(r, "healer.yml", '"${WAREHOUSE}/order_items"', '"${WAREHOUSE}/order_items_v2"'),
             "rule:moved_input", what="order_items folder renamed order_items_v2"),
    Scenario("moved-py-subfolder", "retail", "clean_customers", "python",
             lambda r: drift.move_table(data(r), "customers", "crm/customers"),
             lambda r: edit(r, "healer.yml", '"${WAREHOUSE}/customers"', '"${WAREHOUSE}/crm/customers"'),
             "rule:moved_input", what="customers moved to crm/customers"),
    # nested fields
    Scenario("nested-sql-deeper", "bench", "customers_by_city", "sql",
             lambda r: drift.move_field(data(r), "customers", "address", "city", "geo"),
             lambda r: write(r, "jobs/customers_by_city.sql",
                             (r / "jobs/customers_by_city.sql").read_text().replace("c.address.city", "c.address.geo.city")),
             "rule:nested_field", setup=add_address, what="address.city moved to address.geo.city"),
    Scenario("nested-py-into-struct", "retail", "clean_customers", "python",
             lambda r: drift.nest_columns(data(r), "customers", "address", ["country"]),
             lambda r: edit(r, CLEAN, CUSTOMERS_READ, CUSTOMERS_READ + '.withColumn("country", F.col("address.country"))'),
             "rule:nested_field", what="customers.country moved into an address struct"),
    Scenario("nested-sql-json-path", "bench", "order_buyers", "sql", move_buyer_in_payload,
             lambda r: edit(r, "jobs/order_buyers.sql", "'$.customer.id'", "'$.buyer.id'"),
             "rule:nested_field", setup=add_payload, what='JSON payload field $.customer.id moved to $.buyer.id'),
    # unsafe casts
    Scenario("cast-sql-new-bad-values", "bench", "units_from_text", "sql",
             lambda r: drift.set_values(data(r), "order_items", "qty_text", "N/A", fraction=0.004),
             lambda r: edit(r, "jobs/units_from_text.sql", "CAST(qty_text AS INT)", "TRY_CAST(qty_text AS INT)"),
             "rule:unsafe_cast", setup=add_line_columns, what="0.4% of qty_text now 'N/A'"),
    Scenario("cast-py-new-bad-values", "bench", "units_from_text_py", "python",
             lambda r: drift.set_values(data(r), "order_items", "qty_text", "n/a", fraction=0.004),
             lambda r: edit(r, "jobs/units_from_text_py.py", '.cast("int")', '.try_cast("int")'),
             "rule:unsafe_cast", setup=add_line_columns, what="0.4% of qty_text now 'n/a'"),
    # zero divisors
    Scenario("zero-sql-divisor", "bench", "line_unit_price", "sql", zero_quantities,
             lambda r: edit(r, "jobs/line_unit_price.sql", "line_total / quantity", "line_total / NULLIF(quantity, 0)"),
             "rule:zero_divisor", setup=add_line_columns, what="0.5% of quantities now 0"),
    Scenario("zero-py-divisor", "bench", "line_unit_price_py", "python", zero_quantities,
             lambda r: edit(r, "jobs/line_unit_price_py.py", 'F.col("line_total") / F.col("quantity")',
                            'F.col("line_total") / F.nullif(F.col("quantity"), F.lit(0))'),
             "rule:zero_divisor", setup=add_line_columns, what="0.5% of quantities now 0"),
    # NULL surges: a few rows of an input arrive with NULLs (draft: the rows are dropped)
    Scenario("null-sql-cte-filter", "retail", "revenue_by_category", "sql",
             lambda r: drift.null_values(data(r), "orders", "order_ts", fraction=0.02),
             lambda r: edit(r, REVENUE, "WHERE status <> 'returned'",
                            "WHERE status <> 'returned' AND order_ts IS NOT NULL"),
             "rule:null_surge", what="2% of orders.order_ts now NULL"),
    Scenario("null-py-missing-timestamps", "bench", "daily_payments", "python",
             lambda r: drift.null_values(data(r), "payments", "paid_at", fraction=0.02),
             lambda r: edit(r, "jobs/daily_payments.py", 'spark.table("payments")',
                            'spark.table("payments").where("paid_at IS NOT NULL")'),
             "rule:null_surge", what="2% of payments.paid_at now NULL"),
    # replayed batches: an input repeats some rows exactly (draft: the copies are removed)
    Scenario("replay-sql-payments", "retail", "customer_lifetime", "sql",
             lambda r: drift.replay_rows(data(r), "payments", fraction=0.05),
             lambda r: edit(r, "jobs/customer_lifetime.sql", "JOIN payments AS p",
                            "JOIN (SELECT DISTINCT * FROM payments) AS p"),
             "rule:replayed_batch", what="5% of payments replayed (exact copies appended)"),
    Scenario("replay-py-customers", "retail", "clean_customers", "python",
             lambda r: drift.replay_rows(data(r), "customers", fraction=0.05),
             lambda r: edit(r, CLEAN, CUSTOMERS_READ, CUSTOMERS_READ + ".dropDuplicates()"),
             "rule:replayed_batch", what="5% of customers replayed (exact copies appended)"),
    # dialect slips (bad commits)
    *[Scenario(f"dialect-sql-{d}", "bench", "channel_mix", "sql", dialect_commit(d), dialect_golden(d),
               "rule:dialect_slip", code_fault=True, what=f"channel_mix rewritten in {d} SQL")
      for d in ("tsql", "bigquery", "snowflake", "postgres", "mysql", "duckdb")],
    Scenario("dialect-py-tsql", "bench", "channel_mix_py", "python",
             lambda r: (write(r, "jobs/channel_mix_py.py", PY_TSQL), commit(r, "channel_mix_py: T-SQL from the old warehouse")),
             lambda r: write(r, "jobs/channel_mix_py.py", PY_TSQL_FIXED),
             "rule:dialect_slip", code_fault=True, what="spark.sql text rewritten in T-SQL"),
    # drift that comes in pairs (issue 17)
    Scenario("pair-sql-moved-and-widened", "bench", "line_unit_price", "sql",
             lambda r: (widen(r, "order_items", {"line_no": pa.int64(), "quantity": pa.int64()}),
                        drift.move_table(data(r), "order_items", "sales/fct_order_items")),
             lambda r: (edit(r, "healer.yml", '"${WAREHOUSE}/order_items"', '"${WAREHOUSE}/sales/fct_order_items"'),
                        edit(r, "jobs/line_unit_price.sql", "  line_no,", "  CAST(line_no AS INT) AS line_no,")),
             "rule:moved_input", setup=add_line_columns,
             what="order_items moved to sales/fct_order_items and line_no, quantity widened INT -> BIGINT"),
    Scenario("pair-py-renamed-and-widened", "bench", "line_unit_price_py", "python",
             lambda r: (widen(r, "order_items", {"line_no": pa.int64(), "quantity": pa.int64()}),
                        drift.restyle_columns(data(r), "order_items", "camel")),
             lambda r: edit(r, LINE_PRICE_PY, ITEMS_READ, ITEMS_READ + '.withColumnRenamed("orderId", "order_id")'
                            '.withColumnRenamed("lineNo", "line_no").withColumnRenamed("lineTotal", "line_total")'
                            '.withColumn("line_no", F.col("line_no").cast("int"))'),
             "rule:renamed_column", setup=add_line_columns,
             what="order_items columns renamed to camelCase and line_no, quantity widened INT -> BIGINT"),
    Scenario("pair-sql-moved-unlike-name", "retail", "customer_lifetime", "sql",
             lambda r: drift.move_table(data(r), "payments", "billing/settlements"),
             lambda r: edit(r, "healer.yml", '"${WAREHOUSE}/payments"', '"${WAREHOUSE}/billing/settlements"'),
             "rule:moved_input", what="payments moved to billing/settlements: a name nothing like the old one"),
    Scenario("pair-py-moved-unlike-name", "retail", "clean_customers", "python",
             lambda r: drift.move_table(data(r), "customers", "crm/accounts"),
             lambda r: edit(r, "healer.yml", '"${WAREHOUSE}/customers"', '"${WAREHOUSE}/crm/accounts"'),
             "rule:moved_input", what="customers moved to crm/accounts: a name nothing like the old one"),
    Scenario("pair-sql-zero-aggregate", "bench", "order_unit_price", "sql", reversed_orders,
             lambda r: edit(r, "jobs/order_unit_price.sql", "SUM(line_total) / SUM(quantity)",
                            "SUM(line_total) / NULLIF(SUM(quantity), 0)"),
             "rule:zero_divisor", setup=add_line_columns,
             what="onboarded orders booked and reversed: SUM(quantity) is 0, no quantity is"),
    Scenario("pair-py-zero-onboarded", "bench", "order_unit_price_py", "python", sample_orders,
             lambda r: edit(r, "jobs/order_unit_price_py.py", 'F.col("total") / F.col("units")',
                            'F.col("total") / F.nullif(F.col("units"), F.lit(0))'),
             "rule:zero_divisor", setup=add_line_columns,
             what="onboarded free-sample orders: the aggregate divisor units is 0"),
    Scenario("pair-sql-null-derived-month", "bench", "channel_mix", "sql", marketplace_orders,
             lambda r: edit(r, "jobs/channel_mix.sql", "FROM orders\nGROUP BY", "FROM orders\nWHERE order_ts IS NOT NULL\nGROUP BY"),
             "rule:null_surge", what="onboarded orders without order_ts, past the profiled rows: month is NULL"),
    Scenario("pair-py-null-derived-day", "bench", "daily_payments", "python", provider_payments,
             lambda r: edit(r, "jobs/daily_payments.py", 'spark.table("payments")',
                            'spark.table("payments").where("paid_at IS NOT NULL")'),
             "rule:null_surge", what="onboarded payments without paid_at, past the profiled rows: day is NULL"),
    Scenario("pair-sql-renamed-widened-kept", "bench", "line_discounts", "sql", discount_in_full_precision,
             lambda r: edit(r, "jobs/line_discounts.sql", "  order_id,\n  line_no,",
                            "  orderId AS order_id,\n  lineNo AS line_no,"),
             "rule:renamed_column", setup=float_discount,
             what="order_items renamed to camelCase; discount FLOAT -> DOUBLE with values no FLOAT holds: kept DOUBLE"),
    Scenario("decline-moved-two-unlike-copies", "retail", "clean_customers", "python",
             lambda r: (drift.copy_table(data(r), "customers", "exports/marketing_contacts"),
                        drift.move_table(data(r), "customers", "crm/accounts")),
             what="customers gone; crm/accounts and exports/marketing_contacts both hold it: which is a guess"),
    # no safe fix: the right answer is to decline
    Scenario("decline-dropped-column", "retail", "revenue_by_category", "sql",
             lambda r: drift.drop_column(data(r), "order_items", "discount"),
             what="order_items.discount dropped with no successor"),
    Scenario("decline-ambiguous-rename", "retail", "revenue_by_category", "sql", split_price,
             what="unit_price replaced by net_price and gross_price"),
    Scenario("decline-fix-fails-expectations", "retail", "revenue_by_category", "sql",
             lambda r: (drift.rename_column(data(r), "order_items", "unit_price", "item_price"),
                        drift.map_values(data(r), "order_items", "item_price", pc.negate)),
             what="unit_price renamed and now negative"),
    Scenario("decline-only-a-backup-left", "retail", "revenue_by_category", "sql",
             lambda r: (drift.copy_table(data(r), "order_items", "order_items_backup"),
                        drift.remove_table(data(r), "order_items")),
             what="order_items deleted; a stale order_items_backup remains"),
    Scenario("decline-cast-format-change", "bench", "units_from_text", "sql",
             lambda r: drift.set_values(data(r), "order_items", "qty_text", "N/A", fraction=0.3),
             setup=add_line_columns, what="30% of qty_text now 'N/A'"),
    Scenario("decline-zero-must-not-be-null", "bench", "line_unit_price_strict", "sql", zero_quantities,
             setup=add_line_columns, what="zero quantities, but unit_net may never be NULL"),
    Scenario("decline-unreadable-dates", "retail", "clean_customers", "python", month_year_text,
             what='signup_date now "March 2021"'),
    Scenario("decline-null-broken-feed", "retail", "clean_customers", "python",
             lambda r: drift.null_values(data(r), "customers", "email", fraction=0.6),
             what="60% of customers.email now NULL: a broken feed, not a few bad rows"),
    Scenario("decline-replay-corrections", "retail", "clean_customers", "python", corrected_names,
             what="5% of customers re-sent with changed names: clashing ids, but no exact copies"),
    # needs the model (issue 5): the rules must decline, never false-fix; HealBench runs rules only
    Scenario("needs-model-derivable-sql", "retail", "revenue_by_category", "sql", line_total_instead_of_price,
             what="needs the model: unit_price dropped, derivable from the new line_total / quantity"),
    Scenario("needs-model-derivable-py", "retail", "customer_sessions", "python",
             lambda r: drift.drop_column(data(r), "orders", "channel"),
             what="needs the model: orders.channel dropped; the session's channel count has no source"),
    # bad commits (issue 17): the code changed since the last good run; the fix keeps the commit's intent
    Scenario("typo-sql-keyword-selec", "bench", "channel_mix", "sql",
             lambda r: (edit(r, "jobs/channel_mix.sql", "SELECT\n", "SELEC\n"), commit(r, "channel_mix: tidy")),
             golden_edits((MIX, "SELEC\n", "SELECT\n")), "rule:code_typo", code_fault=True,
             what="a keyword typo committed (SELEC)"),
    *CODE_FAULTS,
]


# Traps (issue 13): a scripted model answers with the tempting wrong fix; see traps.py.
from benchmarks.healbench.traps import TRAPS  # noqa: E402 -- traps.py builds on the helpers above

SCENARIOS += TRAPS


def by_name(names: list[str]) -> list[Scenario]:
    known = {s.name: s for s in SCENARIOS}
    missing = [n for n in names if n not in known]
    if missing:
        raise SystemExit(f"unknown scenario(s): {', '.join(missing)} (known: {', '.join(known)})")
    return [known[n] for n in names]

