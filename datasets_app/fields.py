"""OpaqueJSONField: user JSON stored as the exact text it arrived as.

PostgreSQL's jsonb (what Django's JSONField uses) reorders object keys; the
API contract says user JSON comes back exactly as sent. Storing the JSON text
keeps key order on every database, and lets `search` match on the raw text.
"""

import json

from django.core.exceptions import ValidationError
from django.db import models


class OpaqueJSONField(models.TextField):
    description = "JSON value stored verbatim as text (key order preserved)"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return json.loads(value)

    def to_python(self, value):
        if value is None or not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            # A plain string typed in a form is a JSON string value.
            return value

    def get_prep_value(self, value):
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))

    def validate(self, value, model_instance):
        super().validate(value, model_instance)
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"Not JSON-serialisable: {exc}") from exc

    def formfield(self, **kwargs):
        from django.forms import JSONField as JSONFormField

        return JSONFormField(**{"required": not self.blank, **kwargs})
