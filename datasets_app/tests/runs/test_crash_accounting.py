"""Crash accounting when workers die: which items are blamed, and when one is failed.

A worker "dies" here by going silent: its lease is made to run out and another
worker claims the chunk, as the reaper's claim does after a kill -9."""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from datasets_app import services
from datasets_app.models import RunChunk
from datasets_app.runs import holders, lifecycle

pytestmark = pytest.mark.django_db(transaction=True)  # the worker commits as it goes


def die_while_running(chunk: RunChunk, worker_id: str, through: lifecycle.Job) -> RunChunk:
    """`worker_id` announces jobs up to `through` and dies; another worker takes the chunk over."""
    assert lifecycle.announce(chunk_id=chunk.pk, worker_id=worker_id, through=through)
    RunChunk.objects.filter(pk=chunk.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    claim = lifecycle.claim_chunk(worker_id=f"after-{worker_id}")
    assert claim is not None
    return claim.chunk


def test_an_innocent_item_killed_once_while_running_alone_runs_again_and_succeeds(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": f"item {n}", "expectedOutput": f"item {n}"} for n in range(3)])
    run = services.run_start(dataset=dataset, target_type="workflow", target_id="echo", scorer_ids=["exact-match"])
    claim = lifecycle.claim_chunk(worker_id="w1")
    assert claim is not None
    jobs = lifecycle.chunk_jobs(claim.chunk)
    middle = jobs[1]

    # Two deaths with the middle item among those in flight: from now on it runs alone.
    chunk = die_while_running(claim.chunk, "w1", jobs[-1])
    chunk = die_while_running(chunk, "after-w1", jobs[-1])
    assert chunk.crash_counts[middle.key] == 2
    # An outside kill -9 lands while it runs alone: its own crash, but only one.
    chunk = die_while_running(chunk, "after-after-w1", middle)
    assert chunk.crash_counts[middle.key] == 3
    RunChunk.objects.filter(pk=chunk.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    run = run_worker(run.pk)

    assert (run.status, run.succeeded_count, run.failed_count) == ("completed", 3, 0)
    assert run.results.get(item_id=middle.item_id).output == "item 1"


def test_an_item_killed_twice_while_alone_is_failed_without_running_and_its_neighbours_run(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": f"item {n}"} for n in range(3)])
    run = services.run_start(dataset=dataset, target_type="workflow", target_id="echo")
    claim = lifecycle.claim_chunk(worker_id="w1")
    assert claim is not None
    jobs = lifecycle.chunk_jobs(claim.chunk)
    chunk = claim.chunk
    # Two deaths with it among others in flight, then two while it runs alone.
    for through in [jobs[-1], jobs[-1], jobs[0], jobs[0]]:
        chunk = die_while_running(chunk, chunk.lease_owner, through)
    assert [chunk.crash_counts[job.key] for job in jobs] == [4, 2, 2]
    RunChunk.objects.filter(pk=chunk.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    run = run_worker(run.pk)

    assert (run.status, run.succeeded_count, run.failed_count) == ("completed", 2, 1)
    assert run.results.get(item_id=jobs[0].item_id).error == (
        "The worker crashed 4 times while running this item; it was not run again"
    )


def test_a_chunk_whose_holder_died_on_this_host_is_claimable_before_its_lease_runs_out(make_dataset):
    dataset = make_dataset(items=[{"input": f"item {n}"} for n in range(3)])
    services.run_start(dataset=dataset, target_type="workflow", target_id="echo")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here, dead_pid = holders.process_key(), int(gone.stdout)
    host, _, namespace = here.split(":")
    dead_holder = f"{host}:{dead_pid}:{namespace}:abc123"
    assert holders.dead_local_holders(
        [
            dead_holder,
            f"{here}:live01",  # this very process
            f"another-host:{dead_pid}:{namespace}:abc123",  # cannot be looked at from here
            f"{host}:{dead_pid}:1:abc123",  # another PID namespace (a container)
            "",  # released
        ]
    ) == [dead_holder]

    claim = lifecycle.claim_chunk(worker_id=dead_holder)
    assert claim is not None and claim.chunk.lease_expires_at is not None
    assert claim.chunk.lease_expires_at > timezone.now() + timedelta(seconds=1)
    assert lifecycle.claim_chunk(worker_id=f"{here}:new001") is not None  # its lease has time left: not a silence
    chunk = RunChunk.objects.get(pk=claim.chunk.pk)
    assert (chunk.lease_owner, chunk.attempts) == (f"{here}:new001", 2)
