"""Small server-side SVG bar charts, built from numbers only (no chart library).

The histograms come from `datasets_app.runs.summary`; this module only lays
the bars out. The SVG never contains user text: every value in it is a number
or the caller's fixed title.
"""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from datasets_app.runs.summary import Bucket

CHART_WIDTH = 240
CHART_HEIGHT = 64
BAR_GAP = 2


def bar_chart(buckets: list[Bucket], *, title: str, unit: str = "") -> SafeString:
    """An inline SVG histogram; each bar carries a <title> tooltip with its range and count.

    Every value interpolated here is a number (or the caller's fixed title,
    escaped by format_html), so the markup is safe to mark as such.
    """
    if not buckets:
        return SafeString("")
    peak = max(b.count for b in buckets) or 1
    slot = CHART_WIDTH / len(buckets)
    bars = []
    for index, bucket in enumerate(buckets):
        height = 0 if bucket.count == 0 else max(1.0, (CHART_HEIGHT - 1) * bucket.count / peak)
        bars.append(
            (
                f"{index * slot + BAR_GAP / 2:.2f}",
                f"{CHART_HEIGHT - height:.2f}",
                f"{max(slot - BAR_GAP, 1):.2f}",
                f"{height:.2f}",
                f"{_number(bucket.low)}–{_number(bucket.high)}{unit}: {bucket.count}",
            )
        )
    rects = format_html_join(
        "",
        '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        bars,
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{title}" preserveAspectRatio="none">'
        '<line class="chart-axis" x1="0" y1="{h}" x2="{w}" y2="{h}"></line>{rects}</svg>',
        w=CHART_WIDTH,
        h=CHART_HEIGHT,
        title=title,
        rects=rects,
    )


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"
