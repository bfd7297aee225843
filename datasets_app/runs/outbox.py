"""The trace outbox: claim due traces, send them in one OTLP request, delete or back off.

The engine stores each item's trace as a `Trace` row and, when export is on, a
`TraceOutbox` row in the SAME transaction, so exactly the stored traces are
queued for export: never a ghost, and nothing is queued that was not stored.
`OutboxExporter.drain_once` claims a batch of due rows, rebuilds the spans
from their stored dicts and sends them to the collector in one OTLP/HTTP
request, then deletes the rows. A refused or failed export leaves the rows
in place with an exponential backoff, so a trace is never dropped; it is
retried until the collector accepts it. (The loop that calls it, and when,
is in `export.py`.)

Several workers may drain at once: a claim sets `next_attempt_at` to a lease
in the future (PostgreSQL: rows picked with SELECT … FOR UPDATE SKIP LOCKED;
SQLite serialises writers), so two workers never export the same trace at
the same time. Delivery is at least once: if a worker dies between the
collector's acceptance and the row's deletion, the trace is sent again once
the lease expires (with the same trace and span ids, so a backend can tell).
A worker stopped mid-batch loses nothing either: its claimed rows become due
again when their lease expires.
"""

import itertools
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import F, Q
from django.db.models.functions import Cast
from django.utils import timezone
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from datasets_app.models import Trace, TraceOutbox

from .otlp import build_resource, spans_from_dicts

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 512
# A claimed row is not due again before this; it must outlast one export
# request (the lease is at least twice the export timeout).
CLAIM_LEASE_SECONDS = 60.0
# A failed export is retried after BASE·2^(attempts-1) seconds, capped at MAX.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# Stored span JSON per request: a claimed batch bigger than this (long prompts
# in attributes) is sent as several requests, so no request grows past what
# collectors accept (gRPC's default is 4 MiB; the SDK drops requests > 64 MiB).
MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_EXPORT_TIMEOUT_SECONDS = 10.0

_clock = time.monotonic  # a batch's age against its claim (a test replaces it)


def export_timeout() -> float:
    """Seconds one export request may take (the SDK's own variables, in seconds)."""
    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        return float(raw) if raw else DEFAULT_EXPORT_TIMEOUT_SECONDS
    except ValueError:
        return DEFAULT_EXPORT_TIMEOUT_SECONDS


def backoff_seconds(attempts: int) -> float:
    """Delay before the next try of a trace whose export failed `attempts` times (≥ 1)."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class DrainResult:
    claimed: int = 0
    exported: int = 0
    failed: int = 0


class OutboxExporter:
    """Drains the outbox into one OTLPSpanExporter (one per loop: connection reuse).

    `span_exporter` replaces the OTLP/HTTP exporter (which otherwise follows
    the standard OTEL_EXPORTER_OTLP_* variables).
    """

    _token_lock = threading.Lock()
    _last_token: datetime | None = None

    def __init__(
        self,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        span_exporter: SpanExporter | None = None,
        timeout: float | None = None,
    ):
        self.batch_size = max(1, batch_size)
        self.timeout = export_timeout() if timeout is None else timeout
        self.lease = max(CLAIM_LEASE_SECONDS, 2 * self.timeout)
        self.resource = build_resource()
        self._span_exporter = span_exporter

    @property
    def span_exporter(self) -> SpanExporter:
        if self._span_exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self._span_exporter = OTLPSpanExporter(timeout=self.timeout)
        return self._span_exporter

    def shutdown(self) -> None:
        if self._span_exporter is not None:
            try:
                self._span_exporter.shutdown()
            except Exception:
                logger.debug("OTLP exporter shutdown failed", exc_info=True)

    def drain(self) -> int:
        """One batch; never raises. Returns how many traces were exported."""
        try:
            return self.drain_once().exported
        except Exception:
            logger.exception("Trace export failed; the outbox keeps the traces for a later try")
            return 0

    def drain_once(self) -> DrainResult:
        """One batch: claim, send, delete or back off. Database errors propagate."""
        started = _clock()
        token, attempts = self._claim()
        if not attempts:
            return DrainResult()
        sendable, broken = self._load(list(attempts))
        exported = 0
        failed = list(broken)
        groups = self._requests(sendable)
        for number, group in enumerate(groups):
            ids = [trace_id for trace_id, _ in group]
            if _clock() - started + self.timeout >= self.lease:
                # Our claim could expire mid-request: hand the rest back untouched.
                rest = [trace_id for later in groups[number:] for trace_id, _ in later]
                TraceOutbox.objects.filter(pk__in=rest, next_attempt_at=token).update(next_attempt_at=None)
                break
            if self._send([span for _, spans in group for span in spans]):
                TraceOutbox.objects.filter(pk__in=ids).delete()
                exported += len(ids)
            else:
                # The collector is down or refusing: do not hammer it with the rest.
                failed += [trace_id for later in groups[number:] for trace_id, _ in later]
                break
        if failed:
            self._back_off(failed, attempts, token)
        return DrainResult(claimed=len(attempts), exported=exported, failed=len(failed))

    # -- steps --

    def _claim(self) -> tuple[datetime, dict[str, int]]:
        """Due rows, leased to this call: {trace_id: attempts so far}."""
        now = timezone.now()
        token = self._new_token(now, self.lease)
        due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        with transaction.atomic():
            # PostgreSQL: rows another drain is claiming are skipped, not waited
            # for. SQLite ignores FOR UPDATE; its writers are serialised (the
            # IMMEDIATE transaction holds the write lock from the start).
            rows = list(
                TraceOutbox.objects.select_for_update(skip_locked=True)
                .filter(due)
                .values_list("trace_id", "attempts")[: self.batch_size]
            )
            if not rows:
                return token, {}
            ids = [trace_id for trace_id, _ in rows]
            updated = TraceOutbox.objects.filter(due, pk__in=ids).update(next_attempt_at=token)
            if updated != len(rows):  # only if writers were not serialised after all
                ours = set(TraceOutbox.objects.filter(pk__in=ids, next_attempt_at=token).values_list("pk", flat=True))
                rows = [row for row in rows if row[0] in ours]
        return token, dict(rows)

    @classmethod
    def _new_token(cls, now: datetime, lease: float) -> datetime:
        """The lease's end, distinct from every other claim's (it identifies the claim)."""
        with cls._token_lock:
            token = now + timedelta(seconds=lease, microseconds=random.randrange(1, 1000))
            if cls._last_token is not None and token <= cls._last_token:
                token = cls._last_token + timedelta(microseconds=1)
            cls._last_token = token
        return token

    def _load(self, ids: list[str]) -> tuple[list[tuple[str, list[ReadableSpan], int]], list[str]]:
        """(trace id, SDK spans, stored size) for each claimed trace, and the ids
        of those whose stored spans cannot be rebuilt (kept, retried, logged)."""
        rows = (
            Trace.objects.filter(pk__in=ids)
            .annotate(raw_spans=Cast("spans", output_field=models.TextField()))
            .values_list("trace_id", "raw_spans")
        )
        sendable, broken = [], []
        for trace_id, raw in rows:
            try:
                spans = spans_from_dicts(trace_id, json.loads(raw) if raw else [], resource=self.resource)
            except Exception:
                logger.exception("Stored trace %s cannot be converted to OTLP; keeping it in the outbox", trace_id)
                broken.append(trace_id)
                continue
            sendable.append((trace_id, spans, len(raw or "")))
        # A claimed id without a Trace row: the trace was deleted, and its
        # outbox row with it (ON DELETE CASCADE). Nothing to do.
        return sendable, broken

    @staticmethod
    def _requests(sendable: list[tuple[str, list[ReadableSpan], int]]) -> list[list[tuple[str, list[ReadableSpan]]]]:
        """Claimed traces cut into requests of at most MAX_REQUEST_BYTES of stored JSON
        (normally one request; a trace bigger than that goes alone)."""
        groups: list[list[tuple[str, list[ReadableSpan]]]] = []
        size = 0
        for trace_id, spans, stored in sendable:
            if not groups or (size + stored > MAX_REQUEST_BYTES and groups[-1]):
                groups.append([])
                size = 0
            groups[-1].append((trace_id, spans))
            size += stored
        return groups

    def _send(self, spans: list[ReadableSpan]) -> bool:
        if not spans:
            return True
        try:
            return self.span_exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception:
            logger.exception("OTLP export raised")
            return False

    @staticmethod
    def _back_off(ids: list[str], attempts: dict[str, int], token: datetime) -> None:
        now = timezone.now()
        by_attempts = sorted(ids, key=lambda trace_id: attempts[trace_id])
        for previous, group in itertools.groupby(by_attempts, key=lambda trace_id: attempts[trace_id]):
            delay = backoff_seconds(previous + 1)
            # Only rows still under this claim (not re-claimed after an expired lease).
            TraceOutbox.objects.filter(pk__in=list(group), next_attempt_at=token).update(
                attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=delay)
            )
        logger.warning("OTLP export of %d trace(s) failed; retrying with backoff", len(ids))
