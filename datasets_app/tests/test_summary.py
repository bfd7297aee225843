"""Run statistics (`runs/summary.py`): scorer figures from the run row, latency from the results."""

import pytest

from datasets_app.runs import summary
from datasets_app.tests.factories import add_result, end_run, make_run

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

    assert (latency.count, latency.mean, latency.p50, latency.p95) == (4, 25.0, 20.0, 40.0)
    assert sum(b.count for b in latency.histogram) == 4
    assert (latency.histogram[0].low, latency.histogram[-1].high) == (10.0, 40.0)


def test_latencies_that_are_all_equal_make_one_bar_and_no_results_none(four, make_dataset):
    same = scored_run(four, [1.0] * 4, latencies=[7.0] * 4)
    empty = make_run(four)

    assert summary.latency_summary(same).histogram == [summary.Bucket(7.0, 7.0, 4)]
    assert summary.latency_summary(empty) == summary.LatencySummary(0, None, None, None, [])


def test_latency_of_an_active_run_is_cached_briefly_and_of_a_finished_run_until_it_changes(
    four, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(summary.time, "time", lambda: 1000.0)
    run = make_run(four)
    first, second, *_ = four.items.all()
    add_result(run, first, latency=10.0)
    assert summary.latency_summary(run).count == 1
    add_result(run, second, latency=20.0)

    with django_assert_num_queries(0):
        assert summary.latency_summary(run).count == 1  # the same poll window
    monkeypatch.setattr(summary.time, "time", lambda: 1000.0 + summary.ACTIVE_CACHE_SECONDS)
    assert summary.latency_summary(run).count == 2

    end_run(run)
    assert summary.latency_summary(run).count == 2
    with django_assert_num_queries(0):
        summary.latency_summary(run)


def test_add_scores_keeps_the_given_statistics_unchanged():
    before = summary.add_scores({}, [[{"scorerId": "s", "score": 0.5}]])

    after = summary.add_scores(before, [[{"scorerId": "s", "score": 1.0}, {"scorerId": "t", "score": None}]])

    assert before["s"] == {"count": 1, "sum": 0.5, "errors": 0, "histogram": [0] * 5 + [1] + [0] * 4}
    assert after["s"]["count"] == 2 and after["s"]["sum"] == 1.5 and after["s"]["histogram"][9] == 1
    assert after["t"] == {"count": 0, "sum": 0.0, "errors": 1, "histogram": [0] * 10}
