import re
from datetime import timedelta

import pytest
from django.utils import timezone

from datasets_app.models import DatasetRun
from datasets_app.tests.factories import add_result, end_run, make_run

TRACE = "c" * 32

RESULT_FIELDS = {
    "id",
    "runId",
    "itemId",
    "itemVersion",
    "input",
    "output",
    "expectedOutput",
    "latency",
    "error",
    "startedAt",
    "completedAt",
    "retryCount",
    "traceId",
    "scores",
    "createdAt",
}
RUN_FIELDS = {
    "id",
    "datasetId",
    "datasetVersion",
    "targetType",
    "targetId",
    "scorerIds",
    "status",
    "totalItems",
    "succeededCount",
    "failedCount",
    "maxConcurrency",
    "startedAt",
    "completedAt",
    "createdAt",
    "updatedAt",
}


def runs_url(dataset):
    return f"/api/datasets/{dataset.id}/runs"


@pytest.mark.django_db
def test_start_run_answers_the_start_shape(api, capitals):
    response = api.post(
        runs_url(capitals),
        {"targetType": "workflow", "targetId": "echo", "scorerIds": ["exact-match"]},
        format="json",
    )

    assert response.status_code == 201
    data = response.json()
    run_id = data.pop("runId")
    assert data == {
        "status": "pending",
        "totalItems": 3,
        "succeededCount": 0,
        "failedCount": 0,
        "startedAt": None,
        "completedAt": None,
        "results": [],
    }
    run = DatasetRun.objects.get(pk=run_id)
    assert run.dataset_id == capitals.id and run.scorer_ids == ["exact-match"]


@pytest.mark.django_db
def test_start_run_passes_the_options_through(api, user, capitals):
    response = api.post(
        runs_url(capitals),
        {
            "targetType": "workflow",
            "targetId": "echo",
            "version": 1,
            "maxConcurrency": 2,
            "itemTimeout": 1.5,
            "maxRetries": 3,
            "repetitions": 2,
        },
        format="json",
    )

    run = DatasetRun.objects.get(pk=response.json()["runId"])
    assert (run.max_concurrency, run.item_timeout, run.max_retries, run.repetitions) == (2, 1.5, 3, 2)
    assert run.total_items == 6
    assert run.created_by == user


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"targetType": "workflow", "targetId": "no-such-target"}, "targetId"),
        ({"targetType": "workflow", "targetId": "echo", "scorerIds": ["no-such-scorer"]}, "scorerIds"),
        ({"targetType": "spaceship", "targetId": "echo"}, "targetType"),
        ({"targetId": "echo"}, "targetType"),
        ({"targetType": "workflow", "targetId": "echo", "maxConcurrency": 0}, "maxConcurrency"),
        ({"targetType": "workflow", "targetId": "echo", "maxConcurrency": "many"}, "maxConcurrency"),
        ({"targetType": "workflow", "targetId": "echo", "itemTimeout": -1}, "itemTimeout"),
        ({"targetType": "workflow", "targetId": "echo", "version": 99}, "version"),
        ({"targetType": "workflow", "targetId": "echo", "repetitions": 0}, "repetitions"),
    ],
)
def test_start_run_rejects_bad_input_naming_the_field(api, capitals, body, field):
    response = api.post(runs_url(capitals), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not DatasetRun.objects.exists()


@pytest.mark.django_db
def test_start_run_on_a_dataset_without_items_is_400(api, make_dataset):
    response = api.post(runs_url(make_dataset()), {"targetType": "workflow", "targetId": "echo"}, format="json")

    assert response.status_code == 400
    assert response.json()["message"]
    assert not DatasetRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_executed_run_has_results_with_trace_ids(api, capitals, run_worker):
    run_id = api.post(
        runs_url(capitals), {"targetType": "workflow", "targetId": "echo", "scorerIds": ["exact-match"]}, format="json"
    ).json()["runId"]
    run_worker()

    run = api.get(f"{runs_url(capitals)}/{run_id}").json()
    results = api.get(f"{runs_url(capitals)}/{run_id}/results").json()

    assert run["status"] == "completed"
    assert run["succeededCount"] == 3 and run["failedCount"] == 0 and run["totalItems"] == 3
    assert run["startedAt"] and run["completedAt"]
    assert results["pagination"]["total"] == 3
    for result in results["results"]:
        assert set(result) >= RESULT_FIELDS
        assert re.fullmatch(r"[0-9a-f]{32}", result["traceId"])
        assert result["output"] == result["input"]
        assert result["error"] is None
        assert [s["scorerId"] for s in result["scores"]] == ["exact-match"]
        trace = api.get(f"/api/traces/{result['traceId']}")
        assert trace.status_code == 200 and trace.json()["traceId"] == result["traceId"]
        assert trace.json()["spans"]


@pytest.mark.django_db
def test_rerun_failed_runs_only_the_failed_items(api, capitals):
    run = make_run(capitals)
    first, second, third = capitals.items.order_by("created_at")
    add_result(run, first, error="it broke")
    add_result(run, second)
    add_result(run, third)
    end_run(run)

    response = api.post(f"{runs_url(capitals)}/{run.id}/rerun-failed")

    assert response.status_code == 201
    assert response.json()["totalItems"] == 1 and response.json()["status"] == "pending"
    rerun = DatasetRun.objects.get(pk=response.json()["runId"])
    assert list(rerun.work_items().values_list("item_id", flat=True)) == [first.id]
    assert api.get(f"{runs_url(capitals)}/{rerun.id}").json()["rerunOf"] == str(run.id)


@pytest.mark.django_db
def test_cancel_a_pending_run(api, capitals):
    run = make_run(capitals, status=DatasetRun.Status.PENDING)

    response = api.post(f"{runs_url(capitals)}/{run.id}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["completedAt"]


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_cancel_a_terminal_run_is_409(api, capitals, status):
    run = make_run(capitals, status=status)

    response = api.post(f"{runs_url(capitals)}/{run.id}/cancel")

    assert response.status_code == 409
    assert response.json()["message"] == f"The run is already {status}"
    run.refresh_from_db()
    assert run.status == status


@pytest.mark.django_db
def test_rerun_of_an_active_run_is_409(api, capitals):
    run = make_run(capitals, status=DatasetRun.Status.RUNNING)

    assert api.post(f"{runs_url(capitals)}/{run.id}/rerun-failed").status_code == 409


@pytest.mark.django_db
def test_rerun_without_failures_is_400(api, capitals):
    run = make_run(capitals)
    add_result(run, capitals.items.first())
    end_run(run)

    assert api.post(f"{runs_url(capitals)}/{run.id}/rerun-failed").status_code == 400


@pytest.mark.django_db
def test_run_detail_shape(api, capitals):
    run = make_run(capitals)
    end_run(run, DatasetRun.Status.FAILED, error="worker exploded")

    data = api.get(f"{runs_url(capitals)}/{run.id}").json()

    assert set(data) >= RUN_FIELDS
    assert data["status"] == "failed"
    assert data["error"] == "worker exploded"
    assert data["scorerIds"] == ["exact-match"]
    assert data["datasetId"] == str(capitals.id)


@pytest.mark.django_db
def test_runs_list_newest_first_and_filtered_by_status(api, capitals):
    old = make_run(capitals, status=DatasetRun.Status.COMPLETED)
    middle = make_run(capitals, status=DatasetRun.Status.FAILED)
    new = make_run(capitals, status=DatasetRun.Status.COMPLETED)
    for age, run in enumerate([new, middle, old]):
        DatasetRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=age))

    listed = api.get(runs_url(capitals)).json()
    completed = api.get(runs_url(capitals), {"status": "completed"}).json()

    assert [r["id"] for r in listed["runs"]] == [str(new.id), str(middle.id), str(old.id)]
    assert listed["pagination"] == {"total": 3, "page": 0, "perPage": 10, "hasMore": False}
    assert [r["id"] for r in completed["runs"]] == [str(new.id), str(old.id)]
    assert completed["pagination"]["total"] == 2


@pytest.mark.django_db
def test_runs_list_unknown_status_is_400(api, capitals):
    response = api.get(runs_url(capitals), {"status": "exploded"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["status"]


@pytest.mark.django_db
def test_run_of_another_dataset_is_404(api, capitals, make_dataset):
    other = make_dataset(name="Other", items=[{"input": "x"}])
    foreign = make_run(other)
    add_result(foreign, other.items.get())

    for method, suffix in [("get", ""), ("post", "/cancel"), ("get", "/results"), ("post", "/rerun-failed")]:
        response = getattr(api, method)(f"{runs_url(capitals)}/{foreign.id}{suffix}")
        assert response.status_code == 404, suffix
        assert response.json() == {"message": "Not found."}
    foreign.refresh_from_db()
    assert foreign.status == "running"


@pytest.mark.django_db
def test_results_are_ordered_paginated_and_always_carry_trace_id(api, capitals):
    run = make_run(capitals)
    items = list(capitals.items.order_by("created_at"))
    base = timezone.now()
    traced = add_result(run, items[0], started_at=base + timedelta(seconds=2), latency=12.5, trace_id=TRACE)
    untraced = add_result(run, items[1], started_at=base, error="timeout", score=None)
    third = add_result(run, items[2], started_at=base + timedelta(seconds=1))

    first_page = api.get(f"{runs_url(capitals)}/{run.id}/results", {"perPage": 2}).json()
    second_page = api.get(f"{runs_url(capitals)}/{run.id}/results", {"perPage": 2, "page": 1}).json()

    rows = first_page["results"] + second_page["results"]
    assert [r["id"] for r in rows] == [str(untraced.id), str(third.id), str(traced.id)]
    assert first_page["pagination"] == {"total": 3, "page": 0, "perPage": 2, "hasMore": True}
    assert second_page["pagination"]["hasMore"] is False
    assert all("traceId" in r for r in rows)
    assert rows[0]["traceId"] is None and rows[0]["error"] == "timeout" and rows[0]["output"] is None
    assert rows[2]["traceId"] == traced.trace_id
    assert rows[2]["scores"] == [
        {"scorerId": "exact-match", "scorerName": "exact-match", "score": 1.0, "reason": "compared", "error": None}
    ]
    assert rows[0]["scores"][0]["score"] is None and rows[0]["scores"][0]["error"] == "the scorer failed"
    assert set(rows[2]) >= RESULT_FIELDS
    assert rows[2]["latency"] == 12.5 and rows[2]["retryCount"] == 0
    assert rows[2]["runId"] == str(run.id) and rows[2]["itemId"] == str(items[0].id) and rows[2]["itemVersion"] == 1


@pytest.mark.django_db
def test_result_user_json_is_verbatim(api, make_dataset):
    dataset = make_dataset(
        items=[{"input": {"z": 1, "user_name": "u", "someKey": 2}, "expectedOutput": {"b": 1, "a": 2}}]
    )
    run = make_run(dataset)
    add_result(run, dataset.items.get(), output={"y_out": [1, {"B": 2, "A": 1}]})

    text = api.get(f"{runs_url(dataset)}/{run.id}/results").content.decode()

    assert '"input":{"z":1,"user_name":"u","someKey":2}' in text
    assert '"output":{"y_out":[1,{"B":2,"A":1}]}' in text
    assert '"expectedOutput":{"b":1,"a":2}' in text


@pytest.mark.django_db
def test_trace_detail(api, capitals):
    result = add_result(make_run(capitals), capitals.items.first(), trace_id=TRACE)

    data = api.get(f"/api/traces/{TRACE}").json()

    assert data["traceId"] == result.trace_id == TRACE
    assert set(data["spans"][0]) == {
        "spanId",
        "parentSpanId",
        "name",
        "startTime",
        "endTime",
        "status",
        "statusMessage",
        "attributes",
    }
    assert api.get(f"/api/traces/{'0' * 32}").status_code == 404


def test_a_run_is_named_tagged_and_renamed_and_its_summary_is_on_the_run(api, capitals):
    from datasets_app.tests.factories import add_result, end_run

    url = f"/api/datasets/{capitals.id}/runs"
    started = api.post(
        url,
        {
            "targetType": "workflow",
            "targetId": "echo",
            "scorerIds": ["exact-match"],
            "name": "baseline",
            "description": "before",
            "metadata": {"commit": "abc"},
            "tags": ["prod", "nightly"],
        },
        format="json",
    ).json()
    run_url = f"{url}/{started['runId']}"
    run = api.get(run_url).json()
    assert (run["name"], run["description"], run["metadata"], run["tags"]) == (
        "baseline",
        "before",
        {"commit": "abc"},
        ["prod", "nightly"],
    )
    assert run["summary"] == {
        "scorers": {"exact-match": {"mean": None, "count": 0, "passRate": None}},
        "latency": {"p50": None, "p95": None, "mean": None},
        "usage": None,
        "cost": None,
        "annotations": {},
    }

    from datasets_app.models import DatasetRun

    model = DatasetRun.objects.get(pk=started["runId"])
    from datasets_app.runs import lifecycle

    while lifecycle.claim_chunk(worker_id="test-factory", run_id=model.pk):
        pass
    for item, latency in zip(capitals.items.order_by("position"), [10.0, 20.0, 30.0], strict=True):
        add_result(
            model, item, score=1.0, latency=latency, usage={"promptTokens": 5, "completionTokens": 1, "totalTokens": 6}
        )
    end_run(model)
    summary = api.get(run_url).json()["summary"]
    assert summary["scorers"]["exact-match"] == {"mean": 1.0, "count": 3, "passRate": 1.0}
    assert summary["latency"]["mean"] == 20.0 and summary["latency"]["p95"] == 30.0
    assert summary["usage"] == {"promptTokens": 15, "completionTokens": 3, "totalTokens": 18}

    renamed = api.patch(run_url, {"name": "v1 prompt", "tags": ["candidate"]}, format="json").json()
    assert (renamed["name"], renamed["tags"], renamed["status"]) == ("v1 prompt", ["candidate"], "completed")
    assert api.patch(run_url, {"name": ""}, format="json").status_code == 400
    assert api.patch(run_url, {"tags": "x"}, format="json").status_code == 400
    assert [r["name"] for r in api.get(f"{url}?tag=candidate").json()["runs"]] == ["v1 prompt"]
    assert api.get(f"{url}?tag=prod").json()["runs"] == []
    assert api.get(f"{url}?tag=cand").json()["runs"] == []  # whole tags only


def test_a_run_without_a_name_is_named_after_what_ran(api, capitals):
    started = api.post(
        f"/api/datasets/{capitals.id}/runs", {"targetType": "workflow", "targetId": "echo"}, format="json"
    ).json()
    run = api.get(f"/api/datasets/{capitals.id}/runs/{started['runId']}").json()
    assert run["name"].startswith("echo · ")
