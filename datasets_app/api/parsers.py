"""The API's JSON parser: size-limited, strict, key order kept.

DRF's own parser reads the request stream directly, which bypasses Django's
DATA_UPLOAD_MAX_MEMORY_SIZE check (done only in `HttpRequest.body`), so the
limit is enforced here. Non-finite numbers (`NaN`, `1e999`) and lone
surrogates are refused: they cannot be stored or written back as JSON.
"""

import json
import math

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .errors import PayloadTooLarge


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge()
        try:
            data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
            # A lone surrogate escape ("\ud800") parses but can be neither stored nor sent back.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        return data
