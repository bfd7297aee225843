"""Human review: the dataset's annotation names and label sets, and the
annotations people leave on results.

An annotation is a person's grade of one result under one of the dataset's
annotation names: a score in 0..1 and/or a label from that name's label set,
and a comment. Each author has one per result and name; saving again updates
it. Annotations sit beside a run (they change none of its rows or counters),
so a finished run can be reviewed.
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count

from .exceptions import InvalidInput, NotFound
from .models import Annotation, Dataset, DatasetRunResult

MAX_NAMES = 10
MAX_LABELS = 20
MAX_NAME_LENGTH = 50
MAX_LABEL_LENGTH = 100
MAX_COMMENT_LENGTH = 10_000
DEFAULT_NAME = "human"

# Keys under which annotation means appear beside scorer ids (summary, compare):
# "human" the annotation name is "annotation:human", so it never collides with a scorer id.
KEY_PREFIX = "annotation:"


def key_of(name: str) -> str:
    return f"{KEY_PREFIX}{name}"


def name_of(key: str) -> str | None:
    """The annotation name a compare/summary key stands for (None for a scorer id)."""
    return key[len(KEY_PREFIX) :] if key.startswith(KEY_PREFIX) else None


# ---- the dataset's configuration --------------------------------------------


def clean_config(config: Any, *, field: str = "annotation_config") -> list[dict[str, Any]]:
    """The annotation configuration as stored: a list of `{name, labels}`, names
    distinct, labels distinct per name, all trimmed. Raises InvalidInput naming
    the failing entry."""
    if not isinstance(config, list) or not config:
        raise InvalidInput("At least one annotation name is required", {field: ["A non-empty list of {name, labels}."]})
    if len(config) > MAX_NAMES:
        raise InvalidInput(f"At most {MAX_NAMES} annotation names", {field: [f"At most {MAX_NAMES} names."]})
    cleaned: list[dict[str, Any]] = []
    for index, entry in enumerate(config):
        where = f"{field}/{index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInput(
                f"Invalid annotation name at {where}", {where: ['Must be {"name": str, "labels": [str]}.']}
            )
        unknown = entry.keys() - {"name", "labels"}
        if unknown:
            raise InvalidInput(f"Invalid annotation name at {where}", {where: [f"Unknown key {sorted(unknown)[0]}."]})
        name = entry["name"].strip()
        # No ":" in a name, no "|" in a label: the settings page writes them as "name: a | b".
        if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable() or ":" in name:
            message = f'A name of 1 to {MAX_NAME_LENGTH} printable characters, without ":".'
            raise InvalidInput(f"Invalid annotation name at {where}", {f"{where}/name": [message]})
        if any(c["name"] == name for c in cleaned):
            raise InvalidInput(f"Duplicate annotation name {name!r}", {f"{where}/name": ["Names must be distinct."]})
        labels = entry.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise InvalidInput(f"Invalid labels at {where}", {f"{where}/labels": ["Must be a list of strings."]})
        labels = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
        if len(labels) > MAX_LABELS or any(
            len(label) > MAX_LABEL_LENGTH or not label.isprintable() or "|" in label for label in labels
        ):
            message = f'At most {MAX_LABELS} labels of at most {MAX_LABEL_LENGTH} printable characters, without "|".'
            raise InvalidInput(f"Invalid labels at {where}", {f"{where}/labels": [message]})
        cleaned.append({"name": name, "labels": labels})
    return cleaned


def parse_config_text(text: str) -> list[dict[str, Any]]:
    """The settings form's text, one name per line: `human: good | bad | unsure`
    (a line without a colon is a name without labels)."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, labels = line.partition(":")
        entries.append({"name": name, "labels": labels.split("|") if labels else []})
    return clean_config(entries)


def config_text(config: list[dict[str, Any]]) -> str:
    """The configuration as the settings form shows it (inverse of `parse_config_text`)."""
    return "\n".join(
        f"{entry['name']}: {' | '.join(entry['labels'])}" if entry["labels"] else entry["name"] for entry in config
    )


def labels_of(dataset: Dataset, name: str) -> list[str] | None:
    """The label set of one annotation name (None: the dataset has no such name)."""
    for entry in dataset.annotation_config or []:
        if entry.get("name") == name:
            return list(entry.get("labels") or [])
    return None


def names_of(dataset: Dataset) -> list[str]:
    return [entry["name"] for entry in dataset.annotation_config or []]


# ---- writing annotations -----------------------------------------------------


def annotation_save(
    *,
    result: DatasetRunResult,
    dataset: Dataset,
    author: User,
    name: str | None = None,
    score: Any = None,
    label: str | None = None,
    comment: str | None = "",
) -> tuple[Annotation, bool]:
    """Create or update the author's annotation of the result under `name`
    (default: the dataset's first name). Returns (annotation, created)."""
    names = names_of(dataset)
    name = (name or (names[0] if names else DEFAULT_NAME)).strip()
    errors: dict[str, list[str]] = {}
    labels = labels_of(dataset, name)
    if labels is None:
        errors["name"] = [f"Not an annotation name of this dataset (one of: {', '.join(names) or 'none'})."]
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int | float) or score != score:  # NaN
            errors["score"] = ["Must be a number between 0 and 1, or null."]
        elif not 0 <= score <= 1:  # compared, not float()ed: an integer of 400 digits overflows a float
            errors["score"] = ["Must be between 0 and 1."]
    if label is not None:
        if not isinstance(label, str):
            errors["label"] = ["Must be a string or null."]
        else:
            label = label.strip() or None
            if label is not None and "\x00" in label:
                errors["label"] = ["Must not contain a NUL character."]
            if label is not None and labels is not None and label not in labels:
                allowed = ", ".join(labels) if labels else "none are configured"
                errors["label"] = [f"Not a label of {name!r} (allowed: {allowed})."]
    if comment is not None and not isinstance(comment, str):
        errors["comment"] = ["Must be a string."]
    elif comment and len(comment) > MAX_COMMENT_LENGTH:
        errors["comment"] = [f"At most {MAX_COMMENT_LENGTH} characters."]
    elif comment and "\x00" in comment:  # PostgreSQL text cannot hold one
        errors["comment"] = ["Must not contain a NUL character."]
    if not errors and score is None and label is None:
        errors["score"] = ["Give a score, a label or both."]
    if errors:
        raise InvalidInput(f"Invalid annotation: {next(iter(errors.values()))[0]}", errors)
    values = {"score": None if score is None else float(score), "label": label, "comment": comment or ""}
    try:
        with transaction.atomic():
            if not DatasetRunResult.objects.filter(pk=result.pk).exists():
                raise NotFound("The result was deleted")
            annotation, created = Annotation.objects.update_or_create(
                result_id=result.pk, name=name, author=author, defaults={**values, "run_id": result.run_id}
            )
    except IntegrityError:
        # Two saves of the same annotation raced: the other one created it; update it.
        annotation = Annotation.objects.get(result_id=result.pk, name=name, author=author)
        for key, value in values.items():
            setattr(annotation, key, value)
        annotation.save(update_fields=[*values, "updated_at"])
        created = False
    return annotation, created


def annotation_delete(*, annotation: Annotation) -> None:
    Annotation.objects.filter(pk=annotation.pk).delete()


# ---- reading them --------------------------------------------------------------


@dataclass
class AnnotationStats:
    """One annotation name's figures over a run, like a scorer's: mean score,
    how many annotations, and how often each label was given."""

    name: str
    count: int = 0
    scored: int = 0
    mean: float | None = None
    labels: dict[str, int] = field(default_factory=dict)

    def as_summary(self) -> dict[str, Any]:
        return {"mean": self.mean, "count": self.count, "labels": self.labels}


def run_stats(run_ids: Iterable[UUID]) -> dict[UUID, dict[str, AnnotationStats]]:
    """Per run, per annotation name: its stats (two indexed queries for any number of runs)."""
    run_ids = list(run_ids)
    stats: dict[UUID, dict[str, AnnotationStats]] = defaultdict(dict)
    rows = (
        Annotation.objects.filter(run_id__in=run_ids)
        .values("run_id", "name")
        .annotate(count=Count("id"), scored=Count("score"), mean=Avg("score"))
        .order_by("run_id", "name")
    )
    for row in rows:
        stats[row["run_id"]][row["name"]] = AnnotationStats(
            name=row["name"], count=row["count"], scored=row["scored"], mean=row["mean"]
        )
    labels = (
        Annotation.objects.filter(run_id__in=run_ids)
        .exclude(label=None)
        .values("run_id", "name", "label")
        .annotate(count=Count("id"))
        .order_by("run_id", "name", "-count", "label")
    )
    for run_id, name, label, count in labels.values_list("run_id", "name", "label", "count"):
        stats[run_id][name].labels[label or ""] = count  # never blank: labels=None rows are excluded
    return dict(stats)


def item_scores(run_ids: Iterable[UUID]) -> dict[UUID, dict[tuple[UUID, int], dict[str, float]]]:
    """Per run, per (item, repetition): each annotation name's mean score over its
    reviewers, keyed `annotation:<name>` (what compare adds beside the scorer
    scores). One query for any number of runs; as many rows as reviewed results."""
    sums: defaultdict[UUID, defaultdict[tuple[UUID, int], defaultdict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    rows = Annotation.objects.filter(run_id__in=list(run_ids)).exclude(score=None)
    for run_id, item_id, repetition, name, score in rows.values_list(
        "run_id", "result__item_id", "result__repetition", "name", "score"
    ):
        if score is not None:  # excluded above; the type does not know it
            sums[run_id][(item_id, repetition)][key_of(name)].append(score)
    return {
        run_id: {key: {name: math.fsum(v) / len(v) for name, v in by_name.items()} for key, by_name in by_item.items()}
        for run_id, by_item in sums.items()
    }


def reviewed_count(run_id: UUID, *, name: str | None = None, author: User | None = None) -> int:
    """How many of the run's results carry an annotation (of that name, by that author)."""
    rows = Annotation.objects.filter(run_id=run_id)
    if name is not None:
        rows = rows.filter(name=name)
    if author is not None:
        rows = rows.filter(author=author)
    return rows.values("result_id").distinct().count()
