"""Django admin: every model is listed, searchable and opens; history is read-only."""

import pytest
from django.apps import apps
from django.urls import reverse

from datasets_app.models import DatasetItem, DatasetRun, DatasetRunResult, TraceOutbox
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_with_a_run(admin_client, capitals):
    run = make_run(capitals)
    for n, item in enumerate(capitals.items.all()):
        add_result(run, item, trace_id=f"{n:032x}")
    end_run(run)
    TraceOutbox.objects.create(trace_id=f"{0:032x}")  # a trace waiting for OTLP export
    return admin_client


ADMIN_MODELS = list(apps.get_app_config("datasets_app").get_models())


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda model: model.__name__)
def test_every_model_lists_searches_and_opens(admin_client_with_a_run, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client_with_a_run.get(changelist).status_code == 200
    assert admin_client_with_a_run.get(changelist, {"q": "capital"}).status_code == 200
    obj = model.objects.first()
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    assert admin_client_with_a_run.get(change).status_code == 200


def test_results_cannot_be_edited_or_added(admin_client_with_a_run):
    result = DatasetRunResult.objects.earliest("started_at")
    url = reverse("admin:datasets_app_datasetrunresult_change", args=[result.pk])
    page = admin_client_with_a_run.get(url).content.decode()
    assert 'name="_save"' not in page  # shown read-only
    assert admin_client_with_a_run.post(url, {"output": '"tampered"', "latency": 1}).status_code == 403
    assert admin_client_with_a_run.get(reverse("admin:datasets_app_datasetrunresult_add")).status_code == 403


def test_the_run_page_links_its_results_and_filters_by_status(admin_client_with_a_run):
    run = DatasetRun.objects.get()
    page = admin_client_with_a_run.get(reverse("admin:datasets_app_datasetrun_change", args=[run.pk])).content.decode()
    assert f"run__id__exact={run.pk}" in page
    listing = admin_client_with_a_run.get(
        reverse("admin:datasets_app_datasetrun_changelist"), {"status__exact": "completed"}
    )
    assert str(run.pk) in listing.content.decode()


def test_deleting_items_from_admin_writes_a_new_dataset_version(admin_client_with_a_run, capitals):
    item = DatasetItem.objects.filter(dataset=capitals).earliest("created_at")
    admin_client_with_a_run.post(
        reverse("admin:datasets_app_datasetitem_changelist"),
        {"action": "delete_with_version", "_selected_action": [str(item.pk)]},
    )
    capitals.refresh_from_db()
    item.refresh_from_db()
    assert item.is_deleted and capitals.version == 2 and capitals.item_count == 2
