"""The ledger a reading command (`healer runs`, `healer prs`, `healer pr`) reads, said out loud.

Each prints which ledger it read on stderr. A SQLite ledger that does not exist is not
created: opening one from another directory would make an empty ``./.healer/ledger.db`` and
answer "no pull requests" as if that were true, so the command warns and reads nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from healer.ledger import Ledger
from healer.redact import redact
from healer.settings import Settings


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1] if "///" in url else ""
    return None if path in ("", ":memory:") else Path(path)


def reading_ledger() -> Ledger | None:
    """The configured ledger, announced on stderr; None (with a warning) when its file does not exist."""
    url = Settings.from_env().resolved_ledger_url()
    path = sqlite_path(url)
    if path is not None and not path.exists():
        print(f"healer: warning: no ledger at {path} (nothing recorded there); run where `healer run` ran, "
              "or set HEALER_HOME or HEALER_LEDGER_URL to the ledger your pipelines write", file=sys.stderr)
        return None
    print(f"healer: ledger {redact(url)}", file=sys.stderr)
    return Ledger(url)
