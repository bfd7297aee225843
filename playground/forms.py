"""Forms of the browser pages. They parse and check HTTP input; the writes
themselves go through `datasets_app.services`. The dataset and item forms'
fields are named as the services' keywords, so `cleaned_data` is the call's
keywords and a service error's key names the field it belongs to."""

import json
from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.utils.html import escape

from datasets_app import annotations, importers, jsonsafe, services
from datasets_app.exceptions import InvalidInput, PlaygroundError
from datasets_app.models import Dataset, DatasetItem
from datasets_app.runs import registry

JSON_TEXTAREA = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code"})


class JSONTextField(forms.CharField):
    """A textarea holding JSON text; cleans to the parsed value (blank → None), refusing
    JSON that could not be stored (`jsonsafe`)."""

    widget = JSON_TEXTAREA

    def __init__(self, *, required: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("strip", True)
        super().__init__(required=required, **kwargs)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if text is None or text in self.empty_values:
            if self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return None
        try:
            return jsonsafe.loads_checked(text, label="This value")
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                "Not valid JSON: %(why)s (line %(line)s, column %(column)s). "
                'Write text in double quotes, e.g. "Paris".',
                params={"why": exc.msg, "line": exc.lineno, "column": exc.colno},
                code="invalid_json",
            ) from exc
        except jsonsafe.UnsafeJSON as exc:
            raise forms.ValidationError(str(exc), code="unsafe_json") from exc

    def validate(self, value: Any) -> None:
        # Blank text was handled in to_python; {} , [] and null are values, not "empty".
        pass


def json_text(value: Any) -> str:
    """A stored JSON value as the text a JSONTextField shows (None → blank)."""
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


class ServiceForm(forms.Form):
    """A form whose fields are a service's keywords."""

    def save_with[T](self, service: Callable[..., T], **fixed: Any) -> T | None:
        """`service(**fixed, **cleaned_data)` when the form is valid; None when the
        form or the service refused, with the reasons on the form."""
        if not self.is_valid():
            return None
        try:
            return service(**fixed, **self.cleaned_data)
        except PlaygroundError as exc:
            self.add_service_errors(exc)
            return None

    def add_service_errors(self, exc: PlaygroundError) -> None:
        """Attach a service error's `errors` ({"input_schema": [...], "input/city": [...]})
        to the fields they name; the rest to the form."""
        if not exc.errors:
            self.add_error(None, exc.message)
            return
        for key, messages in exc.errors.items():
            field, _, path = key.partition("/")
            for message in messages:
                self.add_error(field if field in self.fields else None, f"at {path}: {message}" if path else message)


class DatasetForm(ServiceForm):
    name = forms.CharField(max_length=255)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    input_schema = JSONTextField(label="Input JSON Schema", help_text="Optional. Every item's input must match it.")
    output_schema = JSONTextField(
        label="Expected output JSON Schema", help_text="Optional. Every expected output must match it."
    )
    # Parsed to the service's `annotation_config`; left out of cleaned_data when the page
    # has no such field (the "New dataset" form), so the default / current labels stay.
    annotation_config = forms.CharField(
        label="Review labels",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "code"}),
        help_text=(
            "What reviewers grade results with: one annotation name per line, then its labels "
            "separated by “|”, e.g. <code>human: good | bad | unsure</code>. Renaming or removing "
            "a name keeps the annotations already given under it."
        ),
    )

    @classmethod
    def for_dataset(cls, dataset: Dataset, data: Any = None) -> "DatasetForm":
        return cls(
            data,
            initial={
                "name": dataset.name,
                "description": dataset.description,
                "input_schema": json_text(dataset.input_schema),
                "output_schema": json_text(dataset.output_schema),
                "annotation_config": annotations.config_text(dataset.annotation_config or []),
            },
        )

    def clean_annotation_config(self) -> Any:
        text = self.cleaned_data.get("annotation_config") or ""
        if "annotation_config" not in self.data:
            return None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        try:
            return annotations.parse_config_text(text)
        except InvalidInput as exc:
            raise forms.ValidationError(_config_errors(exc, lines)) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "annotation_config" not in self.data:
            cleaned.pop("annotation_config", None)
        return cleaned


def _config_errors(exc: InvalidInput, lines: list[str]) -> list[str]:
    """The review labels' errors, each naming the line it is about (`annotation_config/1/name` → line 2's text)."""
    errors = []
    for key, messages in (exc.errors or {"": [exc.message]}).items():
        parts = key.split("/")
        index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        where = f"Line “{lines[index]}”: " if index is not None and index < len(lines) else ""
        errors += [f"{where}{message}" for message in messages]
    return errors


class ItemForm(ServiceForm):
    input = JSONTextField(required=True, help_text='JSON, e.g. {"question": "…"} or "a string".')
    expected_output = JSONTextField(label="Expected output", help_text="Optional JSON.")
    context = JSONTextField(help_text="Optional JSON.")
    metadata = JSONTextField(help_text="Optional JSON: your notes on the item (where it came from, tags…).")
    split = forms.CharField(
        required=False,
        max_length=services.MAX_SPLIT_LENGTH,
        # The page's <datalist id="split-names"> offers the dataset's split names.
        widget=forms.TextInput(attrs={"list": "split-names", "autocomplete": "off"}),
        help_text="Optional, e.g. train, test or hard-cases. A run can be started on one split.",
    )

    @classmethod
    def for_item(cls, item: DatasetItem, data: Any = None) -> "ItemForm":
        # Ids unique per item: several rows can be in edit mode at once next to the add form.
        return cls(
            data,
            auto_id=f"id_item_{item.pk.hex[:12]}_%s",
            initial={
                "input": json_text(item.input),
                "expected_output": json_text(item.expected_output),
                "context": json_text(item.context),
                "metadata": json_text(item.metadata),
                "split": item.split or "",
            },
        )

    def focus_first_field(self) -> None:
        """Mark the first field with an error (else the first field) `autofocus`, so the
        form, swapped in by htmx or shown as a page, takes the keyboard focus there."""
        names = [name for name in self.fields if self.is_bound and self.errors.get(name)] or list(self.fields)
        self.fields[names[0]].widget.attrs["autofocus"] = True


class ImportUploadForm(forms.Form):
    FORMAT_CHOICES = [
        ("", "Detect from the file name"),
        ("csv", "CSV"),
        ("json", "JSON"),
        ("jsonl", "JSON Lines"),
    ]

    file = forms.FileField(help_text="CSV, JSON or JSONL, at most 5 MB.")
    format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False)


class CsvMappingForm(forms.Form):
    """One select per CSV column: which part of the item the column fills, the whole
    input (expected output, context) or one key of it (`input.question`), offered
    and first guessed from the dataset's JSON Schemas (`importers.mapping_choices`,
    `importers.guess_mappings`)."""

    def __init__(self, *args: Any, columns: list[str], dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.columns = columns
        schemas = {"input_schema": dataset.input_schema, "output_schema": dataset.output_schema}
        guesses = importers.guess_mappings(columns, **schemas)
        for index, (column, guess) in enumerate(zip(columns, guesses, strict=True)):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=column, choices=importers.mapping_choices(column, **schemas), initial=guess
            )

    def bound_columns(self) -> list[tuple[str, forms.BoundField]]:
        return [(column, self[f"col_{index}"]) for index, column in enumerate(self.columns)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if all(f"col_{i}" in cleaned for i in range(len(self.columns))):
            mapping = {column: cleaned[f"col_{i}"] for i, column in enumerate(self.columns)}
            errors = importers.check_mapping(self.columns, mapping)
            if errors:
                raise forms.ValidationError(errors)
        return cleaned

    def mapping(self) -> dict[str, str]:
        return {column: self.cleaned_data[f"col_{i}"] for i, column in enumerate(self.columns)}


class CopyItemsForm(forms.Form):
    target = forms.ModelChoiceField(queryset=Dataset.objects.none(), label="Copy to", empty_label="Choose a dataset")

    def __init__(self, *args: Any, dataset: Dataset, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        target = cast(forms.ModelChoiceField, self.fields["target"])
        target.queryset = Dataset.objects.editable_by(user).exclude(pk=dataset.pk).order_by("name")


class RunStartForm(forms.Form):
    """Start a run over a dataset: `form.to_run_kwargs()` feeds `services.run_start(**kwargs)`."""

    target = forms.ChoiceField(help_text="What runs every item.")
    scorers = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Each grades every output."
    )
    version = forms.IntegerField(label="Dataset version", min_value=1)  # bounded per dataset in __init__
    max_concurrency = forms.IntegerField(
        label="Concurrency", min_value=1, max_value=services.MAX_CONCURRENCY_LIMIT, initial=5
    )
    item_timeout = forms.FloatField(
        label="Item timeout (s)", required=False, min_value=0.001, help_text="Optional, seconds per attempt."
    )
    max_retries = forms.IntegerField(label="Retries", min_value=0, max_value=services.MAX_RETRIES_LIMIT, initial=0)
    repetitions = forms.IntegerField(min_value=1, max_value=services.MAX_REPETITIONS, initial=1)
    split = forms.ChoiceField(
        required=False, label="Items", help_text="Every item of the version, or only the items of one split."
    )

    def __init__(self, *args: Any, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        # Only what can run now is offered; the rest is named in the help text with what to set.
        groups: dict[str, list[tuple[str, str]]] = {}
        for target in registry.available_targets():
            groups.setdefault(target.target_type, []).append((f"{target.target_type}:{target.target_id}", target.name))
        target_field = cast(forms.ChoiceField, self.fields["target"])
        target_field.choices = [("", "Choose a target"), *groups.items()]
        target_field.help_text = _with_unavailable(
            str(target_field.help_text), [(t.name, registry.unavailable_reason(t)) for t in registry.all_targets()]
        )
        scorers_field = cast(forms.ChoiceField, self.fields["scorers"])
        scorers_field.choices = [(s.scorer_id, s.name) for s in registry.available_scorers()]
        scorers_field.help_text = _with_unavailable(
            str(scorers_field.help_text), [(s.name, registry.unavailable_reason(s)) for s in registry.all_scorers()]
        )
        current = max(dataset.version, 1)
        self.fields["version"] = forms.IntegerField(
            label="Dataset version",
            min_value=1,
            max_value=current,
            initial=dataset.version or None,
            help_text=f"1 to {current}; {dataset.version} is the current one.",
        )
        self.splits = services.dataset_splits(dataset)
        split_field = cast(forms.ChoiceField, self.fields["split"])
        split_field.choices = [("", "All items"), *((s, f"Split “{s}”") for s in self.splits)]

    @property
    def has_splits(self) -> bool:
        return bool(self.splits)

    def to_run_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        target_type, _, target_id = data["target"].partition(":")
        return {
            "dataset": self.dataset,
            "target_type": target_type,
            "target_id": target_id,
            "scorer_ids": list(data["scorers"]),
            "version": data["version"],
            "max_concurrency": data["max_concurrency"],
            "item_timeout": data["item_timeout"],
            "max_retries": data["max_retries"],
            "repetitions": data["repetitions"],
            "split": data.get("split") or None,
        }


class AddToDatasetForm(forms.Form):
    """Results of a run added to a dataset as items (`curation.items_from_results`):
    to a dataset of the run's project the user can edit, or to a new one."""

    target = forms.ModelChoiceField(queryset=Dataset.objects.none(), required=False, label="Add to", empty_label=None)
    new_name = forms.CharField(
        required=False, max_length=255, label="or a new dataset named", help_text="Leave blank to use the list."
    )
    # The item's expected output by default: results added because they went wrong would
    # otherwise make their wrong answer the expected one.
    expected_from = forms.ChoiceField(
        label="Expected output from",
        choices=[("expected", "the item's expected output"), ("output", "the run's output")],
        initial="expected",
        widget=forms.RadioSelect,
        help_text="Use the run's output only for answers a reviewer approved.",
    )
    split = forms.CharField(
        required=False,
        max_length=services.MAX_SPLIT_LENGTH,
        widget=forms.TextInput(attrs={"list": "add-to-dataset-splits", "autocomplete": "off"}),
        help_text="Optional, e.g. hard-cases.",
    )

    def __init__(self, *args: Any, run: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run = run
        target = cast(forms.ModelChoiceField, self.fields["target"])
        target.queryset = editable_in_project(user, run.dataset.project_id)
        target.initial = run.dataset_id


def editable_in_project(user: Any, project_id: Any) -> Any:
    """The datasets of one project the user can edit, by name."""
    return Dataset.objects.editable_by(user).filter(project_id=project_id).order_by("name")


def _with_unavailable(help_text: str, entries: list[tuple[str, str | None]]) -> str:
    """The help text, then each entry that cannot be used now with why
    ("Not available: Chat model (Set OPENAI_BASE_URL or OPENAI_API_KEY)")."""
    missing = [f"{name} ({reason.rstrip('.')})" for name, reason in entries if reason]
    # Django renders help text as HTML: names and reasons come from plugins, so they are escaped.
    return escape(f"{help_text} Not available: {'; '.join(missing)}." if missing else help_text)
