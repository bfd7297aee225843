"""Real `manage.py run_worker` processes on the test database: items that kill
or wedge their worker, supervision, and a drain on SIGTERM. Run on SQLite
and, in `make test`'s second pass, on PostgreSQL."""

import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.db.models import Count

from datasets_app import services
from datasets_app.models import DatasetRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker_processes]

ROOT = Path(__file__).resolve().parents[3]


def worker_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or "5432"
        env["DATABASE_URL"] = f"postgres://{quote(db['USER'] or '', safe='')}@{host}:{port}/{db['NAME']}"
    else:
        env["SQLITE_PATH"] = str(db["NAME"])
    env.update(
        PLAYGROUND_PLUGIN_MODULES="datasets_app.tests.runs.plugins",
        PLAYGROUND_LEASE_SECONDS="2",
        PLAYGROUND_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class WorkerProcess:
    def __init__(self, *args: str, **env: str):
        self.log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--skip-checks", *args],
            cwd=ROOT,
            env=worker_env(**env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        Path(self.log.name).unlink(missing_ok=True)
        return self.process.returncode


@pytest.fixture(autouse=True)
def _plugins():
    """Workers load the test targets through PLAYGROUND_PLUGIN_MODULES; this
    process needs them too, to start runs of them."""
    importlib.import_module("datasets_app.tests.runs.plugins")


@pytest.fixture
def workers():
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        started.append(WorkerProcess(*args, **env))
        return started[-1]

    yield start
    for worker in started:
        try:
            worker.stop()
        except Exception:
            worker.process.kill()


def wait_for_terminal(run: DatasetRun, worker: WorkerProcess, timeout: float = 120) -> DatasetRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_terminal:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run still {run.status} after {timeout} s:\n{worker.output()}")


def assert_every_item_exactly_once(run: DatasetRun, items: int) -> None:
    per_item = run.results.values("item_id", "repetition").annotate(n=Count("id"))
    assert per_item.count() == items and {row["n"] for row in per_item} == {1}
    assert run.succeeded_count + run.failed_count == items


def test_an_item_that_kills_its_worker_fails_after_two_crashes_alone(make_dataset, workers):
    dataset = make_dataset(items=[{"input": f"item {i}"} for i in range(12)] + [{"input": "poison"}])
    run = services.run_start(dataset=dataset, target_type="callable", target_id="test-poison", max_concurrency=4)
    supervisor = workers("--processes", "1")

    run = wait_for_terminal(run, supervisor)

    assert run.status == "completed"
    assert_every_item_exactly_once(run, 13)
    assert (run.succeeded_count, run.failed_count) == (12, 1)
    assert run.results.get(input="poison").error == (
        "The worker crashed 4 times while running this item; it was not run again"
    )


def test_an_item_that_blocks_the_event_loop_loses_its_worker_not_the_run(make_dataset, workers):
    dataset = make_dataset(items=[{"input": f"item {i}"} for i in range(8)] + [{"input": "block"}])
    run = services.run_start(dataset=dataset, target_type="callable", target_id="test-loop-blocker", max_concurrency=3)
    supervisor = workers("--processes", "1", PLAYGROUND_LOOP_STALL_SECONDS="1")

    run = wait_for_terminal(run, supervisor, timeout=180)

    assert run.status == "completed"
    assert_every_item_exactly_once(run, 9)
    assert run.results.get(input="block").error.startswith("The worker crashed 4 times")  # type: ignore[union-attr]


def test_sigterm_drains_and_releases_the_chunk_for_the_next_worker(make_dataset, workers, settings):
    dataset = make_dataset(items=[{"input": f"item {i}"} for i in range(200)])
    run = services.run_start(dataset=dataset, target_type="callable", target_id="test-slow", max_concurrency=2)
    first = workers()
    deadline = time.monotonic() + 60
    while run.results.count() < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.stop() == 0
    chunk = run.chunks.get()
    assert (chunk.status, chunk.lease_owner, chunk.crash_counts) == ("pending", "", {})
    assert run.results.count() < 200

    run = wait_for_terminal(run, workers())

    assert run.status == "completed"
    assert_every_item_exactly_once(run, 200)


def test_a_killed_workers_chunk_is_taken_over_at_once_not_when_its_lease_runs_out(make_dataset, workers):
    dataset = make_dataset(items=[{"input": f"item {i}"} for i in range(200)])
    run = services.run_start(dataset=dataset, target_type="callable", target_id="test-slow", max_concurrency=2)
    first = workers(PLAYGROUND_LEASE_SECONDS="300")
    deadline = time.monotonic() + 60
    while run.results.count() < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.process.kill()  # kill -9; left unreaped, a zombie, as under a busy supervisor
    chunk = run.chunks.get()
    assert chunk.lease_owner.startswith(f"{socket.gethostname()}:{first.process.pid}:")

    # The lease has minutes to go: only seeing its holder dead lets a new worker in.
    run = wait_for_terminal(run, workers(PLAYGROUND_LEASE_SECONDS="300"), timeout=90)

    assert run.status == "completed"
    assert_every_item_exactly_once(run, 200)
    chunk.refresh_from_db()
    assert chunk.attempts == 2 and chunk.lease_owner != f"{socket.gethostname()}:{first.process.pid}"


def test_supervised_workers_export_every_stored_trace_once(make_dataset, workers, receiver, monkeypatch):
    """With OTLP on, the supervisor runs a separate exporter process: each
    stored trace reaches the receiver exactly once, in OpenInference shape."""
    server = receiver()
    monkeypatch.setenv("PLAYGROUND_OTEL_PROJECT", "evals-under-test")
    dataset = make_dataset(items=[{"input": f"item {i}"} for i in range(30)])
    run = services.run_start(dataset=dataset, target_type="callable", target_id="test-slow", max_concurrency=5)
    supervisor = workers("--processes", "1")

    run = wait_for_terminal(run, supervisor)
    deadline = time.monotonic() + 60
    while len(server.deliveries()) < 30 and time.monotonic() < deadline:
        time.sleep(0.1)

    stored = set(run.results.values_list("trace_id", flat=True))
    assert server.deliveries() == {trace_id: 1 for trace_id in stored}
    resource = {kv.key: kv.value.string_value for kv in server.accepted[0].resource_spans[0].resource.attributes}
    assert resource["openinference.project.name"] == "evals-under-test"
    kinds = {
        kv.value.string_value
        for span in server.spans()
        for kv in span.attributes
        if kv.key == "openinference.span.kind"
    }
    assert kinds == {"CHAIN"}
