"""How a failed call is classified and reported on its item."""

import httpx
import openai


class TransientError(Exception):
    """A failure that may go away on retry (rate limit, 5xx, dropped connection)."""


class AttemptTimeout(TransientError):
    """An attempt that overran the run's item timeout."""


class RemoteError(Exception):
    """An exception raised by the user's code, carried back by value: from a
    sandbox process, or a SystemExit out of an async call (which asyncio would
    let out of the event loop)."""

    def __init__(self, type_name: str, message: str, *, transient: bool):
        super().__init__(message)
        self.type_name = type_name
        self.transient = transient


TRANSIENT_TYPES = (
    TransientError,
    TimeoutError,
    ConnectionError,
    httpx.TransportError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: timeouts, dropped connections, rate limits, 5xx."""
    if isinstance(exc, RemoteError):
        return exc.transient
    return isinstance(exc, TRANSIENT_TYPES)


# Their message says it all; any other type is named before its message.
PLAIN_MESSAGES = {"TransientError", "AttemptTimeout", "RuntimeError", "SandboxDied", "UnsafeJSON"}


def error_message(exc: BaseException) -> str:
    """The text stored as the item's (or scorer's) error: the exception's
    message, prefixed with its type unless the type says nothing more."""
    if isinstance(exc, RemoteError):
        type_name = exc.type_name
    else:
        type_name = type(exc).__name__
    text = str(exc)
    if not text:
        return type_name
    if type_name not in PLAIN_MESSAGES:
        text = f"{type_name}: {text}"
    # Lone surrogates and NUL cannot be stored as text (UTF-8, PostgreSQL): escape them.
    text = text[:2000].encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")
