"""Render the example pull request bodies under docs/ from fixed inputs.

    python docs/render_examples.py           # rewrite docs/example-pr-*.md
    python docs/render_examples.py --check   # exit 1 when a file differs from the renderer

The inputs are the real records a heal builds (Failure, Evidence, Patch, Verdict), filled
with fixed values so the output only changes when the renderer does. tests/test_report.py
checks the committed files against this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from healer import report  # noqa: E402
from healer.evidence import Evidence  # noqa: E402
from healer.evidence.history import CommitInfo  # noqa: E402
from healer.evidence.lineage import Lineage  # noqa: E402
from healer.evidence.schema import InputDiff, RenameCandidate  # noqa: E402
from healer.expectations import ExpectationResult  # noqa: E402
from healer.failure import Failure, classify  # noqa: E402
from healer.fixers.base import FileEdit, Patch  # noqa: E402
from healer.ledger import RunRecord  # noqa: E402
from healer.llm_client import ModelUsage, Usage  # noqa: E402
from healer.manifest import InputSpec, OutputSpec, Pipeline  # noqa: E402
from healer.sandbox import Check, Verdict  # noqa: E402
from healer.sandbox.datadiff import ColumnChange, DataDiff, NumericStats  # noqa: E402
from healer.sandbox.readiness import judge  # noqa: E402
from healer.sandbox.shadow import Shadow, ShadowCheck  # noqa: E402
from healer.workspace import branch_name  # noqa: E402

DOCS = Path(__file__).resolve().parent
REPO = "/srv/pipelines/retail"

# The example PRs patch the real example jobs, so the rendered diffs match the repo.
REVENUE_SQL = (DOCS.parent / "pipelines" / "jobs" / "revenue_by_category.sql").read_text()
LIFETIME_SQL = (DOCS.parent / "pipelines" / "jobs" / "customer_lifetime.sql").read_text()


def _expectation(expectation: str, kind: str, column: str | None, rows: int | None, failing: int | None = 0,
                 observed=None) -> ExpectationResult:
    counted = rows is not None
    return ExpectationResult(expectation=expectation, kind=kind, column=column, success=not failing,
                             element_count=rows if counted else None,
                             unexpected_count=failing if counted else None,
                             unexpected_percent=(100.0 * failing / rows) if counted and rows else None,
                             observed=observed)


def _pipeline(name: str, job: str, inputs: list[str]) -> Pipeline:
    return Pipeline(name=name, job=job, kind="sql",
                    inputs={n: InputSpec(name=n, path=f"/warehouse/{n}") for n in inputs},
                    output=OutputSpec(path=f"/warehouse/output/{name}"),
                    expectations=job.replace(".sql", ".expectations.yml"), root=Path(REPO))


def rule_fix() -> dict:
    """A renamed upstream column, fixed by a rule: a ready pull request."""
    failure = classify(Failure(
        pipeline="revenue_by_category", repo=REPO, stage="job", run_id=41,
        commit="4f1c2a9e7b3d5c8a1e0f6b2d9c7a3e5f1b8d4c6a",
        error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION",
        message=("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with name "
                 "`i`.`unit_price` cannot be resolved. Did you mean one of the following? [`i`.`item_price`, "
                 "`i`.`quantity`, `i`.`discount`, `i`.`order_id`, `i`.`product_id`]. SQLSTATE: 42703; line 11 pos 30"),
        params={"objectName": "`i`.`unit_price`", "proposal": "`i`.`item_price`"}))
    last_good = RunRecord(pipeline=failure.pipeline, repo=REPO, status="success", id=40, row_count=96)
    pipeline = _pipeline(failure.pipeline, "jobs/revenue_by_category.sql", ["order_items", "orders", "products"])
    evidence = Evidence(
        failure=failure, pipeline=pipeline, job_source=REVENUE_SQL, last_good=last_good,
        current_schemas={}, current_profiles={},
        diffs=[InputDiff("order_items", dropped={"unit_price": "double"}, added={"item_price": "double"},
                         renames=[RenameCandidate("order_items", "unit_price", "item_price", 0.93, 0.86, 1.0, 1.0)]),
               InputDiff("orders"), InputDiff("products")],
        lineage=Lineage(outputs={"category": {"products.category"}, "month": {"orders.order_ts"},
                                 "orders": {"orders.order_id"}, "units": {"order_items.quantity"},
                                 "revenue": {"order_items.quantity", "order_items.unit_price", "order_items.discount"}},
                        exact=True),
        commits=[CommitInfo(sha="9c0d4e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d", author="Dana Reyes",
                            date="2025-03-02T10:14:00+00:00", subject="revenue: exclude returned orders",
                            files=("jobs/revenue_by_category.sql",))])
    after = REVENUE_SQL.replace("i.unit_price", "i.item_price")
    patch = Patch(
        fixer="rule:renamed_column",
        title="upstream column was renamed in order_items: unit_price → item_price",
        rationale=("Since the last good run, order_items lost unit_price and gained item_price with matching types "
                   "and values (scores 0.93). The job now reads the new names; its output columns keep their names."),
        confidence=0.93, edits=[FileEdit("jobs/revenue_by_category.sql", REVENUE_SQL, after)],
        details={"input": "order_items", "renames": {"unit_price": "item_price"}})
    rows = 96
    verdict = Verdict(
        passed=True,
        checks=[Check("runs", True, "the job ran on the sample"), Check("expectations", True, "9/9 passed"),
                Check("output schema", True, "5 columns, same names and types as the last good run"),
                Check("profile", True, "null fractions within 10% of the last good run"),
                Check("production untouched", True, "/warehouse/output/revenue_by_category unchanged")],
        expectations=[
            _expectation("columns_match_set(columns=['category', 'month', 'orders', 'units', 'revenue'])",
                         "columns_match_set", None, None, observed=["category", "month", "orders", "units", "revenue"]),
            _expectation("column_values_not_null(column=category)", "column_values_not_null", "category", rows),
            _expectation("column_values_in_set(column=category, values=['electronics', 'books', 'home', 'garden', "
                         "'toys', 'grocery', 'fashion', 'sports'])", "column_values_in_set", "category", rows),
            _expectation("column_values_not_null(column=month)", "column_values_not_null", "month", rows),
            _expectation("column_values_not_null(column=revenue)", "column_values_not_null", "revenue", rows),
            _expectation("column_values_between(column=revenue, min=0)", "column_values_between", "revenue", rows),
            _expectation("column_values_between(column=units, min=1)", "column_values_between", "units", rows),
            _expectation("compound_columns_unique(columns=['category', 'month'])", "compound_columns_unique", None, rows),
            _expectation("row_count_between(min=1)", "row_count_between", None, None, observed=rows),
        ],
        sample_sizes={"order_items": 20000, "orders": 6431, "products": 200}, output_rows=rows,
        profile_rows=[
            {"column": "category", "null_before": 0.0, "null_after": 0.0, "min_before": "books", "min_after": "books",
             "max_before": "toys", "max_after": "toys"},
            {"column": "month", "null_before": 0.0, "null_after": 0.0, "min_before": "2024-01-01",
             "min_after": "2024-01-01", "max_before": "2024-12-01", "max_after": "2024-12-01"},
            {"column": "orders", "null_before": 0.0, "null_after": 0.0, "min_before": 212, "min_after": 61,
             "max_before": 498, "max_after": 143},
            {"column": "units", "null_before": 0.0, "null_after": 0.0, "min_before": 431, "min_after": 120,
             "max_before": 1093, "max_after": 316},
            {"column": "revenue", "null_before": 0.0, "null_after": 0.0, "min_before": 10234.5, "min_after": 2911.25,
             "max_before": 88123.75, "max_after": 25410.0},
        ])
    shadow = Shadow(
        ran=True, reason="ran on the full current inputs", rows_read=67249, output_rows=96, last_good_rows=96,
        seconds=6.2, input_rows_now={"order_items": 50000, "orders": 17049, "products": 200},
        checks=(ShadowCheck("runs", True, "ran on 67,249 input rows, wrote 96 rows"),
                ShadowCheck("expectations", True, "9/9 passed on the full output"),
                ShadowCheck("output schema", True, "5 columns, same names and types as the last good run")),
        diff=DataDiff(key=("category", "month"), rows_before=96, rows_after=96, identical=96, changed=0,
                      only_before=0, only_after=0,
                      numeric=(NumericStats("orders", (96.0, 355.2, 351.0, 471.0), (96.0, 355.2, 351.0, 471.0)),
                               NumericStats("units", (96.0, 782.4, 776.0, 1035.0), (96.0, 782.4, 776.0, 1035.0)),
                               NumericStats("revenue", (96.0, 51377.1, 50210.5, 80344.25),
                                            (96.0, 51377.1, 50210.5, 80344.25)))))
    verdict = _with_shadow(verdict, patch, shadow)
    return dict(failure=failure, evidence=evidence, patch=patch, verdict=verdict,
                timings={"triage": 0.1, "workspace": 0.4, "evidence": 6.2, "fixers": 0.3, "sandbox": 21.7},
                branch=branch_name(failure.pipeline, failure.short_fingerprint), draft=False,
                sample_plan={"order_items": "seeded 3.61% sample", "orders": "rows joining the order_items sample on order_id",
                             "products": "rows joining the order_items sample on product_id"})


def draft_fix() -> dict:
    """A retyped timestamp parsed by a model fix that turns some values into NULL: a draft."""
    failure = classify(Failure(
        pipeline="customer_lifetime", repo=REPO, stage="job", run_id=57,
        commit="b7e3a1c9d5f2e8a4c6b0d1f3e5a7c9b2d4f6a8c0",
        error_class="CAST_INVALID_INPUT",
        message=("[CAST_INVALID_INPUT] The value '05/03/2024 10:00:00' of the type \"STRING\" cannot be cast to "
                 "\"TIMESTAMP\" because it is malformed. Correct the value as per the syntax, or change its target "
                 "type. Use `try_cast` to tolerate malformed input and return NULL instead. SQLSTATE: 22018"),
        traceback=("Traceback (most recent call last):\n  File \"healer/runner/run.py\", line 118, in run_pipeline\n"
                   "    result.write.parquet(staging)\npyspark.errors.exceptions.captured.NumberFormatException: "
                   "[CAST_INVALID_INPUT] The value '05/03/2024 10:00:00' of the type \"STRING\" cannot be cast"),
        params={"expression": "'05/03/2024 10:00:00'", "sourceType": "\"STRING\"", "targetType": "\"TIMESTAMP\""}))
    last_good = RunRecord(pipeline=failure.pipeline, repo=REPO, status="success", id=55, row_count=18342)
    pipeline = _pipeline(failure.pipeline, "jobs/customer_lifetime.sql", ["orders", "payments"])
    evidence = Evidence(
        failure=failure, pipeline=pipeline, job_source=LIFETIME_SQL, last_good=last_good,
        current_schemas={}, current_profiles={},
        diffs=[InputDiff("orders", retyped={"order_ts": ("timestamp", "string")}), InputDiff("payments")],
        lineage=Lineage(outputs={"customer_id": {"orders.customer_id"}, "order_id": {"orders.order_id"},
                                 "order_ts": {"orders.order_ts"},
                                 "order_number": {"orders.customer_id", "orders.order_ts", "orders.order_id"},
                                 "lifetime_value": {"payments.amount", "orders.customer_id", "orders.order_ts"},
                                 "days_since_previous": {"orders.order_ts", "orders.customer_id"}}, exact=True),
        commits=[])
    after = LIFETIME_SQL.replace(
        "FROM (SELECT DISTINCT order_id, customer_id, order_ts FROM orders) AS o",
        "FROM (SELECT DISTINCT order_id, customer_id,\n"
        "        TRY_TO_TIMESTAMP(order_ts, 'dd/MM/yyyy HH:mm:ss') AS order_ts FROM orders) AS o")
    patch = Patch(
        fixer="llm:claude-sonnet-4-5",
        title="upstream column orders.order_ts changed type from timestamp to string",
        rationale=("orders.order_ts arrives as text like '05/03/2024 10:00:00' since the last good run. The job "
                   "now parses it with TRY_TO_TIMESTAMP and the pattern dd/MM/yyyy HH:mm:ss, read from values whose "
                   "first field is above 12. Values that do not match that pattern become NULL instead of failing "
                   "the run."),
        confidence=0.62, changes_meaning=True,
        edits=[FileEdit("jobs/customer_lifetime.sql", LIFETIME_SQL, after)],
        doubts=["14 of 2,000 distinct order_ts values do not match dd/MM/yyyy HH:mm:ss (e.g. '2024-03-05T10:00:00') "
                "and become NULL; those orders sort first and get no days_since_previous.",
                "The day/month order was inferred from values whose first field is above 12; if upstream mixes "
                "formats, dates up to the 12th may be read with day and month swapped."],
        usage=ModelUsage("claude-sonnet-4-5", Usage(input_tokens=18234, output_tokens=1412, cache_read_input_tokens=6100),
                         cost_usd=0.0781))
    rows = 4870
    verdict = Verdict(
        passed=True,
        checks=[Check("runs", True, "the job ran on the sample"), Check("expectations", True, "7/7 passed"),
                Check("output schema", True, "6 columns, same names and types as the last good run"),
                Check("profile", True, "null fractions within 10% of the last good run"),
                Check("production untouched", True, "/warehouse/output/customer_lifetime unchanged")],
        expectations=[
            _expectation("column_values_not_null(column=customer_id)", "column_values_not_null", "customer_id", rows),
            _expectation("column_values_unique(column=order_id)", "column_values_unique", "order_id", rows),
            _expectation("column_values_between(column=order_number, min=1)", "column_values_between", "order_number", rows),
            _expectation("column_values_between(column=lifetime_value, min=0)", "column_values_between", "lifetime_value",
                         rows),
            _expectation("column_values_between(column=days_since_previous, min=0)", "column_values_between",
                         "days_since_previous", 4424),
            _expectation("compound_columns_unique(columns=['customer_id', 'order_number'])", "compound_columns_unique",
                         None, rows),
            _expectation("row_count_between(min=1)", "row_count_between", None, None, observed=rows),
        ],
        sample_sizes={"orders": 5002, "payments": 4870}, output_rows=rows,
        profile_rows=[
            {"column": "customer_id", "null_before": 0.0, "null_after": 0.0, "min_before": 1, "min_after": 3,
             "max_before": 2999, "max_after": 2998},
            {"column": "order_id", "null_before": 0.0, "null_after": 0.0, "min_before": 1, "min_after": 7,
             "max_before": 20000, "max_after": 19994},
            {"column": "order_ts", "null_before": 0.0, "null_after": 0.0072, "min_before": "2024-01-01T00:03:00",
             "min_after": "2024-01-01T00:41:00", "max_before": "2024-12-31T23:52:00", "max_after": "2024-12-31T23:10:00"},
            {"column": "order_number", "null_before": 0.0, "null_after": 0.0, "min_before": 1, "min_after": 1,
             "max_before": 19, "max_after": 14},
            {"column": "lifetime_value", "null_before": 0.0, "null_after": 0.0, "min_before": 4.99,
             "min_after": 4.99, "max_before": 9120.4, "max_after": 7311.8},
            {"column": "days_since_previous", "null_before": 0.081, "null_after": 0.0916, "min_before": 0,
             "min_after": 0, "max_before": 341, "max_after": 339},
        ])
    shadow = Shadow(
        ran=True, reason="ran on the full current inputs", rows_read=40388, output_rows=18198, last_good_rows=18342,
        seconds=9.8, input_rows_now={"orders": 20002, "payments": 20386},
        checks=(ShadowCheck("runs", True, "ran on 40,388 input rows, wrote 18,198 rows"),
                ShadowCheck("expectations", True, "7/7 passed on the full output"),
                ShadowCheck("output schema", True, "6 columns, same names and types as the last good run")),
        diff=DataDiff(key=("order_id",), rows_before=18342, rows_after=18198, identical=16915, changed=1283,
                      only_before=144, only_after=0,
                      columns=(ColumnChange("order_number", 1283, 3.0, 0.75, -0.08, ("order_id=118", "order_id=342",
                                                                                    "order_id=907")),
                               ColumnChange("lifetime_value", 1283, 1812.4, 0.61, -0.05, ("order_id=118", "order_id=342",
                                                                                        "order_id=907")),
                               ColumnChange("days_since_previous", 1102, 212.0, 9.5, 0.31, ("order_id=118",
                                                                                           "order_id=907"))),
                      numeric=(NumericStats("order_number", (18342.0, 5.61, 4.0, 13.0), (18198.0, 5.52, 4.0, 13.0)),
                               NumericStats("lifetime_value", (18342.0, 1503.2, 1120.4, 4210.9),
                                            (18198.0, 1481.7, 1101.3, 4188.0)))))
    verdict = _with_shadow(verdict, patch, shadow, draft_below=0.7)
    return dict(failure=failure, evidence=evidence, patch=patch, verdict=verdict,
                timings={"triage": 0.1, "workspace": 0.5, "evidence": 7.9, "fixers": 0.0, "sandbox": 48.3},
                branch=branch_name(failure.pipeline, failure.short_fingerprint), draft=True,
                sample_plan={"orders": "seeded 6.50% sample", "payments": "rows joining the orders sample on order_id"})


def _with_shadow(verdict: Verdict, patch: Patch, shadow: Shadow, draft_below: float = 0.7) -> Verdict:
    """The verdict as the sandbox completes it: the full-data run, its checks, and Healer's readiness."""
    from dataclasses import replace

    checks = verdict.checks + [Check("shadow run", True, shadow.reason), Check("data diff", True, shadow.diff.summary())]
    return replace(verdict, checks=checks, shadow=shadow, readiness=judge(patch, shadow, draft_below=draft_below))


EXAMPLES = {"example-pr-rule-fix.md": (rule_fix, {}), "example-pr-draft.md": (draft_fix, {"draft_below": 0.7})}


def render(name: str) -> str:
    """The example file ``name`` as the renderer writes it now: the title line, then the body."""
    build, options = EXAMPLES[name]
    inputs = build()
    title = report.pr_title(inputs["failure"].pipeline, inputs["patch"])
    body = report.pr_body(inputs["failure"], inputs["evidence"], inputs["patch"], inputs["verdict"], inputs["timings"],
                          inputs["branch"], inputs["draft"], inputs["sample_plan"], **options)
    return f"<!-- rendered by docs/render_examples.py from fixed inputs; do not edit by hand -->\n# {title}\n\n{body}"


def main(argv: list[str]) -> int:
    stale = []
    for name in EXAMPLES:
        path, text = DOCS / name, render(name)
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    for name in stale:
        print(f"docs/{name} differs from the renderer: run `python docs/render_examples.py`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
