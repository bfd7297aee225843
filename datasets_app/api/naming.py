"""The API's names for our fields: camelCase where the domain says snake_case.

Serializers name each field themselves (`source=`); what is left is the keys
of a service's errors (`items/0/expected_output/answer`), renamed by
`wire_key` where they leave through the API (`errors.py`) or are shown about
an import file, which names fields as the API does (`importers.py`).
"""

# Fields holding user JSON: what follows them in an error key is a path inside
# the user's own document, whose names are never re-cased.
USER_JSON_FIELDS = {"input", "expected_output", "context", "metadata", "output", "input_schema", "output_schema"}


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def wire_key(key: str) -> str:
    """A service error key in the API's names: `items/0/expected_output/user_name`
    → `items/0/expectedOutput/user_name`."""
    segments = key.split("/")
    for index, segment in enumerate(segments):
        segments[index] = camel_case(segment)
        if segment in USER_JSON_FIELDS:
            break
    return "/".join(segments)
