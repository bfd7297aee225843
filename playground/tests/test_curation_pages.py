"""Curation in the pages: results added to a dataset, the items tab's split column,
filter and bulk "Set split…", runs on a split, the review labels setting and the
fine-tuning and annotated exports."""

import csv
import io
import json
import re

import pytest
from django.contrib.messages import get_messages
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from datasets_app import annotations, projects, services
from datasets_app.models import Dataset, DatasetRun
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def add_url(run) -> str:
    return reverse("results-add-to-dataset", args=[run.dataset_id, run.id])


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def team(user, django_user_model):
    """Alice's team project, with Victor as a viewer."""
    django_user_model.objects.create_user(username="victor", password="pw-victor-123")
    project = projects.project_create(user=user, name="Team")
    projects.member_set(project=project, username="victor", role="viewer")
    return project


@pytest.fixture
def finished(make_dataset, team):
    """A finished run over three capitals in the team project: France right, Japan wrong, Peru failed."""
    dataset = make_dataset(
        name="Capitals",
        project=team,
        items=[
            {"input": {"question": "Capital of France?"}, "expectedOutput": "Paris", "context": "Europe"},
            {"input": {"question": "Capital of Japan?"}, "expectedOutput": "Tokyo"},
            {"input": {"question": "Capital of Peru?"}, "expectedOutput": "Lima"},
        ],
    )
    run = make_run(dataset)
    items = list(dataset.items.order_by("created_at", "id"))
    results = [
        add_result(run, items[0], output="Paris"),
        add_result(run, items[1], output="Kyoto", score=0.0),
        add_result(run, items[2], error="timeout", score=None),
    ]
    end_run(run)
    run.results_list = results  # type: ignore[attr-defined]
    return run


def render_tag(run, user, **kwargs) -> str:
    request = RequestFactory().get("/somewhere/?tab=results&page=2")
    request.user = user
    template = Template("{% load curation %}{% add_to_dataset_form run result=result next=next %}")
    context = {"request": request, "run": run, "result": kwargs.get("result"), "next": kwargs.get("next")}
    return template.render(Context(context))


# ---- add to dataset -----------------------------------------------------------------


def test_selected_results_become_items_of_one_version_with_their_source(browser_client, finished):
    dataset = finished.dataset
    version = dataset.version
    france, japan, _ = finished.results_list
    next_url = finished.get_absolute_url() + "?errors=0"
    response = browser_client.post(
        add_url(finished),
        {
            "result_ids": [str(france.id), str(japan.id)],
            "target": str(dataset.id),
            "expected_from": "output",
            "split": "hard-cases",
            "next": next_url,
        },
    )
    assert response.status_code == 302 and response.url == next_url
    dataset.refresh_from_db()
    assert dataset.version == version + 1 and dataset.item_count == 5
    added = list(dataset.items.filter(split="hard-cases").order_by("position"))
    assert [i.expected_output for i in added] == ["Paris", "Kyoto"]
    assert added[0].input == {"question": "Capital of France?"} and added[0].context == "Europe"
    assert added[0].metadata["source"] == {
        "runId": str(finished.id),
        "resultId": str(france.id),
        "datasetId": str(dataset.id),
        "itemId": str(france.item_id),
        "expectedFrom": "output",
    }
    [message] = messages_of(response)
    assert message.startswith("Added 2 items to <a href=") and "“Capitals”</a> (split hard-cases)" in message


def test_expected_output_can_come_from_the_item(browser_client, finished):
    japan = finished.results_list[1]
    browser_client.post(add_url(finished), {"result_ids": [str(japan.id)], "expected_from": "expected"})
    newest = finished.dataset.items.order_by("-position").first()
    assert newest.expected_output == "Tokyo" and newest.split is None


def test_a_new_dataset_is_made_in_the_runs_project(browser_client, finished):
    france = finished.results_list[0]
    response = browser_client.post(
        add_url(finished),
        {"result_ids": [str(france.id)], "new_name": "hard cases", "expected_from": "output", "split": "hard-cases"},
    )
    new = Dataset.objects.get(name="hard cases")
    assert new.project_id == finished.dataset.project_id
    assert response.status_code == 302 and response.url == new.get_absolute_url()  # no `next`: the dataset
    assert new.version == 1 and [i.input for i in new.items.all()] == [{"question": "Capital of France?"}]
    assert messages_of(response) == [
        f'Added 1 item to <a href="{new.get_absolute_url()}?split=hard-cases">“hard cases”</a> (split hard-cases)'
    ]


def test_all_or_nothing_no_dataset_is_left_when_the_add_fails(browser_client, finished, make_dataset):
    other_run = make_run(make_dataset(name="Other", items=[{"input": "x"}]))
    stray = add_result(other_run, other_run.dataset.items.get())
    response = browser_client.post(
        add_url(finished), {"result_ids": [str(stray.id)], "new_name": "Never made", "expected_from": "output"}
    )
    assert response.status_code == 302 and response.url == finished.get_absolute_url()
    assert not Dataset.objects.filter(name="Never made").exists()
    [message] = messages_of(response)
    assert message.startswith("Nothing added:") and "Not results of this run" in message


def test_no_result_selected_is_a_clear_error(browser_client, finished):
    version = finished.dataset.version
    response = browser_client.post(add_url(finished), {"expected_from": "output", "next": "/datasets/"})
    assert response.url == "/datasets/"
    assert messages_of(response) == ["Nothing added: select at least one result first."]
    finished.dataset.refresh_from_db()
    assert finished.dataset.version == version


def test_a_bad_split_name_adds_nothing(browser_client, finished):
    france = finished.results_list[0]
    response = browser_client.post(
        add_url(finished), {"result_ids": [str(france.id)], "expected_from": "output", "split": "x" * 51}
    )
    assert messages_of(response)[0].startswith("Nothing added: Split:")
    assert finished.dataset.items.count() == 3


def test_next_elsewhere_is_not_followed(browser_client, finished):
    france = finished.results_list[0]
    response = browser_client.post(
        add_url(finished),
        {"result_ids": [str(france.id)], "expected_from": "output", "next": "https://evil.example/"},
    )
    assert response.url == finished.dataset.get_absolute_url()


def test_viewer_sees_no_form_and_cannot_post(client, finished, django_user_model):
    victor = django_user_model.objects.get(username="victor")
    assert render_tag(finished, victor).strip() == ""
    client.force_login(victor)
    france = finished.results_list[0]
    response = client.post(add_url(finished), {"result_ids": [str(france.id)], "expected_from": "output"})
    assert response.status_code == 403
    response = client.post(add_url(finished), {"result_ids": [str(france.id)], "new_name": "Mine"})
    assert response.status_code == 403
    assert finished.dataset.items.count() == 3 and not Dataset.objects.filter(name="Mine").exists()


def test_a_run_of_another_project_is_not_found(client, finished, django_user_model):
    mallory = django_user_model.objects.create_user(username="mallory", password="pw-mallory-123")
    client.force_login(mallory)
    france = finished.results_list[0]
    mine = services.dataset_create(project=projects.personal_project(mallory), name="Mallory's")
    response = client.post(
        add_url(finished), {"result_ids": [str(france.id)], "target": str(mine.id), "expected_from": "output"}
    )
    assert response.status_code == 404 and mine.items.count() == 0


def test_a_destination_in_another_project_is_refused(browser_client, finished, make_dataset):
    elsewhere = make_dataset(name="Personal")  # alice edits it, but it is not in the run's project
    france = finished.results_list[0]
    response = browser_client.post(
        add_url(finished), {"result_ids": [str(france.id)], "target": str(elsewhere.id), "expected_from": "output"}
    )
    assert "another project" in messages_of(response)[0] and elsewhere.items.count() == 0


def test_get_is_not_allowed(browser_client, finished):
    assert browser_client.get(add_url(finished)).status_code == 405


def test_the_form_for_an_editor(user, finished, make_dataset, team):
    make_dataset(name="Another in the team", project=team, items=[{"input": "a"}])
    services.items_set_split(dataset=finished.dataset, item_ids=[finished.dataset.items.first().pk], split="train")
    html = render_tag(finished, user)
    assert '<form id="add-to-dataset" method="post"' in html and f'action="{add_url(finished)}"' in html
    assert "csrfmiddlewaretoken" in html and "<details" in html
    assert f'<option value="{finished.dataset_id}" selected>Capitals</option>' in html
    assert "Another in the team" in html and "Personal" not in html
    assert 'name="new_name"' in html and 'name="expected_from"' in html
    # Results added because they went wrong keep the item's expected answer unless told otherwise.
    assert re.search(r'<input type="radio" name="expected_from" value="expected"[^>]*checked', html)
    assert not re.search(r'<input type="radio" name="expected_from" value="output"[^>]*checked', html)
    assert '<option value="train"></option>' in html  # the split names datalist
    assert 'name="next" value="/somewhere/?tab=results&amp;page=2"' in html
    assert 'type="hidden" name="result_ids"' not in html
    assert ">Add to dataset</button>" in html
    one = render_tag(finished, user, result=finished.results_list[0], next="/review/?result=1")
    assert f'<input type="hidden" name="result_ids" value="{finished.results_list[0].id}">' in one
    assert 'name="next" value="/review/?result=1"' in one  # the review queue names its own result's page


# ---- items tab: split column, filter, bulk split, item fields ---------------------------


@pytest.fixture
def split_capitals(capitals):
    items = list(capitals.items.order_by("created_at", "id"))
    services.items_set_split(dataset=capitals, item_ids=[items[0].pk, items[1].pk], split="train")
    return capitals


def test_split_filter_on_the_items_tab(browser_client, split_capitals):
    url = split_capitals.get_absolute_url()
    html = browser_client.get(url).content.decode()
    assert '<select id="item-split" name="split"' in html and '<option value="train">train</option>' in html
    assert '<span class="tag">train</span>' in html
    train = browser_client.get(url, {"split": "train"}).content.decode()
    assert "France" in train and "Japan" in train and "Peru" not in train
    none = browser_client.get(url, {"split": "__none__"}).content.decode()
    assert "Peru" in none and "France" not in none
    fragment = browser_client.get(
        reverse("dataset-items-table", args=[split_capitals.id]),
        {"split": "train", "q": "Japan"},
        HTTP_HX_REQUEST="true",
    )
    text = fragment.content.decode()
    assert "Japan" in text and "France" not in text
    assert fragment["HX-Push-Url"] == f"{url}?split=train&q=Japan"
    # The export links follow the filter.
    export = reverse("dataset-export", args=[split_capitals.id, "csv"])
    assert f'href="{export}?split=train"' in text
    # At the version before the split, nobody was in it.
    old = browser_client.get(url, {"split": "train", "version": 1}).content.decode()
    assert "No item is in split “train” at version 1" in old


def test_no_split_select_without_splits(browser_client, capitals):
    assert 'id="item-split"' not in browser_client.get(capitals.get_absolute_url()).content.decode()


def test_bulk_set_split_writes_one_version(browser_client, capitals):
    items = list(capitals.items.order_by("created_at", "id"))
    version = capitals.version
    response = browser_client.post(
        reverse("items-bulk", args=[capitals.id]),
        {"action": "set-split", "split": " test ", "item_ids": [str(i.pk) for i in items[:2]]},
    )
    assert response.status_code == 302
    capitals.refresh_from_db()
    assert capitals.version == version + 1
    assert messages_of(response) == [f"Moved 2 items to split “test” (version {capitals.version})."]
    assert sorted(capitals.items.filter(split="test").values_list("pk", flat=True)) == sorted(i.pk for i in items[:2])
    # Blank takes them out again.
    response = browser_client.post(
        reverse("items-bulk", args=[capitals.id]),
        {"action": "set-split", "split": "", "item_ids": [str(i.pk) for i in items]},
    )
    capitals.refresh_from_db()
    assert messages_of(response)[-1:] == [f"Took 2 items out of their split (version {capitals.version})."]
    assert not capitals.items.exclude(split=None).exists()


def test_bulk_set_split_is_offered_and_needs_an_editor(browser_client, capitals, client, team, make_dataset):
    html = browser_client.get(capitals.get_absolute_url()).content.decode()
    assert '<summary class="button">Set split…</summary>' in html and 'value="set-split"' in html
    shared = make_dataset(name="Shared", project=team, items=[{"input": "a"}])
    client.login(username="victor", password="pw-victor-123")
    response = client.post(
        reverse("items-bulk", args=[shared.id]),
        {"action": "set-split", "split": "x", "item_ids": [str(shared.items.get().pk)]},
    )
    assert response.status_code == 403


def test_item_create_and_edit_carry_metadata_and_split(browser_client, capitals):
    response = browser_client.post(
        reverse("item-create", args=[capitals.id]),
        {"input": '"Capital of Chile?"', "expected_output": '"Santiago"', "metadata": '{"by": "bob"}', "split": "test"},
    )
    assert response.status_code == 302
    item = capitals.items.get(input="Capital of Chile?")
    assert item.metadata == {"by": "bob"} and item.split == "test"
    edit_url = reverse("item-edit", args=[capitals.id, item.id])
    page = browser_client.get(edit_url).content.decode()
    assert "&quot;by&quot;: &quot;bob&quot;" in page and 'value="test"' in page
    assert '<option value="test"></option>' in page  # the split names datalist
    browser_client.post(edit_url, {"input": '"Capital of Chile?"', "metadata": '{"by": "eve"}', "split": ""})
    item.refresh_from_db()
    assert item.metadata == {"by": "eve"} and item.split is None
    bad = browser_client.post(edit_url, {"input": '"x"', "metadata": "{nope"})
    assert bad.status_code == 400 and "Not valid JSON" in bad.content.decode()


def test_item_metadata_is_shown_in_the_table(browser_client, capitals):
    services.item_create(dataset=capitals, input="q", metadata={"source": "slack"})
    html = browser_client.get(capitals.get_absolute_url()).content.decode()
    assert "<summary>Metadata" in html and "&quot;source&quot;: &quot;slack&quot;" in html


# ---- runs on a split ---------------------------------------------------------------------


def test_start_form_offers_the_splits(browser_client, split_capitals):
    html = browser_client.get(split_capitals.get_absolute_url(), {"tab": "runs"}).content.decode()
    assert '<option value="" selected>All items</option>' in html and "Split “train”" in html


def test_start_form_without_splits_has_no_split_field(browser_client, capitals):
    html = browser_client.get(capitals.get_absolute_url(), {"tab": "runs"}).content.decode()
    assert 'name="split"' not in html


@pytest.mark.django_db(transaction=True)
def test_a_run_on_a_split_runs_only_its_items(browser_client, split_capitals, run_worker):
    response = browser_client.post(
        reverse("run-start", args=[split_capitals.id]),
        {
            "target": "workflow:echo",
            "version": split_capitals.version,
            "max_concurrency": 2,
            "max_retries": 0,
            "repetitions": 1,
            "split": "train",
        },
    )
    run = DatasetRun.objects.get(dataset=split_capitals)
    assert response.url == run.get_absolute_url()
    assert run.split == "train" and run.total_items == 2
    run = run_worker(run.id)
    assert run.status == "completed"
    train = set(split_capitals.items.filter(split="train").values_list("pk", flat=True))
    assert set(run.results.values_list("item_id", flat=True)) == train


def test_a_split_that_is_gone_is_refused_by_the_form(browser_client, capitals):
    response = browser_client.post(
        reverse("run-start", args=[capitals.id]),
        {
            "target": "workflow:echo",
            "version": 1,
            "max_concurrency": 2,
            "max_retries": 0,
            "repetitions": 1,
            "split": "x",
        },
    )
    assert response.status_code == 302 and not DatasetRun.objects.exists()
    assert any("Items:" in m for m in messages_of(response))


# ---- review labels ------------------------------------------------------------------------


def test_review_labels_round_trip(browser_client, capitals):
    url = reverse("dataset-edit", args=[capitals.id])
    page = browser_client.get(url).content.decode()
    assert "Review labels" in page and "human: good | bad | unsure</textarea>" in page
    response = browser_client.post(
        url, {"name": "Capitals", "annotation_config": "correctness: right | wrong\n\ntone: polite|rude | \nnotes"}
    )
    assert response.status_code == 302
    capitals.refresh_from_db()
    assert capitals.annotation_config == [
        {"name": "correctness", "labels": ["right", "wrong"]},
        {"name": "tone", "labels": ["polite", "rude"]},
        {"name": "notes", "labels": []},
    ]
    assert (
        "correctness: right | wrong\ntone: polite | rude\nnotes</textarea>" in browser_client.get(url).content.decode()
    )


def test_review_labels_errors_are_shown_on_the_field(browser_client, capitals):
    url = reverse("dataset-edit", args=[capitals.id])
    response = browser_client.post(url, {"name": "Capitals", "annotation_config": "human: good\nhuman: bad"})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["annotation_config"] == ["Line “human: bad”: Names must be distinct."]
    blank = browser_client.post(url, {"name": "Capitals", "annotation_config": "  "})
    assert "annotation_config" in blank.context["form"].errors
    capitals.refresh_from_db()
    assert capitals.annotation_config == [{"name": "human", "labels": ["good", "bad", "unsure"]}]


def test_editing_without_the_labels_field_keeps_them(browser_client, capitals):
    services.dataset_update(dataset=capitals, annotation_config=[{"name": "stars", "labels": []}])
    response = browser_client.post(reverse("dataset-edit", args=[capitals.id]), {"name": "Renamed"})
    assert response.status_code == 302
    capitals.refresh_from_db()
    assert capitals.name == "Renamed" and capitals.annotation_config == [{"name": "stars", "labels": []}]


# ---- exports ---------------------------------------------------------------------------------


def test_item_exports_carry_metadata_and_split_and_filter_by_split(browser_client, split_capitals):
    services.item_create(dataset=split_capitals, input="q", metadata={"from": "slack"})
    url = reverse("dataset-export", args=[split_capitals.id, "jsonl"])
    rows = [json.loads(line) for line in body(browser_client.get(url)).splitlines()]
    assert sorted(str(r["split"]) for r in rows) == ["None", "None", "train", "train"]
    assert [r["metadata"] for r in rows if r["input"] == "q"] == [{"from": "slack"}]
    train = browser_client.get(url, {"split": "train"})
    assert train["Content-Disposition"] == f'attachment; filename="Capitals-v{split_capitals.version}-train.jsonl"'
    assert [json.loads(line)["split"] for line in body(train).splitlines()] == ["train", "train"]
    none = browser_client.get(reverse("dataset-export", args=[split_capitals.id, "csv"]), {"split": "__none__"})
    csv_rows = list(csv.DictReader(io.StringIO(body(none))))
    assert [(r["split"], r["metadata"]) for r in csv_rows] == [("", ""), ("", '{"from": "slack"}')]


def test_items_finetune_export(browser_client, split_capitals):
    services.item_create(dataset=split_capitals, input="no answer here")
    url = reverse("dataset-finetune-export", args=[split_capitals.id])
    response = browser_client.get(url)
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert (
        response["Content-Disposition"] == f'attachment; filename="Capitals-v{split_capitals.version}-finetune.jsonl"'
    )
    lines = [json.loads(line) for line in body(response).splitlines()]
    assert len(lines) == 3  # the item without an expected output is left out
    assert {"role": "user", "content": "What is the capital of France?"} in lines[0]["messages"]
    assert lines[0]["messages"][-1] == {"role": "assistant", "content": "Paris"}
    train = browser_client.get(url, {"split": "train"})
    assert len(body(train).splitlines()) == 2 and "-train-finetune.jsonl" in train["Content-Disposition"]
    page = browser_client.get(split_capitals.get_absolute_url()).content.decode()
    assert f'href="{url}"' in page and "Fine-tuning JSONL" in page


def test_run_exports_carry_annotations_and_reviewed_results_finetune(browser_client, finished, user):
    france, japan, _ = finished.results_list
    dataset = finished.dataset
    annotations.annotation_save(result=france, dataset=dataset, author=user, label="good", comment="spot on")
    annotations.annotation_save(result=japan, dataset=dataset, author=user, score=0.0, label="bad")
    jsonl = reverse("run-results-export", args=[dataset.id, finished.id, "jsonl"])
    rows = [json.loads(line) for line in body(browser_client.get(jsonl)).splitlines()]
    assert rows[0]["annotations"] == [
        {"name": "human", "score": None, "label": "good", "comment": "spot on", "author": "alice"}
    ]
    assert rows[1]["annotations"][0]["score"] == 0.0 and rows[2]["annotations"] == []
    csv_url = reverse("run-results-export", args=[dataset.id, finished.id, "csv"])
    cells = [r["annotations"] for r in csv.DictReader(io.StringIO(body(browser_client.get(csv_url))))]
    assert json.loads(cells[0])[0]["label"] == "good" and cells[2] == "[]"

    response = browser_client.get(reverse("run-finetune-export", args=[dataset.id, finished.id]))
    assert response["Content-Disposition"].endswith('-reviewed-finetune.jsonl"')
    lines = [json.loads(line) for line in body(response).splitlines()]
    assert lines == [
        {
            "messages": [
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris"},
            ]
        }
    ]


def test_exports_of_another_projects_run_are_not_found(client, finished, django_user_model):
    mallory = django_user_model.objects.create_user(username="mallory", password="pw-mallory-123")
    client.force_login(mallory)
    assert client.get(reverse("run-finetune-export", args=[finished.dataset_id, finished.id])).status_code == 404
    assert client.get(reverse("dataset-finetune-export", args=[finished.dataset_id])).status_code == 404


def test_in_an_htmx_fragment_the_form_returns_to_the_page(user, finished):
    from django_htmx.middleware import HtmxDetails

    request = RequestFactory().get(
        "/fragment/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/review/?filter=unreviewed"
    )
    request.user = user
    request.htmx = HtmxDetails(request)  # type: ignore[attr-defined]
    template = Template("{% load curation %}{% add_to_dataset_form run %}")
    html = template.render(Context({"request": request, "run": finished}))
    assert 'name="next" value="/review/?filter=unreviewed"' in html
