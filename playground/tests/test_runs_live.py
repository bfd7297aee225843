"""The run page against a run executed by the real worker."""

import re

import pytest
from django.urls import reverse

from datasets_app.models import DatasetRun

pytestmark = pytest.mark.django_db(transaction=True)


def detail_url(run):
    return reverse("run-detail", args=[run.dataset_id, run.id])


def fragment_url(run):
    return reverse("run-results-fragment", args=[run.dataset_id, run.id])


def test_real_run_ends_with_final_results_traces_and_no_polling(browser_client, capitals, run_worker):
    response = browser_client.post(
        reverse("run-start", args=[capitals.id]),
        {
            "target": "workflow:echo",
            "scorers": [],
            "version": capitals.version,
            "max_concurrency": 2,
            "max_retries": 0,
            "repetitions": 1,
        },
    )
    run = DatasetRun.objects.get(dataset=capitals)
    assert response.url == detail_url(run)
    assert 'hx-trigger="every 2s"' in browser_client.get(detail_url(run)).content.decode()

    run = run_worker(run.id)
    assert run.status == "completed"
    html = browser_client.get(fragment_url(run)).content.decode()
    assert "hx-trigger" not in html and "hx-get" not in html
    assert html.count('<tr class="">') + html.count('<tr class="row-error">') == 3
    for question in ("France", "Japan", "Peru"):
        assert f"capital of {question}" in html
    trace_links = re.findall(r'<a class="trace-link" href="([^"]+)"', html)
    assert len(trace_links) == 3
    assert browser_client.get(trace_links[0]).status_code == 200
