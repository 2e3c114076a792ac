"""A duplicate heal's own wait is shown beside, never as, a time to PR (the heal rows of the pages)."""

from __future__ import annotations

import datetime as dt

from healer.airflow.views import _heal_json

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


def rows(heal_id: int, duplicate: bool, failed_s: float, ended_s: float) -> tuple[dict, dict]:
    run = {"id": heal_id * 10, "finished_at": T0 + dt.timedelta(seconds=failed_s), "context": {}}
    heal = {"id": heal_id, "status": "proposed", "pipeline": "orders", "run_id": run["id"], "pr_id": 1,
            "finished_at": T0 + dt.timedelta(seconds=ended_s), "outcome": {"duplicate": duplicate}}
    return heal, run


def test_duplicate_wait_is_its_own_figure_and_not_a_time_to_pr():
    pr = {"id": 1, "heal_id": 1, "forge": "local", "created_at": T0 + dt.timedelta(seconds=95), "status": "open",
          "title": "t",
          "branch": "healer/x", "draft": False}
    opener, opener_run = rows(1, False, 0, 96)
    duplicate, duplicate_run = rows(2, True, 30, 130)  # failed after the first, linked to its PR 100 s later

    first, second = _heal_json(opener, opener_run, pr), _heal_json(duplicate, duplicate_run, pr)

    assert (first["time_to_pr_s"], first["time_to_pr"], first["duplicate_wait_s"]) == (95.0, "1m 35s", None)
    assert (second["time_to_pr_s"], second["time_to_pr"]) == (None, "")
    assert (second["duplicate_wait_s"], second["duplicate_wait"]) == (100.0, "1m 40s")
    assert second["pr"]["id"] == 1 and second["duplicate"] is True
