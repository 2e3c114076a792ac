"""Traces and metrics of heals through OpenTelemetry: off unless the standard ``OTEL_*``
variables configure an exporter, the way Airflow 3 exports its own.

    span(name, attributes)     a child span of the current one (a stage, a fixer, the gate ...)
    start_heal(run)            the root span of one heal -> HealTrace: .stage(), .annotate(), .end()
    flush()                    export what is buffered (a heal process exits right after)
    traceparent_of(ti)         the W3C traceparent of an Airflow task try, for the hand-off record

Off (the default) nothing of the OpenTelemetry SDK is imported and every call returns one
shared no-op object. On, ``healer.telemetry.otel`` builds Healer's own tracer and meter
providers (Airflow's global ones, if any, are left alone). Spans and metrics carry names,
statuses, counts and durations — never data values, column contents or secrets.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Mapping

log = logging.getLogger(__name__)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class OtelConfig:
    """Which exporters the environment asks for; empty tuples mean that signal is off."""

    traces: tuple[str, ...]
    metrics: tuple[str, ...]

    @property
    def on(self) -> bool:
        return bool(self.traces or self.metrics)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "OtelConfig":
        """``OTEL_SDK_DISABLED=true`` turns everything off; ``OTEL_{TRACES,METRICS}_EXPORTER`` names the
        exporters (``none`` is off); unset, an OTLP endpoint for the signal turns ``otlp`` on."""
        env = os.environ if env is None else env
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls((), ())

        def exporters(signal: str) -> tuple[str, ...]:
            named = env.get(f"OTEL_{signal}_EXPORTER", "").strip().lower()
            if named:
                return tuple(n for n in (p.strip() for p in named.split(",")) if n and n != "none")
            endpoint = env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            return ("otlp",) if endpoint and endpoint.strip() else ()

        return cls(exporters("TRACES"), exporters("METRICS"))


class _Off:
    """The no-op span and heal trace: what every call returns while telemetry is off."""

    __slots__ = ()

    def __enter__(self) -> "_Off":
        return self

    def __exit__(self, *exc_info) -> bool:
        return False

    def set(self, attributes: Mapping[str, Any]) -> None:
        pass

    def stage(self, name: str) -> "_Off":
        return self

    def annotate(self, attributes: Mapping[str, Any]) -> None:
        pass

    def end(self, outcome, ledger=None, failed_at=None) -> None:
        pass


OFF = _Off()
_lock = threading.Lock()
_active: Any = None  # None: not decided yet; OFF; or the otel.Telemetry of this process


def _telemetry():
    global _active
    if _active is None:
        with _lock:
            if _active is None:
                _active = _start(OtelConfig.from_env())
    return _active


def _start(config: OtelConfig):
    if not config.on:
        return OFF
    try:
        from healer.telemetry import otel

        return otel.Telemetry.start(config)
    except Exception as exc:  # telemetry must never stop a heal: say why once, and stay off
        log.warning("healer: OpenTelemetry is configured but could not start, so heals are not exported: %s",
                    f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        return OFF


def enabled() -> bool:
    return _telemetry() is not OFF


def span(name: str, attributes: Mapping[str, Any] | None = None):
    """A span under the current one, as a context manager whose value has ``.set(attributes)``."""
    t = _telemetry()
    return OFF if t is OFF else t.span(name, attributes or {})


def start_heal(pipeline: str, failure_id: int | None, context: Mapping[str, Any] | None = None):
    """The root span of one heal, a child of the current span (the healer DAG's task, when a
    tracing Airflow runs the heal) and linked to the failed task's span (``context["traceparent"]``)."""
    t = _telemetry()
    return OFF if t is OFF else t.start_heal(pipeline, failure_id, context or {})


def flush(timeout_s: float = 10.0) -> None:
    """Export buffered spans and metrics now (tests; processes that end right after a heal)."""
    t = _telemetry()
    if t is not OFF:
        t.flush(timeout_s)


def reset() -> None:
    """Shut telemetry down and read the environment again at the next call (tests)."""
    global _active
    with _lock:
        old, _active = _active, None
    if old is not None and old is not OFF:
        old.shutdown()


def traceparent_of(ti: Any) -> str | None:
    """The W3C traceparent naming an Airflow task try, or None.

    Inside the task's process Airflow 3 runs the task under a span ``worker.<task_id>`` whose
    parent is the task instance's ``context_carrier`` (a ``traceparent``); the failure callback
    and listener run under it too. The current span names the try when OpenTelemetry is
    imported there (Airflow's task runner imports it); otherwise the carrier the scheduler gave
    the task instance does. Reads only what is already loaded: nothing is imported here.
    """
    trace_api = sys.modules.get("opentelemetry.trace")
    if trace_api is not None:
        try:
            ctx = trace_api.get_current_span().get_span_context()
            if ctx.is_valid:
                return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
        except Exception:  # a broken tracer must not break the failure path
            log.debug("no current span to link", exc_info=True)
    carrier = getattr(ti, "context_carrier", None)
    value = carrier.get("traceparent") if isinstance(carrier, Mapping) else None
    return value if isinstance(value, str) and _TRACEPARENT.match(value) else None
