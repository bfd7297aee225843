"""Comparing two runs (`comparison.py`): one verdict for scorers and items, figures from the run rows."""

import pytest

from datasets_app.comparison import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    Threshold,
    Verdict,
    compare_runs,
    first_outputs,
    verdict,
)
from datasets_app.tests.factories import add_result, make_run

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


@pytest.fixture
def runs(capitals):
    """B does worse than A on exact-match for the second item; only A was scored by contains."""
    first, second, third = capitals.items.order_by("created_at")
    run_a = make_run(capitals, scorer_ids=("exact-match", "contains"))
    run_b = make_run(capitals, scorer_ids=("exact-match",), repetitions=2)
    for item in (first, second, third):
        add_result(run_a, item, output=f"A{item.input}", scores={"exact-match": 1.0, "contains": 1.0})
    add_result(run_b, first, output="B first, 1st", score=1.0)
    add_result(run_b, first, output="B first, 2nd", score=1.0, repetition=1)
    add_result(run_b, second, score=0.0, repetition=0)
    add_result(run_b, second, score=1.0, repetition=1)
    return run_a, run_b, (first, second, third)


def test_scorer_figures_are_the_runs_own_statistics(runs, django_assert_max_num_queries):
    run_a, run_b, _ = runs

    with django_assert_max_num_queries(3):  # items page only: the scorer figures cost no query
        comparison = compare_runs(run_a=run_a, run_b=run_b, limit=0)

    exact = comparison.scorers["exact-match"]
    assert (exact.stats_a.count, exact.stats_b.count) == (3, 4)
    assert exact.delta == pytest.approx(-0.25)
    assert exact.verdict is Verdict.REGRESSED and exact.regressed
    assert comparison.has_regression
    assert comparison.scorers["contains"].delta is None
    assert comparison.warnings == ["Scorer contains has no scores in run B; it is not compared."]
    assert not comparison.version_mismatch


def test_a_threshold_per_scorer_tolerates_a_drop(runs):
    run_a, run_b, _ = runs

    comparison = compare_runs(run_a=run_a, run_b=run_b, thresholds={"exact-match": Threshold(0.3, HIGHER_IS_BETTER)})

    assert comparison.scorers["exact-match"].verdict is Verdict.UNCHANGED
    assert not comparison.has_regression


def test_items_are_compared_by_their_mean_over_repetitions(runs):
    run_a, run_b, (first, second, third) = runs

    comparison = compare_runs(run_a=run_a, run_b=run_b)

    by_id = {item.item_id: item for item in comparison.items}
    assert comparison.item_total == 3
    assert by_id[second.pk].scores_b == {"exact-match": 0.5}
    assert [(c.scorer_id, c.a, c.b, c.verdict) for c in by_id[second.pk].changes()] == [
        ("contains", 1.0, None, Verdict.UNCHANGED),
        ("exact-match", 1.0, 0.5, Verdict.REGRESSED),
    ]
    assert by_id[second.pk].regressed and not by_id[second.pk].improved
    assert not by_id[first.pk].regressed
    assert not by_id[third.pk].in_both_runs and by_id[third.pk].scores_b == {}


def test_items_are_paged_by_item_id(runs):
    run_a, run_b, items = runs

    pages = [compare_runs(run_a=run_a, run_b=run_b, offset=offset, limit=2).items for offset in (0, 2, 4)]

    assert [len(page) for page in pages] == [2, 1, 0]
    assert [item.item_id for page in pages for item in page] == sorted(item.pk for item in items)


def test_first_outputs_are_the_first_repetitions(runs):
    _, run_b, (first, _, third) = runs

    outputs = first_outputs(run_b, [first.pk, third.pk])

    assert list(outputs) == [first.pk]
    assert outputs[first.pk].output == "B first, 1st" and outputs[first.pk].error is None
