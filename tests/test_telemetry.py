"""OpenTelemetry traces and metrics of heals, and the Prometheus endpoint that counts the same
figures from the ledger: real heals exported over OTLP/HTTP to a receiver on 127.0.0.1 that
decodes the real protobuf payloads."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from healer import telemetry
from healer.errors import RunFailed
from healer.heal import heal
from healer.ledger import RunRecord, utcnow
from healer.runner.run import run_pipeline
from otlpserver import OtlpReceiver
from pipelines import drift
from test_lease import pg_url  # noqa: F401 -- a fresh PostgreSQL database per test

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
STAGES = ["healer.triage", "healer.lease", "healer.workspace", "healer.evidence", "healer.fixers", "healer.sandbox",
          "healer.proposal"]
SECRET = "sk-ant-api03-telemetry-must-never-carry-this"


@pytest.fixture
def otlp(monkeypatch):
    """Telemetry on, exporting over OTLP/HTTP to a local receiver; off again afterwards."""
    with OtlpReceiver() as receiver:
        for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_RESOURCE_ATTRIBUTES"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "healer-under-test")
        monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")  # metrics leave on flush only
        telemetry.reset()
        try:
            yield receiver
        finally:
            telemetry.reset()  # shuts the providers down while the receiver still answers
            monkeypatch.undo()
            telemetry.reset()


def test_off_unless_configured_and_nothing_of_opentelemetry_is_imported():
    code = ("import os, sys\n"
            "[os.environ.pop(k) for k in list(os.environ) if k.startswith('OTEL_')]\n"
            "import healer.heal, healer.airflow.runs\n"
            "from healer import telemetry\n"
            "trace = telemetry.start_heal('p', 1, {'traceparent': '00-' + '1' * 32 + '-' + '2' * 16 + '-01'})\n"
            "with trace.stage('triage'), telemetry.span('healer.fixer', {'healer.fixer': 'x'}) as s:\n"
            "    s.set({'healer.candidates': 1})\n"
            "trace.end(None)\n"
            "print(telemetry.enabled(), sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False []"


@pytest.mark.parametrize("env, traces, metrics", [
    ({}, (), ()),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",), ("otlp",)),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",), ()),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "none"}, ("otlp",), ()),
    ({"OTEL_TRACES_EXPORTER": "console, otlp_proto_http"}, ("console", "otlp_proto_http"), ()),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, (), ()),
])
def test_the_standard_variables_say_what_is_exported(env, traces, metrics):
    config = telemetry.OtelConfig.from_env(env)
    assert (config.traces, config.metrics, config.on) == (traces, metrics, bool(traces or metrics))


def test_an_exporter_that_is_not_installed_is_one_warning_and_telemetry_stays_off(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin_json")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    telemetry.reset()
    try:
        with caplog.at_level("WARNING", logger="healer.telemetry"):
            assert telemetry.enabled() is False
            with telemetry.span("healer.triage") as span:
                span.set({"healer.status": "x"})
    finally:
        monkeypatch.undo()
        telemetry.reset()
    [warning] = [r.getMessage() for r in caplog.records if r.name == "healer.telemetry"]
    assert "OTEL_TRACES_EXPORTER='zipkin_json': no such exporter installed" in warning
    assert "otlp_proto_http" in warning and "\n" not in warning


@pytest.mark.airflow
def test_traceparent_of_an_airflow_task_try():
    """Airflow 3 hands a task its trace as ``context_carrier``; inside the task's span the span itself names the try."""
    from airflow.sdk.api.datamodels._generated import TaskInstance
    from opentelemetry.sdk.trace import TracerProvider

    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    ti = TaskInstance(id=uuid.uuid4(), task_id="t", dag_id="d", run_id="r", try_number=1,
                      dag_version_id=uuid.uuid4(), context_carrier=carrier)
    assert telemetry.traceparent_of(ti) == carrier["traceparent"]
    tracer = TracerProvider().get_tracer("airflow.sdk.execution_time.task_runner")
    with tracer.start_as_current_span("worker.t") as span:  # what Airflow's task runner does around a try
        ctx = span.get_span_context()
        assert telemetry.traceparent_of(ti) == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    forged = TaskInstance(id=uuid.uuid4(), task_id="t", dag_id="d", run_id="r", try_number=1,
                          dag_version_id=uuid.uuid4(), context_carrier={"traceparent": "00-<script>-x-01"})
    assert telemetry.traceparent_of(forged) is None


@pytest.mark.airflow
def test_a_task_try_run_by_airflows_task_runner_records_its_trace_for_the_heal():
    """Inside the span Airflow 3's task runner opens around a try (``_make_task_span``: what wraps
    the task, its failure callback and listeners), the failure's context names the try's trace.
    (``dag.test()`` runs tasks outside that span and without a carrier: there is nothing to link.)"""
    from airflow.sdk.api.datamodels._generated import TaskInstance
    from airflow.sdk.execution_time.comms import StartupDetails
    from airflow.sdk.execution_time.task_runner import _make_task_span

    from healer.airflow.runs import task_context

    carrier = {"traceparent": "00-5e1f0c4a6b7d8e9f0a1b2c3d4e5f6a7b-1a2b3c4d5e6f7a8b-01"}  # as the scheduler makes them
    ti = TaskInstance(id=uuid.uuid4(), task_id="revenue", dag_id="shop", run_id="scheduled__1", try_number=2,
                      dag_version_id=uuid.uuid4(), context_carrier=carrier)
    with _make_task_span(StartupDetails.model_construct(ti=ti)):
        context = task_context(ti, "airflow:callback")
    # the carrier's span, or the worker span under it when a tracer provider records: the same trace
    assert TRACEPARENT.match(context["traceparent"])
    assert context["traceparent"].split("-")[1] == carrier["traceparent"].split("-")[1]
    assert (context["dag_id"], context["task_id"], context["try_number"]) == ("shop", "revenue", 2)
    assert "traceparent" not in task_context(object(), "airflow:listener")  # no try, no trace


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_ledger(request, tmp_path):
    from healer.ledger import Ledger

    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url"))


def test_the_ledger_figures_count_every_heal_once_and_render_as_prometheus_text(any_ledger):
    from healer.ledger import heals, prs
    from healer.telemetry import prometheus
    from healer.telemetry.figures import ledger_figures

    led, t0 = any_ledger, utcnow()
    failed = led.start_run(RunRecord(pipeline="p", repo="/r", status="failed", started_at=t0, finished_at=t0))
    odd = 'rule:"odd"\\name\nx'  # label values are escaped, whatever a fixer is called
    first = led.insert(heals, run_id=failed.id, pipeline="p", status="proposed", fixer=odd, category="unresolved_column",
                       outcome={"duplicate": False, "timings": {"sandbox": 12.5}})
    pr = led.insert(prs, forge="local", heal_id=first, status="open", draft=False, created_at=t0 + dt.timedelta(seconds=42))
    led.update(heals, first, pr_id=pr)
    led.insert(heals, run_id=failed.id, pipeline="p", status="proposed", category="unresolved_column", pr_id=pr,
               outcome={"duplicate": True})  # waited for the first: no time to PR of its own
    led.insert(heals, run_id=failed.id, pipeline="p", status="declined", category="unresolved_column",
               outcome={"timings": {"sandbox": 0.5}, "llm": {"usage": {"input_tokens": 1200, "output_tokens": 200,
                                                                     "cost_usd": 0.0066}}})
    other = led.insert(heals, run_id=failed.id, pipeline="p", status="error", category="missing_table",
               outcome={"llm": {"usage": {"input_tokens": "many", "cost_usd": "lots"}}})  # junk counts as nothing
    led.insert(prs, forge="local", heal_id=None, status="merged", draft=True, created_at=t0)
    # post-merge verification (governance): a heal's newest state counts, once
    from healer.governance.audit import Action, record

    record(led, first, Action.VERIFICATION, state="unverified")
    record(led, first, Action.VERIFICATION, state="verified")
    record(led, other, Action.VERIFICATION, state="regressed")

    running = led.insert(heals, run_id=failed.id, pipeline="p", status="running", category="unresolved_column")

    f = ledger_figures(led)
    assert f.verification == (("verified", 1), ("regressed", 1), ("unverified", 0))
    assert f.heal_count(status="running") == 1
    assert f.heal_count() == 5 and f.heal_count(status="proposed") == 2 and f.heal_count(fixer=odd) == 1
    assert (f.time_to_pr.count, f.time_to_pr.total) == (1, 42.0)
    assert dict(f.tokens) == {"input": 1200, "output": 200, "cache_creation_input": 0, "cache_read_input": 0}
    assert (f.cost_usd, f.sandbox_s) == (0.0066, 13.0)
    assert f.prs == (("merged", True, 1), ("open", False, 1))
    text = prometheus.render(f)
    assert text.endswith("\n") and "# TYPE healer_time_to_pr_seconds histogram" in text
    prom = _prometheus(text)
    key = (("category", "unresolved_column"), ("fixer", 'rule:\\"odd\\"\\\\name\\nx'), ("status", "proposed"))
    assert prom[("healer_heals_total", key)] == 1
    assert prom[("healer_heals_total", (("category", "missing_table"), ("fixer", ""), ("status", "error")))] == 1
    buckets = {dict(k[1])["le"]: v for k, v in prom.items() if k[0] == "healer_time_to_pr_seconds_bucket"}
    assert (buckets["30"], buckets["45"], buckets["+Inf"]) == (0, 1, 1)
    assert prom[("healer_model_cost_usd_total", ())] == 0.0066 and prom[("healer_sandbox_seconds_total", ())] == 13
    assert prom[("healer_prs", (("draft", "true"), ("state", "merged")))] == 1
    assert prom[("healer_fixes", (("verification", "regressed"),))] == 1
    # a scrape reads again only what is new or was running: the running heal ends, another starts
    led.update(heals, running, status="declined", outcome={"timings": {"sandbox": 1.0}})
    led.insert(heals, run_id=failed.id, pipeline="p", status="skipped", category="transient")
    again = ledger_figures(led)
    assert again.heal_count(status="running") == 0 and again.heal_count(status="declined") == 2
    assert again.heal_count() == 6 and again.sandbox_s == 14.0


def test_the_model_tokens_and_cost_a_heal_exports_are_what_the_ledger_counts(otlp, ledger):
    from healer.heal import Outcome
    from healer.ledger import heals
    from healer.llm_client import Usage
    from healer.telemetry.figures import ledger_figures

    usage = Usage(requests=2, input_tokens=1200, output_tokens=200, cache_creation_input_tokens=900)
    outcome = Outcome("declined", "the model declined: discount is gone", pipeline="p", category="unresolved_column",
                      fingerprint="f" * 16, llm={"enabled": True, "usage": usage.to_json("claude-sonnet-4-5")},
                      timings={"sandbox": 3.25})
    outcome.heal = ledger.insert(heals, pipeline="p", status=outcome.status, category=outcome.category,
                                 outcome=outcome.to_json())
    telemetry.start_heal("p", None, {}).end(outcome, ledger, None)
    telemetry.flush()
    [root] = otlp.spans()
    assert root.attributes["gen_ai.usage.input_tokens"] == 1200 and root.attributes["gen_ai.usage.output_tokens"] == 200
    assert "discount" not in json.dumps(root.attributes)  # the reason's text stays out
    metrics = otlp.metrics()
    exported = {p.attributes[0].value.string_value: p.as_int for p in metrics["healer.model.tokens"].sum.data_points}
    [cost] = metrics["healer.model.cost"].sum.data_points
    [sandbox_s] = metrics["healer.sandbox.duration"].sum.data_points
    counted = ledger_figures(ledger)
    assert exported == {t: n for t, n in counted.tokens if n} == {"input": 1200, "output": 200, "cache_creation_input": 900}
    assert cost.as_double == counted.cost_usd == usage.cost_usd("claude-sonnet-4-5") > 0
    assert sandbox_s.as_double == counted.sandbox_s == 3.25
    assert root.attributes["healer.model.cost_usd"] == counted.cost_usd


@pytest.mark.slow
def test_healer_heal_exports_its_trace_and_metrics_when_the_process_exits(otlp, ledger, tmp_path):
    failed = ledger.start_run(RunRecord(pipeline="orders", repo=str(tmp_path), status="failed", stage="config",
                                        error_class="ConfigError", error_message="healer.yml: no such pipeline",
                                        started_at=utcnow(), finished_at=utcnow()))
    out = subprocess.run([sys.executable, "-m", "healer.cli", "heal", "--repo", str(tmp_path), "--failure",
                          str(failed.id), "--json"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HEALER_LEDGER_URL": ledger.url})
    assert out.returncode == 3, out.stderr[-2000:]
    outcome = json.loads(out.stdout)
    [root] = [s for s in otlp.spans() if s.name == "healer.heal"]
    assert root.attributes["healer.heal_id"] == outcome["heal"] and root.attributes["healer.status"] == "declined"
    [point] = otlp.metrics()["healer.heals"].sum.data_points
    assert point.as_int == 1


def _children(spans) -> dict:
    by_parent = defaultdict(list)
    for s in spans:
        by_parent[s.parent_span_id].append(s)
    return by_parent


def _data_values(data_dir) -> set[str]:
    """String values of the pipelines' inputs (product categories, customer names and emails, statuses)."""
    values = set()
    for table in ("products", "customers", "orders"):
        for column in pq.read_table(data_dir / table).to_pydict().values():
            values |= {v for v in column[:200] if isinstance(v, str) and len(v) >= 4}
    return values


def _prometheus(text: str) -> dict[tuple, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            name, _, labels = name_labels.partition("{")
            pairs = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)))
            samples[(name, pairs)] = float(value)
    return samples


@pytest.mark.shadow
@pytest.mark.spark
@pytest.mark.slow
def test_heals_are_traced_and_counted_and_the_prometheus_endpoint_agrees(spark, ledger, pipeline_repo, otlp,
                                                                         monkeypatch):
    data = pipeline_repo / "data"
    monkeypatch.setenv("WAREHOUSE_PASSWORD", SECRET)  # a secret in the heal's environment
    # proposed: a renamed column, handed off by an Airflow task try whose trace the heal links to
    run_pipeline(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    drift.rename_column(data, "order_items", "unit_price", "item_price")
    airflow_try = {"dag_id": "shop", "task_id": "revenue", "run_id": "manual__1", "try_number": 1, "max_tries": 0,
                   "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with pytest.raises(RunFailed):
        run_pipeline(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger, context=airflow_try)
    proposed = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert proposed.status == "proposed" and not proposed.duplicate, proposed.reason
    # duplicate: the same cause fails again while its PR is open
    with pytest.raises(RunFailed):
        run_pipeline(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    duplicate = heal(pipeline_repo, "revenue_by_category", spark=spark, ledger=ledger)
    assert duplicate.status == "proposed" and duplicate.duplicate
    # declined: a broken healer.yml is not Healer's to repair (the model's tokens: see the test above)
    broken = RunRecord(pipeline="customer_lifetime", repo=str(pipeline_repo), status="failed", stage="config",
                       error_class="ConfigError", error_message="healer.yml: pipeline 'customer_lifetime': job not found",
                       started_at=utcnow())
    ledger.start_run(broken)
    ledger.finish_run(broken)
    declined = heal(pipeline_repo, "customer_lifetime", spark=spark, ledger=ledger)
    assert declined.status == "declined", declined.reason
    # error: a run from uncommitted changes cannot be reproduced from git
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pipeline_repo, capture_output=True, text=True).stdout.strip()
    dirty = RunRecord(pipeline="clean_customers", repo=str(pipeline_repo), status="failed", stage="job",
                      error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION", error_message="`signup` cannot be resolved",
                      error_params={"objectName": "`signup`"}, commit=commit, dirty=True, started_at=utcnow())
    ledger.start_run(dirty)
    ledger.finish_run(dirty)
    errored = heal(pipeline_repo, "clean_customers", spark=spark, ledger=ledger)
    assert errored.status == "error"
    telemetry.flush()

    spans = otlp.spans()
    roots = {s.attributes["healer.heal_id"]: s for s in spans if s.name == "healer.heal"}
    assert set(roots) == {proposed.heal, duplicate.heal, declined.heal, errored.heal}
    assert {s.resource["service.name"] for s in spans} == {"healer-under-test"}
    children = _children(spans)
    root = roots[proposed.heal]
    assert root.parent_span_id == "" and root.status_code == 0
    assert root.attributes["healer.status"] == "proposed" and root.attributes["healer.fixer"] == "rule:renamed_column"
    assert root.attributes["healer.pipeline"] == "revenue_by_category"
    assert root.attributes["healer.fingerprint"] == proposed.fingerprint and root.attributes["healer.pr_id"] == proposed.pr
    assert root.attributes["airflow.dag_id"] == "shop" and root.attributes["airflow.task_id"] == "revenue"
    assert root.attributes["healer.time_to_pr_s"] > 0
    assert [(t, s) for t, s, _ in root.links] == [("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")]
    stages = [s.name for s in children[root.span_id]]
    assert [n for n in stages if n in STAGES] == STAGES, stages
    subtree, todo = [], [root]
    while todo:
        subtree += children[todo[0].span_id]
        todo = todo[1:] + children[todo[0].span_id]
    assert len(subtree) > 20 and {s.trace_id for s in subtree} == {root.trace_id}
    [fixers] = [s for s in children[root.span_id] if s.name == "healer.fixers"]
    tried = {s.attributes["healer.fixer"]: s.attributes.get("healer.candidates") for s in children[fixers.span_id]}
    assert tried["rule:renamed_column"] == 1 and len(tried) >= 10  # every rule, each in its own span
    [sandbox] = [s for s in children[root.span_id] if s.name == "healer.sandbox"]
    [candidate] = children[sandbox.span_id]
    assert candidate.name == "healer.candidate" and candidate.attributes == {"healer.fixer": "rule:renamed_column",
                                                                              "healer.passed": True}
    inside = {s.name: s.attributes for s in children[candidate.span_id]}
    assert list(inside) == ["healer.gate", "healer.sample_run", "healer.shadow"]
    assert inside["healer.gate"]["healer.passed"] and inside["healer.shadow"]["healer.ready"] is True
    # the others: one root each, with how it ended
    assert roots[duplicate.heal].attributes["healer.duplicate"] is True
    assert [s.name for s in children[roots[duplicate.heal].span_id]] == ["healer.triage"]
    assert "healer.time_to_pr_s" not in roots[duplicate.heal].attributes  # its wait is not a time to PR
    assert roots[declined.heal].attributes["healer.status"] == "declined"
    assert roots[declined.heal].attributes["healer.category"] == "config"
    assert roots[errored.heal].status_code == 2 and roots[errored.heal].attributes["healer.status"] == "error"
    # names and numbers only: no data value, no secret, no reason text
    values = json.dumps([[s.attributes, s.links] for s in spans])
    leaked = [v for v in _data_values(data) if v in values]
    assert not leaked, leaked[:5]
    assert otlp.bodies and not any(SECRET.encode() in body for body in otlp.bodies)
    assert "cannot be resolved" not in values and "uncommitted" not in values

    metrics = otlp.metrics()
    heals_otel = {(a["healer.status"], a["healer.fixer"], a["healer.category"]): p.as_int
                  for p in metrics["healer.heals"].sum.data_points
                  for a in [{kv.key: kv.value.string_value for kv in p.attributes}]}
    assert sum(heals_otel.values()) == 4
    assert heals_otel[("proposed", "rule:renamed_column", proposed.category)] == 1
    assert heals_otel[("proposed", "", proposed.category)] == 1  # the duplicate
    assert heals_otel[("declined", "", declined.category)] == 1
    assert heals_otel[("error", "", errored.category)] == 1
    [ttp] = metrics["healer.time_to_pr"].histogram.data_points
    assert ttp.count == 1 and ttp.sum > 0
    assert "healer.model.tokens" not in metrics  # rules only: no model was asked
    [sandbox_s] = metrics["healer.sandbox.duration"].sum.data_points
    assert sandbox_s.as_double == pytest.approx(proposed.timings["sandbox"])
    prs_otel = {tuple((kv.key, kv.value.WhichOneof("value")) for kv in p.attributes): p.as_int
                for p in metrics["healer.prs"].gauge.data_points}
    assert sum(prs_otel.values()) == 1

    # the endpoint: the same figures, from the ledger, behind the API's authentication
    from fastapi.testclient import TestClient

    from healer.airflow.api import create_app

    monkeypatch.setenv("HEALER_API_TOKEN", "scrape-token")
    monkeypatch.setenv("HEALER_LEDGER_URL", ledger.url)
    client = TestClient(create_app())
    assert client.get("/api/metrics").status_code == 401
    assert client.get("/api/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/api/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    prom = _prometheus(answer.text)
    heals_prom = {(d["status"], d["fixer"], d["category"]): int(v) for (name, labels), v in prom.items()
                  if name == "healer_heals_total" for d in [dict(labels)]}
    assert heals_prom == heals_otel
    assert prom[("healer_time_to_pr_seconds_count", ())] == ttp.count
    assert prom[("healer_time_to_pr_seconds_sum", ())] == pytest.approx(ttp.sum, abs=1.0)
    assert prom[("healer_time_to_pr_seconds_bucket", (("le", "+Inf"),))] == 1
    assert {v for k, v in prom.items() if k[0] in ("healer_model_tokens_total", "healer_model_cost_usd_total")} == {0}
    assert prom[("healer_sandbox_seconds_total", ())] == pytest.approx(sandbox_s.as_double, abs=0.01)
    assert prom[("healer_prs", (("draft", "false"), ("state", "open")))] == 1
    assert ("healer_fixes", (("verification", "verified"),)) in prom
