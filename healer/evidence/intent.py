"""The output contract when the code changed: the new commit's intent, not the last good schema.

A commit that adds ``net_revenue`` to a report and breaks the job must be fixed so that
``net_revenue`` is there: comparing the fix's output with the last good run's schema would
call the new column a regression (and a revert of the feature a success). So when the job
or its expectations changed between the last good run's commit and the failed one, the
sandbox checks the output against what the new commit meant:

- the columns the new job projects (SQL: sqlglot's reading of the committed text; PySpark:
  the last good columns, plus names the commit added as string literals, minus names it
  removed), in the new job's order for SQL;
- a last good column keeps its type unless the commit changed its expression (SQL) or
  named it on a line it added (PySpark);
- an updated ``columns_match_set`` expectation, when there is one, is the exact set.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)


def contract_check(pipeline, last_good, expectations, schema: dict) -> tuple[bool, str] | None:
    """(passed, detail) against the new commit's intent, or None when the code did not change
    (or git cannot say): then the last good schema is the contract, as before."""
    from healer.runner.profile import schema_columns

    try:
        import git

        from healer.evidence.history import changes_since, pipeline_paths

        if not last_good or not last_good.commit:
            return None
        root = Path(pipeline.root)
        repo = git.Repo(root, search_parent_directories=False)
        paths = pipeline_paths(root, pipeline.job, pipeline.expectations, pipeline.kind)
        changes = changes_since(repo, last_good.commit, "HEAD", paths)
        if changes is None or not (changes.touches(pipeline.job) or (
                pipeline.expectations and changes.touches(pipeline.expectations))):
            return None
        head_job = repo.git.show(f"HEAD:{pipeline.job}", strip_newline_in_stdout=False)
        current_job = (root / pipeline.job).read_text()
    except Exception as exc:  # noqa: BLE001 - no git, no history: fall back to the last good schema
        log.info("no commit intent for %s: %s", pipeline.name, exc)
        return None
    before = schema_columns(last_good.output_schema)
    after = schema_columns(schema)
    old_job = changes.old_text(pipeline.job) or head_job
    who = changes.commits[-1].commit if changes.commits else None
    since = f"the code changed since the last good run ({who.sha[:10]} by {who.author})" if who else \
        "the code changed since the last good run"
    if pipeline.kind == "sql":
        new_cols = _sql_projection(head_job) or _sql_projection(current_job)
        old_cols = _sql_projection(old_job)
        if new_cols is None:
            return None
        changed = {n for n, e in new_cols.items() if old_cols is None or old_cols.get(n) != e}
        intended = list(new_cols)
    else:
        added = " ".join(changes.added_lines(pipeline.job))
        removed = " ".join(changes.removed_lines(pipeline.job))
        literal = set(re.findall(r"[\"']([A-Za-z_][\w]*)[\"']", added))
        gone = {n for n in before if re.search(rf"[\"']{re.escape(n)}[\"']", removed)
                and not re.search(rf"[\"']{re.escape(n)}[\"']", head_job)}
        intended = [n for n in before if n not in gone] + [n for n in after if n in literal and n not in before]
        changed = literal
    exact = _match_set(expectations)
    if exact is not None:
        intended_set = {n.lower() for n in exact}
        intended = [n for n in after if n.lower() in intended_set] + [n for n in exact if n not in after]
    problems = []
    low_after = {n.lower(): (n, t) for n, t in after.items()}
    low_before = {n.lower(): t for n, t in before.items()}
    for name in intended:
        got = low_after.get(name.lower())
        if got is None:
            problems.append(f"{name} missing" + ("" if name.lower() in low_before else " (added by the commit)"))
            continue
        old_type = low_before.get(name.lower())
        if old_type is not None and old_type != got[1] and name.lower() not in {c.lower() for c in changed}:
            problems.append(f"{name} was {old_type}, now {got[1]}")
    extra = [n for n in after if n.lower() not in {i.lower() for i in intended}]
    if extra:
        problems.append(f"columns the commit does not project: {', '.join(extra)}")
    if not problems and pipeline.kind == "sql" and exact is None and [n.lower() for n in after] != [
            n.lower() for n in intended]:
        problems.append("column order differs from the new job's")
    if problems:
        return False, f"{since}; against the new commit's columns: " + "; ".join(problems)
    new = [n for n in after if n.lower() not in low_before]
    retyped = [n for n in after if n.lower() in low_before and low_before[n.lower()] != after[n]]
    detail = f"{since}: {len(after)} columns as the new commit intends"
    if new:
        detail += f"; new: {', '.join(f'{n} {after[n]}' for n in new)}"
    if retyped:
        detail += f"; retyped by the commit: {', '.join(f'{n} {low_before[n.lower()]} -> {after[n]}' for n in retyped)}"
    return True, detail


def _sql_projection(sql: str) -> dict[str, str] | None:
    """output name -> the SQL of its expression, in order; None when unparseable or a ``*``."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="spark")
    except Exception:  # noqa: BLE001 - a job that does not parse has no reading of its intent
        log.debug("the job's SQL does not parse: no reading of its intent", exc_info=True)
        return None
    if tree is None or not hasattr(tree, "selects"):
        return None
    out = {}
    for p in tree.selects:
        if isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)):
            return None
        name = p.alias_or_name
        if not name:
            return None
        inner = p.this if isinstance(p, exp.Alias) else p
        out[name] = inner.sql("spark")
    return out


def _match_set(expectations) -> list[str] | None:
    for e in expectations or []:
        if getattr(e, "kind", None) == "columns_match_set" and (getattr(e, "args", None) or {}).get("columns"):
            return list(e.args["columns"])
    return None
