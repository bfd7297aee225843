"""Tracing: one OpenTelemetry trace per item execution (filled in by the engine)."""

from django.conf import settings
from django.urls import reverse


def trace_link(trace_id: str | None) -> str | None:
    """Where a result's trace link points: the built-in trace page, or the
    team's own tracing tool when PLAYGROUND_TRACE_URL_TEMPLATE is set."""
    if not trace_id:
        return None
    if settings.PLAYGROUND_TRACE_URL_TEMPLATE:
        return settings.PLAYGROUND_TRACE_URL_TEMPLATE.replace("{trace_id}", trace_id)
    return reverse("trace-detail", args=[trace_id])
