"""Fixtures of the engine tests: a real OTLP/HTTP receiver on loopback."""

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from datasets_app.runs import outbox


class Receiver(ThreadingHTTPServer):
    """Parses every export request; refuses the first `fail_first` with 503."""

    daemon_threads = True

    def __init__(self, *, fail_first=0, delay=0.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail_first = fail_first
        self.delay = delay
        self.lock = threading.Lock()
        self.accepted: list[ExportTraceServiceRequest] = []
        self.refused = 0
        self.paths: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def spans(self) -> list:
        return [
            span
            for request in self.accepted
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def deliveries(self) -> Counter:
        """How many accepted requests carried each trace id."""
        counts: Counter[str] = Counter()
        for request in self.accepted:
            counts.update(
                {span.trace_id.hex() for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans}
            )
        return counts


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.delay:
            time.sleep(self.server.delay)
        with self.server.lock:
            self.server.paths.append(self.path)
            refuse = self.server.refused < self.server.fail_first
            if refuse:
                self.server.refused += 1
            else:
                self.server.accepted.append(ExportTraceServiceRequest.FromString(body))
        self.send_response(503 if refuse else 200)
        if refuse:
            # A long Retry-After makes the SDK give up on this request at once,
            # so what the test exercises is the outbox's own retry and backoff.
            self.send_header("Retry-After", "3600")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver(monkeypatch, settings):
    servers = []

    def start(**options) -> Receiver:
        server = Receiver(**options)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.endpoint)
        return server

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "playground-tests")
    settings.PLAYGROUND_OTEL_PROJECT = "evals-under-test"
    monkeypatch.setattr(outbox, "BACKOFF_BASE_SECONDS", 0.01)
    monkeypatch.setattr(outbox, "BACKOFF_MAX_SECONDS", 0.05)
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
