"""What the plugin's pages and JSON API show, read from the ledger (no Airflow, no Spark).

Each function returns plain JSON-able dicts: the API returns them as they are and the
pages render them. Everything shown is redacted on the way out (``healer.redact``): the
ledger holds error messages, tracebacks and examples quoted from data, and rows written
before redaction existed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from healer.airflow import queue
from healer.airflow.links import heal_path, pr_path
from healer.governance import trail
from healer.ledger import Ledger, as_utc, candidates, heals, jsonable, prs, runs
from healer.redact import redact_json
from healer.telemetry.figures import time_to_pr


def _iso(value: dt.datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat(timespec="seconds") if value else None


def duration_words(seconds: float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``42s``; empty for None."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def _pr_json(row: dict | None) -> dict | None:
    if not row:
        return None
    url = row.get("url") or ""
    return {"id": row["id"], "forge": row["forge"], "number": row.get("number"), "status": row["status"],
            "draft": bool(row.get("draft")), "title": row.get("title"), "branch": row.get("branch"),
            "base": row.get("base"), "url": url or None, "page": pr_path(row["id"]),
            # a local-forge URL (healer://) opens nowhere in a browser: the plugin's page does
            "href": url if url.startswith(("http://", "https://")) else pr_path(row["id"]),
            "created_at": _iso(row.get("created_at"))}


def _root_cause(heal: dict) -> str:
    outcome = heal.get("outcome") or {}
    for c in outcome.get("candidates") or []:
        if c.get("passed") and c.get("title"):
            return c["title"]
    from healer.failure import CATEGORY_WORDS

    return CATEGORY_WORDS.get(heal.get("category") or "", heal.get("category") or "unknown")


def _airflow(context: dict | None) -> dict:
    context = context or {}
    keys = ("dag_id", "task_id", "run_id", "map_index", "try_number", "max_tries", "log_url", "source")
    return {k: context[k] for k in keys if k in context}


def heal_rows(ledger: Ledger, *, status: str | None = None, pipeline: str | None = None, limit: int = 100) -> list[dict]:
    """Heals, newest first: status, pipeline, root cause, fixer, PR and time from failure to PR."""
    where = []
    if status:
        where.append(heals.c.status == status)
    if pipeline:
        where.append(heals.c.pipeline == pipeline)
    rows = ledger.select(heals, *where, limit=limit)
    run_ids = {r["run_id"] for r in rows if r["run_id"] is not None}
    pr_ids = {r["pr_id"] for r in rows if r["pr_id"] is not None}
    failed = {r["id"]: r for r in ledger.select(runs, runs.c.id.in_(run_ids), limit=len(run_ids) or 1)} if run_ids else {}
    opened = {r["id"]: r for r in ledger.select(prs, prs.c.id.in_(pr_ids), limit=len(pr_ids) or 1)} if pr_ids else {}
    return redact_json([_heal_json(r, failed.get(r["run_id"]), opened.get(r["pr_id"])) for r in rows])


def _heal_json(heal: dict, run: dict | None, pr: dict | None) -> dict:
    outcome = heal.get("outcome") or {}
    failed_at = as_utc(run.get("finished_at")) if run else None
    # a duplicate points at a PR an earlier heal opened: no time to PR of its own, but its wait
    # (from its failure until it was linked to the heal of its cause) is shown beside it
    to_pr = time_to_pr(heal, run, pr)
    ended_at = as_utc(heal.get("finished_at"))
    waited = max(0.0, (ended_at - failed_at).total_seconds()) if (
        outcome.get("duplicate") and ended_at and failed_at) else None
    return {
        "id": heal["id"], "status": heal["status"], "pipeline": heal["pipeline"], "category": heal.get("category"),
        "root_cause": _root_cause(heal), "reason": heal.get("reason"), "fixer": heal.get("fixer"),
        "confidence": outcome.get("confidence"), "fingerprint": heal.get("fingerprint"),
        "duplicate": bool(outcome.get("duplicate")), "failure": heal.get("run_id"),
        "pr": _pr_json(pr), "time_to_pr_s": to_pr, "time_to_pr": duration_words(to_pr),
        "duplicate_wait_s": waited, "duplicate_wait": duration_words(waited),
        "started_at": _iso(heal.get("started_at")), "finished_at": _iso(heal.get("finished_at")),
        "airflow": _airflow(run.get("context") if run else None), "page": heal_path(heal["id"]),
    }


def heal_detail(ledger: Ledger, heal_id: int) -> dict | None:
    """One heal with its evidence: the failure, the schema drift, candidates, diff and validation."""
    heal = ledger.get(heals, heal_id)
    if heal is None:
        return None
    run = ledger.get(runs, heal["run_id"]) if heal.get("run_id") is not None else None
    pr = ledger.get(prs, heal["pr_id"]) if heal.get("pr_id") is not None else None
    data = _heal_json(heal, run, pr)
    outcome = heal.get("outcome") or {}
    tried = ledger.select(candidates, candidates.c.heal_id == heal_id, order_desc=False, limit=50)
    data["candidates"] = [{"fixer": c["fixer"], "title": c["title"], "confidence": c["confidence"],
                           "passed": bool(c["passed"]), "reasons": _reasons(c.get("verdict")),
                           "diff": (c.get("patch") or {}).get("diff", "")} for c in tried]
    winner = next((c for c in data["candidates"] if c["passed"]), None)
    data["diff"] = winner["diff"] if winner else ""
    data["validation"] = outcome.get("validation")
    data["timings"] = outcome.get("timings") or {}
    data["failure_run"] = _failure_json(run)
    data["evidence"] = _evidence(ledger, run)
    data["pr_body"] = pr.get("body") if pr else None
    data["handoffs"] = [_handoff_json(h) for h in queue.for_run(ledger, heal["run_id"])] if run else []
    data.update(trail.page(ledger, heal_id))  # verification state and the audit timeline
    return redact_json(jsonable(data))


def _reasons(verdict: Any) -> list[str]:
    if not isinstance(verdict, dict):
        return []
    checks = verdict.get("checks") or []
    return [f"{c.get('name')}: {c.get('detail')}" for c in checks if isinstance(c, dict) and not c.get("passed")]


def _failure_json(run: dict | None) -> dict | None:
    if not run:
        return None
    return {"id": run["id"], "pipeline": run["pipeline"], "repo": run["repo"], "commit": run.get("commit"),
            "stage": run.get("stage"), "error_class": run.get("error_class"), "message": run.get("error_message"),
            "traceback": run.get("traceback"), "failed_expectations": run.get("failed_expectations") or [],
            "finished_at": _iso(run.get("finished_at")), "airflow": _airflow(run.get("context"))}


def _evidence(ledger: Ledger, run: dict | None) -> dict:
    """The schema drift between the last good run's inputs and the failed run's, as the heal saw it."""
    if not run:
        return {"last_good": None, "drift": []}
    last = ledger.last_success(run["pipeline"], before_id=run["id"], repo=run["repo"])
    if last is None or not run.get("input_schemas"):
        return {"last_good": last.id if last else None, "drift": []}
    try:
        from healer.evidence.schema import diff_inputs

        diffs = diff_inputs(last.input_schemas or {}, run.get("input_schemas") or {},
                            last.input_profiles or {}, run.get("input_profiles") or {})
        drift = [list(row) for d in diffs for row in d.rows()]
    except Exception as exc:  # evidence is for reading; a page must still render
        drift = [["", "", "not available", f"{type(exc).__name__}: {exc}"]]
    return {"last_good": last.id, "drift": drift}


def _handoff_json(row: dict) -> dict:
    return redact_json({"id": row["id"], "failure": row["run_id"], "status": row["status"], "source": row.get("source"),
            "dag_id": row["dag_id"], "task_id": row["task_id"], "run_id": row["airflow_run_id"],
            "map_index": row["map_index"], "try_number": row["try_number"], "healer_dag_id": row.get("healer_dag_id"),
            "healer_run_id": row.get("healer_run_id"), "error": row.get("error"), "heal": row.get("heal_id"),
            "outcome": row.get("outcome"), "updated_at": _iso(row.get("updated_at"))})


def pr_rows(ledger: Ledger, *, status: str | None = None, limit: int = 100) -> list[dict]:
    """Pull requests, newest first."""
    where = [prs.c.status == status] if status else []
    return redact_json([_pr_json(r) | {"pipeline": r.get("pipeline"), "heal": r.get("heal_id")}
                        for r in ledger.select(prs, *where, limit=limit)])


def pr_detail(ledger: Ledger, pr_id: int) -> dict | None:
    """One pull request with its body (the evidence, in Markdown)."""
    row = ledger.get(prs, pr_id)
    if row is None:
        return None
    return redact_json(jsonable(_pr_json(row) | {"pipeline": row.get("pipeline"), "heal": row.get("heal_id"),
                                                 "remote": row.get("remote"), "body": row.get("body"),
                                                 "updated_at": _iso(row.get("updated_at"))}))


def task_view(ledger: Ledger, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> dict:
    """Every hand-off of one task instance's tries, each with its heal and PR."""
    handoffs = queue.for_task(ledger, dag_id, task_id, run_id, map_index)
    run_ids = sorted({h["run_id"] for h in handoffs})
    found = ledger.select(heals, heals.c.run_id.in_(run_ids), limit=200) if run_ids else []
    latest: dict[int, dict] = {}
    for h in found:  # newest first: keep the latest heal of each failure
        latest.setdefault(h["run_id"], h)
    tries = []
    for h in handoffs:
        heal = latest.get(h["run_id"])
        pr = ledger.get(prs, heal["pr_id"]) if heal and heal.get("pr_id") is not None else None
        tries.append({"handoff": _handoff_json(h),
                      "heal": _heal_json(heal, ledger.get(runs, h["run_id"]), pr) if heal else None})
    pr = next((t["heal"]["pr"] for t in tries if t["heal"] and t["heal"]["pr"]), None)
    return redact_json(jsonable({"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index,
                                 "tries": tries, "pr": pr}))


def counts(ledger: Ledger) -> dict[str, int]:
    """Heals by status, for the list page's header."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(heals.c.status, sa.func.count()).group_by(heals.c.status)).all()
    return {status: n for status, n in rows}
