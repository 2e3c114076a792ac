"""The hand-off queue on a real ledger: what a failing task records, and what each kind of
healer run claims (no Airflow needed: the queue knows nothing of it)."""

from __future__ import annotations

from healer.airflow import queue


def handoff(ledger, task: str, healer: str = "healer") -> int:
    key = queue.TaskKey(dag_id="etl", task_id=task, run_id="scheduled__1", try_number=1)
    return queue.enqueue(ledger, 100 + len(task), key, pipeline=task, source="callback", healer_dag_id=healer)


def test_a_try_is_handed_off_once_and_waits_for_its_own_healer(ledger):
    first = handoff(ledger, "orders")
    assert handoff(ledger, "orders") is None  # the listener after the callback: already handed off
    handoff(ledger, "sessions", healer="healer_team_b")

    assert [r["id"] for r in queue.waiting(ledger, "healer")] == [first]
    assert queue.claim(ledger, "healer-run-1", healer_dag_id="healer") == [106]
    assert queue.claim(ledger, "healer-run-2", healer_dag_id="healer") == []  # claimed once, by one run
    assert queue.waiting(ledger, "healer") == []
    [row] = queue.for_run(ledger, 106)
    assert (row["status"], row["healer_run_id"]) == ("healing", "healer-run-1")


def test_a_manual_run_takes_triggered_hand_offs_however_fresh_a_scheduled_sweep_leaves(ledger):
    # a hand-off an older version marked 'triggered' (its own healer run was created then)
    left = handoff(ledger, "orders")
    ledger.update(queue.handoffs, left, status=queue.TRIGGERED)

    assert queue.claim(ledger, "scheduled-sweep", healer_dag_id="healer") == []  # its run may still come
    assert queue.claim(ledger, "manual-run", healer_dag_id="healer", stale_after=None) == [106]
