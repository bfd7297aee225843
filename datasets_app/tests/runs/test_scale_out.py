"""Scale-out and crash recovery with real worker processes on PostgreSQL.

Two `manage.py run_worker` processes share one run; one of them is killed
with SIGKILL in the middle. Every item must end with exactly one result.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count

from datasets_app import services
from datasets_app.models import DatasetRun, RunChunk

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]


def start_worker(name: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "PLAYGROUND_LEASE_SECONDS": "2",
        "PLAYGROUND_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--skip-checks", "--interval", "0.1", "--worker-id", name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def stop(workers):
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


def assert_every_item_exactly_once(run: DatasetRun, items: int):
    run.refresh_from_db()
    per_item = run.results.values("item_id").annotate(n=Count("id"))
    assert per_item.count() == items
    assert {row["n"] for row in per_item} == {1}
    assert run.succeeded_count + run.failed_count == run.results.count() == items


@pytest.fixture
def big_run(make_dataset, settings):
    settings.PLAYGROUND_CHUNK_SIZE = 50
    dataset = make_dataset(
        items=[{"input": {"question": f"capital of france #{i}"}, "context": {"delayMs": 10}} for i in range(600)]
    )
    return services.run_start(dataset=dataset, target_type="agent", target_id="keyword-agent", max_concurrency=4)


def test_two_worker_processes_share_one_run(big_run):
    workers = [start_worker("worker-a"), start_worker("worker-b")]
    try:
        assert wait_for(lambda: DatasetRun.objects.get(pk=big_run.pk).is_terminal)
    finally:
        stop(workers)
    run = DatasetRun.objects.get(pk=big_run.pk)
    assert run.status == "completed"
    assert_every_item_exactly_once(run, 600)
    # Both processes executed chunks of it.
    assert len(set(run.chunks.values_list("lease_owner", flat=True))) == 2


def test_a_killed_worker_loses_nothing(big_run):
    victim, survivor = start_worker("victim"), start_worker("survivor")
    try:
        assert wait_for(lambda: DatasetRun.objects.get(pk=big_run.pk).results.count() >= 100)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert wait_for(lambda: DatasetRun.objects.get(pk=big_run.pk).is_terminal)
    finally:
        stop([victim, survivor])
    run = DatasetRun.objects.get(pk=big_run.pk)
    assert run.status == "completed"
    assert_every_item_exactly_once(run, 600)
    # The chunk the victim held was taken over after its lease ran out.
    chunks = list(RunChunk.objects.filter(run=run).values_list("index", "lease_owner", "attempts"))
    assert any(attempts >= 2 for _, _, attempts in chunks), chunks


def test_a_run_survives_all_its_workers_dying(big_run):
    first = start_worker("first")
    try:
        assert wait_for(lambda: DatasetRun.objects.get(pk=big_run.pk).results.count() >= 50)
        first.send_signal(signal.SIGKILL)
        first.wait()
        written = DatasetRun.objects.get(pk=big_run.pk).results.count()
        assert written < 600
        replacement = start_worker("replacement")
        assert wait_for(lambda: DatasetRun.objects.get(pk=big_run.pk).is_terminal)
    finally:
        stop([first] + ([replacement] if "replacement" in locals() else []))
    run = DatasetRun.objects.get(pk=big_run.pk)
    assert run.status == "completed"
    assert_every_item_exactly_once(run, 600)
