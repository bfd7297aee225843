"""OTLP export from the trace outbox: how fast stored traces reach a collector.

    .venv/bin/python bench/otlp_export.py                    # 10,000 traces, temp SQLite
    .venv/bin/python bench/otlp_export.py --traces 2000 --fail-first 3
    .venv/bin/python bench/otlp_export.py --postgres         # a temp database on BENCH_PG_URL

Self-contained: a fresh database (a temp SQLite file, or with --postgres a
database bench_otlp_export_<pid> created on BENCH_PG_URL's server and dropped
afterwards), and a local OTLP/HTTP receiver in a separate process (so parsing
the requests does not compete with the exporter for the GIL) that decodes
every ExportTraceServiceRequest and counts the traces it received.

N traces shaped like a real item (root "run item", "target", two "scorer x"
spans, ~1.5 KB of stored JSON) are stored with their outbox rows, then
exported twice, each from a full outbox:

* `drain_outbox()` called back to back until the outbox is empty (a fresh
  OTLP exporter, so a fresh connection, per batch);
* `run_exporter` in a thread, as a worker runs it (one exporter, connection
  reused), timed until the receiver has every trace.

Prints figures only (no asserts): seconds, traces/s, spans/s, requests, and
how many distinct traces arrived (should be N/N) and how many twice.
"""

import argparse
import json
import multiprocessing
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


# ---- the receiver (own process) --------------------------------------------------------


def _serve(port_queue, fail_first: int) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    lock = threading.Lock()
    state = {"requests": 0, "refused": 0, "spans": 0, "deliveries": 0, "bytes": 0}
    seen: set[bytes] = set()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with lock:
                if self.path == "/reset":
                    state.update(requests=0, refused=0, spans=0, deliveries=0, bytes=0)
                    seen.clear()
                self._json({**state, "traces": len(seen)})

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                refuse = state["refused"] < fail_first
                state["refused" if refuse else "requests"] += 1
            if refuse:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            request = ExportTraceServiceRequest.FromString(body)
            trace_ids, spans = set(), 0
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        trace_ids.add(span.trace_id)
                        spans += 1
            with lock:
                state["spans"] += spans
                state["bytes"] += len(body)
                state["deliveries"] += len(trace_ids)
                seen.update(trace_ids)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_port)
    server.serve_forever(poll_interval=0.1)


def receiver_stats(port: int, reset: bool = False) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{'reset' if reset else 'stats'}", timeout=10) as response:
        return json.loads(response.read())


# ---- stored traces --------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def item_spans(n: int, start: datetime) -> list[dict]:
    root, target, exact, contains = (secrets.token_hex(8) for _ in range(4))
    question = f"What is the capital of country number {n}? Answer with one word."

    def span(span_id, parent, name, offset_ms, duration_ms, attributes, status="ok", message=None):
        return {
            "spanId": span_id,
            "parentSpanId": parent,
            "name": name,
            "startTime": _iso(start + timedelta(milliseconds=offset_ms)),
            "endTime": _iso(start + timedelta(milliseconds=offset_ms + duration_ms)),
            "status": status,
            "statusMessage": message,
            "attributes": attributes,
        }

    return [
        span(
            root,
            None,
            "run item",
            0,
            45,
            {
                "run.id": "bench",
                "item.index": n,
                "item.repetition": 1,
                "input.value": json.dumps({"question": question}),
                "output.value": json.dumps("Paris"),
                "expected_output": "Paris",
            },
        ),
        span(
            target,
            root,
            "target",
            1,
            38,
            {
                "target.type": "agent",
                "target.id": "agent/keyword-agent",
                "attempt": 1,
                "llm.token_count.prompt": 11,
                "llm.token_count.completion": 3,
                "llm.token_count.total": 14,
            },
        ),
        span(
            exact,
            root,
            "scorer exact-match",
            40,
            2,
            {"scorer.id": "exact-match", "score": 1.0, "score.reason": "output equals expected"},
        ),
        span(
            contains,
            root,
            "scorer contains",
            42,
            2,
            {"scorer.id": "contains", "score": 0.0, "tags": ["contains", "text"]},
            status="error" if n % 50 == 0 else "ok",
            message="ValueError: no needle" if n % 50 == 0 else None,
        ),
    ]


def store_traces(count: int) -> list[str]:
    from django.db import transaction
    from django.utils import timezone

    from datasets_app.models import Trace, TraceOutbox

    ids = []
    start = datetime.now(UTC)
    for first in range(0, count, 1000):
        batch = [
            Trace(
                trace_id=secrets.token_hex(16),
                name="run item",
                started_at=timezone.now(),
                spans=item_spans(n, start + timedelta(milliseconds=n)),
            )
            for n in range(first, min(count, first + 1000))
        ]
        with transaction.atomic():  # as the engine does: trace and outbox row together
            Trace.objects.bulk_create(batch)
            TraceOutbox.objects.bulk_create([TraceOutbox(trace_id=t.trace_id) for t in batch])
        ids += [t.trace_id for t in batch]
    return ids


def requeue(ids: list[str]) -> None:
    from django.db import transaction

    from datasets_app.models import TraceOutbox

    with transaction.atomic():
        TraceOutbox.objects.all().delete()
        TraceOutbox.objects.bulk_create([TraceOutbox(trace_id=i) for i in ids], batch_size=1000)


# ---- the two ways of draining ------------------------------------------------------------


def time_drain_outbox(port: int, count: int, batch_size: int) -> dict:
    from datasets_app.models import TraceOutbox
    from datasets_app.runs.export import drain_outbox

    receiver_stats(port, reset=True)
    calls = 0
    started = time.perf_counter()
    while True:
        calls += 1
        exported = drain_outbox(batch_size=batch_size)
        if exported == 0 and not TraceOutbox.objects.exists():
            break
        if exported == 0:
            time.sleep(0.05)  # a failed batch is backing off
    elapsed = time.perf_counter() - started
    return figures("drain_outbox() back to back", elapsed, count, receiver_stats(port), calls=calls)


def time_run_exporter(port: int, count: int, batch_size: int) -> dict:
    from datasets_app.models import TraceOutbox
    from datasets_app.runs.export import run_exporter

    receiver_stats(port, reset=True)
    stop = threading.Event()
    thread = threading.Thread(target=run_exporter, args=(stop,), kwargs={"batch_size": batch_size}, daemon=True)
    started = time.perf_counter()
    thread.start()
    deadline = started + 600
    while time.perf_counter() < deadline:
        stats = receiver_stats(port)
        if stats["traces"] >= count:
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    # The last rows are deleted just after the receiver answers.
    while TraceOutbox.objects.exists() and time.perf_counter() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=30)
    return figures(
        "run_exporter thread (as a worker)",
        elapsed,
        count,
        receiver_stats(port),
        outbox_left=TraceOutbox.objects.count(),
    )


def figures(label: str, elapsed: float, count: int, stats: dict, **extra) -> dict:
    return {
        "mode": label,
        "seconds": round(elapsed, 3),
        "traces_per_s": round(stats["traces"] / elapsed),
        "spans_per_s": round(stats["spans"] / elapsed),
        "requests": stats["requests"],
        "refused_503": stats["refused"],
        "arrived": f"{stats['traces']}/{count}",
        "sent_twice": stats["deliveries"] - stats["traces"],
        "kb_per_request": round(stats["bytes"] / max(1, stats["requests"]) / 1024, 1),
        **extra,
    }


# ---- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--fail-first", type=int, default=0, help="the receiver answers 503 to its first N requests")
    parser.add_argument("--postgres", action="store_true", help=f"a temp database on {PG_URL}")
    args = parser.parse_args()

    # The receiver first, forked before Django, threads or database connections exist.
    ports = multiprocessing.get_context("fork").Queue()
    receiver = multiprocessing.get_context("fork").Process(target=_serve, args=(ports, args.fail_first), daemon=True)
    receiver.start()
    port = ports.get(timeout=30)

    tmp = tempfile.mkdtemp(prefix="bench-otlp-")
    pg_name = None
    os.environ.pop("DATABASE_URL", None)
    if args.postgres:
        import psycopg

        pg_name = f"bench_otlp_export_{os.getpid()}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        os.environ["DATABASE_URL"] = urlunparse(urlparse(PG_URL)._replace(path="/" + pg_name))
    else:
        os.environ["SQLITE_PATH"] = os.path.join(tmp, "bench.sqlite3")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="playground.settings",
        PLAYGROUND_LOG_LEVEL="ERROR",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
    )
    os.environ.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    sys.path.insert(0, str(ROOT))
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        # The SDK retries a 503 inside the request (after ~1 s); the outbox's own
        # backoff then takes over. Shorten the latter so --fail-first stays quick.
        from datasets_app.runs import outbox

        outbox.BACKOFF_BASE_SECONDS, outbox.BACKOFF_MAX_SECONDS = 0.05, 1.0

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        ids = store_traces(args.traces)
        stored = time.perf_counter() - started
        print(
            f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
            f"{args.traces:,} traces x 4 spans stored with outbox rows in {stored:.2f} s; "
            f"batch size {args.batch_size}; receiver refuses the first {args.fail_first} request(s) with 503"
        )
        results = [time_drain_outbox(port, args.traces, args.batch_size)]
        if args.fail_first:  # a fresh receiver, refusing again
            connection.close()  # not inherited by the fork
            receiver.kill()
            receiver.join()
            receiver = multiprocessing.get_context("fork").Process(
                target=_serve, args=(ports, args.fail_first), daemon=True
            )
            receiver.start()
            port = ports.get(timeout=30)
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
        requeue(ids)
        results.append(time_run_exporter(port, args.traces, args.batch_size))
        for result in results:
            print(json.dumps(result))
        connection.close()
    finally:
        receiver.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_name:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
