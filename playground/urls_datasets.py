from django.urls import path

from playground.views import datasets, imports

dataset = "datasets/<uuid:dataset_id>/"
item = dataset + "items/<uuid:item_id>/"

urlpatterns = [
    path("", datasets.dataset_list, name="datasets"),
    path("datasets/new/", datasets.dataset_create, name="dataset-create"),
    path(dataset, datasets.dataset_detail, name="dataset-detail"),
    path(dataset + "edit/", datasets.dataset_edit, name="dataset-edit"),
    path(dataset + "duplicate/", datasets.dataset_duplicate, name="dataset-duplicate"),
    path(dataset + "delete/", datasets.dataset_delete, name="dataset-delete"),
    path(dataset + "items-table/", datasets.dataset_items_table, name="dataset-items-table"),
    path(dataset + "runs-table/", datasets.dataset_runs_table, name="dataset-runs-table"),
    path(dataset + "export.<str:fmt>", datasets.dataset_export, name="dataset-export"),
    path(dataset + "runs/<uuid:run_id>/export.<str:fmt>", datasets.run_results_export, name="run-results-export"),
    path(dataset + "finetune.jsonl", datasets.dataset_finetune_export, name="dataset-finetune-export"),
    path(
        dataset + "runs/<uuid:run_id>/reviewed-finetune.jsonl",
        datasets.run_finetune_export,
        name="run-finetune-export",
    ),
    path(dataset + "import/", imports.dataset_import, name="dataset-import"),
    path(dataset + "import/review/", imports.dataset_import_review, name="dataset-import-review"),
    path(dataset + "items/new/", datasets.item_create, name="item-create"),
    path(dataset + "items/bulk/", datasets.items_bulk, name="items-bulk"),
    path(item, datasets.item_row, name="item-row"),
    path(item + "edit/", datasets.item_edit, name="item-edit"),
    path(item + "delete/", datasets.item_delete, name="item-delete"),
    path(item + "history/", datasets.item_history, name="item-history"),
]
