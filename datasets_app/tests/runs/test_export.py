"""OTLP export from the trace outbox: exactly the stored traces reach the
collector, each once, with their spans intact, even when the collector refuses
requests or several drains run at once."""

import itertools
import secrets
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, OperationalError, connection
from django.utils import timezone

from datasets_app import services
from datasets_app.models import RunChunk, Trace, TraceOutbox
from datasets_app.runs import export, outbox, tracing

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUS = {"unset": 0, "ok": 1, "error": 2}  # opentelemetry.proto.trace.v1.Status.StatusCode


# ---- stored traces, as the engine writes them -------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _ns(iso: str) -> int:
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(microseconds=1) * 1000


def item_spans(trace_number: int) -> list[dict]:
    """One item execution: a root, the target and two scorers (one failed)."""
    start = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC) + timedelta(seconds=trace_number)
    root, target, exact, contains = (secrets.token_hex(8) for _ in range(4))

    def span(span_id, parent, name, offset_ms, duration_ms, status, attributes, message=None):
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
        span(root, None, "run item", 0, 40, "ok", {"run.id": "r-1", "item.index": trace_number, "item.repetition": 1}),
        span(
            target,
            root,
            "target",
            1,
            30,
            "unset",
            {
                "target.id": "agent/keyword-agent",
                "input.value": '{"q": "capital of France?"}',
                "llm.token_count.total": 14,
                "retries": 0,
            },
        ),
        span(
            exact,
            root,
            "scorer exact-match",
            31,
            2,
            "ok",
            {"score": 1.0, "passed": True, "tags": ["a", "b"], "sizes": [1, 2, 3]},
        ),
        span(
            contains,
            root,
            "scorer contains",
            33,
            3,
            "error",
            {"score.reason": "boom", "weights": [0.5, 1.5]},
            message="ValueError: boom",
        ),
    ]


def store_trace(number: int = 0, *, outbox: bool = True, spans: list[dict] | None = None, **outbox_fields) -> Trace:
    spans = item_spans(number) if spans is None else spans
    trace = Trace.objects.create(
        trace_id=secrets.token_hex(16), name="run item", spans=spans, started_at=timezone.now()
    )
    if outbox:
        TraceOutbox.objects.create(trace=trace, **outbox_fields)
    return trace


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def attributes(key_values) -> dict:
    return {kv.key: value(kv.value) for kv in key_values}


def drain_until_empty(**options) -> int:
    exported = 0
    for _ in range(200):
        exported += export.drain_outbox(**options)
        if not TraceOutbox.objects.exists():
            return exported
        time.sleep(0.02)  # let a backoff pass
    raise AssertionError(f"outbox never emptied: {list(TraceOutbox.objects.values('trace_id', 'attempts'))}")


# ---- behaviour ----------------------------------------------------------------------------


def test_export_is_enabled_by_the_standard_endpoint_variables(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert export.export_enabled() is False
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert export.export_enabled() is True
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")
    assert export.export_enabled() is True


def test_backoff_doubles_up_to_its_cap():
    assert [outbox.backoff_seconds(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert outbox.backoff_seconds(7) == outbox.backoff_seconds(50) == 60.0


@pytest.mark.django_db
def test_every_stored_trace_arrives_once_with_its_spans_intact(receiver):
    server = receiver()
    traces = [store_trace(n) for n in range(3)]

    assert export.drain_outbox() == 3

    assert server.paths == ["/v1/traces"]  # one request for the batch
    assert server.deliveries() == Counter({t.trace_id: 1 for t in traces})
    resource = attributes(server.accepted[0].resource_spans[0].resource.attributes)
    assert resource["openinference.project.name"] == "evals-under-test"
    assert resource["service.name"] == "playground-tests"
    exported = {(span.trace_id.hex(), span.span_id.hex()): span for span in server.spans()}
    assert len(exported) == 12
    for trace in traces:
        for stored in trace.spans:
            span = exported[(trace.trace_id, stored["spanId"])]
            assert span.name == stored["name"]
            assert (span.parent_span_id.hex() or None) == stored["parentSpanId"]
            assert span.start_time_unix_nano == _ns(stored["startTime"])
            assert span.end_time_unix_nano == _ns(stored["endTime"])
            assert span.status.code == STATUS[stored["status"]]
            assert (span.status.message or None) == stored["statusMessage"]
            assert attributes(span.attributes) == stored["attributes"]
    assert not TraceOutbox.objects.exists()
    assert Trace.objects.count() == 3  # the stored traces stay; only the outbox drains


@pytest.mark.django_db
def test_spans_recorded_by_the_engine_come_back_out_as_they_went_in(receiver):
    """Round trip through tracing.ItemTrace, the recorder whose shape the engine stores."""
    server = receiver()
    trace = tracing.ItemTrace()
    root = trace.start("run item", attributes={"item.index": 7})
    target = trace.start("target", parent=root, attributes={"tags": ("x", "y"), "cost": 0.25})
    target.ok()
    target.end()
    scorer = trace.start("scorer regex", parent=root)
    scorer.fail("bad pattern", "ValueError")
    scorer.end()
    root.ok()
    root.end()
    recorded = trace.as_dicts()
    Trace.objects.create(trace_id=trace.trace_id, name="run item", started_at=timezone.now(), spans=recorded)
    TraceOutbox.objects.create(trace_id=trace.trace_id)

    assert export.drain_outbox() == 1

    exported = {span.span_id.hex(): span for span in server.spans()}
    assert set(exported) == {s["spanId"] for s in recorded}
    for original in recorded:
        span = exported[original["spanId"]]
        assert span.trace_id.hex() == trace.trace_id
        assert span.name == original["name"]
        assert span.parent_span_id.hex() == (original["parentSpanId"] or "")
        assert span.status.code == {"ok": 1, "error": 2}[original["status"]]
        assert span.status.message == (original["statusMessage"] or "")
        assert attributes(span.attributes) == original["attributes"]
    assert attributes(exported[target.span_id].attributes)["tags"] == ["x", "y"]


@pytest.mark.django_db
def test_a_trace_without_an_outbox_row_is_never_exported(receiver):
    server = receiver()
    queued = store_trace(1)
    store_trace(2, outbox=False)  # e.g. stored while export was off

    assert export.drain_outbox() == 1
    assert export.drain_outbox() == 0

    assert server.deliveries() == Counter({queued.trace_id: 1})


@pytest.mark.django_db
def test_rows_not_yet_due_wait_their_turn(receiver):
    server = receiver()
    later = store_trace(1, next_attempt_at=timezone.now() + timedelta(hours=1))  # backing off, or claimed

    assert export.drain_outbox() == 0

    assert server.paths == []
    assert TraceOutbox.objects.filter(pk=later.pk).exists()


@pytest.mark.django_db
def test_after_503s_every_trace_still_arrives_exactly_once(receiver):
    server = receiver(fail_first=2)
    traces = [store_trace(n) for n in range(5)]
    before = timezone.now()

    assert export.drain_outbox() == 0  # refused: kept, with a backoff

    rows = list(TraceOutbox.objects.all())
    assert len(rows) == 5
    assert all(row.attempts == 1 and row.next_attempt_at > before for row in rows)  # type: ignore[operator]

    assert drain_until_empty() == 5

    assert server.refused == 2
    assert server.deliveries() == Counter({t.trace_id: 1 for t in traces})
    assert len(server.spans()) == 20


@pytest.mark.django_db
def test_an_unreachable_collector_loses_nothing(receiver, monkeypatch):
    server = receiver()
    server.shutdown()
    server.server_close()  # nothing listens on that port any more
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.2")
    trace = store_trace()

    assert export.drain_outbox() == 0

    row = TraceOutbox.objects.get(pk=trace.pk)
    assert row.attempts == 1 and row.next_attempt_at is not None


@pytest.mark.django_db
def test_a_database_error_is_logged_not_raised(receiver, monkeypatch):
    server = receiver()
    store_trace()

    def broken(self):
        raise OperationalError("database is locked")

    monkeypatch.setattr(outbox.OutboxExporter, "_claim", broken)
    assert export.drain_outbox() == 0
    assert server.paths == []
    assert TraceOutbox.objects.get().attempts == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spans",
    [
        [{"spanId": "not-hex", "name": "run item"}],
        [{"spanId": "ab" * 9, "name": "run item"}],  # too long: would fail the encoder for the whole request
        [{"name": "run item"}],
        {"not": "a list"},
    ],
)
def test_a_malformed_stored_trace_is_kept_and_does_not_block_the_others(receiver, spans):
    server = receiver()
    good = store_trace(1)
    bad = store_trace(2, spans=spans)

    assert export.drain_outbox() == 1

    assert server.deliveries() == Counter({good.trace_id: 1})
    kept = TraceOutbox.objects.get()
    assert kept.trace_id == bad.trace_id and kept.attempts == 1


@pytest.mark.django_db
def test_a_large_batch_is_split_into_requests_each_trace_sent_once(receiver, monkeypatch):
    server = receiver()
    monkeypatch.setattr(outbox, "MAX_REQUEST_BYTES", 3000)  # about two stored traces
    traces = [store_trace(n) for n in range(7)]

    assert export.drain_outbox() == 7

    assert len(server.paths) > 1
    assert server.deliveries() == Counter({t.trace_id: 1 for t in traces})
    assert not TraceOutbox.objects.exists()


@pytest.mark.django_db
def test_a_claim_about_to_expire_hands_its_remaining_traces_back(receiver, monkeypatch):
    server = receiver()
    monkeypatch.setattr(outbox, "MAX_REQUEST_BYTES", 1)  # one request per trace
    clock = iter([0.0, 0.0, 10_000.0])  # claimed; first request; then the lease is nearly over
    monkeypatch.setattr(outbox, "_clock", lambda: next(clock))
    traces = [store_trace(n) for n in range(3)]

    assert export.drain_outbox() == 1

    left = list(TraceOutbox.objects.all())
    assert len(left) == 2
    assert all(row.attempts == 0 and row.next_attempt_at is None for row in left)  # due again, not failed
    monkeypatch.setattr(outbox, "_clock", lambda: 0.0)
    assert drain_until_empty() == 2
    assert server.deliveries() == Counter({t.trace_id: 1 for t in traces})


@pytest.mark.django_db
def test_flush_exports_everything_due_before_a_short_lived_process_exits(receiver):
    server = receiver()
    traces = [store_trace(n) for n in range(5)]

    assert export.flush_outbox(batch_size=2) == 5

    assert len(server.paths) == 3
    assert server.deliveries() == Counter({t.trace_id: 1 for t in traces})
    assert not TraceOutbox.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_never_send_a_trace_twice(receiver):
    server = receiver(delay=0.01)  # slow enough for the drains to overlap
    traces = [store_trace(n) for n in range(120)]
    start = threading.Barrier(4)
    errors = []

    def drain():
        try:
            start.wait()
            for _ in range(500):
                export.drain_outbox(batch_size=10)
                if not TraceOutbox.objects.exists():
                    return
                time.sleep(0.005)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors
    assert not TraceOutbox.objects.exists()
    assert len(server.paths) >= 12
    assert server.deliveries() == Counter({t.trace_id: 1 for t in traces})


@pytest.mark.django_db(transaction=True)
def test_the_export_loop_drains_as_traces_are_stored_and_survives_failures(receiver, monkeypatch):
    server = receiver(fail_first=1)
    claim = outbox.OutboxExporter._claim
    failures = iter([OperationalError("database is locked"), DatabaseError("connection lost")])

    def flaky_claim(self):
        failure = next(failures, None)
        if failure:
            raise failure
        return claim(self)

    monkeypatch.setattr(outbox.OutboxExporter, "_claim", flaky_claim)
    stop = threading.Event()
    loop = threading.Thread(
        target=export.run_exporter, args=(stop,), kwargs={"idle_wait": 0.02, "batch_size": 16}, daemon=True
    )
    loop.start()
    try:
        traces = []
        for wave in range(3):  # the engine stores traces while the loop runs
            traces += [store_trace(wave * 100 + n) for n in range(20)]
            time.sleep(0.05)
        for _ in range(1000):
            if len(server.deliveries()) == len(traces) and not TraceOutbox.objects.exists():
                break
            time.sleep(0.02)
        assert loop.is_alive()
    finally:
        stop.set()
        loop.join(timeout=30)

    assert not loop.is_alive()
    assert server.refused == 1
    assert server.deliveries() == Counter({t.trace_id: 1 for t in traces})
    assert not TraceOutbox.objects.exists()


class FakeTimeStop(threading.Event):
    """The export loop's stop event on a fake clock: a wait moves the clock on
    instead of sleeping."""

    def __init__(self):
        super().__init__()
        self.now = 0.0

    def wait(self, timeout=None):
        self.now += timeout or 0.0
        return self.is_set()


@pytest.mark.django_db(transaction=True)
def test_while_chunks_run_each_export_batch_is_earned_by_resting_first(make_dataset, monkeypatch):
    dataset = make_dataset(items=[{"input": n} for n in range(3)])
    run = services.run_start(dataset=dataset, target_type="workflow", target_id="echo")  # its chunk is pending
    stop = FakeTimeStop()
    cpu = itertools.count(step=0.02)  # each batch: 20 ms of CPU …
    monkeypatch.setattr(export, "_clock", lambda: stop.now)
    monkeypatch.setattr(export, "_cpu_clock", lambda: next(cpu))
    batches_at: list[float] = []

    def batch(self):
        batches_at.append(stop.now)
        stop.now += 0.5  # … in 500 ms, most of it waiting on the collector
        if len(batches_at) == 1:  # a worker claims the chunk
            RunChunk.objects.filter(run=run).update(status=RunChunk.Status.RUNNING)
        if len(batches_at) == 3:  # the run's last chunk ends while the third batch is sent
            RunChunk.objects.filter(run=run).update(status=RunChunk.Status.DONE)
        if len(batches_at) == 5:
            stop.set()
            return outbox.DrainResult()  # the outbox is empty
        return outbox.DrainResult(claimed=16, exported=16)

    monkeypatch.setattr(outbox.OutboxExporter, "drain_once", batch)
    export.run_exporter(stop, idle_wait=0.5, batch_size=16)

    share = export.EXPORT_SHARE_WHILE_RUNNING
    first = export.FIRST_BATCH_COST_GUESS_SECONDS * (1 / share - 1)  # the first batch is earned too
    then = 0.02 * (1 / share - 1)  # each later one: the last batch's CPU, at the share
    third = first + 2 * (0.5 + then)
    assert batches_at == pytest.approx([first, first + 0.5 + then, third, third + 0.5, third + 1.0])
    # (the last two back to back: the chunk ended while the third was sent)
    assert 3 * 0.02 / (third + 0.5) <= share  # export's share of the CPU while the run ran


def test_the_exporter_thread_starts_only_when_export_is_enabled(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert export.start_exporter_thread(threading.Event()) is None


@pytest.mark.django_db(transaction=True)
def test_run_dataset_says_whether_its_traces_reached_the_collector(receiver, make_dataset, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    dataset = make_dataset(items=[{"input": n} for n in range(3)])

    def run_dataset() -> str:
        out = StringIO()
        call_command("run_dataset", str(dataset.id), "--target", "workflow/echo", stdout=out, stderr=StringIO())
        return out.getvalue()

    receiver()
    assert "Traces: all 3 sent to the OTLP collector" in run_dataset()

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.5")  # the SDK's own retries end quickly
    refusing = receiver(fail_first=10_000)
    out = run_dataset()
    assert "Traces: 0 of 3 sent to the OTLP collector; 3 wait in the outbox" in out
    assert refusing.refused and not refusing.accepted
    assert TraceOutbox.objects.count() == 3  # kept for a worker to send
