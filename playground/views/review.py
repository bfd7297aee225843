"""The review queue: one result of a run at a time, graded with the keyboard.

`run_review` shows one result of the run (its input, expected output, output,
scores, error, latency and trace link), the reviewer's own annotation under
the chosen annotation name as a form, and everybody else's annotations read
only. The results come in dataset order (item id, repetition), narrowed by a
filter: not yet reviewed (by this reviewer, under this name), all, errors,
or scored below a threshold by one scorer. Previous / next are keyset lookups
in that order, so a queue of any length costs the same few indexed queries.

`result_annotate` saves the form (`annotations.annotation_save`) and moves on
to the next result of the filter: with htmx it answers the next result's panel
(and pushes its URL); without JavaScript it redirects there. A form that does
not validate comes back with its values and the errors beside the fields
(400). Viewers read the queue; saving needs an editor.

The keyboard (`static/js/review.js`) only drives the page's own links and
form, so every step also works with Tab and Enter, and without JavaScript.
"""

from dataclasses import dataclass
from typing import Any, Self, cast
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url
from django_htmx.middleware import HtmxDetails

from datasets_app import access, annotations
from datasets_app.exceptions import InvalidInput, NotFound
from datasets_app.models import Annotation, DatasetRun, DatasetRunResult, DatasetRunResultQuerySet, ProjectRole
from datasets_app.runs.tracing import trace_link

from .params import finite_float, valid_uuids
from .runs import item_label, run_name, trace_label

UNREVIEWED, ALL, ERRORS, BELOW = "unreviewed", "all", "errors", "below"
FILTERS = {
    UNREVIEWED: "Not yet reviewed",
    ALL: "All results",
    ERRORS: "Errors",
    BELOW: "Score below",
}
DEFAULT_BELOW = 0.5
SCORE_STEPS = [f"{n / 10:.1f}" for n in range(11)]


class HtmxRequest(HttpRequest):
    """A request as HtmxMiddleware leaves it (for the type checker)."""

    htmx: HtmxDetails


def score_text(score: float) -> str:
    """A score as the slider shows it, to its 0.01 step: 1.0, 0.7, 0.75 (what review.js writes too)."""
    text = f"{score:.2f}"
    return text[:-1] if text.endswith("0") else text


def _can_edit(run: DatasetRun) -> bool:
    role = getattr(run, "user_role", None)
    return role is not None and ProjectRole(role).allows(ProjectRole.EDITOR)


@dataclass(frozen=True)
class Queue:
    """Which results the reviewer goes through (from the query string): the
    filter, its scorer and threshold, and the annotation name graded."""

    filter: str
    name: str
    scorer: str = ""
    below: float = DEFAULT_BELOW

    @classmethod
    def from_query(cls, query: QueryDict, run: DatasetRun, *, can_edit: bool) -> Self:
        names = annotations.names_of(run.dataset) or [annotations.DEFAULT_NAME]
        name = query.get("name", "")
        if name not in names:
            name = names[0]
        # A viewer has nothing "to review": the queue starts with every result.
        chosen = query.get("filter", "")
        if chosen not in FILTERS or (chosen == BELOW and not run.scorer_ids):
            chosen = UNREVIEWED if can_edit else ALL
        scorer = query.get("scorer", "")
        if scorer not in run.scorer_ids:
            scorer = run.scorer_ids[0] if run.scorer_ids else ""
        below = finite_float(query.get("below"))
        if below is None or not 0 <= below <= 1:
            below = DEFAULT_BELOW
        return cls(filter=chosen, name=name, scorer=scorer, below=below)

    def params(self, **extra: Any) -> dict[str, Any]:
        """The query-string parameters that bring this queue back (plus `extra`)."""
        params: dict[str, Any] = {"filter": self.filter}
        if self.filter == BELOW:
            params |= {"scorer": self.scorer, "below": f"{self.below:g}"}
        params["name"] = self.name
        return params | {key: value for key, value in extra.items() if value is not None}

    def query(self, **extra: Any) -> str:
        return urlencode(self.params(**extra))

    def apply(self, results: DatasetRunResultQuerySet, user: Any) -> DatasetRunResultQuerySet:
        if self.filter == UNREVIEWED:
            mine = Annotation.objects.filter(result_id=OuterRef("pk"), name=self.name, author=user)
            results = results.filter(~Exists(mine))
        elif self.filter == ERRORS:
            results = results.failed()
        elif self.filter == BELOW:
            results = results.scored_below(self.scorer, self.below)
        return results

    @property
    def description(self) -> str:
        if self.filter == BELOW:
            return f"{self.scorer} score below {self.below:g}"
        return FILTERS[self.filter].lower()


def _before(result: DatasetRunResult) -> Q:
    return Q(item_id__lt=result.item_id) | Q(item_id=result.item_id, repetition__lt=result.repetition)


def _after(result: DatasetRunResult) -> Q:
    return Q(item_id__gt=result.item_id) | Q(item_id=result.item_id, repetition__gt=result.repetition)


class Review:
    """One reviewer's view of a run's queue."""

    def __init__(self, request: HttpRequest, run: DatasetRun, queue: Queue, *, can_edit: bool) -> None:
        self.request = request
        # `access.run_for` found the run through the user's membership: a real user.
        self.user = cast(User, request.user)
        self.run = run
        self.queue = queue
        self.can_edit = can_edit
        self.results = queue.apply(DatasetRunResult.objects.filter(run=run), self.user)

    def url(self, **extra: Any) -> str:
        base = reverse("run-review", args=[self.run.dataset_id, self.run.pk])
        return f"{base}?{self.queue.query(**extra)}"

    def result_url(self, result: DatasetRunResult | None) -> str:
        return self.url(result=result.pk) if result is not None else self.url(end="1")

    def first(self) -> DatasetRunResult | None:
        return self.results.in_dataset_order().first()

    def last(self) -> DatasetRunResult | None:
        return self.results.order_by("-item_id", "-repetition").first()

    def previous(self, result: DatasetRunResult) -> DatasetRunResult | None:
        return self.results.filter(_before(result)).order_by("-item_id", "-repetition").first()

    def following(self, result: DatasetRunResult) -> DatasetRunResult | None:
        return self.results.filter(_after(result)).in_dataset_order().first()

    def after_saving(self, result: DatasetRunResult) -> DatasetRunResult | None:
        """Where "save and next" goes: the next result of the filter; in the "not yet
        reviewed" queue, back to the first one skipped when none is left after it."""
        following = self.following(result)
        if following is None and self.queue.filter == UNREVIEWED:
            following = self.first()
        return following

    def context(
        self,
        result: DatasetRunResult | None,
        *,
        at_end: bool = False,
        form: dict[str, Any] | None = None,
        errors: dict[str, list[str]] | None = None,
        saved: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        run, queue, user = self.run, self.queue, self.user
        dataset = run.dataset
        names = annotations.names_of(dataset)
        labels = annotations.labels_of(dataset, queue.name) or []
        in_filter = self.results.count()
        total = DatasetRunResult.objects.filter(run=run).count()
        context: dict[str, Any] = {
            "dataset": dataset,
            "run": run,
            "run_name": run_name(run),
            "queue": queue,
            "filters": FILTERS,
            "names": names,
            "labels": labels,
            "score_steps": SCORE_STEPS,
            "can_edit": self.can_edit,
            "role": getattr(run, "user_role", ""),
            "in_filter": in_filter,
            "total": total,
            "reviewed_mine": annotations.reviewed_count(run.pk, name=queue.name, author=user),
            "reviewed_any": annotations.reviewed_count(run.pk, name=queue.name),
            "review_url": self.url(),
            "first_url": self.url(),
            "saved": saved,
            "result": result,
            "at_end": at_end,
            "last_url": "",
        }
        if result is None:
            last = self.last() if at_end else None
            context["last_url"] = self.result_url(last) if last else ""
            context["all_url"] = f"{reverse('run-review', args=[run.dataset_id, run.pk])}?" + urlencode(
                {"filter": ALL, "name": queue.name}
            )
            context["unreviewed_url"] = f"{reverse('run-review', args=[run.dataset_id, run.pk])}?" + urlencode(
                {"filter": UNREVIEWED, "name": queue.name}
            )
            context["left_unreviewed"] = (
                queue.apply(DatasetRunResult.objects.filter(run=run), user).count()
                if queue.filter == UNREVIEWED
                else total - context["reviewed_mine"]
            )
            return context

        previous, following = self.previous(result), self.following(result)
        in_queue = self.results.filter(pk=result.pk).exists()
        all_annotations = list(
            Annotation.objects.filter(result=result).select_related("author").order_by("name", "created_at")
        )
        mine = next((a for a in all_annotations if a.author_id == user.pk and a.name == queue.name), None)
        if form is None:
            form = {
                "scored": mine is not None and mine.score is not None,
                # As saved to the slider's 0.01 (0.75 stays 0.75): a comment-only edit keeps the score.
                "score": score_text(mine.score) if mine is not None and mine.score is not None else "",
                "label": (mine.label or "") if mine is not None else "",
                "comment": mine.comment if mine is not None else "",
            }
        # The slider needs a value; an unscored form shows it in the middle, dimmed ("no score").
        given = finite_float(form["score"]) if form.get("scored") else None
        form["slider"] = score_text(given) if given is not None and 0 <= given <= 1 else f"{DEFAULT_BELOW:.1f}"
        context |= {
            "label": item_label(result.item, result.item_id),
            "scores": [entry for entry in result.scores if isinstance(entry, dict)],
            "trace_url": trace_link(result.trace_id),
            "trace_label": trace_label(result.trace_id) if result.trace_id else "",
            "in_queue": in_queue,
            "position": self.results.filter(_before(result)).count() + 1 if in_queue else None,
            "previous_url": self.result_url(previous) if previous else "",
            "next_url": self.result_url(following),
            "has_next": following is not None,
            "annotate_url": reverse("result-annotate", args=[run.dataset_id, run.pk, result.pk]) + f"?{queue.query()}",
            "mine": mine,
            "others": [a for a in all_annotations if a is not mine],
            "form": form,
            "errors": errors or {},
            "this_url": self.result_url(result),
        }
        return context


def _result_of(run: DatasetRun, result_id: Any) -> DatasetRunResult:
    return get_object_or_404(DatasetRunResult.objects.select_related("item"), pk=result_id, run=run)


def _render(request: HtmxRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    """The whole page, or only the result panel for htmx (which swaps it in)."""
    template = "review/review.html#review-panel" if request.htmx else "review/review.html"
    return render(request, template, context, status=status)


@require_GET
def run_review(request: HtmxRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    run = access.run_for(request.user, dataset_id, run_id)
    can_edit = _can_edit(run)
    review = Review(request, run, Queue.from_query(request.GET, run, can_edit=can_edit), can_edit=can_edit)
    chosen = valid_uuids(request.GET.getlist("result")[:1])
    if chosen:
        result: DatasetRunResult | None = _result_of(run, chosen[0])
    elif request.GET.get("end"):
        result = None
    else:
        result = review.first()
    return _render(request, review.context(result, at_end=result is None and bool(request.GET.get("end"))))


def _score_of(data: QueryDict) -> Any:
    """The score the form gives: None unless "give a score" is ticked; the text
    itself when it is no number (so the service names the field's error)."""
    if not data.get("scored"):
        return None
    text = data.get("score", "").strip()
    number = finite_float(text)
    # Text that is no number (or none, with the box ticked) goes to the service as it
    # is: its error ("Must be a number between 0 and 1") lands beside the score.
    return text if number is None else number


@require_POST
def result_annotate(request: HtmxRequest, dataset_id: UUID, run_id: UUID, result_id: UUID) -> HttpResponse:
    run = access.run_for(request.user, dataset_id, run_id, needs=access.EDITOR)
    result = _result_of(run, result_id)
    review = Review(request, run, Queue.from_query(request.GET, run, can_edit=True), can_edit=True)
    data = request.POST
    if data.get("action") == "remove":
        return _remove_review(request, review, result)
    form: dict[str, Any] = {
        "scored": bool(data.get("scored")),
        "score": data.get("score", "").strip(),
        "label": data.get("label", "").strip(),
        "comment": data.get("comment", ""),
    }
    try:
        annotation, _ = annotations.annotation_save(
            result=result,
            dataset=run.dataset,
            author=review.user,
            name=review.queue.name,
            score=_score_of(data),
            label=form["label"] or None,
            comment=form["comment"],
        )
    except InvalidInput as exc:
        errors = {key: list(value) for key, value in (exc.errors or {}).items()}
        if not errors:
            errors = {"form": [exc.message]}
        context = review.context(result, form=form, errors=errors)
        return _render(request, context, status=400)
    except NotFound:
        raise Http404("The result was deleted.") from None

    label = item_label(result.item, result.item_id)
    graded = ", ".join(
        part
        for part in (
            f"{annotation.score:.1f}" if annotation.score is not None else "",
            annotation.label or "",
        )
        if part
    )
    following = review.after_saving(result)
    if not request.htmx:
        messages.success(request, f"Saved your review of item {label}: {graded}.")
        return redirect(
            review.result_url(following) if following or review.queue.filter != UNREVIEWED else review.url()
        )
    saved = {
        "label": label,
        "graded": graded,
        "url": f"{reverse('run-review', args=[run.dataset_id, run.pk])}?"
        + urlencode({"filter": ALL, "name": review.queue.name, "result": result.pk}),
    }
    if following is None and review.queue.filter == UNREVIEWED:
        context, url = review.context(None, saved=saved), review.url()
    else:
        context, url = review.context(following, at_end=following is None, saved=saved), review.result_url(following)
    return push_url(_render(request, context), url)


def _remove_review(request: HtmxRequest, review: "Review", result: DatasetRunResult) -> HttpResponse:
    """Delete the user's own annotation of the result (under the queue's name) and
    show the result again, now unreviewed by them."""
    mine = Annotation.objects.filter(result=result, name=review.queue.name, author=review.user).first()
    label = item_label(result.item, result.item_id)
    if mine is not None:
        annotations.annotation_delete(annotation=mine)
    text = f"Removed your review of item {label}." if mine else f"You had no review of item {label}."
    if not request.htmx:
        messages.success(request, text)
        return redirect(review.result_url(result))
    context = review.context(result)
    context["removed"] = text
    return push_url(_render(request, context), review.result_url(result))
