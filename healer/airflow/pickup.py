"""How the healer DAG learns of a hand-off without the failing task waiting for it.

A failing task only inserts a ``waiting`` row (``healer.airflow.handoff``). The healer DAG is
scheduled on an Airflow asset with a watcher (Airflow 3's event-driven scheduling): the
``HandoffTrigger`` below runs in Airflow's triggerer, looks for new waiting hand-offs every
few seconds, and fires an asset event when it finds some; the scheduler then starts one
healer run, which claims every waiting hand-off. The same DAG keeps a time schedule, so a
hand-off the watcher missed (no triggerer running, the ledger unreachable for a moment) is
swept within minutes: nothing recorded is lost.

Why a watcher rather than the other ways Airflow 3 offers:
- triggering the healer DAG, or posting an asset event, from the failing task is a round
  trip to Airflow's API server inside the task: the cost this module exists to avoid;
- a deferrable task needs a task already running to defer; nothing runs between failures;
- a short time schedule alone means a healer run every minute, and a minute's delay.
The triggerer is built for this kind of cheap asynchronous polling, and asset events that
queue up before the scheduler starts a run become one run: a storm of hand-offs arriving
on different workers at once is claimed together.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from healer.airflow import queue

log = logging.getLogger(__name__)

ASSET_PREFIX = "healer_handoffs"


class HandoffTrigger(BaseEventTrigger):
    """Fires an event whenever hand-offs for ``healer_dag_id`` start waiting in the ledger.

    Runs in the triggerer (which needs ``HEALER_LEDGER_URL`` like every Airflow component).
    Each event names the new hand-offs' ids; the ones seen are remembered, so one hand-off
    is announced once per triggerer process (a restarted triggerer announces those still
    waiting again, which at worst starts a healer run that finds them claimed).
    """

    def __init__(self, healer_dag_id: str, poll_seconds: float = 5.0):
        super().__init__()
        self.healer_dag_id = healer_dag_id
        self.poll_seconds = float(poll_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # no ledger URL here: it may hold a password, and trigger kwargs are stored in Airflow's database
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"healer_dag_id": self.healer_dag_id, "poll_seconds": self.poll_seconds})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        seen = 0
        while True:
            ids = await asyncio.to_thread(self.new_handoffs, seen)
            if ids:
                seen = max(ids)
                yield TriggerEvent({"healer_dag_id": self.healer_dag_id, "handoffs": ids})
            await asyncio.sleep(self.poll_seconds)

    def new_handoffs(self, after_id: int) -> list[int]:
        """Ids of hand-offs waiting for this healer DAG, newer than ``after_id``; [] when the
        ledger cannot be read (the next poll tries again, the DAG's schedule is the backstop)."""
        from healer.ledger import Ledger

        try:
            return [row["id"] for row in queue.waiting(Ledger(), self.healer_dag_id, after_id=after_id)]
        except Exception as exc:  # a trigger that raises stops watching until the triggerer restarts
            log.warning("healer: cannot read waiting hand-offs: %s: %s", type(exc).__name__, exc)
            return []


def handoff_asset(healer_dag_id: str, poll_seconds: float = 5.0):
    """The asset the healer DAG is scheduled on: updated when hand-offs for it start waiting."""
    from airflow.sdk import Asset, AssetWatcher

    name = f"{ASSET_PREFIX}__{healer_dag_id}"
    trigger = HandoffTrigger(healer_dag_id=healer_dag_id, poll_seconds=poll_seconds)
    return Asset(name=name, watchers=[AssetWatcher(name=f"{name}__watcher", trigger=trigger)])
