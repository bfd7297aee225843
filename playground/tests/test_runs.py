"""The run detail page, its polled results fragment, result detail and run actions."""

import re
import uuid
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from datasets_app.models import DatasetRun
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db
START = timezone.now()


def at(milliseconds: int):
    """A start time `milliseconds` after START, to order results."""
    return START + timedelta(milliseconds=milliseconds)


def detail_url(run):
    return reverse("run-detail", args=[run.dataset_id, run.id])


def fragment_url(run):
    return reverse("run-results-fragment", args=[run.dataset_id, run.id])


def section_root(html: str) -> str:
    """The opening tag of the polled results section."""
    match = re.search(r'<section id="run-results"[^>]*>', html)
    assert match, "results section missing"
    return match.group(0)


def items_of(dataset):
    return list(dataset.items.order_by("created_at", "id"))


@pytest.fixture
def many(make_dataset):
    return make_dataset(name="Many", items=[{"input": {"n": n}, "expectedOutput": n} for n in range(12)])


@pytest.mark.parametrize("status", ["pending", "running"])
def test_active_run_page_and_fragment_poll_every_two_seconds(browser_client, capitals, status):
    run = make_run(capitals, status=status)
    for response in (browser_client.get(detail_url(run)), browser_client.get(fragment_url(run))):
        assert response.status_code == 200
        root = section_root(response.content.decode())
        assert 'hx-trigger="every 2s"' in root
        assert f'hx-get="{fragment_url(run)}"' in root
        assert 'hx-swap="outerHTML"' in root


def test_fragment_is_the_section_alone(browser_client, capitals):
    run = make_run(capitals)
    html = browser_client.get(fragment_url(run)).content.decode()
    assert html.lstrip().startswith('<section id="run-results"')
    assert "<html" not in html


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_terminal_fragment_stops_polling_and_shows_every_result(browser_client, capitals, status):
    run = make_run(capitals)
    outputs = ["Paris", "Tokyo", "Lima"]
    for item, output in zip(items_of(capitals), outputs, strict=True):
        add_result(run, item, output=output)
    end_run(run, status)
    for url in (fragment_url(run), detail_url(run)):
        html = browser_client.get(url).content.decode()
        assert "hx-trigger" not in html
        assert "hx-get" not in html
        for output in outputs:
            assert f'<td class="cell-json">{output}</td>' in html
    assert f"{status}</span>" in html


def test_counters_and_progress_come_from_the_run_row(browser_client, capitals):
    run = make_run(capitals)
    first = items_of(capitals)[0]
    add_result(run, first)
    add_result(run, items_of(capitals)[1], error="boom")
    html = browser_client.get(fragment_url(run)).content.decode()
    assert 'value="2"' in html and "2 / 3 done (66%)" in html
    assert re.search(r"Succeeded</dt><dd[^>]*>1<", html)
    assert re.search(r"Failed</dt><dd[^>]*>1<", html)
    assert re.search(r"Pending</dt><dd[^>]*>1<", html)
    assert "Cancel run" in html


def test_user_html_in_input_and_output_is_escaped(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": {"q": "<script>alert('in')</script>"}}])
    run = make_run(dataset)
    result = add_result(run, items_of(dataset)[0], output="<script>alert('out')</script>")
    end_run(run)
    for url in (detail_url(run), reverse("result-detail", args=[dataset.id, run.id, result.id])):
        html = browser_client.get(url).content.decode()
        assert "<script>alert(" not in html
        assert "&lt;script&gt;alert(" in html


def test_trace_link_present_only_when_the_result_has_a_trace(browser_client, capitals):
    run = make_run(capitals)
    traced, untraced, _ = items_of(capitals)
    add_result(run, traced, trace_id="f" * 32, output="traced")
    add_result(run, untraced, output="untraced")
    end_run(run)
    html = browser_client.get(detail_url(run)).content.decode()
    trace_url = reverse("trace-detail", args=["f" * 32])
    assert html.count('class="trace-link"') == 1
    assert f'href="{trace_url}"' in html


def test_export_links_for_csv_and_jsonl(browser_client, capitals):
    run = make_run(capitals, status="completed")
    html = browser_client.get(detail_url(run)).content.decode()
    for fmt in ("csv", "jsonl"):
        assert reverse("run-results-export", args=[capitals.id, run.id, fmt]) in html


def test_run_under_another_dataset_is_404(browser_client, capitals, make_dataset):
    other = make_dataset(name="Other", items=[{"input": 1}])
    run = make_run(capitals)
    result = add_result(run, items_of(capitals)[0])
    for name, args in (
        ("run-detail", [other.id, run.id]),
        ("run-results-fragment", [other.id, run.id]),
        ("result-detail", [other.id, run.id, result.id]),
        ("result-detail", [capitals.id, make_run(capitals).id, result.id]),
    ):
        assert browser_client.get(reverse(name, args=args)).status_code == 404
    assert browser_client.post(reverse("run-cancel", args=[other.id, run.id])).status_code == 404


def test_unknown_run_is_404(browser_client, capitals):
    assert browser_client.get(reverse("run-detail", args=[capitals.id, uuid.uuid4()])).status_code == 404


def test_anonymous_visitor_is_sent_to_login(client, capitals):
    run = make_run(capitals)
    for url in (detail_url(run), fragment_url(run)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_cancel_post_cancels_an_active_run(browser_client, capitals):
    run = make_run(capitals)
    response = browser_client.post(reverse("run-cancel", args=[capitals.id, run.id]))
    assert response.status_code == 302 and response.url == detail_url(run)
    run.refresh_from_db()
    assert run.status == "cancelled"
    html = browser_client.get(detail_url(run)).content.decode()
    assert "Run cancelled." in html and "Cancel run" not in html


def test_cancel_of_a_finished_run_reports_the_conflict(browser_client, capitals):
    run = make_run(capitals, status="completed")
    response = browser_client.post(reverse("run-cancel", args=[capitals.id, run.id]), follow=True)
    assert "already completed" in response.content.decode()
    run.refresh_from_db()
    assert run.status == "completed"


def test_cancel_needs_post(browser_client, capitals):
    run = make_run(capitals)
    assert browser_client.get(reverse("run-cancel", args=[capitals.id, run.id])).status_code == 405


def test_rerun_failed_offered_for_finished_run_with_failures(browser_client, capitals):
    run = make_run(capitals)
    failed, *rest = items_of(capitals)
    add_result(run, failed, error="boom")
    for item in rest:
        add_result(run, item)
    end_run(run)
    html = browser_client.get(detail_url(run)).content.decode()
    assert reverse("run-rerun-failed", args=[capitals.id, run.id]) in html

    response = browser_client.post(reverse("run-rerun-failed", args=[capitals.id, run.id]))
    rerun = DatasetRun.objects.get(rerun_of=run)
    assert response.url == detail_url(rerun)
    assert rerun.total_items == 1 and rerun.status == "pending"


def test_rerun_of_a_run_without_failures_reports_why(browser_client, capitals):
    run = make_run(capitals)
    add_result(run, items_of(capitals)[0])
    end_run(run)
    html = browser_client.get(detail_url(run)).content.decode()
    assert "Rerun failed items" not in html
    response = browser_client.post(reverse("run-rerun-failed", args=[capitals.id, run.id]), follow=True)
    assert "no failed items" in response.content.decode()


def test_errors_only_filter_and_poll_url_keeps_the_query(browser_client, many):
    run = make_run(many)
    items = items_of(many)
    for n, item in enumerate(items[:6]):
        add_result(run, item, output=f"out-{n}", error=f"boom-{n}" if n % 2 else None, started_at=at(n))
    html = browser_client.get(detail_url(run), {"errors": "1"}).content.decode()
    assert "boom-1" in html and "boom-3" in html and "boom-5" in html
    assert "out-0<" not in html and "out-2<" not in html
    polled = unescape(section_root(browser_client.get(detail_url(run), {"errors": "1", "q": "out"}).content.decode()))
    assert f'hx-get="{fragment_url(run)}?errors=1&q=out"' in polled
    fragment = browser_client.get(fragment_url(run), {"errors": "1", "q": "out"}).content.decode()
    assert "errors=1&q=out" in unescape(section_root(fragment))
    assert "boom-" not in fragment  # a failed item has no output to match


def test_search_in_output(browser_client, capitals):
    run = make_run(capitals)
    for item, output in zip(items_of(capitals), ["Paris", "Tokyo", "Lima"], strict=True):
        add_result(run, item, output={"answer": output})
    end_run(run)
    html = browser_client.get(detail_url(run), {"q": "tok"}).content.decode()
    assert "Tokyo" in html and "Paris" not in html.split('id="run-results"')[1]


def test_score_below_filter(browser_client, capitals):
    run = make_run(capitals, scorer_ids=("exact-match", "contains"))
    for item, score in zip(items_of(capitals), [0.2, 0.5, 0.9], strict=True):
        add_result(run, item, output=f"score-{score}", scores={"exact-match": score, "contains": 1 - score})
    end_run(run)
    html = browser_client.get(detail_url(run), {"scorer": "exact-match", "below": "0.6"}).content.decode()
    assert "score-0.2" in html and "score-0.5" in html and "score-0.9" not in html


def test_sort_by_latency_and_by_score(browser_client, capitals):
    run = make_run(capitals)
    for n, (item, latency, score) in enumerate(zip(items_of(capitals), [300, 100, 200], [0.5, 0.9, 0.1], strict=True)):
        add_result(run, item, output=f"row-{latency}", latency=latency, score=score, started_at=at(n))
    end_run(run)

    def order(query):
        html = browser_client.get(detail_url(run), query).content.decode()
        return re.findall(r"row-(\d+)", html)

    assert order({}) == ["300", "100", "200"]
    assert order({"sort": "latency"}) == ["100", "200", "300"]
    assert order({"sort": "-latency"}) == ["300", "200", "100"]
    assert order({"sort": "score:exact-match"}) == ["200", "300", "100"]
    assert order({"sort": "-score:exact-match"}) == ["100", "300", "200"]
    assert order({"sort": "nonsense"}) == ["300", "100", "200"]


def test_results_are_paginated_by_fifty(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": n} for n in range(55)])
    run = make_run(dataset)
    for n, item in enumerate(items_of(dataset)):
        add_result(run, item, output=f"r{n:02d}", started_at=at(n))
    end_run(run)
    first = browser_client.get(detail_url(run)).content.decode()
    assert len(re.findall(r">r\d\d<", first)) == 50 and "Page 1 of 2" in first
    second = browser_client.get(detail_url(run), {"page": 2}).content.decode()
    assert re.findall(r">(r\d\d)<", second) == ["r50", "r51", "r52", "r53", "r54"]


def test_summary_cards_mean_pass_rate_and_latency_percentiles(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": n} for n in range(4)])
    run = make_run(dataset)
    for item, score, latency in zip(items_of(dataset), [0.0, 0.4, 0.6, 1.0], [10, 20, 30, 40], strict=True):
        add_result(run, item, score=score, latency=latency)
    end_run(run)
    html = browser_client.get(detail_url(run)).content.decode()
    assert "0.500" in html  # mean
    assert "50.0%" in html and "(2/4)" in html  # pass rate at the default 0.5
    assert re.search(r"p50</dt><dd[^>]*>20 ms", html)
    assert re.search(r"p95</dt><dd[^>]*>40 ms", html)
    assert html.count("<svg") == 2  # score and latency distributions
    strict = browser_client.get(detail_url(run), {"threshold": "0.9"}).content.decode()
    assert "25.0%" in strict and "(1/4)" in strict


def test_empty_active_run_shows_a_waiting_state(browser_client, capitals):
    run = make_run(capitals, status="pending")
    html = browser_client.get(detail_url(run)).content.decode()
    assert "Waiting for the first results" in html and "No results yet." in html


def test_result_detail_shows_everything(browser_client, capitals):
    run = make_run(capitals)
    result = add_result(
        run,
        items_of(capitals)[0],
        output={"answer": "Paris"},
        trace_id="b" * 32,
        retry_count=2,
        usage={"promptTokens": 12, "completionTokens": 3},
    )
    html = browser_client.get(reverse("result-detail", args=[capitals.id, run.id, result.id])).content.decode()
    assert "capital of France" in html and "&quot;answer&quot;: &quot;Paris&quot;" in html
    assert "promptTokens" in html and "compared" in html
    assert reverse("trace-detail", args=["b" * 32]) in html


def test_start_run_redirects_to_the_new_run(browser_client, capitals):
    response = browser_client.post(
        reverse("run-start", args=[capitals.id]),
        {
            "target": "workflow:echo",
            "version": capitals.version,
            "max_concurrency": 2,
            "max_retries": 0,
            "repetitions": 1,
        },
    )
    run = DatasetRun.objects.get(dataset=capitals)
    assert response.status_code == 302 and response.url == detail_url(run)
    assert run.total_items == 3


def test_start_run_with_invalid_form_goes_back_with_messages(browser_client, capitals):
    response = browser_client.post(reverse("run-start", args=[capitals.id]), {"target": "nope"})
    assert response.status_code == 302
    assert not DatasetRun.objects.exists()


@pytest.mark.postgres
def test_score_summary_filter_and_sort_on_postgresql(browser_client, capitals):
    """The per-scorer SQL differs by database; the PostgreSQL pass checks its variant."""
    run = make_run(capitals)
    for n, (item, score) in enumerate(zip(items_of(capitals), [0.2, 0.9, 0.5], strict=True)):
        add_result(run, item, output=f"row-{score}", score=score, started_at=at(n))
    end_run(run)
    html = browser_client.get(detail_url(run)).content.decode()
    assert "0.533" in html and "(2/3)" in html
    strict = browser_client.get(detail_url(run), {"threshold": "0.75"}).content.decode()
    assert "(1/3)" in strict  # between histogram buckets: counted in the database
    filtered = browser_client.get(detail_url(run), {"below": "0.5"}).content.decode()
    assert re.findall(r"row-([\d.]+)", filtered) == ["0.2"]
    ordered = browser_client.get(detail_url(run), {"sort": "-score:exact-match"}).content.decode()
    assert re.findall(r"row-([\d.]+)", ordered) == ["0.9", "0.5", "0.2"]
