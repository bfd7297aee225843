"""Human review on the run pages: review cards and a column per annotation name
on the run page (escaped, prefetched, sortable), the selection checkboxes for
"Add to dataset", the review links, the run's split; a result's reviews on its
page; the trace page's links to its result's review."""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from datasets_app import annotations, projects
from datasets_app.models import DatasetRun, DatasetRunResult
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_table_cache():
    cache.clear()
    yield
    cache.clear()


def detail_url(run):
    return reverse("run-detail", args=[run.dataset_id, run.id])


def fragment_url(run):
    return reverse("run-results-fragment", args=[run.dataset_id, run.id])


def result_url(result):
    return reverse("result-detail", args=[result.run.dataset_id, result.run_id, result.id])


def review_url(run):
    return reverse("run-review", args=[run.dataset_id, run.id])


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def reviewed(make_dataset, user):
    """A finished run of four items, with the dataset's "human" name (good | bad | unsure)
    and a second name "<i>tone</i>"; items 1–3 reviewed."""
    dataset = make_dataset(
        name="Reviewed", items=[{"input": {"q": f"q{n}"}, "expectedOutput": f"a{n}"} for n in range(1, 5)]
    )
    dataset.annotation_config = [
        {"name": "human", "labels": ["good", "bad", "unsure"]},
        {"name": "<i>tone</i>", "labels": ["<b>rude</b>", "polite"]},
    ]
    dataset.save(update_fields=["annotation_config"])
    run = make_run(dataset)
    results = [add_result(run, item, output=f"out {item.position}") for item in dataset.items.order_by("position")]
    end_run(run)
    run.refresh_from_db()
    save = annotations.annotation_save
    save(result=results[0], dataset=dataset, author=user, score=0.8, label="good", comment="<script>x()</script>")
    save(result=results[1], dataset=dataset, author=user, score=0.2, label="bad")
    save(result=results[2], dataset=dataset, author=user, label="good")
    save(result=results[0], dataset=dataset, author=user, name="<i>tone</i>", label="<b>rude</b>")
    return run, results


def test_run_page_shows_review_cards_escaped(browser_client, reviewed):
    run, _ = reviewed
    html = browser_client.get(detail_url(run)).content.decode()
    cards = re.findall(r'<article class="card summary-card review-card">(.*?)</article>', html, re.S)
    assert len(cards) == 2
    human = text(cards[0])
    assert human.startswith("human (review)")
    assert "Mean 0.500" in human and "3 reviewed" in human and "Labels good 2 · bad 1" in human
    assert text(cards[1]).startswith("&lt;i&gt;tone&lt;/i&gt; (review)") and "&lt;b&gt;rude&lt;/b&gt; 1" in cards[1]
    assert "no scores" in cards[1]
    assert "<i>tone" not in html and "<b>rude" not in html


def test_results_table_has_a_column_per_annotation_name(browser_client, reviewed):
    run, _ = reviewed
    html = browser_client.get(detail_url(run)).content.decode()
    heads = re.findall(r'<th scope="col" class="review-col"[^>]*><a id="sort-review-\d"[^>]*>([^<]+)</a>', html)
    assert heads == ["human (review)", "&lt;i&gt;tone&lt;/i&gt; (review)"]
    cells = [text(cell) for cell in re.findall(r'<td class="review-cell"[^>]*>(.*?)</td>', html, re.S)]
    assert cells == ["0.80 good", "&lt;b&gt;rude&lt;/b&gt;", "0.20 bad", "—", "good", "—", "—", "—"]


def test_results_table_sorts_by_an_annotation_score(browser_client, reviewed):
    run, _ = reviewed
    html = browser_client.get(detail_url(run), {"sort": "annotation:human"}).content.decode()
    assert re.findall(r'<a class="item-link"[^>]*>([^<]+)</a>', html) == ["#2", "#1", "#3", "#4"]
    assert 'aria-sort="ascending"' in html
    html = browser_client.get(detail_url(run), {"sort": "-annotation:human"}).content.decode()
    assert re.findall(r'<a class="item-link"[^>]*>([^<]+)</a>', html) == ["#1", "#2", "#3", "#4"]
    # A name the dataset does not have is no sort.
    html = browser_client.get(detail_url(run), {"sort": "annotation:nope"}).content.decode()
    assert re.findall(r'<a class="item-link"[^>]*>([^<]+)</a>', html) == ["#1", "#2", "#3", "#4"]


def test_a_finished_runs_table_shows_a_new_review_at_once(browser_client, reviewed, user):
    run, results = reviewed
    assert "0.20 bad" in text(browser_client.get(fragment_url(run)).content.decode())
    annotations.annotation_save(result=results[1], dataset=run.dataset, author=user, score=0.9, label="good")
    html = text(browser_client.get(fragment_url(run)).content.decode())
    assert "0.20 bad" not in html and "0.90 good" in html


def test_editors_get_a_checkbox_per_result_and_a_select_all(browser_client, reviewed):
    run, results = reviewed
    html = browser_client.get(detail_url(run)).content.decode()
    boxes = re.findall(r'<input type="checkbox" name="result_ids" value="([^"]+)" form="add-to-dataset"', html)
    assert boxes == [str(r.id) for r in results]
    assert 'aria-label="Select result #1"' in html
    assert "data-check-all='.results-table input[name=\"result_ids\"]'" in html


def test_viewers_get_no_checkboxes(client, reviewed, django_user_model):
    run, _ = reviewed
    viewer = django_user_model.objects.create_user(username="victor")
    projects.member_set(project=run.dataset.project, username="victor", role="viewer")
    client.force_login(viewer)
    html = client.get(detail_url(run)).content.decode()
    assert "review-cell" in html and 'name="result_ids"' not in html


def test_review_links_and_what_is_left_to_review(browser_client, reviewed):
    run, _ = reviewed
    html = browser_client.get(detail_url(run)).content.decode()
    assert f'id="review-results" href="{review_url(run)}"' in html
    assert f'id="review-unreviewed" href="{review_url(run)}?filter=unreviewed">Review unreviewed (1 left)' in html


def test_split_is_shown_only_when_the_run_has_one(browser_client, reviewed):
    run, _ = reviewed
    assert "<dt>Split</dt>" not in browser_client.get(detail_url(run)).content.decode()
    DatasetRun.objects.filter(pk=run.pk).update(split="hard-<cases>")
    html = browser_client.get(detail_url(run)).content.decode()
    assert '<dt>Split</dt><dd><code class="run-split">hard-&lt;cases&gt;</code></dd>' in html


def test_results_fragment_queries_do_not_grow_with_reviews(browser_client, make_dataset, user, django_user_model):
    dataset = make_dataset(name="Many", items=[{"input": n} for n in range(12)])
    run = make_run(dataset)
    results = [add_result(run, item) for item in dataset.items.all()]
    end_run(run)

    def queries() -> int:
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            assert browser_client.get(fragment_url(run)).status_code == 200
        return len(captured)

    unreviewed = queries()
    authors = [user, *(django_user_model.objects.create_user(username=f"r{n}") for n in range(3))]
    for result in results:
        for author in authors:
            annotations.annotation_save(result=result, dataset=dataset, author=author, score=0.5, label="good")
    assert queries() == unreviewed


def test_result_page_lists_its_reviews_escaped(browser_client, reviewed, django_user_model):
    run, results = reviewed
    bob = django_user_model.objects.create_user(username="<bob>")
    annotations.annotation_save(result=results[0], dataset=run.dataset, author=bob, score=0.4, label="unsure")
    html = browser_client.get(result_url(results[0])).content.decode()
    table = re.search(r'<table class="table reviews-table">(.*?)</table>', html, re.S)
    assert table
    rows = [text(row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)][1:]
    assert rows[0].startswith("&lt;i&gt;tone&lt;/i&gt; — &lt;b&gt;rude&lt;/b&gt;")
    assert rows[1].startswith("human 0.80 good &lt;script&gt;x()&lt;/script&gt; alice")
    assert rows[2].startswith("human 0.40 unsure &lt;bob&gt;")
    assert "<script>x()" not in html
    assert f'id="review-result" href="{review_url(run)}?filter=all&amp;result={results[0].id}"' in html


def test_result_page_without_reviews_says_so(browser_client, reviewed):
    _, results = reviewed
    html = browser_client.get(result_url(results[3])).content.decode()
    assert "Nobody has reviewed this result yet." in html


def test_trace_page_links_to_review_its_result(browser_client, make_dataset):
    dataset = make_dataset(name="Traced", items=[{"input": 1}])
    run = make_run(dataset)
    result = add_result(run, dataset.items.get(), trace_id="c" * 32)
    end_run(run)
    html = browser_client.get(reverse("trace-detail", args=["c" * 32])).content.decode()
    assert f'href="{review_url(run)}?filter=all&amp;result={result.id}" id="review-result"' in html
    assert DatasetRunResult.objects.filter(pk=result.pk).exists()


def test_a_live_runs_table_offers_no_checkboxes(browser_client, make_dataset):
    """The table is swapped every 2 s while the run is live: what was checked would be lost."""
    dataset = make_dataset(name="Live", items=[{"input": 1}, {"input": 2}])
    run = make_run(dataset)
    add_result(run, dataset.items.order_by("position").first())
    html = browser_client.get(detail_url(run)).content.decode()
    assert "item-link" in html and 'name="result_ids"' not in html


def test_the_poll_that_sees_the_run_end_brings_the_exports_and_review_links(
    browser_client, capitals, user, django_user_model
):
    run = make_run(capitals)
    results = [add_result(run, item) for item in capitals.items.order_by("position")]

    live = browser_client.get(fragment_url(run)).content.decode()
    end_run(run)
    bob = django_user_model.objects.create_user("bob")
    annotations.annotation_save(result=results[0], dataset=capitals, author=bob, score=1)
    annotations.annotation_save(result=results[1], dataset=capitals, author=user, score=1)
    final = browser_client.get(fragment_url(run)).content.decode()

    assert 'id="review-results"' not in live and "#run-actions" not in live
    assert 'hx-swap-oob="innerHTML:#run-actions"' in final and 'id="review-results"' in final
    assert 'id="finetune-export"' in final
    # Left for this user under the first name: bob's review of another result does not count.
    assert "Review unreviewed (2 left)" in text(final)
