"""Annotations, splits and runs on a split, at the service level."""

import pytest

from datasets_app import annotations, services
from datasets_app.exceptions import InvalidInput
from datasets_app.models import Annotation, DatasetItemVersion
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def graded(capitals):
    """A finished run of the capitals with one result per item."""
    run = make_run(capitals)
    results = [add_result(run, item, output=item.expected_output) for item in capitals.items.order_by("position")]
    end_run(run)
    run.refresh_from_db()
    return run, results


def test_an_annotation_is_one_per_result_name_and_author_and_saving_again_updates_it(capitals, graded, user):
    run, results = graded

    first, created = annotations.annotation_save(result=results[0], dataset=capitals, author=user, score=0.2)
    again, created_again = annotations.annotation_save(
        result=results[0], dataset=capitals, author=user, score=0.9, label="good", comment="fixed my mind"
    )

    assert (created, created_again, again.pk) == (True, False, first.pk)
    saved = Annotation.objects.get()
    assert (saved.name, saved.score, saved.label, saved.comment, saved.run_id) == (
        "human",
        0.9,
        "good",
        "fixed my mind",
        run.pk,
    )


def test_grading_a_finished_run_changes_none_of_its_counters(capitals, graded, user):
    run, results = graded
    before = (run.status, run.succeeded_count, run.failed_count, run.score_stats, run.updated_at)

    annotations.annotation_save(result=results[1], dataset=capitals, author=user, score=0.0, label="bad")

    run.refresh_from_db()
    assert (run.status, run.succeeded_count, run.failed_count, run.score_stats, run.updated_at) == before


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"name": "robot", "score": 1}, "name", "one of: human"),
        ({"score": 1.5}, "score", "between 0 and 1"),
        ({"score": True}, "score", "a number"),
        ({"score": float("nan")}, "score", "a number"),
        ({"label": "meh"}, "label", "allowed: good, bad, unsure"),
        ({"comment": "no grade"}, "score", "a score, a label or both"),
        ({"score": 10**400}, "score", "between 0 and 1"),  # too big for a float: no OverflowError
        ({"score": 1, "comment": "a\x00b"}, "comment", "NUL"),  # PostgreSQL text cannot hold it
    ],
)
def test_a_bad_annotation_names_its_field_and_stores_nothing(capitals, graded, user, fields, field, says):
    _, results = graded

    with pytest.raises(InvalidInput) as error:
        annotations.annotation_save(result=results[0], dataset=capitals, author=user, **fields)

    assert says in error.value.errors[field][0]
    assert not Annotation.objects.exists()


def test_run_stats_give_each_name_its_mean_count_and_label_counts(capitals, graded, user, django_user_model):
    run, results = graded
    bob = django_user_model.objects.create_user("bob")
    services.dataset_update(
        dataset=capitals, annotation_config=[{"name": "human", "labels": ["good", "bad"]}, {"name": "tone"}]
    )
    annotations.annotation_save(result=results[0], dataset=capitals, author=user, score=1.0, label="good")
    annotations.annotation_save(result=results[1], dataset=capitals, author=user, score=0.0, label="bad")
    annotations.annotation_save(result=results[1], dataset=capitals, author=bob, score=0.5, label="good")
    annotations.annotation_save(result=results[2], dataset=capitals, author=bob, name="tone", score=0.25)

    stats = annotations.run_stats([run.pk])[run.pk]

    assert stats["human"].as_summary() == {"mean": 0.5, "count": 3, "labels": {"good": 2, "bad": 1}}
    assert stats["tone"].as_summary() == {"mean": 0.25, "count": 1, "labels": {}}
    assert annotations.reviewed_count(run.pk, name="human") == 2
    assert annotations.reviewed_count(run.pk, name="human", author=bob) == 1
    # Per item, the authors' mean, keyed as compare reads it beside scorer ids.
    per_item = annotations.item_scores([run.pk])[run.pk]
    assert per_item[(results[1].item_id, 0)] == {"annotation:human": 0.25}


def test_the_label_settings_are_cleaned_and_bad_ones_refused(capitals):
    config = annotations.parse_config_text("human: good | bad |  good \n\ntone\n")

    assert config == [{"name": "human", "labels": ["good", "bad"]}, {"name": "tone", "labels": []}]
    assert annotations.config_text(config) == "human: good | bad\ntone"
    with pytest.raises(InvalidInput, match="Duplicate annotation name"):
        annotations.parse_config_text("human: a\nhuman: b")
    with pytest.raises(InvalidInput, match="At least one"):
        services.dataset_update(dataset=capitals, annotation_config=[])
    # What the settings text could not write back unchanged is refused at every door.
    with pytest.raises(InvalidInput, match="Invalid annotation name"):
        services.dataset_update(dataset=capitals, annotation_config=[{"name": "tone:formal"}])
    with pytest.raises(InvalidInput, match="Invalid labels"):
        services.dataset_update(dataset=capitals, annotation_config=[{"name": "human", "labels": ["good|ok"]}])


def test_a_split_change_is_a_new_dataset_version_and_the_old_version_keeps_its_split(capitals):
    items = list(capitals.items.order_by("position"))

    moved = services.items_set_split(dataset=capitals, item_ids=[items[0].pk, items[1].pk], split=" test ")
    again = services.items_set_split(dataset=capitals, item_ids=[items[0].pk], split="test")

    capitals.refresh_from_db()
    assert (moved, again, capitals.version) == (2, 0, 2)  # nothing to move: no new version
    items[0].refresh_from_db()
    assert items[0].updated_at > items[2].updated_at
    assert services.dataset_splits(capitals) == ["test"]
    at = DatasetItemVersion.objects.at_version
    assert at(capitals, 1).in_split("test").count() == 0
    assert at(capitals, 2).in_split("test").count() == 2


@pytest.mark.django_db(transaction=True)  # the worker commits as it goes
def test_a_run_on_a_split_runs_only_its_items(capitals, run_worker):
    items = list(capitals.items.order_by("position"))
    services.items_set_split(dataset=capitals, item_ids=[items[2].pk], split="hard")

    run = services.run_start(
        dataset=capitals, target_type="workflow", target_id="echo", scorer_ids=["exact-match"], split="hard"
    )
    run = run_worker(run.pk)

    assert (run.status, run.split, run.total_items) == ("completed", "hard", 1)
    assert list(run.results.values_list("item_id", flat=True)) == [items[2].pk]


def test_a_rerun_of_the_failures_stays_on_the_split(capitals):
    items = list(capitals.items.order_by("position"))
    services.items_set_split(dataset=capitals, item_ids=[items[0].pk, items[1].pk], split="hard")
    run = make_run(capitals, split="hard")
    add_result(run, items[0], error="boom")
    add_result(run, items[1])
    end_run(run)

    rerun = services.run_rerun_failed(run=run)

    assert (rerun.split, rerun.total_items) == ("hard", 1)


def test_a_split_with_no_items_is_refused_naming_the_split(capitals):
    with pytest.raises(InvalidInput) as error:
        services.run_start(dataset=capitals, target_type="workflow", target_id="echo", split="nope")

    assert "No items in split 'nope'" in error.value.errors["split"][0]


def test_items_keep_their_metadata_and_split_through_updates(capitals):
    item = services.item_create(dataset=capitals, input="q", metadata={"b": 1, "a": 2}, split="train")

    services.item_update(item=item, split=None)

    item.refresh_from_db()
    assert (item.metadata, item.split) == ({"b": 1, "a": 2}, None)
    with pytest.raises(InvalidInput):
        services.item_create(dataset=capitals, input="q", split="x" * 51)
