"""One benchmark scenario per invocation, on the database the environment
selects (SQLITE_PATH or DATABASE_URL), which must be fresh. Prints one
`RESULT {json}` line. Run through bench/run_all.py, which gives each
invocation a fresh database and prints the table:

    .venv/bin/python bench/scenarios.py FUNCTION ARG...     # e.g. llm_shaped 5000 250

Runs execute either in this process (`Worker(until_idle=True, run_id=…).run()`,
the code a worker process runs) or, where the brief says "as a user sees it",
in real `manage.py run_worker` processes started from here (same environment,
so same database and PLAYGROUND_PLUGIN_MODULES=bench.targets).
"""

import json
import multiprocessing
import os
import shutil
import signal
import statistics
from collections import Counter
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
os.environ.setdefault("PLAYGROUND_PLUGIN_MODULES", "bench.targets")
os.environ.setdefault("PLAYGROUND_LOG_LEVEL", "WARNING")

import django

django.setup()

from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from datasets_app import services
from datasets_app.models import DatasetItem, DatasetRun, DatasetRunResult, RunChunk, TraceOutbox
from datasets_app.runs.worker import Worker

PYTHON = sys.executable
TERMINAL = {str(s) for s in DatasetRun.TERMINAL_STATUSES}


# ---- helpers ----------------------------------------------------------------------------


# How services.items_bulk_create names an item's expected output: "expectedOutput" up to
# badc277, "expected_output" once the service layer took snake_case (services.NewItem).
EXPECTED_KEY = (
    "expected_output"
    if "expected_output" in getattr(getattr(services, "NewItem", None), "__annotations__", {})
    else "expectedOutput"
)


def bench_project() -> dict:
    """The project keyword for dataset_create, on commits that have projects."""
    try:
        from datasets_app.models import Project
    except ImportError:
        return {}
    project, _ = Project.objects.get_or_create(name="bench")
    return {"project": project}


def make_dataset(items: int, *, expected_is_input: bool = False):
    dataset = services.dataset_create(name=f"bench {items}", **bench_project())
    batch = 5000
    # Added in bulk batches: each is one dataset version, all live at the last one.
    for start in range(0, items, batch):
        rows = []
        for n in range(start, min(items, start + batch)):
            value = {"n": n, "text": f"question {n}"}
            rows.append({"input": value, EXPECTED_KEY: value if expected_is_input else n})
        services.items_bulk_create(dataset=dataset, items=rows)
    return dataset


def bulk_insert_floor(dataset, rows: int) -> float:
    """Seconds for a bare bulk_create of `rows` result rows: the floor a run cannot beat."""
    run = DatasetRun.objects.create(
        dataset=dataset, dataset_version=dataset.version, target_type="callable", target_id="noop", total_items=rows
    )
    item_ids = list(DatasetItem.objects.filter(dataset=dataset).values_list("id", flat=True)[:rows])
    now = timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        DatasetRunResult.objects.bulk_create(
            [
                DatasetRunResult(
                    run=run,
                    item_id=i,
                    item_version=1,
                    input={"n": 1},
                    output=None,
                    expected_output=1,
                    latency=0.1,
                    started_at=now,
                    completed_at=now,
                )
                for i in item_ids
            ],
            batch_size=500,
        )
    elapsed = time.perf_counter() - started
    run.delete()
    return elapsed


def start(dataset, target: str, concurrency: int, **options) -> DatasetRun:
    target_type, _, target_id = target.partition("/")
    return services.run_start(
        dataset=dataset, target_type=target_type, target_id=target_id, max_concurrency=concurrency, **options
    )


def run_in_process(run: DatasetRun) -> float:
    """Execute the run with an in-process worker; seconds until it returns."""
    started = time.perf_counter()
    Worker(until_idle=True, run_id=run.pk).run()
    return time.perf_counter() - started


def rows_of(run: DatasetRun) -> dict:
    """What the result rows say: count, first start, last end, first and last write."""
    agg = DatasetRunResult.objects.filter(run_id=run.pk).aggregate(
        rows=Count("id"),
        first_start=Min("started_at"),
        last_end=Max("completed_at"),
        first_write=Min("created_at"),
        last_write=Max("created_at"),
    )
    agg["span_s"] = (agg["last_end"] - agg["first_start"]).total_seconds() if agg["rows"] else None
    return agg


def expect_completed(run: DatasetRun, items: int) -> DatasetRun:
    run.refresh_from_db()
    rows = DatasetRunResult.objects.filter(run_id=run.pk).count()
    if run.status != "completed" or rows != items or run.succeeded_count != items:
        raise AssertionError(
            f"run {run.status} with {rows} rows, {run.succeeded_count} succeeded, "
            f"{run.failed_count} failed, of {items}: {run.error or first_error(run)}"
        )
    return run


def first_error(run: DatasetRun) -> str | None:
    return DatasetRunResult.objects.filter(run_id=run.pk).exclude(error=None).values_list("error", flat=True).first()


def poll_until_terminal(run: DatasetRun, *, every: float = 0.01, deadline: float = 600) -> str:
    """Read the run row every `every` seconds until its status is terminal."""
    limit = time.perf_counter() + deadline
    query = DatasetRun.objects.filter(pk=run.pk).values_list("status", flat=True)
    while True:
        status = query.get()
        if status in TERMINAL:
            return status
        if time.perf_counter() > limit:
            raise TimeoutError(f"run still {status} after {deadline} s")
        time.sleep(every)


def seconds(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (b - a).total_seconds()


class WorkerProcess:
    """A real `manage.py run_worker --skip-checks --worker-id NAME` process."""

    logs: str | None = None  # a temp dir for the workers' logs, made on first use; kept if the scenario fails

    def __init__(self, name: str, *options: str, **env: str):
        self.name = name
        if WorkerProcess.logs is None:
            WorkerProcess.logs = tempfile.mkdtemp(prefix="bench-workers-")
        self.log_path = os.path.join(self.logs, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PYTHON, "manage.py", "run_worker", "--skip-checks", "--worker-id", name, *options],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @staticmethod
    def supports(option: str) -> bool:
        help_text = subprocess.run(
            [PYTHON, "manage.py", "run_worker", "--help"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        return option in help_text

    def _cpu_ticks(self) -> int:
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def wait_idle(self, timeout: float = 60, min_threads: int = 3) -> float:
        """Wait until the worker is idle-polling: its event loop has started (the
        watchdog and the control database thread exist: `min_threads`) and it has
        used less than 10 % of a core over the last 0.3 s. Returns the seconds waited."""
        started = time.perf_counter()
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        history: list[tuple[float, int]] = []
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.proc.returncode}: {self.tail()}")
            now, ticks = time.perf_counter(), self._cpu_ticks()
            history.append((now, ticks))
            threads = len(os.listdir(f"/proc/{self.proc.pid}/task"))
            old = [h for h in history if now - h[0] >= 0.3]
            if threads >= min_threads and old:
                t0, c0 = old[-1]
                if (ticks - c0) / ticks_per_s / (now - t0) < 0.10:
                    return time.perf_counter() - started
            time.sleep(0.05)
        raise TimeoutError(f"worker {self.name} not idle after {timeout} s")

    def tail(self, lines: int = 12) -> str:
        self.log.flush()
        with open(self.log_path) as log:
            return " | ".join(log.read().strip().splitlines()[-lines:])

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- 1. llm-shaped ------------------------------------------------------------------------


def llm_shaped(items: int, concurrency: int) -> dict:
    """Async target awaiting 200 ms; first start → last end from the rows."""
    dataset = make_dataset(items)
    run = start(dataset, "callable/sleep-200ms-async", concurrency)
    wall = run_in_process(run)
    expect_completed(run, items)
    rows = rows_of(run)
    ideal = items * 0.2 / concurrency
    return {
        "items": items,
        "concurrency": concurrency,
        "span_s": rows["span_s"],
        "ideal_s": ideal,
        "ratio": rows["span_s"] / ideal,
        "worker_wall_s": wall,
    }


# ---- 2. sync-concurrency --------------------------------------------------------------------


def sync_concurrency(items: int, concurrency: int) -> dict:
    """Sync target sleeping 20 ms (sandbox processes); rows span, plus the wall
    time from the worker's start to the run's completion (includes the prewarm)."""
    dataset = make_dataset(items)
    run = start(dataset, "callable/sleep-20ms", concurrency)
    began = timezone.now()
    wall = run_in_process(run)
    run = expect_completed(run, items)
    rows = rows_of(run)
    ideal = items * 0.02 / concurrency
    return {
        "items": items,
        "concurrency": concurrency,
        "span_s": rows["span_s"],
        "ideal_s": ideal,
        "ratio": rows["span_s"] / ideal,
        "worker_start_to_first_item_s": seconds(began, rows["first_start"]),
        "worker_start_to_completed_s": seconds(began, run.completed_at),
        "worker_wall_s": wall,
    }


# ---- 3. throughput ---------------------------------------------------------------------------


def throughput(items: int, concurrency: int) -> dict:
    dataset = make_dataset(items)
    floor = bulk_insert_floor(dataset, items)
    run = start(dataset, "callable/noop", concurrency)
    wall = run_in_process(run)
    expect_completed(run, items)
    rows = rows_of(run)
    return {
        "items": items,
        "concurrency": concurrency,
        "seconds": wall,
        "items_per_s": items / wall,
        "floor_s": floor,
        "ratio_to_floor": wall / floor,
        "rows_span_s": rows["span_s"],
    }


# ---- 4. mastra-like ------------------------------------------------------------------------------


def mastra_like(items: int, concurrency: int) -> dict:
    """As a user sees it: a run_worker process already idle; from run_start (what
    POST /api/datasets/{id}/runs calls) until a 10 ms poll of the run row reads
    a terminal status."""
    dataset = make_dataset(items)
    worker = WorkerProcess("mastra")
    try:
        idle_after = worker.wait_idle()
        time.sleep(0.3)
        posted = timezone.now()
        t0 = time.perf_counter()
        run = start(dataset, "workflow/echo", concurrency)
        created = time.perf_counter() - t0
        status = poll_until_terminal(run, every=0.01)
        elapsed = time.perf_counter() - t0
    finally:
        worker.stop()
    assert status == "completed", status
    expect_completed(run, items)
    rows = rows_of(run)
    return {
        "items": items,
        "concurrency": concurrency,
        "seconds": elapsed,
        "items_per_s": items / elapsed,
        "run_start_call_s": created,
        "to_first_item_start_s": seconds(posted, rows["first_start"]),
        "to_first_row_s": seconds(posted, rows["first_write"]),
        "rows_span_s": rows["span_s"],
        "worker_ready_after_s": idle_after,
    }


# ---- 5. growth --------------------------------------------------------------------------------


def growth(items: int, concurrency: int) -> dict:
    """One size: no-op run in-process, items/s, plus the rate over the first and
    last tenth of its results (by completion time), to see a slowdown inside it."""
    dataset = make_dataset(items)
    run = start(dataset, "callable/noop", concurrency)
    wall = run_in_process(run)
    expect_completed(run, items)
    ends = sorted(DatasetRunResult.objects.filter(run_id=run.pk).values_list("completed_at", flat=True))
    tenth = max(2, items // 10)

    def rate(part: list) -> float:
        return (len(part) - 1) / max(1e-9, (part[-1] - part[0]).total_seconds())

    return {
        "items": items,
        "concurrency": concurrency,
        "seconds": wall,
        "items_per_s": items / wall,
        "first_tenth_items_per_s": rate(ends[:tenth]),
        "last_tenth_items_per_s": rate(ends[-tenth:]),
    }


# ---- 6. kill-recovery --------------------------------------------------------------------------


def kill_recovery(items: int, concurrency: int, kills: int) -> dict:
    """Two run_worker processes; kill -9 the holder of a running chunk `kills`
    times (a replacement started each time), then count lost, duplicated and
    'crashed' items and how long results took to move again after each kill."""
    dataset = make_dataset(items)
    serial = iter(range(1000))
    workers = {w.name: w for w in (WorkerProcess(f"kr-{next(serial)}") for _ in range(2))}
    for w in workers.values():
        w.wait_idle()
    run = start(dataset, "callable/sleep-20ms-async", concurrency)
    counters = DatasetRun.objects.filter(pk=run.pk).values_list("status", "succeeded_count", "failed_count")
    kill_log: list[dict] = []
    last_victim = None
    at_kill = at_resume = resumed_at = None
    limit = time.perf_counter() + 600
    try:
        while True:
            status, ok, failed = counters.get()
            done = ok + failed
            if status in TERMINAL:
                break
            if time.perf_counter() > limit:
                raise TimeoutError(f"run still {status} after 600 s ({done}/{items})")
            now = time.perf_counter()
            if len(kill_log) < kills:
                if kill_log and resumed_at is None and done > at_kill:
                    resumed_at, at_resume = now, done
                if not kill_log:
                    ready = done >= max(1, items // 20)
                else:
                    # Spacing: after results moved again, let a fair share of what
                    # is left be written (so the run lasts for every kill), ≥ 0.25 s.
                    share = (items - at_resume) / (kills - len(kill_log) + 1) if resumed_at else None
                    ready = resumed_at is not None and now - resumed_at >= 0.25 and done - at_resume >= share
                if ready:
                    holders = {}
                    for owner, index in RunChunk.objects.filter(
                        run_id=run.pk, status="running", lease_expires_at__gt=timezone.now()
                    ).values_list("lease_owner", "index"):
                        # --worker-id NAME leases as host:pid:pid-namespace:NAME (before the dead-holder takeover: NAME).
                        owner = owner.split(":", 3)[-1]
                        if owner in workers and workers[owner].proc.poll() is None:
                            holders.setdefault(owner, []).append(index)
                    if holders:
                        victim = max(holders, key=lambda o: (len(holders[o]), o != last_victim))
                        killed_at = timezone.now()
                        workers[victim].kill9()
                        kill_log.append(
                            {"victim": victim, "chunks": sorted(holders[victim]), "at": killed_at, "done_at_kill": done}
                        )
                        del workers[victim]
                        last_victim = victim
                        fresh = WorkerProcess(f"kr-{next(serial)}")
                        workers[fresh.name] = fresh
                        at_kill, resumed_at, at_resume = done, None, None
            time.sleep(0.02)
    finally:
        for w in workers.values():
            w.stop()
    run.refresh_from_db()

    results = list(
        DatasetRunResult.objects.filter(run_id=run.pk).values_list("item_id", "repetition", "created_at", "error")
    )
    keys = {(i, r) for i, r, _, _ in results}
    crashed = sum(1 for *_, error in results if error and "crashed" in error.lower())
    chunks = {c.index: c for c in RunChunk.objects.filter(run_id=run.pk)}

    def in_chunks(item_id, indexes) -> bool:
        return any(
            (chunks[i].after_item_id is None or item_id > chunks[i].after_item_id) and item_id <= chunks[i].last_item_id
            for i in indexes
        )

    per_kill = []
    for k in kill_log:
        after_any = [c for _, _, c, _ in results if c > k["at"]]
        after_own = [c for i, _, c, _ in results if c > k["at"] and in_chunks(i, k["chunks"])]
        per_kill.append(
            {
                "victim": k["victim"],
                "chunks": k["chunks"],
                "done_at_kill": k["done_at_kill"],
                "any_rows_again_s": seconds(k["at"], min(after_any)) if after_any else None,
                "killed_chunks_rows_again_s": seconds(k["at"], min(after_own)) if after_own else None,
            }
        )

    def stats(key: str) -> dict:
        values = [p[key] for p in per_kill if p[key] is not None]
        return {
            "max": max(values) if values else None,
            "median": statistics.median(values) if values else None,
            "n": len(values),
        }

    return {
        "items": items,
        "concurrency": concurrency,
        "kills_wanted": kills,
        "kills": len(kill_log),
        "status": run.status,
        "run_seconds": seconds(run.started_at, run.completed_at),
        "lost": items - len(keys),
        "duplicated": len(results) - len(keys),
        "crashed_failures": crashed,
        "failed_count": run.failed_count,
        "any_rows_again": stats("any_rows_again_s"),
        "killed_chunks_rows_again": stats("killed_chunks_rows_again_s"),
        "per_kill": per_kill,
        "chunk_attempts": {i: c.attempts for i, c in sorted(chunks.items())},
        # How many items ended with a crash count of 1, 2 (those then run alone), …
        "crash_count_histogram": dict(
            sorted(Counter(n for c in chunks.values() for n in c.crash_counts.values()).items())
        ),
        "lease_seconds": float(os.environ.get("PLAYGROUND_LEASE_SECONDS", 6)),
    }


# ---- 7. otlp-export -----------------------------------------------------------------------------


def otlp_export(items: int, mode: int) -> dict:
    """A no-op run through a run_worker process, timed from run_start to a
    terminal status (10 ms poll). Mode 0: no export. Mode 1: the worker exports
    to a local OTLP/HTTP receiver (own process, bench/otlp_export.py) from its
    exporter thread. Mode 2 (engines whose run_worker has --no-exporter-thread):
    the worker only stores the outbox rows and a separate `run_worker --exporter`
    process drains them, as `run_worker --processes N` sets it up. With export,
    we then wait for the outbox to drain and count the distinct trace ids that
    arrived."""
    from otlp_export import _serve, receiver_stats

    if mode == 2 and not WorkerProcess.supports("--no-exporter-thread"):
        return {"items": items, "mode": mode, "unsupported": "run_worker has no --no-exporter-thread"}
    receiver = port = None
    env = {}
    if mode:
        ctx = multiprocessing.get_context("fork")
        ports = ctx.Queue()
        receiver = ctx.Process(target=_serve, args=(ports, 0), daemon=True)
        receiver.start()
        port = ports.get(timeout=30)
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
    dataset = make_dataset(items)
    processes = [WorkerProcess(f"otlp-{mode}", *(["--no-exporter-thread"] if mode == 2 else []), **env)]
    if mode == 2:
        processes.append(WorkerProcess("exporter", "--exporter", **env))
    try:
        processes[0].wait_idle()
        for p in processes[1:]:
            p.wait_idle(min_threads=1)
        time.sleep(0.3)
        t0 = time.perf_counter()
        run = start(dataset, "callable/noop", 16)
        status = poll_until_terminal(run, every=0.01)
        elapsed = time.perf_counter() - t0
        assert status == "completed", status
        result = {
            "items": items,
            "mode": mode,
            "export": bool(mode),
            "seconds": elapsed,
            "items_per_s": items / elapsed,
        }
        if mode:
            limit = time.perf_counter() + 300
            while time.perf_counter() < limit:
                if not TraceOutbox.objects.exists() and receiver_stats(port)["traces"] >= items:
                    break
                time.sleep(0.05)
            stats = receiver_stats(port)
            result.update(
                drain_after_run_s=time.perf_counter() - t0 - elapsed,
                traces_arrived=stats["traces"],
                sent_twice=stats["deliveries"] - stats["traces"],
                requests=stats["requests"],
                outbox_left=TraceOutbox.objects.count(),
            )
    finally:
        for p in processes:
            p.stop()
        if receiver is not None:
            receiver.kill()
    expect_completed(run, items)
    return result


# ---- 8. timeouts-cleanup -------------------------------------------------------------------------


def _children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def timeouts_cleanup(items: int, concurrency: int) -> dict:
    """Hanging async and spinning sync items under a 0.5 s timeout, in-process;
    then threads, child processes and CPU use over the next 3 s."""
    hang_set, spin_set = make_dataset(items), make_dataset(items)
    baseline = {
        "threads": threading.active_count(),
        "mp_children": len(multiprocessing.active_children()),
        "os_children": len(_children()),
    }
    runs = [
        start(hang_set, "callable/hang-async", concurrency, item_timeout=0.5),
        start(spin_set, "callable/spin-sync", concurrency, item_timeout=0.5),
    ]
    t0 = time.perf_counter()
    Worker(until_idle=True).run()
    wall = time.perf_counter() - t0
    after = []
    for second in range(4):
        cpu0, w0 = time.process_time(), time.perf_counter()
        if second:
            time.sleep(1.0)
        sample = {
            "t_s": second,
            "threads": threading.active_count(),
            "mp_children": len(multiprocessing.active_children()),
            "os_children": len(_children()),
        }
        if second:
            sample["cpu_pct"] = round(100 * (time.process_time() - cpu0) / (time.perf_counter() - w0), 1)
        after.append(sample)
    per_run = []
    for run in runs:
        run.refresh_from_db()
        rows = rows_of(run)
        errors = DatasetRunResult.objects.filter(run_id=run.pk).values_list("error", flat=True)
        timed_out = sum(1 for e in errors if e and "Timed out" in e)
        per_run.append(
            {
                "target": run.target_id,
                "status": run.status,
                "rows": rows["rows"],
                "timed_out": timed_out,
                "span_s": rows["span_s"],
                "sample_error": first_error(run),
            }
        )
    return {
        "items_each": items,
        "concurrency": concurrency,
        "item_timeout_s": 0.5,
        "ideal_each_s": items / concurrency * 0.5,
        "worker_wall_s": wall,
        "baseline": baseline,
        "after": after,
        "runs": per_run,
    }


# ---- 9. sandbox-cost -----------------------------------------------------------------------------


def sandbox_cost(items: int, concurrency: int, variant: int) -> dict:
    """workflow/echo with no scorer (0), exact-match inline (1), or the same
    comparison in a sandboxed scorer (2); µs per item of the in-process run."""
    scorer = [[], ["exact-match"], ["bench-exact-sandboxed"]][variant]
    dataset = make_dataset(items, expected_is_input=True)
    run = start(dataset, "workflow/echo", concurrency, scorer_ids=scorer)
    wall = run_in_process(run)
    expect_completed(run, items)
    run.refresh_from_db()
    scores = [
        s["score"]
        for row in DatasetRunResult.objects.filter(run_id=run.pk).values_list("scores", flat=True)
        for s in row
    ]
    assert all(s == 1.0 for s in scores) and len(scores) == items * len(scorer), scores[:3]
    rows = rows_of(run)
    return {
        "items": items,
        "concurrency": concurrency,
        "scorer": scorer[0] if scorer else None,
        "seconds": wall,
        "us_per_item": wall / items * 1e6,
        "rows_span_s": rows["span_s"],
    }


if __name__ == "__main__":
    call_command("migrate", verbosity=0)
    scenario, *args = sys.argv[1:]
    result = globals()[scenario](*[int(a) for a in args])
    print("RESULT " + json.dumps(result, default=str))
    if WorkerProcess.logs:
        shutil.rmtree(WorkerProcess.logs, ignore_errors=True)
