"""Comparing run B of a dataset against run A (the baseline), for the API and
the compare page.

Per-scorer figures are each run's own statistics, read from the run rows
(`runs/summary.py`); only the page of items shown is read from the results,
so memory grows with the page, never with the runs. `verdict` is the one
definition of "regressed" and "improved", for scorers and items alike.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from .models import DatasetRun, DatasetRunResult
from .runs.summary import FLOAT_TOLERANCE, ScorerStats, scorer_stats

HIGHER_IS_BETTER = "higher-is-better"
LOWER_IS_BETTER = "lower-is-better"
STREAM_CHUNK = 2000


class Verdict(StrEnum):
    REGRESSED = "regressed"
    IMPROVED = "improved"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Threshold:
    """How far a mean may move the wrong way before it counts as a regression."""

    value: float = 0.0
    direction: str = HIGHER_IS_BETTER


NO_THRESHOLD = Threshold()


def verdict(delta: float | None, threshold: Threshold = NO_THRESHOLD) -> Verdict:
    """B-minus-A `delta` judged against the threshold: a move the wrong way by
    more than `threshold.value` regressed, the right way improved."""
    if delta is None:
        return Verdict.UNCHANGED
    gain = -delta if threshold.direction == LOWER_IS_BETTER else delta
    if gain < -threshold.value - FLOAT_TOLERANCE:
        return Verdict.REGRESSED
    if gain > threshold.value + FLOAT_TOLERANCE:
        return Verdict.IMPROVED
    return Verdict.UNCHANGED


def _delta(a: float | None, b: float | None) -> float | None:
    return b - a if a is not None and b is not None else None


@dataclass(frozen=True)
class ScorerComparison:
    scorer_id: str
    stats_a: ScorerStats
    stats_b: ScorerStats
    threshold: Threshold

    @property
    def delta(self) -> float | None:
        """B's mean minus A's."""
        return _delta(self.stats_a.mean, self.stats_b.mean)

    @property
    def verdict(self) -> Verdict:
        return verdict(self.delta, self.threshold)

    @property
    def regressed(self) -> bool:
        return self.verdict is Verdict.REGRESSED


@dataclass(frozen=True)
class ScoreChange:
    """One scorer's score of one item in each run (mean over its repetitions)."""

    scorer_id: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return _delta(self.a, self.b)

    @property
    def verdict(self) -> Verdict:
        return verdict(self.delta)


@dataclass(frozen=True)
class ItemComparison:
    item_id: UUID
    in_both_runs: bool
    scores_a: dict[str, float | None]
    scores_b: dict[str, float | None]

    def changes(self) -> list[ScoreChange]:
        return [
            ScoreChange(scorer_id, self.scores_a.get(scorer_id), self.scores_b.get(scorer_id))
            for scorer_id in sorted(self.scores_a.keys() | self.scores_b.keys())
        ]

    @property
    def regressed(self) -> bool:
        return any(change.verdict is Verdict.REGRESSED for change in self.changes())

    @property
    def improved(self) -> bool:
        return any(change.verdict is Verdict.IMPROVED for change in self.changes())


@dataclass(frozen=True)
class Comparison:
    run_a: DatasetRun
    run_b: DatasetRun
    scorers: dict[str, ScorerComparison]
    items: list[ItemComparison]  # the page asked for
    item_total: int  # items of either run
    warnings: list[str]

    @property
    def version_mismatch(self) -> bool:
        return self.run_a.dataset_version != self.run_b.dataset_version

    @property
    def has_regression(self) -> bool:
        return any(scorer.regressed for scorer in self.scorers.values())


def compare_runs(
    *,
    run_a: DatasetRun,
    run_b: DatasetRun,
    thresholds: dict[str, Threshold] | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> Comparison:
    """Compare run B against run A. `thresholds` maps a scorer id to its
    Threshold (default: 0, higher is better); `offset`/`limit` select the
    items compared one by one (ordered by item id)."""
    thresholds = thresholds or {}
    stats_a = {s.scorer_id: s for s in scorer_stats(run_a)}
    stats_b = {s.scorer_id: s for s in scorer_stats(run_b)}
    warnings: list[str] = []
    if run_a.dataset_version != run_b.dataset_version:
        warnings.append(
            f"The runs used different dataset versions ({run_a.dataset_version} and {run_b.dataset_version}); "
            "items added, changed or removed in between make the comparison approximate."
        )
    scorers = {}
    for scorer_id in dict.fromkeys([*stats_a, *stats_b]):
        a, b = stats_a.get(scorer_id, _no_scores(scorer_id)), stats_b.get(scorer_id, _no_scores(scorer_id))
        scorers[scorer_id] = ScorerComparison(scorer_id, a, b, thresholds.get(scorer_id, NO_THRESHOLD))
        if a.mean is None or b.mean is None:
            missing = "A" if a.mean is None else "B"
            warnings.append(f"Scorer {scorer_id} has no scores in run {missing}; it is not compared.")
    items, item_total = _items_page(run_a, run_b, offset=offset, limit=limit)
    return Comparison(run_a, run_b, scorers, items, item_total, warnings)


def _no_scores(scorer_id: str) -> ScorerStats:
    return ScorerStats(scorer_id, count=0, total=0.0, errors=0, passed=0, histogram=())


@dataclass
class _ItemScores:
    """One item's scores in one run, summed over its repetitions."""

    sums: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    seen: set[str] = field(default_factory=set)

    def add(self, scorer_id: str, score: float | None) -> None:
        self.seen.add(scorer_id)
        if score is not None:
            self.sums[scorer_id] += score
            self.counts[scorer_id] += 1

    def means(self) -> dict[str, float | None]:
        return {s: (self.sums[s] / self.counts[s] if self.counts[s] else None) for s in sorted(self.seen)}


def _score_entries(scores: Any) -> list[tuple[str, float | None]]:
    return [
        (entry["scorerId"], float(entry["score"]) if isinstance(entry.get("score"), int | float) else None)
        for entry in scores or []
        if isinstance(entry, dict) and entry.get("scorerId")
    ]


def _items_page(run_a: DatasetRun, run_b: DatasetRun, *, offset: int, limit: int) -> tuple[list[ItemComparison], int]:
    """One page of the items of either run (by item id), with their mean scores in each."""
    run_ids = [run_a.pk, run_b.pk]
    item_ids = (
        DatasetRunResult.objects.filter(run_id__in=run_ids).order_by("item_id").values_list("item_id", flat=True)
    ).distinct()
    total = item_ids.count()
    page_ids = list(item_ids[offset : offset + limit]) if offset < total else []
    per_run: dict[UUID, defaultdict[UUID, _ItemScores]] = {run_id: defaultdict(_ItemScores) for run_id in run_ids}
    rows = DatasetRunResult.objects.filter(run_id__in=run_ids, item_id__in=page_ids).values_list(
        "run_id", "item_id", "scores"
    )
    for run_id, item_id, scores in rows.iterator(chunk_size=STREAM_CHUNK):
        item = per_run[run_id][item_id]  # present in the run even when unscored
        for scorer_id, score in _score_entries(scores):
            item.add(scorer_id, score)
    in_a, in_b = per_run[run_a.pk], per_run[run_b.pk]
    items = [
        ItemComparison(
            item_id=item_id,
            in_both_runs=item_id in in_a and item_id in in_b,
            scores_a=in_a[item_id].means() if item_id in in_a else {},
            scores_b=in_b[item_id].means() if item_id in in_b else {},
        )
        for item_id in page_ids
    ]
    return items, total


@dataclass(frozen=True)
class ResultOutput:
    result_id: UUID
    output: Any
    error: str | None


def first_outputs(run: DatasetRun, item_ids: list[UUID]) -> dict[UUID, ResultOutput]:
    """Each item's output (or error) in its first repetition of the run."""
    rows = (
        DatasetRunResult.objects.filter(run=run, item_id__in=item_ids)
        .order_by("item_id", "repetition")
        .values_list("item_id", "id", "output", "error")
    )
    outputs: dict[UUID, ResultOutput] = {}
    for item_id, result_id, output, error in rows:
        outputs.setdefault(item_id, ResultOutput(result_id, output, error))
    return outputs
