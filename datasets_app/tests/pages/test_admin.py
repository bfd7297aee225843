"""Django admin: every model is listed, searchable and opens; history is read-only."""

import pytest
from django.urls import reverse

from datasets_app import services
from datasets_app.models import (
    Dataset,
    DatasetItem,
    DatasetItemVersion,
    DatasetRun,
    DatasetRunResult,
    DatasetVersion,
    RunChunk,
    Trace,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client_with_a_run(admin_client, capitals, run_worker):
    run = services.run_start(dataset=capitals, target_type="workflow", target_id="echo", scorer_ids=["exact-match"])
    run_worker(run.id)
    return admin_client


@pytest.mark.parametrize(
    "model", [Dataset, DatasetVersion, DatasetItem, DatasetItemVersion, DatasetRun, RunChunk, DatasetRunResult, Trace]
)
def test_every_model_lists_searches_and_opens(admin_client_with_a_run, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client_with_a_run.get(changelist).status_code == 200
    assert admin_client_with_a_run.get(changelist, {"q": "capital"}).status_code == 200
    obj = model.objects.first()
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    assert admin_client_with_a_run.get(change).status_code == 200


def test_results_cannot_be_edited_or_added(admin_client_with_a_run):
    result = DatasetRunResult.objects.first()
    url = reverse("admin:datasets_app_datasetrunresult_change", args=[result.pk])
    admin_client_with_a_run.post(url, {"output": '"tampered"', "latency": 1})
    result.refresh_from_db()
    assert result.output != "tampered"
    assert admin_client_with_a_run.get(reverse("admin:datasets_app_datasetrunresult_add")).status_code == 403


def test_the_run_page_links_its_results_and_filters_by_status(admin_client_with_a_run):
    run = DatasetRun.objects.get()
    page = admin_client_with_a_run.get(reverse("admin:datasets_app_datasetrun_change", args=[run.pk])).content.decode()
    assert f"run__id__exact={run.pk}" in page
    listing = admin_client_with_a_run.get(reverse("admin:datasets_app_datasetrun_changelist"), {"status__exact": "completed"})
    assert str(run.pk) in listing.content.decode()


def test_deleting_items_from_admin_writes_a_new_dataset_version(admin_client_with_a_run, capitals):
    item = DatasetItem.objects.filter(dataset=capitals).first()
    admin_client_with_a_run.post(
        reverse("admin:datasets_app_datasetitem_changelist"),
        {"action": "delete_with_version", "_selected_action": [str(item.pk)]},
    )
    capitals.refresh_from_db()
    item.refresh_from_db()
    assert item.is_deleted and capitals.version == 2 and capitals.item_count == 2
