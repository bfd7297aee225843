"""The import pages: upload → (CSV: map columns) → preview → import.

The uploaded file's text is kept in the session between the steps (keyed by
dataset) rather than re-posted in a hidden field: the user can go back and
change the column mapping without uploading again, and the file never makes
a round trip through the browser. The size limit (importers.MAX_IMPORT_BYTES,
5 MB) keeps session rows bounded; a successful import clears the entry.
"""

from uuid import UUID

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from datasets_app import access, importers
from datasets_app.importers import ImportFileError
from datasets_app.models import Dataset
from playground.forms import CsvMappingForm, ImportUploadForm

PREVIEW_ROWS = 5


def _session_key(dataset: Dataset) -> str:
    return f"import:{dataset.pk}"


@require_http_methods(["GET", "POST"])
def dataset_import(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id, needs=access.EDITOR)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        fmt = form.cleaned_data["format"] or importers.detect_format(upload.name)
        if fmt is None:
            form.add_error("format", "Cannot tell the format from the file name; choose one.")
        elif upload.size > importers.MAX_IMPORT_BYTES:
            form.add_error(
                "file",
                f"The file is {upload.size / 1024 / 1024:.1f} MB; imports are limited to "
                f"{importers.MAX_IMPORT_BYTES // 1024 // 1024} MB. Split it into smaller files.",
            )
        else:
            try:
                text = importers.decode_upload(upload.read())
            except ImportFileError as exc:
                form.add_error("file", exc.message)
            else:
                request.session[_session_key(dataset)] = {"name": upload.name, "format": fmt, "text": text}
                return redirect("dataset-import-review", dataset.pk)
    status = 400 if form.errors else 200
    return render(request, "datasets/import.html", {"dataset": dataset, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
def dataset_import_review(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    """Map the CSV columns, preview the items and errors, then import (nothing is written before)."""
    dataset = access.dataset_for(request.user, dataset_id, needs=access.EDITOR)
    upload = request.session.get(_session_key(dataset))
    if not upload:
        messages.info(request, "Choose a file to import.")
        return redirect("dataset-import", dataset.pk)
    fmt, text = upload["format"], upload["text"]
    context = {"dataset": dataset, "upload": upload, "fmt": fmt, "errors": [], "step": "map"}

    try:
        mapping = None
        if fmt == "csv":
            columns, rows = importers.read_csv(text)
            mapping_form = CsvMappingForm(request.POST or None, columns=columns, dataset=dataset)
            context |= {
                "mapping_form": mapping_form,
                "columns": columns,
                "sample_rows": [cells for _, cells in rows[:PREVIEW_ROWS]],
                "row_count": len(rows),
                "input_properties": importers.schema_properties(dataset.input_schema),
            }
            if request.method != "POST" or not mapping_form.is_valid():
                return render(request, "datasets/import_review.html", context, status=_status(request, mapping_form))
            mapping = mapping_form.mapping()
        items = importers.prepare_import(dataset=dataset, text=text, fmt=fmt, mapping=mapping)
        if request.POST.get("step") == "import":
            created = importers.import_items(dataset=dataset, text=text, fmt=fmt, mapping=mapping)
            del request.session[_session_key(dataset)]
            messages.success(
                request, f"Imported {len(created)} items from {upload['name']} (dataset version {dataset.version})."
            )
            return redirect(dataset)
    except ImportFileError as exc:
        context |= {"step": "errors", "error_message": exc.message, "errors": exc.errors}
        return render(request, "datasets/import_review.html", context, status=400)

    context |= {"step": "confirm", "items": items[:PREVIEW_ROWS], "item_count": len(items)}
    return render(request, "datasets/import_review.html", context)


def _status(request: HttpRequest, form: forms.Form) -> int:
    return 400 if request.method == "POST" and form.errors else 200
