"""Built-in scorers: autoevals' standard ones, contains/regex, and LLM judges.

A scorer is `func(*, input, output, expected) -> float | {"score", "reason"}`
with score in 0..1. A scorer that raises leaves `score: null` and its error;
the other scorers of the item still run (see item.py).

Scorers linear in their input run inline on the worker's loop
(`isolated=False`); the ones that can take quadratic time on a large output
(edit distances, list matching) run in a sandbox like user code, where the
item timeout can stop them. `regex` uses RE2, which matches in linear time.
"""

import json
import re
import sys
import unicodedata
from typing import Any

import re2
from django.conf import settings

from .clients import openai_client
from .registry import register_scorer, requires_any_setting

# The LLM judges call the model the `model/chat` target uses.
OPENAI_CONFIGURED = requires_any_setting("OPENAI_BASE_URL", "OPENAI_API_KEY")


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _evaluator(name: str, **options: Any) -> Any:
    """An autoevals evaluator by class name, imported when first used: autoevals
    (with numpy and scipy) is slow to import and most runs never need it."""
    import autoevals

    return getattr(autoevals, name)(**options)


def _evaluate(name: str, *, input: Any, output: Any, expected: Any, **options: Any) -> dict[str, Any]:
    return _as_score(_evaluator(name, **options).eval(output=output, expected=expected, input=input))


async def _judge(name: str, *, input: Any, output: Any, expected: Any, **kwargs: Any) -> dict[str, Any]:
    """An autoevals LLM judge, through the OpenAI settings the model target uses; it sees text."""
    judge = _evaluator(name, client=openai_client(), model=settings.OPENAI_MODEL)
    texts = {key: None if value is None else _as_text(value) for key, value in kwargs.items()}
    result = await judge.eval_async(input=_as_text(input), output=_as_text(output), expected=expected, **texts)
    return _as_score(result)


def _as_score(result: Any) -> dict[str, Any]:
    if result.error is not None:
        raise RuntimeError(str(result.error))
    reason = None
    if result.metadata:
        reason = result.metadata.get("rationale") or result.metadata.get("choice")
        if reason is None:
            reason = json.dumps(result.metadata, ensure_ascii=False, default=str)[:500]
    return {"score": None if result.score is None else float(result.score), "reason": reason}


@register_scorer(
    "exact-match", name="Exact match", description="1 when output equals the expected output, else 0.", isolated=False
)
def exact_match(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    return _evaluate("ExactMatch", input=input, output=output, expected=expected)


@register_scorer(
    "levenshtein", name="Levenshtein", description="1 − normalised edit distance between output and expected text."
)
def levenshtein(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    return _evaluate("Levenshtein", input=input, output=_as_text(output), expected=_as_text(expected))


@register_scorer(
    "numeric-diff",
    name="Numeric difference",
    description="Closeness of two numbers: 1 − |a−b| / (|a|+|b|).",
    isolated=False,
)
def numeric_diff(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    try:
        output_number, expected_number = float(output), float(expected)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"numeric-diff needs numbers, got {output!r} and {expected!r}") from exc
    return _evaluate("NumericDiff", input=input, output=output_number, expected=expected_number)


@register_scorer("json-diff", name="JSON difference", description="Structural similarity of output and expected JSON.")
def json_diff(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    return _evaluate("JSONDiff", input=input, output=output, expected=expected)


@register_scorer(
    "valid-json", name="Valid JSON", description="1 when the output is (or parses as) JSON.", isolated=False
)
def valid_json(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    return _evaluate("ValidJSON", input=input, output=output, expected=None)


@register_scorer(
    "list-contains", name="List contains", description="How well the output list covers the expected list."
)
def list_contains(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    if not isinstance(output, list) or not isinstance(expected, list):
        raise ValueError("list-contains needs a list output and a list expected output")
    return _evaluate(
        "ListContains",
        input=input,
        output=[_as_text(v) for v in output],
        expected=[_as_text(v) for v in expected],
        allow_extra_entities=True,
    )


# Words, runs of whitespace, and every other character on its own. Python's
# `re` matches this in one linear pass (no nested quantifiers to backtrack).
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]")


def word_tokens(text: str) -> list[str]:
    """`text` as `contains` compares it: NFC-normalised and case-folded, cut into
    words (Unicode letters, digits, marks and _), single other characters, and
    runs of whitespace, each run as one " "."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    return [" " if token[0].isspace() else token for token in _TOKENS.findall(folded)]


def occurs_as_words(needle: str, haystack: str) -> bool:
    """Whether `needle` occurs in `haystack` at word boundaries: its words match
    whole words of the haystack, case-insensitively, and any run of whitespace
    matches any other ("New York" is in "new\nyork city"; "No" is not in "I
    don't know."). Linear time: each distinct token of the needle becomes one
    character, every other token of the haystack a character the needle lacks,
    and str's substring search (linear in the worst case) finds the sequence."""
    wanted = word_tokens(needle.strip())
    codes: dict[str, str] = {}
    for token in wanted:
        codes.setdefault(token, chr(len(codes) + 1))  # 0 stands for "not in the needle"
    if len(codes) >= sys.maxunicode:
        raise ValueError("contains: the expected text has too many distinct words")
    encoded_needle = "".join(codes[token] for token in wanted)
    encoded_haystack = "".join(codes.get(token, "\0") for token in word_tokens(haystack))
    return encoded_needle in encoded_haystack


@register_scorer(
    "contains",
    name="Contains",
    description=(
        "1 when the expected text occurs in the output as whole words and phrases "
        "(case-insensitive; any whitespace matches any whitespace): "
        "'Paris' is in 'It is Paris.', 'No' is not in 'I don't know.'."
    ),
    isolated=False,
)
def contains(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    if expected is None:
        raise ValueError("contains needs an expected output")
    needle = _as_text(expected).strip()
    if not needle:
        raise ValueError("contains needs a non-empty expected output")
    found = occurs_as_words(needle, _as_text(output))
    return {
        "score": 1.0 if found else 0.0,
        "reason": "found" if found else f"{needle[:60]!r} not found as whole words in the output",
    }


@register_scorer(
    "regex",
    name="Regex match",
    description="1 when the output matches the expected output read as a regular expression.",
    isolated=False,
)
def regex(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    if not isinstance(expected, str):
        raise ValueError("regex needs the expected output to be a pattern string")
    try:
        pattern = re2.compile(expected)
    except re2.error as exc:
        raise ValueError(
            f"pattern {expected[:200]!r} is not supported (RE2 syntax, no backreferences or lookaround): {exc}"
        ) from exc
    matched = pattern.search(_as_text(output)) is not None
    return {"score": 1.0 if matched else 0.0, "reason": "matched" if matched else "no match"}


@register_scorer(
    "factuality",
    name="Factuality (LLM judge)",
    description="autoevals Factuality: is the output consistent with the expected answer?",
    available=OPENAI_CONFIGURED,
)
async def factuality(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    return await _judge("Factuality", input=input, output=output, expected=_as_text(expected))


@register_scorer(
    "closed-qa",
    name="Closed QA (LLM judge)",
    description="autoevals ClosedQA: does the output answer the input per the expected criteria?",
    available=OPENAI_CONFIGURED,
)
async def closed_qa(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    return await _judge("ClosedQA", input=input, output=output, expected=None, criteria=expected)
