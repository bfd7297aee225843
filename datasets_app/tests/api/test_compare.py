"""POST /api/datasets/{id}/compare: a baseline and up to five runs, over shared items,
with noise called unchanged (docs/api.md, "Comparing runs")."""

import pytest

from datasets_app import services
from datasets_app.tests.factories import add_result, make_run

pytestmark = pytest.mark.django_db


def compare(api, dataset, baseline, *runs, query="", **body):
    return api.post(
        f"/api/datasets/{dataset.id}/compare{query}",
        {"baselineRunId": str(baseline.id), "runIds": [str(r.id) for r in runs], **body},
        format="json",
    )


@pytest.fixture
def twenty(make_dataset):
    return make_dataset("Twenty", items=[{"input": n, "expectedOutput": n} for n in range(20)])


def scored(dataset, scores, scorers=("exact-match",), **run_fields):
    run = make_run(dataset, scorer_ids=scorers, **run_fields)
    for item, score in zip(dataset.items.order_by("position"), scores, strict=False):
        add_result(run, item, scores=dict.fromkeys(scorers, score))
    return run


def test_a_real_drop_is_a_regression_with_its_interval(api, twenty):
    baseline = scored(twenty, [1.0] * 20, name="baseline")
    worse = scored(twenty, [1.0] * 10 + [0.0] * 10, name="worse", tags=["candidate"])

    data = compare(api, twenty, baseline, worse).json()

    assert data["baseline"] == {"id": str(baseline.id), "name": "baseline", "datasetVersion": 1}
    assert data["hasRegression"] is True and data["sharedItems"] == 20
    (run,) = data["runs"]
    assert (run["name"], run["sharedItems"], run["hasRegression"]) == ("worse", 20, True)
    exact = run["scorers"]["exact-match"]
    assert exact["verdict"] == "regressed"
    assert exact["delta"] == pytest.approx(-0.5)
    assert exact["ci95"][1] < 0  # the whole interval below zero
    assert exact["stats"] == {"mean": 0.5, "count": 20, "passRate": 0.5, "errors": 0}
    first = data["items"][0]
    assert first["scores"] == {str(baseline.id): {"exact-match": 1.0}, str(worse.id): {"exact-match": 1.0}}
    assert data["pagination"]["total"] == 20


def test_noise_on_three_items_is_unchanged_not_regressed(api, capitals):
    baseline = scored(capitals, [1.0, 1.0, 1.0])
    noisy = scored(capitals, [1.0, 0.0, 0.0])

    exact = compare(api, capitals, baseline, noisy).json()["runs"][0]["scorers"]["exact-match"]

    assert exact["delta"] == pytest.approx(-2 / 3)
    assert exact["ci95"][0] < 0 < exact["ci95"][1]
    assert exact["verdict"] == "unchanged"


def test_only_the_dataset_changed_is_no_regression(api, twenty):
    """The same agent on version 1 and on a later version with items added that
    score low: means over items not in both runs once said REGRESSION."""
    v1 = scored(twenty, [1.0] * 20)
    services.items_bulk_create(dataset=twenty, items=[{"input": f"new {n}"} for n in range(10)])
    later = make_run(twenty, scorer_ids=("exact-match",))
    for item in twenty.items.order_by("position"):
        add_result(later, item, scores={"exact-match": 1.0 if item.position <= 20 else 0.0})

    data = compare(api, twenty, v1, later).json()

    run = data["runs"][0]
    assert (run["versionMismatch"], run["sharedItems"], run["onlyInRun"]) == (True, 20, 10)
    assert run["scorers"]["exact-match"]["delta"] == 0
    assert run["scorers"]["exact-match"]["verdict"] == "unchanged"
    assert data["hasRegression"] is False
    assert data["warnings"]


def test_min_delta_calls_a_small_steady_drop_unchanged(api, twenty):
    baseline = scored(twenty, [1.0] * 20)
    slightly = scored(twenty, [0.95] * 20)

    strict = compare(api, twenty, baseline, slightly).json()["runs"][0]["scorers"]["exact-match"]
    lenient = compare(api, twenty, baseline, slightly, minDelta=0.1).json()["runs"][0]["scorers"]["exact-match"]

    assert strict["verdict"] == "regressed"
    assert lenient["verdict"] == "unchanged" and lenient["threshold"]["value"] == 0.1


def test_five_runs_one_column_each_and_item_filter(api, twenty):
    baseline = scored(twenty, [1.0] * 20)
    others = [scored(twenty, [1.0] * 20) for _ in range(4)] + [scored(twenty, [0.0] + [1.0] * 19)]

    everything = compare(api, twenty, baseline, *others).json()
    regressed = compare(api, twenty, baseline, *others, itemFilter="regressed").json()

    assert [r["id"] for r in everything["runs"]] == [str(r.id) for r in others]
    assert len(everything["items"][0]["scores"]) == 6
    assert regressed["pagination"]["total"] == 1 and len(regressed["items"]) == 1


@pytest.mark.parametrize("count", [0, 6])
def test_one_to_five_runs_besides_the_baseline(api, twenty, count):
    baseline = scored(twenty, [1.0] * 20)
    runs = [scored(twenty, [1.0] * 20) for _ in range(count)]
    response = compare(api, twenty, baseline, *runs)
    assert response.status_code == 400 and "runIds" in response.json()["errors"]


def test_a_run_twice_or_the_baseline_again_is_refused(api, twenty):
    baseline, other = scored(twenty, [1.0]), scored(twenty, [1.0])
    assert compare(api, twenty, baseline, other, other).status_code == 400
    assert compare(api, twenty, baseline, baseline).status_code == 400


def test_a_run_of_another_dataset_is_not_found(api, twenty, capitals):
    response = compare(api, twenty, scored(twenty, [1.0]), scored(capitals, [1.0]))
    assert response.status_code == 404
