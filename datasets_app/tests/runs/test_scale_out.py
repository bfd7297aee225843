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
        "PLAYGROUND_PLUGIN_MODULES": "datasets_app.tests.runs.plugins",
        "PLAYGROUND_LOG_LEVEL": "WARNING",
        "PGAPPNAME": f"test-worker-{name}",  # lets the test see when the worker is connected
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--skip-checks", "--worker-id", name],
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


def wait_until_connected(*names: str) -> None:
    """Wait until every named worker has a database connection, so that no
    worker gets a head start on the run while another is still importing."""
    wanted = {f"test-worker-{name}" for name in names}

    def connected():
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = current_database()")
            return wanted <= {row[0] for row in cursor.fetchall()}

    assert wait_for(connected, timeout=60)


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
def start_run(make_dataset, settings):
    """A 300-item run in chunks of 30; each chunk takes about half a second,
    so a worker is almost always in the middle of one."""
    settings.PLAYGROUND_CHUNK_SIZE = 30
    dataset = make_dataset(
        items=[{"input": {"question": f"capital of france #{i}"}, "context": {"delayMs": 30}} for i in range(300)]
    )

    def start() -> DatasetRun:
        return services.run_start(dataset=dataset, target_type="agent", target_id="keyword-agent", max_concurrency=2)

    return start


def test_two_worker_processes_share_one_run(start_run):
    workers = [start_worker("a"), start_worker("b")]
    try:
        wait_until_connected("a", "b")
        run = start_run()
        assert wait_for(lambda: DatasetRun.objects.get(pk=run.pk).is_terminal)
    finally:
        stop(workers)
    run.refresh_from_db()
    assert run.status == "completed"
    assert_every_item_exactly_once(run, 300)
    # Both processes executed chunks of it.
    assert len(set(run.chunks.values_list("lease_owner", flat=True))) == 2


def test_a_killed_worker_loses_nothing(start_run):
    victim, survivor = start_worker("victim"), start_worker("survivor")
    try:
        wait_until_connected("victim", "survivor")
        run = start_run()
        held_by_victim = RunChunk.objects.filter(run=run, status="running", lease_owner__endswith=":victim")
        assert wait_for(lambda: held_by_victim.exists() and run.results.count() >= 30)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert wait_for(lambda: DatasetRun.objects.get(pk=run.pk).is_terminal)
    finally:
        stop([victim, survivor])
    run.refresh_from_db()
    assert run.status == "completed"
    assert_every_item_exactly_once(run, 300)
    # The chunk the victim held was taken over after its lease ran out.
    chunks = list(run.chunks.values_list("index", "lease_owner", "attempts"))
    assert any(attempts >= 2 for _, _, attempts in chunks), chunks


def test_a_run_survives_all_its_workers_dying(start_run):
    first = start_worker("first")
    workers = [first]
    try:
        wait_until_connected("first")
        run = start_run()
        assert wait_for(lambda: run.results.count() >= 30)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert run.results.count() < 300
        workers.append(start_worker("replacement"))
        assert wait_for(lambda: DatasetRun.objects.get(pk=run.pk).is_terminal)
    finally:
        stop(workers)
    run.refresh_from_db()
    assert run.status == "completed"
    assert_every_item_exactly_once(run, 300)


def test_workers_survive_their_database_connections_being_terminated(start_run):
    workers = [start_worker("a"), start_worker("b")]
    try:
        wait_until_connected("a", "b")
        run = start_run()
        assert wait_for(lambda: run.results.count() >= 30)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'test-worker-%%' AND datname = current_database()"
            )
            assert cursor.rowcount >= 2
        assert wait_for(lambda: DatasetRun.objects.get(pk=run.pk).is_terminal)
        assert all(worker.poll() is None for worker in workers), "a worker exited on a database error"
    finally:
        stop(workers)
    run.refresh_from_db()
    assert run.status == "completed"
    assert_every_item_exactly_once(run, 300)


def test_repeated_kills_lose_and_repeat_nothing(start_run):
    """kill -9 of whichever worker holds chunks, again and again: every item
    ends with exactly one result and none is failed for crashing."""
    names = iter(f"w{i}" for i in range(100))
    workers = {name: start_worker(name) for name in (next(names), next(names))}
    try:
        wait_until_connected(*workers)
        run = start_run()
        for _ in range(4):
            done = run.results.count()
            assert wait_for(lambda: run.results.count() >= done + 20 or DatasetRun.objects.get(pk=run.pk).is_terminal)
            owner = RunChunk.objects.filter(run=run, status="running").values_list("lease_owner", flat=True).first()
            holder = (owner or "").split(":", 3)[-1]  # host:pid:pid-namespace:NAME
            if holder not in workers:
                break
            workers[holder].send_signal(signal.SIGKILL)
            workers.pop(holder).wait()
            replacement = next(names)
            workers[replacement] = start_worker(replacement)
        assert wait_for(lambda: DatasetRun.objects.get(pk=run.pk).is_terminal)
    finally:
        stop(list(workers.values()))
    run.refresh_from_db()
    assert run.status == "completed"
    assert_every_item_exactly_once(run, 300)
    assert not run.results.filter(error__isnull=False).exists()


def test_a_result_the_database_refuses_fails_only_its_item(make_dataset, run_worker):
    """PostgreSQL's jsonb cannot hold a NUL character: the scorer reason that
    carries one is refused, and only that item records the refusal."""
    from datasets_app.runs import registry

    def nul_reason(*, input, output, expected):
        return {"score": 1.0, "reason": "bad\x00byte" if input == "nul" else "fine"}

    registry.register_scorer("nul-reason")(nul_reason)
    try:
        dataset = make_dataset(items=[{"input": "nul"}] + [{"input": f"ok {i}"} for i in range(9)])
        run = services.run_start(dataset=dataset, target_type="workflow", target_id="echo", scorer_ids=["nul-reason"])
        run = run_worker(run.id)
    finally:
        registry.unregister_scorer("nul-reason")
    assert run.status == "completed"
    assert (run.succeeded_count, run.failed_count) == (9, 1)
    assert run.results.get(input="nul").error == "The database refused this item's result"
