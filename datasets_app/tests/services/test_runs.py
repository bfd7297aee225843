"""The run services: what a start checks and queues, cancel, rerun of the failures."""

import pytest

from datasets_app import services
from datasets_app.exceptions import InvalidInput, StateConflict
from datasets_app.models import DatasetRun, RunChunk
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def start(dataset, **options):
    return services.run_start(dataset=dataset, target_type="workflow", target_id="echo", **options)


def test_a_start_records_a_pending_run_with_its_chunks_queued(make_dataset, settings, user):
    settings.PLAYGROUND_CHUNK_SIZE = 2
    dataset = make_dataset(items=[{"input": n} for n in range(5)])

    run = start(dataset, scorer_ids=["exact-match"], repetitions=3, user=user)

    assert (run.status, run.total_items, run.dataset_version, run.created_by) == ("pending", 15, 1, user)
    chunks = list(RunChunk.objects.filter(run=run).order_by("index"))
    assert [c.item_count for c in chunks] == [2, 2, 1]
    assert all(c.status == "pending" for c in chunks)
    # Consecutive id ranges covering every item once.
    assert chunks[0].after_item_id is None
    assert [c.after_item_id for c in chunks[1:]] == [c.last_item_id for c in chunks[:-1]]
    assert chunks[-1].last_item_id == max(dataset.items.values_list("id", flat=True))


def test_a_start_names_every_bad_option_in_snake_case(capitals):
    with pytest.raises(InvalidInput) as error:
        services.run_start(
            dataset=capitals,
            target_type="workflow",
            target_id="nope",
            scorer_ids=["exact-match", "nope"],
            version=7,
            max_concurrency=0,
            item_timeout=0,
            max_retries=11,
            repetitions=0,
        )

    assert error.value.errors == {
        "target_id": ["Unknown target workflow/nope"],
        "scorer_ids": ["Unknown scorer nope"],
        "max_concurrency": ["Must be between 1 and 256."],
        "item_timeout": ["Must be a positive number of seconds."],
        "max_retries": ["Must be between 0 and 10."],
        "repetitions": ["Must be between 1 and 100."],
        "version": ["Dataset has versions 1 to 1."],
    }
    assert not DatasetRun.objects.exists()


def test_a_version_without_live_items_cannot_run(capitals):
    services.items_bulk_delete(dataset=capitals, item_ids=list(capitals.items.values_list("id", flat=True)))

    with pytest.raises(InvalidInput) as error:
        start(capitals)
    run = start(capitals, version=1)  # the items as they were still run

    assert error.value.errors == {"version": ["No items to run."]}
    assert run.total_items == 3 and DatasetRun.objects.count() == 1


def test_cancel_is_final_and_a_second_cancel_conflicts(capitals):
    run = make_run(capitals)
    add_result(run, capitals.items.first())

    cancelled = services.run_cancel(run=run)
    with pytest.raises(StateConflict, match="already cancelled"):
        services.run_cancel(run=run)

    assert (cancelled.status, cancelled.succeeded_count) == ("cancelled", 1)
    assert cancelled.completed_at is not None
    assert set(RunChunk.objects.filter(run=run).values_list("status", flat=True)) == {"done"}


def test_a_rerun_takes_the_failed_items_and_the_settings_of_a_finished_run(capitals, user):
    run = make_run(capitals, scorer_ids=("exact-match", "contains"), max_concurrency=3, item_timeout=2.5)
    with pytest.raises(StateConflict):
        services.run_rerun_failed(run=run)
    failed, *passed = capitals.items.order_by("created_at")
    add_result(run, failed, error="boom")
    for item in passed:
        add_result(run, item)
    end_run(run)

    rerun = services.run_rerun_failed(run=run, user=user)

    assert list(rerun.work_items().values_list("item_id", flat=True)) == [failed.pk]
    assert (rerun.total_items, rerun.rerun_of, rerun.created_by) == (1, run, user)
    assert (rerun.scorer_ids, rerun.max_concurrency, rerun.item_timeout) == (["exact-match", "contains"], 3, 2.5)


def test_a_run_without_failures_has_nothing_to_rerun(capitals):
    run = make_run(capitals)
    for item in capitals.items.all():
        add_result(run, item)
    end_run(run)

    with pytest.raises(InvalidInput, match="no failed items"):
        services.run_rerun_failed(run=run)
