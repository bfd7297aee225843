"""Django admin: every model is listed, searchable and opens; history is read-only;
datasets and items are validated as the API validates them and saved through the services."""

import html as html_lib
import re
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from datasets_app import admin as admin_module
from datasets_app import annotations, services
from datasets_app.models import (
    Dataset,
    DatasetItem,
    DatasetItemVersion,
    DatasetRun,
    DatasetRunResult,
    DatasetVersion,
    Trace,
    TraceOutbox,
)
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_with_a_run(admin_client, admin_user, capitals):
    run = make_run(capitals)
    for n, item in enumerate(capitals.items.all()):
        result = add_result(run, item, trace_id=f"{n:032x}")
    end_run(run)
    annotations.annotation_save(result=result, dataset=capitals, author=admin_user, score=0.5, label="unsure")
    TraceOutbox.objects.create(trace_id=f"{0:032x}")  # a trace waiting for OTLP export
    return admin_client


ADMIN_MODELS = list(apps.get_app_config("datasets_app").get_models())


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda model: model.__name__)
def test_every_model_lists_searches_and_opens(admin_client_with_a_run, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client_with_a_run.get(changelist).status_code == 200
    assert admin_client_with_a_run.get(changelist, {"q": "capital"}).status_code == 200
    obj = model.objects.first()
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    assert admin_client_with_a_run.get(change).status_code == 200


def test_results_cannot_be_edited_or_added(admin_client_with_a_run):
    result = DatasetRunResult.objects.earliest("started_at")
    url = reverse("admin:datasets_app_datasetrunresult_change", args=[result.pk])
    page = admin_client_with_a_run.get(url).content.decode()
    assert 'name="_save"' not in page  # shown read-only
    assert admin_client_with_a_run.post(url, {"output": '"tampered"', "latency": 1}).status_code == 403
    assert admin_client_with_a_run.get(reverse("admin:datasets_app_datasetrunresult_add")).status_code == 403


def test_the_run_page_links_its_results_and_filters_by_status(admin_client_with_a_run):
    run = DatasetRun.objects.get()
    page = admin_client_with_a_run.get(reverse("admin:datasets_app_datasetrun_change", args=[run.pk])).content.decode()
    assert f"run__id__exact={run.pk}" in page
    listing = admin_client_with_a_run.get(
        reverse("admin:datasets_app_datasetrun_changelist"), {"status__exact": "completed"}
    )
    assert str(run.pk) in listing.content.decode()


def test_deleting_items_from_admin_writes_a_new_dataset_version(admin_client_with_a_run, capitals):
    item = DatasetItem.objects.filter(dataset=capitals).earliest("created_at")
    admin_client_with_a_run.post(
        reverse("admin:datasets_app_datasetitem_changelist"),
        {"action": "delete_with_version", "_selected_action": [str(item.pk)]},
    )
    capitals.refresh_from_db()
    item.refresh_from_db()
    assert item.is_deleted and capitals.version == 2 and capitals.item_count == 2


# ---- writes: validated as the API validates, saved through the services ----------------------


class _Fields(HTMLParser):
    """The values a browser would post back from an admin form, as rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "checkbox", "button"):
            self.data[name] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select] = attrs.get("value") or ""

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def post_form(client, url: str, **fields):
    """GET the admin form, change `fields`, POST it back (management forms included)."""
    parser = _Fields()
    parser.feed(client.get(url).content.decode())
    data = {name: value for name, value in parser.data.items() if not name.startswith("_")}
    data.pop("csrfmiddlewaretoken", None)
    return client.post(url, {**data, **fields, "_save": "Save"})


def field_errors(response, field: str) -> list[str]:
    assert response.status_code == 200, "the form was not shown again"
    return list(response.context["adminform"].form.errors.get(field, []))


QUESTION_SCHEMA = {
    "type": "object",
    "required": ["question"],
    "properties": {"question": {"type": "string"}},
}


@pytest.fixture
def questions(make_dataset):
    return make_dataset(
        name="Questions",
        input_schema=QUESTION_SCHEMA,
        output_schema={"type": "string"},
        items=[{"input": {"question": "What is the capital of France?"}, "expectedOutput": "Paris"}],
    )


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ('{"type": 5}', "5 is not valid under any of the given schemas"),
        ('{"type": "string", "pattern": "(a)\\\\1"}', "pattern"),  # a backreference: not RE2
    ],
)
def test_an_invalid_schema_is_refused_on_its_field_and_nothing_is_stored(admin_client, schema, says):
    response = post_form(admin_client, reverse("admin:datasets_app_dataset_add"), name="Bad", input_schema=schema)
    assert any(says in error for error in field_errors(response, "input_schema"))
    assert not Dataset.objects.filter(name="Bad").exists()


def test_an_invalid_schema_is_refused_when_a_dataset_is_changed(admin_client, questions):
    url = reverse("admin:datasets_app_dataset_change", args=[questions.pk])
    response = post_form(admin_client, url, output_schema='{"type": 5}')
    assert field_errors(response, "output_schema")
    questions.refresh_from_db()
    assert questions.output_schema == {"type": "string"}


def test_a_dataset_added_in_admin_is_created_by_the_service(admin_client, project):
    response = post_form(
        admin_client,
        reverse("admin:datasets_app_dataset_add"),
        project=str(project.pk),
        name="  Spaced  ",
        input_schema='{"type": "object"}',
    )
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="Spaced")
    assert dataset.project == project
    assert dataset.input_schema == {"type": "object"} and dataset.version == 0


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("input", '{"question": 5}', "at question: 5 is not of type 'string'"),
        ("input", '{"asked": "?"}', "'question' is a required property"),
        ("expected_output", '["Paris"]', "is not of type 'string'"),
        ("input", '{"question": NaN}', "NaN"),  # the JSON gate
        ("context", '"\\ud800"', "lone surrogate"),
        ("input", "[" * 65 + "]" * 65, "nested deeper than 64 levels"),
    ],
)
def test_an_item_the_api_would_refuse_is_refused_and_nothing_is_stored(
    admin_client, api, questions, field, value, says
):
    fields = {
        "dataset": str(questions.pk),
        "input": '{"question": "Capital of Chile?"}',
        "expected_output": '"Santiago"',
    }
    response = post_form(admin_client, reverse("admin:datasets_app_datasetitem_add"), **{**fields, field: value})
    assert any(says in error for error in field_errors(response, field)), field_errors(response, field)
    questions.refresh_from_db()
    assert questions.item_count == 1 and questions.version == 1
    assert DatasetItemVersion.objects.filter(dataset=questions).count() == 1
    # The API still adds items to the dataset afterwards.
    added = api.post(
        f"/api/datasets/{questions.pk}/items",
        {"input": {"question": "Capital of Chile?"}, "expectedOutput": "Santiago"},
        format="json",
    )
    assert added.status_code == 201, added.content
    questions.refresh_from_db()
    assert questions.item_count == 2 and questions.version == 2


def test_an_item_added_in_admin_is_versioned_by_the_service(admin_client, questions):
    response = post_form(
        admin_client,
        reverse("admin:datasets_app_datasetitem_add"),
        dataset=str(questions.pk),
        input='{"question": "Capital of Chile?", "asked": "today"}',
        expected_output='"Santiago"',
    )
    assert response.status_code == 302
    item = DatasetItem.objects.get(dataset=questions, expected_output="Santiago")
    assert list(item.input) == ["question", "asked"]  # key order kept
    questions.refresh_from_db()
    assert questions.item_count == 2 and questions.version == 2
    [version] = DatasetItemVersion.objects.filter(item=item)
    assert version.dataset_version == 2 and version.version_number == 1


def test_an_item_changed_in_admin_gets_a_new_version_and_a_bad_change_is_refused(admin_client, questions):
    item = questions.items.get()
    url = reverse("admin:datasets_app_datasetitem_change", args=[item.pk])
    refused = post_form(admin_client, url, input='{"question": ["not", "a", "string"]}')
    assert field_errors(refused, "input")
    assert post_form(admin_client, url).status_code == 302  # saved unchanged: no new version
    item.refresh_from_db()
    assert item.version == 1 and item.input == {"question": "What is the capital of France?"}

    assert post_form(admin_client, url, input='{"question": "Capital of France?"}').status_code == 302
    item.refresh_from_db()
    questions.refresh_from_db()
    assert item.version == 2 and item.input == {"question": "Capital of France?"} and questions.version == 2
    assert list(
        DatasetItemVersion.objects.filter(item=item)
        .order_by("version_number")
        .values_list("version_number", "dataset_version", "valid_until")
    ) == [(1, 1, 2), (2, 2, None)]


def test_a_deleted_item_cannot_be_changed(admin_client, questions):
    item = questions.items.get()
    services.item_delete(item=item)
    url = reverse("admin:datasets_app_datasetitem_change", args=[item.pk])
    response = admin_client.post(url, {"_save": "Save"})
    assert response.status_code == 200
    assert "This item was deleted" in str(response.context["adminform"].form.non_field_errors())
    item.refresh_from_db()
    assert item.version == 2 and item.is_deleted


# ---- lists: what a row shows, and search --------------------------------------------------


def changelist(client, model, **params) -> str:
    opts = model._meta
    return client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"), params).content.decode()


def cell(html: str, column: str) -> list[str]:
    """The text of each row's cell in a list_display column (links unwrapped)."""
    cells = re.findall(rf'<t[dh] class="field-{column}[^"]*">(.*?)</t[dh]>', html, re.S)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in cells]


def test_every_list_has_a_search_box():
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == "datasets_app":
            assert model_admin.search_fields, f"{model.__name__} has no search"


def test_the_items_list_shows_position_and_an_escaped_shortened_input(admin_client, make_dataset):
    make_dataset(
        name="Markup",
        items=[{"input": "first"}, {"input": {"html": "<script>alert(1)</script>", "long": "x" * 200}}],
    )
    html = changelist(admin_client, DatasetItem, o="1")  # by position
    assert cell(html, "position_label") == ["#1", "#2"]
    previews = cell(html, "input_preview")
    assert previews[0] == "first"
    assert previews[1].startswith("{&quot;html&quot;:&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;")
    assert previews[1].endswith("…") and len(html_lib.unescape(previews[1])) == admin_module.PREVIEW_CHARS
    assert "<script>alert(1)" not in html


def test_the_results_list_shows_scores_and_an_output_preview(admin_client, capitals):
    run = make_run(capitals, scorer_ids=("exact-match", "contains"))
    france, japan, peru = capitals.items.order_by("position")
    add_result(run, france, output={"answer": "<b>Paris</b>"}, scores={"exact-match": 1.0, "contains": 0.5})
    add_result(run, japan, output="Tokyo", scores={"exact-match": 0.0, "contains": None})
    add_result(run, peru, output=None, error="Timed out after 5 s", score=None)
    html = changelist(admin_client, DatasetRunResult, o="3")  # by item position
    assert cell(html, "item_position") == ["#1", "#2", "#3"]
    assert cell(html, "score_list") == [
        "exact-match 1.00 · contains 0.50",
        "exact-match 0.00 · contains error",
        "exact-match error · contains error",
    ]
    assert cell(html, "output_preview") == [
        "{&quot;answer&quot;:&quot;&lt;b&gt;Paris&lt;/b&gt;&quot;}",
        "Tokyo",
        "Timed out after 5 s",
    ]


def test_traces_and_results_are_found_by_the_beginning_of_the_trace_id(admin_client, capitals):
    run = make_run(capitals)
    first, second, _ = capitals.items.order_by("position")
    add_result(run, first, trace_id="abcdef12" + "0" * 24)
    add_result(run, second, trace_id="12abcdef" + "0" * 24)
    for model in (Trace, DatasetRunResult):
        for query in ("abcdef12", "ABCDEF12", "abcdef12" + "0" * 24):
            html = changelist(admin_client, model, q=query)
            assert "abcdef12" in html and "12abcdef" not in html, (model, query)
        html = changelist(admin_client, model, q="cdef12")  # inside the id, not its beginning
        assert "abcdef12" not in html and "0 results" in html


def test_the_runs_list_shows_name_and_tags_and_searches_them(admin_client, capitals):
    make_run(capitals, name="Nightly <baseline>", tags=["nightly", "gpt-4o"])
    make_run(capitals, name="", tags=[])
    html = changelist(admin_client, DatasetRun, o="-7")
    assert "Nightly &lt;baseline&gt;" in cell(html, "name_or_id")
    assert "nightly, gpt-4o" in cell(html, "tag_list")
    assert cell(html, "target") == ["workflow/echo", "workflow/echo"]
    found = changelist(admin_client, DatasetRun, q="gpt-4o")
    assert "Nightly &lt;baseline&gt;" in found and "1 result" in found
    assert "1 result" in changelist(admin_client, DatasetRun, q="baseline")


def test_dataset_versions_are_searched_by_dataset_name(admin_client, capitals, make_dataset):
    make_dataset(name="Other", items=[{"input": "x"}])
    html = changelist(admin_client, DatasetVersion, q="Capitals")
    assert cell(html, "dataset") == ["Capitals"]
