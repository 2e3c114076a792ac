"""The settings most modules need, as functions (all read through ``healer.settings``)."""

from __future__ import annotations

from pathlib import Path

from healer.settings import Settings


def healer_home() -> Path:
    """Where Healer keeps its ledger and work directories (``HEALER_HOME``, default ``./.healer``)."""
    return Settings.from_env().resolved_home()


def ledger_url() -> str:
    """SQLAlchemy URL of the ledger (``HEALER_LEDGER_URL``, default a SQLite file in ``HEALER_HOME``)."""
    return Settings.from_env().resolved_ledger_url()


def profile_sample_rows() -> int:
    """Rows of each input profiled on every run (``HEALER_PROFILE_SAMPLE_ROWS``, default 10000)."""
    return Settings.from_env().profile_sample_rows
