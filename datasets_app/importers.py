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
"""

import csv
import io
import json
import re
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
    ("ignore", "Ignore"),
]
ITEM_FIELDS = ("input", "expectedOutput", "context")
# Keys an exported item carries besides its content; importing an export back ignores them.
EXPORT_ONLY_KEYS = {"id", "itemId", "datasetId", "version", "createdAt", "updatedAt", "metadata"}

_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_COLUMN_GUESSES = {
    "input": {"input", "inputs", "question", "prompt", "query"},
    "expectedOutput": {"expectedoutput", "expected", "output", "answer", "reference", "target", "label"},
    "context": {"context", "contexts"},
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


def guess_mappings(columns: list[str]) -> list[str]:
    """A first guess at each column's role from its name; without an input-like name the first
    unclaimed column is the input."""
    guesses = []
    for column in columns:
        key = re.sub(r"[^a-z]", "", column.lower())
        guesses.append(next((field for field, names in _COLUMN_GUESSES.items() if key in names), "ignore"))
    if "input" not in guesses and "ignore" in guesses:
        guesses[guesses.index("ignore")] = "input"
    return guesses


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


def csv_items(text: str, mapping: dict[str, str]) -> list[tuple[int, dict]]:
    """Items built from the CSV with `mapping` ({column: "input" | "expectedOutput" | "context" | "ignore"}).

    Several columns mapped to the same field make an object keyed by column name.
    """
    header, rows = read_csv(text)
    by_field = {field: [i for i, col in enumerate(header) if mapping.get(col) == field] for field in ITEM_FIELDS}
    if not by_field["input"]:
        raise ImportFileError("Map at least one column to the input.")
    items: list[tuple[int, dict]] = []
    errors: list[str] = []
    for row_number, cells in rows:
        entry: dict[str, Any] = {}
        row_errors = []
        for field, indexes in by_field.items():
            if not indexes:
                continue
            values = {}
            for i in indexes:
                try:
                    values[header[i]] = parse_cell(cells[i], label=f"row {row_number}: column {header[i]}")
                except json.JSONDecodeError as exc:
                    row_errors.append(f"row {row_number}: column {header[i]} is not valid JSON ({exc.msg})")
                except jsonsafe.UnsafeJSON as exc:
                    row_errors.append(str(exc))
            entry[field] = values.get(header[indexes[0]]) if len(indexes) == 1 else values
        input_cells = [cells[i] for i in by_field["input"]]
        if all(not cell.strip() for cell in input_cells):
            row_errors.append(f"row {row_number}: the input is empty")
        errors.extend(row_errors)
        items.append((row_number, entry))
    if errors:
        raise ImportFileError("Some rows cannot be imported.", errors[:MAX_LISTED_ERRORS])
    return items


# ---- JSON and JSONL --------------------------------------------------------------


def _check_entry(entry: Any, where: str) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: expected an object with an input, got {type(entry).__name__}"]
    errors = []
    if "input" not in entry:
        errors.append(f"{where}: the input is missing")
    unknown = sorted(set(entry) - set(ITEM_FIELDS) - EXPORT_ONLY_KEYS)
    if unknown:
        errors.append(f"{where}: unknown field {', '.join(unknown)} (expected input, expectedOutput, context)")
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
        except InvalidInput as exc:
            for path, messages in exc.errors.items():
                errors.extend(f"row {row_number}: {wire_key(path)}: {message}" for message in messages)
    if errors:
        raise ImportFileError("Some rows do not match the dataset's schema.", errors[:MAX_LISTED_ERRORS])


def prepare_import(*, dataset: Dataset, text: str, fmt: str, mapping: dict[str, str] | None = None) -> list[dict]:
    """The items a file would add, fully validated; nothing is written."""
    items = parse_items(text, fmt, mapping)
    validate_items(dataset=dataset, items=items)
    return [entry for _, entry in items]


def import_items(*, dataset: Dataset, text: str, fmt: str, mapping: dict[str, str] | None = None) -> list[DatasetItem]:
    """Validate the whole file, then add its items as one dataset version."""
    items = prepare_import(dataset=dataset, text=text, fmt=fmt, mapping=mapping)
    new_items: list[services.NewItem] = [
        {"input": entry["input"], "expected_output": entry.get("expectedOutput"), "context": entry.get("context")}
        for entry in items
    ]
    try:
        return services.items_bulk_create(dataset=dataset, items=new_items)
    except InvalidInput as exc:
        raise ImportFileError(exc.message, [f"{wire_key(k)}: {'; '.join(v)}" for k, v in exc.errors.items()]) from exc
