"""One benchmark scenario per invocation, on the database the environment
selects (SQLITE_PATH or DATABASE_URL). Run through bench/run_all.py, which
gives each scenario a fresh database and prints the table."""

import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
os.environ.setdefault("PLAYGROUND_PLUGIN_MODULES", "bench.targets")
os.environ.setdefault("PLAYGROUND_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from datasets_app import services  # noqa: E402
from datasets_app.models import DatasetItem, DatasetRun, DatasetRunResult  # noqa: E402
from datasets_app.runs.tasks import WORKER_ID, run_chunk  # noqa: E402


def make_dataset(items: int):
    dataset = services.dataset_create(name=f"bench {items}")
    batch = 5000
    # Add in bulk batches: each is one dataset version, all live at the last one.
    for start in range(0, items, batch):
        services.items_bulk_create(
            dataset=dataset,
            items=[{"input": {"n": n, "text": f"question {n}"}, "expectedOutput": n} for n in range(start, min(items, start + batch))],
        )
    return dataset


def execute_in_process(run: DatasetRun) -> None:
    for chunk_id in run.chunks.order_by("index").values_list("id", flat=True):
        run_chunk(chunk_id=chunk_id, worker_id=WORKER_ID)


def bulk_insert_floor(dataset, rows: int) -> float:
    """Seconds for a bare bulk_create of `rows` result rows: the floor a run cannot beat."""
    run = DatasetRun.objects.create(dataset=dataset, dataset_version=dataset.version, target_type="callable",
                                    target_id="noop", total_items=rows)
    item_ids = list(DatasetItem.objects.filter(dataset=dataset).values_list("id", flat=True)[:rows])
    now = timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        DatasetRunResult.objects.bulk_create(
            [DatasetRunResult(run=run, item_id=i, item_version=1, input={"n": 1}, output=None, expected_output=1,
                              latency=0.1, started_at=now, completed_at=now) for i in item_ids],
            batch_size=500,
        )
    return time.perf_counter() - started


def throughput(items: int, concurrency: int) -> dict:
    dataset = make_dataset(items)
    floor = bulk_insert_floor(dataset, items)
    run = services.run_start(dataset=dataset, target_type="callable", target_id="noop",
                             max_concurrency=concurrency, enqueue=False)
    started = time.perf_counter()
    execute_in_process(run)
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    assert run.status == "completed" and run.results.count() == items, (run.status, run.results.count())
    return {"items": items, "concurrency": concurrency, "seconds": elapsed, "items_per_s": items / elapsed,
            "floor_seconds": floor, "ratio_to_floor": elapsed / floor}


def growth(items: int, concurrency: int) -> dict:
    """One size of the growth scenario: the no-op run timed alone (no floor), plus the
    rate over its first and last tenth of chunks, to show a slowdown inside the run too."""
    dataset = make_dataset(items)
    run = services.run_start(dataset=dataset, target_type="callable", target_id="noop",
                             max_concurrency=concurrency, enqueue=False)
    chunks = list(run.chunks.order_by("index").values_list("id", "item_count"))
    per_chunk: list[float] = []
    started = time.perf_counter()
    for chunk_id, _ in chunks:
        t0 = time.perf_counter()
        run_chunk(chunk_id=chunk_id, worker_id=WORKER_ID)
        per_chunk.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    assert run.status == "completed" and run.results.count() == items, (run.status, run.results.count())
    tenth = max(1, len(chunks) // 10)

    def rate(part: slice) -> float:
        return sum(n for _, n in chunks[part]) / sum(per_chunk[part])

    return {"items": items, "concurrency": concurrency, "seconds": elapsed, "items_per_s": items / elapsed,
            "chunks": len(chunks), "first_tenth_items_per_s": rate(slice(0, tenth)),
            "last_tenth_items_per_s": rate(slice(-tenth, None))}


def concurrency_efficiency(items: int, concurrency: int) -> dict:
    dataset = make_dataset(items)
    run = services.run_start(dataset=dataset, target_type="callable", target_id="sleep-20ms",
                             max_concurrency=concurrency, enqueue=False)
    started = time.perf_counter()
    execute_in_process(run)
    elapsed = time.perf_counter() - started
    ideal = items * 0.02 / concurrency
    return {"items": items, "concurrency": concurrency, "seconds": elapsed, "ideal_seconds": ideal,
            "ratio_to_ideal": elapsed / ideal}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def memory(items: int) -> dict:
    dataset = make_dataset(items)
    run = services.run_start(dataset=dataset, target_type="callable", target_id="noop", max_concurrency=8,
                             enqueue=False)
    samples: list[tuple[int, float]] = []
    done = threading.Event()

    def sample():
        from django.db import connection

        while not done.wait(0.5):
            written = DatasetRun.objects.values_list("succeeded_count", flat=True).get(pk=run.pk)
            samples.append((written, rss_mb()))
        connection.close()

    sampler = threading.Thread(target=sample, daemon=True)
    before = rss_mb()
    sampler.start()
    execute_in_process(run)
    done.set()
    sampler.join()
    marks = {}
    for fraction in (0.2, 0.4, 0.6, 0.8, 1.0):
        eligible = [rss for written, rss in samples if written >= fraction * items * 0.98]
        marks[f"{int(fraction * 100)}%"] = round(eligible[0] if eligible else rss_mb(), 1)
    return {"items": items, "rss_before_mb": round(before, 1), "rss_at_progress_mb": marks,
            "peak_mb": round(max([rss for _, rss in samples] + [rss_mb()]), 1)}


def prepare_for_workers(items: int) -> dict:
    dataset = make_dataset(items)
    run = services.run_start(dataset=dataset, target_type="callable", target_id="noop", max_concurrency=16)
    return {"run_id": str(run.id)}


if __name__ == "__main__":
    call_command("migrate", verbosity=0)
    scenario, *args = sys.argv[1:]
    result = globals()[scenario](*[int(a) for a in args])
    print("RESULT " + json.dumps(result))
