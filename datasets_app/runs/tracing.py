"""Tracing: every item execution is one trace, recorded in the shape that is
stored and served (`GET /api/traces/{traceId}`).

The spans are built here directly rather than through the OpenTelemetry SDK:
they only ever go to the database, with the item's result and in the same
transaction (so a result never points at a trace that was lost, and an
abandoned item leaves no trace anywhere), and the SDK's per-span machinery
cost more than the rest of a cheap item. Ids follow W3C Trace Context (128-bit
trace, 64-bit span). When OTEL_EXPORTER_OTLP_ENDPOINT is set, the stored
traces are exported over OTLP/HTTP from an outbox (`outbox.py`, drained by `export.py`).
"""

import json
import math
import random
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from .rows import time_ordered_int

_second_text: tuple[int, str] = (-1, "")  # the last second formatted: spans of an item share it


def _iso(nanoseconds: int | None) -> str | None:
    """RFC 3339 in UTC with microseconds, e.g. 2026-12-02T14:08:15.123456Z.
    Formats each second once: this runs twice per span, on every item."""
    global _second_text
    if nanoseconds is None:
        return None
    second, fraction = divmod(nanoseconds, 1_000_000_000)
    if second != _second_text[0]:
        _second_text = (second, datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second_text[1]}.{fraction // 1000:06d}Z"


def _span_id() -> str:
    # An all-zero id is invalid in W3C Trace Context.
    return f"{random.getrandbits(64) or 1:016x}"


def _attribute_value(value: Any) -> Any:
    """OpenTelemetry attribute values: str, bool, int, finite float, or a list of them."""
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_attribute_value(v) for v in value if isinstance(v, (str, bool, int, float))]
    return str(value)


class Span:
    __slots__ = ("attributes", "end_ns", "message", "name", "parent_id", "span_id", "start_ns", "status")

    def __init__(self, name: str, parent_id: str | None, attributes: dict | None):
        self.span_id = _span_id()
        self.parent_id = parent_id
        self.name = name
        self.start_ns = time.time_ns()
        self.end_ns: int | None = None
        self.status: str = "unset"
        self.message: str | None = None
        self.attributes: dict = {}
        if attributes:
            self.set_attributes(attributes)

    def set_attributes(self, attributes: dict) -> None:
        for key, value in attributes.items():
            self.attributes[str(key)] = _attribute_value(value)

    def set_built_attributes(self, attributes: dict[str, str | int | float]) -> None:
        """Attributes the engine built itself (str keys; str, int or finite float values)."""
        self.attributes.update(attributes)

    def ok(self) -> None:
        self.status = "ok"

    def fail(self, message: str, error_type: str) -> None:
        self.status, self.message = "error", message[:200]
        self.attributes["error.type"] = error_type

    def end(self) -> None:
        if self.end_ns is None:
            self.end_ns = time.time_ns()

    def as_dict(self) -> dict:
        return {
            "spanId": self.span_id,
            "parentSpanId": self.parent_id,
            "name": self.name,
            "startTime": _iso(self.start_ns),
            "endTime": _iso(self.end_ns),
            "status": self.status,
            "statusMessage": self.message,
            "attributes": self.attributes,
        }


class ItemTrace:
    """The spans of one item execution."""

    def __init__(self) -> None:
        # 128 bits like any W3C trace id, time-ordered so new traces land at the end of the table's index.
        self.trace_id = f"{time_ordered_int():032x}"
        self._spans: list[Span] = []

    def start(self, name: str, *, parent: Span | None = None, attributes: dict | None = None) -> Span:
        span = Span(name, parent.span_id if parent else None, attributes)
        self._spans.append(span)
        return span

    def as_dicts(self) -> list[dict]:
        """Finished spans in start order (an unfinished one is not a span yet)."""
        finished = sorted((s for s in self._spans if s.end_ns is not None), key=lambda s: s.start_ns)
        return [span.as_dict() for span in finished]


# OpenInference conventions, so Phoenix and Langfuse show kinds, inputs and outputs.
SPAN_KIND = "openinference.span.kind"
MAX_VALUE_CHARS = 8_000  # input.value / output.value are previews, not copies


def io_attributes(prefix: str, value: Any, encoded: str | None = None) -> dict:
    """`input.value`/`output.value` (capped) with their MIME type; pass the
    value's JSON text as `encoded` when it is at hand."""
    if isinstance(value, str):
        text, mime_type = value, "text/plain"
    else:
        text = encoded if encoded is not None else json.dumps(value, ensure_ascii=False, default=str)
        mime_type = "application/json"
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return {f"{prefix}.value": text, f"{prefix}.mime_type": mime_type}


MAX_MESSAGES = 64  # chat messages per span (a long conversation keeps its first ones)


def message_attributes(direction: str, messages: list[dict[str, Any]]) -> dict:
    """Chat messages as OpenInference `llm.input_messages`/`llm.output_messages`
    (flattened), so Phoenix and Langfuse show the conversation; contents capped."""
    attributes: dict = {}
    for index, message in enumerate(messages[:MAX_MESSAGES]):
        prefix = f"llm.{direction}_messages.{index}.message"
        content = message.get("content")
        if content is not None:
            text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
            attributes[f"{prefix}.content"] = (
                text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
            )
        attributes[f"{prefix}.role"] = str(message.get("role") or "")
    return attributes


def target_span_kind(target_type: str) -> str:
    return {"model": "LLM", "agent": "AGENT"}.get(target_type, "CHAIN")


def usage_attributes(usage: dict | None, model: str | None = None) -> dict:
    """Token usage as OpenInference (`llm.*`) and OpenTelemetry GenAI (`gen_ai.*`) attributes."""
    attributes: dict = {}
    if model:
        attributes["llm.model_name"] = model
    for ours, openinference, gen_ai in (
        ("promptTokens", "llm.token_count.prompt", "gen_ai.usage.input_tokens"),
        ("completionTokens", "llm.token_count.completion", "gen_ai.usage.output_tokens"),
        ("totalTokens", "llm.token_count.total", None),
    ):
        value = (usage or {}).get(ours)
        if isinstance(value, int):
            attributes[openinference] = value
            if gen_ai:
                attributes[gen_ai] = value
    return attributes


def trace_link(trace_id: str | None) -> str | None:
    """Where a result's trace link points: the built-in trace page, or the
    team's own tracing tool when PLAYGROUND_TRACE_URL_TEMPLATE is set."""
    if not trace_id:
        return None
    if settings.PLAYGROUND_TRACE_URL_TEMPLATE:
        return settings.PLAYGROUND_TRACE_URL_TEMPLATE.replace("{trace_id}", trace_id)
    return reverse("trace-detail", args=[trace_id])
