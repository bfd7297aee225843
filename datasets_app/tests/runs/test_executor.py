"""The run engine, driven through the real django-tasks-db worker."""

import asyncio
import threading
import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from datasets_app import services
from datasets_app.models import DatasetRun, DatasetRunResult, RunChunk, Trace
from datasets_app.runs import registry
from datasets_app.runs.targets import TransientError
from datasets_app.runs.tasks import claim_chunk, reap_expired_chunks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def register():
    """Register test-only targets/scorers and remove them afterwards."""
    added = []

    def target(target_id, func, target_type="callable"):
        registry.register_target(target_type, target_id)(func)
        added.append(("target", target_type, target_id))

    def scorer(scorer_id, func):
        registry.register_scorer(scorer_id)(func)
        added.append(("scorer", scorer_id, None))

    register.target, register.scorer = target, scorer
    yield register
    for kind, a, b in added:
        if kind == "target":
            registry.unregister_target(a, b)
        else:
            registry.unregister_scorer(a)


def numbered_items(n, **extra):
    return [{"input": {"n": i, **extra}, "expectedOutput": {"n": i}} for i in range(n)]


def assert_counters_match_rows(run):
    run.refresh_from_db()
    rows = run.results.aggregate(n=Count("id"))["n"]
    failed = run.results.filter(error__isnull=False).count()
    assert run.succeeded_count + run.failed_count == rows
    assert run.failed_count == failed


def test_worker_executes_every_item_once_with_traces(make_dataset, run_worker):
    dataset = make_dataset(items=numbered_items(25))
    run = services.run_start(
        dataset=dataset, target_type="workflow", target_id="echo", scorer_ids=["exact-match"], max_concurrency=4
    )
    assert run.status == "pending" and run.total_items == 25

    run = run_worker(run.id)

    assert run.status == "completed"
    assert (run.succeeded_count, run.failed_count) == (25, 0)
    assert run.started_at and run.completed_at and run.completed_at >= run.started_at
    results = list(run.results.all())
    assert len(results) == 25
    assert len({r.item_id for r in results}) == 25
    for result in results:
        assert result.output == result.input
        assert result.scores == [
            {"scorerId": "exact-match", "scorerName": "Exact match", "score": 1.0, "reason": None, "error": None}
        ]
        assert len(result.trace_id) == 32 and int(result.trace_id, 16)
        spans = Trace.objects.get(trace_id=result.trace_id).spans
        names = {s["name"] for s in spans}
        assert names == {"run item", "target", "scorer exact-match"}
        root = next(s for s in spans if s["parentSpanId"] is None)
        assert root["attributes"]["playground.item_id"] == str(result.item_id)
    assert_counters_match_rows(run)


def test_small_chunks_split_the_run_and_the_last_chunk_closes_it(make_dataset, run_worker, settings):
    settings.PLAYGROUND_CHUNK_SIZE = 7
    dataset = make_dataset(items=numbered_items(30))
    run = services.run_start(dataset=dataset, target_type="workflow", target_id="echo")
    assert run.chunks.count() == 5
    assert sum(run.chunks.values_list("item_count", flat=True)) == 30

    run = run_worker(run.id)

    assert run.status == "completed"
    assert run.results.count() == 30
    assert not run.chunks.exclude(status="done").exists()


def test_a_raising_target_fails_only_its_item(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": "hello"}, {"input": "please fail"}, {"input": "world"}])
    run = services.run_start(dataset=dataset, target_type="workflow", target_id="fail-on-keyword")

    run = run_worker(run.id)

    assert run.status == "completed"
    assert (run.succeeded_count, run.failed_count) == (2, 1)
    failed = run.results.get(error__isnull=False)
    assert failed.input == "please fail"
    assert "refusing input" in failed.error
    assert failed.output is None
    assert Trace.objects.get(trace_id=failed.trace_id).spans[-1]["status"] in {"error", "ok"}


def test_a_run_whose_every_item_failed_is_failed(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": "fail 1"}, {"input": "fail 2"}])
    run = run_worker(services.run_start(dataset=dataset, target_type="workflow", target_id="fail-on-keyword").id)
    assert run.status == "failed"
    assert run.failed_count == 2


def test_a_target_that_hangs_is_timed_out_and_the_run_goes_on(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": {"seconds": 30}}, {"input": {"seconds": 0}}, {"input": {"seconds": 0}}])
    run = services.run_start(dataset=dataset, target_type="workflow", target_id="sleep", item_timeout=0.3)
    started = time.monotonic()

    run = run_worker(run.id)

    assert time.monotonic() - started < 10
    assert run.status == "completed"
    hung = run.results.get(input={"seconds": 30})
    assert hung.error == "Timed out after 0.3 s"
    assert hung.retry_count == 0
    assert 300 <= hung.latency < 5000
    spans = Trace.objects.get(trace_id=hung.trace_id).spans
    assert [(s["name"], s["status"]) for s in spans] == [("run item", "error"), ("target", "error")]
    assert run.results.filter(error__isnull=True).count() == 2


def test_a_hung_attempt_is_retried_and_the_trace_shows_every_attempt(make_dataset, run_worker, register, settings):
    settings.PLAYGROUND_RETRY_BASE_DELAY = 0.01
    calls = []

    def hangs_once(input, context):
        calls.append(input)
        if len(calls) == 1:
            time.sleep(30)  # never cooperates; the engine must give up on it
        return "second time lucky"

    def always_hangs(input, context):
        time.sleep(30)

    register.target("hangs-once", hangs_once)
    register.target("always-hangs", always_hangs)
    dataset = make_dataset(items=[{"input": "a"}])

    run = services.run_start(
        dataset=dataset, target_type="callable", target_id="hangs-once", item_timeout=0.3, max_retries=2
    )
    result = run_worker(run.id).results.get()
    assert (result.output, result.error, result.retry_count) == ("second time lucky", None, 1)
    assert result.latency >= 300
    spans = Trace.objects.get(trace_id=result.trace_id).spans
    assert [(s["name"], s["status"]) for s in spans] == [
        ("run item", "ok"), ("target", "error"), ("target retry 1", "ok")
    ]
    root = spans[0]
    assert all(s["parentSpanId"] == root["spanId"] for s in spans[1:])

    run = services.run_start(
        dataset=dataset, target_type="callable", target_id="always-hangs", item_timeout=0.2, max_retries=1
    )
    result = run_worker(run.id).results.get()
    assert (result.error, result.retry_count) == ("Timed out after 0.2 s", 1)
    assert 400 <= result.latency < 5000


def test_transient_failures_are_retried_with_backoff(make_dataset, run_worker, register, settings):
    settings.PLAYGROUND_RETRY_BASE_DELAY = 0.01
    calls = {}

    def flaky(input, context):
        calls[input] = calls.get(input, 0) + 1
        if calls[input] <= 2:
            raise TransientError("HTTP 503: try later")
        return f"ok after {calls[input]}"

    def broken(input, context):
        calls[input] = calls.get(input, 0) + 1
        raise ValueError("bad input")

    register.target("flaky", flaky)
    register.target("broken", broken)
    dataset = make_dataset(items=[{"input": "a"}])

    run = run_worker(services.run_start(dataset=dataset, target_type="callable", target_id="flaky", max_retries=3).id)
    result = run.results.get()
    assert (result.output, result.error, result.retry_count) == ("ok after 3", None, 2)
    spans = Trace.objects.get(trace_id=result.trace_id).spans
    attempts = [s for s in spans if s["name"].startswith("target")]
    assert [s["name"] for s in attempts] == ["target", "target retry 1", "target retry 2"]
    assert [s["status"] for s in attempts] == ["error", "error", "ok"]

    calls.clear()
    run = run_worker(services.run_start(dataset=dataset, target_type="callable", target_id="broken", max_retries=3).id)
    result = run.results.get()
    assert result.retry_count == 0 and calls == {"a": 1}
    assert result.error == "ValueError: bad input"


def test_retries_stop_at_max_retries(make_dataset, run_worker, register, settings):
    settings.PLAYGROUND_RETRY_BASE_DELAY = 0.01

    def always_429(input, context):
        raise TransientError("HTTP 429: slow down")

    register.target("always-429", always_429)
    dataset = make_dataset(items=[{"input": "a"}])
    run = run_worker(services.run_start(dataset=dataset, target_type="callable", target_id="always-429", max_retries=2).id)
    result = run.results.get()
    assert result.retry_count == 2
    assert result.error == "HTTP 429: slow down"


def test_a_raising_scorer_gives_null_and_others_still_run(make_dataset, run_worker, register):
    def exploding(*, input, output, expected):
        raise RuntimeError("judge unavailable")

    register.scorer("exploding", exploding)
    dataset = make_dataset(items=[{"input": "Paris", "expectedOutput": "Paris"}])
    run = services.run_start(
        dataset=dataset, target_type="workflow", target_id="echo", scorer_ids=["exploding", "exact-match", "contains"]
    )
    result = run_worker(run.id).results.get()
    assert result.error is None
    by_id = {s["scorerId"]: s for s in result.scores}
    assert by_id["exploding"]["score"] is None and by_id["exploding"]["error"] == "judge unavailable"
    assert by_id["exact-match"]["score"] == 1.0
    assert by_id["contains"]["score"] == 1.0


def test_score_statistics_on_the_run_match_its_results(make_dataset, run_worker, register, settings):
    """The run page reads per-scorer figures from the run row: they must equal
    what the result rows say, across chunks and with failing scorers."""
    settings.PLAYGROUND_CHUNK_SIZE = 4

    def half(*, input, output, expected):
        if input == "no score":
            raise RuntimeError("cannot score this")
        return 0.5

    register.scorer("half", half)
    items = [{"input": "Paris", "expectedOutput": "Paris"}] * 5 + [{"input": "Lyon", "expectedOutput": "Paris"}] * 4
    items += [{"input": "no score"}, {"input": "fail me"}]
    dataset = make_dataset(items=items)
    run = services.run_start(
        dataset=dataset, target_type="workflow", target_id="fail-on-keyword", scorer_ids=["exact-match", "half"]
    )
    run = run_worker(run.id)

    stats = run.score_stats
    assert stats["exact-match"]["count"] == 10 and stats["exact-match"]["sum"] == 5.0
    assert stats["exact-match"]["histogram"] == [5, 0, 0, 0, 0, 0, 0, 0, 0, 5]
    assert (stats["half"]["count"], stats["half"]["errors"], stats["half"]["sum"]) == (9, 1, 4.5)
    assert stats["half"]["histogram"][5] == 9
    # The failed item ("fail me") has no scores at all.
    assert run.results.get(input="fail me").scores == []
    # Thresholds the histogram cannot answer are counted in the database, consistently.
    from datasets_app.runs.summary import count_passed, passed_at

    assert count_passed(run, 0.5) == {"exact-match": passed_at(stats["exact-match"]["histogram"], 0.5), "half": 9}
    assert count_passed(run, 0.75) == {"exact-match": 5}


def test_concurrency_is_bounded(make_dataset, run_worker, register):
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow(input, context):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return input

    register.target("slow", slow)
    dataset = make_dataset(items=numbered_items(24))
    run_worker(services.run_start(dataset=dataset, target_type="callable", target_id="slow", max_concurrency=3).id)
    assert state["peak"] == 3


def test_async_targets_and_scorers_run(make_dataset, run_worker, register):
    async def async_target(input, context):
        await asyncio.sleep(0.01)
        return {"answer": input["n"] * 2}

    async def async_scorer(*, input, output, expected):
        return {"score": 1.0 if output["answer"] % 2 == 0 else 0.0, "reason": "even"}

    register.target("async-double", async_target)
    register.scorer("async-even", async_scorer)
    dataset = make_dataset(items=numbered_items(5))
    run = run_worker(
        services.run_start(dataset=dataset, target_type="callable", target_id="async-double", scorer_ids=["async-even"]).id
    )
    assert run.status == "completed"
    assert sorted(r.output["answer"] for r in run.results.all()) == [0, 2, 4, 6, 8]
    assert all(r.scores[0]["score"] == 1.0 and r.scores[0]["reason"] == "even" for r in run.results.all())


def test_repetitions_give_one_result_per_item_and_repetition(make_dataset, run_worker):
    dataset = make_dataset(items=numbered_items(4))
    run = run_worker(services.run_start(dataset=dataset, target_type="workflow", target_id="echo", repetitions=3).id)
    assert run.total_items == 12 and run.succeeded_count == 12
    assert sorted(run.results.values_list("repetition", flat=True)) == [0] * 4 + [1] * 4 + [2] * 4


def test_cancel_stops_new_items_and_keeps_the_results_so_far(make_dataset, run_worker, register):
    calls, cancelled_at = [], []

    def cancel_on_third_call(input, context):
        calls.append(input)
        if len(calls) == 3:
            services.run_cancel(run=DatasetRun.objects.get(status="running"))
            cancelled_at.append(timezone.now())
        time.sleep(0.05)
        return input

    register.target("cancel-on-third", cancel_on_third_call)
    dataset = make_dataset(items=[{"input": {"n": i}} for i in range(100)])
    run = services.run_start(dataset=dataset, target_type="callable", target_id="cancel-on-third", max_concurrency=1)

    run = run_worker(run.id)

    assert run.status == "cancelled"
    # The engine looks at the run's status every 0.5 s: at 50 ms an item, about
    # ten more items may start before it notices, never the rest of the run.
    started_after_cancel = run.results.filter(started_at__gt=cancelled_at[0]).count()
    assert started_after_cancel <= 12
    assert run.results.count() <= 3 + 12
    assert_counters_match_rows(run)


def test_rerun_failed_items_runs_only_the_failures(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": "ok 1"}, {"input": "fail 1"}, {"input": "ok 2"}, {"input": "fail 2"}])
    first = run_worker(services.run_start(dataset=dataset, target_type="workflow", target_id="fail-on-keyword").id)
    rerun = services.run_rerun_failed(run=first)
    assert rerun.total_items == 2 and rerun.rerun_of_id == first.id
    rerun = run_worker(rerun.id)
    assert sorted(rerun.results.values_list("input", flat=True)) == ["fail 1", "fail 2"]


def test_a_chunk_whose_worker_died_is_resumed_without_repeating_items(make_dataset, run_worker, settings):
    settings.PLAYGROUND_LEASE_SECONDS = 30
    dataset = make_dataset(items=numbered_items(20))
    run = services.run_start(dataset=dataset, target_type="workflow", target_id="echo")
    chunk = run.chunks.get()
    # A worker claims the chunk, writes some results, then dies (its lease runs out).
    assert claim_chunk(chunk_id=chunk.pk, worker_id="dead-worker")
    DatasetRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())
    done_items = list(run.work_items().values_list("item_id", "version_number")[:8])
    now = timezone.now()
    DatasetRunResult.objects.bulk_create(
        [
            DatasetRunResult(
                run=run, item_id=item_id, item_version=v, output="from the dead worker", latency=1,
                started_at=now, completed_at=now,
            )
            for item_id, v in done_items
        ]
    )
    DatasetRun.objects.filter(pk=run.pk).update(succeeded_count=8)
    run_worker()  # the queued task finds the chunk leased: it must not run it twice
    assert run.results.count() == 8
    RunChunk.objects.filter(pk=chunk.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert reap_expired_chunks() == 1
    run = run_worker(run.id)

    assert run.status == "completed"
    assert run.results.count() == 20
    assert run.results.filter(output="from the dead worker").count() == 8
    assert_counters_match_rows(run)
    assert run.chunks.get().attempts == 2


def test_an_unknown_target_is_refused_before_anything_runs(make_dataset):
    from datasets_app.exceptions import InvalidInput

    dataset = make_dataset(items=numbered_items(1))
    with pytest.raises(InvalidInput) as error:
        services.run_start(dataset=dataset, target_type="workflow", target_id="nope", scorer_ids=["nope-scorer"])
    assert set(error.value.errors) == {"targetId", "scorerIds"}
    assert not DatasetRun.objects.exists()


def test_a_dataset_without_items_cannot_start_a_run(make_dataset):
    from datasets_app.exceptions import InvalidInput

    with pytest.raises(InvalidInput):
        services.run_start(dataset=make_dataset(), target_type="workflow", target_id="echo")
    assert not DatasetRun.objects.exists()


def test_a_run_uses_the_items_of_its_dataset_version(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": "v1 item"}])
    services.item_create(dataset=dataset, input="added in v2")
    run = run_worker(services.run_start(dataset=dataset, target_type="workflow", target_id="echo", version=1).id)
    assert run.dataset_version == 1
    assert list(run.results.values_list("output", flat=True)) == ["v1 item"]


def test_a_chunk_that_keeps_killing_its_workers_is_given_up_and_the_run_ends(make_dataset, run_worker):
    dataset = make_dataset(items=numbered_items(5))
    run = services.run_start(dataset=dataset, target_type="workflow", target_id="echo")
    chunk = run.chunks.get()
    # Three workers claimed it and died (their leases ran out).
    RunChunk.objects.filter(pk=chunk.pk).update(
        status="running", attempts=3, lease_owner="", lease_expires_at=None
    )
    DatasetRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())

    run = run_worker(run.id)

    assert run.status == "failed"
    assert run.failed_count == 5 and run.results.count() == 5
    assert all("stopped 3 times" in error for error in run.results.values_list("error", flat=True))
