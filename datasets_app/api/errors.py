"""Every API error answers `{"message": "...", "errors": {...}}`.

`errors` appears only where there are field errors; its keys are the
camelCase field names, nested ones joined by "/" (`items/0/input`), the same
paths the services use for schema violations.
"""

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from datasets_app.exceptions import PlaygroundError


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the limit."
    default_code = "payload_too_large"


def error_body(message: str, errors: dict | None = None) -> dict:
    return {"message": message, "errors": errors} if errors else {"message": message}


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
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


def exception_handler(exc, context):
    if isinstance(exc, PlaygroundError):
        set_rollback()
        return Response(error_body(exc.message, exc.errors), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        field, messages = next(iter(errors.items()), ("nonFieldErrors", ["Invalid input."]))
        message = messages[0] if field == "nonFieldErrors" else f"Invalid {field}: {messages[0]}"
        body = error_body(message, errors)
    else:
        body = error_body(str(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
