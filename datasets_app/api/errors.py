"""Every API error answers `{"message": "...", "errors": {...}}`.

`errors` appears only where there are field errors; its keys are the API's
field names, nested ones joined by "/" (`items/0/expectedOutput/answer`).
Services name fields in snake_case (`expected_output`); their errors are
renamed here, where they cross into the API (`naming.wire_key`).
"""

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from datasets_app.exceptions import PlaygroundError

from .naming import wire_key


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the limit."
    default_code = "payload_too_large"


def error_body(errors: dict[str, list[str]], message: str) -> dict[str, Any]:
    """The answer for field errors: the message names the first failing field,
    as DRF's own validation errors do."""
    if not errors:
        return {"message": message}
    field, messages = next(iter(errors.items()))
    if field != "nonFieldErrors":
        message = f"Invalid {field}: {messages[0]}"
    return {"message": message, "errors": errors}


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as `{"path/to/field": [messages]}`."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            # A nested object's own errors belong to its path; top-level ones to nonFieldErrors.
            flat.update(flatten_errors(value, prefix if key == "non_field_errors" else f"{prefix}{key}/"))
    elif isinstance(detail, list) and any(isinstance(v, (dict, list)) for v in detail):
        # A list serializer's errors: one entry per element, empty where valid.
        for index, value in enumerate(detail):
            if value:
                flat.update(flatten_errors(value, f"{prefix}{index}/"))
    else:
        messages = detail if isinstance(detail, list) else [detail]
        flat[prefix.rstrip("/") or "nonFieldErrors"] = [str(m) for m in messages]
    return flat


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PlaygroundError):
        set_rollback()
        errors = {wire_key(key): messages for key, messages in exc.errors.items()}
        return Response(error_body(errors, exc.message), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args[:1])
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(wait))

    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        body = error_body(errors, errors.get("nonFieldErrors", ["Invalid input."])[0])
    else:
        body = error_body({}, str(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
