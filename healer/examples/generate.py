"""Seeded retail data: customers, products, orders, order_items, payments.

    python -m healer.examples.generate --rows 100000 --out data/

``--rows`` is the number of order lines; the other tables scale with it. The same seed
always gives the same data. Columnar generation with numpy writes millions of rows in
seconds without Spark. A few realistic warts are planted on purpose: replayed order events
(duplicates the dedupe job removes), names with stray spaces and mixed-case emails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CATEGORIES = ["electronics", "books", "home", "garden", "toys", "grocery", "fashion", "sports"]
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "CA"]
SEGMENTS = ["consumer", "smb", "enterprise"]
CHANNELS = ["web", "app", "store"]
STATUSES = ["placed", "shipped", "delivered", "returned"]
METHODS = ["card", "paypal", "bank_transfer", "voucher"]
FIRST = ["ana", "ben", "chloe", "dev", "emil", "fatima", "george", "hana", "ivan", "julia", "kofi", "lena"]
LAST = ["smith", "garcia", "muller", "rossi", "kowalski", "dubois", "jensen", "silva", "ng", "okafor"]


def sizes(rows: int) -> dict[str, int]:
    """Table sizes for a given number of order lines."""
    orders = max(rows // 3, 10)
    return {
        "order_items": max(rows, 10),
        "orders": orders,
        "customers": max(orders // 8, 10),
        "products": max(min(rows // 200, 5000), 20),
        "payments": orders,
    }


def generate(rows: int, seed: int = 7) -> dict[str, pa.Table]:
    """All five tables as Arrow tables."""
    rng = np.random.default_rng(seed)
    n = sizes(rows)

    cid = np.arange(1, n["customers"] + 1, dtype=np.int64)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), n["customers"])]
    last = np.array(LAST)[rng.integers(0, len(LAST), n["customers"])]
    names = np.char.add(np.char.add(np.char.capitalize(first), " "), np.char.capitalize(last))
    padded = rng.random(n["customers"]) < 0.05
    names = np.where(padded, np.char.add("  ", names), names)
    emails = np.char.add(np.char.add(np.char.add(first, "."), last), np.char.add(cid.astype(str), "@example.com"))
    shouty = rng.random(n["customers"]) < 0.1
    emails = np.where(shouty, np.char.upper(emails), emails)
    signup = (np.datetime64("2019-01-01") + rng.integers(0, 5 * 365, n["customers"]).astype("timedelta64[D]"))
    customers = pa.table({
        "customer_id": cid,
        "name": names,
        "email": emails,
        "country": np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n["customers"])],
        "segment": np.array(SEGMENTS)[rng.choice(3, n["customers"], p=[0.7, 0.25, 0.05])],
        "signup_date": pa.array(signup.astype("datetime64[D]"), type=pa.date32()),
    })

    pid = np.arange(1, n["products"] + 1, dtype=np.int64)
    products = pa.table({
        "product_id": pid,
        "product_name": np.char.add("product-", pid.astype(str)),
        "category": np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), n["products"])],
        "list_price": np.round(rng.lognormal(3.0, 0.8, n["products"]) + 1, 2),
    })

    oid = np.arange(1, n["orders"] + 1, dtype=np.int64)
    seconds = np.sort(rng.integers(0, 365 * 24 * 3600, n["orders"]))
    order_ts = np.datetime64("2024-01-01T00:00:00") + seconds.astype("timedelta64[s]")
    orders = {
        "order_id": oid,
        "customer_id": rng.integers(1, n["customers"] + 1, n["orders"]).astype(np.int64),
        "order_ts": pa.array(order_ts.astype("datetime64[us]"), type=pa.timestamp("us", tz="UTC")),
        "status": np.array(STATUSES)[rng.choice(4, n["orders"], p=[0.1, 0.2, 0.65, 0.05])],
        "channel": np.array(CHANNELS)[rng.integers(0, 3, n["orders"])],
    }
    orders_t = pa.table(orders)
    # ~2% of order events are replayed by the upstream queue: same order, same content.
    replay = rng.choice(n["orders"], size=max(n["orders"] // 50, 1), replace=False)
    orders_t = pa.concat_tables([orders_t, orders_t.take(pa.array(replay))])

    li_order = np.sort(rng.integers(1, n["orders"] + 1, n["order_items"])).astype(np.int64)
    # line numbers restart at 1 within each order
    starts = np.r_[0, np.flatnonzero(np.diff(li_order)) + 1]
    line_no = np.arange(n["order_items"]) - np.repeat(starts, np.diff(np.r_[starts, n["order_items"]])) + 1
    li_product = rng.integers(1, n["products"] + 1, n["order_items"]).astype(np.int64)
    list_price = products.column("list_price").to_numpy()
    order_items = pa.table({
        "order_id": li_order,
        "line_no": line_no.astype(np.int32),
        "product_id": li_product,
        "quantity": rng.integers(1, 6, n["order_items"]).astype(np.int32),
        "unit_price": np.round(list_price[li_product - 1] * rng.uniform(0.9, 1.0, n["order_items"]), 2),
        "discount": np.round(rng.choice([0.0, 0.05, 0.1, 0.2], n["order_items"], p=[0.7, 0.15, 0.1, 0.05]), 2),
    })

    paid_ts = order_ts + rng.integers(0, 3600, n["orders"]).astype("timedelta64[s]")
    payments = pa.table({
        "payment_id": oid + 1_000_000,
        "order_id": oid,
        "method": np.array(METHODS)[rng.choice(4, n["orders"], p=[0.6, 0.25, 0.1, 0.05])],
        "amount": np.round(rng.lognormal(4.0, 0.9, n["orders"]), 2),
        "paid_at": pa.array(paid_ts.astype("datetime64[us]"), type=pa.timestamp("us", tz="UTC")),
    })
    return {"customers": customers, "products": products, "orders": orders_t,
            "order_items": order_items, "payments": payments}


def write(tables: dict[str, pa.Table], out: Path) -> None:
    """Each table as a directory of parquet files, the layout Spark writes."""
    for name, table in tables.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.parquet"):
            old.unlink()
        pq.write_table(table, folder / "part-00000.parquet", row_group_size=1_000_000)


def main(argv: list[str] | None = None, prog: str = "python -m healer.examples.generate") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="order lines to generate (default 100000)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the tables into")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    t0 = time.monotonic()
    tables = generate(args.rows, args.seed)
    write(tables, args.out)
    counts = ", ".join(f"{k} {v.num_rows:,}" for k, v in tables.items())
    print(f"wrote {counts} to {args.out.resolve()} in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
