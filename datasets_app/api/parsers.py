"""The API's JSON parser: size-limited, strict, key order kept.

DRF's own parser reads the request stream directly, which bypasses Django's
DATA_UPLOAD_MAX_MEMORY_SIZE check (done only in `HttpRequest.body`), so the
limit is enforced here. The body passes the JSON gate (`jsonsafe`): `NaN`,
`1e999`, lone surrogates and deep nesting are refused, as they could be
neither stored nor written back as JSON.
"""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from datasets_app.jsonsafe import loads_checked

from .errors import PayloadTooLarge


class LimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge()
        try:
            return loads_checked(body.decode("utf-8"), label="The body")
        except (UnicodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
