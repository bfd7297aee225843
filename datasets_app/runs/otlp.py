"""Stored spans (the dicts `tracing.ItemTrace` records) turned back into
OpenTelemetry SDK spans, so the SDK's OTLP exporter can send them."""

import os
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

SERVICE_NAME = "llm-eval-playground"
SCOPE = InstrumentationScope(SERVICE_NAME)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Resource(Resource):
    """A Resource that hashes once: the OTLP encoder hashes it for every span
    (a JSON dump of its attributes each time, ~10 % of an export's CPU)."""

    def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


def build_resource() -> Resource:
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME,
            "openinference.project.name": getattr(settings, "PLAYGROUND_OTEL_PROJECT", "playground"),
        }
    )
    return _Resource(resource.attributes, resource.schema_url)


def _nanoseconds(iso: str | None) -> int | None:
    if not iso:
        return None
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _attribute(value: Any) -> Any:
    # Stored as JSON, where OTel's sequences became lists.
    return tuple(value) if isinstance(value, list) else value


def _status(span: dict) -> Status:
    match span.get("status"):
        case "error":
            return Status(StatusCode.ERROR, span.get("statusMessage"))
        case "ok":
            return Status(StatusCode.OK)
        case _:
            return Status(StatusCode.UNSET)


def _hex_id(value: str, digits: int) -> int:
    """A trace (32) or span (16) id; checked here, because a bad one would make
    the encoder fail the whole request, not just this trace."""
    number = int(value, 16)
    if len(value) != digits or not number:
        raise ValueError(f"not a {digits}-hex-digit id: {value!r}")
    return number


def spans_from_dicts(trace_id: str, spans: list[dict], *, resource: Resource) -> list[ReadableSpan]:
    """The stored spans of one trace (`tracing.span_to_dict` shape) as SDK spans.

    Raises (ValueError, KeyError, TypeError, …) on a malformed record.
    """
    trace_int = _hex_id(trace_id, 32)
    flags = TraceFlags(TraceFlags.SAMPLED)
    readable = []
    for span in spans:
        parent_id = span.get("parentSpanId")
        start = _nanoseconds(span.get("startTime"))
        end = _nanoseconds(span.get("endTime"))
        readable.append(
            ReadableSpan(
                name=str(span["name"]),
                context=SpanContext(trace_int, _hex_id(span["spanId"], 16), is_remote=False, trace_flags=flags),
                parent=(
                    SpanContext(trace_int, _hex_id(parent_id, 16), is_remote=False, trace_flags=flags)
                    if parent_id
                    else None
                ),
                resource=resource,
                attributes={key: _attribute(value) for key, value in (span.get("attributes") or {}).items()},
                kind=SpanKind.INTERNAL,
                status=_status(span),
                start_time=start,
                end_time=end if end is not None else start,
                instrumentation_scope=SCOPE,
            )
        )
    return readable
