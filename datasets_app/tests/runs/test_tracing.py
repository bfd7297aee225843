"""Trace links (export over OTLP is tested in test_export.py)."""

import json

from datasets_app.runs import tracing


def test_trace_links_point_at_the_built_in_page_or_the_teams_tool(settings):
    assert tracing.trace_link(None) is None
    assert tracing.trace_link("ab" * 16) == f"/traces/{'ab' * 16}/"
    settings.PLAYGROUND_TRACE_URL_TEMPLATE = "https://tracing.example/trace/{trace_id}"
    assert tracing.trace_link("ab" * 16) == f"https://tracing.example/trace/{'ab' * 16}"


def test_chat_messages_become_capped_openinference_attributes():
    long = "x" * (tracing.MAX_VALUE_CHARS + 50)
    parts = [{"type": "text", "text": "look"}]
    messages: list[dict] = [
        {"role": "user", "content": long},
        {"role": "user", "content": parts},
        {"role": "assistant"},
    ]
    messages += [{"role": "user", "content": str(n)} for n in range(tracing.MAX_MESSAGES)]

    attributes = tracing.message_attributes("input", messages)

    first = attributes["llm.input_messages.0.message.content"]
    assert len(first) == tracing.MAX_VALUE_CHARS and first.endswith("…")
    assert json.loads(attributes["llm.input_messages.1.message.content"]) == parts
    assert attributes["llm.input_messages.2.message.role"] == "assistant"
    assert "llm.input_messages.2.message.content" not in attributes  # a tool call has no content
    assert f"llm.input_messages.{tracing.MAX_MESSAGES - 1}.message.role" in attributes
    assert f"llm.input_messages.{tracing.MAX_MESSAGES}.message.role" not in attributes
