"""The one gate for JSON that is stored: it must come back out as JSON.

Python's json module is lenient where JSON is not: it reads and writes `NaN`,
`Infinity` (which is also what `1e999` becomes), strings holding a lone UTF-16
surrogate (`"\\ud800"`, which no UTF-8 response can carry), and it recurses
once per nesting level, so deep input ends in RecursionError. Each of those,
once stored, turns every later read of the row into a 500. Every door into
storage (API, import, forms, admin, the engine's results) passes its JSON
through `check_json` or `loads_checked`, and OpaqueJSONField refuses to write
anything else.
"""

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import orjson

# Nesting of user JSON, containers counted: `[]` is 1 level, `[[]]` 2. It
# bounds each stored value and each JSON text parsed (an API body's own levels
# count), and keeps the recursive json encoder and decoder and the schema
# validator far from Python's recursion limit.
MAX_JSON_DEPTH = 64

_CONTAINERS = (dict, list, tuple)
# What never nests: strings (each to its closing quote, or to the end of a
# malformed text) and runs of anything but brackets, quotes and newlines.
# Possessive, and no match can fail once started: linear in the text.
_NOT_NESTING = re.compile(r'(?:"[^"\\]*+(?:\\.?[^"\\]*+)*+(?:"|\Z)|[^"\[\]{}\n]++)++', re.DOTALL)
_NESTING_STEP = {"[": 1, "{": 1, "]": -1, "}": -1, "\n": 0}


class UnsafeJSON(ValueError):
    """JSON that cannot be stored and returned as JSON."""


def check_json(value: Any, *, label: str, max_bytes: int | None = None) -> str:
    """The compact JSON text of `value` (how it is stored), or UnsafeJSON saying why it cannot be.

    Dict keys and tuples follow json.dumps (int keys become strings, tuples lists).
    """
    if _too_deep(value):
        raise UnsafeJSON(f"{label} is nested deeper than {MAX_JSON_DEPTH} levels")
    return _dumps_checked(value, label, max_bytes)


def loads_checked(text: str, *, label: str) -> Any:
    """json.loads that raises UnsafeJSON for anything check_json refuses (never RecursionError).

    Malformed text raises json.JSONDecodeError, as json.loads does.
    """
    value = loads_depth_checked(text, label=label)
    _dumps_checked(value, label, None)
    return value


def loads_depth_checked(text: str, *, label: str) -> Any:
    """json.loads that refuses only nesting deeper than MAX_JSON_DEPTH (so never RecursionError).

    The value may still hold NaN, Infinity or lone surrogates: for a caller that
    checks its parts with check_json to name where they are (an import's rows).
    """
    _check_nesting(text, label)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer over Python's digit limit
        raise UnsafeJSON(f"{label} is not valid JSON: {exc}") from exc


def encode(value: Any) -> str:
    """How JSON is stored: compact, characters kept as they are. Only for values
    that passed the gate already or that the engine built (check_json is the
    gate: orjson would write NaN as null instead of refusing it). orjson is
    several times faster than json, which takes what orjson refuses (ints over
    64 bits, non-string keys)."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return _encode_strict(value)


def _encode_strict(value: Any) -> str:
    """`encode` by the json module, which refuses NaN and Infinity. Values that
    reach it are trees no deeper than MAX_JSON_DEPTH, so json need not look for cycles."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False)


def _dumps_checked(value: Any, label: str, max_bytes: int | None) -> str:
    """check_json for a value known to be no deeper than MAX_JSON_DEPTH."""
    try:
        text = _encode_strict(value)
    except TypeError as exc:
        raise UnsafeJSON(f"{label} is not JSON-serialisable: {exc}") from exc
    except ValueError as exc:  # a non-finite float, or an int over Python's digit limit
        raise UnsafeJSON(f"{label} is not valid JSON: {_non_finite(value) or exc}") from exc
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:
        surrogate = ord(exc.object[exc.start])
        raise UnsafeJSON(f"{label} is not valid JSON: lone surrogate \\u{surrogate:04x}") from exc
    if max_bytes is not None and size > max_bytes:
        raise UnsafeJSON(f"{label} is {size} bytes, over the {max_bytes} byte limit")
    return text


def walk(value: Any) -> Iterator[Any]:
    """`value` and everything inside it: object keys and values, list items.
    Depth first with an explicit stack (no recursion); `value` must not hold a cycle."""
    stack = [value]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, _CONTAINERS):
            stack.extend(node)


def _non_finite(value: Any) -> str | None:
    """A non-finite float in `value`, spelled as json writes it: json's own error does
    not say which on every Python version."""
    for node in walk(value):
        if isinstance(node, float) and not math.isfinite(node):
            return "NaN" if math.isnan(node) else "Infinity" if node > 0 else "-Infinity"
    return None


def _too_deep(value: Any) -> bool:
    # Depth-first with an explicit stack: no recursion, and a cycle ends as too deep.
    stack = [(value, 0)] if isinstance(value, _CONTAINERS) else []
    while stack:
        node, depth = stack.pop()
        if depth == MAX_JSON_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend([(child, depth + 1) for child in children if isinstance(child, _CONTAINERS)])
    return False


def _check_nesting(text: str, label: str) -> None:
    """Refuse text nested deeper than MAX_JSON_DEPTH before the recursive json parser reads it."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return  # too few brackets to nest that deep
    depth = 0
    skeleton = _NOT_NESTING.sub("", text)
    for index, char in enumerate(skeleton):
        depth += _NESTING_STEP[char]
        if depth > MAX_JSON_DEPTH:
            line = skeleton.count("\n", 0, index) + 1  # a JSON string holds no raw newline
            where = f" (line {line})" if "\n" in skeleton else ""
            raise UnsafeJSON(f"{label} is nested deeper than {MAX_JSON_DEPTH} levels{where}")
