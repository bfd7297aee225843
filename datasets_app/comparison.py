"""Comparing two runs of a dataset: per-scorer statistics, regressions, per-item scores.

Shared by the API and the browser page. Results are streamed from the
database, so memory grows with the number of scorers and the size of the
requested items page, never with the size of the runs.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from .models import DatasetRun, DatasetRunResult

HIGHER_IS_BETTER = "higher-is-better"
LOWER_IS_BETTER = "lower-is-better"
PASS_SCORE = 0.5
# Means of the same scores summed in another order may differ in the last bits.
FLOAT_TOLERANCE = 1e-9
STREAM_CHUNK = 2000


@dataclass
class ScorerStats:
    total: float = 0.0
    count: int = 0
    passed: int = 0
    errors: int = 0

    def add(self, score) -> None:
        if score is None:
            self.errors += 1
            return
        self.total += score
        self.count += 1
        self.passed += score >= PASS_SCORE

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def as_dict(self) -> dict:
        return {
            "mean": self.mean,
            "count": self.count,
            "passRate": self.passed / self.count if self.count else None,
            "errors": self.errors,
        }


@dataclass
class ItemScores:
    """One item's scores in one run, averaged over its repetitions."""

    sums: dict = field(default_factory=lambda: defaultdict(float))
    counts: dict = field(default_factory=lambda: defaultdict(int))
    seen: set = field(default_factory=set)

    def add(self, scorer_id: str, score) -> None:
        self.seen.add(scorer_id)
        if score is not None:
            self.sums[scorer_id] += score
            self.counts[scorer_id] += 1

    def means(self) -> dict:
        return {s: (self.sums[s] / self.counts[s] if self.counts[s] else None) for s in sorted(self.seen)}


def _score_entries(scores):
    for entry in scores or []:
        if isinstance(entry, dict) and entry.get("scorerId"):
            score = entry.get("score")
            yield entry["scorerId"], float(score) if isinstance(score, (int, float)) else None


def run_scorer_stats(run: DatasetRun) -> dict[str, ScorerStats]:
    """Per-scorer statistics over every result of the run (all repetitions)."""
    stats: dict[str, ScorerStats] = {scorer_id: ScorerStats() for scorer_id in run.scorer_ids}
    rows = DatasetRunResult.objects.filter(run=run).values_list("scores", flat=True).iterator(chunk_size=STREAM_CHUNK)
    for scores in rows:
        for scorer_id, score in _score_entries(scores):
            stats.setdefault(scorer_id, ScorerStats()).add(score)
    return stats


def _is_regression(delta: float | None, threshold: dict) -> bool:
    if delta is None:
        return False
    if threshold["direction"] == LOWER_IS_BETTER:
        return delta > threshold["value"] + FLOAT_TOLERANCE
    return delta < -threshold["value"] - FLOAT_TOLERANCE


def _items_page(run_a: DatasetRun, run_b: DatasetRun, *, offset: int, limit: int) -> tuple[list[dict], int]:
    """The items of either run (by item id), one page of them with their mean scores per run."""
    item_ids = (
        DatasetRunResult.objects.filter(run_id__in=[run_a.pk, run_b.pk])
        .order_by("item_id")
        .values_list("item_id", flat=True)
        .distinct()
    )
    total = item_ids.count()
    page_ids = list(item_ids[offset : offset + limit]) if offset < total else []
    per_run: dict = {run_a.pk: defaultdict(ItemScores), run_b.pk: defaultdict(ItemScores)}
    rows = DatasetRunResult.objects.filter(run_id__in=[run_a.pk, run_b.pk], item_id__in=page_ids).values_list(
        "run_id", "item_id", "scores"
    )
    for run_id, item_id, scores in rows.iterator(chunk_size=STREAM_CHUNK):
        item = per_run[run_id][item_id]  # present in the run even when unscored
        for scorer_id, score in _score_entries(scores):
            item.add(scorer_id, score)
    items = []
    for item_id in page_ids:
        in_a, in_b = item_id in per_run[run_a.pk], item_id in per_run[run_b.pk]
        items.append(
            {
                "itemId": str(item_id),
                "inBothRuns": in_a and in_b,
                "scoresA": _scores_of(per_run[run_a.pk].get(item_id)),
                "scoresB": _scores_of(per_run[run_b.pk].get(item_id)),
            }
        )
    return items, total


def _scores_of(item: ItemScores | None) -> dict:
    return item.means() if item is not None else {}


def compare_runs(
    *, run_a: DatasetRun, run_b: DatasetRun, thresholds: dict | None = None, page: int = 0, per_page: int = 1000
) -> dict:
    """Compare run B against run A (the baseline).

    `thresholds` maps a scorer id to `{"value", "direction"?}`; a scorer
    regressed when B's mean moved the wrong way by more than the value
    (default 0, higher is better). `page`/`per_page` select the items shown.
    """
    thresholds = thresholds or {}
    stats_a, stats_b = run_scorer_stats(run_a), run_scorer_stats(run_b)
    scorer_ids = list(dict.fromkeys([*stats_a, *stats_b]))
    warnings: list[str] = []

    scorers = {}
    for scorer_id in scorer_ids:
        a, b = stats_a.get(scorer_id, ScorerStats()), stats_b.get(scorer_id, ScorerStats())
        threshold = {"value": 0.0, "direction": HIGHER_IS_BETTER, **thresholds.get(scorer_id, {})}
        delta = b.mean - a.mean if a.mean is not None and b.mean is not None else None
        if delta is None:
            missing = "A" if a.mean is None else "B"
            warnings.append(f"Scorer {scorer_id} has no scores in run {missing}; it is not compared.")
        scorers[scorer_id] = {
            "statsA": a.as_dict(),
            "statsB": b.as_dict(),
            "delta": delta,
            "regressed": _is_regression(delta, threshold),
            "threshold": threshold,
        }

    version_mismatch = run_a.dataset_version != run_b.dataset_version
    if version_mismatch:
        warnings.insert(
            0,
            f"The runs used different dataset versions ({run_a.dataset_version} and {run_b.dataset_version}); "
            "items added, changed or removed in between make the comparison approximate.",
        )

    items, total = _items_page(run_a, run_b, offset=page * per_page, limit=per_page)
    return {
        "runA": {"id": str(run_a.pk), "datasetVersion": run_a.dataset_version},
        "runB": {"id": str(run_b.pk), "datasetVersion": run_b.dataset_version},
        "versionMismatch": version_mismatch,
        "hasRegression": any(s["regressed"] for s in scorers.values()),
        "scorers": scorers,
        "items": items,
        "pagination": {
            "total": total,
            "page": page,
            "perPage": per_page,
            "hasMore": page * per_page + len(items) < total,
        },
        "warnings": warnings,
    }
