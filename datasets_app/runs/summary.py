"""Run summaries: per-scorer mean and pass rate, latency percentiles, errors.

Latency percentiles come from the database (an ordered OFFSET on the run's
results); scorer figures stream the `scores` column, so memory stays flat
however large the run.
"""

from dataclasses import dataclass, field

from ..models import DatasetRun


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


def latency_percentile(run: DatasetRun, fraction: float) -> float | None:
    """Nearest-rank percentile of the run's latencies, computed in the database."""
    results = run.results.order_by("latency")
    count = results.count()
    if not count:
        return None
    rank = max(0, min(count - 1, int(round(fraction * count + 0.5)) - 1))
    return results.values_list("latency", flat=True)[rank]


def summarize_run(run: DatasetRun, *, pass_threshold: float = 0.5) -> RunSummary:
    summary = RunSummary(
        results=run.results.count(),
        errors=run.results.filter(error__isnull=False).count(),
        latency_p50=latency_percentile(run, 0.50),
        latency_p95=latency_percentile(run, 0.95),
    )
    for scores in run.results.values_list("scores", flat=True).iterator(chunk_size=2000):
        for entry in scores or []:
            scorer = summary.scorers.setdefault(
                entry["scorerId"], ScorerSummary(entry["scorerId"], entry.get("scorerName") or entry["scorerId"])
            )
            if entry.get("score") is None:
                scorer.errors += 1
                continue
            scorer.count += 1
            scorer.total += entry["score"]
            scorer.passed += entry["score"] >= pass_threshold
    return summary
