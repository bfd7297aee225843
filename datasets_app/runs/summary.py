"""Run summaries: per-scorer mean and pass rate, latency percentiles, errors.

Scorer figures come from `DatasetRun.score_stats`, which the executor moves
in the same transaction as the results (see `add_scores`); latency
percentiles from the database (an ordered OFFSET on the run's latency
index). Nothing here reads a whole run.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection

from ..models import DatasetRun, DatasetRunResult

HISTOGRAM_BUCKETS = 10  # buckets of 0.1 over 0..1; a score of 1.0 goes in the last


def bucket_of(score: float) -> int:
    return min(int(score * HISTOGRAM_BUCKETS), HISTOGRAM_BUCKETS - 1)


def add_scores(stats: dict, score_lists: Iterable[list]) -> dict:
    """`stats` (the shape of DatasetRun.score_stats) with more results' scores added."""
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
    if abs(index - threshold * HISTOGRAM_BUCKETS) > 1e-9 or not 0 <= index < HISTOGRAM_BUCKETS:
        return None
    return sum(histogram[index:])


@dataclass
class ScorerSummary:
    scorer_id: str
    name: str
    count: int = 0
    total: float = 0.0
    passed: int = 0
    errors: int = 0

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.count if self.count else None


@dataclass
class RunSummary:
    results: int
    errors: int
    latency_p50: float | None
    latency_p95: float | None
    scorers: dict[str, ScorerSummary] = field(default_factory=dict)


def latency_percentile(run: DatasetRun, fraction: float, *, count: int | None = None) -> float | None:
    """Nearest-rank percentile of the run's latencies: one ordered offset query
    on the (run, latency) index, no rows loaded."""
    results = run.results.order_by("latency")
    if count is None:
        count = results.count()
    if not count:
        return None
    rank = max(1, math.ceil(fraction * count)) - 1
    return results.values_list("latency", flat=True)[rank]


def count_passed(run: DatasetRun, threshold: float) -> dict[str, int]:
    """Per scorer, how many scores are ≥ threshold, counted in the database in
    one pass over the run's scores — for thresholds the histogram in
    `score_stats` cannot answer (see `passed_at`)."""
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


def summarize_run(run: DatasetRun, *, pass_threshold: float = 0.5) -> RunSummary:
    summary = RunSummary(
        results=run.results.count(),
        errors=run.results.filter(error__isnull=False).count(),
        latency_p50=latency_percentile(run, 0.50),
        latency_p95=latency_percentile(run, 0.95),
    )
    counted = None
    for scorer_id, stats in run.score_stats.items():
        passed = passed_at(stats["histogram"], pass_threshold)
        if passed is None:  # a threshold between buckets: count it in the database
            counted = counted if counted is not None else count_passed(run, pass_threshold)
            passed = counted.get(scorer_id, 0)
        summary.scorers[scorer_id] = ScorerSummary(
            scorer_id, scorer_id, count=stats["count"], total=stats["sum"], passed=passed, errors=stats["errors"]
        )
    return summary
