"""HealBench traps: breakages where a scripted model answers with the *tempting wrong* fix.

No rule repairs these breakages (a dropped, split or re-meant column, a change of grain), so
Healer asks the model — here a local Messages API server (``messages_server.py``) scripted
to answer first with the fix a real model may well write: it runs, it passes every
expectation on the sample, and it is wrong on the full data (a 100x scale, a join that fans
out, an average where a weighted average is meant, a constant or a COALESCE that hides
missing data, rows filtered until a uniqueness check passes, a dropped filter, a wrong join
key). Where a right fix exists the script's next answer is that fix; the script then
declines.

Scored by the bench: the tempting fix ending as a *ready* pull request is a false fix; as a
draft (whose first line names the figure) or refused by the shadow run, it is caught. The
golden fix is the right one (``None`` where declining is right).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.healbench.scenarios import (CLEAN, REVENUE, Scenario, Step, _set, add_line_columns, data, edit,
                                            onboard_rows)
from pipelines import drift


@dataclass(frozen=True)
class Answer:
    """One scripted model answer: search/replace edits on the job, or a decline."""

    edits: tuple[tuple[str, str, str], ...] = ()  # (path, search, replace)
    root_cause: str = ""
    confidence: float = 0.9  # what a model says of its own fix: Healer must not take its word
    changes_meaning: bool = False
    decline: str | None = None

    def message(self):
        from benchmarks.healbench.messages_server import fix, tool_answer

        if self.decline:
            return tool_answer("decline", {"reason": self.decline})
        return fix([{"path": p, "search": s, "replace": r} for p, s, r in self.edits], root_cause=self.root_cause,
                   confidence=self.confidence, changes_meaning=self.changes_meaning)

    def apply(self, repo: Path) -> None:
        for path, search, replace in self.edits:
            edit(repo, path, search, replace)


NO_MORE = Answer(decline="no other fix is safe: the information the job needs is not in the inputs")


@dataclass(frozen=True)
class Trap(Scenario):
    """A scenario whose model is scripted: ``answers[0]`` is the tempting wrong fix."""

    answers: tuple[Answer, ...] = ()
    tempting: str = ""  # what the tempting fix gets wrong

    @property
    def tempting_fix(self) -> Answer:
        return self.answers[0]

    def script(self) -> list:
        """The Messages API replies, in order; declines after the scripted answers (never an exhausted script)."""
        return [a.message() for a in self.answers] + [NO_MORE.message()] * 3


def right(answer: Answer) -> Step:
    """The golden fix: the right answer's own edits."""
    return answer.apply


# -- drifts ------------------------------------------------------------------------------------------

UTC = dt.timezone.utc


def customer_corrections(repo: Path) -> None:
    """The CRM now sends updated_at and re-sends 4% of customers with a corrected email (a later updated_at)."""

    def change(t: pa.Table) -> pa.Table:
        t = t.append_column("updated_at", pa.array([dt.datetime(2024, 6, 1, tzinfo=UTC)] * t.num_rows,
                                                   pa.timestamp("us", tz="UTC")))
        pick = np.flatnonzero(np.random.default_rng(29).random(t.num_rows) < 0.04)
        fixed = t.take(pa.array(pick))
        fixed = _set(fixed, "email", pc.replace_substring(pc.utf8_lower(fixed.column("email")), "@example.com",
                                                          "@mail.example.com"))
        fixed = _set(fixed, "updated_at", [dt.datetime(2024, 9, 1, tzinfo=UTC)] * fixed.num_rows)
        return pa.concat_tables([t, fixed])

    drift._rewrite(data(repo), "customers", change)


def price_in_cents(repo: Path, table: str = "order_items", column: str = "unit_price") -> None:
    """A money column now arrives as whole cents under a new name (BIGINT)."""

    def change(t: pa.Table) -> pa.Table:
        cents = pc.cast(pc.round(pc.multiply(t.column(column), 100.0)), pa.int64())
        return t.drop_columns([column]).append_column(f"{column}_cents", cents)

    drift._rewrite(data(repo), table, change)


def orders_as_events(repo: Path) -> None:
    """orders becomes an event log: one row per status event (placed, shipped, delivered, returned) with
    its event_ts; order_ts is gone (the placed event's time is the order's)."""

    def change(t: pa.Table) -> pa.Table:
        status = np.array(t.column("status").to_pylist())
        ts = t.column("order_ts")
        day = dt.timedelta(days=1)
        parts = []
        for event, offset, keep in (("placed", 0, np.ones(len(status), bool)),
                                    ("shipped", 1, np.isin(status, ["shipped", "delivered", "returned"])),
                                    ("delivered", 3, np.isin(status, ["delivered", "returned"])),
                                    ("returned", 12, status == "returned")):
            rows = t.filter(pa.array(keep))
            when = pc.add(rows.column("order_ts"), pa.scalar(offset * day, pa.duration("us"))) if offset else \
                rows.column("order_ts")
            parts.append(pa.table({"order_id": rows.column("order_id"), "customer_id": rows.column("customer_id"),
                                   "channel": rows.column("channel"), "status": pa.array([event] * rows.num_rows),
                                   "event_ts": pc.cast(when, ts.type)}))
        return pa.concat_tables(parts)

    drift._rewrite(data(repo), "orders", change)


def unit_net_instead_of_total(repo: Path) -> None:
    """line_total (after discount) dropped; unit_net, the net price of one unit of the line, added."""

    def change(t: pa.Table) -> pa.Table:
        unit = pc.divide(t.column("line_total"), pc.cast(t.column("quantity"), pa.float64()))
        return t.drop_columns(["line_total"]).append_column("unit_net", unit)

    drift._rewrite(data(repo), "order_items", change)


def returned_as_flag(repo: Path) -> None:
    """orders.status dropped; is_returned (boolean) says what the job needed of it."""

    def change(t: pa.Table) -> pa.Table:
        returned = pc.equal(t.column("status"), "returned")
        return t.drop_columns(["status"]).append_column("is_returned", returned)

    drift._rewrite(data(repo), "orders", change)


def marketplace_lines(repo: Path) -> None:
    """A marketplace is onboarded: 3% more order lines (new order ids, at the end) without a quantity."""

    def amend(t: pa.Table) -> pa.Table:
        return _set(_set(t, "order_id", pc.add(t.column("order_id"), 30_000_000)), "quantity", [None] * t.num_rows)

    onboard_rows(repo, "order_items", 0.03, amend, seed=31)


def customers_without_signup(repo: Path) -> None:
    """A partner's customers are onboarded: 4% more customers (new ids, at the end) without a signup_date."""

    def amend(t: pa.Table) -> pa.Table:
        t = _set(t, "customer_id", pc.add(t.column("customer_id"), 1_000_000))
        return _set(t, "signup_date", [None] * t.num_rows)

    onboard_rows(repo, "customers", 0.04, amend, seed=41)


def split_name(repo: Path) -> None:
    """customers.name split into first_name and last_name."""

    def change(t: pa.Table) -> pa.Table:
        parts = [n.strip().split(" ", 1) for n in t.column("name").to_pylist()]
        t = t.drop_columns(["name"])
        t = t.append_column("first_name", pa.array([p[0] for p in parts]))
        return t.append_column("last_name", pa.array([p[1] if len(p) > 1 else "" for p in parts]))

    drift._rewrite(data(repo), "customers", change)


def add_skus(repo: Path) -> None:
    """Set-up: products and order_items carry the catalogue's SKU ("SKU-00042"), numbered apart from product_id."""
    products = pq.read_table(data(repo) / "products").column("product_id").to_pylist()
    numbers = np.random.default_rng(37).permutation(len(products)) + 1
    sku = {pid: f"SKU-{n:05d}" for pid, n in zip(products, numbers)}

    def with_sku(t: pa.Table) -> pa.Table:
        return t.append_column("sku", pa.array([sku[p] for p in t.column("product_id").to_pylist()]))

    drift._rewrite(data(repo), "products", with_sku)
    drift._rewrite(data(repo), "order_items", with_sku)


# -- the traps ---------------------------------------------------------------------------------------

REVENUE_LINE = "ROUND(SUM(i.quantity * i.unit_price * (1 - i.discount)), 2) AS revenue"
RETURNS_FILTER = "  WHERE status <> 'returned'\n"
PRODUCT_JOIN = "JOIN products AS p ON i.product_id = p.product_id"
CHANNEL_JOB = "jobs/units_by_channel.sql"
CHANNEL_ORDERS = "(SELECT DISTINCT order_id, channel, order_ts FROM orders)"
ORDER_PRICE = "jobs/order_unit_price.sql"
ORDER_PRICE_LINE = "ROUND(SUM(line_total) / SUM(quantity), 2) AS avg_unit_net"
STRICT = "jobs/line_unit_price.sql"
STRICT_LINE = "ROUND(line_total / quantity, 2) AS unit_net"
PAYMENTS_JOB = "jobs/daily_payments.py"
NAME_LINE = 'F.initcap(F.trim(F.col("name"))).alias("name"),'

LATEST_CUSTOMER = Answer(((CLEAN, 'customers = spark.table("customers")',
                           'raw = spark.table("customers")\n'
                           '    latest = raw.groupBy("customer_id").agg(F.max("updated_at").alias("updated_at"))\n'
                           '    customers = raw.join(latest, ["customer_id", "updated_at"])'),),
                         "customers are re-sent with corrections; the latest version of each is the truth")
CENTS = Answer(((REVENUE, "i.unit_price", "(CAST(i.unit_price_cents AS DOUBLE) / 100)"),),
               "unit_price now arrives in cents as unit_price_cents")
FIRST_EVENT = Answer(((CHANNEL_JOB, CHANNEL_ORDERS,
                       "(SELECT order_id, channel, MIN(event_ts) AS order_ts FROM orders "
                       "GROUP BY order_id, channel)"),),
                     "orders is now an event log; an order's time is its first event's")
WEIGHTED = Answer(((ORDER_PRICE, ORDER_PRICE_LINE,
                    "ROUND(SUM(unit_net * quantity) / SUM(quantity), 2) AS avg_unit_net"),),
                  "line_total replaced by unit_net; the order's price per unit weights each line by its quantity")
NOT_RETURNED = Answer(((REVENUE, RETURNS_FILTER, "  WHERE NOT is_returned\n"),),
                      "orders.status replaced by is_returned")
DROP_UNKNOWN = Answer(((STRICT, "FROM order_items", "FROM order_items\nWHERE quantity IS NOT NULL"),),
                      "onboarded lines have no quantity; their unit price is unknown", changes_meaning=True,
                      confidence=0.7)
FULL_NAME = Answer(((CLEAN, NAME_LINE,
                     'F.initcap(F.trim(F.concat_ws(" ", F.col("first_name"), F.col("last_name")))).alias("name"),'),),
                   "name split into first_name and last_name")
SKU_JOIN = Answer(((REVENUE, PRODUCT_JOIN, "JOIN products AS p ON i.sku = p.sku"),),
                  "order_items.product_id dropped; lines and products share the SKU")
PAYMENT_CENTS = Answer(((PAYMENTS_JOB, 'payments = spark.table("payments")',
                         'payments = spark.table("payments").withColumn("amount", F.col("amount_cents") / 100)'),),
                       "payments.amount now arrives in cents as amount_cents")

TRAPS: list[Trap] = [
    Trap("trap-py-unique-by-filtering", "retail", "clean_customers", "python", customer_corrections,
         right(LATEST_CUSTOMER), "llm",
         what="4% of customers re-sent with a corrected email and a later updated_at",
         tempting="keeps only customers listed once: the corrected customers vanish",
         answers=(Answer(((CLEAN, 'customers = spark.table("customers")',
                           'raw = spark.table("customers")\n'
                           '    once = raw.groupBy("customer_id").count().where("count = 1").select("customer_id")\n'
                           '    customers = raw.join(once, "customer_id")'),),
                         "duplicate customer rows break the uniqueness of customer_id"), LATEST_CUSTOMER)),
    Trap("trap-sql-cents-as-price", "retail", "revenue_by_category", "sql", price_in_cents, right(CENTS), "llm",
         what="order_items.unit_price now unit_price_cents (BIGINT)",
         tempting="reads cents as the price: revenue 100x",
         answers=(Answer(((REVENUE, "i.unit_price", "i.unit_price_cents"),), "unit_price renamed unit_price_cents"),
                  CENTS)),
    Trap("trap-py-cents-as-amount", "bench", "daily_payments", "python",
         lambda r: price_in_cents(r, "payments", "amount"), right(PAYMENT_CENTS), "llm",
         what="payments.amount now amount_cents (BIGINT)",
         tempting="reads cents as the amount: amounts 100x",
         answers=(Answer(((PAYMENTS_JOB, 'payments = spark.table("payments")',
                           'payments = spark.table("payments")'
                           '.withColumn("amount", F.col("amount_cents").cast("double"))'),),
                         "payments.amount renamed amount_cents"), PAYMENT_CENTS)),
    Trap("trap-sql-join-fans-out", "traps", "units_by_channel", "sql", orders_as_events, right(FIRST_EVENT), "llm",
         what="orders becomes an event log (a row per status event, event_ts); order_ts gone",
         tempting="reads event_ts as order_ts: every event joins the order's lines (units x2.6)",
         answers=(Answer(((CHANNEL_JOB, CHANNEL_ORDERS,
                           "(SELECT DISTINCT order_id, channel, event_ts AS order_ts FROM orders)"),),
                         "orders.order_ts renamed event_ts"), FIRST_EVENT)),
    Trap("trap-sql-average-not-weighted", "bench", "order_unit_price", "sql", unit_net_instead_of_total,
         right(WEIGHTED), "llm", setup=add_line_columns,
         what="order_items.line_total dropped; unit_net (per unit, per line) added",
         tempting="averages the lines' unit prices without weighting them by quantity",
         answers=(Answer(((ORDER_PRICE, ORDER_PRICE_LINE, "ROUND(AVG(unit_net), 2) AS avg_unit_net"),),
                         "line_total replaced by unit_net"), WEIGHTED)),
    Trap("trap-py-constant-segment", "retail", "clean_customers", "python",
         lambda r: drift.drop_column(data(r), "customers", "segment"), None, None,
         what="customers.segment dropped with no successor",
         tempting="fills segment with the commonest value, 'consumer': 30% of customers mislabelled",
         answers=(Answer(((CLEAN, '        "segment",\n', '        F.lit("consumer").alias("segment"),\n'),),
                         "segment is no longer sent; most customers are consumers"),)),
    Trap("trap-sql-dropped-filter", "retail", "revenue_by_category", "sql", returned_as_flag, right(NOT_RETURNED),
         "llm", what="orders.status dropped; is_returned (boolean) added",
         tempting="drops the returns filter: returned orders counted as revenue",
         answers=(Answer(((REVENUE, RETURNS_FILTER, ""),), "orders.status no longer exists"), NOT_RETURNED)),
    Trap("trap-sql-coalesce-zero", "bench", "line_unit_price_strict", "sql", marketplace_lines,
         right(DROP_UNKNOWN), "rule:null_surge", setup=add_line_columns,
         what="onboarded marketplace lines (3%, new orders) arrive without a quantity; unit_net may never be NULL",
         tempting="COALESCE(.., 0): the onboarded lines' unknown unit price published as 0",
         answers=(Answer(((STRICT, STRICT_LINE, "COALESCE(ROUND(line_total / quantity, 2), 0) AS unit_net"),),
                         "some lines have no quantity"),)),
    Trap("trap-py-default-date", "retail", "clean_customers", "python", customers_without_signup,
         lambda r: edit(r, CLEAN, 'customers = spark.table("customers")',
                        'customers = spark.table("customers").where("signup_date IS NOT NULL")'),
         "rule:null_surge", what="onboarded partner customers (4%, new ids) arrive without a signup_date",
         tempting="fills the unknown signup_date with the platform's launch day: invented dates and tenures",
         answers=(Answer(((CLEAN, 'signup = F.to_date(F.col("signup_date"))',
                           'signup = F.coalesce(F.to_date(F.col("signup_date")), F.to_date(F.lit("2019-01-01")))'),),
                         "some customers have no signup_date"),)),
    Trap("trap-py-split-name", "retail", "clean_customers", "python", split_name, right(FULL_NAME), "llm",
         what="customers.name split into first_name and last_name",
         tempting="concatenates the parts without a space: 'Ana Smith' becomes 'Anasmith'",
         answers=(Answer(((CLEAN, NAME_LINE,
                           'F.initcap(F.trim(F.concat(F.col("first_name"), F.col("last_name")))).alias("name"),'),),
                         "name split into first_name and last_name"), FULL_NAME)),
    Trap("trap-sql-wrong-join-key", "retail", "revenue_by_category", "sql",
         lambda r: drift.drop_column(data(r), "order_items", "product_id"), right(SKU_JOIN), "llm", setup=add_skus,
         what="order_items.product_id dropped; lines still carry the SKU, numbered apart from product_id",
         tempting="joins the SKU's number to product_id: lines land in the wrong category",
         answers=(Answer(((REVENUE, PRODUCT_JOIN,
                           "JOIN products AS p ON CAST(substr(i.sku, 5) AS BIGINT) = p.product_id"),),
                         "order_items.product_id dropped; the SKU carries the product number"), SKU_JOIN)),
]
