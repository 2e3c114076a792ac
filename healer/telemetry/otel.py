"""OpenTelemetry on: Healer's own tracer and meter providers, built from the ``OTEL_*`` variables.

Imported only when the environment turns telemetry on (see ``healer.telemetry``). Exporters
are the SDK's, found by name through their entry points as Airflow 3 finds its own
(``otlp``, ``otlp_proto_http``, ``otlp_proto_grpc``, ``console``); ``otlp`` follows
``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]PROTOCOL`` (``http/protobuf`` by default, as the
OpenTelemetry specification says; ``grpc``). Endpoints, headers, timeouts, batching and the
metric export interval are read by the SDK itself from their standard variables.

What is exported, per heal: a root span ``healer.heal`` with a child per stage (``healer.triage``,
``healer.workspace``, ``healer.evidence``, ``healer.fixers`` with one ``healer.fixer`` each,
``healer.sandbox`` with ``healer.candidate`` > ``healer.gate``, ``healer.sample_run``,
``healer.shadow``, then ``healer.proposal``), and the metrics of ``telemetry.figures``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from importlib.metadata import entry_points
from typing import Any, Mapping

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from healer.errors import ConfigError
from healer.telemetry import OtelConfig
from healer.telemetry.figures import TIME_TO_PR_BUCKETS, HealFigures, heal_figures, pr_states, verification

log = logging.getLogger(__name__)

SCOPE = "healer"
# the Airflow ids a run's context holds, under the attribute names Airflow 3 gives its own spans
_AIRFLOW_ATTRIBUTES = {"dag_id": "airflow.dag_id", "task_id": "airflow.task_id", "run_id": "airflow.dag_run.run_id",
                       "try_number": "airflow.task_instance.try_number", "map_index": "airflow.task_instance.map_index"}


def _exporter(signal: str, name: str):
    """One exporter of ``signal`` (traces | metrics) by its entry-point name; a clear error otherwise."""
    if name == "otlp":
        variable = f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"
        protocol = (os.environ.get(variable) or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
        name = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}.get(protocol, "")
        if not name:
            raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: expected http/protobuf or grpc")
    group = f"opentelemetry_{signal}_exporter"
    found = next(iter(entry_points(group=group, name=name)), None)
    if found is None:
        known = sorted({e.name for e in entry_points(group=group)})
        raise ConfigError(f"OTEL_{signal.upper()}_EXPORTER={name!r}: no such exporter installed "
                          f"(installed: {', '.join(known) or 'none'}; pip install 'healer[otel]')")
    return found.load()()


def _resource() -> Resource:
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win; otherwise the service is "healer", not "unknown_service"
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return Resource.create({} if named else {"service.name": "healer"})


def _attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Only what a span attribute may hold; None is left out."""
    return {k: v if isinstance(v, (bool, int, float)) else str(v) for k, v in values.items() if v is not None}


class Telemetry:
    """The providers, the tracer and the instruments of this process."""

    def __init__(self, config: OtelConfig):
        resource = _resource()
        self.tracer_provider = TracerProvider(resource=resource) if config.traces else None
        for name in config.traces:
            self.tracer_provider.add_span_processor(BatchSpanProcessor(_exporter("traces", name)))
        readers = [PeriodicExportingMetricReader(_exporter("metrics", name)) for name in config.metrics]
        self.meter_provider = MeterProvider(resource=resource, metric_readers=readers) if readers else None
        # without a provider of our own the API's no-op one: spans then still carry the context along
        self.tracer = (self.tracer_provider or trace.NoOpTracerProvider()).get_tracer(SCOPE)
        self._ledger_url: str | None = None  # the ledger of this process's heals, for the PR gauges
        self._instruments = self._make_instruments() if self.meter_provider else None

    @classmethod
    def start(cls, config: OtelConfig) -> "Telemetry":
        telemetry = cls(config)
        log.info("healer: exporting heal traces (%s) and metrics (%s) through OpenTelemetry",
                 ",".join(config.traces) or "off", ",".join(config.metrics) or "off")
        return telemetry

    def _make_instruments(self) -> dict:
        meter = self.meter_provider.get_meter(SCOPE)
        meter.create_observable_gauge("healer.prs", callbacks=[self._observe_prs], unit="{pull_request}",
                                      description="Pull requests Healer opened, by their state now (from the ledger)")
        meter.create_observable_gauge("healer.fixes", callbacks=[self._observe_verification], unit="{fix}",
                                      description="Merged fixes by what the runs after the merge said (from the ledger)")
        return {
            "heals": meter.create_counter("healer.heals", unit="{heal}",
                                          description="Heals by status, proposed fixer and failure category"),
            "time_to_pr": meter.create_histogram("healer.time_to_pr", unit="s",
                                                 description="Seconds from the failed run to the PR its heal opened",
                                                 explicit_bucket_boundaries_advisory=TIME_TO_PR_BUCKETS),
            "tokens": meter.create_counter("healer.model.tokens", unit="{token}", description="Model tokens, by type"),
            "cost": meter.create_counter("healer.model.cost", unit="USD", description="Estimated model cost"),
            "sandbox": meter.create_counter("healer.sandbox.duration", unit="s",
                                            description="Seconds in the sandbox (sample and shadow runs)"),
        }

    # -- spans ---------------------------------------------------------------------------------
    def span(self, name: str, attributes: Mapping[str, Any], context=None) -> "_Span":
        return _Span(self.tracer.start_as_current_span(name, context=context, attributes=_attributes(attributes),
                                                       record_exception=False, set_status_on_exception=False))

    def start_heal(self, pipeline: str, failure_id: int | None, context: Mapping[str, Any]) -> "HealTrace":
        links = []
        parent = _remote_context(context.get("traceparent"))
        if parent is not None:
            links.append(Link(parent, {"healer.link": "the failed Airflow task try"}))
        attributes = {"healer.pipeline": pipeline, "healer.failure_id": failure_id}
        attributes.update({name: context.get(key) for key, name in _AIRFLOW_ATTRIBUTES.items()})
        root = self.tracer.start_span("healer.heal", attributes=_attributes(attributes), links=links,
                                      record_exception=False, set_status_on_exception=False)
        return HealTrace(self, root)

    # -- metrics -------------------------------------------------------------------------------
    def record(self, figures: HealFigures, ledger_url: str | None) -> None:
        self._ledger_url = ledger_url or self._ledger_url
        i = self._instruments
        if i is None:
            return
        k = figures.key
        i["heals"].add(1, {"healer.status": k.status, "healer.fixer": k.fixer, "healer.category": k.category})
        if figures.time_to_pr_s is not None:
            i["time_to_pr"].record(figures.time_to_pr_s)
        for kind, n in figures.tokens:
            if n:
                i["tokens"].add(n, {"healer.token.type": kind})
        if figures.cost_usd:
            i["cost"].add(figures.cost_usd)
        if figures.sandbox_s:
            i["sandbox"].add(figures.sandbox_s)

    def _observe_prs(self, _options):
        from opentelemetry.metrics import Observation

        for state, draft, n in self._from_ledger(pr_states) or ():
            yield Observation(n, {"healer.pr.state": state, "healer.pr.draft": draft})

    def _observe_verification(self, _options):
        from opentelemetry.metrics import Observation

        for state, n in self._from_ledger(verification) or ():
            yield Observation(n, {"healer.verification": state})

    def _from_ledger(self, read):
        if self._ledger_url is None:  # no heal ended in this process yet: nothing to say
            return None
        try:
            from healer.ledger import Ledger

            return read(Ledger(self._ledger_url))
        except Exception as exc:  # a ledger that cannot be read now is a gap in a gauge, not a crash
            log.warning("healer: PR gauges not read from the ledger: %s: %s", type(exc).__name__, exc)
            return None

    def flush(self, timeout_s: float) -> None:
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                provider.shutdown()


def _remote_context(traceparent: Any):
    """The span context a W3C traceparent names, or None when absent or malformed."""
    if not isinstance(traceparent, str):
        return None
    ctx = trace.get_current_span(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    span_context = ctx.get_span_context()
    return span_context if span_context.is_valid else None


class _Span:
    """A span made current for a ``with`` block; an exception marks it failed by its type only
    (an exception's message may quote data)."""

    __slots__ = ("_cm", "_span")

    def __init__(self, cm):
        self._cm, self._span = cm, None

    def __enter__(self) -> "_Span":
        self._span = self._cm.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and self._span is not None:
            self._span.set_status(Status(StatusCode.ERROR, exc_type.__name__))
            self._span.set_attribute("error.type", exc_type.__name__)
        return bool(self._cm.__exit__(exc_type, exc, tb))

    def set(self, attributes: Mapping[str, Any]) -> None:
        if self._span is not None:
            self._span.set_attributes(_attributes(attributes))


class HealTrace:
    """One heal's root span: stages are its children, ``end`` closes it and records the heal's metrics."""

    def __init__(self, telemetry: Telemetry, root):
        self.telemetry, self.root = telemetry, root
        self._ended = threading.Event()

    def stage(self, name: str) -> _Span:
        return self.telemetry.span(f"healer.{name}", {}, context=trace.set_span_in_context(self.root))

    def annotate(self, attributes: Mapping[str, Any]) -> None:
        self.root.set_attributes(_attributes(attributes))

    def end(self, outcome, ledger=None, failed_at: dt.datetime | None = None) -> None:
        """Close the heal's span with its outcome (names and numbers only) and count the heal."""
        if self._ended.is_set():
            return
        self._ended.set()
        try:
            pr = None
            if outcome.pr is not None and ledger is not None:
                from healer.ledger import prs

                pr = ledger.get(prs, outcome.pr)
            row = {"id": outcome.heal, "status": outcome.status, "fixer": outcome.fixer, "category": outcome.category,
                   "outcome": {"duplicate": outcome.duplicate, "llm": outcome.llm, "timings": outcome.timings}}
            figures = heal_figures(row, {"finished_at": failed_at}, pr)
            tokens = dict(figures.tokens)
            self.annotate({"healer.status": outcome.status, "healer.fixer": outcome.fixer,
                           "healer.category": outcome.category, "healer.fingerprint": outcome.fingerprint,
                           "healer.heal_id": outcome.heal, "healer.duplicate": outcome.duplicate,
                           "healer.draft": outcome.draft if outcome.pr is not None else None,
                           "healer.pr_id": outcome.pr, "healer.confidence": outcome.confidence,
                           "healer.candidates": len(outcome.candidates),
                           "gen_ai.usage.input_tokens": tokens.get("input"),
                           "gen_ai.usage.output_tokens": tokens.get("output"),
                           "healer.model.cost_usd": figures.cost_usd, "healer.time_to_pr_s": figures.time_to_pr_s})
            if outcome.status in ("error", "abandoned"):
                self.root.set_status(Status(StatusCode.ERROR, outcome.status))
            self.telemetry.record(figures, getattr(ledger, "url", None))
        except Exception as exc:  # telemetry never changes how a heal ends
            log.warning("healer: heal telemetry not recorded: %s: %s", type(exc).__name__, exc)
        finally:
            self.root.end()
