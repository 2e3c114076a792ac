"""Healer: failing Spark/SQL pipelines proposing their own reviewed fixes.

What a notebook or a script needs comes from one import::

    from healer import Ledger, LocalForge, get_spark, heal, run_pipeline

    spark = get_spark("notebook")
    run = run_pipeline(repo, "revenue_by_nation", spark=spark, ledger=Ledger(), check=False)
    outcome = heal(repo, "revenue_by_nation", spark=spark, forge=LocalForge(Ledger()))

``heal`` is the module ``healer.heal`` and can be called as its ``heal`` function, so
``from healer import heal`` and ``from healer.heal import Outcome`` both work.

Names load on first use: ``import healer`` imports neither Spark nor Airflow, and the Airflow
names (``self_healing``, ``heal_on_failure``) import Airflow only when they are used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ConfigError": "healer.errors",
    "Failure": "healer.failure",
    "HealerError": "healer.errors",
    "Ledger": "healer.ledger",
    "LocalForge": "healer.forges",
    "Outcome": "healer.heal",
    "Policy": "healer.policy",
    "RunFailed": "healer.errors",
    "Settings": "healer.settings",
    "get_forge": "healer.forges",
    "get_spark": "healer.runner.session",
    "heal_on_failure": "healer.airflow.handoff",
    "run_pipeline": "healer.runner.run",
    "self_healing": "healer.airflow.decorators",
}
_MODULES = {"heal": "healer.heal"}  # a module that is also called: see healer.heal's last lines

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'healer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
