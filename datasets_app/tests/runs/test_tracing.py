"""Trace links (export over OTLP is tested in test_export.py)."""

from datasets_app.runs import tracing


def test_trace_links_point_at_the_built_in_page_or_the_teams_tool(settings):
    assert tracing.trace_link(None) is None
    assert tracing.trace_link("ab" * 16) == f"/traces/{'ab' * 16}/"
    settings.PLAYGROUND_TRACE_URL_TEMPLATE = "https://tracing.example/trace/{trace_id}"
    assert tracing.trace_link("ab" * 16) == f"https://tracing.example/trace/{'ab' * 16}"
