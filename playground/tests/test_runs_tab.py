"""The dataset's Runs tab: runs named and tagged, a tag filter, and the trends
of the latest runs (scores and latency) as an accessible server-side SVG."""

import re

import pytest
from django.urls import reverse

from datasets_app import services
from datasets_app.models import DatasetRun
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def runs_tab(client, dataset, **query):
    return client.get(dataset.get_absolute_url(), {"tab": "runs", **query}).content.decode()


def finished(dataset, *, name, score, latency, tags=()):
    run = make_run(dataset, name=name, tags=list(tags))
    for item in dataset.items.order_by("position"):
        add_result(run, item, score=score, latency=latency)
    end_run(run)
    return run


def run_links(html: str) -> list[str]:
    return re.findall(r'<td class="run-name-cell"><a href="[^"]+">([^<]+)</a>', html)


def test_runs_are_listed_by_name_with_their_tags(browser_client, capitals):
    run = finished(capitals, name="Prompt <v2>", score=1.0, latency=100, tags=["prod", "v2"])
    nameless = make_run(capitals)
    DatasetRun.objects.filter(pk=nameless.pk).update(name="")
    html = runs_tab(browser_client, capitals)
    assert run_links(html) == [f"echo · {nameless.created_at:%Y-%m-%d %H:%M}", "Prompt &lt;v2&gt;"]
    assert f'<a href="{run.get_absolute_url()}">Prompt &lt;v2&gt;</a>' in html
    assert '<li class="tag">prod</li><li class="tag">v2</li>' in html


def test_trends_chart_each_scorer_mean_and_latency_percentiles_linking_each_run(browser_client, capitals):
    first = finished(capitals, name="First", score=0.0, latency=100)
    second = finished(capitals, name="Second", score=1.0, latency=300)
    html = runs_tab(browser_client, capitals)
    assert "Trends over the last 2 runs" in html
    charts_svg = re.findall(r'<svg class="trend-chart"[^>]*role="img" aria-label="([^"]+)"', html)
    assert charts_svg == [
        "Mean score per run, 2 runs oldest to newest: exact-match from 0.000 to 1.000 (lowest 0.000, highest 1.000).",
        "Latency per run, 2 runs oldest to newest: p50 from 100 ms to 300 ms (lowest 100 ms, highest 300 ms); "
        "p95 from 100 ms to 300 ms (lowest 100 ms, highest 300 ms).",
    ]
    points = re.findall(r'<a href="([^"]+)" tabindex="-1"><circle[^>]*><title>([^<]+)</title>', html)
    assert (first.get_absolute_url(), "First: exact-match 0.000") in points
    assert (second.get_absolute_url(), "Second: p95 300 ms") in points
    table = re.search(r'<div class="visually-hidden"><table class="trend-values">(.*?)</table>', html, re.S)
    assert table
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th>((?:<td>[^<]*</td>)+)</tr>', table.group(1))
    assert [(name, re.findall(r"<td>([^<]*)</td>", cells)) for name, cells in rows] == [
        ("First", ["0.000", "100", "100"]),
        ("Second", ["1.000", "300", "300"]),
    ]


def test_no_trends_before_two_runs_have_results(browser_client, capitals):
    finished(capitals, name="Only", score=1.0, latency=100)
    make_run(capitals, status="pending")
    assert "trend-chart" not in runs_tab(browser_client, capitals)


def test_tag_filter_lists_and_trends_only_tagged_runs(browser_client, capitals):
    finished(capitals, name="Prod one", score=1.0, latency=100, tags=["prod"])
    finished(capitals, name="Experiment", score=0.0, latency=900, tags=["exp", "production-like"])
    finished(capitals, name="Prod two", score=0.5, latency=200, tags=["nightly", "prod"])
    html = runs_tab(browser_client, capitals, tag="prod")
    assert run_links(html) == ["Prod two", "Prod one"]  # not "production-like"
    assert "Trends over the last 2 runs tagged “prod”" in html and "Experiment" not in html
    assert re.search(r'<a href="\?tab=runs&amp;tag=prod" class="tag current" aria-current="page">prod</a>', html)
    offered = re.findall(r'<a href="\?tab=runs&amp;tag=[^"]*" class="tag[^"]*"[^>]*>([^<]+)</a>', html)
    assert offered == ["exp", "nightly", "prod", "production-like"]
    none = runs_tab(browser_client, capitals, tag="missing")
    assert "No run is tagged “missing”." in none and run_links(none) == []


def test_tags_with_quotes_and_accents_filter_exactly(browser_client, capitals):
    finished(capitals, name="Quoted", score=1.0, latency=1, tags=['say "hi"'])
    finished(capitals, name="Accented", score=1.0, latency=1, tags=["café"])
    finished(capitals, name="Plain", score=1.0, latency=1, tags=["cafe"])
    assert run_links(runs_tab(browser_client, capitals, tag='say "hi"')) == ["Quoted"]
    assert run_links(runs_tab(browser_client, capitals, tag="café")) == ["Accented"]
    assert run_links(runs_tab(browser_client, capitals, tag="cafe")) == ["Plain"]
    assert run_links(runs_tab(browser_client, capitals, tag="CAFE")) == []  # exact, not case-folded


def test_the_polled_runs_table_keeps_the_tag(browser_client, capitals):
    services.run_start(dataset=capitals, target_type="workflow", target_id="echo", tags=["prod"])
    fragment = reverse("dataset-runs-table", args=[capitals.id])
    html = runs_tab(browser_client, capitals, tag="prod")
    assert f'hx-get="{fragment}?runs_page=1&amp;tag=prod"' in html
    polled = browser_client.get(fragment, {"runs_page": 1, "tag": "prod"}).content.decode()
    assert polled.lstrip().startswith('<div id="runs-table" hx-get=') and "tag=prod" in polled


def test_the_tag_filter_matches_whole_tags_with_awkward_text(capitals):
    """`with_tag` reads the JSON list in the database (json_each on SQLite, @> on
    PostgreSQL): quotes, backslashes and non-ASCII tags match exactly, prefixes do not."""
    odd = 'q"uote\\ é'
    tagged = services.run_start(dataset=capitals, target_type="workflow", target_id="echo", tags=[odd, "prod"])
    services.run_start(dataset=capitals, target_type="workflow", target_id="echo", tags=["production"])
    assert list(DatasetRun.objects.with_tag(odd)) == [tagged]
    assert list(DatasetRun.objects.with_tag("prod")) == [tagged]
    assert list(DatasetRun.objects.with_tag("pro")) == []


def test_compare_picker_and_breadcrumbs_use_run_names(browser_client, capitals):
    run = finished(capitals, name="Named run", score=1.0, latency=1)
    other = finished(capitals, name="Other run", score=1.0, latency=1)
    compare = browser_client.get(reverse("run-compare", args=[capitals.id])).content.decode()
    assert ">Named run · v1 · completed</option>" in compare and ">Other run · v1 · completed</option>" in compare
    page = browser_client.get(run.get_absolute_url()).content.decode()
    assert '<span aria-current="page">Named run</span>' in page
    result = other.results.first()
    detail = browser_client.get(reverse("result-detail", args=[capitals.id, other.id, result.id])).content.decode()
    assert f'<a href="{other.get_absolute_url()}">Other run</a> ›' in detail
