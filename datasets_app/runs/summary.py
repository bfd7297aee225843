"""Run statistics: every figure about a run's scores and latencies, in one module.

The run page, the runs tab, `manage.py run_dataset` and the comparison of two
runs all read their figures here:

* Per scorer, the count, sum, failures and a histogram of the scores live on
  the run row (`DatasetRun.score_stats`). The engine moves them with
  `add_scores` in the transaction that stores the results (`recording.py`), so
  mean, pass rate and distribution (`scorer_stats`) are exact at every read and
  never scan the results. Only a pass threshold that falls between histogram
  buckets needs the scores themselves (`count_passed`).
* Latency (count, sum, min, max and logarithmic buckets) and token usage per
  model are on the run row too (`DatasetRun.latency_stats`, `usage_totals`),
  moved with the counters (`add_latencies`, `add_usage`); `latency_summary`
  and `usage_summary` read them, so every poll, the API's run summary and the
  CLI show the same figures, current at every read, however large the run.

Only a pass threshold between histogram buckets reads the results; that
count is cached for a few seconds while a run is active and for an hour once
it is finished.
"""

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from ..models import DatasetRun, DatasetRunResult

HISTOGRAM_BUCKETS = 10  # buckets of 0.1 over 0..1; a score of 1.0 goes in the last
DEFAULT_PASS_THRESHOLD = 0.5
ACTIVE_CACHE_SECONDS = 5
FINISHED_CACHE_SECONDS = 3600
# Sums of the same scores added in another order may differ in the last bits.
FLOAT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Bucket:
    """One bar of a histogram: how many values fell in low..high."""

    low: float
    high: float
    count: int


def linear_edges(low: float, high: float, bins: int = HISTOGRAM_BUCKETS) -> list[tuple[float, float]]:
    """Equal-width bucket edges covering low..high; one bucket when all values are equal."""
    if high <= low:
        return [(low, high)]
    width = (high - low) / bins
    return [(low + i * width, low + (i + 1) * width) for i in range(bins)]


# ---- scores: written by the engine, read from the run row ------------------------


def bucket_of(score: float) -> int:
    return min(int(score * HISTOGRAM_BUCKETS), HISTOGRAM_BUCKETS - 1)


def add_scores(stats: dict[str, Any], score_lists: Iterable[list[dict[str, Any]]]) -> dict[str, Any]:
    """`stats` (the shape of DatasetRun.score_stats) with more results' scores added.

    Per scorer: `{"count", "sum", "errors", "histogram": [HISTOGRAM_BUCKETS counts]}`;
    a score of null (the scorer failed) counts as an error.
    """
    merged = {key: {**value, "histogram": list(value["histogram"])} for key, value in stats.items()}
    for scores in score_lists:
        for entry in scores:
            scorer = merged.setdefault(
                entry["scorerId"], {"count": 0, "sum": 0.0, "errors": 0, "histogram": [0] * HISTOGRAM_BUCKETS}
            )
            if entry.get("score") is None:
                scorer["errors"] += 1
                continue
            scorer["count"] += 1
            scorer["sum"] += entry["score"]
            scorer["histogram"][bucket_of(entry["score"])] += 1
    return merged


def passed_at(histogram: list[int], threshold: float) -> int | None:
    """How many scores are ≥ threshold, when the histogram can tell exactly
    (thresholds 0, 0.1, …, 0.9); None otherwise."""
    index = round(threshold * HISTOGRAM_BUCKETS)
    if abs(index - threshold * HISTOGRAM_BUCKETS) > FLOAT_TOLERANCE or not 0 <= index < HISTOGRAM_BUCKETS:
        return None
    return sum(histogram[index:])


@dataclass(frozen=True)
class ScorerStats:
    scorer_id: str
    count: int  # scores given
    total: float
    errors: int  # items the scorer failed on
    passed: int  # scores at or above the pass threshold
    histogram: tuple[int, ...]

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.count if self.count else None

    def buckets(self) -> list[Bucket]:
        edges = linear_edges(0.0, 1.0, HISTOGRAM_BUCKETS)
        return [Bucket(low, high, n) for (low, high), n in zip(edges, self.histogram, strict=True)]


def scorer_stats(run: DatasetRun, *, pass_threshold: float = DEFAULT_PASS_THRESHOLD) -> list[ScorerStats]:
    """Each of the run's scorers (in the run's order, then any other that left
    scores), from the run row."""
    scorer_ids = list(dict.fromkeys([*run.scorer_ids, *run.score_stats]))
    counted: dict[str, int] | None = None
    stats = []
    for scorer_id in scorer_ids:
        entry = run.score_stats.get(scorer_id) or {}
        histogram = entry.get("histogram") or [0] * HISTOGRAM_BUCKETS
        passed = passed_at(histogram, pass_threshold)
        if passed is None:  # a threshold between buckets: count it in the database, once for all scorers
            counted = counted if counted is not None else count_passed(run, pass_threshold)
            passed = counted.get(scorer_id, 0)
        stats.append(
            ScorerStats(
                scorer_id=scorer_id,
                count=entry.get("count", 0),
                total=entry.get("sum", 0.0),
                errors=entry.get("errors", 0),
                passed=passed,
                histogram=tuple(histogram),
            )
        )
    return stats


def count_passed(run: DatasetRun, threshold: float) -> dict[str, int]:
    """Per scorer, how many scores are ≥ threshold: one pass over the run's
    scores in the database, cached (see the module docstring)."""
    return _cached(run, f"run-pass-counts:{threshold}", lambda: _count_passed(run, threshold))


def _count_passed(run: DatasetRun, threshold: float) -> dict[str, int]:
    table = connection.ops.quote_name(DatasetRunResult._meta.db_table)
    run_id = DatasetRunResult._meta.get_field("run").get_db_prep_value(run.pk, connection)
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT entry->>'scorerId', COUNT(*) "
            f"FROM {table} CROSS JOIN LATERAL jsonb_array_elements({table}.scores) entry "
            f"WHERE {table}.run_id = %s AND jsonb_typeof(entry->'score') = 'number' "
            f"AND (entry->>'score')::double precision >= %s GROUP BY 1"
        )
    else:
        sql = (
            f"SELECT json_extract(entry.value, '$.scorerId'), COUNT(*) "
            f"FROM {table}, json_each({table}.scores) entry "
            f"WHERE {table}.run_id = %s AND json_type(entry.value, '$.score') IN ('integer', 'real') "
            f"AND json_extract(entry.value, '$.score') >= %s GROUP BY 1"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run_id, threshold])
        return dict(cursor.fetchall())


# ---- latency: written by the engine, read from the run row ---------------------------

# Latencies are counted in logarithmic buckets, LATENCY_BUCKETS_PER_DOUBLING per doubling
# (each about 2.2 % wide), so percentiles read from the row are within about 1.1 % of the
# nearest-rank value, for any run size, without touching the results.
LATENCY_BUCKETS_PER_DOUBLING = 32
ZERO_BUCKET = "zero"  # latencies of 0 ms (items that never ran)


def latency_bucket(ms: float) -> str:
    if ms <= 0:
        return ZERO_BUCKET
    return str(math.floor(math.log2(ms) * LATENCY_BUCKETS_PER_DOUBLING))


def _bucket_middle(key: str) -> float:
    """The geometric middle of a bucket, the value its members are read as."""
    if key == ZERO_BUCKET:
        return 0.0
    return float(2 ** ((int(key) + 0.5) / LATENCY_BUCKETS_PER_DOUBLING))


def add_latencies(stats: dict[str, Any], latencies: Iterable[float]) -> dict[str, Any]:
    """`stats` (the shape of DatasetRun.latency_stats) with more latencies (ms) added:
    `{"count", "sum", "min", "max", "buckets": {bucket key: count}}`."""
    merged = {**stats, "buckets": dict(stats.get("buckets") or {})}
    for ms in latencies:
        merged["count"] = merged.get("count", 0) + 1
        merged["sum"] = merged.get("sum", 0.0) + ms
        merged["min"] = ms if merged.get("min") is None else min(merged["min"], ms)
        merged["max"] = ms if merged.get("max") is None else max(merged["max"], ms)
        key = latency_bucket(ms)
        merged["buckets"][key] = merged["buckets"].get(key, 0) + 1
    return merged


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds, over every result of the run (None while there is none)."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    histogram: list[Bucket]


def latency_summary(run: DatasetRun) -> LatencySummary:
    """The run's latency figures, from the run row: current at every read, no query."""
    stats = run.latency_stats or {}
    count = stats.get("count", 0)
    if not count:
        return LatencySummary(count=0, mean=None, p50=None, p95=None, histogram=[])
    ordered = sorted(
        ((_bucket_middle(key), n) for key, n in stats["buckets"].items()),
        key=lambda pair: pair[0],
    )
    low, high = stats["min"], stats["max"]
    return LatencySummary(
        count=count,
        mean=stats["sum"] / count,
        p50=_percentile(ordered, 0.50, count, low, high),
        p95=_percentile(ordered, 0.95, count, low, high),
        histogram=_linear_histogram(ordered, low, high, count),
    )


def _percentile(ordered: list[tuple[float, int]], fraction: float, count: int, low: float, high: float) -> float:
    """Nearest-rank percentile, read as its bucket's middle (clamped to the run's min and max)."""
    rank = max(1, math.ceil(fraction * count))
    seen = 0
    for middle, n in ordered:
        seen += n
        if seen >= rank:
            return min(max(middle, low), high)
    return high


def _linear_histogram(ordered: list[tuple[float, int]], low: float, high: float, count: int) -> list[Bucket]:
    """HISTOGRAM_BUCKETS equal-width bars from min to max, each log bucket in the bar of its middle."""
    edges = linear_edges(low, high, HISTOGRAM_BUCKETS)
    if len(edges) == 1:
        return [Bucket(low, high, count)]
    width = (high - low) / HISTOGRAM_BUCKETS
    counts = [0] * len(edges)
    for middle, n in ordered:
        counts[min(max(int((middle - low) / width), 0), len(edges) - 1)] += n
    return [Bucket(lo, hi, n) for (lo, hi), n in zip(edges, counts, strict=True)]


# ---- token usage and cost -------------------------------------------------------------

USAGE_KEYS = ("promptTokens", "completionTokens", "totalTokens")


def add_usage(totals: dict[str, Any], usages: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    """`totals` (DatasetRun.usage_totals: per model, the token counts) with more results' usage added."""
    merged = {model: dict(counts) for model, counts in totals.items()}
    for usage in usages:
        if not isinstance(usage, dict):
            continue
        model = str(usage.get("model") or "")
        counts = merged.setdefault(model, dict.fromkeys(USAGE_KEYS, 0))
        for key in USAGE_KEYS:
            value = usage.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                counts[key] = counts.get(key, 0) + int(value)
    return merged


@dataclass(frozen=True)
class UsageSummary:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # In the price table's currency (settings.PLAYGROUND_MODEL_PRICES); None when no
    # model that used tokens has a price.
    cost: float | None


def usage_summary(run: DatasetRun) -> UsageSummary | None:
    """Token totals and their cost, from the run row; None for a run that reported no usage."""
    totals = run.usage_totals or {}
    if not totals:
        return None
    prices = getattr(settings, "PLAYGROUND_MODEL_PRICES", {}) or {}
    cost: float | None = None
    for model, counts in totals.items():
        price = prices.get(model)
        if isinstance(price, dict):
            per_million = counts.get("promptTokens", 0) * float(price.get("input", 0)) + counts.get(
                "completionTokens", 0
            ) * float(price.get("output", 0))
            cost = (cost or 0.0) + per_million / 1_000_000
    return UsageSummary(
        prompt_tokens=sum(c.get("promptTokens", 0) for c in totals.values()),
        completion_tokens=sum(c.get("completionTokens", 0) for c in totals.values()),
        total_tokens=sum(c.get("totalTokens", 0) for c in totals.values()),
        cost=cost,
    )


def _cached[T](run: DatasetRun, name: str, compute: Callable[[], T]) -> T:
    """Recomputed at most every ACTIVE_CACHE_SECONDS while the run is active,
    and once for a finished run (its figures no longer change)."""
    if run.is_terminal:
        key = f"{name}:{run.pk}:{run.status}:{run.done_count}"
        timeout = FINISHED_CACHE_SECONDS
    else:
        key = f"{name}:{run.pk}:{int(time.time() // ACTIVE_CACHE_SECONDS)}"
        timeout = ACTIVE_CACHE_SECONDS
    return cast(T, cache.get_or_set(key, compute, timeout))
