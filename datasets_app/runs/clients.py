"""HTTP and OpenAI clients shared by every item of a worker (connection pools),
one set per event loop: a client must not outlive the loop it was made on."""

import asyncio
from typing import Any

import httpx
from django.conf import settings

_clients: dict[int, dict[str, Any]] = {}


def _for_this_loop() -> dict[str, Any]:
    return _clients.setdefault(id(asyncio.get_running_loop()), {})


def http_client() -> httpx.AsyncClient:
    clients = _for_this_loop()
    if "http" not in clients:
        # The engine owns timeouts (per attempt); this one only bounds a stuck socket.
        clients["http"] = httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=1000))
    return clients["http"]


def openai_client() -> Any:
    import openai

    clients = _for_this_loop()
    if "openai" not in clients:
        clients["openai"] = openai.AsyncOpenAI(
            base_url=settings.OPENAI_BASE_URL or None,
            api_key=settings.OPENAI_API_KEY or "not-needed",
            max_retries=0,  # the run engine owns retries and counts them
            timeout=300,
            http_client=httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=1000)),  # type: ignore[arg-type]
        )
    return clients["openai"]


async def close_clients() -> None:
    """Close this loop's clients (the worker is stopping)."""
    for client in _clients.pop(id(asyncio.get_running_loop()), {}).values():
        await client.aclose() if isinstance(client, httpx.AsyncClient) else await client.close()
