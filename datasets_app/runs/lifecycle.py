"""Every state change of a run and its chunks, in one place.

Each change is a conditional UPDATE against the transition tables below
(`WHERE status IN (<the states it may come from>)`), so two processes racing
for the same change cannot both win, and nothing moves a terminal run:

    run:   pending ──▶ running ──▶ completed | failed
              └──────────┴──────▶ cancelled | failed
    chunk: pending ──▶ running ──▶ done;  running ──▶ pending (released)
           running ──▶ running (taken over after its lease ran out)

The chunk table is the work queue: chunks are inserted in the run's own
transaction (`enqueue`), so a committed run always has its work queued.
Writes of results (`recording.py`) are fenced by the chunk lease and the
run's status, so a terminal run's rows and counters never change again.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..exceptions import StateConflict
from ..models import DatasetRun, DatasetRunResult, RunChunk
from .holders import dead_local_holders
from .item import Job, encode_json

Run, Chunk = DatasetRun.Status, RunChunk.Status

RUN_TRANSITIONS: dict[str, set[str]] = {
    Run.PENDING: {Run.RUNNING, Run.CANCELLED, Run.FAILED},
    Run.RUNNING: {Run.COMPLETED, Run.FAILED, Run.CANCELLED},
    Run.COMPLETED: set(),
    Run.FAILED: set(),
    Run.CANCELLED: set(),
}
CHUNK_TRANSITIONS: dict[str, set[str]] = {
    Chunk.PENDING: {Chunk.RUNNING, Chunk.DONE},
    Chunk.RUNNING: {Chunk.RUNNING, Chunk.PENDING, Chunk.DONE},
    Chunk.DONE: set(),
}

# An item in flight when its worker died twice runs alone from then on, so each
# later crash is its own; after two of those (four in all) it is failed, not run
# again. One crash while alone is not enough: an outside kill -9 that happens to
# land while an innocent item runs alone must not fail it.
ALONE_AFTER_CRASHES = 2
MAX_ITEM_CRASHES = 4


def _sources(table: dict[str, set[str]], to: str) -> list[str]:
    return [source for source, targets in table.items() if to in targets]


def _move_run(run_id: UUID, to: str, **changes: Any) -> bool:
    now = timezone.now()
    return bool(
        DatasetRun.objects.filter(pk=run_id, status__in=_sources(RUN_TRANSITIONS, to)).update(
            status=to, updated_at=now, **changes
        )
    )


def lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=settings.PLAYGROUND_LEASE_SECONDS)


# ---- queue -----------------------------------------------------------------------


def enqueue(run: DatasetRun, chunks: list[RunChunk]) -> None:
    """Queue a new run's chunks; call inside the transaction that creates the run."""
    RunChunk.objects.bulk_create(chunks)


def claimable_chunks(dead_holders: Iterable[str] = ()) -> QuerySet[RunChunk]:
    """Chunks waiting for a worker: never claimed, released, or whose holder went
    silent (its lease ran out) or is known dead (`holders.dead_local_holders`)."""
    claimable = Q(status=Chunk.PENDING) | Q(status=Chunk.RUNNING, lease_expires_at__lt=timezone.now())
    if dead_holders:
        claimable |= Q(status=Chunk.RUNNING, lease_owner__in=list(dead_holders))
    return RunChunk.objects.filter(claimable)


@dataclass
class Claim:
    chunk: RunChunk
    run: DatasetRun


def claim_chunk(*, worker_id: str, run_id: Any = None, takeovers_only: bool = False) -> Claim | None:
    """Take the oldest claimable chunk (of `run_id`, if given; only one whose
    holder went silent, with `takeovers_only`) under a fresh lease, in one
    transaction with its crash accounting and the run's pending → running."""
    owners = RunChunk.objects.filter(status=Chunk.RUNNING).values_list("lease_owner", flat=True).distinct()
    dead = dead_local_holders(owners)
    with transaction.atomic():
        candidates = claimable_chunks(dead).order_by("id")
        if takeovers_only:
            candidates = candidates.filter(status=Chunk.RUNNING)
        if run_id is not None:
            candidates = candidates.filter(run_id=run_id)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        chunk = candidates.first()
        if chunk is None:
            return None
        taken_over = chunk.status == Chunk.RUNNING
        crash_counts = _count_crashes(chunk) if taken_over else chunk.crash_counts
        claimed = (
            claimable_chunks(dead)
            .filter(pk=chunk.pk)
            .update(
                status=Chunk.RUNNING,
                lease_owner=worker_id,
                lease_expires_at=lease_until(),
                attempts=F("attempts") + 1,
                frontier_item_id=None,
                frontier_repetition=None,
                crash_counts=crash_counts,
            )
        )
        if not claimed:
            return None
        _move_run(chunk.run_id, Run.RUNNING, started_at=timezone.now())
        chunk.refresh_from_db()
        run = DatasetRun.objects.get(pk=chunk.run_id)
    return Claim(chunk=chunk, run=run)


def _count_crashes(chunk: RunChunk) -> dict:
    """One more crash for every job the dead holder had announced and not finished."""
    counts = dict(chunk.crash_counts)
    if chunk.frontier_item_id is None:
        return counts
    frontier = (chunk.frontier_item_id, chunk.frontier_repetition)
    done = finished_jobs(chunk)
    for job in chunk_jobs(chunk):
        if (job.item_id, job.repetition) > frontier:
            break
        if (job.item_id, job.repetition) not in done:
            counts[job.key] = counts.get(job.key, 0) + 1
    return counts


# ---- the chunk's jobs ------------------------------------------------------------------


def _in_chunk[Q_: QuerySet](queryset: Q_, chunk: RunChunk) -> Q_:
    """Rows of this chunk's item-id range (item versions or results)."""
    queryset = queryset.filter(item_id__lte=chunk.last_item_id)
    if chunk.after_item_id is not None:
        queryset = queryset.filter(item_id__gt=chunk.after_item_id)
    return queryset


def finished_jobs(chunk: RunChunk) -> set[tuple]:
    return set(
        _in_chunk(DatasetRunResult.objects.filter(run_id=chunk.run_id), chunk).values_list("item_id", "repetition")
    )


def chunk_jobs(chunk: RunChunk) -> list[Job]:
    """Every job of the chunk in (item id, repetition) order: the order they start in."""
    run = chunk.run
    # Tuples, not model instances: a chunk loads hundreds of versions at a time.
    versions = _in_chunk(run.work_items(), chunk).values_list("item_id", "version_number", "snapshot")
    jobs: list[Job] = []
    for item_id, version_number, snapshot in versions.iterator(chunk_size=500):
        input, expected = snapshot.get("input"), snapshot.get("expectedOutput")
        input_json, expected_json = encode_json(input), encode_json(expected)
        jobs.extend(
            Job(
                item_id=item_id,
                item_version=version_number,
                repetition=repetition,
                input=input,
                expected_output=expected,
                context=snapshot.get("context"),
                input_json=input_json,
                expected_json=expected_json,
            )
            for repetition in range(run.repetitions)
        )
    return jobs


# ---- while a chunk runs ---------------------------------------------------------------


def announce(*, chunk_id: int, worker_id: str, through: Job) -> bool:
    """Record that jobs up to `through` may be running (for crash accounting);
    renews the lease too. False when the lease is no longer ours."""
    return bool(
        RunChunk.objects.filter(pk=chunk_id, lease_owner=worker_id, status=Chunk.RUNNING).update(
            frontier_item_id=through.item_id, frontier_repetition=through.repetition, lease_expires_at=lease_until()
        )
    )


def renew_leases(*, chunk_ids: Iterable[int], worker_id: str) -> set[int]:
    """Extend the leases this worker still holds; returns the ids it holds."""
    chunk_ids = list(chunk_ids)
    if not chunk_ids:
        return set()
    held = RunChunk.objects.filter(pk__in=chunk_ids, lease_owner=worker_id, status=Chunk.RUNNING)
    held.update(lease_expires_at=lease_until())
    return set(held.values_list("pk", flat=True))


def run_statuses(run_ids: Iterable) -> dict:
    return dict(DatasetRun.objects.filter(pk__in=list(run_ids)).values_list("pk", "status"))


# ---- ends --------------------------------------------------------------------------


def finish_chunk(*, chunk_id: int, run_id: UUID, worker_id: str) -> bool:
    """Mark the chunk done; the last chunk to finish closes the run
    (`completed`, or `failed` when every item failed). False if the lease was lost.

    The run row is locked first, so two workers finishing the last two chunks
    at once cannot both see the other's chunk still open.
    """
    with transaction.atomic():
        run = DatasetRun.objects.select_for_update().get(pk=run_id)
        if not RunChunk.objects.filter(pk=chunk_id, lease_owner=worker_id, status=Chunk.RUNNING).update(
            status=Chunk.DONE, lease_expires_at=None, frontier_item_id=None, frontier_repetition=None
        ):
            return False
        if RunChunk.objects.filter(run_id=run_id).exclude(status=Chunk.DONE).exists():
            return True
        if run.succeeded_count == 0 and run.failed_count > 0:
            _move_run(run_id, Run.FAILED, error="Every item failed", completed_at=timezone.now())
        else:
            _move_run(run_id, Run.COMPLETED, completed_at=timezone.now())
    return True


def release_chunk(*, chunk_id: int, worker_id: str) -> None:
    """Give a chunk back at once (the worker is shutting down): the next
    worker claims it without waiting for the lease to run out."""
    RunChunk.objects.filter(pk=chunk_id, lease_owner=worker_id, status=Chunk.RUNNING).update(
        status=Chunk.PENDING, lease_owner="", lease_expires_at=None, frontier_item_id=None, frontier_repetition=None
    )


def _end_run(run_id: UUID, to: str, **changes: Any) -> bool:
    with transaction.atomic():
        moved = _move_run(run_id, to, completed_at=timezone.now(), **changes)
        if moved:
            RunChunk.objects.filter(run_id=run_id).exclude(status=Chunk.DONE).update(
                status=Chunk.DONE, lease_expires_at=None
            )
    return moved


def cancel_run(*, run: DatasetRun) -> DatasetRun:
    """Stop a pending or running run. Its status and counters are final from
    this commit on: workers stop starting items within half a second, cancel
    what is in flight, and every later write of theirs is refused."""
    moved = _end_run(run.pk, Run.CANCELLED)
    run.refresh_from_db()
    if not moved:
        raise StateConflict(f"The run is already {run.status}")
    return run


def fail_run(*, run_id: UUID, message: str) -> bool:
    """The run as a whole cannot go on (its target is not registered in the worker)."""
    return _end_run(run_id, Run.FAILED, error=message[:2000])
