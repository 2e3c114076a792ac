"""The ``healer`` pool: heal tasks run in it, so heals never take more than its slots from pipelines.

Its size is ``HEALER_POOL_SLOTS`` (default 2). The Healer plugin creates the pool, or sets its
size, when the scheduler or the api-server loads it: those are the components that hold the
metadata database (task processes in Airflow 3 do not, and DAG files must not write to it).
A task naming a pool that does not exist is never scheduled, so the healer DAG's heal tasks
only name it when it is there to be made.
"""

from __future__ import annotations

import logging
import sys

from healer.settings import Settings

log = logging.getLogger(__name__)

POOL = "healer"
# the components that load the plugin with the metadata database at hand
_OWNERS = ("scheduler", "api-server")


def pool_slots(env=None) -> int:
    """``HEALER_POOL_SLOTS``: how many heals run at once across all workers."""
    return Settings.from_env(env).pool_slots


def ensure_pool(argv: list[str] | None = None) -> bool:
    """Create the pool, or resize it to ``HEALER_POOL_SLOTS``, in the scheduler or api-server; True if done.

    Never raises: a plugin that fails to load takes the listener down with it.
    """
    argv = sys.argv if argv is None else argv
    if not any(a in _OWNERS for a in argv[1:3]):
        return False
    try:
        from airflow.models.pool import Pool

        slots = pool_slots()
        current = Pool.get_pool(POOL)
        if current is None or current.slots != slots:
            Pool.create_or_update_pool(POOL, slots=slots, include_deferred=False,
                                       description="Healer's heal tasks (HEALER_POOL_SLOTS)")
            log.info("healer: pool %r has %d slot(s)", POOL, slots)
        return True
    except Exception as exc:
        log.warning("healer: could not create the %r pool: %s: %s", POOL, type(exc).__name__, exc)
        return False
