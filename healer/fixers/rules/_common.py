"""Helpers shared by the rule fixers."""

from __future__ import annotations

from healer.expectations import ExpectationResult
from healer.runner.profile import schema_columns


def input_columns(evidence) -> dict[str, set[str]]:
    """Each input's columns (lower-case) at the last good run, or now when there is none."""
    schemas = (evidence.last_good.input_schemas if evidence.last_good else None) or evidence.current_schemas
    return {name: {c.lower() for c in schema_columns(s)} for name, s in schemas.items() if s}


def job_mentions(evidence, input_name: str, column: str) -> bool:
    """Whether the job reads the column (lineage for SQL, names in the code for PySpark)."""
    key = f"{input_name}.{column}".lower()
    if any(r.lower() == key for r in evidence.lineage.referenced):
        return True
    return column.lower() in evidence.job_source.lower()


def failed_expectations(evidence, kinds: set[str]) -> list[ExpectationResult]:
    """The failed expectations of the given kinds (as the audit recorded them)."""
    return [e for e in evidence.failure.failed_expectations or [] if e.kind in kinds]


def input_name(evidence, name: str) -> str:
    """The pipeline's own spelling of an input named in SQL or lineage (case may differ)."""
    return next((n for n in evidence.pipeline.inputs if n.lower() == name.lower()), name)
