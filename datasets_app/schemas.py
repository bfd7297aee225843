"""JSON Schema validation whose regular expressions run on RE2, in linear time.

jsonschema matches `pattern` and `patternProperties` with Python's `re`, which
backtracks: `^(a+)+$` against thirty "a" and a "!" takes seconds, and a
dataset's schemas are applied to every item written. These validator classes
match them with RE2 (`re.search` semantics: a match anywhere), and so the
`additionalProperties` that depends on `patternProperties`, and the `regex`
format with which a schema itself is checked. RE2 has no backreferences or
lookaround: a schema using them is refused when it is saved (`problem`).
`unevaluatedProperties` matches `patternProperties` keys too, with `re` and
deep inside jsonschema, so the two together are refused as well.

Applying a schema is bounded too: `$ref`s let a schema of a few hundred bytes
apply its parts to an item exponentially often (an `anyOf` or `allOf` of two
`$ref`s to the next such level, thirty levels deep, is a billion applications,
and with `allOf` as many errors held in memory). Every keyword applied is a
step (a `$ref` four: it costs about that much more), and a write whose items
take more than MAX_STEPS, or a value with more than MAX_ERRORS errors (which
such a schema piles up in memory), is refused as one the schema cannot be
applied to.

Importing this module registers the classes as jsonschema's validators for
their dialects: anywhere in the process, `jsonschema.validators.validator_for`
answers with them for a schema that names its `$schema`.
"""

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import jsonschema
import re2
import referencing
from jsonschema.exceptions import ValidationError

from . import jsonsafe

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the user's to fix, reported to them, not logged


def _compile(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)  # cached by re2


def _matches(pattern: str, text: str) -> bool:
    return _compile(pattern).search(text) is not None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [key for key in instance if key not in properties and not any(_matches(p, key) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        # jsonschema's own messages
        listed = ", ".join(repr(extra) for extra in sorted(extras))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            regexes = ", ".join(repr(pattern) for pattern in sorted(patterns))
            yield ValidationError(f"{listed} {verb} not match any of the regexes: {regexes}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


FORMAT_CHECKER = copy.deepcopy(jsonschema.Draft202012Validator.FORMAT_CHECKER)


@FORMAT_CHECKER.checks("regex", raises=re2.error)
def _is_regex(instance: object) -> bool:
    return not isinstance(instance, str) or bool(_compile(instance))


_DIALECTS = [
    jsonschema.Draft3Validator,
    jsonschema.Draft4Validator,
    jsonschema.Draft6Validator,
    jsonschema.Draft7Validator,
    jsonschema.Draft201909Validator,
    jsonschema.Draft202012Validator,
]
# Each class is registered (`version=`) for its dialect's `$schema` URI, in
# place of jsonschema's own: jsonschema picks the class again for every
# subschema that names a `$schema` (and a `$ref` to the root names it), and
# an unregistered class would hand those back to the `re` one.
# Steps for one write (`work_budget`): a body within the size limit takes at
# most about two million with a schema that does not multiply its work (a 5 MB
# list of small objects, a few steps per value; 15-30 µs a step here).
MAX_STEPS = 2_000_000
REFERENCE_STEPS = 4
_REFERENCES = {"$ref", "$dynamicRef", "$recursiveRef"}
# Errors found in one value: a multiplying `anyOf`/`allOf` keeps every error of
# every branch, hundreds of bytes each; this bounds the memory one value takes.
MAX_ERRORS = 50_000


class _Budget:
    def __init__(self, steps: int) -> None:
        self.steps_left = steps
        self.errors_left = MAX_ERRORS


class _OutOfSteps(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Set by `work_budget` only: checking a schema itself (`problem`) is bounded by its size.
_budget: ContextVar[_Budget | None] = ContextVar("schema_budget", default=None)


@contextmanager
def work_budget() -> Iterator[None]:
    """MAX_STEPS for every `iter_errors` inside (all the items of one write), or
    the budget of an enclosing `work_budget`."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set(_Budget(MAX_STEPS))
    try:
        yield
    finally:
        _budget.reset(token)


def _counted(name: str, keyword: Callable[..., Any]) -> Callable[..., Any]:
    """The keyword's function, spending the budget's steps each time it is
    applied, and its errors for each error it finds."""
    cost = REFERENCE_STEPS if name in _REFERENCES else 1

    def apply(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        budget = _budget.get()
        if budget is None:
            return keyword(validator, value, instance, schema)
        budget.steps_left -= cost
        if budget.steps_left < 0:
            raise _OutOfSteps(f"applying it takes more than {MAX_STEPS:,} steps")
        errors = keyword(validator, value, instance, schema)
        return None if errors is None else _counting(errors, budget)

    return apply


def _counting(errors: Any, budget: _Budget) -> Iterator[ValidationError]:
    for error in errors:
        budget.errors_left -= 1
        if budget.errors_left < 0:
            raise _OutOfSteps(f"applying it finds more than {MAX_ERRORS:,} errors")
        yield error


_RE2_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}
_RE2_VALIDATORS = {
    base: jsonschema.validators.extend(
        base,
        {name: _counted(name, keyword) for name, keyword in {**base.VALIDATORS, **_RE2_KEYWORDS}.items()},
        version=f"{base.__name__.removesuffix('Validator')} RE2",
        format_checker=FORMAT_CHECKER,
    )
    for base in _DIALECTS
}
DEFAULT_VALIDATOR = _RE2_VALIDATORS[jsonschema.Draft202012Validator]
# No remote `$ref`: jsonschema would otherwise fetch any URL a schema names.
_LOCAL_REFERENCES_ONLY = referencing.Registry()


class NotApplicable(Exception):
    """A schema that passed `problem` but cannot be applied: a `$ref` that resolves to
    nothing or refers back to itself without end, a pattern RE2 refuses where the
    schema's check does not look (draft 4 patternProperties keys, schemas saved
    before patterns ran on RE2), or more than MAX_STEPS of work for the write
    or MAX_ERRORS errors in one value."""


def validator_class(schema: Any) -> type[jsonschema.protocols.Validator]:
    """The RE2 validator class for the schema's `$schema` (2020-12 when absent or unknown)."""
    return jsonschema.validators.validator_for(schema, default=DEFAULT_VALIDATOR)


def iter_errors(schema: Any, instance: Any) -> list[ValidationError]:
    """Every way `instance` breaks `schema`, matched with RE2, resolving local `$ref`s
    only, within the write's `work_budget` (its own when there is none)."""
    try:
        with work_budget():
            budget = _budget.get()
            assert budget is not None
            budget.errors_left = MAX_ERRORS
            return list(validator_class(schema)(schema, registry=_LOCAL_REFERENCES_ONLY).iter_errors(instance))
    except _OutOfSteps as exc:
        raise NotApplicable(f"{exc.reason} (do its $refs multiply the work?)") from None
    except referencing.exceptions.Unresolvable as exc:
        raise NotApplicable(f"cannot resolve $ref {exc.ref!r}") from exc
    except RecursionError as exc:
        raise NotApplicable("a $ref refers back to itself without end") from exc
    except re2.error as exc:
        raise NotApplicable(f"a pattern is not supported by RE2: {_reason(exc)}") from exc


def problem(schema: Any) -> str | None:
    """Why `schema` cannot be used as a JSON Schema here, or None."""
    if not isinstance(schema, (dict, bool)):
        return f"must be a JSON Schema (an object or a boolean), not {type(schema).__name__}"
    if isinstance(schema, dict) and not isinstance(schema.get("$schema", ""), str):
        return "$schema must be a string"
    try:
        validator_class(schema).check_schema(schema)  # type: ignore[arg-type]  # a boolean is a JSON Schema too
    except jsonschema.SchemaError as exc:
        refused = _refused_pattern(exc)
        if refused:
            return (
                f"the pattern {refused.instance!r} is not supported: it is invalid or uses a feature "
                f"RE2 does not support (backreferences/lookaround): {_reason(refused.cause)}"
            )
        return exc.message
    keys = _keys(schema)
    if "unevaluatedProperties" in keys and "patternProperties" in keys:
        return "patternProperties cannot be used together with unevaluatedProperties"
    return None


def _refused_pattern(error: jsonschema.SchemaError) -> ValidationError | jsonschema.SchemaError | None:
    """The `regex` format error behind `error`, which may sit in the context of an anyOf
    (draft 7's `items` is a schema or a list of them)."""
    stack: list[ValidationError | jsonschema.SchemaError] = [error]
    while stack:
        found = stack.pop()
        if found.validator == "format" and found.validator_value == "regex":
            return found
        stack.extend(found.context)
    return None


def _reason(error: BaseException | None) -> str:
    reason = error.args[0] if error and error.args else ""
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def _keys(schema: Any) -> set[str]:
    """Every object key anywhere in the schema (keywords, and property names too)."""
    return {key for node in jsonsafe.walk(schema) if isinstance(node, dict) for key in node}
