"""Comparing runs (`comparison.py`): a baseline and up to five runs over the items
both ran, with intervals."""

import math
import random
import statistics
import time
import tracemalloc

import pytest
from django.utils import timezone

from datasets_app import annotations, services
from datasets_app.comparison import (
    LOWER_IS_BETTER,
    ItemFilter,
    Threshold,
    Verdict,
    compare_with_baseline,
    judge,
    t_critical_95,
    usage_cost,
    verdict,
)
from datasets_app.exceptions import InvalidInput
from datasets_app.models import DatasetRun, DatasetRunResult
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "delta, threshold, expected",
    [
        (None, Threshold(), Verdict.UNCHANGED),
        (0.0, Threshold(), Verdict.UNCHANGED),
        (1e-12, Threshold(), Verdict.UNCHANGED),  # float noise from summing in another order
        (-0.1, Threshold(), Verdict.REGRESSED),
        (0.1, Threshold(), Verdict.IMPROVED),
        (-0.1, Threshold(0.2), Verdict.UNCHANGED),
        (-0.3, Threshold(0.2), Verdict.REGRESSED),
        (0.3, Threshold(0.2), Verdict.IMPROVED),
        (0.1, Threshold(0.0, LOWER_IS_BETTER), Verdict.REGRESSED),
        (-0.1, Threshold(0.0, LOWER_IS_BETTER), Verdict.IMPROVED),
    ],
)
def test_verdict(delta, threshold, expected):
    assert verdict(delta, threshold) is expected


def named(run, name):
    DatasetRun.objects.filter(pk=run.pk).update(name=name)
    run.refresh_from_db()
    return run


def questions(n, start=0):
    return [{"input": {"question": f"question {i}"}, "expectedOutput": f"answer {i}"} for i in range(start, start + n)]


def scored_runs(dataset, *score_lists, scorer="exact-match", **settings):
    """One completed run per list of scores (one per item, in creation order; None: no result)."""
    items = list(dataset.items.order_by("created_at", "id"))
    runs = []
    for scores in score_lists:
        run = make_run(dataset, scorer_ids=(scorer,), **settings)
        for item, score in zip(items, scores, strict=False):
            if score is not None:
                add_result(run, item, output=f"{run.pk} {item.input}", score=score)
        end_run(run)
        runs.append(run)
    return runs


def test_only_the_dataset_changed_is_no_regression(make_dataset):
    """The bug: the same agent on version 1 and version 4 — 0 items regressed, yet two
    scorers "Regressed" (means over items not in both runs; any drop counted)."""
    dataset = make_dataset(
        name="Capitals",
        items=[
            {"input": {"question": "What is the capital of France?"}, "expectedOutput": "Paris"},
            {"input": {"question": "What is the capital of Japan?"}, "expectedOutput": "Tokyo"},
            {"input": {"question": "What is the capital of Peru?"}, "expectedOutput": "Lima"},
        ],
    )
    agent: dict = {"target": "agent/keyword-agent", "scorer_ids": ("exact-match", "contains")}
    answers = {"France": "Paris", "Japan": "Tokyo"}

    def answer(item):
        found = [a for country, a in answers.items() if country in item.input["question"]]
        return found[0] if found else "I don't know."

    def run_all(run):
        for item in dataset.items.all():
            output = answer(item)
            score = 1.0 if output == item.expected_output else 0.0
            add_result(run, item, output=output, scores={"exact-match": score, "contains": score})
        end_run(run)
        return run

    version_1 = named(run_all(make_run(dataset, **agent)), "Keyword agent, v1")
    for country in ("Chile", "Kenya", "Nepal"):  # three edits: version 4
        services.items_bulk_create(
            dataset=dataset, items=[{"input": {"question": f"What is the capital of {country}?"}}]
        )
    dataset.refresh_from_db()
    assert dataset.version == 4
    version_4 = named(run_all(make_run(dataset, **agent)), "Keyword agent, v4")

    result = compare_with_baseline(baseline=version_1, runs=[version_4])

    run = result.runs[0]
    assert (run.version_mismatch, run.shared_items, run.only_in_run, run.only_in_baseline) == (True, 3, 3, 0)
    assert result.shared_items == 3 and result.item_total == 6
    for scorer in run.scorers.values():
        assert (scorer.shared_count, scorer.delta, scorer.verdict) == (3, 0.0, Verdict.UNCHANGED)
        assert scorer.baseline_mean == scorer.mean == pytest.approx(2 / 3)
        assert scorer.ci95 == (0.0, 0.0)
        assert scorer.stats.mean == pytest.approx(2 / 6) and scorer.baseline_stats.mean == pytest.approx(2 / 3)
    assert (run.items_regressed, run.items_improved, run.items_changed) == (0, 0, 0)
    assert not run.has_regression and not result.has_regression
    assert result.warnings == [
        'Run "Keyword agent, v4" ran dataset version 4, the baseline version 1: only the 3 items both ran '
        'are compared (0 only in the baseline, 3 only in run "Keyword agent, v4").'
    ]
    assert result.baseline.name == "Keyword agent, v1" and result.baseline.dataset_version == 1


@pytest.mark.parametrize(
    "df, exact",
    [(1, 12.706204736), (2, 4.302652730), (5, 2.570581836), (30, 2.042272456), (31, 2.039513446), (120, 1.979930405)],
)
def test_t_critical_values(df, exact):
    assert t_critical_95(df) == pytest.approx(exact, abs=1e-6)


def test_t_critical_values_match_scipy():
    from scipy.special import stdtrit  # type: ignore[import-untyped]

    for df in [*range(1, 200), 1000, 10**6]:
        assert t_critical_95(df) == pytest.approx(float(stdtrit(df, 0.975)), abs=1e-6)


@pytest.mark.parametrize(
    "delta, ci95, threshold, expected",
    [
        (-0.2, (-0.5, 0.1), Threshold(), Verdict.UNCHANGED),  # the interval holds 0: noise
        (-0.2, (-0.3, -0.1), Threshold(), Verdict.REGRESSED),
        (0.2, (0.1, 0.3), Threshold(), Verdict.IMPROVED),
        (-0.2, (-0.3, -0.1), Threshold(0.25), Verdict.UNCHANGED),  # within the tolerance
        (0.2, (0.1, 0.3), Threshold(0.0, LOWER_IS_BETTER), Verdict.REGRESSED),
        (-0.2, (-0.3, -0.1), Threshold(0.0, LOWER_IS_BETTER), Verdict.IMPROVED),
        (-1.0, None, Threshold(), Verdict.UNCHANGED),  # one item: no interval
        (None, None, Threshold(), Verdict.UNCHANGED),
        (-1.0, (-1.0, -1.0), Threshold(), Verdict.REGRESSED),  # every item dropped by 1
        (1e-12, (0.0, 2e-12), Threshold(), Verdict.UNCHANGED),
    ],
)
def test_judge(delta, ci95, threshold, expected):
    assert judge(delta, ci95, threshold) is expected


def test_noise_is_unchanged_and_a_consistent_drop_regresses(make_dataset):
    dataset = make_dataset(items=questions(10))
    baseline, noisy, worse, better = scored_runs(
        dataset,
        [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        [1, 0, 1, 1, 0, 0, 1, 0, 0, 0],  # two lost, one won: the mean drops 0.1
        [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],  # four of five lost
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
    )

    result = compare_with_baseline(baseline=baseline, runs=[noisy, worse, better])

    noise, drop, gain = (run.scorers["exact-match"] for run in result.runs)
    assert noise.ci95 is not None and drop.ci95 is not None
    assert noise.delta == pytest.approx(-0.1) and noise.ci95[0] < 0 < noise.ci95[1]
    assert noise.verdict is Verdict.UNCHANGED and (noise.items_regressed, noise.items_improved) == (2, 1)
    assert drop.delta == pytest.approx(-0.4) and drop.verdict is Verdict.REGRESSED and drop.ci95[1] < 0
    assert gain.delta == pytest.approx(0.4) and gain.verdict is Verdict.IMPROVED
    assert [run.has_regression for run in result.runs] == [False, True, False]
    assert result.has_regression
    # The interval is the t interval of the paired differences.
    differences = [b - a for a, b in zip([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0, 0, 0], strict=True)]
    half = t_critical_95(9) * statistics.stdev(differences) / math.sqrt(10)
    assert drop.ci95 == pytest.approx((statistics.fmean(differences) - half, statistics.fmean(differences) + half))


def test_tolerance_is_the_larger_of_the_threshold_and_min_delta(make_dataset):
    dataset = make_dataset(items=questions(4))
    baseline, run = scored_runs(dataset, [0.9, 0.8, 0.7, 0.6], [0.8, 0.7, 0.6, 0.5])  # every item −0.1

    def verdict_of(**options):
        scorer = compare_with_baseline(baseline=baseline, runs=[run], **options).runs[0].scorers["exact-match"]
        return scorer.verdict, scorer.threshold.value, scorer.items_regressed

    assert verdict_of() == (Verdict.REGRESSED, 0.0, 4)
    assert verdict_of(min_delta=0.15) == (Verdict.UNCHANGED, 0.15, 0)
    assert verdict_of(min_delta=0.05, thresholds={"exact-match": Threshold(0.2)}) == (Verdict.UNCHANGED, 0.2, 0)
    assert verdict_of(min_delta=0.05, thresholds={"exact-match": Threshold(0.01)}) == (Verdict.REGRESSED, 0.05, 4)
    lower = verdict_of(thresholds={"exact-match": Threshold(0.0, LOWER_IS_BETTER)})
    assert lower == (Verdict.IMPROVED, 0.0, 0)


def test_repetitions_are_averaged_per_item_before_pairing(make_dataset):
    dataset = make_dataset(items=questions(3))
    first, second, third = dataset.items.order_by("created_at", "id")
    baseline = make_run(dataset, repetitions=2)
    for item, scores in ((first, (1.0, 0.0)), (second, (1.0, 1.0)), (third, (0.0, None))):
        for repetition, score in enumerate(scores):
            add_result(baseline, item, score=score, repetition=repetition, output=f"rep {repetition}")
    run = make_run(dataset)
    for item in (first, second, third):
        add_result(run, item, score=1.0)

    result = compare_with_baseline(baseline=baseline, runs=[run])

    scorer = result.runs[0].scorers["exact-match"]
    assert (scorer.shared_count, scorer.mean) == (3, 1.0) and scorer.baseline_mean == pytest.approx(0.5)
    assert scorer.stats.count == 3 and scorer.baseline_stats.count == 5  # the runs' own figures count results
    row = next(r for r in result.items if r.item_id == first.pk)
    assert row.cells[baseline.pk].scores == {"exact-match": 0.5} and row.cells[baseline.pk].repetitions == 2
    assert row.cells[baseline.pk].output == "rep 0"


def test_items_failed_or_missing_never_count_towards_a_verdict(make_dataset):
    dataset = make_dataset(items=questions(4))
    items = list(dataset.items.order_by("created_at", "id"))
    baseline, run = make_run(dataset), make_run(dataset)
    for item in items:
        add_result(baseline, item, score=1.0)
    add_result(run, items[0], score=1.0)
    add_result(run, items[1], score=1.0)
    add_result(run, items[2], error="the target timed out", scores={})  # failed: no scores
    # items[3] never ran in `run`

    result = compare_with_baseline(baseline=baseline, runs=[run])

    compared = result.runs[0]
    scorer = compared.scorers["exact-match"]
    assert (compared.shared_items, compared.only_in_baseline, scorer.shared_count) == (3, 1, 2)
    assert scorer.delta == 0 and scorer.verdict is Verdict.UNCHANGED
    assert compared.items_changed == 1  # the failure shows as a change, not as a regression
    assert result.warnings[:2] == [
        f'Only the 3 items both run "{run.name}" and the baseline ran are compared '
        f'(1 only in the baseline, 0 only in run "{run.name}").',
        f'1 of the items run "{run.name}" shares with the baseline failed in run "{run.name}": '
        "they have no scores and do not count towards its scorer verdicts.",
    ]


def test_a_single_shared_item_is_too_few_to_judge(make_dataset):
    dataset = make_dataset(items=questions(1))
    baseline, run = scored_runs(dataset, [1.0], [0.0])

    scorer = compare_with_baseline(baseline=baseline, runs=[run]).runs[0].scorers["exact-match"]

    assert (scorer.delta, scorer.ci95, scorer.verdict, scorer.items_regressed) == (-1.0, None, Verdict.UNCHANGED, 1)


def test_up_to_five_runs_each_against_the_baseline(make_dataset):
    dataset = make_dataset(items=questions(6))
    baseline, *runs = scored_runs(
        dataset,
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, None],
        [None, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 0.5, 1],
    )

    result = compare_with_baseline(baseline=baseline, runs=runs)

    assert [r.run.id for r in result.runs] == [r.pk for r in runs]
    assert [r.shared_items for r in result.runs] == [6, 5, 5, 6, 6]
    assert result.shared_items == 4 and result.item_total == 6
    assert [r.scorers["exact-match"].verdict for r in result.runs] == [
        Verdict.UNCHANGED,
        Verdict.UNCHANGED,
        Verdict.UNCHANGED,
        Verdict.REGRESSED,
        Verdict.UNCHANGED,  # one item of six lost half a point: not beyond noise
    ]
    assert (result.items_regressed, result.items_improved, result.items_changed) == (6, 0, 6)


@pytest.mark.parametrize(
    "runs, error",
    [
        (0, "runIds"),
        (6, "runIds"),
        ("twice", "runIds"),
        ("foreign", "runIds"),
    ],
)
def test_what_a_request_cannot_ask_is_refused_naming_the_field(make_dataset, runs, error):
    dataset = make_dataset(items=questions(1))
    baseline, other = make_run(dataset), make_run(dataset)
    chosen = {
        0: [],
        6: [make_run(dataset) for _ in range(6)],
        "twice": [other, other],
        "foreign": [make_run(make_dataset(name="Other", items=questions(1)))],
    }[runs]
    with pytest.raises(InvalidInput) as caught:
        compare_with_baseline(baseline=baseline, runs=chosen)
    assert list(caught.value.errors) == [error]


@pytest.mark.parametrize(
    "options, field",
    [
        ({"min_delta": -0.1}, "minDelta"),
        ({"min_delta": math.nan}, "minDelta"),
        ({"thresholds": {"exact-match": Threshold(-1)}}, "thresholds/exact-match/value"),
        ({"thresholds": {"exact-match": Threshold(0, "sideways")}}, "thresholds/exact-match/direction"),
        ({"item_filter": "worse"}, "itemFilter"),
        ({"offset": -1}, "offset"),
        ({"limit": -5}, "limit"),
    ],
)
def test_bad_options_are_refused_naming_the_field(make_dataset, options, field):
    dataset = make_dataset(items=questions(1))
    baseline, run = make_run(dataset), make_run(dataset)
    with pytest.raises(InvalidInput) as caught:
        compare_with_baseline(baseline=baseline, runs=[run], **options)
    assert list(caught.value.errors) == [field]


@pytest.fixture
def page_runs(make_dataset):
    """Six items: 0 regresses in run 1, 1 improves in run 2, 2 changes a little in run 1, 3–5 equal."""
    dataset = make_dataset(items=questions(6))
    baseline, first, second = scored_runs(
        dataset,
        [1.0, 0.0, 0.5, 1.0, 1.0, 1.0],
        [0.0, 0.0, 0.55, 1.0, 1.0, 1.0],
        [1.0, 1.0, 0.5, 1.0, 1.0, 1.0],
    )
    return dataset, baseline, first, second, sorted(dataset.items.all(), key=lambda item: item.pk)


@pytest.mark.parametrize(
    "item_filter, min_delta, expected",
    [
        (None, 0.0, [0, 1, 2, 3, 4, 5]),
        (ItemFilter.REGRESSED, 0.0, [0]),
        ("improved", 0.0, [1, 2]),
        (ItemFilter.IMPROVED, 0.1, [1]),
        (ItemFilter.CHANGED, 0.1, [0, 1, 2]),  # a small change is a change, not an improvement
    ],
)
def test_items_are_filtered_against_the_baseline_in_any_run(page_runs, item_filter, min_delta, expected):
    dataset, baseline, first, second, _ = page_runs
    by_index = {item.pk: n for n, item in enumerate(dataset.items.order_by("created_at", "id"))}

    result = compare_with_baseline(
        baseline=baseline, runs=[first, second], item_filter=item_filter, min_delta=min_delta, limit=10
    )

    assert sorted(by_index[row.item_id] for row in result.items) == expected
    assert result.matching_items == len(expected)
    assert [row.item_id for row in result.items] == sorted(row.item_id for row in result.items)


def test_a_page_of_rows_holds_each_runs_scores_outputs_and_result_ids(page_runs, django_assert_max_num_queries):
    _, baseline, first, second, items = page_runs

    with django_assert_max_num_queries(3):  # the stream, the reviews and the page's outputs
        pages = [compare_with_baseline(baseline=baseline, runs=[first, second], limit=4)]
    pages += [compare_with_baseline(baseline=baseline, runs=[first, second], offset=o, limit=4) for o in (4, 8)]

    assert [len(p.items) for p in pages] == [4, 2, 0]
    assert [row.item_id for p in pages for row in p.items] == [item.pk for item in items]
    assert all(p.matching_items == p.item_total == 6 for p in pages)
    row = pages[0].items[0]
    result = DatasetRunResult.objects.get(run=first, item_id=row.item_id)
    cell = row.cells[first.pk]
    assert (cell.result_id, cell.output, cell.error, cell.repetitions) == (result.pk, result.output, None, 1)
    assert cell.expected_output == result.expected_output and row.input == result.input
    assert list(row.cells) == [baseline.pk, first.pk, second.pk]
    assert set(row.scores()) == {baseline.pk, first.pk, second.pk}
    assert [c.scorer_id for c in row.changes[first.pk]] == ["exact-match"]


def test_latency_tokens_and_cost_over_the_shared_items(make_dataset, settings):
    settings.PLAYGROUND_MODEL_PRICES = {
        "small": {"input": 1.0, "output": 2.0},
        "large": {"input": 10.0, "output": 20.0},
    }
    dataset = make_dataset(items=questions(4))
    items = list(dataset.items.order_by("created_at", "id"))
    baseline, run = make_run(dataset), make_run(dataset)

    def usage(model, prompt, completion):
        return {
            "promptTokens": prompt,
            "completionTokens": completion,
            "totalTokens": prompt + completion,
            "model": model,
        }

    for n, item in enumerate(items[:3]):
        add_result(baseline, item, latency=100 + n * 100, usage=usage("small", 1000, 500))
        add_result(run, item, latency=150 + n * 100, usage=usage("large", 1000, 1000))
    add_result(baseline, items[3], latency=10_000, usage=usage("small", 10**6, 0))  # only in the baseline

    compared = compare_with_baseline(baseline=baseline, runs=[run]).runs[0]

    latency = compared.latency
    assert (latency.shared_count, latency.baseline_mean, latency.mean, latency.delta_mean) == (3, 200.0, 250.0, 50.0)
    assert (latency.baseline_p50, latency.p50, latency.delta_p50) == (200.0, 250.0, 50.0)
    usage_delta = compared.usage
    assert (usage_delta.shared_count, usage_delta.baseline_tokens, usage_delta.tokens) == (3, 1500, 2000)
    assert usage_delta.delta_tokens == 500 and usage_delta.priced_count == 3
    assert usage_delta.baseline_cost == pytest.approx(0.002) and usage_delta.cost == pytest.approx(0.03)
    assert usage_delta.delta_cost == pytest.approx(0.028)
    assert compared.usage_summary is not None and compared.usage_summary.total_tokens == 6000
    assert compared.latency_summary.count == 3


def test_usage_without_a_price_is_compared_in_tokens_only(make_dataset, settings):
    settings.PLAYGROUND_MODEL_PRICES = {}
    dataset = make_dataset(items=questions(2))
    baseline, run = make_run(dataset), make_run(dataset)
    for item in dataset.items.all():
        add_result(baseline, item, usage={"promptTokens": 1, "completionTokens": 1, "totalTokens": 2, "model": "m"})
        add_result(run, item, usage={"promptTokens": 2, "completionTokens": 2, "totalTokens": 4, "model": "m"})

    result = compare_with_baseline(baseline=baseline, runs=[run])

    assert result.runs[0].usage.delta_tokens == 2 and result.runs[0].usage.delta_cost is None
    assert "No price in PLAYGROUND_MODEL_PRICES for m: the cost of the items that used it is not compared." in (
        result.warnings
    )
    assert any("is still running" in warning for warning in result.warnings)


def test_usage_cost_prices_per_million_tokens():
    prices = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}
    usage = {"promptTokens": 1_000_000, "completionTokens": 500_000, "model": "gpt-4o-mini"}
    assert usage_cost(usage, prices) == pytest.approx(0.45)
    assert usage_cost({**usage, "model": "other"}, prices) is None
    assert usage_cost({"totalTokens": 10, "model": "gpt-4o-mini"}, prices) is None
    assert usage_cost(None, prices) is None


def test_a_scorer_that_regressed_always_has_an_item_that_regressed(make_dataset):
    rng = random.Random(11)
    dataset = make_dataset(items=questions(12))
    for _ in range(4):
        lists = [[rng.choice([0.0, 0.25, 0.5, 1.0, None]) for _ in range(12)] for _ in range(3)]
        baseline, *runs = scored_runs(dataset, *lists)
        min_delta = rng.choice([0.0, 0.1, 0.3])
        for compared in compare_with_baseline(baseline=baseline, runs=runs, min_delta=min_delta).runs:
            scorer = compared.scorers["exact-match"]
            if scorer.verdict is Verdict.REGRESSED:
                assert scorer.items_regressed >= 1 and compared.items_regressed >= 1
            if scorer.verdict is Verdict.IMPROVED:
                assert scorer.items_improved >= 1


def test_ten_thousand_items_stream_in_bounded_memory_and_constant_queries(make_dataset, django_assert_max_num_queries):
    dataset = make_dataset(items=[{"input": n} for n in range(10_000)])
    item_ids = list(dataset.items.values_list("pk", flat=True))
    runs = [make_run(dataset, scorer_ids=("exact-match", "contains")) for _ in range(2)]
    now = timezone.now()
    rng = random.Random(5)
    for run in runs:
        DatasetRunResult.objects.bulk_create(
            [
                DatasetRunResult(
                    run=run,
                    item_id=item_id,
                    item_version=1,
                    input=n,
                    output="x" * 200,
                    expected_output=None,
                    latency=rng.uniform(50, 500),
                    scores=[
                        {"scorerId": "exact-match", "score": rng.choice([0.0, 1.0])},
                        {"scorerId": "contains", "score": 1.0},
                    ],
                    usage={"promptTokens": 10, "completionTokens": 5, "totalTokens": 15, "model": "m"},
                    started_at=now,
                    completed_at=now,
                )
                for n, item_id in enumerate(item_ids)
            ],
            batch_size=2000,
        )

    tracemalloc.start()
    started = time.perf_counter()
    with django_assert_max_num_queries(3):
        result = compare_with_baseline(baseline=runs[0], runs=runs[1:], limit=50)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"compared 2 × 10,000 results in {elapsed:.2f} s (traced), peak {peak / 1e6:.1f} MB")

    assert result.item_total == result.shared_items == 10_000 and len(result.items) == 50
    assert all(r.scorers["contains"].verdict is Verdict.UNCHANGED for r in result.runs)
    assert all(r.scorers["exact-match"].shared_count == 10_000 for r in result.runs)
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert elapsed < 30


# ---- human review counts like a scorer ----------------------------------------------


def review(run, scores_by_position, author, **fields):
    """Annotate the run's results: {item position: score} under "human" by `author`."""
    dataset = run.dataset
    for result in DatasetRunResult.objects.filter(run=run).select_related("item"):
        if result.item.position in scores_by_position:
            annotations.annotation_save(
                result=result, dataset=dataset, author=author, score=scores_by_position[result.item.position], **fields
            )


def test_review_scores_are_compared_like_a_scorer(make_dataset, user, django_user_model):
    dataset = make_dataset(items=questions(6))
    baseline, reviewed_worse, scorer_only = scored_runs(dataset, [1.0] * 6, [1.0] * 6, [1.0] * 6)
    bob = django_user_model.objects.create_user(username="bob")
    review(baseline, {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}, user)
    review(reviewed_worse, {1: 0.2, 2: 0.2, 3: 0.2, 4: 0.2}, user)
    review(reviewed_worse, {1: 0.4}, bob)  # two reviewers of item 1: their mean, 0.3

    result = compare_with_baseline(baseline=baseline, runs=[reviewed_worse, scorer_only])

    worse, other = result.runs
    assert list(worse.scorers) == ["exact-match", "annotation:human"]
    human = worse.scorers["annotation:human"]
    assert human.shared_count == 4 and human.baseline_mean == pytest.approx(1.0)
    assert human.mean == pytest.approx((0.3 + 0.2 * 3) / 4) and human.delta == pytest.approx(-0.775)
    assert human.verdict is Verdict.REGRESSED and human.items_regressed == 4 and human.ci95 is not None
    assert human.stats.count == 4 and human.stats.mean == pytest.approx(0.225)
    assert human.baseline_stats.count == 5 and human.baseline_stats.mean == pytest.approx(1.0)
    assert worse.scorers["exact-match"].verdict is Verdict.UNCHANGED
    assert worse.has_regression and worse.items_regressed == 4
    # Item 5, reviewed in the baseline only, is no change the run made.
    assert worse.items_changed == 4
    # The run nobody reviewed: its scorer is judged as before, the review not at all.
    assert other.scorers["exact-match"].verdict is Verdict.UNCHANGED
    assert other.scorers["annotation:human"].shared_count == 0
    assert other.scorers["annotation:human"].verdict is Verdict.UNCHANGED
    assert not other.has_regression and other.items_changed == 0
    assert any("Review 'human' graded no item" in warning for warning in result.warnings)
    row = next(row for row in result.items if row.cells[worse.run.id].scores.get("annotation:human") is not None)
    assert {c.scorer_id for c in row.changes[worse.run.id]} == {"exact-match", "annotation:human"}


def test_runs_without_reviews_have_no_review_keys(make_dataset):
    dataset = make_dataset(items=questions(3))
    baseline, run = scored_runs(dataset, [1.0, 1.0, 0.0], [1.0, 0.0, 0.0])
    result = compare_with_baseline(baseline=baseline, runs=[run])
    assert list(result.runs[0].scorers) == ["exact-match"] and "annotation:human" not in result.baseline_stats
