"""Tracing: every item execution is one OpenTelemetry trace.

Finished spans are collected in memory per trace and handed to the engine,
which stores them with the item's result in the same transaction (so a
result never points at a trace that was lost, and an abandoned attempt
leaves no trace anywhere). When the standard OTEL_EXPORTER_OTLP_ENDPOINT is
set, the stored traces are exported over OTLP/HTTP from an outbox
(`export.py`), so a team can follow the link into its own tracing tool.
"""

import json
import os
import threading
from collections import defaultdict
from datetime import UTC, datetime

from django.conf import settings
from django.urls import reverse
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import StatusCode

TRACER_NAME = "llm-eval-playground"


class SpanCollector(SpanProcessor):
    """Keeps finished spans by trace id until the executor takes them."""

    def __init__(self):
        self._spans: dict[int, list[dict]] = defaultdict(list)
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        record = span_to_dict(span)
        with self._lock:
            self._spans[span.context.trace_id].append(record)

    def take(self, trace_id: int) -> list[dict]:
        with self._lock:
            spans = self._spans.pop(trace_id, [])
        return sorted(spans, key=lambda s: s["startTime"])


def _iso(nanoseconds: int | None) -> str | None:
    if nanoseconds is None:
        return None
    return datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def _attribute_value(value):
    return list(value) if isinstance(value, tuple) else value


def span_to_dict(span: ReadableSpan) -> dict:
    """A span in the shape of GET /api/traces/{traceId}."""
    status = {StatusCode.OK: "ok", StatusCode.ERROR: "error"}.get(span.status.status_code, "unset")
    return {
        "spanId": format(span.context.span_id, "016x"),
        "parentSpanId": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "startTime": _iso(span.start_time),
        "endTime": _iso(span.end_time),
        "status": status,
        "statusMessage": span.status.description,
        "attributes": {k: _attribute_value(v) for k, v in (span.attributes or {}).items()},
    }


def _build_provider() -> tuple[TracerProvider, SpanCollector]:
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", TRACER_NAME)}))
    collector = SpanCollector()
    provider.add_span_processor(collector)
    return provider, collector


# A provider of our own rather than the global one: the stored spans must not
# depend on what else the process configured, and vice versa. Nothing is
# exported live: export.py sends what was stored, from an outbox.
provider, collector = _build_provider()
tracer = provider.get_tracer(TRACER_NAME)

# OpenInference conventions, so Phoenix and Langfuse show kinds, inputs and outputs.
SPAN_KIND = "openinference.span.kind"
MAX_VALUE_CHARS = 8_000  # input.value / output.value are previews, not copies


def preview_json(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def io_attributes(prefix: str, value) -> dict:
    """`input.value`/`output.value` with their MIME type."""
    is_text = isinstance(value, str)
    return {
        f"{prefix}.value": preview_json(value),
        f"{prefix}.mime_type": "text/plain" if is_text else "application/json",
    }


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


def trace_id_hex(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def trace_link(trace_id: str | None) -> str | None:
    """Where a result's trace link points: the built-in trace page, or the
    team's own tracing tool when PLAYGROUND_TRACE_URL_TEMPLATE is set."""
    if not trace_id:
        return None
    if settings.PLAYGROUND_TRACE_URL_TEMPLATE:
        return settings.PLAYGROUND_TRACE_URL_TEMPLATE.replace("{trace_id}", trace_id)
    return reverse("trace-detail", args=[trace_id])
