"""The retail data generator: deterministic, sized by --rows, and runnable as a module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.generate import generate, sizes

ROOT = Path(__file__).resolve().parents[1]
TABLES = ["customers", "products", "orders", "order_items", "payments"]


def test_same_seed_same_data_other_seed_other_data():
    a, b = generate(600, seed=11), generate(600, seed=11)
    assert list(a) == list(b) == TABLES
    for name in TABLES:
        assert a[name].equals(b[name]), name
    c = generate(600, seed=12)
    assert not c["order_items"].equals(a["order_items"])
    assert not c["customers"].equals(a["customers"])


@pytest.mark.parametrize("rows", [300, 3000])
def test_table_sizes_follow_rows(rows):
    tables = generate(rows, seed=7)
    n = sizes(rows)
    replays = max(n["orders"] // 50, 1)
    assert tables["order_items"].num_rows == rows
    assert tables["orders"].num_rows == n["orders"] + replays  # replayed events on top
    for name in ("customers", "products", "payments"):
        assert tables[name].num_rows == n[name], name
    # replayed order events are exact duplicates of real ones
    orders = tables["orders"]
    assert len(set(orders["order_id"].to_pylist())) == n["orders"]
    assert orders.group_by(orders.column_names).aggregate([]).num_rows == n["orders"]


def test_sizes_scale_with_rows():
    small, big = sizes(1_000), sizes(10_000)
    assert big["order_items"] == 10 * small["order_items"]
    assert big["orders"] // 10 == small["orders"]
    assert big["customers"] > 9 * small["customers"]
    assert sizes(100_000_000)["products"] == 5000  # capped
    assert min(sizes(1).values()) >= 10  # tiny runs still have something to join


def test_keys_join_and_warts_are_planted():
    t = generate(3000, seed=7)
    items, orders, customers, products = t["order_items"], t["orders"], t["customers"], t["products"]
    assert set(items["product_id"].to_pylist()) <= set(products["product_id"].to_pylist())
    assert set(items["order_id"].to_pylist()) <= set(orders["order_id"].to_pylist())
    assert set(orders["customer_id"].to_pylist()) <= set(customers["customer_id"].to_pylist())
    assert set(t["payments"]["order_id"].to_pylist()) == set(orders["order_id"].to_pylist())
    # line numbers restart at 1 in each order and are unique within it
    pairs = list(zip(items["order_id"].to_pylist(), items["line_no"].to_pylist()))
    assert len(set(pairs)) == len(pairs)
    assert all(no == 1 for (o, no), prev in zip(pairs[1:], pairs[:-1]) if o != prev[0])
    # a few names with stray spaces and shouting emails, for the cleaning job
    names, emails = customers["name"].to_pylist(), customers["email"].to_pylist()
    assert 0 < sum(n != n.strip() for n in names) < len(names)
    assert 0 < sum(e != e.lower() for e in emails) < len(emails)
    assert pc.min(items["quantity"]).as_py() >= 1 and pc.min(items["unit_price"]).as_py() > 0


def run_generator(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.generate", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_module_cli_writes_parquet_tables(tmp_path):
    out = tmp_path / "data"
    done = run_generator("--rows", "500", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote ") and str(out.resolve()) in done.stdout
    expected = generate(500, seed=7)
    for name in TABLES:
        files = sorted((out / name).glob("*.parquet"))
        assert [f.name for f in files] == ["part-00000.parquet"]
        assert pq.read_table(files[0]).equals(expected[name]), name

    # running again into the same folder replaces the tables, it does not add to them
    again = run_generator("--rows", "100", "--out", str(out), "--seed", "3")
    assert again.returncode == 0, again.stderr
    assert pq.read_table(str(out / "order_items")).num_rows == 100
    assert pq.read_table(str(out / "orders")).num_rows == sizes(100)["orders"] + max(sizes(100)["orders"] // 50, 1)


def test_module_cli_rejects_zero_rows(tmp_path):
    done = run_generator("--rows", "0", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "--rows must be at least 1" in done.stderr
    assert list(tmp_path.iterdir()) == []
