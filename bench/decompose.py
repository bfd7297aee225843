"""Per-item cost of the engine's pieces, measured one at a time on one thread
(no profiler, no other work), to explain the scenario figures. Not part of
`make bench`.

    SQLITE_PATH=/tmp/d.sqlite3 .venv/bin/python bench/decompose.py [items] [batch]
    DATABASE_URL=postgres://…/fresh_db .venv/bin/python bench/decompose.py [items] [batch]

Item side (what the event loop does per item): `ItemExecutor.execute` awaited
one job after another for an async no-op target, with no scorer and with the
inline `exact-match`; the two spans it creates on their own. Write side
(the worker's "db-write" thread): `record_outcomes` in batches of `batch`
(default 26, the mean batch `profile_run.py` saw at concurrency 16), then
`insert_rows` of results alone and of traces alone; the control thread's
`announce` (one frontier write) and `claim_chunk`; and the `bulk_create`
floor the throughput scenario divides by. `BENCH_PROFILE_ITEM=1` adds a
cProfile of the item side.
"""

import asyncio
import os
import sys
import time
import uuid

os.environ.setdefault("PLAYGROUND_PLUGIN_MODULES", "bench.targets")
import scenarios
from scenarios import bulk_insert_floor, call_command, make_dataset, start, transaction

from datasets_app.models import DatasetRun, DatasetRunResult, RunChunk, Trace
from datasets_app.runs import lifecycle, registry
from datasets_app.runs.item import ItemExecutor
from datasets_app.runs.rows import insert_rows
from datasets_app.runs import tracing

try:  # the engine moved result writing out of lifecycle.py
    from datasets_app.runs.recording import record_outcomes
except ImportError:
    record_outcomes = lifecycle.record_outcomes

call_command("migrate", verbosity=0)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 26


def per_item_us(label: str, fn, n: int = N) -> float:
    t0 = time.perf_counter()
    fn(n)
    us = (time.perf_counter() - t0) / n * 1e6
    print(f"{label:66} {us:8.1f} µs/item")
    return us


dataset = make_dataset(N)
run = start(dataset, "callable/noop", 16)
claim = lifecycle.claim_chunk(worker_id="bench")
chunks = list(RunChunk.objects.filter(run_id=run.pk).order_by("index"))
jobs = [job for chunk in chunks for job in lifecycle.chunk_jobs(chunk)]
assert len(jobs) == N, len(jobs)
print(f"{N} items, database {scenarios.django.db.connection.vendor}, write batches of {BATCH}\n")

noop = registry.get_target("callable", "noop")
plain = ItemExecutor(run_id=run.pk, dataset_id=dataset.pk, target=noop, scorers=[], timeout=60, max_retries=0)
scored = ItemExecutor(
    run_id=run.pk,
    dataset_id=dataset.pk,
    target=noop,
    scorers=[registry.get_scorer("exact-match")],
    timeout=60,
    max_retries=0,
)


async def execute_all(executor: ItemExecutor, n: int) -> list:
    return [await executor.execute(jobs[i % N]) for i in range(n)]


print("-- item side (the event loop, one item after another)")
whole = per_item_us(
    "ItemExecutor.execute — async no-op target, no scorer", lambda n: asyncio.run(execute_all(plain, n))
)
per_item_us("ItemExecutor.execute — same + exact-match (inline)", lambda n: asyncio.run(execute_all(scored, n)))


if hasattr(tracing, "ItemTrace"):  # spans built directly in their stored shape (610ad9a on)

    def spans(n: int) -> None:
        for _ in range(n):
            item_trace = tracing.ItemTrace()
            root = item_trace.start("run item")
            item_trace.start("target", parent=root).end()
            root.end()
            item_trace.as_dicts()

    per_item_us("  2 bare spans (root + target) + as_dicts", spans)
else:  # the OpenTelemetry SDK, a SpanCollector and span_to_dict (up to 191345c)
    from opentelemetry import trace

    def spans(n: int) -> None:
        for _ in range(n):
            root = tracing.tracer.start_span("run item", start_time=time.time_ns())
            span = tracing.tracer.start_span("target", context=trace.set_span_in_context(root))
            span.end()
            root.end()
            tracing.collector.take(int(tracing.trace_id_hex(root), 16))

    per_item_us("  2 bare spans (root + target) + span_to_dict + take", spans)


async def bare_tasks(n: int) -> None:
    async def call():
        return None

    for _ in range(n):
        task = asyncio.ensure_future(call())
        await asyncio.wait({task}, timeout=60)


per_item_us(
    "  one asyncio task + asyncio.wait(timeout) (ItemExecutor._call's shape)", lambda n: asyncio.run(bare_tasks(n))
)

print(f"\n-- write side (db-write thread), batches of {BATCH}")
outcomes = asyncio.run(execute_all(plain, N))
spans_json = sum(len(Trace._meta.get_field("spans").get_prep_value(o.spans)) for o in outcomes) / len(outcomes)
print(f"(spans per item: {sorted({len(o.spans) for o in outcomes})}; mean trace JSON {spans_json:,.0f} bytes)")


def write_batches(n: int) -> None:
    for first in range(0, n, BATCH):
        record_outcomes(
            chunk_id=claim.chunk.pk,
            run_id=run.pk,
            worker_id="bench",
            outcomes=outcomes[first : first + BATCH],
            export=False,
        )


w = per_item_us("record_outcomes: results + traces + counters, 1 txn per batch", write_batches)
assert DatasetRunResult.objects.filter(run_id=run.pk).count() == N


def other_run() -> DatasetRun:
    return DatasetRun.objects.create(
        dataset=dataset, dataset_version=dataset.version, target_type="callable", target_id="noop", total_items=N
    )


def results_only(n: int) -> None:
    other = other_run()
    for first in range(0, n, BATCH):
        with transaction.atomic():
            insert_rows(
                DatasetRunResult,
                [
                    {
                        "id": uuid.uuid4(),
                        "run": other.pk,
                        "item": o.job.item_id,
                        "item_version": o.job.item_version,
                        "repetition": 0,
                        "input": o.job.input,
                        "output": o.output,
                        "expected_output": o.job.expected_output,
                        "latency": o.latency_ms,
                        "error": o.error,
                        "retry_count": 0,
                        "trace_id": o.trace_id,
                        "scores": [],
                        "usage": None,
                        "started_at": o.started_at,
                        "completed_at": o.completed_at,
                        "created_at": o.started_at,
                    }
                    for o in outcomes[first : first + BATCH]
                ],
            )


def traces_only(n: int) -> None:
    other = other_run()
    for first in range(0, n, BATCH):
        with transaction.atomic():
            insert_rows(
                Trace,
                [
                    {
                        "trace_id": uuid.uuid4().hex,
                        "run": other.pk,
                        "result_id": uuid.uuid4(),
                        "name": f"run item {o.job.item_id}",
                        "spans": o.spans,
                        "started_at": o.started_at,
                    }
                    for o in outcomes[first : first + BATCH]
                ],
            )


per_item_us("  insert_rows(results) alone, same batches", results_only)
per_item_us("  insert_rows(traces) alone, same batches", traces_only)

print("\n-- control thread, per call")
from datasets_app.runs.chunk import ANNOUNCE_AHEAD

window = max(ANNOUNCE_AHEAD, 2 * 16)  # the throughput scenario's concurrency
frontier = jobs[: min(N, window * 200)]
t0 = time.perf_counter()
for i in range(window - 1, len(frontier), window):
    lifecycle.announce(chunk_id=claim.chunk.pk, worker_id="bench", through=frontier[i])
calls = len(range(window - 1, len(frontier), window))
print(
    f"{f'announce (frontier write, 1 per {window} items at c=16)':66} "
    f"{(time.perf_counter() - t0) / calls * 1e3:8.2f} ms/call "
    f"(= {(time.perf_counter() - t0) / (calls * window) * 1e6:.1f} µs/item)"
)
t0 = time.perf_counter()
claims = 0
while lifecycle.claim_chunk(worker_id="bench") is not None:
    claims += 1
if claims:
    print(f"{'claim_chunk':66} {(time.perf_counter() - t0) / claims * 1e3:8.2f} ms/call")
t0 = time.perf_counter()
loaded = sum(len(lifecycle.chunk_jobs(c)) + len(lifecycle.finished_jobs(c)) for c in chunks)
print(
    f"{'chunk_jobs + finished_jobs (a chunk load)':66} {(time.perf_counter() - t0) / len(chunks) * 1e3:8.2f} "
    f"ms/chunk ({(time.perf_counter() - t0) / N * 1e6:.1f} µs/item)"
)

floor = bulk_insert_floor(dataset, N)
print(f"\n{'bulk_create floor (scenarios.bulk_insert_floor), 1 txn':66} {floor / N * 1e6:8.1f} µs/item")
print(f"item side + write side ≈ {whole + w:.0f} µs/item ⇒ ≈ {1e6 / (whole + w):,.0f} items/s if serialised by the GIL")

if os.environ.get("BENCH_PROFILE_ITEM"):
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    asyncio.run(execute_all(plain, min(N, 2000)))
    profile.disable()
    print("\n-- cProfile of ItemExecutor.execute × 2000 (one loop), top by internal time")
    pstats.Stats(profile).sort_stats("tottime").print_stats(25)
