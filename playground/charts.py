"""Small server-side SVG charts, built from numbers (no chart library).

Bar charts: the histograms come from `datasets_app.runs.summary`; this module
only lays the bars out, and their SVG holds no user text: every value in it is
a number or the caller's fixed title. Trend charts (a line per series, a point
per run): the runs' names appear in tooltips and the summary, escaped by
format_html like every other interpolated value.
"""

from dataclasses import dataclass
from typing import Any

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


# ---- trends: one value per run, a line per series -----------------------------------------

# Drawn about the size it is shown at (a half-width card), so the axis labels read at 11px.
TREND_WIDTH = 340
TREND_HEIGHT = 130
TREND_PAD_LEFT = 54  # room for the y-axis labels
TREND_PAD_RIGHT = 8
TREND_PAD_Y = 10
POINT_RADIUS = 4
# Told apart by dash pattern as well as colour (trend-series-N in runs.css).
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")


@dataclass(frozen=True)
class TrendRun:
    """A point on the x axis: a run, named and linked."""

    label: str
    url: str
    when: str


@dataclass(frozen=True)
class Series:
    """One line: a value per run (None where the run has none)."""

    name: str
    values: list[float | None]

    def known(self) -> list[float]:
        return [v for v in self.values if v is not None]


def trend_chart(
    runs: list[TrendRun],
    series: list[Series],
    *,
    title: str,
    unit: str = "",
    low: float | None = None,
    high: float | None = None,
    decimals: int = 0,
) -> SafeString:
    """An inline SVG line chart of per-run values, oldest run on the left.

    `role="img"` with an aria-label that sums each series up (first, last, range);
    each point is a link to its run with a <title> tooltip (run name, series,
    value). Run names are user text: format_html escapes them. The links leave
    the tab order (tabindex="-1"): the runs table beside the chart links every run.
    """
    values = [v for s in series for v in s.known()]
    if not runs or not values:
        return SafeString("")
    low = min(values) if low is None else low
    high = max(values) if high is None else high
    if high <= low:
        low, high = (0.0, high * 2) if high > 0 else (high - 1, high + 1)
    plot_w = TREND_WIDTH - TREND_PAD_LEFT - TREND_PAD_RIGHT
    plot_h = TREND_HEIGHT - 2 * TREND_PAD_Y
    step = plot_w / max(len(runs) - 1, 1)

    def x(index: int) -> float:
        return TREND_PAD_LEFT + (index * step if len(runs) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TREND_PAD_Y + plot_h * (1 - (value - low) / (high - low))

    def fmt(value: float) -> str:
        return f"{value:.{decimals}f}{unit}"

    axis = format_html(
        '<line class="chart-axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"></line>'
        '<line class="chart-axis" x1="{l}" y1="{t}" x2="{l}" y2="{b}"></line>'
        '<text class="trend-tick" x="{tx}" y="{ty_top}" text-anchor="end">{top}</text>'
        '<text class="trend-tick" x="{tx}" y="{ty_bottom}" text-anchor="end">{bottom}</text>',
        l=TREND_PAD_LEFT,
        r=TREND_WIDTH - TREND_PAD_RIGHT,
        t=TREND_PAD_Y,
        b=TREND_HEIGHT - TREND_PAD_Y,
        tx=TREND_PAD_LEFT - 6,
        ty_top=TREND_PAD_Y + 4,
        ty_bottom=TREND_HEIGHT - TREND_PAD_Y + 4,
        top=fmt(high),
        bottom=fmt(low),
    )
    lines = []
    for number, one in enumerate(series):
        slot = number % len(DASHES)
        coords = [(x(i), y(v)) for i, v in enumerate(one.values) if v is not None]
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        points = format_html_join(
            "",
            '<a href="{}" tabindex="-1"><circle class="trend-point" cx="{}" cy="{}" r="{}">'
            "<title>{}: {} {}</title></circle></a>",
            (
                (runs[i].url, f"{x(i):.1f}", f"{y(v):.1f}", POINT_RADIUS, runs[i].label, one.name, fmt(v))
                for i, v in enumerate(one.values)
                if v is not None
            ),
        )
        lines.append(
            format_html(
                '<g class="trend-series trend-series-{}"><polyline class="trend-line" points="{}" fill="none"{}>'
                "</polyline>{}</g>",
                slot,
                path,
                format_html(' stroke-dasharray="{}"', DASHES[slot]) if DASHES[slot] else "",
                points,
            )
        )
    return format_html(
        '<svg class="trend-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">{axis}{lines}</svg>',
        w=TREND_WIDTH,
        h=TREND_HEIGHT,
        label=trend_summary(runs, series, title=title, fmt=fmt),
        axis=axis,
        lines=SafeString("".join(lines)),
    )


def trend_summary(runs: list[TrendRun], series: list[Series], *, title: str, fmt: Any = str) -> str:
    """The chart in words: "Mean score per run, 12 runs oldest to newest: exact-match
    from 0.500 to 0.833 (lowest 0.400, highest 0.900); …"."""
    parts = []
    for one in series:
        known = one.known()
        if not known:
            continue
        parts.append(
            f"{one.name} from {fmt(known[0])} to {fmt(known[-1])} (lowest {fmt(min(known))}, highest {fmt(max(known))})"
        )
    count = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    return f"{title}, {count} oldest to newest: {'; '.join(parts)}."
