"""A worker process: one event loop that claims chunks, runs them, writes
their outcomes and keeps their leases.

    claim (control thread) ─▶ ChunkRunner ─ items ─▶ write queue ─▶ writer (write thread)
                               ▲ heartbeat: renew leases, notice cancels

The Django ORM is synchronous, so database work runs on two threads of its
own: "control" (claims, lease renewals, status polls, frontier writes: small
and frequent) and "write" (result batches), so a large batch never delays a
heartbeat. A lost database connection is retried with backoff; the worker
never exits on a database error. A worker holds up to `MAX_FEEDING` chunks
that still start items, so a run's concurrency never drains between chunks.
"""

import asyncio
import functools
import gc
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from ..models import DatasetRun
from . import export, lifecycle, recording
from .chunk import ChunkRunner, Stop
from .clients import close_clients
from .holders import process_key
from .isolation import pool
from .item import Outcome

logger = logging.getLogger(__name__)


MAX_FEEDING = 2  # chunks still starting items, per worker
MAX_HELD = 8  # chunks held at once (the rest finish their last items)
IDLE_POLL = 0.05  # seconds between looks for new work when idle (one indexed query)
STATUS_POLL = 0.25  # seconds between looks at the status of the runs held (cancel)
WRITE_BATCH_MAX = 500
WRITE_GATHER = 0.05  # seconds a batch waits for more items while a chunk still starts items
DRAIN_DB_PATIENCE = 10.0  # seconds a draining worker keeps retrying a database that is gone


def new_worker_id(name: str | None = None) -> str:
    """Identifies this process in chunk leases: host (for the humans reading
    admin), pid and PID namespace (so a worker on the same host can tell that
    it died), then `name` or a random part; at most the 100 characters a lease
    owner holds."""
    return f"{process_key()}:{name or uuid.uuid4().hex[:6]}"[:100]


def _db_call[T](func: Callable[..., T], args: tuple, kwargs: dict) -> T:
    try:
        return func(*args, **kwargs)
    except (OperationalError, InterfaceError):
        connection.close()  # a broken connection is replaced on the next call
        raise


def _close_connection() -> None:
    """Close the calling thread's connection (`connection` resolves per thread)."""
    connection.close()


class Worker:
    def __init__(
        self,
        *,
        worker_id: str | None = None,
        until_idle: bool = False,
        run_id: Any = None,
        handle_signals: bool = False,
        export_thread: bool = True,
    ):
        self.worker_id = worker_id or new_worker_id()
        self.until_idle = until_idle  # exit when nothing is left to claim (tests, run_dataset)
        self.run_id = run_id  # claim only this run's chunks
        self.runners: set[ChunkRunner] = set()
        self._slots: dict[Any, asyncio.Semaphore] = {}
        self.stopping = False
        self.handle_signals = handle_signals  # SIGTERM/SIGINT drain; a second one exits at once
        self.export = export.export_enabled()  # write outbox rows for the stored traces
        # Drain the outbox from a thread of this process, unless a dedicated
        # exporter process does (`run_worker --processes`), off this loop's CPU.
        self.export_thread = export_thread

    # -- database access ----------------------------------------------------------------

    async def db[T](self, func: Callable[..., T], *args: Any, control: bool = False, **kwargs: Any) -> T:
        """Run ORM code on a database thread, retrying lost connections with backoff."""
        executor = self._control_thread if control else self._write_thread
        delay = 0.1
        failing_since = None
        while True:
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    executor, functools.partial(_db_call, func, args, kwargs)
                )
            except (OperationalError, InterfaceError) as exc:
                failing_since = failing_since or time.monotonic()
                if self.stopping and time.monotonic() - failing_since > DRAIN_DB_PATIENCE:
                    raise  # shutting down with no database: leases expire, others take over
                logger.warning("Database error in %s (%s); retrying in %.1f s", func.__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def run_slots(self, run: DatasetRun) -> asyncio.Semaphore:
        """The run's concurrency limit in this worker, shared by all its chunks here."""
        if run.pk not in self._slots:
            self._slots[run.pk] = asyncio.Semaphore(max(1, run.max_concurrency))
        return self._slots[run.pk]

    # -- the process ------------------------------------------------------------------------

    def run(self) -> None:
        """Run until stopped (or, with until_idle, until no work is left)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.serve())
            return
        # Called under a running loop (a notebook, Playwright's sync API):
        # this worker's loop gets a thread of its own.
        thread = threading.Thread(target=asyncio.run, args=(self.serve(),), name="worker-loop")
        thread.start()
        thread.join()

    async def serve(self) -> None:
        # Everything loaded so far (Django, the apps, the plugins) lives as long as
        # the process: move it out of the cyclic collector's sight. A full
        # collection otherwise walks all of it and stalls the event loop for
        # ~130 ms here, with every item in flight. Once per process: freezing again
        # for a later worker (tests, notebooks) would pin whatever lives then for good.
        if not gc.get_freeze_count():
            gc.collect()
            gc.freeze()
        self.wake = asyncio.Event()
        self.write_queue: asyncio.Queue[tuple[ChunkRunner, Outcome]] = asyncio.Queue()
        self._control_thread = ThreadPoolExecutor(1, thread_name_prefix="db-control")
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="db-write")
        stop_threads = threading.Event()
        self._last_tick = time.monotonic()
        if self.handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                asyncio.get_running_loop().add_signal_handler(signum, self._on_signal)
        threading.Thread(target=self._watch_loop, args=(stop_threads,), daemon=True, name="loop-watchdog").start()
        exporter = export.start_exporter_thread(stop_threads) if self.export and self.export_thread else None
        helpers = [asyncio.create_task(c) for c in (self._write_forever(), self._heartbeat(), self._tick())]
        try:
            await self._claim_forever()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            stop_threads.set()
            if exporter is not None:
                await asyncio.to_thread(exporter.join, 12)  # let an in-flight batch finish
            if self.export and self.until_idle:
                await self.db(export.flush_outbox, timeout=30)  # a short-lived worker sends what it stored
            await close_clients()
            pool.close()
            for thread in (self._control_thread, self._write_thread):
                thread.submit(_close_connection).result()
                thread.shutdown()

    def stop(self) -> None:
        """Drain: stop claiming, let in-flight items finish (up to a grace
        period), write them, and release every chunk for another worker."""
        if self.stopping:
            return
        logger.info("Worker %s draining %d chunk(s)", self.worker_id, len(self.runners))
        self.stopping = True
        for runner in self.runners:
            runner.stop(Stop.SHUTDOWN)
        self.wake.set()

    def _on_signal(self) -> None:
        if self.stopping:
            os._exit(1)
        self.stop()

    async def _claim_forever(self) -> None:
        tasks: set[asyncio.Task] = set()
        while True:
            if self.stopping:
                break
            feeding = sum(1 for r in self.runners if r.feeding and not r.feeding_tail)
            if len(self.runners) < MAX_HELD:
                # A busy worker still takes over a dead worker's chunks at once:
                # waiting for a fresh worker's start-up would stall those items.
                claim = await self.db(
                    lifecycle.claim_chunk,
                    worker_id=self.worker_id,
                    run_id=self.run_id,
                    takeovers_only=feeding >= MAX_FEEDING,
                    control=True,
                )
                if claim is not None:
                    runner = ChunkRunner(self, claim)
                    self.runners.add(runner)
                    task = asyncio.create_task(runner.execute())
                    tasks.add(task)
                    task.add_done_callback(functools.partial(self._runner_done, runner, tasks))
                    continue
                if self.until_idle and not self.runners and await self._nothing_left():
                    break
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=IDLE_POLL)
            except TimeoutError:
                pass
        if tasks:
            await asyncio.wait(tasks)

    async def _nothing_left(self) -> bool:
        """With `run_id`, wait for the run itself to end: other workers may
        hold its last chunks, and one of them may die."""
        if self.run_id is None:
            return True
        statuses = await self.db(lifecycle.run_statuses, [self.run_id], control=True)
        return statuses.get(self.run_id) not in DatasetRun.ACTIVE_STATUSES

    def _runner_done(self, runner: ChunkRunner, tasks: set, task: asyncio.Task) -> None:
        tasks.discard(task)
        self.runners.discard(runner)
        if not any(r.run.pk == runner.run.pk for r in self.runners):
            self._slots.pop(runner.run.pk, None)
        if not task.cancelled() and task.exception() is not None:
            # Its lease is no longer renewed: another worker takes the chunk over.
            logger.error(
                "Chunk %s of run %s failed in this worker", runner.chunk.pk, runner.run.pk, exc_info=task.exception()
            )
        self.wake.set()

    async def _write_forever(self) -> None:
        """Store finished items in batches: whatever finished while the last
        batch was being written goes into the next one (group commit)."""
        while True:
            batch = [await self.write_queue.get()]
            if self.write_queue.qsize() < WRITE_BATCH_MAX and any(r.feeding for r in self.runners):
                # A transaction costs milliseconds whatever its size: let items finishing now join it.
                await asyncio.sleep(WRITE_GATHER)
            while len(batch) < WRITE_BATCH_MAX and not self.write_queue.empty():
                batch.append(self.write_queue.get_nowait())
            by_runner: dict[ChunkRunner, list[Outcome]] = {}
            for runner, outcome in batch:
                by_runner.setdefault(runner, []).append(outcome)
            for runner, outcomes in by_runner.items():
                written = None
                try:
                    if not runner.discarding:
                        written = await self.db(
                            recording.record_outcomes,
                            chunk_id=runner.chunk.pk,
                            run_id=runner.run.pk,
                            worker_id=self.worker_id,
                            outcomes=outcomes,
                            export=self.export,
                        )
                except Exception:
                    # Not the database's refusal of a row (that is handled per item) but
                    # an engine bug: give the chunk up rather than stop writing for all.
                    logger.exception("Writing %d outcome(s) of chunk %s failed", len(outcomes), runner.chunk.pk)
                    runner.stop(Stop.LEASE_LOST)
                runner.acknowledge(len(outcomes), written)

    async def _heartbeat(self) -> None:
        """Renew leases about five times per lease period; look at the held
        runs' status every STATUS_POLL, so a cancel stops items within 0.5 s."""
        renew_every = max(STATUS_POLL, settings.PLAYGROUND_LEASE_SECONDS / 5)
        next_renewal = 0.0
        while True:
            await asyncio.sleep(STATUS_POLL)
            try:
                next_renewal = await self._beat(next_renewal, renew_every)
            except Exception:
                logger.exception("Heartbeat failed; trying again")

    async def _beat(self, next_renewal: float, renew_every: float) -> float:
        runners = list(self.runners)
        if runners:
            statuses = await self.db(lifecycle.run_statuses, {r.run.pk for r in runners}, control=True)
            for runner in runners:
                if statuses.get(runner.run.pk) != DatasetRun.Status.RUNNING:
                    runner.stop(Stop.RUN_FINISHED)
        if runners and time.monotonic() >= next_renewal:
            next_renewal = time.monotonic() + renew_every
            held = await self.db(
                lifecycle.renew_leases, chunk_ids=[r.chunk.pk for r in runners], worker_id=self.worker_id, control=True
            )
            for runner in runners:
                if runner.chunk.pk not in held:
                    runner.stop(Stop.LEASE_LOST)
        return next_renewal

    async def _tick(self) -> None:
        while True:
            self._last_tick = time.monotonic()
            await asyncio.sleep(0.2)

    def _watch_loop(self, stop: threading.Event) -> None:
        """User code that blocks the event loop stops heartbeats, so its chunk
        is taken over; past PLAYGROUND_LOOP_STALL_SECONDS this process exits,
        and its supervisor starts a fresh one."""
        while not stop.wait(0.5):
            stalled = time.monotonic() - self._last_tick
            if stalled > settings.PLAYGROUND_LOOP_STALL_SECONDS:
                logger.critical("Event loop blocked for %.0f s by user code: exiting", stalled)
                os._exit(70)
