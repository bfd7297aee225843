"""The dataset detail page: items table, search, versions, add/edit/delete, bulk, history, runs tab."""

import json
import re

import pytest
from django.urls import reverse

from datasets_app import services
from datasets_app.models import DatasetRun
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def live_inputs(dataset):
    return sorted(json.dumps(i.input) for i in dataset.items.live())


def item_of(dataset, text):
    return next(i for i in dataset.items.live() if text in json.dumps(i.input))


def test_detail_lists_items_pretty_printed(browser_client, capitals):
    html = browser_client.get(capitals.get_absolute_url()).content.decode()
    assert '<pre class="json">{\n  &quot;question&quot;: &quot;What is the capital of France?&quot;\n}</pre>' in html
    assert "&quot;Paris&quot;" in html


def test_script_in_an_item_is_escaped(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": "<script>alert(1)</script>", "expectedOutput": {"html": "<b>x</b>"}}])
    html = browser_client.get(dataset.get_absolute_url()).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "<b>x</b>" not in html


def test_items_are_paginated_by_25(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": f"question {n:02}"} for n in range(30)])
    html = browser_client.get(dataset.get_absolute_url()).content.decode()
    assert html.count('name="item_ids"') == 25
    assert "Page 1 of 2" in html
    second = browser_client.get(dataset.get_absolute_url(), {"page": 2}).content.decode()
    assert second.count('name="item_ids"') == 5


def test_search_box_is_debounced_htmx_and_fragment_filters(browser_client, capitals):
    html = browser_client.get(capitals.get_absolute_url()).content.decode()
    assert 'hx-trigger="input changed delay:300ms, search"' in html
    assert f'hx-get="{reverse("dataset-items-table", args=[capitals.id])}"' in html
    response = browser_client.get(
        reverse("dataset-items-table", args=[capitals.id]), {"q": "Japan"}, HTTP_HX_REQUEST="true"
    )
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<div id="items-table">')
    assert "<html" not in fragment
    assert "Japan" in fragment and "France" not in fragment
    assert response["HX-Push-Url"] == f"{capitals.get_absolute_url()}?q=Japan"


def test_search_without_match_says_so(browser_client, capitals):
    html = browser_client.get(capitals.get_absolute_url(), {"q": "Atlantis"}).content.decode()
    assert "No item matches “Atlantis”" in html


def test_empty_dataset_tells_what_to_do(browser_client, make_dataset):
    dataset = make_dataset(name="Fresh")
    html = browser_client.get(dataset.get_absolute_url()).content.decode()
    assert "This dataset has no items yet" in html
    assert reverse("dataset-import", args=[dataset.id]) in html


def test_add_item_creates_a_version(browser_client, capitals):
    response = browser_client.post(
        reverse("item-create", args=[capitals.id]),
        {"input": '{"question": "Capital of Chile?"}', "expected_output": '"Santiago"', "context": ""},
    )
    assert response.status_code == 302
    capitals.refresh_from_db()
    assert capitals.version == 2 and capitals.item_count == 4
    item = item_of(capitals, "Chile")
    assert item.expected_output == "Santiago" and item.context is None


def test_add_item_with_bad_json_shows_error_next_to_field_and_writes_nothing(browser_client, capitals):
    response = browser_client.post(
        reverse("item-create", args=[capitals.id]), {"input": "{question: 'x'}", "expected_output": "Paris"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert '<ul class="errorlist" id="id_input_error"><li>Not valid JSON' in html
    assert '<ul class="errorlist" id="id_expected_output_error"><li>Not valid JSON' in html
    # The typed text comes back so the user can fix it.
    assert "{question: &#x27;x&#x27;}" in html
    capitals.refresh_from_db()
    assert capitals.version == 1 and capitals.item_count == 3


def test_add_item_without_input_is_refused(browser_client, capitals):
    html = browser_client.post(reverse("item-create", args=[capitals.id]), {"input": ""}).content.decode()
    assert 'id="id_input_error"' in html and "This field is required." in html
    assert capitals.items.count() == 3


def test_schema_violation_is_shown_next_to_the_field(browser_client, make_dataset):
    dataset = make_dataset(
        name="Typed",
        input_schema={"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
        output_schema={"type": "string"},
    )
    response = browser_client.post(
        reverse("item-create", args=[dataset.id]), {"input": '{"city": 42}', "expected_output": "7"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_input_error"' in html and "at city: 42 is not of type &#x27;string&#x27;" in html
    assert 'id="id_expected_output_error"' in html and "7 is not of type &#x27;string&#x27;" in html
    assert not dataset.items.exists()


def test_edit_in_place_swaps_row_for_form_and_back(browser_client, capitals):
    item = item_of(capitals, "France")
    url = reverse("item-edit", args=[capitals.id, item.id])
    form_html = browser_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert form_html.lstrip().startswith(f'<tr id="item-{item.id}" class="editing">')
    assert f'hx-post="{url}"' in form_html and "&quot;Paris&quot;" in form_html

    response = browser_client.post(
        url,
        {"input": '{"question": "What is the capital of France?"}', "expected_output": '"Paris, France"'},
        HTTP_HX_REQUEST="true",
    )
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="item-{item.id}"') and "Paris, France" in row
    item.refresh_from_db()
    capitals.refresh_from_db()
    assert item.expected_output == "Paris, France" and item.version == 2 and capitals.version == 2

    cancel = browser_client.get(reverse("item-row", args=[capitals.id, item.id]), HTTP_HX_REQUEST="true")
    assert "Paris, France" in cancel.content.decode() and "<textarea" not in cancel.content.decode()


def test_edit_with_invalid_json_keeps_the_form_with_the_error(browser_client, capitals):
    item = item_of(capitals, "France")
    response = browser_client.post(
        reverse("item-edit", args=[capitals.id, item.id]),
        {"input": "{", "expected_output": ""},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert "Not valid JSON" in html and 'class="editing"' in html
    item.refresh_from_db()
    assert item.version == 1


def test_edit_without_htmx_is_a_page(browser_client, capitals):
    item = item_of(capitals, "Japan")
    url = reverse("item-edit", args=[capitals.id, item.id])
    assert f"<h1>Edit item #{item.position}</h1>" in browser_client.get(url).content.decode()
    response = browser_client.post(url, {"input": '"Japan?"', "expected_output": '"Tokyo"'})
    assert response["Location"] == capitals.get_absolute_url()
    item.refresh_from_db()
    assert item.input == "Japan?"


def test_delete_item_asks_then_creates_a_version(browser_client, capitals):
    item = item_of(capitals, "Peru")
    url = reverse("item-delete", args=[capitals.id, item.id])
    assert f"Delete item #{item.position}?" in browser_client.get(url).content.decode()
    browser_client.post(url)
    capitals.refresh_from_db()
    assert capitals.item_count == 2 and capitals.version == 2
    assert "Peru" not in browser_client.get(capitals.get_absolute_url()).content.decode()


def test_version_selector_shows_the_old_snapshot(browser_client, capitals):
    item = item_of(capitals, "France")
    services.item_update(item=item, expected_output="Paris (updated)")
    services.item_delete(item=item_of(capitals, "Peru"))
    capitals.refresh_from_db()
    assert capitals.version == 3

    current = browser_client.get(capitals.get_absolute_url()).content.decode()
    assert "Paris (updated)" in current and "Peru" not in current
    assert '<option value="1">v1</option>' in current

    old = browser_client.get(capitals.get_absolute_url(), {"version": 1}).content.decode()
    assert "&quot;Paris&quot;" in old and "Paris (updated)" not in old and "Peru" in old
    assert "Showing the items as they were at version 1 (read-only)" in old
    assert 'name="item_ids"' not in old and 'hx-target="closest tr"' not in old


def test_item_history_lists_every_version(browser_client, capitals):
    item = item_of(capitals, "France")
    services.item_update(item=item, expected_output="Paris!")
    services.item_delete(item=item)
    html = browser_client.get(reverse("item-history", args=[capitals.id, item.id])).content.decode()
    assert html.count("<tr>") == 4  # header + three versions
    assert "created" in html and "edited" in html and 'badge-failed">deleted' in html
    assert "Paris!" in html and f"?version={capitals.version}" in html
    assert "<h1>History of item #1</h1>" in html


def test_bulk_delete_confirms_then_deletes_as_one_version(browser_client, capitals):
    ids = [str(i.id) for i in capitals.items.live().order_by("-position")[:2]]
    url = reverse("items-bulk", args=[capitals.id])
    confirm = browser_client.post(url, {"action": "delete", "item_ids": ids}).content.decode()
    assert "Delete 2 items?" in confirm
    # Named by position, in the dataset's order (whatever order the ids came in).
    positions = re.findall(r'<li><span class="num">#(\d+)</span>', confirm)
    assert positions == sorted(positions) and len(positions) == 2
    assert capitals.items.live().count() == 3
    browser_client.post(url, {"action": "delete", "item_ids": ids, "confirmed": "yes"})
    capitals.refresh_from_db()
    assert capitals.item_count == 1 and capitals.version == 2


def test_bulk_action_without_selection_says_so(browser_client, capitals):
    response = browser_client.post(reverse("items-bulk", args=[capitals.id]), {"action": "delete"}, follow=True)
    assert "Select at least one item first." in response.content.decode()


def test_bulk_copy_to_another_dataset(browser_client, capitals, make_dataset):
    target = make_dataset(name="Target")
    ids = [str(item_of(capitals, "Japan").id)]
    response = browser_client.post(
        reverse("items-bulk", args=[capitals.id]),
        {"action": "copy", "item_ids": ids, "target": str(target.id)},
        follow=True,
    )
    assert "Copied 1 items to “Target”" in response.content.decode()
    target.refresh_from_db()
    assert target.item_count == 1 and target.items.get().expected_output == "Tokyo"


def test_bulk_copy_refused_by_target_schema_writes_nothing(browser_client, capitals, make_dataset):
    target = make_dataset(name="Strings only", input_schema={"type": "string"})
    response = browser_client.post(
        reverse("items-bulk", args=[capitals.id]),
        {"action": "copy", "item_ids": [str(i.id) for i in capitals.items.all()], "target": str(target.id)},
        follow=True,
    )
    assert "Nothing copied" in response.content.decode()
    assert not target.items.exists()


def test_bulk_export_selected(browser_client, capitals):
    ids = [str(item_of(capitals, "Peru").id)]
    response = browser_client.post(
        reverse("items-bulk", args=[capitals.id]), {"action": "export-jsonl", "item_ids": ids}
    )
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["expectedOutput"] == "Lima"


# ---- runs tab --------------------------------------------------------------------


def test_runs_tab_has_start_form_with_targets_grouped_by_type(browser_client, capitals):
    html = browser_client.get(capitals.get_absolute_url(), {"tab": "runs"}).content.decode()
    assert f'action="{reverse("run-start", args=[capitals.id])}"' in html
    assert '<optgroup label="workflow">' in html
    assert '<option value="workflow:echo">Echo workflow</option>' in html
    assert 'name="scorers"' in html and 'type="checkbox"' in html
    assert 'name="max_concurrency" value="5"' in html
    assert 'name="version" value="1"' in html
    assert "No runs yet" in html


def test_runs_table_polls_only_while_a_run_is_active(browser_client, capitals):
    run = make_run(capitals)
    first, *rest = capitals.items.all()
    add_result(run, first)
    fragment_url = reverse("dataset-runs-table", args=[capitals.id])
    html = browser_client.get(capitals.get_absolute_url(), {"tab": "runs"}).content.decode()
    assert 'hx-trigger="every 2s"' in html and f'hx-get="{fragment_url}?runs_page=1"' in html
    assert 'class="badge badge-running"' in html and "1/3" in html
    assert reverse("run-detail", args=[capitals.id, run.id]) in html

    for item in rest:
        add_result(run, item)
    end_run(run)
    fragment = browser_client.get(fragment_url, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="runs-table">')
    assert "hx-trigger" not in fragment and 'class="badge badge-completed"' in fragment and "3/3" in fragment


def test_runs_table_shows_each_scorers_mean(browser_client, capitals):
    scored = make_run(capitals)
    for item, score in zip(capitals.items.all(), [0.0, 1.0, 1.0], strict=True):
        add_result(scored, item, score=score)
    end_run(scored)
    make_run(capitals, status=DatasetRun.Status.PENDING)
    html = browser_client.get(capitals.get_absolute_url(), {"tab": "runs"}).content.decode()
    assert '<code>exact-match</code> <span class="num">0.667</span>' in html
    assert '<code>exact-match</code> <span class="num">—</span>' in html


def test_run_start_form_to_run_kwargs(capitals):
    from playground.forms import RunStartForm

    form = RunStartForm(
        {
            "target": "workflow:echo",
            "scorers": ["exact-match"],
            "version": "1",
            "max_concurrency": "3",
            "item_timeout": "",
            "max_retries": "2",
            "repetitions": "1",
        },
        dataset=capitals,
    )
    assert form.is_valid(), form.errors
    assert form.to_run_kwargs() == {
        "dataset": capitals,
        "target_type": "workflow",
        "target_id": "echo",
        "scorer_ids": ["exact-match"],
        "version": 1,
        "max_concurrency": 3,
        "item_timeout": None,
        "max_retries": 2,
        "repetitions": 1,
        "split": None,
    }
    bad = RunStartForm(
        {"target": "workflow:nope", "version": "9", "max_concurrency": "0", "max_retries": "0", "repetitions": "1"},
        dataset=capitals,
    )
    assert not bad.is_valid()
    assert set(bad.errors) == {"target", "version", "max_concurrency"}


def test_items_show_their_position_newest_first(browser_client, capitals):
    services.item_create(dataset=capitals, input="a fourth")
    html = browser_client.get(capitals.get_absolute_url()).content.decode()
    positions = [html.index(f'<th scope="row" class="num position">#{n}</th>') for n in (4, 3, 2, 1)]
    assert positions == sorted(positions), "newest item first, each with its #position"
    france = item_of(capitals, "France")
    assert f'value="{france.id}" form="bulk-form" aria-label="Select item #1"' in html
    assert 'Edit<span class="visually-hidden"> item #1</span>' in html


def test_saved_edit_updates_the_version_figures_out_of_band(browser_client, capitals):
    item = item_of(capitals, "Japan")
    response = browser_client.post(
        reverse("item-edit", args=[capitals.id, item.id]),
        {"input": '"Japan?"', "expected_output": '"Tokyo"'},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="item-{item.id}" class="just-saved">')
    template = html[html.index("<template>") : html.index("</template>")]
    assert '<span class="num" id="dataset-version" hx-swap-oob="true">2</span>' in template
    assert '<select id="item-version" name="version" hx-swap-oob="true"' in template
    assert '<option value="2" selected>v2 (current)</option><option value="1">v1</option>' in template
    assert '<span id="items-version" hx-swap-oob="true">2</span>' in template
    # The page carries the same ids for the swap to land on.
    page = browser_client.get(capitals.get_absolute_url()).content.decode()
    assert '<span class="num" id="dataset-version">2</span>' in page
    assert '<select id="item-version" name="version"' in page and '<span id="items-version">2</span>' in page


def _tag(html, start, name):
    """The opening tag `<start …>` that carries name="<name>"."""
    return next(tag for tag in re.findall(rf"<{start}\b[^>]*>", html) if f'name="{name}"' in tag)


def test_edit_form_takes_the_focus_and_gives_it_back_to_the_row(browser_client, capitals):
    item = item_of(capitals, "Japan")
    url = reverse("item-edit", args=[capitals.id, item.id])
    form_html = browser_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert form_html.count("autofocus") == 1 and " autofocus" in _tag(form_html, "textarea", "input")
    invalid = browser_client.post(
        url, {"input": '"ok"', "expected_output": "{broken"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert invalid.count("autofocus") == 1 and " autofocus" in _tag(invalid, "textarea", "expected_output")

    cancel = browser_client.get(reverse("item-row", args=[capitals.id, item.id]), HTTP_HX_REQUEST="true")
    assert cancel.content.decode().count("autofocus") == 1
    assert 'hx-swap="outerHTML" autofocus>Edit<' in cancel.content.decode()
    page = browser_client.get(capitals.get_absolute_url()).content.decode()
    assert "autofocus" not in page, "the page itself does not steal the focus"


@pytest.fixture
def nothing_configured(settings):
    settings.OPENAI_BASE_URL = settings.OPENAI_API_KEY = settings.HTTP_TARGET_URL = ""
    return settings


def test_runs_tab_offers_only_what_is_configured(browser_client, capitals, nothing_configured):
    html = browser_client.get(capitals.get_absolute_url(), {"tab": "runs"}).content.decode()
    assert 'value="model:chat"' not in html and 'value="http:endpoint"' not in html
    assert 'value="factuality"' not in html and 'value="closed-qa"' not in html
    assert 'value="exact-match"' in html and 'value="workflow:echo"' in html
    # What is left out is named, with what to set.
    assert "Not available: " in html
    assert "Chat model (OpenAI-compatible) (Set OPENAI_BASE_URL or OPENAI_API_KEY)" in html
    assert "(Set HTTP_TARGET_URL)" in html
    assert "Factuality (LLM judge) (Set OPENAI_BASE_URL or OPENAI_API_KEY)" in html

    # Posting one anyway starts nothing.
    form = {"target": "model:chat", "version": 1, "max_concurrency": 5, "max_retries": 0, "repetitions": 1}
    browser_client.post(reverse("run-start", args=[capitals.id]), form)
    browser_client.post(
        reverse("run-start", args=[capitals.id]), {**form, "target": "workflow:echo", "scorers": "factuality"}
    )
    assert not capitals.runs.exists()


def test_runs_tab_offers_the_chat_model_and_judges_once_configured(browser_client, capitals, nothing_configured):
    nothing_configured.OPENAI_API_KEY = "sk-test"
    html = browser_client.get(capitals.get_absolute_url(), {"tab": "runs"}).content.decode()
    assert '<option value="model:chat">Chat model (OpenAI-compatible)</option>' in html
    assert 'value="factuality"' in html and 'value="closed-qa"' in html
    assert "Set OPENAI_BASE_URL" not in html


def test_an_unavailable_plugin_reason_is_escaped(browser_client, capitals):
    from datasets_app.runs import registry

    registry.register_target("agent", "fussy", name="<i>Fussy</i>", available=lambda: "<b>Set FUSSY</b>")(
        lambda input, context: input
    )
    try:
        html = browser_client.get(capitals.get_absolute_url(), {"tab": "runs"}).content.decode()
    finally:
        registry.unregister_target("agent", "fussy")
    assert "&lt;i&gt;Fussy&lt;/i&gt; (&lt;b&gt;Set FUSSY&lt;/b&gt;)" in html
    assert "<b>Set FUSSY</b>" not in html and 'value="agent:fussy"' not in html
