"""URLs of the plugin's pages, shared by the operator link, the external views and the pages."""

from __future__ import annotations

from urllib.parse import urlencode

URL_PREFIX = "/healer"  # where the plugin's FastAPI app is mounted in the API server


def task_path(dag_id: str, run_id: str, task_id: str, map_index: int | None = -1, *, go: str | None = None) -> str:
    """The page of one task instance's hand-offs and heals (``go="pr"`` redirects to its PR)."""
    query = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id}
    if map_index is not None and int(map_index) >= 0:
        query["map_index"] = str(map_index)
    if go:
        query["go"] = go
    return f"{URL_PREFIX}/task?{urlencode(query)}"


def heal_path(heal_id: int) -> str:
    """The page of one heal: its evidence, diff and validation."""
    return f"{URL_PREFIX}/heals/{heal_id}"


def pr_path(pr_id: int) -> str:
    """The page of one pull request (a local-forge PR has no other page)."""
    return f"{URL_PREFIX}/prs/{pr_id}"
