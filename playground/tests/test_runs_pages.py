"""The run page and result page as a team reads them: named runs, results in
dataset order labelled by position, paging, chosen columns, the live region,
the latency, usage and name cards, and a result's diff and neighbours."""

import re
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from datasets_app import projects, services
from datasets_app.models import DatasetRun
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def detail_url(run):
    return reverse("run-detail", args=[run.dataset_id, run.id])


def fragment_url(run):
    return reverse("run-results-fragment", args=[run.dataset_id, run.id])


def result_url(result):
    return reverse("result-detail", args=[result.run.dataset_id, result.run_id, result.id])


def in_order(dataset):
    return list(dataset.items.order_by("position"))


def find(pattern: str, text: str, group: int = 1) -> str:
    """What `pattern` (DOTALL) matched in `text`; fails the test when nothing did."""
    match = re.search(pattern, text, re.S)
    assert match, f"{pattern!r} not found"
    return match.group(group)


def item_labels(html: str) -> list[str]:
    return re.findall(r'<a class="item-link"[^>]*>([^<]+)</a>', html)


@pytest.fixture
def numbered(make_dataset):
    return make_dataset(
        name="Numbered",
        items=[{"input": {"question": f"q{n}", "n": n}, "expectedOutput": f"a{n}"} for n in range(1, 8)],
    )


def test_results_are_listed_in_dataset_order_and_labelled_by_position(browser_client, numbered):
    run = make_run(numbered)
    items = in_order(numbered)
    # The worker finishes them out of order: 5, 2, 7, 1, …
    for item in [items[4], items[1], items[6], items[0], items[3], items[2], items[5]]:
        add_result(run, item, output=f"out-{item.position}")
    end_run(run)
    html = browser_client.get(detail_url(run)).content.decode()
    assert item_labels(html) == ["#1", "#2", "#3", "#4", "#5", "#6", "#7"]
    assert re.findall(r">out-(\d)<", html) == ["1", "2", "3", "4", "5", "6", "7"]
    # Sorting by latency still works, and still labels by position.
    by_latency = browser_client.get(detail_url(run), {"sort": "-latency"}).content.decode()
    assert sorted(item_labels(by_latency)) == sorted(item_labels(html))


def test_page_size_is_in_the_url_and_a_form_jumps_to_a_page(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": n} for n in range(60)])
    run = make_run(dataset)
    for item in in_order(dataset):
        add_result(run, item, output=f"r{item.position:02d}")
    end_run(run)
    small = browser_client.get(detail_url(run), {"size": "25"}).content.decode()
    assert len(item_labels(small)) == 25 and "Page 1 of 3" in small
    assert '<option value="25" selected>' in small
    third = browser_client.get(detail_url(run), {"size": "25", "page": "3"}).content.decode()
    assert item_labels(third) == [f"#{n}" for n in range(51, 61)]
    # The jump form keeps every other parameter as a hidden field.
    jump = re.search(r'<form method="get"[^>]*aria-label="Go to a page of results">(.*?)</form>', third, re.S)
    assert jump and '<input type="hidden" name="size" value="25">' in jump.group(1)
    assert 'name="page"' in jump.group(1) and 'max="3"' in jump.group(1)
    # Sizes outside the offer fall back to 50.
    odd = browser_client.get(detail_url(run), {"size": "7"}).content.decode()
    assert len(item_labels(odd)) == 50
    everything = browser_client.get(detail_url(run), {"size": "200"}).content.decode()
    assert len(item_labels(everything)) == 60


def test_chosen_columns_show_json_fields_escaped_and_limited(browser_client, make_dataset):
    dataset = make_dataset(
        items=[{"input": {"question": "<b>bold?</b>", "lang": "en"}, "expectedOutput": {"answer": "x"}}]
    )
    run = make_run(dataset)
    add_result(run, in_order(dataset)[0], output={"answer": "<i>y</i>", "why": "z"})
    end_run(run)
    html = browser_client.get(
        detail_url(run), {"cols": "input.question,output.answer,expected.answer,input.<script>"}
    ).content.decode()
    headers = re.findall(r'<th scope="col" class="extra-col"><code>(.*?)</code></th>', html)
    assert headers == ["input.question", "output.answer", "expected.answer", "input.&lt;script&gt;"]
    cells = re.findall(r'<td class="cell-json extra-col">(.*?)</td>', html)
    assert cells == ["&lt;b&gt;bold?&lt;/b&gt;", "&lt;i&gt;y&lt;/i&gt;", "x", ""]
    assert "<b>bold" not in html and "<script>" not in html
    too_many = browser_client.get(
        detail_url(run), {"cols": "input.a,input.b,input.c,input.d,input.e,nonsense.x"}
    ).content.decode()
    assert len(re.findall(r'class="extra-col"><code>', too_many)) == 4
    assert "2 columns left out" in too_many


def test_the_polling_fragment_carries_every_query_parameter(browser_client, numbered):
    run = make_run(numbered)
    add_result(run, in_order(numbered)[0])
    query = {"errors": "1", "q": "x", "size": "100", "cols": "input.question", "page": "2", "sort": "latency"}
    for url in (detail_url(run), fragment_url(run)):
        html = browser_client.get(url, query).content.decode()
        root = unescape(find(r'<section id="run-results"[^>]*>', html, 0))
        polled = find(r'hx-get="([^"]+)"', root)
        assert polled.startswith(fragment_url(run) + "?")
        assert {k: v[0] for k, v in parse_qs(urlparse(polled).query).items()} == query


def test_live_region_says_how_far_the_run_is_and_each_poll_updates_it(browser_client, numbered):
    run = make_run(numbered)
    for item in in_order(numbered)[:3]:
        add_result(run, item)
    page = browser_client.get(detail_url(run)).content.decode()
    region = re.search(r'<p id="run-live-status"[^>]*>([^<]*)</p>', page)
    assert region and "3 of 7 done" in region.group(1)
    assert 'aria-live="polite"' in region.group(0)
    # The region lives outside the swapped section; the fragment updates its text out of band.
    assert page.index('id="run-live-status"') < page.index('<section id="run-results"')
    add_result(run, in_order(numbered)[3], error="boom")
    fragment = browser_client.get(fragment_url(run)).content.decode()
    oob = re.search(r'<div hx-swap-oob="innerHTML:#run-live-status">([^<]*)</div>', fragment)
    assert oob and oob.group(1) == "4 of 7 done, 1 failed."


def test_latency_card_never_says_no_results_beside_results(browser_client, numbered):
    run = make_run(numbered)
    add_result(run, in_order(numbered)[0], latency=240)
    html = browser_client.get(detail_url(run)).content.decode()
    card = find(r'<article class="card summary-card latency-card">(.*?)</article>', html)
    assert "No results yet." not in card and "240 ms" in card
    # A run whose row never counted latencies (stored before it did) says so, not "No results yet.".
    DatasetRun.objects.filter(pk=run.pk).update(latency_stats={})
    html = browser_client.get(detail_url(run)).content.decode()
    card = find(r'<article class="card summary-card latency-card">(.*?)</article>', html)
    assert "No results yet." not in card and "holds no latency figures" in card


def test_header_shows_name_description_and_tags(browser_client, numbered):
    run = make_run(numbered, status="completed")
    services.run_update(run=run, name="Prompt v2 <b>", description="Shorter system prompt", tags=["prod", "v2"])
    html = browser_client.get(detail_url(run)).content.decode()
    assert '<span class="run-name">Prompt v2 &lt;b&gt;</span>' in html
    assert "Shorter system prompt" in html
    assert re.findall(r'<li class="tag"><a [^>]*>([^<]+)</a></li>', html) == ["prod", "v2"]
    assert '<span aria-current="page">Prompt v2 &lt;b&gt;</span>' in html  # breadcrumb


def test_a_nameless_run_is_named_after_its_target_and_start(browser_client, numbered):
    run = make_run(numbered, status="completed")
    DatasetRun.objects.filter(pk=run.pk).update(name="")
    run.refresh_from_db()
    html = browser_client.get(detail_url(run)).content.decode()
    expected = f"echo · {run.created_at:%Y-%m-%d %H:%M}"
    assert f'<span class="run-name">{expected}</span>' in html


def test_an_editor_renames_describes_and_tags_a_run(browser_client, numbered):
    run = make_run(numbered, status="completed")
    html = browser_client.get(detail_url(run)).content.decode()
    assert "Edit name, description and tags" in html
    response = browser_client.post(
        detail_url(run), {"name": "  Baseline  ", "description": "The first one", "tags": "prod, v1, prod"}
    )
    assert response.status_code == 302 and response.url == detail_url(run)
    run.refresh_from_db()
    assert (run.name, run.description, run.tags) == ("Baseline", "The first one", ["prod", "v1"])
    refused = browser_client.post(detail_url(run), {"name": " ", "tags": ""})
    assert refused.status_code == 400 and "This field is required." in refused.content.decode()
    too_many = browser_client.post(detail_url(run), {"name": "x", "tags": ",".join(f"t{n}" for n in range(30))})
    assert too_many.status_code == 400 and "At most 20 tags" in too_many.content.decode()
    run.refresh_from_db()
    assert run.name == "Baseline"


def test_a_viewer_sees_no_edit_form_and_cannot_post_one(client, numbered, django_user_model, project):
    run = make_run(numbered, status="completed")
    viewer = django_user_model.objects.create_user(username="victor", password="pw-victor-123")
    projects.member_set(project=project, username="victor", role="viewer")
    client.force_login(viewer)
    html = client.get(detail_url(run)).content.decode()
    assert "Edit name, description and tags" not in html and 'method="post" action="' + detail_url(run) not in html
    assert client.post(detail_url(run), {"name": "Mine"}).status_code == 403
    run.refresh_from_db()
    assert run.name != "Mine"


def test_token_usage_totals_and_cost_shown_when_present(browser_client, numbered, settings):
    settings.PLAYGROUND_MODEL_PRICES = {"gpt-test": {"input": 1.0, "output": 2.0}}
    run = make_run(numbered)
    plain = browser_client.get(detail_url(run)).content.decode()
    assert "Tokens and cost" not in plain
    for item in in_order(numbered)[:2]:
        add_result(
            run,
            item,
            usage={"model": "gpt-test", "promptTokens": 1000, "completionTokens": 500, "totalTokens": 1500},
        )
    end_run(run)
    html = browser_client.get(detail_url(run)).content.decode()
    card = find(r'<article class="card summary-card usage-card">(.*?)</article>', html)
    assert re.search(r"Total tokens</dt><dd[^>]*>3000<", card)
    assert re.search(r"Prompt</dt><dd[^>]*>2000<", card)
    assert re.search(r"Completion</dt><dd[^>]*>1000<", card)
    assert re.search(r"Cost</dt><dd[^>]*>0.0040<", card)  # 2000 × 1 + 1000 × 2 per million


def test_trace_links_say_what_they_open(browser_client, numbered):
    run = make_run(numbered)
    result = add_result(run, in_order(numbered)[0], trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    html = browser_client.get(detail_url(run)).content.decode()
    assert re.search(r'<a class="trace-link" [^>]*>Trace …0e0e4736</a>', html)
    page = browser_client.get(result_url(result)).content.decode()
    assert re.search(r'<a class="trace-link" [^>]*>View trace \(1 span\)</a>', page)


# ---- result detail ---------------------------------------------------------------------


def test_result_page_diffs_output_against_expected_word_by_word(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": "q", "expectedOutput": "The capital is <Paris>.\n  Indeed"}])
    run = make_run(dataset)
    result = add_result(run, in_order(dataset)[0], output="The capital is <Lyon>.\n  Indeed")
    html = browser_client.get(result_url(result)).content.decode()
    diff = find(r'<pre class="diff">(.*?)</pre>', html)
    assert diff == "The capital is &lt;<del>Paris</del><ins>Lyon</ins>&gt;.\n  Indeed"


def test_result_page_diffs_json_values_key_by_key(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": "q", "expectedOutput": {"city": "Paris", "country": "France"}}])
    run = make_run(dataset)
    result = add_result(run, in_order(dataset)[0], output='{"country": "France", "city": "Lyon"}')
    diff = re.search(r'<pre class="diff">(.*?)</pre>', browser_client.get(result_url(result)).content.decode(), re.S)
    assert diff and "&quot;city&quot;: &quot;<del>Paris</del><ins>Lyon</ins>&quot;" in diff.group(1)
    assert "&quot;country&quot;: &quot;France&quot;" in diff.group(1)


def test_result_page_says_when_output_matches(browser_client, numbered):
    run = make_run(numbered)
    result = add_result(run, in_order(numbered)[0], output="a1")
    html = browser_client.get(result_url(result)).content.decode()
    assert "matches the expected output exactly" in html and '<pre class="diff">' not in html


def test_result_page_links_previous_and_next_in_dataset_order(browser_client, numbered):
    run = make_run(numbered)
    items = in_order(numbered)
    results = {}
    for item in [items[2], items[0], items[1]]:  # finished out of order
        results[item.position] = add_result(run, item)
    middle = browser_client.get(result_url(results[2])).content.decode()
    assert f'href="{result_url(results[1])}" rel="prev" id="result-prev">← Item #1' in middle
    assert f'href="{result_url(results[3])}" rel="next" id="result-next">Item #3 →' in middle
    first = browser_client.get(result_url(results[1])).content.decode()
    assert 'id="result-prev"' not in first and "First result" in first
    last = browser_client.get(result_url(results[3])).content.decode()
    assert 'id="result-next"' not in last and "Last result" in last


def test_result_page_shows_the_item_context_position_and_run_name(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": "a"}, {"input": "b", "context": {"delayMs": 5, "note": "<ctx>"}}])
    run = make_run(dataset)
    services.run_update(run=run, name="Nightly")
    result = add_result(run, in_order(dataset)[1])
    html = browser_client.get(result_url(result)).content.decode()
    assert "<h1>Item #2 " in html
    assert "&quot;note&quot;: &quot;&lt;ctx&gt;&quot;" in html
    assert f'<a href="{detail_url(run)}">Nightly</a>' in html
    assert "<title>Item #2 · Nightly" in html
