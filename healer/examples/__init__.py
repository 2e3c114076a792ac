"""The example retail pipelines, installed with Healer so that ``healer demo`` works anywhere.

- ``retail/``: the pipeline repo template (``healer.yml`` and ``jobs/``). In a checkout of
  Healer its files are links to ``pipelines/``, the example repo the DAGs, tests and
  HealBench use; a built wheel carries copies.
- ``generate``: seeded retail data (``python -m healer.examples.generate``).
- ``drift``: upstream changes that break pipelines, applied to generated data.

The checkout keeps its old names: ``pipelines.generate`` and ``pipelines.drift`` are these modules.
"""

from __future__ import annotations

from pathlib import Path


def template_dir() -> Path:
    """The example pipeline repo template: ``healer.yml`` and ``jobs/``."""
    here = Path(__file__).resolve().parent / "retail"
    if not (here / "healer.yml").is_file():
        raise FileNotFoundError(f"the example pipelines are missing from {here}: reinstall Healer")
    return here
