"""The ledger's figures in Prometheus' text exposition format (version 0.0.4).

Served by the Airflow plugin's API at ``/healer/api/metrics``. Totals are counted from the
ledger, not from one process, so the figures are the whole fleet's whichever API server
answers; they only grow while rows are not deleted, which is what Prometheus expects of a
counter. Label values are names Healer gives (statuses, fixers, categories, PR states):
never data values, pipeline names or secrets.
"""

from __future__ import annotations

from healer.telemetry.figures import LedgerFigures

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(f: LedgerFigures) -> str:
    """The exposition text, one family per metric, ending with a newline."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, dict, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{sample}{_labels(labels)} {_number(value)}" for sample, labels, value in samples)

    family("healer_heals_total", "counter", "Heals by how they ended, the fixer whose fix was proposed, "
           "and the failure's category.",
           [("healer_heals_total", {"status": k.status, "fixer": k.fixer, "category": k.category}, n)
            for k, n in f.heals])
    h = f.time_to_pr
    cumulative, buckets = 0, []
    for bound, n in zip(h.bounds + (float("inf"),), h.counts):
        cumulative += n
        buckets.append(("healer_time_to_pr_seconds_bucket", {"le": _number(bound)}, cumulative))
    family("healer_time_to_pr_seconds", "histogram", "Seconds from the failed run to the pull request its heal "
           "opened (duplicates not counted).",
           buckets + [("healer_time_to_pr_seconds_sum", {}, h.total),
                      ("healer_time_to_pr_seconds_count", {}, h.count)])
    family("healer_model_tokens_total", "counter", "Model tokens spent by heals, by type.",
           [("healer_model_tokens_total", {"type": t}, n) for t, n in f.tokens])
    family("healer_model_cost_usd_total", "counter", "Estimated model cost of heals in US dollars.",
           [("healer_model_cost_usd_total", {}, f.cost_usd)])
    family("healer_sandbox_seconds_total", "counter", "Seconds heals spent in the sandbox (sample and shadow "
           "runs of every candidate).", [("healer_sandbox_seconds_total", {}, f.sandbox_s)])
    family("healer_prs", "gauge", "Pull requests Healer opened, by their state now.",
           [("healer_prs", {"state": s, "draft": "true" if d else "false"}, n) for s, d, n in f.prs])
    if f.verification is not None:
        family("healer_fixes", "gauge", "Merged fixes by what the runs after the merge said.",
               [("healer_fixes", {"verification": s}, n) for s, n in f.verification])
    return "\n".join(out) + "\n"


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    # the format's three escapes; anything else is taken literally
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return repr(value) if isinstance(value, float) else str(value)
