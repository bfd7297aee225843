"""Reading query and form parameters that visitors can type anything into:
a value that does not parse is treated as absent, never as an error page."""

import math
import uuid
from collections.abc import Iterable


def valid_uuids(values: Iterable[str]) -> list[str]:
    """The values that are UUIDs, in their canonical form, in order."""
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return valid


def page_number(value: str | None) -> int:
    """A 1-based page number; 1 for anything else."""
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def finite_float(value: str | None) -> float | None:
    try:
        number = float(value or "")
    except ValueError:
        return None
    return number if math.isfinite(number) else None
