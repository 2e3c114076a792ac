"""What a heal may touch, spend and propose: one place for every threshold."""

from __future__ import annotations

from dataclasses import dataclass

from healer.settings import Settings


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
        return cls.from_settings(Settings.from_env())

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        """The policy the ``HEALER_*`` settings give (``Policy()`` and ``Settings()`` agree on defaults)."""
        return cls(
            sample_rows=settings.sample_rows,
            null_tolerance=settings.null_tolerance,
            min_confidence=settings.min_confidence,
            draft_below=settings.draft_below,
            max_candidates=settings.max_candidates,
            sandbox_seconds=settings.sandbox_seconds,
            sandbox_output_bytes=settings.sandbox_output_bytes,
            allow_model_in_process=settings.sandbox_allow_model_in_process,
            shadow=settings.shadow,
            max_shadow_rows=settings.max_shadow_rows,
            max_shadow_seconds=settings.max_shadow_seconds,
        )
