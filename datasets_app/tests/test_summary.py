"""Run statistics (`runs/summary.py`): scorer, latency and usage figures, all from the run row."""

import pytest

from datasets_app.runs import summary
from datasets_app.tests.factories import add_result, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def four(make_dataset):
    return make_dataset(items=[{"input": n} for n in range(4)])


def scored_run(dataset, scores, latencies=None):
    run = make_run(dataset, scorer_ids=("exact-match", "contains"))
    latencies = latencies or [100.0] * len(scores)
    for item, score, latency in zip(dataset.items.order_by("created_at"), scores, latencies, strict=True):
        add_result(run, item, scores={"exact-match": score}, latency=latency)
    run.refresh_from_db()
    return run


def test_scorer_figures_are_read_from_the_run_row(four, django_assert_num_queries):
    run = scored_run(four, [0.0, 0.4, None, 1.0])

    with django_assert_num_queries(0):
        exact, contains = summary.scorer_stats(run)

    assert (exact.scorer_id, exact.count, exact.errors, exact.passed) == ("exact-match", 3, 1, 1)
    assert exact.mean == pytest.approx(1.4 / 3)
    assert exact.pass_rate == pytest.approx(1 / 3)
    assert [b.count for b in exact.buckets()] == [1, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert (exact.buckets()[4].low, exact.buckets()[4].high) == pytest.approx((0.4, 0.5))
    # A scorer of the run that left no score yet is listed, empty.
    assert (contains.scorer_id, contains.count, contains.mean, contains.pass_rate) == ("contains", 0, None, None)


def test_a_threshold_between_buckets_is_counted_from_the_scores(four):
    run = scored_run(four, [0.0, 0.72, 0.75, 1.0])

    at_edge = summary.scorer_stats(run, pass_threshold=0.7)[0]
    between = summary.scorer_stats(run, pass_threshold=0.75)[0]

    assert (at_edge.passed, between.passed) == (3, 2)
    assert between.pass_rate == pytest.approx(0.5)


def test_latency_percentiles_mean_and_histogram(four):
    run = scored_run(four, [1.0] * 4, latencies=[10.0, 20.0, 30.0, 40.0])

    latency = summary.latency_summary(run)

    assert (latency.count, latency.mean) == (4, 25.0)
    # Percentiles read from logarithmic buckets: within 1.1 % of the nearest-rank value.
    assert latency.p50 == pytest.approx(20.0, rel=0.011)
    assert latency.p95 == 40.0  # clamped to the largest latency
    assert sum(b.count for b in latency.histogram) == 4
    assert (latency.histogram[0].low, latency.histogram[-1].high) == (10.0, 40.0)


def test_latencies_that_are_all_equal_make_one_bar_and_no_results_none(four, make_dataset):
    same = scored_run(four, [1.0] * 4, latencies=[7.0] * 4)
    empty = make_run(four)

    assert summary.latency_summary(same).histogram == [summary.Bucket(7.0, 7.0, 4)]
    assert summary.latency_summary(empty) == summary.LatencySummary(0, None, None, None, [])


def test_latency_is_current_at_every_read_without_a_query(four, django_assert_num_queries):
    run = make_run(four)
    first, second, *_ = four.items.all()
    add_result(run, first, latency=10.0)
    assert summary.latency_summary(run).count == 1
    add_result(run, second, latency=20.0)  # refreshes `run`, as every poll reads the row

    with django_assert_num_queries(0):
        latency = summary.latency_summary(run)
    assert (latency.count, latency.mean) == (2, 15.0)


def test_percentiles_stay_within_a_bucket_of_the_exact_value_on_a_wide_spread():
    import random

    rng = random.Random(7)
    values = [rng.lognormvariate(5, 1.5) for _ in range(20_000)] + [0.0] * 10
    stats = summary.add_latencies({}, values)

    class Row:
        latency_stats = stats

    latency = summary.latency_summary(Row())  # type: ignore[arg-type]
    ordered = sorted(values)
    for fraction, figure in ((0.5, latency.p50), (0.95, latency.p95)):
        exact = ordered[max(1, -(-int(fraction * 1e6) * len(values) // 1_000_000)) - 1]
        assert figure == pytest.approx(exact, rel=0.011)
    assert sum(b.count for b in latency.histogram) == len(values)


def test_usage_totals_per_model_and_their_cost(four, settings):
    settings.PLAYGROUND_MODEL_PRICES = {"gpt-test": {"input": 1.0, "output": 2.0}}
    run = make_run(four)
    first, second, third, _ = four.items.all()
    add_result(
        run, first, usage={"promptTokens": 1_000, "completionTokens": 500, "totalTokens": 1_500, "model": "gpt-test"}
    )
    add_result(
        run, second, usage={"promptTokens": 3_000, "completionTokens": 0, "totalTokens": 3_000, "model": "gpt-test"}
    )
    add_result(run, third)  # no usage reported

    usage = summary.usage_summary(run)

    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (4_000, 500, 4_500)
    assert usage.cost == pytest.approx((4_000 * 1.0 + 500 * 2.0) / 1_000_000)
    settings.PLAYGROUND_MODEL_PRICES = {}
    assert summary.usage_summary(run).cost is None  # type: ignore[union-attr]
    assert summary.usage_summary(make_run(four)) is None


def test_add_scores_keeps_the_given_statistics_unchanged():
    before = summary.add_scores({}, [[{"scorerId": "s", "score": 0.5}]])

    after = summary.add_scores(before, [[{"scorerId": "s", "score": 1.0}, {"scorerId": "t", "score": None}]])

    assert before["s"] == {"count": 1, "sum": 0.5, "errors": 0, "histogram": [0] * 5 + [1] + [0] * 4}
    assert after["s"]["count"] == 2 and after["s"]["sum"] == 1.5 and after["s"]["histogram"][9] == 1
    assert after["t"] == {"count": 0, "sum": 0.0, "errors": 1, "histogram": [0] * 10}
