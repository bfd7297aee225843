"""Turn an uploaded CSV, JSON or JSONL file into items, all or nothing.

Parsing and validation happen before anything is written: a malformed file or
any invalid row raises ImportFileError listing every "row N: why", and a
valid file is written by `import_items` through `services.items_bulk_create`
(one dataset version).

Row numbers are what the user sees in their editor: for CSV the header is
row 1 and the first item row 2; for JSONL the line number; for JSON the
position of the entry in the list, counting from 1.

Files name an item's fields as the API and the exports do (`expectedOutput`),
and so do this module's entries and error messages; `import_items` hands the
services their own names.

CSV columns are mapped to item fields (`csv_items`), each column to one of:

* `input`, `expectedOutput`, `context`: the column is the whole field. Several
  columns mapped to one field make an object keyed by column name.
* `input.<key>`, `expectedOutput.<key>`, `context.<key>`: the column fills that
  key of an object built from every column mapped into the field
  (`question` → `input.question`, `lang` → `input.lang` gives
  `{"question": …, "lang": …}`). The key is everything after the first dot,
  taken as it is (one level: `input.a.b` is the key "a.b").
* `metadata`: the column is the item's metadata (JSON text or a string);
  `metadata.<key>` fills one key of it.
* `split`: the column names the item's split, as text ("2024" stays "2024").
* `ignore`.

Empty cells are absent, never null: an empty cell leaves its key out of the
object, an empty whole-field cell leaves the field out, and an object with no
key left is no field at all (an input with nothing in it is an error).

A dataset whose input schema is an object is filled with `input.<property>`
mappings: `guess_mappings` proposes them from the schema's properties (a column
named like a property), rather than the import wrapping a bare value behind
the user's back; a file mapped to the whole input when the schema wants an
object is refused with a hint naming the properties.
"""

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from . import jsonsafe, services
from .api.naming import wire_key
from .exceptions import InvalidInput
from .models import Dataset, DatasetItem

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_LISTED_ERRORS = 50
FORMATS = ("csv", "json", "jsonl")

MAPPING_CHOICES = [
    ("input", "Input"),
    ("expectedOutput", "Expected output"),
    ("context", "Context"),
    ("metadata", "Metadata"),
    ("split", "Split"),
    ("ignore", "Ignore"),
]
ITEM_FIELDS = ("input", "expectedOutput", "context", "metadata", "split")
# Fields a column fills whole, never key by key.
WHOLE_ONLY_FIELDS = ("split",)
FIELD_LABELS = dict(MAPPING_CHOICES)
IGNORE = "ignore"
# Keys an exported item carries besides its content; importing an export back ignores them.
EXPORT_ONLY_KEYS = {"id", "itemId", "datasetId", "version", "createdAt", "updatedAt"}

_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_COLUMN_GUESSES = {
    "input": {"input", "inputs", "question", "prompt", "query"},
    "expectedOutput": {"expectedoutput", "expected", "output", "answer", "reference", "target", "label"},
    "context": {"context", "contexts"},
    "metadata": {"metadata", "meta"},
    "split": {"split", "subset"},
}


class ImportFileError(Exception):
    """The file cannot be imported; `errors` lists every reason ("row 3: …")."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


def detect_format(filename: str) -> str | None:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return {"csv": "csv", "json": "json", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix)


def decode_upload(data: bytes) -> str:
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; imports are limited to "
            f"{MAX_IMPORT_BYTES // 1024 // 1024} MB. Split it into smaller files."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"The file is not UTF-8 text (byte {exc.start} cannot be decoded).") from exc
    if not text.strip():
        raise ImportFileError("The file is empty.")
    return text


def parse_mapping(value: str) -> tuple[str, str | None] | None:
    """The (item field, key) a mapping value names: `("input", None)` for the
    whole input, `("input", "question")` for `input.question`; None for
    `ignore`. Raises ValueError for anything else."""
    if value == IGNORE:
        return None
    field, dot, key = value.partition(".")
    if field not in ITEM_FIELDS:
        raise ValueError(
            f"unknown mapping {value!r}: use input, expectedOutput, context, metadata, split, ignore or <field>.<key>"
        )
    if dot and not key:
        raise ValueError(f"mapping {value!r} needs a key after the dot")
    if dot and field in WHOLE_ONLY_FIELDS:
        raise ValueError(f"mapping {value!r}: a column is the whole {field}, not one key of it")
    return field, (key if dot else None)


def mapping_field(value: str) -> str | None:
    """The item field a mapping value fills (`input` for `input` and `input.x`), None
    for `ignore` or a value that is no mapping."""
    try:
        parsed = parse_mapping(value)
    except ValueError:
        return None
    return parsed[0] if parsed else None


def schema_properties(schema: Any) -> list[str]:
    """The property names of an object JSON Schema (`properties`, then any other
    `required` name), in the schema's order; [] for anything else."""
    if not isinstance(schema, dict):
        return []
    properties = schema.get("properties")
    names = list(properties) if isinstance(properties, dict) else []
    required = schema.get("required")
    if isinstance(required, list):
        names += [name for name in required if isinstance(name, str) and name not in names]
    return [name for name in names if isinstance(name, str) and name]


def mapping_choices(column: str, *, input_schema: Any = None, output_schema: Any = None) -> list[tuple[str, str]]:
    """The (value, label) choices for one column: each whole field, each field's
    key named like the column, the schemas' properties as keys of the input and
    of the expected output, then ignore."""
    keys: dict[str, list[str]] = {
        "input": [*schema_properties(input_schema), column],
        "expectedOutput": [*schema_properties(output_schema), column],
        "context": [column],
        "metadata": [column],
        "split": [],
    }
    choices = [(field, FIELD_LABELS[field]) for field in ITEM_FIELDS]
    for field in ITEM_FIELDS:
        for key in dict.fromkeys(keys[field]):
            if key:
                choices.append((f"{field}.{key}", f"{FIELD_LABELS[field]} › {key}"))
    choices.append((IGNORE, FIELD_LABELS[IGNORE]))
    return choices


def _name_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def guess_mappings(columns: list[str], *, input_schema: Any = None, output_schema: Any = None) -> list[str]:
    """A first guess at each column's role.

    A column named like a property of the input schema (case, spaces and
    punctuation aside) fills that key, `input.<property>`; likewise for the
    output schema and `expectedOutput.<property>`. Other columns go by their
    name (`question` → input, `answer` → expected output). Without an
    input-like column the first unclaimed one is the input; and when the input
    schema is an object with a single property (or a single required one), a
    column guessed as the whole input fills that property instead.
    """
    input_props = {_name_key(p): p for p in reversed(schema_properties(input_schema))}
    output_props = {_name_key(p): p for p in reversed(schema_properties(output_schema))}
    guesses = []
    for column in columns:
        key = _name_key(column)
        if key and key in input_props:
            guesses.append(f"input.{input_props[key]}")
        elif key and key in output_props:
            guesses.append(f"expectedOutput.{output_props[key]}")
        else:
            letters = re.sub(r"[^a-z]", "", column.lower())
            guesses.append(next((field for field, names in _COLUMN_GUESSES.items() if letters in names), IGNORE))
    if not any(mapping_field(g) == "input" for g in guesses) and IGNORE in guesses:
        guesses[guesses.index(IGNORE)] = "input"
    single = _single_property(input_schema)
    if single and guesses.count("input") == 1 and not any(g.startswith("input.") for g in guesses):
        guesses[guesses.index("input")] = f"input.{single}"
    return guesses


def _single_property(schema: Any) -> str | None:
    """The one property an object schema has (or the one it requires), if so."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    listed = schema.get("required")
    required = [name for name in listed if isinstance(name, str)] if isinstance(listed, list) else []
    if len(required) == 1:
        return required[0]
    properties = schema_properties({"properties": schema.get("properties")})
    return properties[0] if len(properties) == 1 and not required else None


# ---- CSV ---------------------------------------------------------------------


def read_csv(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (row number, cells) of every non-blank row; raises on malformed CSV."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    errors: list[str] = []
    try:
        header = next(reader, None)
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise ImportFileError("The CSV file is malformed.", [f"row {reader.line_num}: {exc}"]) from exc
    if not header or all(not h.strip() for h in header):
        raise ImportFileError("The CSV file has no header row.", ["row 1: expected column names"])
    header = [h.strip() for h in header]
    if any(not h for h in header):
        errors.append("row 1: every column needs a name")
    duplicates = sorted({h for h in header if h and header.count(h) > 1})
    if duplicates:
        errors.append(f"row 1: duplicate column names {', '.join(duplicates)}")
    for row_number, cells in rows:
        if len(cells) != len(header):
            errors.append(f"row {row_number}: has {len(cells)} cells but the header has {len(header)} columns")
    if not rows:
        errors.append("the file has a header but no rows")
    if errors:
        raise ImportFileError("The CSV file is malformed.", errors[:MAX_LISTED_ERRORS])
    return header, rows


def parse_cell(cell: str, *, label: str) -> Any:
    """JSON objects, arrays and numbers become JSON values; anything else stays a string."""
    text = cell.strip()
    if not text:
        return None
    if text[0] in "{[" or _NUMBER.fullmatch(text):
        return jsonsafe.loads_checked(text, label=label)
    return cell


@dataclass(frozen=True)
class _FieldPlan:
    """How one item field is built from the columns: a whole column, or keys."""

    whole: int | None  # the one column that is the whole field
    keys: list[tuple[str, int]]  # (key, column index) of an object

    def columns(self) -> list[int]:
        return [self.whole] if self.whole is not None else [index for _, index in self.keys]


def check_mapping(header: list[str], mapping: dict[str, str]) -> list[str]:
    """What is wrong with a column mapping ({column: mapping value}), as messages; [] when it can be used."""
    return _plan(header, mapping)[1]


def _plan(header: list[str], mapping: dict[str, str]) -> tuple[dict[str, _FieldPlan], list[str]]:
    errors: list[str] = []
    whole: dict[str, list[int]] = {field: [] for field in ITEM_FIELDS}
    keyed: dict[str, list[tuple[str, int]]] = {field: [] for field in ITEM_FIELDS}
    for index, column in enumerate(header):
        try:
            parsed = parse_mapping(mapping.get(column, IGNORE))
        except ValueError as exc:
            errors.append(f"column {column}: {exc}")
            continue
        if parsed is None:
            continue
        field, key = parsed
        if key is None:
            whole[field].append(index)
        else:
            keyed[field].append((key, index))
    plans: dict[str, _FieldPlan] = {}
    for field in ITEM_FIELDS:
        if len(whole[field]) == 1 and not keyed[field]:
            plans[field] = _FieldPlan(whole[field][0], [])
            continue
        if field in WHOLE_ONLY_FIELDS and len(whole[field]) > 1:
            errors.append(f"columns {', '.join(header[i] for i in whole[field])} all fill the {field}; map one of them")
            continue
        if len(whole[field]) == 1:
            column, other = header[whole[field][0]], header[keyed[field][0][1]]
            errors.append(
                f"column {column} is the whole {field}, so column {other} cannot fill {field}.{keyed[field][0][0]}; "
                f"map {column} to {field}.<key> too"
            )
            continue
        # Several whole columns: an object keyed by column name, with any keyed columns.
        keys = [(header[i], i) for i in whole[field]] + keyed[field]
        by_key: dict[str, list[str]] = {}
        for key, index in keys:
            by_key.setdefault(key, []).append(header[index])
        errors.extend(
            f"columns {', '.join(columns)} all fill {field}.{key}; map one of them elsewhere"
            for key, columns in by_key.items()
            if len(columns) > 1
        )
        if keys:
            plans[field] = _FieldPlan(None, keys)
    if not whole["input"] and not keyed["input"]:
        errors.append("Map at least one column to the input.")
    return plans, errors


def csv_items(text: str, mapping: dict[str, str]) -> list[tuple[int, dict]]:
    """Items built from the CSV with `mapping` ({column: mapping value}, see the
    module docstring). Empty cells are absent: no key, no field, never null."""
    header, rows = read_csv(text)
    plans, mapping_errors = _plan(header, mapping)
    if mapping_errors:
        raise ImportFileError(mapping_errors[0], mapping_errors)
    items: list[tuple[int, dict]] = []
    errors: list[str] = []
    for row_number, cells in rows:
        entry: dict[str, Any] = {}
        row_errors: list[str] = []
        for field, plan in plans.items():
            if field == "split" and plan.whole is not None:
                if cells[plan.whole].strip():  # the cell as text: a split named "2024" is no number
                    entry[field] = cells[plan.whole].strip()
                continue
            if plan.whole is not None:
                value = _cell_value(header, cells, plan.whole, row_number, row_errors)
                if value is not None:
                    entry[field] = value
                continue
            values = {
                key: value
                for key, index in plan.keys
                if (value := _cell_value(header, cells, index, row_number, row_errors)) is not None
            }
            if values:
                entry[field] = values
        if all(not cells[index].strip() for index in plans["input"].columns()):
            row_errors.append(f"row {row_number}: the input is empty")
        errors.extend(row_errors)
        items.append((row_number, entry))
    if errors:
        raise ImportFileError("Some rows cannot be imported.", errors[:MAX_LISTED_ERRORS])
    return items


def _cell_value(header: list[str], cells: list[str], index: int, row_number: int, errors: list[str]) -> Any:
    """The cell's value; None when it is empty, or invalid (its error added to `errors`)."""
    try:
        return parse_cell(cells[index], label=f"row {row_number}: column {header[index]}")
    except json.JSONDecodeError as exc:
        errors.append(f"row {row_number}: column {header[index]} is not valid JSON ({exc.msg})")
    except jsonsafe.UnsafeJSON as exc:
        errors.append(str(exc))
    return None


# ---- JSON and JSONL --------------------------------------------------------------


def _check_entry(entry: Any, where: str) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: expected an object with an input, got {type(entry).__name__}"]
    errors = []
    if "input" not in entry:
        errors.append(f"{where}: the input is missing")
    unknown = sorted(set(entry) - set(ITEM_FIELDS) - EXPORT_ONLY_KEYS)
    if unknown:
        errors.append(f"{where}: unknown field {', '.join(unknown)} (expected {', '.join(ITEM_FIELDS)})")
    return errors


def json_items(text: str) -> list[tuple[int, dict]]:
    try:
        # NaN, Infinity and lone surrogates are refused row by row in `parse_items`.
        data = jsonsafe.loads_depth_checked(text, label="The file")
    except json.JSONDecodeError as exc:
        raise ImportFileError("The file is not valid JSON.", [f"line {exc.lineno}: {exc.msg}"]) from exc
    except jsonsafe.UnsafeJSON as exc:
        raise ImportFileError("The file cannot be imported.", [str(exc)]) from exc
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise ImportFileError('Expected a list of items or {"items": [...]}.')
    if not data:
        raise ImportFileError("The file holds no items.")
    errors = [e for n, entry in enumerate(data, start=1) for e in _check_entry(entry, f"row {n}")]
    if errors:
        raise ImportFileError("Some rows cannot be imported.", errors[:MAX_LISTED_ERRORS])
    return [(n, _item(entry)) for n, entry in enumerate(data, start=1)]


def jsonl_items(text: str) -> list[tuple[int, dict]]:
    items: list[tuple[int, dict]] = []
    errors: list[str] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = jsonsafe.loads_checked(line, label=f"row {line_number}")
        except json.JSONDecodeError as exc:
            errors.append(f"row {line_number}: not valid JSON ({exc.msg})")
            continue
        except jsonsafe.UnsafeJSON as exc:
            errors.append(str(exc))
            continue
        entry_errors = _check_entry(entry, f"row {line_number}")
        errors.extend(entry_errors)
        if not entry_errors:
            items.append((line_number, _item(entry)))
    if errors:
        raise ImportFileError("Some rows cannot be imported.", errors[:MAX_LISTED_ERRORS])
    if not items:
        raise ImportFileError("The file holds no items.")
    return items


def _item(entry: dict) -> dict:
    return {field: entry[field] for field in ITEM_FIELDS if field in entry}


# ---- the whole import --------------------------------------------------------------


def parse_items(text: str, fmt: str, mapping: dict[str, str] | None = None) -> list[tuple[int, dict]]:
    if fmt == "csv":
        items = csv_items(text, mapping or {})
    elif fmt == "json":
        items = json_items(text)
    elif fmt == "jsonl":
        items = jsonl_items(text)
    else:
        raise ImportFileError(f"Unknown format {fmt!r}; use CSV, JSON or JSONL.")
    errors = _unstorable(items)
    if errors:
        raise ImportFileError("Some rows cannot be imported.", errors[:MAX_LISTED_ERRORS])
    return items


def _unstorable(items: list[tuple[int, dict]]) -> list[str]:
    """Each item field the JSON gate refuses: the gate on what will be stored, so it also
    covers what a format builds (CSV columns joined into an object nest one level deeper)."""
    errors = []
    for row_number, entry in items:
        for field, value in entry.items():
            try:
                jsonsafe.check_json(value, label=f"row {row_number}: {field}")
            except jsonsafe.UnsafeJSON as exc:
                errors.append(str(exc))
    return errors


def validate_items(*, dataset: Dataset, items: list[tuple[int, dict]]) -> None:
    """Check every row against the dataset's JSON Schemas; raise listing each failing row."""
    errors: list[str] = []
    for row_number, entry in items:
        try:
            services.validate_item_against_schemas(
                dataset=dataset, input=entry.get("input"), expected_output=entry.get("expectedOutput")
            )
            services.clean_split(entry.get("split"))
        except InvalidInput as exc:
            for path, messages in exc.errors.items():
                errors.extend(f"row {row_number}: {wire_key(path)}: {message}" for message in messages)
    if errors:
        message = "Some rows do not match the dataset's schema."
        properties = schema_properties(dataset.input_schema)
        wants_object = isinstance(dataset.input_schema, dict) and dataset.input_schema.get("type") == "object"
        if wants_object and properties and any(not isinstance(entry.get("input"), dict) for _, entry in items):
            keys = ", ".join(f"input.{name}" for name in properties)
            message += f" The input schema expects an object: map the columns to {keys}."
        raise ImportFileError(message, errors[:MAX_LISTED_ERRORS])


def prepare_import(*, dataset: Dataset, text: str, fmt: str, mapping: dict[str, str] | None = None) -> list[dict]:
    """The items a file would add, fully validated; nothing is written."""
    items = parse_items(text, fmt, mapping)
    validate_items(dataset=dataset, items=items)
    return [entry for _, entry in items]


def import_items(*, dataset: Dataset, text: str, fmt: str, mapping: dict[str, str] | None = None) -> list[DatasetItem]:
    """Validate the whole file, then add its items as one dataset version."""
    items = prepare_import(dataset=dataset, text=text, fmt=fmt, mapping=mapping)
    new_items: list[services.NewItem] = []
    for entry in items:
        new_item: services.NewItem = {"input": entry["input"]}  # absent fields stay absent (null in storage)
        if "expectedOutput" in entry:
            new_item["expected_output"] = entry["expectedOutput"]
        if "context" in entry:
            new_item["context"] = entry["context"]
        if "metadata" in entry:
            new_item["metadata"] = entry["metadata"]
        if "split" in entry:
            new_item["split"] = entry["split"]
        new_items.append(new_item)
    try:
        return services.items_bulk_create(dataset=dataset, items=new_items)
    except InvalidInput as exc:
        raise ImportFileError(exc.message, [f"{wire_key(k)}: {'; '.join(v)}" for k, v in exc.errors.items()]) from exc
