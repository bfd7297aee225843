"""The trace page: spans as a waterfall nested by parent."""

import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from datasets_app.models import Trace
from datasets_app.tests.factories import add_result, make_run

pytestmark = pytest.mark.django_db

SPANS: list[dict[str, Any]] = [
    # Listed out of order on purpose: the page nests by parent and orders by start.
    {
        "spanId": "c1",
        "parentSpanId": "root",
        "name": "target",
        "startTime": "2026-01-01T00:00:00.100Z",
        "endTime": "2026-01-01T00:00:00.600Z",
        "status": "ok",
        "attributes": {"model": "<b>gpt</b>"},
    },
    {
        "spanId": "root",
        "parentSpanId": None,
        "name": "item",
        "startTime": "2026-01-01T00:00:00.000Z",
        "endTime": "2026-01-01T00:00:01.000Z",
        "status": "ok",
        "attributes": {},
    },
    {
        "spanId": "g1",
        "parentSpanId": "c1",
        "name": "http call",
        "startTime": "2026-01-01T00:00:00.200000123Z",
        "endTime": "2026-01-01T00:00:00.300Z",
        "status": "error",
        "statusMessage": "timeout",
        "attributes": {"n": 1},
    },
    {
        "spanId": "c2",
        "parentSpanId": "root",
        "name": "scorer exact",
        "startTime": "2026-01-01T00:00:00.700Z",
        "endTime": "2026-01-01T00:00:01.000Z",
        "status": "unset",
        "attributes": {},
    },
]


def stored_trace(trace_id: str, spans: list, run=None) -> Trace:
    """A trace row as written, without going through the engine (any spans at all)."""
    return Trace.objects.create(trace_id=trace_id, run=run, name="item", spans=spans, started_at=timezone.now())


def test_spans_are_nested_by_parent_with_bars_relative_to_the_trace(browser_client, capitals):
    run = make_run(capitals)
    result = add_result(run, capitals.items.first(), trace_id="a" * 32, spans=SPANS)
    html = browser_client.get(reverse("trace-detail", args=["a" * 32])).content.decode()
    rows = re.findall(r'data-span-id="(\w+)" data-depth="(\d+)"', html)
    assert rows == [("root", "0"), ("c1", "1"), ("g1", "2"), ("c2", "1")]
    bars = re.findall(r'class="span-bar" x="([\d.]+)%" width="([\d.]+)%"', html)
    assert bars[0] == ("0.000", "100.000")
    assert bars[1] == ("10.000", "50.000")
    assert bars[2] == ("20.000", "10.000")
    assert "span-error" in html and "span-ok" in html
    assert "<details" in html and "&lt;b&gt;gpt&lt;/b&gt;" in html and "<b>gpt" not in html
    assert reverse("run-detail", args=[capitals.id, run.id]) in html
    assert reverse("result-detail", args=[capitals.id, run.id, result.id]) in html


def test_unknown_trace_is_404(browser_client):
    assert browser_client.get(reverse("trace-detail", args=["0" * 32])).status_code == 404


def test_trace_without_spans_has_an_empty_state(browser_client, capitals):
    stored_trace("e" * 32, spans=[], run=make_run(capitals))
    html = browser_client.get(reverse("trace-detail", args=["e" * 32])).content.decode()
    assert "This trace has no spans." in html


def test_a_trace_of_no_run_belongs_to_no_project_and_is_not_found(browser_client):
    stored_trace("f" * 32, spans=[])
    assert browser_client.get(reverse("trace-detail", args=["f" * 32])).status_code == 404


def test_broken_span_data_does_not_break_the_page(browser_client, capitals):
    spans = [
        {"spanId": "a", "parentSpanId": "b", "name": "loop a", "startTime": "bad", "endTime": None},
        {"spanId": "b", "parentSpanId": "a", "name": "loop b"},
        "not a span",
    ]
    stored_trace("d" * 32, spans=spans, run=make_run(capitals))
    html = browser_client.get(reverse("trace-detail", args=["d" * 32])).content.decode()
    assert "loop a" in html and "loop b" in html


def test_anonymous_visitor_is_sent_to_login(client):
    stored_trace("c" * 32, spans=[])
    response = client.get(reverse("trace-detail", args=["c" * 32]))
    assert response.status_code == 302
