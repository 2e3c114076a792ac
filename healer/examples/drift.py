"""Upstream changes that break pipelines, applied to generated data (for the demo and tests).

Each function rewrites one table's parquet files in place, as an upstream team would.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _rewrite(data_dir: Path, table: str, change) -> None:
    folder = Path(data_dir) / table
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no parquet files under {folder}")
    t = pa.concat_tables([pq.read_table(f) for f in files])
    t = change(t)
    for f in files:
        f.unlink()
    pq.write_table(t, folder / "part-00000.parquet")


def rename_column(data_dir: Path, table: str, old: str, new: str) -> None:
    """Upstream renamed a column."""
    _rewrite(data_dir, table, lambda t: t.rename_columns([new if c == old else c for c in t.column_names]))


def rename_columns(data_dir: Path, table: str, mapping: dict[str, str]) -> None:
    """Upstream renamed several columns at once."""
    _rewrite(data_dir, table, lambda t: t.rename_columns([mapping.get(c, c) for c in t.column_names]))


def to_string(data_dir: Path, table: str, column: str, strftime: str | None = None) -> None:
    """Upstream now writes a typed column as text (dates with ``strftime``, e.g. ``%d/%m/%Y``)."""

    def change(t: pa.Table) -> pa.Table:
        i = t.column_names.index(column)
        col = t.column(column)
        text = pc.strftime(col, format=strftime) if strftime else pc.cast(col, pa.string())
        return t.set_column(i, column, text)

    _rewrite(data_dir, table, change)


def drop_column(data_dir: Path, table: str, column: str) -> None:
    """Upstream dropped a column outright."""
    _rewrite(data_dir, table, lambda t: t.drop_columns([column]))


def map_values(data_dir: Path, table: str, column: str, fn) -> None:
    """Upstream changed some values (``fn`` maps a pyarrow column to a new one)."""

    def change(t: pa.Table) -> pa.Table:
        return t.set_column(t.column_names.index(column), column, fn(t.column(column)))

    _rewrite(data_dir, table, change)


# -- more ways upstream breaks a pipeline (HealBench and the rule tests use these) ----------------

def prefix_columns(data_dir: Path, table: str, prefix: str) -> None:
    """Upstream prefixed every column of a table (``order_id`` -> ``oi_order_id``)."""
    _rewrite(data_dir, table, lambda t: t.rename_columns([prefix + c for c in t.column_names]))


def restyle_columns(data_dir: Path, table: str, style: str = "pascal") -> None:
    """Upstream renamed every column to another case style: ``pascal`` (CustomerId) or ``camel``."""

    def name(c: str) -> str:
        words = c.split("_")
        out = "".join(w[:1].upper() + w[1:] for w in words)
        return out if style == "pascal" else out[:1].lower() + out[1:]

    _rewrite(data_dir, table, lambda t: t.rename_columns([name(c) for c in t.column_names]))


def format_numbers(data_dir: Path, table: str, column: str, style: str = "us", currency: str = "") -> None:
    """Upstream now writes a number as formatted text: ``us`` "$1,234.50", ``eu`` "1.234,50 €"."""

    def fmt(v):
        if v is None:
            return None
        text = f"{v:,.2f}"
        if style == "eu":
            text = text.replace(",", "_").replace(".", ",").replace("_", ".")
            return f"{text} {currency}".strip()
        return f"{currency}{text}"

    def change(t: pa.Table) -> pa.Table:
        col = t.column(column).to_pylist()
        return t.set_column(t.column_names.index(column), column, pa.array([fmt(v) for v in col], pa.string()))

    _rewrite(data_dir, table, change)


def to_epoch(data_dir: Path, table: str, column: str, unit: str = "s") -> None:
    """Upstream now writes a timestamp as epoch numbers: ``s`` seconds, ``ms`` millis."""

    def change(t: pa.Table) -> pa.Table:
        col = pc.cast(t.column(column), pa.timestamp(unit, tz="UTC"))
        return t.set_column(t.column_names.index(column), column, pc.cast(col, pa.int64()))

    _rewrite(data_dir, table, change)


def move_table(data_dir: Path, table: str, new_relative: str) -> None:
    """Upstream renamed or moved a table's folder (``orders`` -> ``sales/orders_v2``)."""
    import shutil

    target = Path(data_dir) / new_relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(Path(data_dir) / table), str(target))


def copy_table(data_dir: Path, table: str, new_relative: str) -> None:
    """A copy of a table's folder elsewhere (a backup someone left behind)."""
    import shutil

    shutil.copytree(Path(data_dir) / table, Path(data_dir) / new_relative)


def remove_table(data_dir: Path, table: str) -> None:
    import shutil

    shutil.rmtree(Path(data_dir) / table)


def set_values(data_dir: Path, table: str, column: str, value, fraction: float, seed: int = 11) -> None:
    """Upstream started sending ``value`` (a bad text, a zero) in a seeded ``fraction`` of rows."""
    import numpy as np

    def change(t: pa.Table) -> pa.Table:
        rng = np.random.default_rng(seed)
        hit = rng.random(t.num_rows) < fraction
        col = t.column(column)
        new = pc.if_else(pa.array(hit), pa.scalar(value, col.type), col)
        return t.set_column(t.column_names.index(column), column, new)

    _rewrite(data_dir, table, change)


def nest_columns(data_dir: Path, table: str, struct: str, columns: list[str]) -> None:
    """Upstream moved top-level columns into a struct column (``country`` -> ``address.country``)."""

    def change(t: pa.Table) -> pa.Table:
        nested = pa.StructArray.from_arrays([t.column(c).combine_chunks() for c in columns], names=columns)
        t = t.drop_columns(columns)
        return t.append_column(struct, nested)

    _rewrite(data_dir, table, change)


def move_field(data_dir: Path, table: str, struct: str, field: str, into: str) -> None:
    """Upstream moved ``struct.field`` one level down, to ``struct.into.field``."""

    def change(t: pa.Table) -> pa.Table:
        col = t.column(struct).combine_chunks()
        names = [f.name for f in col.type]
        keep = [n for n in names if n != field]
        inner = pa.StructArray.from_arrays([col.field(field)], names=[field])
        new = pa.StructArray.from_arrays([col.field(n) for n in keep] + [inner], names=keep + [into])
        return t.set_column(t.column_names.index(struct), struct, new)

    _rewrite(data_dir, table, change)


def null_values(data_dir: Path, table: str, column: str, fraction: float, seed: int = 17) -> None:
    """Upstream started sending NULL in a seeded ``fraction`` of a column's rows."""
    set_values(data_dir, table, column, None, fraction, seed=seed)


def replay_rows(data_dir: Path, table: str, fraction: float, seed: int = 13, amend=None) -> None:
    """Upstream replayed a seeded ``fraction`` of a table's rows: copies appended at the end.

    ``amend`` (a pyarrow table -> table of the same schema) changes the copies, so they are
    corrections of the rows rather than a replay of them.
    """
    import numpy as np

    def change(t: pa.Table) -> pa.Table:
        rng = np.random.default_rng(seed)
        copies = t.take(pa.array(np.flatnonzero(rng.random(t.num_rows) < fraction)))
        return pa.concat_tables([t, amend(copies) if amend else copies])

    _rewrite(data_dir, table, change)
