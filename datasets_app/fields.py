"""OpaqueJSONField: user JSON stored as compact JSON text, key order kept.

PostgreSQL's jsonb (what Django's JSONField uses) reorders object keys; the
API contract says user JSON comes back as sent. Storing JSON text keeps key
order on every database, and lets `search` match on the raw text. The text is
re-serialised, not kept verbatim: whitespace goes, and numbers and escapes
are written as Python's json writes them (`1.50` → `1.5`, `"\\u00e9"` → `"é"`).

Everything written passes the JSON gate (`jsonsafe`): no NaN, Infinity, lone
surrogate or nesting deeper than MAX_JSON_DEPTH reaches the table.
"""

import json
from functools import cached_property
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput, JSONString
from django.utils.text import capfirst

from . import jsonsafe


class OpaqueJSONField(models.TextField):
    description = "JSON value stored as compact JSON text (key order preserved)"
    # For the type checker (django-stubs): the field holds a JSON value, not the text it is stored as.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    @cached_property
    def _label(self) -> str:
        return str(capfirst(self.verbose_name))

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(value)

    def to_python(self, value: Any) -> Any:
        # A form's JSONString is a JSON string value already decoded: decoding it
        # again would turn the typed string "[1]" into a list.
        if value is None or not isinstance(value, str) or isinstance(value, JSONString):
            return value
        try:
            return jsonsafe.loads_checked(value, label=self._label)
        except json.JSONDecodeError:
            # Text that is not JSON (set in code, or typed) is a JSON string value.
            return value
        except jsonsafe.UnsafeJSON as exc:
            raise ValidationError(str(exc), code="invalid") from exc

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        # UnsafeJSON here is a bug in the caller: every door checks its JSON first.
        return jsonsafe.check_json(value, label=self._label)

    def value_to_string(self, obj: models.Model) -> Any:
        return self.get_prep_value(self.value_from_object(obj))

    def validate(self, value: Any, model_instance: models.Model | None) -> None:
        super().validate(value, model_instance)
        try:
            jsonsafe.check_json(value, label=self._label)
        except jsonsafe.UnsafeJSON as exc:
            raise ValidationError(str(exc), code="invalid") from exc

    def formfield(self, **kwargs: Any) -> forms.Field:
        return JSONFormField(**{"required": not self.blank, **kwargs})


class JSONFormField(forms.JSONField):
    """Django's JSON form field, parsing through the JSON gate: a field error, never a 500."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(decoder=_GateDecoder, **kwargs)

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except jsonsafe.UnsafeJSON as exc:
            raise ValidationError(str(exc), code="invalid") from exc

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except jsonsafe.UnsafeJSON:
            return InvalidJSONInput(data)


class _GateDecoder(json.JSONDecoder):
    def decode(self, s: str, _w: Any = None) -> Any:
        return jsonsafe.loads_checked(s, label="This value")
