"""What one poll of the live run page costs as a run grows: the results
fragment of a running run with N results, through Django's test client.
Not part of `make bench` (it measures a page, not the engine).

    SQLITE_PATH=/tmp/poll.sqlite3 .venv/bin/python bench/poll_cost.py 50000

"cold" recomputes the cached latency figures, "warm" is a poll within the
5-second cache window. Counters and scorer cards come from the run row either way.
"""

import os
import random
import sys
import time
import uuid

os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
import scenarios  # noqa: F401 — sets up Django
from scenarios import call_command, make_dataset, transaction

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from datasets_app.models import DatasetItem, DatasetRun, DatasetRunResult
from datasets_app.runs.rows import insert_rows
from datasets_app.runs.summary import add_scores


def main(count: int) -> None:
    call_command("migrate", verbosity=0)
    dataset = make_dataset(count)
    run = DatasetRun.objects.create(
        dataset=dataset,
        dataset_version=dataset.version,
        target_type="callable",
        target_id="noop",
        scorer_ids=["exact-match", "contains"],
        total_items=count,
        status="running",
        started_at=timezone.now(),
    )
    now = timezone.now()
    rows = [
        {
            "id": uuid.uuid4(),
            "run": run.pk,
            "item": item_id,
            "item_version": 1,
            "repetition": 0,
            "input": {"n": 1},
            "output": "x",
            "expected_output": 1,
            "latency": random.random() * 100,
            "error": None,
            "retry_count": 0,
            "trace_id": uuid.uuid4().hex,
            "scores": [
                {
                    "scorerId": "exact-match",
                    "scorerName": "Exact match",
                    "score": random.choice([0.0, 1.0]),
                    "reason": None,
                    "error": None,
                },
                {
                    "scorerId": "contains",
                    "scorerName": "Contains",
                    "score": random.random(),
                    "reason": None,
                    "error": None,
                },
            ],
            "usage": None,
            "started_at": now,
            "completed_at": now,
            "created_at": now,
        }
        for item_id in DatasetItem.objects.filter(dataset=dataset).values_list("id", flat=True)
    ]
    with transaction.atomic():
        for start in range(0, len(rows), 2000):
            insert_rows(DatasetRunResult, rows[start : start + 2000])
    DatasetRun.objects.filter(pk=run.pk).update(
        succeeded_count=count - 1, score_stats=add_scores({}, (row["scores"] for row in rows))
    )
    client = Client()
    client.force_login(get_user_model().objects.create_user("poll-bench", password="unused"))
    url = f"/datasets/{dataset.id}/runs/{run.id}/results/"
    client.get(url, HTTP_HX_REQUEST="true")  # first request: imports, template compilation
    for label in ("cold", "warm", "warm", "cold", "warm"):
        if label == "cold":
            cache.clear()
        started = time.perf_counter()
        response = client.get(url, HTTP_HX_REQUEST="true")
        print(
            f"{count:,} results  {label}  HTTP {response.status_code}  {(time.perf_counter() - started) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
