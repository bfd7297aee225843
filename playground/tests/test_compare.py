"""Comparing runs of a dataset in the browser."""

import re

import pytest
from django.urls import reverse

from datasets_app import services
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def compare(client, dataset, *runs, **query):
    return client.get(reverse("run-compare", args=[dataset.id]), {"runs": [str(r.id) for r in runs], **query})


@pytest.fixture
def two_runs(capitals):
    items = list(capitals.items.order_by("created_at", "id"))
    baseline = make_run(capitals)
    for item, score in zip(items, [1.0, 1.0, 0.5], strict=True):
        add_result(baseline, item, output=f"A-{item.expected_output}", score=score)
    end_run(baseline)
    services.item_create(dataset=capitals, input={"question": "Capital of Chile?"}, expected_output="Santiago")
    candidate = make_run(capitals)
    for item, score in zip(items, [1.0, 0.0, 1.0], strict=True):
        add_result(candidate, item, output=f"B-{item.expected_output}", score=score)
    end_run(candidate)
    return baseline, candidate


def test_regression_is_highlighted_and_version_mismatch_warned(browser_client, capitals, two_runs):
    baseline, candidate = two_runs
    html = compare(browser_client, capitals, baseline, candidate).content.decode()
    assert "version-mismatch" in html and "different dataset versions" in html
    assert "1 regressed" in html and "1 improved" in html
    assert re.search(r'<tr class="regressed">\s*<td><code title="[^"]+">', html)
    assert '<tr class="improved">' in html
    assert "A-Tokyo" in html and "B-Tokyo" in html  # outputs side by side
    assert 'badge-failed">regression' in html


def test_only_regressions_filter(browser_client, capitals, two_runs):
    baseline, candidate = two_runs
    html = compare(browser_client, capitals, baseline, candidate, only="regressions").content.decode()
    assert "B-Tokyo" in html and "B-Paris" not in html and "B-Lima" not in html


def test_page_offers_two_run_selects_and_empty_states(browser_client, capitals, two_runs):
    html = compare(browser_client, capitals).content.decode()
    assert html.count('name="runs"') == 2
    assert '<label for="compare-run-a">' in html and '<label for="compare-run-b">' in html


def test_run_of_another_dataset_is_left_out(browser_client, capitals, two_runs, make_dataset):
    other = make_dataset(name="Other", items=[{"input": 1}])
    foreign = make_run(other, status="completed")
    response = compare(browser_client, capitals, two_runs[0], foreign)
    assert response.status_code == 200
    assert "do not belong to this dataset" in response.content.decode()


def test_more_runs_are_compared_against_the_first(browser_client, capitals, two_runs):
    baseline, candidate = two_runs
    third = make_run(capitals, status="completed")
    html = compare(browser_client, capitals, baseline, candidate, third).content.decode()
    assert html.count('class="comparison"') == 2
