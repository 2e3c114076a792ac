"""What a heal may touch, spend and propose: one place for every threshold."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env(name: str, default, cast):
    value = os.environ.get(name)
    return cast(value) if value not in (None, "") else default


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Policy:
    sample_rows: int = 20000  # rows per input in the sandbox
    null_tolerance: float = 0.10  # allowed rise of a column's null fraction vs the last good run
    min_confidence: float = 0.5  # below this a candidate is not even tried
    draft_below: float = 0.7  # a passing fix below this confidence becomes a draft PR
    max_candidates: int = 5  # candidates tried in the sandbox per heal
    push: bool = True  # push branches (off for dry runs)
    sandbox_seconds: float = 600.0  # one candidate's sandbox run, its worker's start-up included
    sandbox_output_bytes: int = 256 * 1024 * 1024  # the most a candidate's sample output may weigh
    allow_model_in_process: bool = False  # run model-written fixes with HEALER_SANDBOX=process (no namespaces)
    shadow: bool = True  # run a candidate that passed the sample on the full current inputs
    max_shadow_rows: int = 50_000_000  # inputs larger than this are validated on the sample only (a draft)
    max_shadow_seconds: float = 1800.0
    max_shadow_output_bytes: int = 64 * 1024 ** 3

    @classmethod
    def from_env(cls) -> "Policy":
        return cls(
            sample_rows=_env("HEALER_SAMPLE_ROWS", cls.sample_rows, int),
            null_tolerance=_env("HEALER_NULL_TOLERANCE", cls.null_tolerance, float),
            min_confidence=_env("HEALER_MIN_CONFIDENCE", cls.min_confidence, float),
            draft_below=_env("HEALER_DRAFT_BELOW", cls.draft_below, float),
            max_candidates=_env("HEALER_MAX_CANDIDATES", cls.max_candidates, int),
            sandbox_seconds=_env("HEALER_SANDBOX_SECONDS", cls.sandbox_seconds, float),
            sandbox_output_bytes=_env("HEALER_SANDBOX_OUTPUT_BYTES", cls.sandbox_output_bytes, int),
            allow_model_in_process=_env("HEALER_SANDBOX_ALLOW_MODEL_IN_PROCESS", cls.allow_model_in_process, _flag),
            shadow=_env("HEALER_SHADOW", cls.shadow, _flag),
            max_shadow_rows=_env("HEALER_MAX_SHADOW_ROWS", cls.max_shadow_rows, int),
            max_shadow_seconds=_env("HEALER_MAX_SHADOW_SECONDS", cls.max_shadow_seconds, float),
        )
