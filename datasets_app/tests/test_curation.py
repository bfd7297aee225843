"""Curation functions: results turned into items, and OpenAI chat fine-tuning lines
(of items, and of a run's reviewed results)."""

import json

import pytest

from datasets_app import annotations, curation, exports, projects, services
from datasets_app.exceptions import InvalidInput
from datasets_app.models import DatasetItemVersion
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(capitals):
    """A finished run of the capitals: France and Japan answered, Peru failed."""
    run = make_run(capitals)
    items = list(capitals.items.order_by("position"))
    results = [
        add_result(run, items[0], output="Paris"),
        add_result(run, items[1], output={"city": "Kyoto"}, score=0.0),
        add_result(run, items[2], error="timeout", score=None),
    ]
    end_run(run)
    return run, results


# ---- items from results -----------------------------------------------------------


def test_results_become_items_in_one_version_with_their_source(make_dataset, finished):
    run, results = finished
    target = make_dataset(name="Hard cases")
    items = curation.items_from_results(
        dataset=target, run=run, result_ids=[results[1].pk, str(results[0].pk)], split="hard"
    )
    target.refresh_from_db()
    assert target.version == 1 and target.item_count == 2
    assert DatasetItemVersion.objects.filter(dataset=target).values("dataset_version").distinct().count() == 1
    assert [i.input for i in items] == [results[1].input, results[0].input]  # the order given
    assert [i.expected_output for i in items] == [{"city": "Kyoto"}, "Paris"]
    assert {i.split for i in items} == {"hard"}
    assert items[0].metadata == {
        "source": {
            "runId": str(run.pk),
            "resultId": str(results[1].pk),
            "datasetId": str(run.dataset_id),
            "itemId": str(results[1].item_id),
            "expectedFrom": "output",
        }
    }


def test_expected_output_from_the_item(make_dataset, finished):
    run, results = finished
    target = make_dataset(name="Fixed")
    [item] = curation.items_from_results(dataset=target, run=run, result_ids=[results[1].pk], expected_from="expected")
    assert item.expected_output == "Tokyo" and (item.metadata or {})["source"]["expectedFrom"] == "expected"


def test_refusals_name_their_field_and_add_nothing(make_dataset, finished, django_user_model):
    run, results = finished
    target = make_dataset(name="Target")
    outsider = django_user_model.objects.create_user(username="olga", password="pw-olga-123")
    elsewhere = services.dataset_create(project=projects.personal_project(outsider), name="Elsewhere")
    cases = [
        ({"dataset": elsewhere, "result_ids": [results[0].pk]}, "runId"),
        ({"dataset": target, "result_ids": []}, "resultIds"),
        ({"dataset": target, "result_ids": ["nope"]}, "resultIds"),
        ({"dataset": target, "result_ids": [results[0].pk], "expected_from": "both"}, "expectedFrom"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as info:
            curation.items_from_results(run=run, **kwargs)
        assert field in info.value.errors
    target.refresh_from_db()
    assert target.version == 0 and elsewhere.items.count() == 0


# ---- fine-tuning lines ---------------------------------------------------------------


def test_finetune_lines_are_chat_examples_one_per_answered_pair():
    pairs = [
        ("What is 2+2?", "4"),
        ({"question": "Capital of France?", "system": "Answer in one word."}, "Paris"),
        ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "old"}]}, "Hello!"),
        ({"a": 1, "b": [2]}, {"sum": 3}),
        ("No answer", None),
        ("Empty answer", ""),
    ]
    lines = list(curation.finetune_lines(pairs))
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    examples = [json.loads(line) for line in lines]
    assert len(examples) == 4
    for example in examples:
        roles = [m["role"] for m in example["messages"]]
        assert roles[-1] == "assistant" and "user" in roles
        assert all(isinstance(m["content"], str) for m in example["messages"])
    assert examples[0]["messages"] == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    assert examples[1]["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert examples[1]["messages"][1] == {"role": "user", "content": "Capital of France?"}
    assert examples[2]["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert json.loads(examples[3]["messages"][0]["content"]) == {"a": 1, "b": [2]}
    assert json.loads(examples[3]["messages"][1]["content"]) == {"sum": 3}


def test_reviewed_results_are_approved_by_someone_and_rejected_by_none(finished, capitals, user, django_user_model):
    run, (france, japan, peru) = finished
    bob = django_user_model.objects.create_user(username="bob", password="pw-bob-123")
    capitals.annotation_config = [
        {"name": "human", "labels": ["good", "bad", "unsure"]},
        {"name": "tone", "labels": []},
    ]
    capitals.save()
    # France: a "good" and a 0.9 → in. Japan: 0.8 from alice, "bad" from bob → out.
    annotations.annotation_save(result=france, dataset=capitals, author=user, label="good")
    annotations.annotation_save(result=france, dataset=capitals, author=bob, name="tone", score=0.9)
    annotations.annotation_save(result=japan, dataset=capitals, author=user, score=0.8)
    annotations.annotation_save(result=japan, dataset=capitals, author=bob, label="bad")
    # Peru failed: approved, but there is no output to learn.
    annotations.annotation_save(result=peru, dataset=capitals, author=user, score=1.0)
    assert list(exports.reviewed_results(run)) == [france]
    annotations.annotation_save(result=france, dataset=capitals, author=bob, name="tone", score=0.4)
    assert list(exports.reviewed_results(run)) == []
    # "unsure" alone neither approves nor rejects.
    annotations.annotation_save(result=japan, dataset=capitals, author=bob, label="unsure")
    annotations.annotation_save(result=japan, dataset=capitals, author=user, label="unsure")
    assert list(exports.reviewed_results(run)) == []


def test_reviewed_finetune_export_writes_the_runs_output(finished, capitals, user):
    run, (france, japan, _) = finished
    annotations.annotation_save(result=france, dataset=capitals, author=user, score=0.5)
    annotations.annotation_save(result=japan, dataset=capitals, author=user, label="good")
    response = exports.export_reviewed_finetune(run)
    examples = [json.loads(line) for line in response.getvalue().decode().splitlines()]
    assert [e["messages"][-1]["content"] for e in examples] == ["Paris", '{"city":"Kyoto"}']
    assert examples[0]["messages"][0] == {"role": "user", "content": "What is the capital of France?"}
