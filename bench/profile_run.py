"""Profile one in-process run, to find where a scenario's time goes (not part of
`make bench`; needs no extra packages).

    SQLITE_PATH=/tmp/p.sqlite3 .venv/bin/python bench/profile_run.py callable/noop 10000 16
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/somedb .venv/bin/python bench/profile_run.py callable/sleep-20ms 500 50

Use a fresh database: the dataset is created here. Runs the target twice on the
same dataset with `Worker(until_idle=True, run_id=…)`, as the scenarios do:

1. a plain run, timed, with the wall-clock busy time of the worker's two
   database threads ("db-write": `record_outcomes`, one call per batch;
   "db-control": claims, frontier writes, lease renewals, status polls) and of
   the event loop's own callbacks (everything else: items, spans, queues; via
   asyncio debug's slow-callback hook turned off, measured by wrapping
   `Handle._run`);
2. a cProfile of a second run (Python ≥ 3.12: cProfile sees every thread),
   sorted by tottime and cumulative. The profiler inflates per-call costs; read
   it for shares. `BENCH_NO_CPROFILE=1` skips it.
"""

import asyncio
import cProfile
import io
import os
import pstats
import sys
import threading
import time
from collections import defaultdict

os.environ.setdefault("PLAYGROUND_PLUGIN_MODULES", "bench.targets")
import scenarios
from scenarios import call_command, make_dataset, rows_of, start

from datasets_app.runs import worker as worker_module
from datasets_app.runs.chunk import ChunkRunner
from datasets_app.runs.worker import Worker

call_command("migrate", verbosity=0)
target, items, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
top = int(sys.argv[4]) if len(sys.argv) > 4 else 35

busy: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)
by_func: dict[str, float] = defaultdict(float)
batch_sizes: list[int] = []
_db_call = worker_module._db_call


def timed_db_call(func, args, kwargs):
    """Wraps the function every database-thread call goes through."""
    started = time.perf_counter()
    try:
        return _db_call(func, args, kwargs)
    finally:
        spent = time.perf_counter() - started
        thread = threading.current_thread().name.rsplit("_", 1)[0]
        busy[thread] += spent
        calls[thread] += 1
        by_func[getattr(func, "__name__", str(func))] += spent
        if "outcomes" in kwargs:
            batch_sizes.append(len(kwargs["outcomes"]))


worker_module._db_call = timed_db_call
_handle_run = asyncio.events.Handle._run


def timed_handle_run(self):
    started = time.perf_counter()
    try:
        return _handle_run(self)
    finally:
        busy["event loop callbacks"] += time.perf_counter() - started
        calls["event loop callbacks"] += 1


asyncio.events.Handle._run = timed_handle_run
_announce_through = ChunkRunner._announce_through


async def timed_announce_through(self, index, *, alone):
    """The feeder waits here when the frontier write it needs is not done yet."""
    started = time.perf_counter()
    try:
        return await _announce_through(self, index, alone=alone)
    finally:
        spent = time.perf_counter() - started
        if spent > 0.0005:
            busy["feeder waiting on announce"] += spent
            calls["feeder waiting on announce"] += 1


ChunkRunner._announce_through = timed_announce_through
dataset = make_dataset(items)


def one_run() -> tuple[float, object]:
    run = start(dataset, target, concurrency)
    started = time.perf_counter()
    Worker(until_idle=True, run_id=run.pk).run()
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    return elapsed, run


elapsed, run = one_run()
rows = rows_of(run)
print(
    f"{items} items of {target} at concurrency {concurrency} on {scenarios.django.db.connection.vendor}: "
    f"{elapsed:.3f} s, {items / elapsed:,.0f} items/s; run {run.status}, rows' first start→last end "
    f"{rows['span_s']:.3f} s"
)
print(
    f"wall-clock busy time (threads overlap; one GIL; the feeder's waits are summed over chunks): {elapsed:.3f} s run"
)
for name in sorted(busy, key=busy.get, reverse=True):
    print(f"  {name:24} {busy[name]:7.3f} s in {calls[name]:6} calls  ({busy[name] / items * 1e6:6.0f} µs/item)")
print(
    f"  write batches: {len(batch_sizes)}, mean {sum(batch_sizes) / max(1, len(batch_sizes)):.0f} outcomes, "
    f"max {max(batch_sizes, default=0)}"
)
print("  database calls by function:")
for name in sorted(by_func, key=by_func.get, reverse=True):
    print(f"    {name:28} {by_func[name]:7.3f} s")

if os.environ.get("BENCH_NO_CPROFILE") or not top:
    sys.exit(0)
asyncio.events.Handle._run = _handle_run
worker_module._db_call = _db_call
ChunkRunner._announce_through = _announce_through
profile = cProfile.Profile()
profile.enable()
profiled, _ = one_run()
profile.disable()
print(f"\nprofiled run (all threads): {profiled:.3f} s")
for key in ("tottime", "cumulative"):
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats(key).print_stats(top)
    print(f"===== sorted by {key}\n{out.getvalue()}")
