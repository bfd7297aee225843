"""Spans go to our store always, and to the team's collector over OTLP when
OTEL_EXPORTER_OTLP_ENDPOINT is set."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from datasets_app.runs import tracing


def test_spans_are_exported_over_otlp_when_the_endpoint_is_set(monkeypatch):
    received = []

    class Collector(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, ExportTraceServiceRequest.FromString(body)))
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        provider, collector = tracing._build_provider()
        with provider.get_tracer("test").start_as_current_span("run item") as span:
            trace_id = tracing.trace_id_hex(span)
        provider.force_flush()
        provider.shutdown()
    finally:
        server.shutdown()

    assert [path for path, _ in received] == ["/v1/traces"]
    exported = received[0][1].resource_spans[0].scope_spans[0].spans[0]
    assert exported.name == "run item"
    assert exported.trace_id.hex() == trace_id
    assert [s["name"] for s in collector.take(int(trace_id, 16))] == ["run item"]


def test_without_the_endpoint_nothing_is_exported(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    provider, _ = tracing._build_provider()
    assert len(provider._active_span_processor._span_processors) == 1


def test_trace_links_point_at_the_built_in_page_or_the_teams_tool(settings):
    assert tracing.trace_link(None) is None
    assert tracing.trace_link("ab" * 16) == f"/traces/{'ab' * 16}/"
    settings.PLAYGROUND_TRACE_URL_TEMPLATE = "https://tracing.example/trace/{trace_id}"
    assert tracing.trace_link("ab" * 16) == f"https://tracing.example/trace/{'ab' * 16}"
