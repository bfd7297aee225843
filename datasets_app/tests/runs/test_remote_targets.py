"""HTTP endpoint and OpenAI-compatible targets and LLM judges, against real
servers on loopback."""

import pytest

from datasets_app import services
from datasets_app.models import Trace
from datasets_app.tests.fake_servers import fake_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server():
    with fake_server() as running:
        yield running


def test_http_target_posts_the_input_and_stores_the_json_reply(make_dataset, run_worker, server, settings):
    settings.HTTP_TARGET_URL = f"{server.url}/echo"
    settings.HTTP_TARGET_HEADERS = '{"Authorization": "Bearer s3cret"}'
    dataset = make_dataset(items=[{"input": {"user_name": "Ana", "someKey": 1}}])

    run = run_worker(services.run_start(dataset=dataset, target_type="http", target_id="endpoint").id)

    result = run.results.get()
    assert result.error is None
    assert result.output == {"echo": {"user_name": "Ana", "someKey": 1}}
    assert server.requests[0]["headers"]["Authorization"] == "Bearer s3cret"


def test_http_5xx_is_retried_and_4xx_is_an_error_with_an_excerpt(make_dataset, run_worker, server, settings):
    settings.PLAYGROUND_RETRY_BASE_DELAY = 0.01
    dataset = make_dataset(items=[{"input": {"q": 1}}])

    settings.HTTP_TARGET_URL = f"{server.url}/flaky"
    result = run_worker(
        services.run_start(dataset=dataset, target_type="http", target_id="endpoint", max_retries=3).id
    ).results.get()
    assert (result.error, result.retry_count, result.output) == (None, 2, {"ok": 3})

    settings.HTTP_TARGET_URL = f"{server.url}/bad-request"
    result = run_worker(
        services.run_start(dataset=dataset, target_type="http", target_id="endpoint", max_retries=3).id
    ).results.get()
    assert result.retry_count == 0
    assert result.error == "HTTP 400: <html> missing field 'question' </html>"


def test_http_target_unreachable_is_a_transient_error(make_dataset, run_worker, settings):
    settings.PLAYGROUND_RETRY_BASE_DELAY = 0.01
    settings.HTTP_TARGET_URL = "http://127.0.0.1:9/nothing-listens-here"
    dataset = make_dataset(items=[{"input": {"q": 1}}])
    result = run_worker(
        services.run_start(dataset=dataset, target_type="http", target_id="endpoint", max_retries=1).id
    ).results.get()
    assert result.retry_count == 1
    assert result.error.startswith("ConnectError")


def test_chat_model_target_records_output_and_token_usage(make_dataset, run_worker, server, settings):
    settings.OPENAI_BASE_URL = f"{server.url}/v1"
    settings.OPENAI_MODEL = "local-llama"
    settings.OPENAI_SYSTEM_PROMPT = "Answer briefly."
    dataset = make_dataset(items=[{"input": {"question": "What is the capital of France?"}, "expectedOutput": "Paris"}])

    run = run_worker(services.run_start(dataset=dataset, target_type="model", target_id="chat").id)

    result = run.results.get()
    assert result.error is None
    assert result.output == "Answer to: What is the capital of France?"
    assert result.usage == {
        "promptTokens": 11,
        "completionTokens": 3,
        "totalTokens": 14,
        "model": settings.OPENAI_MODEL,
    }
    sent = server.requests[0]["body"]
    assert sent["model"] == "local-llama"
    assert sent["messages"][0] == {"role": "system", "content": "Answer briefly."}
    spans = {s["name"]: s["attributes"] for s in Trace.objects.get(trace_id=result.trace_id).spans}
    assert spans["run item"]["llm.token_count.total"] == 14
    target = spans["target"]
    assert (target["openinference.span.kind"], target["llm.model_name"]) == ("LLM", "local-llama")
    assert (target["llm.token_count.prompt"], target["gen_ai.usage.output_tokens"]) == (11, 3)
    # The conversation, as Phoenix and Langfuse show it.
    conversation = [
        (target[f"llm.{direction}_messages.{n}.message.role"], target[f"llm.{direction}_messages.{n}.message.content"])
        for direction, n in (("input", 0), ("input", 1), ("output", 0))
    ]
    assert conversation == [
        ("system", "Answer briefly."),
        ("user", "What is the capital of France?"),
        ("assistant", "Answer to: What is the capital of France?"),
    ]


def test_llm_judge_scores_through_the_same_openai_configuration(make_dataset, run_worker, server, settings):
    settings.OPENAI_BASE_URL = f"{server.url}/v1"
    dataset = make_dataset(items=[{"input": "Capital of France?", "expectedOutput": "Paris"}])

    run = run_worker(
        services.run_start(dataset=dataset, target_type="workflow", target_id="echo", scorer_ids=["factuality"]).id
    )

    score = run.results.get().scores[0]
    assert score["error"] is None
    assert 0 <= score["score"] <= 1
    assert score["reason"]
    judge_request = next(r for r in server.requests if r["body"].get("tools"))
    assert "Paris" in str(judge_request["body"]["messages"])


def test_an_http_reply_that_cannot_be_stored_fails_only_its_item(make_dataset, run_worker, server, settings):
    settings.HTTP_TARGET_URL = f"{server.url}/odd-json"
    items = [{"input": {"kind": "surrogate"}}, {"input": {"kind": "nan"}}]
    items += [{"input": {"kind": f"plain {i}"}} for i in range(20)]
    run = run_worker(
        services.run_start(
            dataset=make_dataset(items=items), target_type="http", target_id="endpoint", max_concurrency=8
        ).id
    )

    assert run.status == "completed" and (run.succeeded_count, run.failed_count) == (20, 2)
    errors = {r.input["kind"]: r.error for r in run.results.filter(error__isnull=False)}
    assert errors["surrogate"].startswith("output is not valid JSON: lone surrogate")
    assert errors["nan"] == "output is not valid JSON: NaN"
