"""Run one claimed chunk inside a worker: start its items in order under the
run's concurrency limit, hand each outcome to the worker's writer, close the
chunk when every outcome is stored.

Before items start, the chunk announces how far it has gone (`frontier`):
if this worker dies, the next holder counts one crash against each announced
item that has no result. An item with two crashes runs alone, so that each
later crash is its own (no window announced for other items reaches it); at
two crashes alone it is failed without running again.
"""

import asyncio
import bisect
import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

from django.conf import settings

from ..models import DatasetRun
from . import lifecycle, registry
from .isolation import pool
from .item import ItemExecutor, Job, Outcome
from .lifecycle import ALONE_AFTER_CRASHES, MAX_ITEM_CRASHES, Claim
from .recording import Written

logger = logging.getLogger(__name__)

# Jobs announced per frontier write: at least 2 × concurrency, and for jobs
# that start faster than a frontier write returns (SQLite's writes queue behind
# the result batches), as many as start in WINDOW_SECONDS, up to MAX_WINDOW, so
# the feed does not wait on its own bookkeeping. Small windows count few
# innocents per crash; an innocent counted twice only runs alone, it is failed
# after two crashes of its own (see `lifecycle`).
ANNOUNCE_AHEAD = 16
WINDOW_SECONDS = 0.025
MAX_WINDOW = 128
YIELD_EVERY = 16  # items that ended without suspending between turns of the event loop
DRAIN_GRACE = 10.0  # seconds in-flight items get to finish when the worker shuts down


class Host(Protocol):
    """What a chunk needs from the worker that runs it (`worker.Worker`)."""

    worker_id: str
    wake: asyncio.Event  # set when the chunk stops feeding: the worker may claim more
    write_queue: asyncio.Queue  # (runner, outcome) pairs for the worker's writer

    async def db[T](self, func: Callable[..., T], *args: Any, control: bool = False, **kwargs: Any) -> T: ...

    def run_slots(self, run: DatasetRun) -> asyncio.Semaphore: ...


class Stop(Enum):
    RUN_FINISHED = "the run is no longer running"  # cancelled, or failed elsewhere
    LEASE_LOST = "another worker took the chunk over"
    SHUTDOWN = "the worker is shutting down"


class ChunkRunner:
    def __init__(self, worker: Host, claim: Claim):
        self.worker = worker
        self.chunk = claim.chunk
        self.run = claim.run
        self.feeding = True
        # Near the end of its jobs: the worker may claim the next chunk now, so
        # that its claim and job load overlap this chunk's last starts.
        self.feeding_tail = False
        self.stopped: Stop | None = None
        self.tasks: set[asyncio.Task] = set()
        self.unwritten = 0
        self.idle = asyncio.Event()  # nothing in flight and nothing waiting to be written
        self.idle.set()
        self.announced = -1
        self.announcing: asyncio.Task | None = None
        self.base_window = max(ANNOUNCE_AHEAD, 2 * self.run.max_concurrency)
        self.window = self.base_window
        self.rate_mark: tuple[int, float] | None = None  # (job index, time) at the last window's announce
        self.alone_jobs: list[int] = []  # indices into self.jobs, ascending (set in _feed)

    @property
    def discarding(self) -> bool:
        """Outcomes are dropped, not written: the fence would refuse them anyway."""
        return self.stopped in (Stop.RUN_FINISHED, Stop.LEASE_LOST)

    def stop(self, reason: Stop) -> None:
        if self.stopped is not None and self.stopped is not Stop.SHUTDOWN:
            return
        self.stopped = reason
        if reason is not Stop.SHUTDOWN:
            logger.info("Chunk %s of run %s stops: %s", self.chunk.index, self.run.id, reason.value)
            for task in self.tasks:
                task.cancel()

    # -- the chunk from claim to close ------------------------------------------------

    async def execute(self) -> None:
        try:
            await self._feed()
        except Exception:
            # An engine bug, not the user's: give the chunk up. Its lease runs
            # out and another claim resumes it, counting a crash against the
            # items in flight, so a chunk that always fails this way still ends.
            logger.exception("Chunk %s of run %s failed to feed its items", self.chunk.index, self.run.id)
            self.stop(Stop.LEASE_LOST)
        finally:
            self.feeding = False
            self.worker.wake.set()
        await self._settle()
        if self.stopped is None:
            await self.worker.db(
                lifecycle.finish_chunk, chunk_id=self.chunk.pk, run_id=self.run.pk, worker_id=self.worker.worker_id
            )
        elif self.stopped is Stop.SHUTDOWN:
            await self.worker.db(lifecycle.release_chunk, chunk_id=self.chunk.pk, worker_id=self.worker.worker_id)

    async def _feed(self) -> None:
        run = self.run
        target = registry.get_target(run.target_type, run.target_id)
        scorers = [registry.get_scorer(s) for s in run.scorer_ids]
        if target is None or None in scorers:
            missing = [] if target else [f"{run.target_type}/{run.target_id}"]
            missing += [s for s, found in zip(run.scorer_ids, scorers, strict=True) if found is None]
            await self.worker.db(
                lifecycle.fail_run, run_id=run.pk, message=f"Not registered in this worker: {', '.join(missing)}"
            )
            self.stopped = Stop.RUN_FINISHED
            return
        jobs, done = await self.worker.db(self._load_jobs, control=True)
        self.jobs = [job for job in jobs if (job.item_id, job.repetition) not in done]
        # Jobs that run alone: no window announced for the others may reach them, so a
        # crash is counted against one only while it really is the one running.
        crash_counts = self.chunk.crash_counts
        self.alone_jobs = [
            index
            for index, job in enumerate(self.jobs)
            if crash_counts and ALONE_AFTER_CRASHES <= crash_counts.get(job.key, 0) < MAX_ITEM_CRASHES
        ]
        executor = ItemExecutor(
            run_id=run.pk,
            dataset_id=run.dataset_id,
            target=target,
            scorers=scorers,  # type: ignore[arg-type]
            timeout=run.item_timeout or settings.PLAYGROUND_DEFAULT_ITEM_TIMEOUT,
            max_retries=run.max_retries,
        )
        if target.isolated or any(s.isolated for s in scorers):  # type: ignore[union-attr]
            pool.prewarm(min(run.max_concurrency, len(self.jobs)))
        slots = self.worker.run_slots(run)
        loop = asyncio.get_running_loop()
        ended_eagerly = 0
        tail_from = len(self.jobs) - 2 * self.base_window
        for index, job in enumerate(self.jobs):
            if self.stopped:
                return
            if index >= tail_from and not self.feeding_tail:
                self.feeding_tail = True
                self.worker.wake.set()
            crashes = crash_counts.get(job.key, 0) if crash_counts else 0
            if crashes >= MAX_ITEM_CRASHES:
                message = f"The worker crashed {crashes} times while running this item; it was not run again"
                self._submit(Outcome.failed_without_running(job, message))
                continue
            alone = crashes >= ALONE_AFTER_CRASHES
            if alone:
                await self._wait_until_idle()
            # The slot first: only an item about to start is announced (and
            # counted, should this worker die), not one waiting for a slot.
            await slots.acquire()
            if self.stopped or not await self._announce_through(index, alone=alone):
                slots.release()
                return
            # Started eagerly: an item that never suspends (a cheap async target,
            # inline scorers) ends right here, without being scheduled as a task.
            task = asyncio.Task(self._execute(executor, job, slots), loop=loop, eager_start=True)
            if not task.done():
                self.tasks.add(task)
                self.idle.clear()
                if alone:
                    await asyncio.wait({task})
            else:
                ended_eagerly += 1
                if ended_eagerly % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let the writer, heartbeat and other chunks in

    def _load_jobs(self) -> tuple[list[Job], set]:
        return lifecycle.chunk_jobs(self.chunk), lifecycle.finished_jobs(self.chunk)

    async def _execute(self, executor: ItemExecutor, job: Job, slots: asyncio.Semaphore) -> None:
        outcome = None
        try:
            outcome = await executor.execute(job)
        except asyncio.CancelledError:
            pass  # abandoned: nothing is written for it
        except Exception as exc:  # an engine bug: recorded on its item, the chunk goes on
            logger.exception("Item %s crashed its executor", job.item_id)
            outcome = Outcome.failed_without_running(job, f"Internal error: {exc}")
        finally:
            slots.release()
            if outcome is not None:
                self._submit(outcome)
            self.tasks.discard(asyncio.current_task())
            self._check_idle()

    def _submit(self, outcome: Outcome) -> None:
        if self.discarding:
            return
        self.unwritten += 1
        self.idle.clear()
        self.worker.write_queue.put_nowait((self, outcome))

    def acknowledge(self, count: int, written: Written | None) -> None:
        """The writer stored (or dropped) `count` of this chunk's outcomes."""
        self.unwritten -= count
        if written is Written.LEASE_LOST:
            self.stop(Stop.LEASE_LOST)
        elif written is Written.RUN_FINISHED:
            self.stop(Stop.RUN_FINISHED)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self.tasks and self.unwritten == 0:
            self.idle.set()

    async def _wait_until_idle(self) -> None:
        while self.tasks or self.unwritten:
            self.idle.clear()
            await self.idle.wait()

    async def _settle(self) -> None:
        """Wait for in-flight items and their writes; a shutdown gives them a grace period."""
        if self.stopped is Stop.SHUTDOWN and self.tasks:
            await asyncio.wait(set(self.tasks), timeout=DRAIN_GRACE)
            for task in self.tasks:
                task.cancel()
        await self._wait_until_idle()
        if self.announcing is not None:
            await asyncio.wait({self.announcing})

    # -- crash accounting -------------------------------------------------------------------

    async def _announce_through(self, index: int, *, alone: bool) -> bool:
        """Make sure job `index` is covered by the announced frontier before it
        starts, announcing the next window in the background ahead of need.
        An item running alone is announced exactly. False when the lease is gone."""
        if self.announcing is not None and (index > self.announced or alone or self.announcing.done()):
            await asyncio.wait({self.announcing})
            self.announcing = None
        if alone:
            await self._announce(index)
            self.announced = index  # the next job announces a fresh window
        elif index > self.announced:
            self._resize_window(index)
            await self._announce(self._window_end(index))
        elif (
            self.announcing is None
            and index > self.announced - self.window // 2
            and self._window_end(self.announced + 1) > self.announced
        ):
            self._resize_window(index)
            self.announcing = asyncio.create_task(self._announce(self._window_end(self.announced + 1)))
        return not self.stopped

    def _resize_window(self, index: int) -> None:
        """Size the next window by the rate jobs started at since the last one."""
        now = time.monotonic()
        if self.rate_mark is not None and index > self.rate_mark[0] and now > self.rate_mark[1]:
            rate = (index - self.rate_mark[0]) / (now - self.rate_mark[1])
            self.window = min(MAX_WINDOW, max(self.base_window, int(rate * WINDOW_SECONDS)))
        self.rate_mark = (index, now)

    def _window_end(self, start: int) -> int:
        """The last job a window from `start` announces: `window` jobs on, never past
        the end nor onto the next job that runs alone (`start - 1` when that is `start`)."""
        position = bisect.bisect_left(self.alone_jobs, start)
        next_alone = self.alone_jobs[position] if position < len(self.alone_jobs) else len(self.jobs)
        return min(start + self.window, len(self.jobs), next_alone) - 1

    async def _announce(self, through: int) -> None:
        held = await self.worker.db(
            lifecycle.announce,
            chunk_id=self.chunk.pk,
            worker_id=self.worker.worker_id,
            through=self.jobs[through],
            control=True,
        )
        if held:
            self.announced = max(self.announced, through)
        else:
            self.stop(Stop.LEASE_LOST)
