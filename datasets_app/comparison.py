"""Comparing runs of a dataset against a baseline, for the API and the compare page.

`compare_with_baseline(baseline=…, runs=[…])` compares up to five runs with a
baseline, each against the baseline, over the items both ran:

* A scorer's `delta` is the run's mean minus the baseline's over the items
  both runs scored with it (each item's repetitions averaged first). Items
  only one of the two ran (added or removed between dataset versions, failed,
  not reached) never count towards it, so a run of a grown dataset is not
  "worse" for the new items alone.
* `ci95` is the 95 % interval of that mean of paired per-item differences
  (Student's t, n − 1 degrees of freedom). The item is the unit: repetitions
  are averaged per item first, so their noise shows in how much the items'
  differences vary rather than being counted as independent evidence.
* `verdict`: with `higher-is-better`, `regressed` when delta < −tolerance and
  the interval lies below 0; `improved` when delta > tolerance and the
  interval lies above 0; `unchanged` otherwise — a move whose interval holds 0
  is noise. The tolerance is max(the scorer's threshold, `min_delta`). With
  fewer than two items to pair there is no interval: `unchanged`, with a
  warning. A scorer that regressed always has an item that regressed (items
  are judged with the same tolerance, without an interval).
* Latency (per-item mean over repetitions; p50 and mean) and tokens and cost
  per item (usage `{promptTokens, completionTokens, totalTokens, model}`,
  priced per million tokens from settings.PLAYGROUND_MODEL_PRICES) are
  compared over the shared items too. Each run's own figures over all its
  results (`ScorerStats`, `LatencySummary`, `UsageSummary`) come from the run
  rows (`runs/summary.py`).

Human review counts like a scorer: each annotation name of the runs' results
(`annotations.item_scores`: a result's mean score over its reviewers) is one
more "scorer" keyed `annotation:<name>`, with the same means, deltas,
intervals, verdicts and item counts over the items reviewed in both runs. An
item reviewed in only one of the two is not "changed" for that (review is
not the run's doing).

`verdict` is the one definition of "regressed" and "improved" by a delta.
"""

import math
import statistics
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby
from operator import itemgetter
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, Q

from . import annotations
from .exceptions import InvalidInput
from .models import DatasetRun, DatasetRunResult
from .runs.summary import (
    DEFAULT_PASS_THRESHOLD,
    FLOAT_TOLERANCE,
    HISTOGRAM_BUCKETS,
    LatencySummary,
    ScorerStats,
    UsageSummary,
    bucket_of,
    latency_summary,
    scorer_stats,
    usage_summary,
)

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
    """A `delta` (compared run minus baseline) judged against the threshold: a move
    the wrong way by more than `threshold.value` regressed, the right way improved."""
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
class ScoreChange:
    """One scorer's score of one item in each run (mean over its repetitions):
    `a` in the baseline, `b` in the compared run; judged with `threshold`."""

    scorer_id: str
    a: float | None
    b: float | None
    threshold: Threshold = NO_THRESHOLD

    @property
    def delta(self) -> float | None:
        return _delta(self.a, self.b)

    @property
    def verdict(self) -> Verdict:
        return verdict(self.delta, self.threshold)


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


MAX_COMPARED_RUNS = 5
DEFAULT_ITEM_LIMIT = 50


class ItemFilter(StrEnum):
    """Which items a page lists, judged against the baseline in any compared run."""

    REGRESSED = "regressed"  # a scorer's score dropped beyond its tolerance
    IMPROVED = "improved"  # a scorer's score rose beyond its tolerance
    CHANGED = "changed"  # any score differs (or a score or the item's failure appears or goes)


# Two-sided 95 % critical values of Student's t for 1..30 degrees of freedom.
_T_975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip
_Z_975 = 1.959963984540054


def t_critical_95(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom: a table up
    to 30, then the Cornish–Fisher expansion (within 3e-8 of the exact value)."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = _Z_975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def judge(delta: float | None, ci95: tuple[float, float] | None, threshold: Threshold) -> Verdict:
    """A scorer's verdict: `verdict(delta, threshold)`, kept only when the 95 %
    interval of the paired differences leaves out 0 (no interval: unchanged)."""
    if delta is None or ci95 is None:
        return Verdict.UNCHANGED
    moved = verdict(delta, threshold)
    low, high = ci95
    if low <= FLOAT_TOLERANCE and high >= -FLOAT_TOLERANCE:  # 0 is inside: noise
        return Verdict.UNCHANGED
    return moved


@dataclass(frozen=True)
class RunRef:
    """A run as the comparison names it."""

    id: UUID
    name: str
    dataset_version: int
    run: DatasetRun  # for links (get_absolute_url) and anything else a page shows

    @classmethod
    def of(cls, run: DatasetRun) -> "RunRef":
        return cls(run.pk, run.name, run.dataset_version, run)

    @property
    def label(self) -> str:
        """How warnings name the run: its name, else its short id."""
        return f'run "{self.name}"' if self.name else f"run {str(self.id)[:8]}"

    @property
    def sentence_label(self) -> str:
        """`label` opening a sentence ("Run …"), the name left as it is."""
        return "R" + self.label[1:]


@dataclass(frozen=True)
class ScorerDelta:
    """One scorer of a compared run, against the baseline."""

    scorer_id: str
    stats: ScorerStats  # the run's own figures over all its results (mean, count, pass_rate, errors)
    baseline_stats: ScorerStats  # the baseline's own figures
    shared_count: int  # items both runs scored with it (a score in each, after averaging repetitions)
    baseline_mean: float | None  # over those items
    mean: float | None  # over those items
    delta: float | None  # mean − baseline_mean
    ci95: tuple[float, float] | None  # of the mean per-item difference; None below 2 items
    threshold: Threshold  # the tolerance applied: max(the scorer's threshold, min_delta), its direction
    verdict: Verdict
    items_regressed: int  # shared items whose score moved the wrong way beyond the tolerance
    items_improved: int

    @property
    def regressed(self) -> bool:
        return self.verdict is Verdict.REGRESSED


@dataclass(frozen=True)
class LatencyDelta:
    """Latency in ms over the items both runs ran (each item's mean over its
    repetitions); the runs' own figures are `RunComparison.latency_summary`."""

    shared_count: int
    baseline_mean: float | None
    mean: float | None
    baseline_p50: float | None
    p50: float | None

    @property
    def delta_mean(self) -> float | None:
        return _delta(self.baseline_mean, self.mean)

    @property
    def delta_p50(self) -> float | None:
        return _delta(self.baseline_p50, self.p50)


@dataclass(frozen=True)
class UsageDelta:
    """Tokens and cost per item, over the items both runs ran that reported
    usage in both (each item's mean over its repetitions with usage)."""

    shared_count: int  # items with usage in both runs
    baseline_tokens: float | None  # mean totalTokens per item
    tokens: float | None
    priced_count: int  # of those, items whose model has a price in both runs
    baseline_cost: float | None  # mean cost per item, in the price table's currency
    cost: float | None

    @property
    def delta_tokens(self) -> float | None:
        return _delta(self.baseline_tokens, self.tokens)

    @property
    def delta_cost(self) -> float | None:
        return _delta(self.baseline_cost, self.cost)


@dataclass(frozen=True)
class RunComparison:
    """One compared run against the baseline."""

    run: RunRef
    version_mismatch: bool  # another dataset version than the baseline's
    shared_items: int  # items both this run and the baseline ran
    only_in_run: int
    only_in_baseline: int
    scorers: dict[str, ScorerDelta]  # every scorer of either run, baseline's order first
    latency: LatencyDelta
    usage: UsageDelta
    latency_summary: LatencySummary  # the run's own, over all its results (from the run row)
    usage_summary: UsageSummary | None  # the run's own token totals and cost; None without usage
    items_regressed: int  # shared items where some scorer regressed
    items_improved: int
    items_changed: int

    @property
    def has_regression(self) -> bool:
        """A scorer regressed (latency and cost are reported, never a regression)."""
        return any(scorer.regressed for scorer in self.scorers.values())


@dataclass(frozen=True)
class RunCell:
    """One run's side of an item row (absent when the run did not run the item)."""

    result_id: UUID  # the first repetition's result: what the row links to
    repetitions: int
    scores: dict[str, float | None]  # per scorer, the mean over repetitions (None: the scorer failed)
    output: Any  # of the first repetition
    error: str | None  # of the first repetition
    expected_output: Any  # as this run saw the item (it may differ between dataset versions)


@dataclass(frozen=True)
class ItemRow:
    item_id: UUID
    input: Any  # as the baseline ran it, else as the first compared run that has it
    cells: dict[UUID, RunCell]  # by run id
    changes: dict[UUID, list[ScoreChange]]  # by compared run id, for runs sharing the item with the baseline
    regressed: bool
    improved: bool
    changed: bool

    def scores(self) -> dict[UUID, dict[str, float | None]]:
        """`{runId: {scorerId: score}}`, the wire's `scores`."""
        return {run_id: cell.scores for run_id, cell in self.cells.items()}


@dataclass(frozen=True)
class RunsComparison:
    baseline: RunRef
    baseline_stats: dict[str, ScorerStats]  # the baseline's own figures per scorer
    baseline_latency: LatencySummary
    baseline_usage: UsageSummary | None
    runs: list[RunComparison]  # in the order asked
    shared_items: int  # items the baseline and every compared run ran
    item_total: int  # items any of the runs ran
    item_filter: ItemFilter | None
    matching_items: int  # items the filter keeps (item_total without one): the page's total
    items: list[ItemRow]  # the page asked for, by item id
    items_regressed: int  # items regressed in some compared run (so for improved, changed)
    items_improved: int
    items_changed: int
    warnings: list[str]

    @property
    def has_regression(self) -> bool:
        return any(run.has_regression for run in self.runs)


def model_prices() -> dict[str, dict[str, float]]:
    """settings.PLAYGROUND_MODEL_PRICES: {model: {"input", "output"}} per million tokens."""
    prices = getattr(settings, "PLAYGROUND_MODEL_PRICES", {}) or {}
    return prices if isinstance(prices, dict) else {}


def usage_cost(usage: Any, prices: Mapping[str, Any]) -> float | None:
    """What one result's usage cost, priced by its `model`; None without a price
    or without prompt and completion counts."""
    if not isinstance(usage, dict):
        return None
    price = prices.get(str(usage.get("model") or ""))
    prompt, completion = _count(usage.get("promptTokens")), _count(usage.get("completionTokens"))
    if not isinstance(price, dict) or prompt is None or completion is None:
        return None
    return (prompt * float(price.get("input", 0)) + completion * float(price.get("output", 0))) / 1_000_000


def _count(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _tokens(usage: Any) -> float | None:
    if not isinstance(usage, dict):
        return None
    total = _count(usage.get("totalTokens"))
    if total is not None:
        return total
    prompt, completion = _count(usage.get("promptTokens")), _count(usage.get("completionTokens"))
    return None if prompt is None and completion is None else (prompt or 0.0) + (completion or 0.0)


class _Mean:
    __slots__ = ("n", "total")

    def __init__(self) -> None:
        self.n, self.total = 0, 0.0

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


class _Paired:
    """Paired per-item scores of a scorer: means of each side and, by Welford's
    method, the mean and variance of the differences. O(1) memory."""

    __slots__ = ("base", "diff_mean", "improved", "m2", "n", "regressed", "run")

    def __init__(self) -> None:
        self.n, self.diff_mean, self.m2 = 0, 0.0, 0.0
        self.base, self.run = 0.0, 0.0
        self.regressed = self.improved = 0

    def add(self, base: float, run: float) -> None:
        self.n += 1
        self.base += base
        self.run += run
        difference = run - base
        step = difference - self.diff_mean
        self.diff_mean += step / self.n
        self.m2 += step * (difference - self.diff_mean)

    def ci95(self) -> tuple[float, float] | None:
        if self.n < 2:
            return None
        half = t_critical_95(self.n - 1) * math.sqrt(max(self.m2, 0.0) / (self.n - 1) / self.n)
        return (self.diff_mean - half, self.diff_mean + half)


class _ItemInRun:
    """One item's results in one run, while the stream is on that item."""

    __slots__ = ("cost", "failed", "first_result", "latency", "repetitions", "scores", "tokens", "unpriced_models")

    def __init__(self, first_result: UUID) -> None:
        self.first_result = first_result
        self.repetitions = 0
        self.failed = 0
        self.scores = _ItemScores()
        self.latency = _Mean()
        self.tokens = _Mean()
        self.cost = _Mean()
        self.unpriced_models: set[str] = set()

    def add(self, scores: Any, latency: float, usage: Any, failed: bool, prices: Mapping[str, Any]) -> None:
        self.repetitions += 1
        self.failed += failed
        for scorer_id, score in _score_entries(scores):
            self.scores.add(scorer_id, score)
        self.latency.add(latency)
        tokens = _tokens(usage)
        if tokens is not None:
            self.tokens.add(tokens)
            cost = usage_cost(usage, prices)
            if cost is None:
                self.unpriced_models.add(str(usage.get("model") or "(no model)"))
            else:
                self.cost.add(cost)

    @property
    def all_failed(self) -> bool:
        return self.failed == self.repetitions

    @property
    def item_cost(self) -> float | None:
        """The mean cost, when every repetition that used tokens is priced."""
        return self.cost.mean if self.cost.n == self.tokens.n else None


class _Pair:
    """Running figures of one compared run against the baseline."""

    def __init__(self) -> None:
        self.shared = self.only_in_run = self.only_in_baseline = 0
        self.failed_in_run = self.failed_in_baseline = 0
        self.scorers: defaultdict[str, _Paired] = defaultdict(_Paired)
        # Per-item latencies of the shared items: 8 bytes each, for the p50s.
        self.base_latency, self.run_latency = array("d"), array("d")
        self.tokens, self.cost = _Paired(), _Paired()
        self.regressed = self.improved = self.changed = 0


def compare_with_baseline(
    *,
    baseline: DatasetRun,
    runs: Sequence[DatasetRun],
    thresholds: Mapping[str, Threshold] | None = None,
    min_delta: float = 0.0,
    pass_threshold: float = DEFAULT_PASS_THRESHOLD,
    item_filter: ItemFilter | str | None = None,
    offset: int = 0,
    limit: int = DEFAULT_ITEM_LIMIT,
) -> RunsComparison:
    """Compare 1–5 runs of one dataset with `baseline` (see the module docstring).

    `thresholds` maps a scorer id to its Threshold (value ≥ 0 and direction;
    default 0, higher is better); `min_delta` (≥ 0) is the least move any
    scorer must make to count. `pass_threshold` sets the pass rate of the
    runs' own stats. `item_filter` ("regressed", "improved", "changed", or
    None for every item of any run) and `offset`/`limit` choose the page of
    `items`, ordered by item id. Raises InvalidInput, keyed by the wire's
    field names (`runIds`, `minDelta`, `thresholds/<id>/value`, `offset`,
    `limit`, `itemFilter`), for what a request cannot ask.

    Cost: one streamed read of the runs' results (item, run, id, scores,
    latency, usage, failed — never outputs), in item order with
    STREAM_CHUNK-row chunks; one read of the runs' review scores (a row per
    reviewed result and reviewer); one read of the page's first-repetition
    results; run-row figures otherwise. Memory: one chunk of rows (no outputs)
    and one item's results at a time; O(1) running sums per (run, scorer); the
    review scores (a few floats per reviewed result); per compared run, two
    8-byte latencies per shared item (for the p50s: 160 KB per run at 10,000
    items); and the page's rows. Nothing grows with the items outside the page
    but those latencies and the reviews.
    """
    item_filter = _check_request(baseline, runs, thresholds or {}, min_delta, item_filter, offset, limit)
    refs = [RunRef.of(run) for run in runs]
    baseline_ref = RunRef.of(baseline)
    all_runs = [baseline, *runs]
    reviewed = annotations.item_scores([run.pk for run in all_runs])
    own = {
        run.pk: {s.scorer_id: s for s in scorer_stats(run, pass_threshold=pass_threshold)}
        | _review_stats(reviewed.get(run.pk, {}), pass_threshold)
        for run in all_runs
    }
    scorer_ids = list(
        dict.fromkeys(
            [
                *(s for run in all_runs for s in own[run.pk] if not is_review_key(s)),
                *sorted({s for run in all_runs for s in own[run.pk] if is_review_key(s)}),
            ]
        )
    )
    tolerances = {scorer_id: _tolerance((thresholds or {}).get(scorer_id), min_delta) for scorer_id in scorer_ids}

    stream = _Stream(baseline.pk, [run.pk for run in runs], tolerances, item_filter, offset, limit, reviewed)
    stream.read()
    page = _page_rows(stream, baseline.pk, [run.pk for run in runs])

    warnings: list[str] = []
    compared = [
        _run_comparison(ref, baseline_ref, pair, own, scorer_ids, tolerances, warnings)
        for ref, pair in zip(refs, stream.pairs, strict=True)
    ]
    if stream.unpriced_models:
        warnings.append(
            f"No price in PLAYGROUND_MODEL_PRICES for {', '.join(sorted(stream.unpriced_models))}: "
            "the cost of the items that used it is not compared."
        )
    for ref in [baseline_ref, *refs]:
        if not ref.run.is_terminal:
            warnings.append(f"{ref.sentence_label} is still {ref.run.status}: its figures will change.")
    return RunsComparison(
        baseline=baseline_ref,
        baseline_stats=own[baseline.pk],
        baseline_latency=latency_summary(baseline),
        baseline_usage=usage_summary(baseline),
        runs=compared,
        shared_items=stream.shared_by_all,
        item_total=stream.item_total,
        item_filter=item_filter,
        matching_items=stream.matching,
        items=page,
        items_regressed=stream.regressed,
        items_improved=stream.improved,
        items_changed=stream.changed,
        warnings=list(dict.fromkeys(warnings)),
    )


def is_review_key(scorer_id: str) -> bool:
    """A key that stands for an annotation name (`annotation:human`), not a scorer id."""
    return annotations.name_of(scorer_id) is not None


def _review_stats(
    scores: Mapping[tuple[UUID, int], Mapping[str, float]], pass_threshold: float
) -> dict[str, ScorerStats]:
    """A run's own figures per annotation key, as `scorer_stats` gives a scorer's:
    over its reviewed results, each result's mean over its reviewers."""
    values: defaultdict[str, list[float]] = defaultdict(list)
    for by_key in scores.values():
        for key, score in by_key.items():
            values[key].append(score)
    stats = {}
    for key, found in values.items():
        histogram = [0] * HISTOGRAM_BUCKETS
        for score in found:
            histogram[bucket_of(score)] += 1
        stats[key] = ScorerStats(
            scorer_id=key,
            count=len(found),
            total=math.fsum(found),
            errors=0,
            passed=sum(score >= pass_threshold - FLOAT_TOLERANCE for score in found),
            histogram=tuple(histogram),
        )
    return stats


def _check_request(
    baseline: DatasetRun,
    runs: Sequence[DatasetRun],
    thresholds: Mapping[str, Threshold],
    min_delta: float,
    item_filter: ItemFilter | str | None,
    offset: int,
    limit: int,
) -> ItemFilter | None:
    errors: dict[str, list[str]] = {}
    if not 1 <= len(runs) <= MAX_COMPARED_RUNS:
        errors["runIds"] = [f"Compare 1 to {MAX_COMPARED_RUNS} runs with the baseline, not {len(runs)}."]
    elif len({run.pk for run in runs}) < len(runs):
        errors["runIds"] = ["A run is listed twice."]
    elif any(run.dataset_id != baseline.dataset_id for run in runs):
        errors["runIds"] = ["Every run must be a run of the baseline's dataset."]
    if not (isinstance(min_delta, int | float) and math.isfinite(min_delta) and min_delta >= 0):
        errors["minDelta"] = ["Must be a number ≥ 0."]
    for scorer_id, threshold in thresholds.items():
        if not (math.isfinite(threshold.value) and threshold.value >= 0):
            errors[f"thresholds/{scorer_id}/value"] = ["Must be a number ≥ 0."]
        if threshold.direction not in (HIGHER_IS_BETTER, LOWER_IS_BETTER):
            errors[f"thresholds/{scorer_id}/direction"] = [f"Must be {HIGHER_IS_BETTER} or {LOWER_IS_BETTER}."]
    if offset < 0:
        errors["offset"] = ["Must be ≥ 0."]
    if limit < 0:
        errors["limit"] = ["Must be ≥ 0."]
    chosen = None
    if item_filter:
        try:
            chosen = ItemFilter(item_filter)
        except ValueError:
            errors["itemFilter"] = [f"Must be one of {', '.join(ItemFilter)}."]
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"Invalid comparison at {first}: {errors[first][0]}", errors)
    return chosen


def _tolerance(threshold: Threshold | None, min_delta: float) -> Threshold:
    threshold = threshold or NO_THRESHOLD
    return Threshold(max(threshold.value, min_delta), threshold.direction)


class _Stream:
    """One pass over the results of the baseline and the compared runs, in item order."""

    def __init__(
        self,
        baseline_id: UUID,
        run_ids: list[UUID],
        tolerances: dict[str, Threshold],
        item_filter: ItemFilter | None,
        offset: int,
        limit: int,
        reviewed: Mapping[UUID, Mapping[tuple[UUID, int], Mapping[str, float]]] | None = None,
    ) -> None:
        self.baseline_id, self.run_ids = baseline_id, run_ids
        self.reviewed = reviewed or {}
        self.tolerances = tolerances
        self.item_filter, self.offset, self.limit = item_filter, offset, limit
        self.prices = model_prices()
        self.pairs = [_Pair() for _ in run_ids]
        self.item_total = self.shared_by_all = self.matching = 0
        self.regressed = self.improved = self.changed = 0
        self.unpriced_models: set[str] = set()
        # The page: each item's runs and its changes against the baseline.
        self.page: list[tuple[UUID, dict[UUID, _ItemInRun], dict[UUID, list[ScoreChange]], tuple[bool, bool, bool]]]
        self.page = []

    def read(self) -> None:
        rows = (
            DatasetRunResult.objects.filter(run_id__in={self.baseline_id, *self.run_ids})
            .annotate(failed=ExpressionWrapper(Q(error__isnull=False), output_field=BooleanField()))
            .order_by("item_id", "run_id", "repetition")
            .values_list("item_id", "run_id", "id", "scores", "latency", "usage", "failed", "repetition")
        )
        for item_id, results in groupby(rows.iterator(chunk_size=STREAM_CHUNK), key=itemgetter(0)):
            self._item(item_id, results)

    def _item(self, item_id: UUID, results: Iterable[tuple]) -> None:
        runs: dict[UUID, _ItemInRun] = {}
        for _, run_id, result_id, scores, latency, usage, failed, repetition in results:
            entry = runs.get(run_id)
            if entry is None:
                entry = runs[run_id] = _ItemInRun(result_id)
            entry.add(scores, latency, usage, bool(failed), self.prices)
            reviews = self.reviewed.get(run_id)
            if reviews:
                for key, score in reviews.get((item_id, repetition), {}).items():
                    entry.scores.add(key, score)
        for entry in runs.values():
            self.unpriced_models |= entry.unpriced_models
        self.item_total += 1
        base = runs.get(self.baseline_id)
        if base is not None and all(run_id in runs for run_id in self.run_ids):
            self.shared_by_all += 1
        changes: dict[UUID, list[ScoreChange]] = {}
        regressed = improved = changed = False
        for run_id, pair in zip(self.run_ids, self.pairs, strict=True):
            entry = runs.get(run_id)
            if entry is None or base is None:
                pair.only_in_run += entry is not None
                pair.only_in_baseline += base is not None
                continue
            run_changes = self._pair_item(pair, base, entry)
            changes[run_id] = run_changes
            item_regressed = any(c.verdict is Verdict.REGRESSED for c in run_changes)
            item_improved = any(c.verdict is Verdict.IMPROVED for c in run_changes)
            item_changed = (
                item_regressed
                or item_improved
                or base.all_failed != entry.all_failed
                or any(_differs(c.a, c.b) for c in run_changes if not _reviewed_on_one_side(c))
            )
            pair.regressed += item_regressed
            pair.improved += item_improved
            pair.changed += item_changed
            regressed, improved, changed = (
                regressed or item_regressed,
                improved or item_improved,
                changed or item_changed,
            )
        self.regressed += regressed
        self.improved += improved
        self.changed += changed
        keep = {
            None: True,
            ItemFilter.REGRESSED: regressed,
            ItemFilter.IMPROVED: improved,
            ItemFilter.CHANGED: changed,
        }[self.item_filter]
        if keep:
            if self.offset <= self.matching < self.offset + self.limit:
                self.page.append((item_id, runs, changes, (regressed, improved, changed)))
            self.matching += 1

    def _pair_item(self, pair: _Pair, base: _ItemInRun, entry: _ItemInRun) -> list[ScoreChange]:
        pair.shared += 1
        pair.failed_in_run += entry.all_failed
        pair.failed_in_baseline += base.all_failed
        base_scores, run_scores = base.scores.means(), entry.scores.means()
        changes = []
        for scorer_id in sorted(base_scores.keys() | run_scores.keys()):
            change = ScoreChange(
                scorer_id, base_scores.get(scorer_id), run_scores.get(scorer_id), self.tolerances[scorer_id]
            )
            changes.append(change)
            if change.a is not None and change.b is not None:
                paired = pair.scorers[scorer_id]
                paired.add(change.a, change.b)
                item_verdict = change.verdict
                paired.regressed += item_verdict is Verdict.REGRESSED
                paired.improved += item_verdict is Verdict.IMPROVED
        base_latency, run_latency = base.latency.mean, entry.latency.mean
        if base_latency is not None and run_latency is not None:
            pair.base_latency.append(base_latency)
            pair.run_latency.append(run_latency)
        base_tokens, run_tokens = base.tokens.mean, entry.tokens.mean
        if base_tokens is not None and run_tokens is not None:
            pair.tokens.add(base_tokens, run_tokens)
            base_cost, run_cost = base.item_cost, entry.item_cost
            if base_cost is not None and run_cost is not None:
                pair.cost.add(base_cost, run_cost)
        return changes


def _reviewed_on_one_side(change: ScoreChange) -> bool:
    """An annotation only one of the two runs' results has: not a change the run made."""
    return is_review_key(change.scorer_id) and (change.a is None) != (change.b is None)


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(b - a) > FLOAT_TOLERANCE


def _run_comparison(
    ref: RunRef,
    baseline: RunRef,
    pair: _Pair,
    own: dict[UUID, dict[str, ScorerStats]],
    scorer_ids: list[str],
    tolerances: dict[str, Threshold],
    warnings: list[str],
) -> RunComparison:
    label, sentence_label = ref.label, ref.sentence_label
    if ref.dataset_version != baseline.dataset_version:
        warnings.append(
            f"{sentence_label} ran dataset version {ref.dataset_version}, the baseline version "
            f"{baseline.dataset_version}: only the {pair.shared} items both ran are compared "
            f"({pair.only_in_baseline} only in the baseline, {pair.only_in_run} only in {label})."
        )
    elif pair.only_in_run or pair.only_in_baseline:
        warnings.append(
            f"Only the {pair.shared} items both {label} and the baseline ran are compared "
            f"({pair.only_in_baseline} only in the baseline, {pair.only_in_run} only in {label})."
        )
    for side, failed in ((label, pair.failed_in_run), ("the baseline", pair.failed_in_baseline)):
        if failed:
            warnings.append(
                f"{failed} of the items {label} shares with the baseline failed in {side}: "
                "they have no scores and do not count towards its scorer verdicts."
            )
    scorers = {}
    for scorer_id in scorer_ids:
        stats = own[ref.id].get(scorer_id) or _no_scores(scorer_id)
        baseline_stats = own[baseline.id].get(scorer_id) or _no_scores(scorer_id)
        paired = pair.scorers.get(scorer_id) or _Paired()
        ci95 = paired.ci95()
        delta = paired.diff_mean if paired.n else None
        review_name = annotations.name_of(scorer_id)
        if review_name is not None and paired.n < 2:
            warnings.append(
                f"Review {review_name!r} graded {'no item' if not paired.n else 'only one item'} in both {label} "
                "and the baseline: "
                + ("it is not compared." if not paired.n else "too few to tell a change from noise, so unchanged.")
            )
        elif not paired.n:
            warnings.append(f"Scorer {scorer_id} scored no item both {label} and the baseline ran; it is not compared.")
        elif paired.n == 1:
            warnings.append(
                f"Scorer {scorer_id} scored only one item both {label} and the baseline ran: too few to tell "
                "a change from noise, so it counts as unchanged."
            )
        scorers[scorer_id] = ScorerDelta(
            scorer_id=scorer_id,
            stats=stats,
            baseline_stats=baseline_stats,
            shared_count=paired.n,
            baseline_mean=paired.base / paired.n if paired.n else None,
            mean=paired.run / paired.n if paired.n else None,
            delta=delta,
            ci95=ci95,
            threshold=tolerances[scorer_id],
            verdict=judge(delta, ci95, tolerances[scorer_id]),
            items_regressed=paired.regressed,
            items_improved=paired.improved,
        )
    latencies = len(pair.run_latency)
    return RunComparison(
        run=ref,
        version_mismatch=ref.dataset_version != baseline.dataset_version,
        shared_items=pair.shared,
        only_in_run=pair.only_in_run,
        only_in_baseline=pair.only_in_baseline,
        scorers=scorers,
        latency=LatencyDelta(
            shared_count=latencies,
            baseline_mean=statistics.fmean(pair.base_latency) if latencies else None,
            mean=statistics.fmean(pair.run_latency) if latencies else None,
            baseline_p50=_p50(pair.base_latency),
            p50=_p50(pair.run_latency),
        ),
        usage=UsageDelta(
            shared_count=pair.tokens.n,
            baseline_tokens=pair.tokens.base / pair.tokens.n if pair.tokens.n else None,
            tokens=pair.tokens.run / pair.tokens.n if pair.tokens.n else None,
            priced_count=pair.cost.n,
            baseline_cost=pair.cost.base / pair.cost.n if pair.cost.n else None,
            cost=pair.cost.run / pair.cost.n if pair.cost.n else None,
        ),
        latency_summary=latency_summary(ref.run),
        usage_summary=usage_summary(ref.run),
        items_regressed=pair.regressed,
        items_improved=pair.improved,
        items_changed=pair.changed,
    )


def _p50(values: array) -> float | None:
    """Nearest-rank median, as the run summaries read theirs."""
    if not values:
        return None
    return sorted(values)[max(1, math.ceil(0.5 * len(values))) - 1]


def _page_rows(stream: _Stream, baseline_id: UUID, run_ids: list[UUID]) -> list[ItemRow]:
    """The page's rows, with each run's first repetition read in one query."""
    first_ids = [entry.first_result for _, runs, _, _ in stream.page for entry in runs.values()]
    results = {
        row[0]: row
        for row in DatasetRunResult.objects.filter(pk__in=first_ids).values_list(
            "id", "input", "output", "error", "expected_output"
        )
    }
    order = [baseline_id, *run_ids]
    rows = []
    for item_id, runs, changes, (regressed, improved, changed) in stream.page:
        cells = {}
        for run_id in sorted(runs, key=order.index):
            entry = runs[run_id]
            _, _, output, error, expected = results[entry.first_result]
            cells[run_id] = RunCell(
                entry.first_result, entry.repetitions, entry.scores.means(), output, error, expected
            )
        first = next(iter(cells.values()))
        rows.append(
            ItemRow(
                item_id=item_id,
                input=results[first.result_id][1],
                cells=cells,
                changes=changes,
                regressed=regressed,
                improved=improved,
                changed=changed,
            )
        )
    return rows
