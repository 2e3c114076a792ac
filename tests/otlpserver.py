"""An OTLP/HTTP receiver on 127.0.0.1 for tests and benchmarks: it decodes the real protobuf
payloads (opentelemetry-proto) the SDK's exporters send to ``/v1/traces`` and ``/v1/metrics``
and keeps them, with the raw bodies, for the test to read."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

DECODERS = {"/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
            "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse)}


def value_of(any_value):
    """The Python value of an OTLP AnyValue."""
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def attributes(key_values) -> dict:
    return {kv.key: value_of(kv.value) for kv in key_values}


@dataclass(frozen=True)
class Span:
    """One received span, flattened."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict
    links: tuple[tuple[str, str, dict], ...]  # (trace id, span id, attributes)
    status_code: int
    resource: dict


class OtlpReceiver:
    """``with OtlpReceiver() as otlp:`` then point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at ``otlp.url``."""

    def __init__(self):
        self.requests: list[tuple[str, object]] = []  # (path, decoded request), in arrival order
        self.bodies: list[bytes] = []  # what arrived, decompressed, for searching
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                decoder = DECODERS.get(self.path)
                if decoder is None or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_error(404 if decoder is None else 415)
                    return
                request = decoder[0].FromString(body)
                with receiver._lock:
                    receiver.requests.append((self.path, request))
                    receiver.bodies.append(body)
                answer = decoder[1]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args):
                pass

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list[Span]:
        found = []
        with self._lock:
            requests = [r for p, r in self.requests if p == "/v1/traces"]
        for request in requests:
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        links = tuple((link.trace_id.hex(), link.span_id.hex(), attributes(link.attributes))
                                      for link in s.links)
                        found.append(Span(s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                                          attributes(s.attributes), links, s.status.code, resource))
        return found

    def metrics(self) -> dict:
        """The newest export of each metric by name (cumulative totals), as the OTLP Metric message."""
        newest: dict = {}
        with self._lock:
            requests = [r for p, r in self.requests if p == "/v1/metrics"]
        for request in requests:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        newest[m.name] = m
        return newest
