"""Background tasks (django.tasks, django-tasks-db backend) and chunk leases.

A run is split into chunks (`services.run_start`); each chunk is one task.
Any number of `run_worker` processes, sharing the database, claim tasks with
SELECT … FOR UPDATE SKIP LOCKED (django-tasks-db), and then the chunk itself
under a lease. A worker that dies stops renewing its lease; `reap_expired_chunks`
(run periodically by every `run_worker`) re-enqueues such chunks, and the next
worker resumes them, skipping items that already have a result.
"""

import logging
import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.tasks import task
from django.utils import timezone

from ..models import DatasetRun, RunChunk
from .executor import MAX_CHUNK_ATTEMPTS, ChunkExecutor, LeaseLost, give_up_chunk

logger = logging.getLogger(__name__)

# Identifies this process in chunk leases (hostname for the humans reading admin).
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@task()
def execute_chunk(chunk_id: int) -> dict:
    return run_chunk(chunk_id=chunk_id, worker_id=WORKER_ID)


def enqueue_chunk(chunk_id: int) -> None:
    execute_chunk.enqueue(chunk_id)


def claim_chunk(*, chunk_id: int, worker_id: str) -> RunChunk | None:
    """Take the chunk's lease if it is free (never claimed, or its holder went silent)."""
    now = timezone.now()
    claimed = (
        RunChunk.objects.filter(pk=chunk_id)
        .exclude(status=RunChunk.Status.DONE)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(
            status=RunChunk.Status.RUNNING,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=settings.PLAYGROUND_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    )
    return RunChunk.objects.select_related("run").get(pk=chunk_id) if claimed else None


def run_chunk(*, chunk_id: int, worker_id: str) -> dict:
    chunk = claim_chunk(chunk_id=chunk_id, worker_id=worker_id)
    if chunk is None:
        return {"chunk": chunk_id, "skipped": "held by another worker or done"}
    run = chunk.run
    if run.status in DatasetRun.ACTIVE_STATUSES:
        if chunk.attempts > MAX_CHUNK_ATTEMPTS:
            logger.warning("Chunk %s of run %s crashed %d workers: giving up on it", chunk.index, run.id, chunk.attempts - 1)
            give_up_chunk(chunk, run)
        else:
            now = timezone.now()
            DatasetRun.objects.filter(pk=run.pk, status=DatasetRun.Status.PENDING).update(
                status=DatasetRun.Status.RUNNING, started_at=now, updated_at=now
            )
            run.refresh_from_db()
            if run.status == DatasetRun.Status.RUNNING:
                executor = ChunkExecutor(chunk, run, worker_id)
                try:
                    executor.execute()
                except LeaseLost:
                    logger.warning("Lost the lease on chunk %s of run %s", chunk.index, run.id)
                    return {"chunk": chunk_id, "written": executor.written, "leaseLost": True}
    finish_chunk(chunk=chunk, worker_id=worker_id)
    return {"chunk": chunk_id}


def finish_chunk(*, chunk: RunChunk, worker_id: str) -> None:
    """Mark the chunk done; the last chunk to finish closes the run.

    The run row is locked first, so two workers finishing the last two chunks
    at once cannot both see the other's chunk still open and leave the run
    running forever.
    """
    with transaction.atomic():
        run = DatasetRun.objects.select_for_update().get(pk=chunk.run_id)
        finished = RunChunk.objects.filter(pk=chunk.pk, lease_owner=worker_id).update(
            status=RunChunk.Status.DONE, lease_expires_at=None
        )
        if not finished or RunChunk.objects.filter(run_id=run.pk).exclude(status=RunChunk.Status.DONE).exists():
            return
        if run.status in DatasetRun.ACTIVE_STATUSES:
            everything_failed = run.succeeded_count == 0 and run.failed_count > 0
            now = timezone.now()
            DatasetRun.objects.filter(pk=run.pk).update(
                status=DatasetRun.Status.FAILED if everything_failed else DatasetRun.Status.COMPLETED,
                error="Every item failed" if everything_failed else "",
                completed_at=now,
                updated_at=now,
            )


def reap_expired_chunks(limit: int = 100) -> int:
    """Re-enqueue chunks whose worker stopped renewing its lease. Returns how many.

    The conditional UPDATE makes exactly one reaper win each chunk, however
    many workers run this at once.
    """
    now = timezone.now()
    expired = RunChunk.objects.filter(status=RunChunk.Status.RUNNING, lease_expires_at__lt=now)
    requeued = 0
    for chunk_id in list(expired.values_list("id", flat=True)[:limit]):
        if expired.filter(pk=chunk_id).update(lease_expires_at=None, lease_owner=""):
            logger.warning("Chunk %s lost its worker: re-enqueued", chunk_id)
            enqueue_chunk(chunk_id)
            requeued += 1
    return requeued
