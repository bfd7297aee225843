"""Per-item cost of the engine's pieces, measured one at a time on a single
thread (no profiler, no contention), to explain the scenario figures. Not part
of `make bench`.

    SQLITE_PATH=/tmp/d.sqlite3 .venv/bin/python bench/decompose.py [items]
    DATABASE_URL=postgres://…/fresh_db .venv/bin/python bench/decompose.py [items]
"""

import os
import sys
import threading
import time
import uuid

os.environ.setdefault("PLAYGROUND_PLUGIN_MODULES", "bench.targets")
import scenarios  # noqa: E402,F401 — sets up Django
from scenarios import bulk_insert_floor, call_command, make_dataset, services, transaction  # noqa: E402

from datasets_app.models import DatasetRun, Trace  # noqa: E402
from datasets_app.runs import executor, registry  # noqa: E402
from datasets_app.runs.tracing import tracer  # noqa: E402
from opentelemetry import context as otel_context  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402

call_command("migrate", verbosity=0)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
BATCH = 115  # the mean batch the chunk loop writes at concurrency 16 (bench/profile_run.py)


def per_item_us(label, fn, n=N):
    t0 = time.perf_counter()
    fn(n)
    us = (time.perf_counter() - t0) / n * 1e6
    print(f"{label:62} {us:8.1f} µs/item")
    return us


dataset = make_dataset(N)
run = services.run_start(dataset=dataset, target_type="callable", target_id="noop", max_concurrency=1, enqueue=False)
run = DatasetRun.objects.get(pk=run.pk)
target = registry.get_target("callable", "noop")
runner = executor.ItemRunner(run=run, target=target, scorers=[], stop=threading.Event())
jobs = []
for chunk in run.chunks.order_by("index"):
    jobs.extend(executor.ChunkExecutor(chunk, run, "bench")._pending_jobs())
assert len(jobs) == N, len(jobs)
ex = executor.ChunkExecutor(run.chunks.order_by("index").first(), run, "bench")  # writes are per run, not per chunk
print(f"{N} items, database {scenarios.django.db.connection.vendor}\n")

print("-- item side (what each item thread does per item)")
whole = per_item_us("ItemRunner.execute(job) — noop target, whole item", lambda n: [runner.execute(jobs[i % len(jobs)]) for i in range(n)])

root_attributes = dict(runner._root_attributes)


def engine_spans(n):
    """The spans the engine creates for a no-scorer item that succeeds first time,
    the way ItemRunner.execute/_run_target create them: a root span with the item's
    attributes, one attempt span ("target") attached as current context while the
    target runs, status on both, then collector.take (span_to_dict runs in on_end)."""
    for i in range(n):
        root = tracer.start_span("run item", start_time=time.time_ns(), attributes={
            **root_attributes, "playground.item_id": str(i), "playground.item_version": 1, "playground.repetition": 0})
        trace_id = executor.trace_id_hex(root)
        parent = trace.set_span_in_context(root)
        span = tracer.start_span("target", context=parent)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        span.set_status(Status(StatusCode.OK))
        otel_context.detach(token)
        span.end()
        root.set_attribute("playground.latency_ms", 0.01)
        root.set_attribute("playground.retry_count", 0)
        root.set_status(Status(StatusCode.OK))
        root.end()
        executor.collector.take(int(trace_id, 16))


per_item_us("  the engine's 2 spans (root + 1 attempt) + span_to_dict + take", engine_spans)
watch = executor.CallWatch(30)
per_item_us("  CallWatch.begin + end (the watchdog's per-attempt bookkeeping)",
            lambda n: [(watch.begin(jobs[0], "target"), watch.end()) for _ in range(n)])
per_item_us("  _check_output(None) (json.dumps of the output)", lambda n: [executor._check_output(None) for _ in range(n)])

print("\n-- write side (the chunk loop's one writer), batches of", BATCH)
outcomes = [runner.execute(job) for job in jobs]
span_counts = {len(o.spans) for o in outcomes}
spans_json = sum(len(Trace._meta.get_field("spans").get_prep_value(o.spans)) for o in outcomes) / len(outcomes)
print(f"(spans per item: {sorted(span_counts)}; mean trace spans JSON {spans_json:,.0f} bytes)")


def write_batches(n):
    for start in range(0, n, BATCH):
        ex._write(outcomes[start:start + BATCH])


w = per_item_us("ChunkExecutor._write: results + traces + counters, 1 txn/batch", write_batches)
assert run.results.count() == N and run.traces.count() == N, (run.results.count(), run.traces.count())
DatasetRun.objects.filter(pk=run.pk).update(succeeded_count=0)


def results_only(n):
    from datasets_app.models import DatasetRunResult
    from datasets_app.runs.rows import insert_rows

    other = DatasetRun.objects.create(dataset=dataset, dataset_version=dataset.version, target_type="callable",
                                      target_id="noop", total_items=n)
    for start in range(0, n, BATCH):
        with transaction.atomic():
            insert_rows(DatasetRunResult, [
                {"id": uuid.uuid4(), "run": other.pk, "item": o.job.item_id, "item_version": o.job.item_version,
                 "repetition": 0, "input": o.job.input, "output": o.output, "expected_output": o.job.expected_output,
                 "latency": o.latency_ms, "error": o.error, "retry_count": 0, "trace_id": o.trace_id, "scores": [],
                 "usage": None, "started_at": o.started_at, "completed_at": o.completed_at, "created_at": o.started_at}
                for o in outcomes[start:start + BATCH]])


per_item_us("  insert_rows(results) alone, same batches", results_only)


def traces_only(n):
    from datasets_app.runs.rows import insert_rows

    other = DatasetRun.objects.create(dataset=dataset, dataset_version=dataset.version, target_type="callable",
                                      target_id="noop", total_items=n)
    for start in range(0, n, BATCH):
        with transaction.atomic():
            insert_rows(Trace, [
                {"trace_id": uuid.uuid4().hex, "run": other.pk, "result_id": uuid.uuid4(), "name": f"run item {o.job.item_id}",
                 "spans": o.spans, "started_at": o.started_at}
                for o in outcomes[start:start + BATCH]])


per_item_us("  insert_rows(traces) alone, same batches", traces_only)
floor = bulk_insert_floor(dataset, N)
print(f"{'bulk_create floor (scenarios.bulk_insert_floor), 1 txn':62} {floor / N * 1e6:8.1f} µs/item")
print(f"\nsum item side + write side ≈ {whole + w:.0f} µs/item ⇒ ≈ {1e6 / (whole + w):,.0f} items/s if serialised by the GIL")

if os.environ.get("BENCH_PROFILE_ITEM"):  # single-threaded cProfile of the item side, by internal time
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for job in jobs[:2000]:
        runner.execute(job)
    profile.disable()
    print("\n-- cProfile of ItemRunner.execute × 2000 (single thread), top by internal time")
    pstats.Stats(profile).sort_stats("tottime").print_stats(22)
