"""Growing datasets from what runs showed: results turned into items, and
items (or reviewed results) written out for fine-tuning.
"""

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal
from uuid import UUID

from . import jsonsafe, services
from .exceptions import InvalidInput
from .models import Dataset, DatasetItem, DatasetItemVersion, DatasetRun

MAX_RESULTS_PER_CALL = 1000
ExpectedFrom = Literal["output", "expected"]
EXPECTED_FROM: tuple[ExpectedFrom, ...] = ("output", "expected")


def items_from_results(
    *,
    dataset: Dataset,
    run: DatasetRun,
    result_ids: Iterable[UUID | str],
    expected_from: str = "output",
    split: str | None = None,
) -> list[DatasetItem]:
    """Add one item per chosen result of `run` to `dataset`, as one dataset version.

    Each item gets the result's input, the item's context as the run saw it, and
    as expected output the result's output (`expected_from="output"`: "this answer
    was right") or the item's expected output (`"expected"`). Its metadata says
    where it came from (`source`: run, result, dataset, item). The run may belong
    to another dataset of the same project; the caller checked that the user
    may read it.
    """
    errors: dict[str, list[str]] = {}
    if run.dataset.project_id != dataset.project_id:
        errors["runId"] = ["The run belongs to another project; items can come only from runs of this project."]
    if expected_from not in EXPECTED_FROM:
        errors["expectedFrom"] = [f"Must be one of: {', '.join(EXPECTED_FROM)}."]
    ids = _uuids(result_ids, errors)
    if errors:
        raise InvalidInput(f"Cannot add these results: {next(iter(errors.values()))[0]}", errors)
    results = {r.pk: r for r in run.results.filter(pk__in=ids)}
    missing = [str(i) for i in ids if i not in results]
    if missing:
        message = f"Not results of this run: {', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}."
        raise InvalidInput(f"Cannot add these results: {message}", {"resultIds": [message]})
    contexts = _contexts_as_run(results.values())
    new_items: list[services.NewItem] = []
    for result_id in ids:
        result = results[result_id]
        new_items.append(
            {
                "input": result.input,
                "expected_output": result.output if expected_from == "output" else result.expected_output,
                "context": contexts.get((result.item_id, result.item_version)),
                "metadata": {
                    "source": {
                        "runId": str(run.pk),
                        "resultId": str(result.pk),
                        "datasetId": str(run.dataset_id),
                        "itemId": str(result.item_id),
                        "expectedFrom": expected_from,
                    }
                },
                "split": split,
            }
        )
    return services.items_bulk_create(dataset=dataset, items=new_items)


def _uuids(values: Iterable[UUID | str], errors: dict[str, list[str]]) -> list[UUID]:
    """Distinct result ids in the order given (1 to MAX_RESULTS_PER_CALL)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        errors["resultIds"] = ["Must be a list of result ids."]
        return []
    ids: list[UUID] = []
    for value in values:
        try:
            ids.append(value if isinstance(value, UUID) else UUID(str(value)))
        except ValueError:
            errors["resultIds"] = [f"Not a result id: {str(value)[:40]!r}."]
            return []
    ids = list(dict.fromkeys(ids))
    if not ids:
        errors["resultIds"] = ["Choose at least one result."]
    elif len(ids) > MAX_RESULTS_PER_CALL:
        errors["resultIds"] = [f"At most {MAX_RESULTS_PER_CALL} results at a time."]
    return ids


def _contexts_as_run(results: Iterable[Any]) -> dict[tuple[UUID, int], Any]:
    """The context of each result's item at the item version the run executed."""
    wanted = {(r.item_id, r.item_version) for r in results}
    rows = DatasetItemVersion.objects.filter(item_id__in={item for item, _ in wanted}).values_list(
        "item_id", "version_number", "snapshot"
    )
    return {(item, number): snapshot.get("context") for item, number, snapshot in rows if (item, number) in wanted}


# ---- fine-tuning export --------------------------------------------------------

# Input keys read as the user's message when the input is an object with one of them.
PROMPT_KEYS = ("messages", "prompt", "question", "query", "input", "text")


def chat_example(input: Any, answer: Any) -> dict[str, Any] | None:
    """One line of OpenAI chat fine-tuning JSONL: `{"messages": [...]}` ending in
    the assistant's answer; None when there is no answer to learn.

    The user turn is the input: a string as is; an object's `messages` list (kept,
    with its system turn), or its one prompt-like string field; anything else as
    compact JSON. A string answer is the assistant's content as is; any other
    answer is its compact JSON.
    """
    if answer is None or answer == "":
        return None
    messages: list[dict[str, Any]]
    if isinstance(input, dict) and _is_chat(input.get("messages")):
        messages = [{"role": m["role"], "content": m["content"]} for m in input["messages"]]
        if messages and messages[-1]["role"] == "assistant":
            messages = messages[:-1]
    else:
        if isinstance(input, dict) and isinstance(input.get("system"), str):
            messages = [{"role": "system", "content": input["system"]}]
        else:
            messages = []
        messages.append({"role": "user", "content": _prompt_text(input)})
    messages.append({"role": "assistant", "content": answer if isinstance(answer, str) else jsonsafe.encode(answer)})
    return {"messages": messages}


def _is_chat(messages: Any) -> bool:
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        )
    )


def _prompt_text(input: Any) -> str:
    if isinstance(input, str):
        return input
    if isinstance(input, dict):
        for key in PROMPT_KEYS[1:]:
            if isinstance(input.get(key), str):
                return input[key]
    return jsonsafe.encode(input)


def finetune_lines(pairs: Iterable[tuple[Any, Any]]) -> Iterator[str]:
    """JSONL lines (newline-terminated) for (input, answer) pairs; pairs without an
    answer are left out."""
    for input, answer in pairs:
        example = chat_example(input, answer)
        if example is not None:
            yield json.dumps(example, ensure_ascii=False) + "\n"
