"""Does watching a run slow it down? The production web server (granian, WSGI, 2
processes, as `make run` starts it) and one `run_worker` supervisor, a 10,000-item
run of `agent/keyword-agent` (each item awaits `context.delayMs`), and 50 clients
that each poll the run's results fragment every 2 s, as the run page does, plus an
API read of the run, until the run ends. Then the same run again with nobody
watching. Prints figures; asserts nothing. Not part of `make bench`.

    .venv/bin/python bench/load_poll.py                       # SQLite, a fresh temp file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_b .venv/bin/python bench/load_poll.py
    .venv/bin/python bench/load_poll.py --items 2000 --pollers 10     # a smoke check

The servers get DJANGO_DEBUG=0, a bench-only DJANGO_SECRET_KEY, DJANGO_HTTPS=0 (plain
http on 127.0.0.1) and PLAYGROUND_API_RATE=1000000/min (50 clients of one user would
otherwise meet the per-user API throttle). On PostgreSQL the database must exist and
should be empty (`createdb -h 127.0.0.1 -U postgres bench_b`). When granian is not in
the virtualenv, `manage.py runserver --noreload` serves instead, and the output says so.

Durations are the run's own: first item started → run completed, from its row
(`started_at`, `completed_at`). Each poller starts at a random moment in the first
period, so the requests are spread out rather than arriving in bursts of 50.
"""

import argparse
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from poll_cost import (
    _TEMP_DB,
    bench_user,
    load,
    machine,
    make_dataset,
    prepare_database,
)  # sets up Django (and the env below)

import httpx
from django.test import Client

from datasets_app import services
from datasets_app.models import DatasetRun

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
GRANIAN = Path(PYTHON).parent / "granian"
TERMINAL = {str(s) for s in DatasetRun.TERMINAL_STATUSES}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k not in {"PLAYGROUND_LEASE_SECONDS", "PLAYGROUND_CHUNK_SIZE"}}
    return {**keep, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "PLAYGROUND_LOG_LEVEL": "WARNING"}


class Servers:
    """The web server and the worker, with their logs in a temp dir (kept if asked)."""

    def __init__(self, port: int, logs: Path) -> None:
        self.port = port
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []
        if GRANIAN.exists():
            self.web = "granian --interface wsgi --workers 2 --blocking-threads 4"
            web = [str(GRANIAN), "--interface", "wsgi", "--workers", "2", "--blocking-threads", "4"]
            web += ["--host", "127.0.0.1", "--port", str(port), "--no-ws", "playground.wsgi:application"]
        else:
            self.web = "manage.py runserver --noreload (granian is not installed in the virtualenv)"
            web = [PYTHON, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"]
        self.start("web", web)
        self.start("worker", [PYTHON, "manage.py", "run_worker", "--processes", "1"])

    def start(self, name: str, cmd: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "w")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))

    def wait_ready(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.logs / name}.log")
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the web server did not answer within {timeout} s; see {self.logs}/web.log")

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Poller(threading.Thread):
    """One watcher of the run page: every `every` seconds the results fragment,
    then the run through the API, until the API says the run ended."""

    def __init__(self, base: str, cookies: dict[str, str], run: DatasetRun, every: float, stop: threading.Event):
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base, cookies=cookies, timeout=30)
        self.fragment = f"/datasets/{run.dataset_id}/runs/{run.pk}/results/"
        self.api = f"/api/datasets/{run.dataset_id}/runs/{run.pk}"
        self.every = every
        self.stop = stop
        self.times: dict[str, list[float]] = {"fragment": [], "api": []}
        self.errors: list[str] = []

    def get(self, kind: str, url: str, **headers: str) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = self.client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return None
        self.times[kind].append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            self.errors.append(f"{kind}: HTTP {response.status_code}")
            return None
        return response

    def run(self) -> None:
        if self.stop.wait(random.uniform(0, self.every)):
            return
        while True:
            tick = time.monotonic()
            self.get("fragment", self.fragment, **{"HX-Request": "true"})
            answer = self.get("api", self.api)
            if answer is not None and answer.json().get("status") in TERMINAL:
                return
            if self.stop.wait(max(0.0, self.every - (time.monotonic() - tick))):
                return


def start_run(dataset, args) -> DatasetRun:
    return services.run_start(
        dataset=dataset,
        target_type="agent",
        target_id="keyword-agent",
        scorer_ids=["exact-match", "contains"],
        max_concurrency=args.concurrency,
    )


def wait_terminal(run: DatasetRun, timeout: float = 900) -> DatasetRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in TERMINAL:
            return run
        time.sleep(0.2)
    raise TimeoutError(f"run {run.pk} still {run.status} after {timeout} s")


def duration(run: DatasetRun) -> float:
    assert run.started_at and run.completed_at
    return (run.completed_at - run.started_at).total_seconds()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest rank
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=float, default=100, help="each item's context.delayMs")
    parser.add_argument("--concurrency", type=int, default=25, help="the run's maxConcurrency")
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between one poller's polls")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()

    prepare_database()
    print(f"load/poll: {machine()}")
    ideal = args.items * args.delay_ms / 1000 / args.concurrency
    print(
        f"run: {args.items:,} items of agent/keyword-agent, delayMs {args.delay_ms:g}, maxConcurrency "
        f"{args.concurrency} (ideal {ideal:.0f} s); {args.pollers} pollers, each every {args.every:g} s: "
        f"results fragment + GET the run (API)"
    )
    user, project = bench_user(f"load-bench-{os.getpid()}")
    dataset = make_dataset("load/poll bench", 0, project)
    services.items_bulk_create(
        dataset=dataset,
        items=[
            {
                "input": f"What is the capital of France? ({n})",
                "expected_output": "Paris",
                "context": {"delayMs": args.delay_ms},
            }
            for n in range(args.items)
        ],
    )
    browser = Client()
    browser.force_login(user)  # a session row every server process can read
    cookies = {name: morsel.value for name, morsel in browser.cookies.items()}

    logs = Path(tempfile.mkdtemp(prefix="load-poll-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    servers = Servers(port, logs)
    try:
        servers.wait_ready(f"{base}/accounts/login/")
        print(f"web: {servers.web}; worker: manage.py run_worker --processes 1; logs {logs}")
        with httpx.Client(base_url=base, cookies=cookies) as warm:  # both server processes import the views
            for _ in range(10):
                warm.get(f"/api/datasets/{dataset.pk}/runs")
        time.sleep(2)  # the worker idle-polling

        stop = threading.Event()
        run = start_run(dataset, args)
        pollers = [Poller(base, cookies, run, args.every, stop) for _ in range(args.pollers)]
        for poller in pollers:
            poller.start()
        run = wait_terminal(run)
        stop.set()
        for poller in pollers:
            poller.join(timeout=60)
        watched = duration(run)
        fragment = [t for p in pollers for t in p.times["fragment"]]
        api = [t for p in pollers for t in p.times["api"]]
        errors = [e for p in pollers for e in p.errors]
        print(
            f"\nwith {args.pollers} pollers: run {run.status}, {run.succeeded_count:,} succeeded, {run.failed_count:,} failed"
        )
        print(f"  run duration (first start → completed): {watched:.1f} s")
        print(
            f"  requests: {len(fragment) + len(api):,} ({len(fragment):,} fragment, {len(api):,} API), errors: {len(errors)}"
        )
        for error in sorted(set(errors))[:5]:
            print(f"    {errors.count(error)} × {error}")
        print(
            f"  fragment ms: p50 {statistics.median(fragment):.0f}, p95 {pct(fragment, 0.95):.0f}, "
            f"max {max(fragment):.0f}"
        )
        print(f"  API run ms:  p50 {statistics.median(api):.0f}, p95 {pct(api, 0.95):.0f}, max {max(api):.0f}")

        time.sleep(2)
        alone = wait_terminal(start_run(dataset, args))
        unwatched = duration(alone)
        print(f"\nwith no pollers: run {alone.status}, {alone.succeeded_count:,} succeeded")
        print(f"  run duration (first start → completed): {unwatched:.1f} s")
        print(f"\nslowdown from watching: {watched / unwatched:.2f}× ({watched:.1f} s / {unwatched:.1f} s)")
        print(load())
    finally:
        servers.stop()
        if not args.keep_logs:
            for path in logs.iterdir():
                path.unlink()
            logs.rmdir()
        if _TEMP_DB:
            for path in _TEMP_DB.parent.iterdir():
                path.unlink()
            _TEMP_DB.parent.rmdir()


if __name__ == "__main__":
    main()
