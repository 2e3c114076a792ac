"""Patch candidates and the Fixer protocol."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from healer.errors import Declined  # noqa: F401 -- rules import it from here
from healer.evidence.probes import DuplicateProbe

if TYPE_CHECKING:  # the model client is only needed where a model fix is made
    from healer.llm_client import ModelUsage


@dataclass(frozen=True)
class FileEdit:
    """The whole new text of one file, relative to the repo root."""

    path: str
    before: str
    after: str

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(True), self.after.splitlines(True),
                                            fromfile=f"a/{self.path}", tofile=f"b/{self.path}"))


@dataclass(frozen=True)
class Surge:
    """An input column with more NULLs now than at the last good run."""

    input: str  # as the pipeline names it
    column: str  # as the input spells it
    before: float  # NULL fraction in the last good run's input profile
    now: float  # NULL fraction in the current profile
    rows: int  # rows profiled now

    @property
    def nulls(self) -> int:
        return round(self.now * self.rows)

    def to_json(self) -> dict:
        return {"input": self.input, "column": self.column, "null_fraction_before": self.before,
                "null_fraction_now": self.now, "null_rows": self.nulls, "profiled_rows": self.rows}


@dataclass(frozen=True)
class RootCause:
    """The bad rows a data repair acts on, which rootcause.py groups storms by beside the schema
    changes: NULLs that surged in input columns (rule:null_surge), whole rows an input repeats
    (rule:replayed_batch; each probe's ``input`` as the pipeline names it)."""

    surges: tuple[Surge, ...] = ()
    duplicates: tuple[DuplicateProbe, ...] = ()

    def to_json(self) -> dict:
        out: dict = {}
        if self.surges:
            out["surges"] = [s.to_json() for s in self.surges]
        if self.duplicates:
            out["duplicates"] = [{"input": d.input, "rows": d.rows, "distinct": d.distinct, "duplicates": d.duplicates}
                                 for d in self.duplicates]
        return out


@dataclass(frozen=True)
class Rebinding:
    """Where the sandbox must read a candidate's inputs when the patch edits healer.yml (binding.py):
    ``input`` moved to ``path`` (in ``format``) or ``table``; the job no longer reads ``dropped``;
    ``renamed`` (old, new) is the same data under the job's name."""

    input: str | None = None
    path: str | None = None
    format: str | None = None
    table: str | None = None
    dropped: tuple[str, ...] = ()
    renamed: tuple[str, str] | None = None

    def to_json(self) -> dict:
        out: dict = {}
        if self.input is not None:
            out["input"] = self.input
            out["location"] = {"path": self.path, "format": self.format} if self.path else {"table": self.table}
        if self.dropped:
            out["drop_inputs"] = list(self.dropped)
        if self.renamed:
            out["rename_input"] = {"from": self.renamed[0], "to": self.renamed[1]}
        return out


@dataclass
class Patch:
    """A proposed fix: edits, why, how sure, and every doubt.

    What another stage acts on is typed (``root_cause``, ``rebinding``, ``usage``); ``details``
    holds free-form facts for the ledger and the JSON output only, never read back by key.
    """

    fixer: str
    title: str  # the root cause in words, e.g. "order_items.unit_price was renamed to item_price"
    rationale: str
    confidence: float  # 0..1
    edits: list[FileEdit]
    changes_meaning: bool = False  # True when the fix changes what the data means (draft PR only)
    doubts: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    root_cause: RootCause | None = None
    rebinding: Rebinding | None = None
    usage: ModelUsage | None = None  # a model fix's: what the model cost

    def diff(self) -> str:
        return "".join(e.diff() for e in self.edits)

    @property
    def files(self) -> list[str]:
        return [e.path for e in self.edits]

    def to_json(self) -> dict:
        data = asdict(self)
        # the typed facts go out inside ``details``, under the keys the JSON has always had
        typed = [t.to_json() for t in (self.root_cause, self.rebinding, self.usage) if t is not None]
        for name in ("root_cause", "rebinding", "usage"):
            data.pop(name)
        data["details"] = {k: v for d in [data["details"], *typed] for k, v in d.items()}
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
