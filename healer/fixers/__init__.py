"""Fixers: deterministic rules first (free, fast, explainable), then the model."""

from __future__ import annotations

import logging
from typing import NamedTuple

from healer import telemetry
from healer.fixers.base import Declined, FileEdit, Fixer, Patch
from healer.fixers.rules.code_typo import CodeTypo
from healer.fixers.rules.datetime_pattern import DatetimePattern
from healer.fixers.rules.dialect_slip import DialectSlip
from healer.fixers.rules.input_format import InputFormat
from healer.fixers.rules.manifest_drift import ManifestDrift
from healer.fixers.rules.moved_input import MovedInput
from healer.fixers.rules.nested_field import NestedField
from healer.fixers.rules.null_surge import NullSurge
from healer.fixers.rules.renamed_column import RenamedColumn
from healer.fixers.rules.replayed_batch import ReplayedBatch
from healer.fixers.rules.retyped_column import RetypedColumn
from healer.fixers.rules.revert_hunk import RevertHunk
from healer.fixers.rules.unsafe_cast import UnsafeCast
from healer.fixers.rules.zero_divisor import ZeroDivisor

log = logging.getLogger(__name__)

__all__ = ["Declined", "FileEdit", "Fixer", "Patch", "Proposals", "default_fixers", "propose_all"]


def default_fixers() -> list[Fixer]:
    """The rule fixers, in the order they are tried (candidates are then ranked by confidence)."""
    return [RenamedColumn(), RetypedColumn(), NestedField(), MovedInput(), UnsafeCast(), ZeroDivisor(),
            NullSurge(), ReplayedBatch(), DialectSlip(),
            # issue 17: bad commits and unreadable inputs; the revert is the last resort (a draft)
            CodeTypo(), ManifestDrift(), DatetimePattern(), InputFormat(), RevertHunk()]


class Proposals(NamedTuple):
    patches: list[Patch]  # best first
    declines: list[str]  # "rule:x declined: why", from rules that recognised the failure and refused
    errors: list[str]  # "rule:x failed: ...", from fixers that raised

    def notes(self) -> list[str]:
        return [*self.declines, *self.errors]


def propose_all(evidence, fixers: list[Fixer] | None = None) -> Proposals:
    """Every fixer's candidates, best first, with the reasons of rules that declined and of fixers that raised."""
    patches, declines, errors = [], [], []
    for fixer in fixers if fixers is not None else default_fixers():
        try:
            with telemetry.span("healer.fixer", {"healer.fixer": fixer.name}) as span:
                found = list(fixer.propose(evidence))
                span.set({"healer.candidates": len(found)})
            patches.extend(found)
        except Declined as exc:
            declines.append(f"{fixer.name} declined: {exc}")
        except Exception as exc:  # one broken fixer must not sink the heal
            log.debug("fixer %s failed", fixer.name, exc_info=True)  # the outcome says why; here, where
            errors.append(f"{fixer.name} failed: {type(exc).__name__}: {exc}")
    patches.sort(key=lambda p: -p.confidence)
    return Proposals(patches, declines, errors)
