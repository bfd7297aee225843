"""The run engine, driven through the real worker (in this process)."""

import asyncio
import itertools
import json
import time

import pytest
from django.db.models import Count

from datasets_app import services
from datasets_app.exceptions import InvalidInput
from datasets_app.models import DatasetRun, Trace
from datasets_app.runs import registry
from datasets_app.runs.targets import TransientError

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

    register.target, register.scorer = target, scorer  # type: ignore[attr-defined]
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


def start(dataset, target_id, target_type="callable", **options):
    return services.run_start(dataset=dataset, target_type=target_type, target_id=target_id, **options)


def test_worker_executes_every_item_once_with_traces(make_dataset, run_worker):
    dataset = make_dataset(items=numbered_items(25))
    run = start(dataset, "echo", "workflow", scorer_ids=["exact-match"], max_concurrency=4)
    assert run.status == "pending" and run.total_items == 25

    run = run_worker(run.id)

    assert run.status == "completed"
    assert (run.succeeded_count, run.failed_count) == (25, 0)
    assert run.started_at and run.completed_at and run.completed_at >= run.started_at
    results = list(run.results.all())
    assert len({r.item_id for r in results}) == 25
    for result in results:
        assert result.output == result.input
        assert result.scores == [
            {"scorerId": "exact-match", "scorerName": "Exact match", "score": 1.0, "reason": None, "error": None}
        ]
        spans = Trace.objects.get(trace_id=result.trace_id).spans
        assert {s["name"] for s in spans} == {"run item", "target", "scorer exact-match"}
        root = next(s for s in spans if s["parentSpanId"] is None)
        assert root["attributes"]["playground.item_id"] == str(result.item_id)
    assert_counters_match_rows(run)


def test_spans_follow_openinference_so_phoenix_shows_kinds_and_values(make_dataset, run_worker):
    dataset = make_dataset(
        items=[{"input": {"question": "capital of France?"}, "expectedOutput": "Paris", "context": {"delayMs": 0}}]
    )
    run = run_worker(start(dataset, "keyword-agent", "agent", scorer_ids=["exact-match"]).id)
    result = run.results.get()
    spans = {s["name"]: s["attributes"] for s in Trace.objects.get(trace_id=result.trace_id).spans}
    root, target, scorer = spans["run item"], spans["target"], spans["scorer exact-match"]
    assert root["openinference.span.kind"] == "CHAIN"
    assert json.loads(root["input.value"]) == {"question": "capital of France?"}
    assert root["output.value"] == "Paris" and root["output.mime_type"] == "text/plain"
    assert json.loads(root["metadata"])["itemId"] == str(result.item_id)
    assert target["openinference.span.kind"] == "AGENT"
    assert scorer["openinference.span.kind"] == "EVALUATOR"
    assert json.loads(scorer["output.value"])["score"] == 1.0


def test_small_chunks_split_the_run_and_the_last_chunk_closes_it(make_dataset, run_worker, settings):
    settings.PLAYGROUND_CHUNK_SIZE = 7
    dataset = make_dataset(items=numbered_items(30))
    run = start(dataset, "echo", "workflow")
    assert run.chunks.count() == 5

    run = run_worker(run.id)

    assert run.status == "completed" and run.results.count() == 30
    assert not run.chunks.exclude(status="done").exists()


def test_a_sync_run_of_many_chunks_forks_one_sandbox_per_concurrent_call(
    make_dataset, run_worker, register, settings, monkeypatch
):
    from datasets_app.runs import isolation

    def sleeps(input, context):
        time.sleep(0.01)
        return input

    register.target("sync-sleeps", sleeps)
    settings.PLAYGROUND_CHUNK_SIZE = 10
    isolation.pool.close()  # none left over from other tests
    forked = []
    original = isolation.Sandbox.__init__

    def counting_init(self):
        forked.append(1)
        original(self)

    monkeypatch.setattr(isolation.Sandbox, "__init__", counting_init)
    run = run_worker(start(make_dataset(items=numbered_items(60)), "sync-sleeps", max_concurrency=4).id)

    assert run.status == "completed" and run.succeeded_count == 60
    # Six chunks ask for four sandboxes each: the ones busy with calls count.
    assert len(forked) <= 4, len(forked)


def test_concurrency_holds_across_chunk_boundaries(make_dataset, run_worker, register, settings):
    """A run never drains between its chunks: every item waits until four run
    at once, which a chunk boundary that drained would never let happen."""
    settings.PLAYGROUND_CHUNK_SIZE = 10
    state = {"now": 0, "peak": 0, "started": 0, "starved": 0}

    async def together(input, context):
        state["now"] += 1
        state["started"] += 1
        state["peak"] = max(state["peak"], state["now"])
        for _ in range(200):
            if state["now"] == 4 or state["started"] == 60:
                break
            await asyncio.sleep(0.01)
        else:
            state["starved"] += 1
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return input

    register.target("together", together)
    run = run_worker(start(make_dataset(items=numbered_items(60)), "together", max_concurrency=4).id)
    assert run.status == "completed" and run.succeeded_count == 60
    assert state["peak"] == 4
    assert state["starved"] == 0


def test_a_raising_target_fails_only_its_item(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": "hello"}, {"input": "please fail"}, {"input": "world"}])
    run = run_worker(start(dataset, "fail-on-keyword", "workflow").id)

    assert run.status == "completed"
    assert (run.succeeded_count, run.failed_count) == (2, 1)
    failed = run.results.get(error__isnull=False)
    assert failed.input == "please fail" and "refusing input" in failed.error and failed.output is None


def test_a_run_whose_every_item_failed_is_failed(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": "fail 1"}, {"input": "fail 2"}])
    run = run_worker(start(dataset, "fail-on-keyword", "workflow").id)
    assert run.status == "failed" and run.failed_count == 2


def test_targets_raising_cancelled_error_or_system_exit_end_their_item_not_the_run(make_dataset, run_worker, register):
    async def raises_cancelled(input, context):
        if input == "boom":
            raise asyncio.CancelledError()
        return input

    def raises_system_exit(input, context):
        if input == "boom":
            raise SystemExit(3)
        return input

    async def raises_system_exit_async(input, context):
        if input == "boom":
            raise SystemExit(4)
        return input

    async def raises_system_exit_after_waiting(input, context):
        await asyncio.sleep(0.01)
        if input == "boom":
            raise SystemExit(5)
        return input

    register.target("cancelled", raises_cancelled)
    register.target("system-exit", raises_system_exit)
    register.target("system-exit-async", raises_system_exit_async)
    register.target("system-exit-after-waiting", raises_system_exit_after_waiting)
    dataset = make_dataset(items=[{"input": "boom"}] + [{"input": f"ok {i}"} for i in range(5)])
    for target_id, error in (
        ("cancelled", "CancelledError"),
        ("system-exit", "SystemExit: 3"),
        ("system-exit-async", "SystemExit: 4"),
        ("system-exit-after-waiting", "SystemExit: 5"),
    ):
        run = run_worker(start(dataset, target_id, max_concurrency=2).id)
        assert run.status == "completed"
        assert (run.succeeded_count, run.failed_count) == (5, 1)
        assert run.results.get(input="boom").error == error


def test_output_that_is_not_json_becomes_the_items_error(make_dataset, run_worker, register, api):
    async def odd_outputs(input, context):
        return {
            "nan": {"value": float("nan")},
            "inf": float("inf"),
            "surrogate": "\ud800",
            "deep": json.loads("[" * 200 + "]" * 200),
        }.get(input, input)

    register.target("odd", odd_outputs)
    dataset = make_dataset(items=[{"input": key} for key in ("nan", "inf", "surrogate", "deep", "fine")])
    run = run_worker(start(dataset, "odd").id)

    assert run.status == "completed" and (run.succeeded_count, run.failed_count) == (1, 4)
    errors = dict(run.results.values_list("input", "error"))
    assert errors["nan"] == "output is not valid JSON: NaN"
    assert errors["inf"] == "output is not valid JSON: Infinity"
    assert "surrogate" in errors["surrogate"] and "deeper" in errors["deep"]
    assert errors["fine"] is None
    response = api.get(f"/api/datasets/{dataset.id}/runs/{run.id}/results", {"perPage": 10})
    assert response.status_code == 200 and len(response.json()["results"]) == 5


def test_a_target_that_hangs_is_timed_out_and_the_run_goes_on(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": {"seconds": 30}}, {"input": {"seconds": 0}}, {"input": {"seconds": 0}}])
    run = run_worker(start(dataset, "sleep", "workflow", item_timeout=0.5).id)

    assert run.status == "completed"
    hung = run.results.get(input={"seconds": 30})
    assert hung.error == "Timed out after 0.5 s" and hung.retry_count == 0
    assert hung.latency >= 500
    spans = Trace.objects.get(trace_id=hung.trace_id).spans
    assert [(s["name"], s["status"]) for s in spans] == [("run item", "error"), ("target", "error")]
    assert run.results.filter(error__isnull=True).count() == 2


def test_a_hung_attempt_is_retried_and_the_trace_shows_every_attempt(
    make_dataset, run_worker, register, settings, tmp_path
):
    settings.PLAYGROUND_RETRY_BASE_DELAY = 0.01
    attempts = tmp_path / "attempts"

    def hangs_once(input, context):  # sync: runs in a sandbox, which the timeout kills
        with attempts.open("a") as log:
            log.write("x")
        if attempts.read_text() == "x":
            time.sleep(30)
        return "second time lucky"

    register.target("hangs-once", hangs_once)
    dataset = make_dataset(items=[{"input": "a"}])
    result = run_worker(start(dataset, "hangs-once", item_timeout=0.5, max_retries=2).id).results.get()

    assert (result.output, result.error, result.retry_count) == ("second time lucky", None, 1)
    spans = Trace.objects.get(trace_id=result.trace_id).spans
    assert [(s["name"], s["status"]) for s in spans] == [
        ("run item", "ok"),
        ("target", "error"),
        ("target retry 1", "ok"),
    ]
    assert all(s["parentSpanId"] == spans[0]["spanId"] for s in spans[1:])


def test_timed_out_calls_leave_no_threads_or_processes_behind(make_dataset, run_worker, register):
    import threading

    from datasets_app.runs.isolation import MAX_IDLE, pool

    async def hangs_async(input, context):
        await asyncio.sleep(30)

    def hangs_sync(input, context):
        while True:  # spins, holding the GIL in its own process
            pass

    register.target("hangs-async", hangs_async)
    register.target("hangs-sync", hangs_sync)
    dataset = make_dataset(items=numbered_items(20))
    run_worker(start(dataset, "echo", "workflow").id)
    threads_before = threading.active_count()

    for target_id in ("hangs-async", "hangs-sync"):
        run = run_worker(start(dataset, target_id, item_timeout=0.3, max_concurrency=20).id)
        assert run.status == "failed" and run.failed_count == 20
        assert set(run.results.values_list("error", flat=True)) == {"Timed out after 0.3 s"}

    assert threading.active_count() <= threads_before
    import multiprocessing

    alive = multiprocessing.active_children()
    assert len(alive) <= MAX_IDLE
    pool.close()
    assert not [p for p in multiprocessing.active_children() if p.name == "sandbox"]


def test_a_scorer_that_spins_is_stopped_and_a_catastrophic_regex_is_linear(make_dataset, run_worker, register):
    def spinning(*, input, output, expected):
        while True:
            pass

    register.scorer("spinning", spinning)
    dataset = make_dataset(
        items=[{"input": "a" * 40 + "!", "expectedOutput": "(a+)+$"}, {"input": "aaa", "expectedOutput": "^a+$"}]
    )
    run = run_worker(start(dataset, "echo", "workflow", scorer_ids=["regex", "spinning"], item_timeout=0.5).id)

    assert run.status == "completed" and run.succeeded_count == 2
    scores = {r.input: {s["scorerId"]: s for s in r.scores} for r in run.results.all()}
    assert scores["a" * 40 + "!"]["regex"]["score"] == 0.0
    assert scores["aaa"]["regex"]["score"] == 1.0
    assert scores["aaa"]["spinning"]["error"] == "Timed out after 0.5 s"


def test_transient_failures_are_retried_with_backoff(make_dataset, run_worker, register, settings):
    settings.PLAYGROUND_RETRY_BASE_DELAY = 0.01
    calls: dict = {}

    async def flaky(input, context):
        calls[input] = calls.get(input, 0) + 1
        if calls[input] <= 2:
            raise TransientError("HTTP 503: try later")
        return f"ok after {calls[input]}"

    async def broken(input, context):
        calls[input] = calls.get(input, 0) + 1
        raise ValueError("bad input")

    register.target("flaky", flaky)
    register.target("broken", broken)
    dataset = make_dataset(items=[{"input": "a"}])

    result = run_worker(start(dataset, "flaky", max_retries=3).id).results.get()
    assert (result.output, result.error, result.retry_count) == ("ok after 3", None, 2)
    spans = Trace.objects.get(trace_id=result.trace_id).spans
    attempts = [s for s in spans if s["name"].startswith("target")]
    assert [(s["name"], s["status"]) for s in attempts] == [
        ("target", "error"),
        ("target retry 1", "error"),
        ("target retry 2", "ok"),
    ]

    calls.clear()
    result = run_worker(start(dataset, "broken", max_retries=3).id).results.get()
    assert result.retry_count == 0 and calls == {"a": 1}
    assert result.error == "ValueError: bad input"


def test_retries_stop_at_max_retries_and_sandbox_errors_keep_their_type(make_dataset, run_worker, register, settings):
    settings.PLAYGROUND_RETRY_BASE_DELAY = 0.01

    def always_429(input, context):  # sync: raised in the sandbox, classified here
        raise TransientError("HTTP 429: slow down")

    register.target("always-429", always_429)
    result = run_worker(start(make_dataset(items=[{"input": "a"}]), "always-429", max_retries=2).id).results.get()
    assert (result.retry_count, result.error) == (2, "HTTP 429: slow down")


def test_a_raising_scorer_gives_null_and_others_still_run(make_dataset, run_worker, register):
    def exploding(*, input, output, expected):
        raise RuntimeError("judge unavailable")

    register.scorer("exploding", exploding)
    dataset = make_dataset(items=[{"input": "Paris", "expectedOutput": "Paris"}])
    run = start(dataset, "echo", "workflow", scorer_ids=["exploding", "exact-match", "contains"])
    result = run_worker(run.id).results.get()
    by_id = {s["scorerId"]: s for s in result.scores}
    assert result.error is None
    assert by_id["exploding"]["score"] is None and by_id["exploding"]["error"] == "judge unavailable"
    assert by_id["exact-match"]["score"] == 1.0 and by_id["contains"]["score"] == 1.0


def test_score_statistics_on_the_run_match_its_results(make_dataset, run_worker, register, settings):
    """The run page reads per-scorer figures from the run row: they must equal
    what the result rows say, across chunks and with failing scorers."""
    settings.PLAYGROUND_CHUNK_SIZE = 4

    async def half(*, input, output, expected):
        if input == "no score":
            raise RuntimeError("cannot score this")
        return 0.5

    register.scorer("half", half)
    items = [{"input": "Paris", "expectedOutput": "Paris"}] * 5 + [{"input": "Lyon", "expectedOutput": "Paris"}] * 4
    items += [{"input": "no score"}, {"input": "fail me"}]
    run = run_worker(
        start(make_dataset(items=items), "fail-on-keyword", "workflow", scorer_ids=["exact-match", "half"]).id
    )

    stats = run.score_stats
    assert stats["exact-match"]["count"] == 10 and stats["exact-match"]["sum"] == 5.0
    assert stats["exact-match"]["histogram"] == [5, 0, 0, 0, 0, 0, 0, 0, 0, 5]
    assert (stats["half"]["count"], stats["half"]["errors"], stats["half"]["sum"]) == (9, 1, 4.5)
    assert run.results.get(input="fail me").scores == []


def test_async_targets_and_scorers_run(make_dataset, run_worker, register):
    async def async_target(input, context):
        await asyncio.sleep(0.01)
        return {"answer": input["n"] * 2}

    async def async_scorer(*, input, output, expected):
        return {"score": 1.0 if output["answer"] % 2 == 0 else 0.0, "reason": "even"}

    register.target("async-double", async_target)
    register.scorer("async-even", async_scorer)
    run = run_worker(start(make_dataset(items=numbered_items(5)), "async-double", scorer_ids=["async-even"]).id)
    assert run.status == "completed"
    assert sorted(r.output["answer"] for r in run.results.all()) == [0, 2, 4, 6, 8]
    assert all(r.scores[0]["score"] == 1.0 and r.scores[0]["reason"] == "even" for r in run.results.all())


def test_repetitions_give_one_result_per_item_and_repetition(make_dataset, run_worker):
    run = run_worker(start(make_dataset(items=numbered_items(4)), "echo", "workflow", repetitions=3).id)
    assert run.total_items == 12 and run.succeeded_count == 12
    assert sorted(run.results.values_list("repetition", flat=True)) == [0] * 4 + [1] * 4 + [2] * 4


def test_latency_counts_the_items_own_attempts_not_its_wait_for_a_slot(make_dataset, run_worker, register):
    async def tenth_of_a_second(input, context):
        await asyncio.sleep(0.1)
        return input

    register.target("tenth", tenth_of_a_second)
    run = run_worker(start(make_dataset(items=numbered_items(6)), "tenth", max_concurrency=1).id)
    # One at a time: each item started when the one before it ended, and its
    # latency is its own start to end, not the time it waited for the slot.
    results = list(run.results.order_by("started_at"))
    for earlier, later in itertools.pairwise(results):
        assert later.started_at >= earlier.completed_at
    for result in results:
        own = (result.completed_at - result.started_at).total_seconds() * 1000
        assert result.latency >= 100 and abs(result.latency - own) < 1


def test_cancel_is_final_and_stops_in_flight_calls(make_dataset, run_worker, register):
    """After the cancel commits, nothing about the run changes, and calls in
    flight are cancelled rather than left running (and billed)."""
    events = {"started": 0, "cancelled": 0}

    async def slow(input, context):
        events["started"] += 1
        try:
            if events["started"] == 8:
                await asyncio.to_thread(lambda: services.run_cancel(run=DatasetRun.objects.get(status="running")))
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            events["cancelled"] += 1
            raise
        return input

    register.target("slow-to-cancel", slow)
    run = start(make_dataset(items=numbered_items(400)), "slow-to-cancel", max_concurrency=8, item_timeout=8)
    run = run_worker(run.id)

    assert run.status == "cancelled"
    assert events["started"] == 8 and events["cancelled"] == 8
    counted = (run.succeeded_count, run.failed_count, run.results.count(), run.updated_at)
    time.sleep(1)
    run.refresh_from_db()
    assert (run.succeeded_count, run.failed_count, run.results.count(), run.updated_at) == counted
    assert_counters_match_rows(run)
    assert Trace.objects.filter(run=run).count() == run.results.count()  # no trace of a dropped item


def test_a_lost_lease_cancels_the_chunks_calls_and_writes_nothing_more(make_dataset, run_worker, register):
    """Another worker took the chunk over (this one stalled): the calls in
    flight here are cancelled, not left to run and bill, and nothing of this
    worker's lands in the run."""
    from datasets_app.models import RunChunk

    events = {"started": 0, "cancelled": 0}

    async def slow(input, context):
        events["started"] += 1
        try:
            if events["started"] == 4:
                await asyncio.to_thread(lambda: RunChunk.objects.update(lease_owner="another-worker"))
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            events["cancelled"] += 1
            raise
        return input

    register.target("slow-to-lose", slow)
    run = run_worker(start(make_dataset(items=numbered_items(50)), "slow-to-lose", max_concurrency=4).id)

    assert events == {"started": 4, "cancelled": 4}
    assert run.status == "running" and run.results.count() == 0
    assert run.chunks.get().lease_owner == "another-worker"


def test_rerun_failed_items_runs_only_the_failures(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": "ok 1"}, {"input": "fail 1"}, {"input": "ok 2"}, {"input": "fail 2"}])
    first = run_worker(start(dataset, "fail-on-keyword", "workflow").id)
    rerun = services.run_rerun_failed(run=first)
    assert rerun.total_items == 2 and rerun.rerun_of_id == first.id
    rerun = run_worker(rerun.id)
    assert sorted(rerun.results.values_list("input", flat=True)) == ["fail 1", "fail 2"]


def test_an_unknown_target_is_refused_before_anything_runs(make_dataset):
    dataset = make_dataset(items=numbered_items(1))
    with pytest.raises(InvalidInput) as error:
        services.run_start(dataset=dataset, target_type="workflow", target_id="nope", scorer_ids=["nope-scorer"])
    assert set(error.value.errors) == {"target_id", "scorer_ids"}
    assert not DatasetRun.objects.exists()


def test_a_target_unregistered_in_the_worker_fails_the_run_with_a_reason(make_dataset, run_worker, register):
    register.target("gone", lambda input, context: input)
    run = start(make_dataset(items=numbered_items(2)), "gone")
    registry.unregister_target("callable", "gone")
    run = run_worker(run.id)
    assert run.status == "failed" and run.error == "Not registered in this worker: callable/gone"


def test_a_dataset_without_items_cannot_start_a_run(make_dataset):
    with pytest.raises(InvalidInput):
        services.run_start(dataset=make_dataset(), target_type="workflow", target_id="echo")
    assert not DatasetRun.objects.exists()


def test_a_run_uses_the_items_of_its_dataset_version(make_dataset, run_worker):
    dataset = make_dataset(items=[{"input": "v1 item"}])
    services.item_create(dataset=dataset, input="added in v2")
    run = run_worker(start(dataset, "echo", "workflow", version=1).id)
    assert run.dataset_version == 1
    assert list(run.results.values_list("output", flat=True)) == ["v1 item"]


def test_sandboxed_sync_targets_see_the_catalogue_as_registered(make_dataset, run_worker, register):
    register.target("v", lambda input, context: "first")
    dataset = make_dataset(items=[{"input": "a"}])
    assert run_worker(start(dataset, "v").id).results.get().output == "first"
    register.target("v", lambda input, context: "second")
    assert run_worker(start(dataset, "v").id).results.get().output == "second"


def test_a_sync_target_that_kills_its_own_process_fails_only_its_item(make_dataset, run_worker, register):
    import os

    def exits(input, context):
        if input == "die":
            os._exit(9)
        return input

    register.target("exits", exits)
    run = run_worker(start(make_dataset(items=[{"input": "die"}, {"input": "live"}]), "exits").id)
    assert run.status == "completed"
    assert run.results.get(input="die").error == "the sandbox process died (exit code 9)"
    assert run.results.get(input="live").output == "live"


def test_result_ids_are_time_ordered(make_dataset, run_worker):
    run = run_worker(start(make_dataset(items=numbered_items(5)), "echo", "workflow").id)
    assert {result.id.version for result in run.results.all()} == {7}
