"""Executes one chunk of a run: its items, with bounded concurrency, per-attempt
timeouts, retries, scorers and a trace per item.

Shape of the machinery (one chunk, inside one worker process):

    main thread ──jobs──▶ N item threads ──outcomes──▶ main thread ──▶ database
     (watchdog)           (each calls the target
                           itself)

* N = the run's max_concurrency. Item threads never touch the database; the
  main thread is the only writer, so SQLite never sees competing writers from
  one worker and each batch is a single short transaction.
* Each batch of finished items is written in one transaction together with
  the run's counters and the item's trace: the counters always equal the
  rows, and a result never exists without its trace (or vice versa).
* A call that overruns the timeout cannot be interrupted (Python threads
  can't be): the main thread's watchdog abandons its thread, starts a fresh
  one and hands it the job, which it retries or records as timed out.
* The main thread renews the chunk's lease while it works; a worker that dies
  stops renewing, and another worker takes the chunk over (`tasks.py`),
  skipping items that already have a result.
"""

import asyncio
import json
import logging
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ..models import DatasetRun, DatasetRunResult, RunChunk, Trace
from . import registry
from .registry import Scorer, Target, TargetOutput
from .rows import insert_rows
from .summary import add_scores
from .targets import TransientError
from .tracing import collector, trace_id_hex, tracer

logger = logging.getLogger(__name__)

WRITE_BATCH_MAX = 500          # results per transaction at most
WRITE_BATCH_WAIT = 0.05        # seconds to gather a batch before writing it
CANCEL_CHECK_EVERY = 0.5       # seconds between looks at the run's status
CANCEL_GRACE = 3.0             # seconds in-flight items get to finish after a cancel
MAX_CHUNK_ATTEMPTS = 3         # a chunk that killed this many workers is given up on


class AttemptTimeout(Exception):
    pass


def _timeout_message(timeout: float) -> str:
    return f"Timed out after {timeout:g} s"


def _is_transient(exc: BaseException) -> bool:
    import openai

    return isinstance(
        exc,
        (
            TransientError,
            AttemptTimeout,
            TimeoutError,
            ConnectionError,
            httpx.TransportError,
            openai.APIConnectionError,
            openai.RateLimitError,
            openai.InternalServerError,
        ),
    )


def _error_message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, (TransientError, AttemptTimeout, RuntimeError)):
        text = f"{type(exc).__name__}: {text}"
    return text[:2000]


class Caller:
    """Runs calls on a daemon helper thread so a call that never returns can be
    abandoned at its timeout (Python cannot interrupt a thread). The helper is
    reused between calls and replaced after a timeout; daemon threads never
    keep the worker process from exiting. Used for scorers; targets, the hot
    path, are watched by the chunk loop instead (see CallWatch)."""

    def __init__(self):
        self._start_helper()

    def _start_helper(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, args=(self._requests,), daemon=True, name="target-call").start()

    @staticmethod
    def _serve(requests: queue.SimpleQueue) -> None:
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            func, args, kwargs, parent_context, reply = requests.get()
            if func is None:
                return
            token = otel_context.attach(parent_context)
            try:
                value = func(*args, **kwargs)
                if asyncio.iscoroutine(value):
                    if loop is None:
                        loop = asyncio.new_event_loop()
                    value = loop.run_until_complete(value)
                reply.put((True, value))
            except BaseException as exc:  # noqa: BLE001 — reported to the item, never lost
                reply.put((False, exc))
            finally:
                otel_context.detach(token)

    def call(self, func, *args, timeout: float, parent_context=None, **kwargs):
        reply: queue.SimpleQueue = queue.SimpleQueue()
        context = parent_context if parent_context is not None else otel_context.get_current()
        self._requests.put((func, args, kwargs, context, reply))
        try:
            ok, value = reply.get(timeout=timeout)
        except queue.Empty:
            self._start_helper()  # the old helper is stuck in the call; leave it behind
            raise AttemptTimeout(_timeout_message(timeout)) from None
        if ok:
            return value
        raise value

    def close(self) -> None:
        self._requests.put((None, None, None, None, None))


@dataclass
class TimedOutAttempt:
    """An attempt whose call overran the timeout and was abandoned."""

    name: str
    start_ns: int
    end_ns: int
    message: str


@dataclass
class Job:
    item_id: Any
    item_version: int
    repetition: int
    input: Any
    expected_output: Any
    context: Any
    # Filled in when an item thread was abandoned in a hung call: the next
    # thread to take the job records these attempts in the same trace and
    # either retries or, with `give_up`, records the timeout as the error.
    first_started: float | None = None
    timed_out: list[TimedOutAttempt] = field(default_factory=list)
    give_up: bool = False


@dataclass
class Outcome:
    job: Job
    result_id: Any
    output: Any = None
    error: str | None = None
    usage: dict | None = None
    scores: list = field(default_factory=list)
    retry_count: int = 0
    latency_ms: float = 0.0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    trace_id: str | None = None
    spans: list = field(default_factory=list)


class CallWatch:
    """What one item thread is calling now, so that the chunk loop can abandon
    a call that overruns its timeout: Python cannot interrupt a thread, so the
    stuck thread is left behind (it is a daemon) and a new one takes its place.
    The lock makes "the call returned" and "the call was abandoned" exclusive."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._job: Job | None = None
        self._name = ""
        self._start_ns = 0
        self.abandoned = False

    def begin(self, job: Job, name: str) -> None:
        with self._lock:
            self._job, self._name, self._start_ns = job, name, time.time_ns()
            self._deadline = time.monotonic() + self.timeout

    def end(self) -> bool:
        """The call returned; False when it had already been abandoned."""
        with self._lock:
            self._deadline = None
            return not self.abandoned

    def expire(self, now: float) -> tuple[Job, TimedOutAttempt] | None:
        with self._lock:
            if self._deadline is None or now < self._deadline or self.abandoned:
                return None
            self.abandoned = True
            return self._job, TimedOutAttempt(self._name, self._start_ns, time.time_ns(), _timeout_message(self.timeout))


def _check_output(value: Any) -> Any:
    encoded = json.dumps(value, ensure_ascii=False)
    if len(encoded) > settings.PLAYGROUND_MAX_OUTPUT_BYTES:
        raise ValueError(f"Output is {len(encoded)} bytes, over the {settings.PLAYGROUND_MAX_OUTPUT_BYTES} byte limit")
    return value


def _normalise_score(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, dict):
        score, reason = value.get("score"), value.get("reason")
    else:
        score, reason = value, None
    if score is None:
        return None, reason
    if isinstance(score, bool):
        score = float(score)
    if not isinstance(score, (int, float)) or not (0 <= score <= 1):
        raise ValueError(f"score must be a number in 0..1, got {score!r}")
    return float(score), None if reason is None else str(reason)[:2000]


class ItemRunner:
    """Executes jobs on one item thread: target attempts with retries, then
    scorers, all in one trace per item. The target is called on this thread
    (no hand-off); the chunk loop's watchdog enforces the timeout through
    `watch`. Scorers go through a Caller, which enforces its own timeout."""

    def __init__(self, *, run: DatasetRun, target: Target, scorers: list[Scorer], stop: threading.Event):
        self.run = run
        self.target = target
        self.scorers = scorers
        self.stop = stop
        self.timeout = run.item_timeout or settings.PLAYGROUND_DEFAULT_ITEM_TIMEOUT
        self.watch = CallWatch(self.timeout)
        self.caller = Caller() if scorers else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._root_attributes = {
            "playground.run_id": str(run.id),
            "playground.dataset_id": str(run.dataset_id),
            "playground.target": f"{target.target_type}/{target.target_id}",
        }

    def execute(self, job: Job) -> Outcome | None:
        """The item's outcome, or None when this thread was abandoned in a hung call."""
        if job.first_started is None:
            job.first_started = time.time()
        outcome = Outcome(job=job, result_id=uuid.uuid4())
        root = tracer.start_span(
            "run item",
            start_time=int(job.first_started * 1e9),
            attributes={
                **self._root_attributes,
                "playground.item_id": str(job.item_id),
                "playground.item_version": job.item_version,
                "playground.repetition": job.repetition,
            },
        )
        outcome.trace_id = trace_id_hex(root)
        parent = trace.set_span_in_context(root)
        if not self._run_target(job, outcome, parent):
            root.end()
            collector.take(int(outcome.trace_id, 16))  # a replacement thread records this item
            return None
        if outcome.error is None:
            for scorer in self.scorers:
                outcome.scores.append(self._run_scorer(scorer, job, outcome.output, parent))
        root.set_attribute("playground.latency_ms", outcome.latency_ms)
        root.set_attribute("playground.retry_count", outcome.retry_count)
        if outcome.usage:
            root.set_attributes({f"gen_ai.usage.{key}": value for key, value in outcome.usage.items()})
        if outcome.error is not None:
            root.set_attribute("error.message", outcome.error)
            root.set_status(Status(StatusCode.ERROR, outcome.error[:200]))
        else:
            root.set_status(Status(StatusCode.OK))
        root.end()
        outcome.spans = collector.take(int(outcome.trace_id, 16))
        return outcome

    def _run_target(self, job: Job, outcome: Outcome, parent) -> bool:
        """Call the target, retrying transient failures; one span per attempt
        ("target", then "target retry 1", …). False if the thread was abandoned."""
        outcome.started_at = datetime.fromtimestamp(job.first_started, tz=UTC)
        for earlier in job.timed_out:
            span = tracer.start_span(earlier.name, context=parent, start_time=earlier.start_ns)
            span.set_status(Status(StatusCode.ERROR, earlier.message))
            span.set_attribute("error.type", AttemptTimeout.__name__)
            span.end(end_time=earlier.end_ns)
        attempt = len(job.timed_out)
        if job.timed_out:
            outcome.error = job.timed_out[-1].message
            finished = job.timed_out[-1].end_ns / 1e9
            if job.give_up or self.stop.wait(_backoff_delay(attempt)):
                self._finish(outcome, retries=attempt - 1, finished=finished)
                return True
        while True:
            name = "target" if attempt == 0 else f"target retry {attempt}"
            span = tracer.start_span(name, context=parent)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            self.watch.begin(job, name)
            retry = False
            try:
                value = self.target.func(job.input, job.context)
                if asyncio.iscoroutine(value):
                    value = self._event_loop().run_until_complete(value)
                if isinstance(value, TargetOutput):
                    outcome.usage = value.usage
                    span.set_attributes(value.attributes)
                    value = value.output
                outcome.output, outcome.error = _check_output(value), None
                span.set_status(Status(StatusCode.OK))
            except Exception as exc:  # noqa: BLE001 — the item's error, the run goes on
                outcome.error = _error_message(exc)
                span.set_status(Status(StatusCode.ERROR, outcome.error[:200]))
                span.set_attribute("error.type", type(exc).__name__)
                retry = _is_transient(exc) and attempt < self.run.max_retries and not self.stop.is_set()
            finally:
                otel_context.detach(token)
                alive = self.watch.end()
                span.end()
            if not alive:
                return False
            # A cancel during the backoff ends the item with its last error.
            if not retry or self.stop.wait(_backoff_delay(attempt + 1)):
                break
            attempt += 1
        self._finish(outcome, retries=attempt, finished=time.time())
        return True

    @staticmethod
    def _finish(outcome: Outcome, *, retries: int, finished: float) -> None:
        outcome.retry_count = retries
        outcome.latency_ms = round((finished - outcome.job.first_started) * 1000, 3)
        outcome.completed_at = datetime.fromtimestamp(finished, tz=UTC)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def _run_scorer(self, scorer: Scorer, job: Job, output: Any, parent) -> dict:
        entry = {"scorerId": scorer.scorer_id, "scorerName": scorer.name, "score": None, "reason": None, "error": None}
        span = tracer.start_span(f"scorer {scorer.scorer_id}", context=parent)
        try:
            value = self.caller.call(
                scorer.func,
                input=job.input,
                output=output,
                expected=job.expected_output,
                timeout=self.timeout,
                parent_context=trace.set_span_in_context(span, parent),
            )
            entry["score"], entry["reason"] = _normalise_score(value)
            if entry["score"] is not None:
                span.set_attribute("playground.score", entry["score"])
            span.set_status(Status(StatusCode.OK))
        except Exception as exc:  # noqa: BLE001 — a failing scorer leaves score null
            entry["error"] = _error_message(exc)
            span.set_status(Status(StatusCode.ERROR, entry["error"][:200]))
        finally:
            span.end()
        return entry

    def close(self) -> None:
        if self.caller is not None:
            self.caller.close()


def _backoff_delay(retry: int) -> float:
    """Exponential backoff with full jitter: base·2^(retry-1), half fixed, half random."""
    base = settings.PLAYGROUND_RETRY_BASE_DELAY * (2 ** (retry - 1))
    capped = min(base, settings.PLAYGROUND_RETRY_MAX_DELAY)
    return capped / 2 + random.uniform(0, capped / 2)


# ---- the chunk loop (main thread) ----------------------------------------------------


class LeaseLost(Exception):
    pass


class ChunkExecutor:
    def __init__(self, chunk: RunChunk, run: DatasetRun, worker_id: str):
        self.chunk = chunk
        self.run = run
        self.worker_id = worker_id
        self.lease_seconds = settings.PLAYGROUND_LEASE_SECONDS
        self.stop = threading.Event()
        self.jobs: queue.Queue = queue.Queue()
        self.outcomes: queue.SimpleQueue = queue.SimpleQueue()
        self.written = 0

    # -- job source --------------------------------------------------------------

    def _in_chunk(self, queryset):
        """Rows of this chunk's item-id range (item versions or results)."""
        queryset = queryset.filter(item_id__lte=self.chunk.last_item_id)
        if self.chunk.after_item_id is not None:
            queryset = queryset.filter(item_id__gt=self.chunk.after_item_id)
        return queryset

    def _pending_jobs(self):
        """Jobs of this chunk that have no result yet (a takeover skips finished items)."""
        done = set(
            self._in_chunk(DatasetRunResult.objects.filter(run=self.run))
            .order_by()
            .values_list("item_id", "repetition")
        )
        versions = self._in_chunk(self.run.work_items()).only("item_id", "version_number", "snapshot")
        for version in versions.iterator(chunk_size=500):
            snapshot = version.snapshot
            for repetition in range(self.run.repetitions):
                if (version.item_id, repetition) in done:
                    continue
                yield Job(
                    item_id=version.item_id,
                    item_version=version.version_number,
                    repetition=repetition,
                    input=snapshot.get("input"),
                    expected_output=snapshot.get("expectedOutput"),
                    context=snapshot.get("context"),
                )

    # -- execution --------------------------------------------------------------------

    def execute(self) -> None:
        target = registry.get_target(self.run.target_type, self.run.target_id)
        scorers = [registry.get_scorer(s) for s in self.run.scorer_ids]
        if target is None or None in scorers:
            missing = [f"{self.run.target_type}/{self.run.target_id}"] if target is None else []
            missing += [s for s, found in zip(self.run.scorer_ids, scorers) if found is None]
            fail_run(self.run, f"Not registered in this worker: {', '.join(missing)}")
            return
        self._new_runner = lambda: ItemRunner(run=self.run, target=target, scorers=scorers, stop=self.stop)
        concurrency = max(1, self.run.max_concurrency)
        self.runners = [self._start_item_thread(i) for i in range(concurrency)]
        try:
            self._main_loop(concurrency)
        finally:
            self.stop.set()
            for runner in self.runners:
                self.jobs.put(None)
                runner.close()

    def _start_item_thread(self, index: int) -> ItemRunner:
        runner = self._new_runner()
        threading.Thread(target=self._item_loop, args=(runner,), daemon=True, name=f"item-{index}").start()
        return runner

    def _item_loop(self, runner: ItemRunner) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            if self.stop.is_set():
                continue
            try:
                outcome = runner.execute(job)
            except Exception as exc:  # noqa: BLE001 — engine bug: record it on the item, keep going
                logger.exception("Item %s crashed the runner", job.item_id)
                now = timezone.now()
                outcome = Outcome(
                    job=job, result_id=uuid.uuid4(), error=f"Internal error: {exc}", started_at=now, completed_at=now
                )
            if outcome is None:
                return  # abandoned in a hung call; a replacement thread has taken over
            self.outcomes.put(outcome)

    def _abandon_hung_calls(self) -> None:
        """The timeout watchdog: hand every overrun job to a fresh thread, which
        retries it or records the timeout, and replace the stuck thread."""
        now = time.monotonic()
        for index, runner in enumerate(self.runners):
            expired = runner.watch.expire(now)
            if expired is None:
                continue
            job, attempt = expired
            job.timed_out.append(attempt)
            job.give_up = len(job.timed_out) > self.run.max_retries
            self.runners[index] = self._start_item_thread(index)
            self.jobs.put(job)

    def _main_loop(self, concurrency: int) -> None:
        source = self._pending_jobs()
        # Jobs queued beyond the running ones keep item threads busy while this
        # thread writes; bounded, so memory never holds the whole chunk.
        backlog = concurrency + max(concurrency, WRITE_BATCH_MAX // 4)
        in_flight = 0
        exhausted = False
        cancelled_at: float | None = None
        next_check = time.monotonic() + CANCEL_CHECK_EVERY
        next_renew = time.monotonic() + self.lease_seconds / 3
        while True:
            while not exhausted and cancelled_at is None and in_flight < backlog:
                job = next(source, None)
                if job is None:
                    exhausted = True
                    break
                self.jobs.put(job)
                in_flight += 1
            if in_flight == 0:
                break
            batch = self._gather(in_flight)
            in_flight -= len(batch)
            self._abandon_hung_calls()
            if batch:
                self._write(batch)
            now = time.monotonic()
            if now >= next_renew:
                self._renew_lease()
                next_renew = now + self.lease_seconds / 3
            if cancelled_at is None and now >= next_check:
                next_check = now + CANCEL_CHECK_EVERY
                if self._run_was_cancelled():
                    cancelled_at = now
                    in_flight -= self._drop_queued_jobs()
            if cancelled_at is not None and now - cancelled_at > CANCEL_GRACE:
                logger.info("Run %s cancelled: abandoning %d in-flight item(s)", self.run.id, in_flight)
                break

    def _gather(self, in_flight: int) -> list[Outcome]:
        """Wait briefly for finished items; take up to a batch of them, and
        return at once when every item in flight has finished."""
        batch: list[Outcome] = []
        deadline = time.monotonic() + WRITE_BATCH_WAIT
        try:
            batch.append(self.outcomes.get(timeout=WRITE_BATCH_WAIT))
        except queue.Empty:
            return batch
        while len(batch) < min(WRITE_BATCH_MAX, in_flight):
            remaining = deadline - time.monotonic()
            try:
                batch.append(self.outcomes.get(timeout=remaining) if remaining > 0 else self.outcomes.get_nowait())
            except queue.Empty:
                break
        return batch

    def _drop_queued_jobs(self) -> int:
        """Stop new items from starting; returns how many queued jobs were dropped."""
        self.stop.set()
        dropped = 0
        while True:
            try:
                self.jobs.get_nowait()
            except queue.Empty:
                return dropped
            dropped += 1

    def _run_was_cancelled(self) -> bool:
        status = DatasetRun.objects.filter(pk=self.run.pk).values_list("status", flat=True).first()
        return status != DatasetRun.Status.RUNNING

    def _renew_lease(self) -> None:
        renewed = RunChunk.objects.filter(pk=self.chunk.pk, lease_owner=self.worker_id).update(
            lease_expires_at=timezone.now() + timedelta(seconds=self.lease_seconds)
        )
        if not renewed:
            raise LeaseLost(f"chunk {self.chunk.pk} was taken over by another worker")

    def _write(self, batch: list[Outcome]) -> None:
        """Results, traces and counters of a batch in one transaction."""
        for attempt in range(5):
            try:
                with transaction.atomic():
                    self._write_once(batch)
                return
            except IntegrityError:
                # Another worker wrote some of these items (after a takeover race): re-filter.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _write_once(self, batch: list[Outcome]) -> None:
        item_ids = [o.job.item_id for o in batch]
        # An id range (not IN): it walks the (run, item, repetition) index over
        # at most this chunk's rows, however many results the run already has.
        existing = set(
            DatasetRunResult.objects.filter(run=self.run, item_id__gte=min(item_ids), item_id__lte=max(item_ids))
            .order_by()
            .values_list("item_id", "repetition")
        )
        fresh = [o for o in batch if (o.job.item_id, o.job.repetition) not in existing]
        if not fresh:
            return
        now = timezone.now()
        insert_rows(
            DatasetRunResult,
            [
                {
                    "id": o.result_id,
                    "run": self.run.pk,
                    "item": o.job.item_id,
                    "item_version": o.job.item_version,
                    "repetition": o.job.repetition,
                    "input": o.job.input,
                    "output": o.output,
                    "expected_output": o.job.expected_output,
                    "latency": o.latency_ms,
                    "error": o.error,
                    "retry_count": o.retry_count,
                    "trace_id": o.trace_id,
                    "scores": o.scores,
                    "usage": o.usage,
                    "started_at": o.started_at,
                    "completed_at": o.completed_at,
                    "created_at": now,
                }
                for o in fresh
            ],
        )
        insert_rows(
            Trace,
            [
                {
                    "trace_id": o.trace_id,
                    "run": self.run.pk,
                    "result_id": o.result_id,
                    "name": f"run item {o.job.item_id}",
                    "spans": o.spans,
                    "started_at": o.started_at,
                }
                for o in fresh
                if o.trace_id
            ],
        )
        succeeded = sum(1 for o in fresh if o.error is None)
        changes = {
            "succeeded_count": F("succeeded_count") + succeeded,
            "failed_count": F("failed_count") + (len(fresh) - succeeded),
            "updated_at": timezone.now(),
        }
        if any(o.scores for o in fresh):
            # Read-modify-write of the JSON: lock the row (other workers write this run too).
            stats = DatasetRun.objects.select_for_update().values_list("score_stats", flat=True).get(pk=self.run.pk)
            changes["score_stats"] = add_scores(stats, (o.scores for o in fresh))
        DatasetRun.objects.filter(pk=self.run.pk).update(**changes)
        self.written += len(fresh)


def fail_run(run: DatasetRun, message: str) -> None:
    now = timezone.now()
    DatasetRun.objects.filter(pk=run.pk, status__in=DatasetRun.ACTIVE_STATUSES).update(
        status=DatasetRun.Status.FAILED, error=message[:2000], completed_at=now, updated_at=now
    )
    RunChunk.objects.filter(run=run).update(status=RunChunk.Status.DONE, lease_expires_at=None)


def give_up_chunk(chunk: RunChunk, run: DatasetRun) -> None:
    """Record every unfinished item of a chunk that crashed its workers as failed."""
    executor = ChunkExecutor(chunk, run, worker_id=chunk.lease_owner)
    message = f"Abandoned: the worker executing this item stopped {chunk.attempts - 1} times"
    now = timezone.now()
    batch = [
        Outcome(job=job, result_id=uuid.uuid4(), error=message, started_at=now, completed_at=now)
        for job in executor._pending_jobs()
    ]
    for start in range(0, len(batch), WRITE_BATCH_MAX):
        with transaction.atomic():
            executor._write_once(batch[start : start + WRITE_BATCH_MAX])
