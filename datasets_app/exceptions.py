"""Errors raised by services; the API and pages translate them to HTTP."""

from django.http import Http404


class PlaygroundError(Exception):
    status_code = 400

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class InvalidInput(PlaygroundError):
    """Input that breaks a rule (schema, unknown target…): HTTP 400."""


class StateConflict(PlaygroundError):
    """The object is in a state that forbids the action: HTTP 409."""

    status_code = 409


class NotFound(PlaygroundError, Http404):
    """The object went away while the change was being made (a concurrent
    delete): HTTP 404, in the API and in pages alike."""

    status_code = 404
