import pytest

from datasets_app.tests.factories import add_result, make_run

pytestmark = pytest.mark.django_db


def compare(api, dataset, run_a, run_b, query="", **body):
    return api.post(
        f"/api/datasets/{dataset.id}/compare{query}",
        {"runIdA": str(run_a.id), "runIdB": str(run_b.id), **body},
        format="json",
    )


@pytest.fixture
def two_runs(capitals):
    """Run B scores worse than run A on exact-match and equal on levenshtein."""
    items = list(capitals.items.order_by("created_at"))
    run_a = make_run(capitals, scorer_ids=("exact-match", "levenshtein"))
    run_b = make_run(capitals, scorer_ids=("exact-match", "levenshtein"))
    for item in items:
        add_result(run_a, item, scores={"exact-match": 1.0, "levenshtein": 0.1})
    for item, score in zip(items, [1.0, 0.0, 0.0], strict=True):
        add_result(run_b, item, scores={"exact-match": score, "levenshtein": 0.1})
    return run_a, run_b, items


def test_compare_detects_a_regression(api, capitals, two_runs):
    run_a, run_b, items = two_runs

    data = compare(api, capitals, run_a, run_b).json()

    assert data["hasRegression"] is True
    assert data["runA"] == {"id": str(run_a.id), "datasetVersion": 1}
    assert data["versionMismatch"] is False and data["warnings"] == []
    exact = data["scorers"]["exact-match"]
    assert exact["statsA"] == {"mean": 1.0, "count": 3, "passRate": 1.0, "errors": 0}
    assert exact["statsB"]["mean"] == pytest.approx(1 / 3)
    assert exact["statsB"]["passRate"] == pytest.approx(1 / 3)
    assert exact["delta"] == pytest.approx(-2 / 3)
    assert exact["regressed"] is True
    assert exact["threshold"] == {"value": 0.0, "direction": "higher-is-better"}
    assert data["scorers"]["levenshtein"]["regressed"] is False
    assert data["scorers"]["levenshtein"]["delta"] == pytest.approx(0)
    by_item = {i["itemId"]: i for i in data["items"]}
    assert set(by_item) == {str(i.id) for i in items}
    assert all(i["inBothRuns"] for i in data["items"])
    assert by_item[str(items[1].id)]["scoresA"] == {"exact-match": 1.0, "levenshtein": 0.1}
    assert by_item[str(items[1].id)]["scoresB"] == {"exact-match": 0.0, "levenshtein": 0.1}


def test_the_same_run_against_itself_has_no_regression(api, capitals, two_runs):
    run_a, _, _ = two_runs

    data = compare(api, capitals, run_a, run_a).json()

    assert data["hasRegression"] is False
    assert all(s["delta"] == 0 for s in data["scorers"].values())


def test_improvement_is_not_a_regression(api, capitals, two_runs):
    run_a, run_b, _ = two_runs

    assert compare(api, capitals, run_b, run_a).json()["hasRegression"] is False


def test_threshold_tolerates_a_small_drop(api, capitals, two_runs):
    run_a, run_b, _ = two_runs

    data = compare(api, capitals, run_a, run_b, thresholds={"exact-match": {"value": 0.7}}).json()

    assert data["scorers"]["exact-match"]["regressed"] is False
    assert data["hasRegression"] is False


def test_lower_is_better_flags_a_rise(api, capitals, two_runs):
    run_a, run_b, _ = two_runs
    thresholds = {"exact-match": {"value": 0, "direction": "lower-is-better"}}

    worse = compare(api, capitals, run_b, run_a, thresholds=thresholds).json()
    better = compare(api, capitals, run_a, run_b, thresholds=thresholds).json()

    assert worse["scorers"]["exact-match"]["regressed"] is True
    assert better["scorers"]["exact-match"]["regressed"] is False


def test_different_dataset_versions_warn(api, capitals):
    item = capitals.items.first()
    run_a = make_run(capitals)
    add_result(run_a, item)
    api.post(f"/api/datasets/{capitals.id}/items", {"input": "new"}, format="json")
    capitals.refresh_from_db()
    run_b = make_run(capitals)
    add_result(run_b, item)

    data = compare(api, capitals, run_a, run_b).json()

    assert data["versionMismatch"] is True
    assert data["runB"]["datasetVersion"] == 2
    assert any("version" in w for w in data["warnings"])


def test_repetitions_are_averaged_per_item_and_missing_items_are_flagged(api, capitals):
    first, second, _ = capitals.items.order_by("created_at")
    run_a = make_run(capitals, repetitions=2)
    add_result(run_a, first, score=1.0, repetition=0)
    add_result(run_a, first, score=0.0, repetition=1)
    add_result(run_a, second, score=None)
    run_b = make_run(capitals)
    add_result(run_b, first, score=1.0)

    data = compare(api, capitals, run_a, run_b).json()

    by_item = {i["itemId"]: i for i in data["items"]}
    assert by_item[str(first.id)] == {
        "itemId": str(first.id),
        "inBothRuns": True,
        "scoresA": {"exact-match": 0.5},
        "scoresB": {"exact-match": 1.0},
    }
    assert by_item[str(second.id)]["inBothRuns"] is False
    assert by_item[str(second.id)]["scoresA"] == {"exact-match": None}
    assert by_item[str(second.id)]["scoresB"] == {}
    assert data["scorers"]["exact-match"]["statsA"] == {"mean": 0.5, "count": 2, "passRate": 0.5, "errors": 1}


def test_compare_items_are_paged(api, make_dataset):
    dataset = make_dataset(items=[{"input": n} for n in range(5)])
    run_a, run_b = make_run(dataset), make_run(dataset)
    for item in dataset.items.all():
        add_result(run_a, item)
        add_result(run_b, item)

    pages = [compare(api, dataset, run_a, run_b, query=f"?perPage=2&page={p}").json() for p in range(3)]

    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert pages[0]["pagination"] == {"total": 5, "page": 0, "perPage": 2, "hasMore": True}
    assert len({i["itemId"] for p in pages for i in p["items"]}) == 5
    assert all(p["scorers"]["exact-match"]["statsA"]["count"] == 5 for p in pages)


def test_runs_of_another_dataset_are_404(api, capitals, make_dataset):
    other = make_dataset(name="Other", items=[{"input": 1}])
    mine, foreign = make_run(capitals), make_run(other)

    assert compare(api, capitals, mine, foreign).status_code == 404
    assert compare(api, capitals, foreign, mine).status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"runIdA": None}, "runIdA"),
        ({"runIdB": [1]}, "runIdB"),
        ({"runIdA": "not-a-uuid"}, "runIdA"),
        ({"thresholds": {"exact-match": {"value": -1}}}, "thresholds/exact-match/value"),
        ({"thresholds": {"exact-match": {"value": 0.1, "direction": "sideways"}}}, "thresholds/exact-match/direction"),
    ],
)
def test_bad_compare_body_is_400(api, capitals, two_runs, body, field):
    run_a, run_b, _ = two_runs
    payload = {"runIdA": str(run_a.id), "runIdB": str(run_b.id), **body}

    response = api.post(f"/api/datasets/{capitals.id}/compare", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
