"""Built-in targets: offline ones for demos and tests, plus HTTP and
OpenAI-compatible model targets configured from settings/environment.

A target is `func(input, context) -> output` (sync or async); raising marks
the item failed with the exception's message. Raise `TransientError` (or let
a timeout, connection error, HTTP 429/5xx happen) for failures worth retrying.

The built-ins that wait (the keyword agent, HTTP, the chat model) are async:
they share the worker's connection pools and are cancelled for real. The
trivial ones run inline (`isolated=False`). The sleeper is sync on purpose:
it shows a hung sync call in a sandbox being stopped at its timeout.
"""

import asyncio
import json
import re
import time
from typing import Any

import httpx
from django.conf import settings

from .clients import http_client, openai_client
from .errors import TransientError
from .registry import TargetOutput, register_target, requires_any_setting
from .tracing import message_attributes

__all__ = ["TransientError"]


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("question", "text", "prompt", "message", "input"):
            if isinstance(value.get(key), str):
                return value[key]
    return json.dumps(value, ensure_ascii=False)


@register_target(
    "workflow", "echo", name="Echo workflow", description="Returns the item's input unchanged.", isolated=False
)
def echo(input: Any, context: Any) -> Any:
    return input


@register_target(
    "workflow",
    "uppercase",
    name="Uppercase workflow",
    description="Returns the input's text in upper case.",
    isolated=False,
)
def uppercase(input: Any, context: Any) -> Any:
    return _text_of(input).upper()


KEYWORD_ANSWERS = {
    "capital of france": "Paris",
    "capital of japan": "Tokyo",
    "capital of italy": "Rome",
    "2+2": "4",
    "2 + 2": "4",
    "largest planet": "Jupiter",
    "boiling point of water": "100 °C",
    "author of hamlet": "William Shakespeare",
    "speed of light": "299,792 km/s",
}


@register_target(
    "agent",
    "keyword-agent",
    name="Keyword agent",
    description=(
        "Answers from a small keyword table after a delay (context.delayMs, "
        "default 300 ms), so a run is slow enough to watch."
    ),
)
async def keyword_agent(input: Any, context: Any) -> Any:
    delay_ms: float = 300
    if isinstance(context, dict) and isinstance(context.get("delayMs"), (int, float)):
        delay_ms = max(0, min(float(context["delayMs"]), 60_000))
    await asyncio.sleep(delay_ms / 1000)
    question = _text_of(input).lower()
    for keyword, answer in KEYWORD_ANSWERS.items():
        if keyword in question:
            return answer
    return "I don't know."


@register_target(
    "workflow",
    "fail-on-keyword",
    name="Fails on 'fail'",
    description="Echoes the input, but raises an error when the input mentions 'fail'.",
    isolated=False,
)
def fail_on_keyword(input: Any, context: Any) -> Any:
    if "fail" in _text_of(input).lower():
        raise RuntimeError(f"refusing input that mentions 'fail': {_text_of(input)[:80]}")
    return input


@register_target(
    "workflow",
    "sleep",
    name="Sleeper",
    description="Sleeps input.seconds (default 1 s) without cooperating, then echoes; for timeout tests.",
)
def sleeper(input: Any, context: Any) -> Any:
    seconds = input.get("seconds", 1) if isinstance(input, dict) else 1
    time.sleep(float(seconds))
    return input


# ---- HTTP endpoint ------------------------------------------------------------

RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}


def _http_headers() -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if settings.HTTP_TARGET_HEADERS:
        headers.update(json.loads(settings.HTTP_TARGET_HEADERS))
    return headers


@register_target(
    "http",
    "endpoint",
    name="HTTP endpoint",
    description="POSTs the item input as JSON to HTTP_TARGET_URL; the JSON reply is the output.",
    available=requires_any_setting("HTTP_TARGET_URL"),
)
async def http_endpoint(input: Any, context: Any) -> Any:
    if not settings.HTTP_TARGET_URL:
        raise RuntimeError("HTTP_TARGET_URL is not set")
    try:
        response = await http_client().post(settings.HTTP_TARGET_URL, json=input, headers=_http_headers())
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.TimeoutException) as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        excerpt = re.sub(r"\s+", " ", response.text)[:200]
        message = f"HTTP {response.status_code}: {excerpt}"
        if response.status_code in RETRYABLE_HTTP:
            raise TransientError(message)
        raise RuntimeError(message)
    try:
        return response.json()
    except ValueError as exc:
        raise RuntimeError(f"Reply is not JSON: {response.text[:200]}") from exc


# ---- OpenAI-compatible chat model ------------------------------------------------


def chat_messages(input: Any, context: Any) -> list[dict[str, Any]]:
    if isinstance(input, dict) and isinstance(input.get("messages"), list):
        return input["messages"]
    messages = [{"role": "system", "content": settings.OPENAI_SYSTEM_PROMPT}]
    if context:
        messages.append({"role": "system", "content": f"Context: {_text_of(context)}"})
    messages.append({"role": "user", "content": _text_of(input)})
    return messages


@register_target(
    "model",
    "chat",
    name="Chat model (OpenAI-compatible)",
    description="Sends the input to OPENAI_MODEL at OPENAI_BASE_URL (OpenAI, vLLM, Ollama, LM Studio).",
    available=requires_any_setting("OPENAI_BASE_URL", "OPENAI_API_KEY"),
)
async def chat_model(input: Any, context: Any) -> Any:
    import openai

    messages = chat_messages(input, context)
    try:
        completion = await openai_client().chat.completions.create(model=settings.OPENAI_MODEL, messages=messages)
    except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError) as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from exc
    except openai.APIStatusError as exc:
        message = f"HTTP {exc.status_code}: {str(exc.message)[:200]}"
        if exc.status_code in RETRYABLE_HTTP:
            raise TransientError(message) from exc
        raise RuntimeError(message) from exc
    usage = None
    if completion.usage is not None:
        usage = {
            "promptTokens": completion.usage.prompt_tokens,
            "completionTokens": completion.usage.completion_tokens,
            "totalTokens": completion.usage.total_tokens,
            "model": settings.OPENAI_MODEL,  # the price table's key (summary.usage_summary)
        }
    answer = completion.choices[0].message.content
    return TargetOutput(
        output=answer,
        usage=usage,
        attributes={
            "gen_ai.request.model": settings.OPENAI_MODEL,
            "gen_ai.response.model": completion.model,
            **message_attributes("input", messages),
            **message_attributes("output", [{"role": "assistant", "content": answer}]),
        },
    )
