"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from pathlib import Path


def healer_home() -> Path:
    """Where Healer keeps its ledger and work directories (``HEALER_HOME``, default ``./.healer``)."""
    return Path(os.environ.get("HEALER_HOME", ".healer")).resolve()


def ledger_url() -> str:
    """SQLAlchemy URL of the ledger (``HEALER_LEDGER_URL``, default a SQLite file in ``HEALER_HOME``)."""
    url = os.environ.get("HEALER_LEDGER_URL")
    if url:
        return url
    return f"sqlite:///{healer_home() / 'ledger.db'}"


def profile_sample_rows() -> int:
    """Rows of each input profiled on every run (``HEALER_PROFILE_SAMPLE_ROWS``, default 10000)."""
    return int(os.environ.get("HEALER_PROFILE_SAMPLE_ROWS", "10000"))
