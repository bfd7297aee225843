"""Dataset, item, export pages. Views translate HTTP into `services` calls
and back; every write goes through `datasets_app.services`."""

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import push_url
from django_htmx.middleware import HtmxDetails

from datasets_app import access, exports, services
from datasets_app.exceptions import InvalidInput
from datasets_app.models import Dataset, DatasetItem, DatasetItemVersion, ProjectRole
from playground.forms import CopyItemsForm, DatasetForm, ItemForm, RunStartForm

from .params import valid_uuids
from .projects import current_project
from .runs import runs_tab_context

DATASETS_PER_PAGE = 20
ITEMS_PER_PAGE = 25
RUNS_PER_PAGE = 20
DETAIL_TEMPLATE = "datasets/dataset_detail.html"


class HtmxRequest(HttpRequest):
    """A request as HtmxMiddleware leaves it (for the type checker)."""

    htmx: HtmxDetails


# ---- datasets ------------------------------------------------------------------


def _dataset_list_context(request: HttpRequest, form: DatasetForm) -> dict[str, Any]:
    """The current project's datasets."""
    project = current_project(request)
    query = request.GET.get("q", "").strip()
    in_project = Dataset.objects.filter(project=project)
    page = Paginator(in_project.with_last_run().search(query), DATASETS_PER_PAGE).get_page(request.GET.get("page"))
    return {
        "page": page,
        "query": query,
        "form": form,
        "any_datasets": query or in_project.exists(),
        "project": project,
        "can_edit": ProjectRole(project.role).allows(ProjectRole.EDITOR),  # type: ignore[attr-defined]
    }


@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "datasets/dataset_list.html", _dataset_list_context(request, DatasetForm()))


@require_POST
def dataset_create(request: HttpRequest) -> HttpResponse:
    project = current_project(request)
    access.require(request.user, project, ProjectRole.EDITOR)
    form = DatasetForm(request.POST)
    dataset = form.save_with(services.dataset_create, project=project)
    if dataset is not None:
        messages.success(request, f"Created dataset “{dataset.name}”. Add items or import a file.")
        return redirect(dataset)
    context = _dataset_list_context(request, form)
    return render(request, "datasets/dataset_list.html", context, status=400)


@require_http_methods(["GET", "POST"])
def dataset_edit(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id, needs=access.EDITOR)
    form = DatasetForm.for_dataset(dataset, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.save_with(services.dataset_update, dataset=dataset) is not None:
        messages.success(request, f"Saved dataset “{dataset.name}”.")
        return redirect(dataset)
    return render(request, "datasets/dataset_edit.html", {"dataset": dataset, "form": form})


@require_POST
def dataset_duplicate(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id, needs=access.EDITOR)
    copy = services.dataset_duplicate(dataset=dataset)
    messages.success(request, f"Duplicated “{dataset.name}” as “{copy.name}” with {copy.item_count} items.")
    return redirect(copy)


@require_http_methods(["GET", "POST"])
def dataset_delete(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id, needs=access.EDITOR)
    if request.method == "POST":
        name = dataset.name
        services.dataset_delete(dataset=dataset)
        messages.success(request, f"Deleted dataset “{name}”.")
        return redirect("datasets")
    return render(request, "datasets/dataset_delete.html", {"dataset": dataset, "run_count": dataset.runs.count()})


# ---- dataset detail: items ----------------------------------------------------------


def _selected_version(request: HttpRequest, dataset: Dataset) -> int:
    """The ?version= being viewed; anything invalid falls back to the current version."""
    try:
        version = int(request.GET.get("version", ""))
    except ValueError:
        return dataset.version
    return version if 1 <= version <= dataset.version else dataset.version


def _selected_split(request: HttpRequest) -> str:
    """The ?split= filter: "" (every item), `exports.NO_SPLIT` (items in none) or a split name."""
    return request.GET.get("split", "").strip()


def _items_context(request: HttpRequest, dataset: Dataset) -> dict[str, Any]:
    version = _selected_version(request, dataset)
    query = request.GET.get("q", "").strip()
    split = _selected_split(request)
    rows = DatasetItemVersion.objects.at_version(dataset, version).search(query)
    rows = exports.in_split(rows, split).newest_items_first()
    page = Paginator(rows, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    splits = services.dataset_splits(dataset)
    if split and split != exports.NO_SPLIT and split not in splits:
        splits.append(split)  # a split of an older version, or one emptied since: still offered while chosen
    # What the export links carry: the version and split being viewed.
    export_params: dict[str, Any] = {"version": version} if version != dataset.version else {}
    if split:
        export_params["split"] = split
    return {
        "items_page": page,
        "query": query,
        "version": version,
        "is_current": version == dataset.version,
        "versions": range(dataset.version, 0, -1),
        "split": split,
        "splits": splits,
        "no_split": exports.NO_SPLIT,
        "export_query": urlencode(export_params),
        "copy_form": CopyItemsForm(dataset=dataset, user=request.user),
    }


def _runs_context(request: HttpRequest, dataset: Dataset) -> dict[str, Any]:
    """The Runs tab: its list (tag filter, pages) and trends, built with the run pages."""
    return {"runs_tab": runs_tab_context(request, dataset)}


def _detail_context(request: HttpRequest, dataset: Dataset, **overrides: Any) -> dict[str, Any]:
    tab = "runs" if request.GET.get("tab") == "runs" else "items"
    context = {"dataset": dataset, "tab": tab}
    if tab == "items":
        context |= _items_context(request, dataset)
        context["item_form"] = ItemForm()
    else:
        context |= _runs_context(request, dataset)
        context["run_form"] = RunStartForm(dataset=dataset)
    context |= overrides
    return context


@require_GET
def dataset_detail(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id)
    return render(request, DETAIL_TEMPLATE, _detail_context(request, dataset))


@require_GET
def dataset_items_table(request: HtmxRequest, dataset_id: UUID) -> HttpResponse:
    """The items table alone, for the debounced search and the version selector."""
    dataset = access.dataset_for(request.user, dataset_id)
    context = {"dataset": dataset, **_items_context(request, dataset)}
    response = render(request, f"{DETAIL_TEMPLATE}#items-table", context)
    if request.htmx:
        # Keep the address bar on the full page, so reload and back show the same table.
        query = request.GET.urlencode()
        push_url(response, f"{dataset.get_absolute_url()}?{query}" if query else dataset.get_absolute_url())
    return response


@require_GET
def dataset_runs_table(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    """The runs table alone; it keeps polling itself while a listed run is active."""
    dataset = access.dataset_for(request.user, dataset_id)
    context = {"dataset": dataset, **_runs_context(request, dataset)}
    return render(request, f"{DETAIL_TEMPLATE}#runs-table", context)


@require_POST
def item_create(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id, needs=access.EDITOR)
    form = ItemForm(request.POST)
    if form.save_with(services.item_create, dataset=dataset) is not None:
        messages.success(request, f"Added an item (dataset version {dataset.version}).")
        return redirect(dataset)
    context = _detail_context(request, dataset, item_form=form, show_add_form=True)
    return render(request, DETAIL_TEMPLATE, context, status=400)


def _live_item(request: HttpRequest, dataset_id: UUID, item_id: UUID, *, needs: ProjectRole) -> DatasetItem:
    dataset = access.dataset_for(request.user, dataset_id, needs=needs)
    item = get_object_or_404(DatasetItem, pk=item_id, dataset=dataset, is_deleted=False)
    item.dataset = dataset
    return item


def _current_row(item: DatasetItem) -> DatasetItemVersion:
    return item.versions.current().select_related("item").get()


@require_GET
def item_row(request: HttpRequest, dataset_id: UUID, item_id: UUID) -> HttpResponse:
    """One item's table row (what "Cancel" on the in-place edit form swaps back in)."""
    item = _live_item(request, dataset_id, item_id, needs=access.VIEWER)
    # Back from the form, keyboard focus returns to the row's Edit link.
    context = {"dataset": item.dataset, "row": _current_row(item), "is_current": True, "focus_edit": True}
    return render(request, f"{DETAIL_TEMPLATE}#item-row", context)


@require_http_methods(["GET", "POST"])
def item_edit(request: HtmxRequest, dataset_id: UUID, item_id: UUID) -> HttpResponse:
    """Edit in place with htmx (the row becomes a form and back), or as its own page without."""
    item = _live_item(request, dataset_id, item_id, needs=access.EDITOR)
    dataset = item.dataset
    form = ItemForm.for_item(item, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.save_with(services.item_update, item=item) is not None:
        if request.htmx:
            # The row, focus back on its Edit link, and (out of band) the page's figures of the new version.
            context = {
                "dataset": dataset,
                "row": _current_row(item),
                "is_current": True,
                "just_saved": True,
                "focus_edit": True,
                "version": dataset.version,
                "versions": range(dataset.version, 0, -1),
            }
            return render(request, f"{DETAIL_TEMPLATE}#item-saved", context)
        messages.success(request, f"Saved the item (dataset version {dataset.version}).")
        return redirect(dataset)
    form.focus_first_field()
    context = {"dataset": dataset, "item": item, "form": form}
    if not request.htmx:
        context["splits"] = services.dataset_splits(dataset)  # the page's own <datalist> (the items tab has one)
    status = 400 if form.errors else 200
    if request.htmx:
        # 200 even with errors: htmx swaps only successful responses.
        return render(request, f"{DETAIL_TEMPLATE}#item-edit-row", context)
    return render(request, "datasets/item_edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
def item_delete(request: HttpRequest, dataset_id: UUID, item_id: UUID) -> HttpResponse:
    item = _live_item(request, dataset_id, item_id, needs=access.EDITOR)
    dataset = item.dataset
    if request.method == "POST":
        services.item_delete(item=item)
        messages.success(request, f"Deleted the item (dataset version {dataset.version}).")
        return redirect(dataset)
    return render(request, "datasets/item_delete.html", {"dataset": dataset, "item": item})


@require_GET
def item_history(request: HttpRequest, dataset_id: UUID, item_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id)
    item = get_object_or_404(DatasetItem, pk=item_id, dataset=dataset)
    versions = item.versions.order_by("-version_number")
    return render(request, "datasets/item_history.html", {"dataset": item.dataset, "item": item, "versions": versions})


@require_POST
def items_bulk(request: HttpRequest, dataset_id: UUID) -> HttpResponseBase:
    """The bulk actions on the checked items: delete (after a confirmation), export, copy."""
    action = request.POST.get("action", "")
    exporting = action in ("export-csv", "export-jsonl")
    dataset = access.dataset_for(request.user, dataset_id, needs=access.VIEWER if exporting else access.EDITOR)
    item_ids = request.POST.getlist("item_ids")
    items = dataset.items.live().filter(pk__in=valid_uuids(item_ids))
    if not items.exists():
        messages.error(request, "Select at least one item first.")
        return redirect(dataset)
    if exporting:
        return exports.export_items(dataset, action.removeprefix("export-"), item_ids=[i.pk for i in items])
    if action == "delete":
        if request.POST.get("confirmed") != "yes":
            context = {"dataset": dataset, "items": items.order_by("position")}
            return render(request, "datasets/items_bulk_delete.html", context)
        deleted = services.items_bulk_delete(dataset=dataset, item_ids=[i.pk for i in items])
        messages.success(request, f"Deleted {deleted} items (dataset version {dataset.version}).")
        return redirect(dataset)
    if action == "set-split":
        return _set_split(request, dataset, [i.pk for i in items])
    if action == "copy":
        form = CopyItemsForm(request.POST, dataset=dataset, user=request.user)
        if not form.is_valid():
            messages.error(request, "Choose the dataset to copy the items to.")
            return redirect(dataset)
        target = form.cleaned_data["target"]
        entries = [services.new_item_like(item) for item in items.order_by("created_at", "id")]
        try:
            services.items_bulk_create(dataset=target, items=entries)
        except InvalidInput as exc:
            details = "; ".join(f"{k}: {' '.join(v)}" for k, v in list(exc.errors.items())[:5])
            messages.error(request, f"Nothing copied: the items do not fit “{target.name}”. {details}")
            return redirect(dataset)
        messages.success(request, f"Copied {len(entries)} items to “{target.name}”.")
        return redirect(dataset)
    raise Http404("Unknown bulk action")


def _set_split(request: HttpRequest, dataset: Dataset, item_ids: list[UUID]) -> HttpResponse:
    """Bulk "Set split…": the selected items into one split (blank: out of their split)."""
    try:
        moved = services.items_set_split(dataset=dataset, item_ids=item_ids, split=request.POST.get("split", ""))
    except InvalidInput as exc:
        details = " ".join(" ".join(v) for v in exc.errors.values())
        messages.error(request, f"No split set: {details or exc.message}")
        return redirect(dataset)
    split = services.clean_split(request.POST.get("split", ""))
    if not moved:
        where = f"in split “{split}”" if split else "in no split"
        messages.info(request, f"The selected items are already {where}; nothing changed.")
    elif split:
        messages.success(request, f"Moved {_items(moved)} to split “{split}” (version {dataset.version}).")
    else:
        messages.success(request, f"Took {_items(moved)} out of their split (version {dataset.version}).")
    return redirect(dataset)


def _items(count: int) -> str:
    return f"{count} item{'' if count == 1 else 's'}"


# ---- exports -------------------------------------------------------------------------


@require_GET
def dataset_export(request: HttpRequest, dataset_id: UUID, fmt: str) -> StreamingHttpResponse:
    """Items as CSV or JSONL: `?version=` (default current), `?split=` (a name, or
    `exports.NO_SPLIT` for the items in none)."""
    dataset = access.dataset_for(request.user, dataset_id)
    version = _selected_version(request, dataset)
    return exports.export_items(dataset, fmt, version=version, split=_selected_split(request))


@require_GET
def dataset_finetune_export(request: HttpRequest, dataset_id: UUID) -> StreamingHttpResponse:
    """Items as OpenAI chat fine-tuning JSONL (input → expected output), same `?version=` and `?split=`."""
    dataset = access.dataset_for(request.user, dataset_id)
    version = _selected_version(request, dataset)
    return exports.export_items_finetune(dataset, version=version, split=_selected_split(request))


@require_GET
def run_finetune_export(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> StreamingHttpResponse:
    """The run's reviewed results (approved by a reviewer, see `exports.reviewed_results`)
    as OpenAI chat fine-tuning JSONL: input → the run's output."""
    run = access.run_for(request.user, dataset_id, run_id)
    return exports.export_reviewed_finetune(run)


@require_GET
def run_results_export(request: HttpRequest, dataset_id: UUID, run_id: UUID, fmt: str) -> StreamingHttpResponse:
    run = access.run_for(request.user, dataset_id, run_id)
    return exports.export_run_results(run, fmt)
