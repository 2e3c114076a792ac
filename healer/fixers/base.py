"""Patch candidates and the Fixer protocol."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

from healer.errors import Declined  # noqa: F401 -- rules import it from here


@dataclass(frozen=True)
class FileEdit:
    """The whole new text of one file, relative to the repo root."""

    path: str
    before: str
    after: str

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(True), self.after.splitlines(True),
                                            fromfile=f"a/{self.path}", tofile=f"b/{self.path}"))


@dataclass
class Patch:
    """A proposed fix: edits, why, how sure, and every doubt."""

    fixer: str
    title: str  # the root cause in words, e.g. "order_items.unit_price was renamed to item_price"
    rationale: str
    confidence: float  # 0..1
    edits: list[FileEdit]
    changes_meaning: bool = False  # True when the fix changes what the data means (draft PR only)
    doubts: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def diff(self) -> str:
        return "".join(e.diff() for e in self.edits)

    @property
    def files(self) -> list[str]:
        return [e.path for e in self.edits]

    def to_json(self) -> dict:
        data = asdict(self)
        data["diff"] = self.diff()
        for e in data["edits"]:
            e.pop("before", None)
            e.pop("after", None)
        return data


@runtime_checkable
class Fixer(Protocol):
    """Proposes patches for a failure from its evidence. Must not touch the workspace."""

    name: str

    def propose(self, evidence) -> list[Patch]:
        ...
