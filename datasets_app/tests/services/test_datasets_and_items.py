"""The dataset and item services: versions, counters and validation, called directly."""

import pytest

from datasets_app import services
from datasets_app.exceptions import InvalidInput, StateConflict
from datasets_app.models import Dataset, DatasetItemVersion

pytestmark = pytest.mark.django_db

QUESTION_SCHEMA = {"type": "object", "required": ["question"], "properties": {"question": {"type": "string"}}}


def items_at(dataset: Dataset, version: int) -> list:
    return sorted(v.snapshot["input"] for v in DatasetItemVersion.objects.at_version(dataset, version))


def test_a_dataset_needs_a_name_and_applicable_schemas(project):
    with pytest.raises(InvalidInput) as blank:
        services.dataset_create(project=project, name="  ")
    with pytest.raises(InvalidInput) as bad_schema:
        services.dataset_create(project=project, name="QA", output_schema={"type": "banana"})

    assert blank.value.errors == {"name": ["This field may not be blank."]}
    assert list(bad_schema.value.errors) == ["output_schema"]
    assert bad_schema.value.message.startswith("Invalid output schema: ")
    assert not Dataset.objects.exists()


def test_update_changes_only_the_fields_given(project):
    dataset = services.dataset_create(project=project, name="QA", description="first", metadata={"team": "a"})

    services.dataset_update(dataset=dataset, description=None, input_schema=QUESTION_SCHEMA)

    dataset.refresh_from_db()
    assert (dataset.name, dataset.description, dataset.metadata) == ("QA", "", {"team": "a"})
    assert dataset.input_schema == QUESTION_SCHEMA


def test_a_bulk_add_is_one_version_and_moves_the_item_count(project):
    dataset = services.dataset_create(project=project, name="QA")

    created = services.items_bulk_create(
        dataset=dataset, items=[{"input": 1}, {"input": 2, "expected_output": "two", "context": {"n": 2}}]
    )

    assert (dataset.version, dataset.item_count) == (1, 2)
    assert [(i.input, i.expected_output, i.context, i.version) for i in created] == [
        (1, None, None, 1),
        (2, "two", {"n": 2}, 1),
    ]
    assert items_at(dataset, 1) == [1, 2]


def test_a_bulk_add_is_all_or_nothing_with_errors_keyed_by_entry_and_path(project):
    dataset = services.dataset_create(
        project=project, name="QA", input_schema=QUESTION_SCHEMA, output_schema={"type": "string"}
    )

    with pytest.raises(InvalidInput) as error:
        services.items_bulk_create(
            dataset=dataset,
            items=[{"input": {"question": "ok?"}}, {"input": {"question": 1}, "expected_output": {"user_name": 2}}],
        )

    assert error.value.errors == {
        "items/1/input/question": ["1 is not of type 'string'"],
        "items/1/expected_output": ["{'user_name': 2} is not of type 'string'"],
    }
    dataset.refresh_from_db()
    assert (dataset.version, dataset.item_count) == (0, 0)


def test_an_update_writes_a_version_and_the_old_one_stays_readable(project):
    dataset = services.dataset_create(project=project, name="QA")
    item = services.item_create(dataset=dataset, input="old")

    services.item_update(item=item, input="new", context={"why": "typo"})

    item.refresh_from_db()
    assert (item.input, item.context, item.version, dataset.version) == ("new", {"why": "typo"}, 2, 2)
    assert items_at(dataset, 1) == ["old"] and items_at(dataset, 2) == ["new"]
    assert DatasetItemVersion.objects.filter(item=item).current().get().snapshot == {
        "input": "new",
        "expectedOutput": None,
        "context": {"why": "typo"},
        "metadata": None,
        "split": None,
    }


def test_an_update_is_checked_against_the_schema_and_a_deleted_item_cannot_change(project):
    dataset = services.dataset_create(project=project, name="QA", input_schema=QUESTION_SCHEMA)
    item = services.item_create(dataset=dataset, input={"question": "?"})

    with pytest.raises(InvalidInput) as error:
        services.item_update(item=item, input={})
    services.item_delete(item=item)
    with pytest.raises(StateConflict):
        services.item_update(item=item, input={"question": "again?"})

    assert error.value.errors == {"input": ["'question' is a required property"]}


def test_a_bulk_delete_tombstones_live_items_as_one_version(project):
    dataset = services.dataset_create(project=project, name="QA")
    first, second, third = services.items_bulk_create(dataset=dataset, items=[{"input": n} for n in (1, 2, 3)])
    services.item_delete(item=third)

    deleted = services.items_bulk_delete(dataset=dataset, item_ids=[first.pk, second.pk, third.pk])

    assert deleted == 2
    assert (dataset.version, dataset.item_count) == (3, 0)
    assert items_at(dataset, 2) == [1, 2] and items_at(dataset, 3) == []
    assert services.items_bulk_delete(dataset=dataset, item_ids=[first.pk]) == 0
    assert dataset.version == 3  # nothing deleted, no new version


def test_a_duplicate_copies_the_live_items_into_a_new_dataset(project):
    dataset = services.dataset_create(project=project, name="QA", input_schema={"type": "integer"})
    kept, dropped = services.items_bulk_create(dataset=dataset, items=[{"input": 1, "context": "c"}, {"input": 2}])
    services.item_delete(item=dropped)

    copy = services.dataset_duplicate(dataset=dataset)

    assert (copy.name, copy.version, copy.item_count, copy.input_schema) == ("QA (copy)", 1, 1, {"type": "integer"})
    assert [services.new_item_like(item) for item in copy.items.all()] == [services.new_item_like(kept)]


def test_an_entry_naming_an_unknown_field_is_refused_not_dropped(project):
    dataset = services.dataset_create(project=project, name="QA")

    with pytest.raises(InvalidInput) as error:
        services.items_bulk_create(dataset=dataset, items=[{"input": 1, "expectedOutput": 2}])  # type: ignore[typeddict-unknown-key]

    assert error.value.errors == {"expectedOutput": ["Not a field of an item."]}


def test_items_are_numbered_and_ordered_as_they_were_added(project):
    dataset = services.dataset_create(project=project, name="QA")
    first = services.items_bulk_create(dataset=dataset, items=[{"input": n} for n in range(300)])
    more = services.items_bulk_create(dataset=dataset, items=[{"input": "later"}])
    items = [*first, *more]
    assert [i.position for i in items] == list(range(1, 302))
    # Ids sort in the order added: runs execute and list items that way.
    assert sorted(items, key=lambda i: i.pk) == items
    services.items_bulk_delete(dataset=dataset, item_ids=[more[0].pk])
    assert services.item_create(dataset=dataset, input="again").position == 302  # never reused
