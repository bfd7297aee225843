"""Server-side SVG charts: the trend lines of the Runs tab."""

import re

from playground import charts

RUNS = [
    charts.TrendRun(label="Base <b>", url="/runs/1/", when="2026-12-01 09:00"),
    charts.TrendRun(label="Next", url="/runs/2/", when="2026-12-02 09:00"),
    charts.TrendRun(label="Last", url="/runs/3/", when="2026-12-03 09:00"),
]


def test_trend_chart_is_an_image_with_a_summary_and_a_linked_point_per_value():
    svg = str(
        charts.trend_chart(
            RUNS,
            [charts.Series("exact-match", [0.5, None, 0.75]), charts.Series("contains", [1.0, 0.9, 0.8])],
            title="Mean score per run",
            low=0.0,
            high=1.0,
            decimals=3,
        )
    )
    assert svg.startswith(
        f'<svg class="trend-chart" viewBox="0 0 {charts.TREND_WIDTH} {charts.TREND_HEIGHT}" role="img" aria-label="'
    )
    label = re.search(r'aria-label="([^"]+)"', svg)
    assert label and label.group(1) == (
        "Mean score per run, 3 runs oldest to newest: exact-match from 0.500 to 0.750 "
        "(lowest 0.500, highest 0.750); contains from 1.000 to 0.800 (lowest 0.800, highest 1.000)."
    )
    links = re.findall(r'<a href="([^"]+)" tabindex="-1"><circle class="trend-point"', svg)
    assert links == ["/runs/1/", "/runs/3/", "/runs/1/", "/runs/2/", "/runs/3/"]  # no point where there is no value
    titles = re.findall(r"<title>([^<]+)</title>", svg)
    assert titles[0] == "Base &lt;b&gt;: exact-match 0.500" and "<b>" not in svg
    assert svg.count("<polyline") == 2 and 'stroke-dasharray="6 3"' in svg  # the second series is dashed


def test_points_sit_on_the_scale():
    svg = str(charts.trend_chart(RUNS[:2], [charts.Series("p50", [100.0, 300.0])], title="Latency", unit=" ms"))
    ys = [float(y) for y in re.findall(r'cy="([\d.]+)"', svg)]
    # 100 is the lowest value: the bottom of the plot; 300 the highest: the top.
    assert ys == [charts.TREND_HEIGHT - charts.TREND_PAD_Y, charts.TREND_PAD_Y]
    assert ">300 ms</text>" in svg and ">100 ms</text>" in svg


def test_one_value_or_equal_values_still_draw():
    svg = str(charts.trend_chart(RUNS[:1], [charts.Series("p50", [120.0])], title="Latency"))
    assert svg.count("<circle") == 1 and "nan" not in svg


def test_nothing_to_draw_is_no_chart():
    assert charts.trend_chart([], [], title="x") == ""
    assert charts.trend_chart(RUNS, [charts.Series("s", [None, None, None])], title="x") == ""
