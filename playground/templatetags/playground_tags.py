"""Template helpers shared by the dataset and run pages.

{% load playground_tags %}
<pre class="json">{{ item.input|pretty_json }}</pre>
{{ run.created_at|reltime }}          → <time title="exact">3 minutes ago</time>
{% status_badge run.status %}         → <span class="badge badge-running">running</span>
"""

import json
from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from datasets_app import annotations

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """User JSON indented for a <pre>. Returns plain text, so it stays auto-escaped."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def compact_json(value: Any, limit: int = 120) -> str:
    """User JSON on one line for a table cell, cut to `limit` characters: a
    string as it is (no quotes), null as nothing."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            text = str(value)
    limit = int(limit)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register.filter
def percent(fraction: float | None) -> str:
    """0.25 → "25.0%"; None → "—"."""
    return "—" if fraction is None else f"{fraction:.1%}"


@register.filter
def reltime(value: datetime | None) -> str:
    """ "5 minutes ago" in a <time> element whose title holds the exact UTC time."""
    if not value:
        return "—"
    now = timezone.now()
    if value > now:
        words = "just now"
    else:
        age = timesince(value, now, depth=1)
        words = "just now" if age.startswith("0\xa0") else f"{age} ago"
    exact = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, words)


@register.simple_tag
def status_badge(status: str) -> str:
    return format_html('<span class="badge badge-{}">{}</span>', status, status)


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, *pairs: Any, **changes: Any) -> str:
    """The current query string with some parameters replaced (None/"" removes one).

    {% query_with page=2 %} or, for a parameter named in a variable, {% query_with param 2 %}.
    """
    params = context["request"].GET.copy()
    changes = dict(zip(pairs[::2], pairs[1::2], strict=True)) | changes
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def score_key(key: str) -> str:
    """A scorer id or an annotation key as pages name it: `exact-match` in code,
    `annotation:human` as "human (review)"."""
    name = annotations.name_of(str(key))
    if name is None:
        return format_html("<code>{}</code>", key)
    return format_html('<span class="review-key">{} (review)</span>', name)
