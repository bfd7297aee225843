"""OTLP export of stored traces: the loop that drains the outbox (`outbox.py`).

Why an outbox rather than the SDK's live BatchSpanProcessor: exporting a
10,000-item run that way dropped spans when its in-memory queue filled
("Queue full, dropping span"), lost what the collector refused with a 503
(8,372 of 10,000 traces arrived), slowed the run fourfold, and exported the
spans of abandoned attempts ("ghost" traces the playground answers 404 for).

Here the stored spans are the truth: a trace is queued for export in the
transaction that stores it, and `run_exporter` (a worker thread, or the
`run_worker --exporter` process that `make run` starts) sends batches of
them outside the run's transactions. While runs are running it works only a
small share of the time, so export never slows a run by much; the backlog
drains at full speed once they end.
"""

import logging
import os
import threading
import time

from django.db import close_old_connections, connection
from opentelemetry.sdk.trace.export import SpanExporter

from datasets_app.models import RunChunk

from .outbox import DEFAULT_BATCH_SIZE, OutboxExporter

logger = logging.getLogger(__name__)

# The export loop's longest wait after repeated database errors.
ERROR_WAIT_MAX_SECONDS = 30.0
# While runs are running, the export loop's CPU time is at most this share of
# the time, so export slows a run by about this much (a little more from a
# worker's own thread, where it also contends for the GIL); the backlog drains
# at full speed once they end. See `Pacer`.
EXPORT_SHARE_WHILE_RUNNING = 0.025
# What a batch is assumed to cost (CPU seconds) before one was timed while runs were running.
FIRST_BATCH_COST_GUESS_SECONDS = 0.1

_clock = time.monotonic  # when to send the next batch (a test replaces it)
_cpu_clock = time.thread_time  # what a batch cost: this thread's CPU (a test replaces it)


def export_enabled() -> bool:
    """Whether stored traces go to a collector: the standard OTLP endpoint variables."""
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def drain_outbox(*, batch_size: int = DEFAULT_BATCH_SIZE, exporter: OutboxExporter | None = None) -> int:
    """Export one batch of due outbox traces in one request; returns how many were
    exported. Never raises (failures are logged and retried later).

    Without `exporter`, a fresh OTLP exporter is used for this call only; a
    loop should pass one OutboxExporter to reuse its connection.
    """
    if exporter is not None:
        return exporter.drain()
    own = OutboxExporter(batch_size=batch_size)
    try:
        return own.drain()
    finally:
        own.shutdown()


def flush_outbox(*, timeout: float = 30.0, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Export what is due now, batch after batch, before a short-lived process
    exits (e.g. `run_dataset`). Stops when nothing due is left, an export
    fails (the rows stay for a worker to retry) or `timeout` seconds passed.
    Never raises; returns how many traces were exported."""
    deadline = time.monotonic() + timeout
    outbox = OutboxExporter(batch_size=batch_size)
    exported = 0
    try:
        while time.monotonic() < deadline:
            done = outbox.drain()
            exported += done
            if not done:
                break
    finally:
        outbox.shutdown()
    return exported


class Pacer:
    """Spaces the export loop's batches while runs are running.

    A batch is earned before it is sent: once runs are running, the loop rests
    cost·(1/share − 1) before each batch, where cost is the CPU time the last
    batch took while runs were running (what competes with the run, in a
    worker's own thread for the GIL; time spent waiting on a slow collector
    costs the run nothing and does not lengthen the rest). Resting first (not
    after) means a short run pays for no export at all and a long one for
    about `share` of its time: paying only afterwards slowed a 1.5 s run by a
    third.
    """

    def __init__(self, share: float = EXPORT_SHARE_WHILE_RUNNING):
        self.share = share
        self.cost = FIRST_BATCH_COST_GUESS_SECONDS
        self.next_batch_at: float | None = None  # None: no run is running, no rest

    def wait_before_batch(self, runs_running: bool) -> float:
        """Seconds to rest before the next batch (0: send it now)."""
        if not runs_running:
            self.next_batch_at = None
            return 0.0
        now = _clock()
        if self.next_batch_at is None:  # runs have just started: earn the first batch too
            self.next_batch_at = now + self.rest()
        return max(0.0, self.next_batch_at - now)

    def batch_took(self, cpu_seconds: float) -> None:
        if self.next_batch_at is not None:
            self.cost = cpu_seconds
            self.next_batch_at = _clock() + self.rest()

    def rest(self) -> float:
        return self.cost * (1 / self.share - 1)


def run_exporter(
    stop: threading.Event,
    *,
    idle_wait: float = 0.5,
    batch_size: int = DEFAULT_BATCH_SIZE,
    span_exporter: SpanExporter | None = None,
) -> None:
    """A worker's export loop (run it in a daemon thread when export_enabled()).

    Drains batches back to back while there is work, paced by `Pacer` while
    runs are running; waits `idle_wait` when the outbox is empty or an export
    failed, and backs off on database errors: it returns only when `stop` is set.
    """
    outbox = OutboxExporter(batch_size=batch_size, span_exporter=span_exporter)
    outbox.span_exporter  # noqa: B018 -- built now, not during the first batch of a run
    pacer = Pacer()
    errors = 0
    try:
        while not stop.is_set():
            try:
                close_old_connections()
                rest = pacer.wait_before_batch(_runs_running())
                if rest > 0:
                    stop.wait(min(rest, idle_wait))  # and look again whether runs still run
                    continue
                started = _cpu_clock()
                result = outbox.drain_once()
                pacer.batch_took(_cpu_clock() - started)
            except Exception:
                errors += 1
                wait = min(ERROR_WAIT_MAX_SECONDS, idle_wait * 2 ** (errors - 1))
                logger.exception("Trace export loop failed; trying again in %.1f s", wait)
                _close_connection()
                stop.wait(wait)
                continue
            errors = 0
            if result.claimed < batch_size or result.failed:
                # Let traces gather: fewer, fuller batches cost the run's database
                # (and SQLite's single writer) far less than a trickle.
                stop.wait(idle_wait)
            # else: a full batch, so more is waiting: the next one at once (or when earned)
    finally:
        outbox.shutdown()
        _close_connection()


def _runs_running() -> bool:
    """Some run has chunks being executed or waiting for a worker (an indexed look
    at the chunk queue): a run just started counts before its first claim."""
    return RunChunk.objects.filter(status__in=[RunChunk.Status.PENDING, RunChunk.Status.RUNNING]).exists()


def start_exporter_thread(stop: threading.Event, *, idle_wait: float = 0.5) -> threading.Thread | None:
    """Start `run_exporter` in a daemon thread if export is enabled; None otherwise."""
    if not export_enabled():
        return None
    thread = threading.Thread(
        target=run_exporter, args=(stop,), kwargs={"idle_wait": idle_wait}, daemon=True, name="otlp-exporter"
    )
    thread.start()
    return thread


def _close_connection() -> None:
    try:
        connection.close()
    except Exception:
        logger.debug("Closing the exporter's database connection failed", exc_info=True)
