"""Which validated fixes share a root cause: one upstream change that broke several
pipelines of a repo is proposed as one storm PR (``heal_storm``)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heal.py imports this module
    from healer.heal import Validated


def root_cause_key(v: "Validated") -> tuple:
    """The upstream changes behind a fix, by physical input location (not logical name): its
    schema changes, and the bad rows a data repair acts on (NULLs that surged in a column, a
    replayed batch), so one replay of a table that broke several jobs is one storm too."""
    specs = v.evidence.pipeline.inputs

    def where(name: str) -> str:
        return specs[name].location if name in specs else name

    changes = []
    for d in v.evidence.changed:
        changes += [(where(d.input), str(row[1]), str(row[2]), str(row[3])) for row in d.rows()]
    cause = v.patch.root_cause
    if cause is not None:
        changes += [(where(s.input), s.column.lower(), "NULLs surged", "") for s in cause.surges]
        changes += [(where(d.input), "", "exact duplicate rows", "") for d in cause.duplicates]
    return (v.attempt.failure.commit, tuple(sorted(changes)))


def group_by_root_cause(validated: list["Validated"]) -> list[list["Validated"]]:
    """Fixes with the same root cause that edit disjoint files go together; the rest alone."""
    groups: list[list[Validated]] = []
    for v in validated:
        key = root_cause_key(v)
        files = set(v.patch.files)
        home = next((g for g in groups if key[1] and root_cause_key(g[0]) == key
                     and not files & {f for m in g for f in m.patch.files}), None)
        if home is None:
            groups.append([v])
        else:
            home.append(v)
    return groups


def storm_fingerprint(group: list["Validated"]) -> str:
    """One fingerprint for a storm PR, from its members' failure fingerprints (sorted)."""
    members = sorted(v.attempt.failure.fingerprint for v in group)
    return hashlib.sha256("|".join(members).encode()).hexdigest()[:16]
