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
