"""Forges: where pull requests are opened. Local by default."""

from healer.forges.base import Forge, PullRequest
from healer.forges.local import LocalForge

__all__ = ["Forge", "LocalForge", "PullRequest", "get_forge"]


def get_forge(ledger, remote: str | None = None) -> Forge:
    """The forge for a remote. Only the local forge exists so far."""
    return LocalForge(ledger)
