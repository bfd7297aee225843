"""Profile one in-process run, to find where a scenario's time goes (not part of
`make bench`; needs no extra packages).

    SQLITE_PATH=/tmp/p.sqlite3 .venv/bin/python bench/profile_run.py noop 10000 16
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/somedb .venv/bin/python bench/profile_run.py sleep-20ms 500 50

Use a fresh database: the dataset is created here. Prints:
* a plain run's wall time (no profiler),
* the main thread's wall-clock split: writing batches (`_write`), waiting for
  outcomes (`_gather`), the rest,
* a cProfile of a second run. On Python ≥ 3.12 cProfile sees every thread
  (sys.monitoring is process-wide), so item threads and the chunk loop are
  in one table; the profiler inflates per-call costs, read it for shares.
"""

import cProfile
import io
import os
import pstats
import sys
import time

os.environ.setdefault("PLAYGROUND_PLUGIN_MODULES", "bench.targets")
import scenarios  # noqa: E402,F401 — sets up Django
from scenarios import call_command, execute_in_process, make_dataset, services  # noqa: E402

from datasets_app.runs import executor  # noqa: E402

call_command("migrate", verbosity=0)
if os.environ.get("BENCH_SWITCH_INTERVAL"):  # experiment: how much is GIL hand-over latency?
    sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    print(f"sys.setswitchinterval({sys.getswitchinterval()})")
target, items, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
top = int(sys.argv[4]) if len(sys.argv) > 4 else 30

spent = {"_write": 0.0, "_gather": 0.0, "_pending_jobs": 0.0}
calls = {"_write": 0, "_gather": 0}
batch_sizes: list[int] = []


def timed(name):
    original = getattr(executor.ChunkExecutor, name)

    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t0
            calls[name] += 1
            if name == "_write":
                batch_sizes.append(len(args[0]))

    setattr(executor.ChunkExecutor, name, wrapper)


timed("_write")
timed("_gather")
dataset = make_dataset(items)


def one_run():
    run = services.run_start(dataset=dataset, target_type="callable", target_id=target,
                             max_concurrency=concurrency, enqueue=False)
    started = time.perf_counter()
    execute_in_process(run)
    return time.perf_counter() - started


elapsed = one_run()
if os.environ.get("BENCH_NO_CPROFILE"):
    top = 0
print(f"{items} items of {target} at concurrency {concurrency}: {elapsed:.3f} s, {items / elapsed:,.0f} items/s")
print(f"main thread: _write {spent['_write']:.3f} s in {calls['_write']} batches "
      f"(mean {sum(batch_sizes) / max(1, len(batch_sizes)):.0f} rows, max {max(batch_sizes, default=0)}), "
      f"_gather {spent['_gather']:.3f} s in {calls['_gather']} calls, "
      f"rest {elapsed - spent['_write'] - spent['_gather']:.3f} s\n")

if not top:
    sys.exit(0)
profile = cProfile.Profile()
profile.enable()
profiled = one_run()
profile.disable()
print(f"profiled run (all threads): {profiled:.3f} s")
for key in ("tottime", "cumulative"):
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats(key).print_stats(top)
    print(f"===== sorted by {key}\n{out.getvalue()}")
