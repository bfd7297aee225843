"""What one poll of a running run costs as the run grows: the run page's results
fragment (what the page fetches every 2 s) and the API's results list, for a run
of 100,000 results against one of 100, and each against a trivial view
(`/healthz`, or the login page where there is none) in the same process, through
Django's test client with a logged-in user. Prints figures; asserts nothing.
Not part of `make bench` (it measures pages, not the engine).

    .venv/bin/python bench/poll_cost.py                         # SQLite, a fresh temp file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_b .venv/bin/python bench/poll_cost.py
    .venv/bin/python bench/poll_cost.py --big 50000 --small 100 --repeat 21

Results are inserted directly (`runs/rows.insert_rows`, what the engine's writer
uses), the items through the services. Each figure is the median of `--repeat`
requests after two warm-up requests. The fragment is measured "warm" and "cold"
(cache cleared before each request): before bcffdc5 the latency figures came from
a 5-second cache, which most polls found warm; since then they are on the run row,
and only a pass threshold between histogram buckets reads the cache.

Where a 100,000 / 100 ratio is over 1.5× (and the medians are 5 ms or more apart),
the queries of one request of each size are captured (CaptureQueriesContext) and
the slowest of the big run's are printed with their query plan (EXPLAIN QUERY PLAN
on SQLite, EXPLAIN ANALYZE on PostgreSQL, after ANALYZE).
"""

import argparse
import inspect
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("DJANGO_DEBUG", "0")
# Settings refuse to start with DEBUG off and no key; this one signs only bench sessions.
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + uuid.uuid4().hex)
os.environ.setdefault("DJANGO_HTTPS", "0")  # the test client speaks plain http
os.environ.setdefault("PLAYGROUND_API_RATE", "1000000/min")
_TEMP_DB = None
if not os.environ.get("DATABASE_URL") and not os.environ.get("SQLITE_PATH"):
    _TEMP_DB = Path(tempfile.mkdtemp(prefix="poll-cost-")) / "db.sqlite3"
    os.environ["SQLITE_PATH"] = str(_TEMP_DB)

import scenarios  # noqa: F401 — sets up Django
from scenarios import call_command, transaction

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from datasets_app import services
from datasets_app.models import Dataset, DatasetItem, DatasetRun, DatasetRunResult
from datasets_app.runs.rows import insert_rows
from datasets_app.runs import summary
from datasets_app.runs.summary import add_scores

ROOT = Path(__file__).resolve().parents[1]
# A big / small ratio over 1.5× is diagnosed when the two medians are at least this far
# apart; below it the ratio is the noise of a shared machine on a few milliseconds.
NOISE_MS = 5


# ---- set-up shared with bench/load_poll.py ------------------------------------------------


def bench_user(username: str, password: str = "unused"):
    """A user, and where the project model exists, a project the user owns.
    Returns (user, the keywords `services.dataset_create` needs for that project)."""
    user = get_user_model().objects.create_user(username, password=password)
    try:
        from datasets_app.models import Project, ProjectMembership
    except ImportError:  # before projects: every signed-in user sees every dataset
        return user, {}
    project = Project.objects.create(name=f"{username} project")
    ProjectMembership.objects.create(project=project, user=user, role="owner")
    if "project" in inspect.signature(services.dataset_create).parameters:
        return user, {"project": project}
    return user, {}


def make_dataset(name: str, items: int, project: dict) -> Dataset:
    """A dataset of `items` small items, added through the services in batches of 5,000."""
    dataset = services.dataset_create(name=name, **project)
    for start in range(0, items, 5000):
        batch = [
            {"input": {"n": n, "text": f"question {n}"}, "expected_output": f"answer {n}"}
            for n in range(start, min(items, start + 5000))
        ]
        services.items_bulk_create(dataset=dataset, items=batch)  # type: ignore[arg-type]
    dataset.refresh_from_db()
    return dataset


def machine() -> str:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "?"

    commit = run("git", "rev-parse", "--short", "HEAD")
    dirty = " (+ uncommitted changes)" if run("git", "status", "--porcelain", "--untracked-files=no") else ""
    memory = next(
        (line.split()[1] for line in run("free", "-g").splitlines() if line.startswith("Mem:")),
        "?",
    )
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}{dirty}, "
        f"{os.cpu_count()} cores, {memory} GB RAM, Python {sys.version.split()[0]}, {database()}; {load()}"
    )


def load() -> str:
    """The machine is shared: how busy it was, to read the figures by."""
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def database() -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]} ({connection.settings_dict['NAME']})"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version} ({connection.settings_dict['NAME']})"


def prepare_database() -> None:
    """Migrate; with WhiteNoise in the middleware, collect the static files it serves (DEBUG off)."""
    call_command("migrate", verbosity=0)
    if any("whitenoise" in middleware for middleware in settings.MIDDLEWARE):
        call_command("collectstatic", interactive=False, verbosity=0)


def trivial_url() -> str:
    """`/healthz` where it exists (no template, two small queries), else the login page."""
    try:
        return reverse("healthz")
    except NoReverseMatch:
        return reverse("login")


# ---- this bench ---------------------------------------------------------------------------


def fake_run(dataset: Dataset, count: int) -> DatasetRun:
    """A running run holding `count` results (of the dataset's first `count` items)."""
    now = timezone.now()
    run = DatasetRun.objects.create(
        dataset=dataset,
        dataset_version=dataset.version,
        target_type="workflow",
        target_id="echo",
        scorer_ids=["exact-match", "contains"],
        total_items=count + 1,  # one still to come: the run is running
        status="running",
        started_at=now,
    )
    item_ids = list(DatasetItem.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True)[:count])
    rows = []
    for n, item_id in enumerate(item_ids):
        started = now + timedelta(microseconds=n)
        rows.append(
            {
                "id": uuid.uuid4(),
                "run": run.pk,
                "item": item_id,
                "item_version": 1,
                "repetition": 0,
                "input": {"n": n, "text": f"question {n}"},
                "output": {"n": n, "text": f"question {n}"},
                "expected_output": f"answer {n}",
                "latency": random.random() * 100,
                "error": None if n % 50 else "ValueError: the target failed",
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
                "started_at": started,
                "completed_at": started,
                "created_at": started,
            }
        )
    with transaction.atomic():
        for start in range(0, len(rows), 2000):
            insert_rows(DatasetRunResult, rows[start : start + 2000])
        failed = sum(1 for row in rows if row["error"])
        counters = {
            "succeeded_count": count - failed,
            "failed_count": failed,
            "score_stats": add_scores({}, (row["scores"] for row in rows)),
        }
        if hasattr(summary, "add_latencies"):  # latency figures on the run row (bcffdc5 on), as the writer keeps them
            counters["latency_stats"] = summary.add_latencies({}, (row["latency"] for row in rows))
        DatasetRun.objects.filter(pk=run.pk).update(**counters)
    run.refresh_from_db()
    return run


def urls(run: DatasetRun) -> dict[str, str]:
    return {
        "fragment": reverse("run-results-fragment", args=[run.dataset_id, run.pk]),
        "api-results": f"/api/datasets/{run.dataset_id}/runs/{run.pk}/results",
        "api-run": f"/api/datasets/{run.dataset_id}/runs/{run.pk}",
    }


def timed(client: Client, url: str, repeat: int, *, cold: bool = False, **headers: str) -> float:
    """Median milliseconds of `repeat` GETs (after two warm-up GETs)."""
    times = []
    for n in range(repeat + 2):
        if cold:
            cache.clear()
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: HTTP {response.status_code}\n{response.content[:500]!r}")
        if n >= 2:
            times.append(elapsed * 1000)
    return statistics.median(times)


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN ANALYZE " + sql)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def queries_of(client: Client, url: str, *, cold: bool, **headers: str) -> list[dict]:
    if cold:
        cache.clear()
    with CaptureQueriesContext(connection) as captured:
        client.get(url, headers=headers)
    return [{"sql": q["sql"], "ms": float(q["time"]) * 1000} for q in captured.captured_queries]


def diagnose(label: str, client: Client, small_url: str, big_url: str, *, cold: bool, headers: dict) -> None:
    small = queries_of(client, small_url, cold=cold, **headers)
    big = queries_of(client, big_url, cold=cold, **headers)
    print(
        f"\n-- {label}: {len(small)} queries, {sum(q['ms'] for q in small):.1f} ms at the small run; "
        f"{len(big)} queries, {sum(q['ms'] for q in big):.1f} ms at the big run. Slowest at the big run:"
    )
    for query in sorted(big, key=lambda q: q["ms"], reverse=True)[:4]:
        sql = query["sql"]
        print(f"\n   {query['ms']:8.1f} ms  {sql[:400]}{' …' if len(sql) > 400 else ''}")
        if query["ms"] >= 1 and sql.lstrip().upper().startswith("SELECT"):
            for line in explain(sql).splitlines():
                print(f"              plan: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per figure (median)")
    args = parser.parse_args()

    prepare_database()
    print(f"poll cost: {machine()}")
    started = time.perf_counter()
    user, project = bench_user(f"poll-bench-{uuid.uuid4().hex[:8]}")
    dataset = make_dataset("poll-cost bench", args.big, project)
    big, small = fake_run(dataset, args.big), fake_run(dataset, args.small)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Planner statistics, as autovacuum would soon have them; no VACUUM: the rows of a
            # running run are new, so index-only scans still visit the heap.
            cursor.execute("ANALYZE")
    print(
        f"set-up: {args.big:,} items, runs of {args.big:,} and {args.small:,} results in {time.perf_counter() - started:.0f} s"
    )

    client = Client()
    client.force_login(user)
    hx = {"HX-Request": "true"}
    trivial = timed(client, trivial_url(), args.repeat)
    figures = {}
    for size, run in ((args.small, small), (args.big, big)):
        u = urls(run)
        figures[size] = {
            "fragment, warm cache": timed(client, u["fragment"], args.repeat, **hx),
            "fragment, cold cache": timed(client, u["fragment"], args.repeat, cold=True, **hx),
            "API results (page 0)": timed(client, u["api-results"], args.repeat),
            "API run": timed(client, u["api-run"], args.repeat),
        }

    print(f"\nmedian of {args.repeat} requests, ms; trivial view {trivial_url()}: {trivial:.1f} ms\n")
    print(
        f"{'request':<22} {f'{args.small:,} results':>14} {f'{args.big:,} results':>16} "
        f"{'big / small':>12} {'small / trivial':>16} {'big / trivial':>14}"
    )
    slow = []
    for name in figures[args.small]:
        a, b = figures[args.small][name], figures[args.big][name]
        print(f"{name:<22} {a:>14.1f} {b:>16.1f} {b / a:>11.2f}× {a / trivial:>15.1f}× {b / trivial:>13.1f}×")
        if b / a > 1.5 and b - a >= NOISE_MS:
            slow.append(name)
        elif b / a > 1.5:
            print(f"{'':<22} (over 1.5× but under {NOISE_MS} ms apart: not diagnosed)")

    small_urls, big_urls = urls(small), urls(big)
    for name in slow:
        key = "fragment" if name.startswith("fragment") else "api-results" if "results" in name else "api-run"
        diagnose(
            name,
            client,
            small_urls[key],
            big_urls[key],
            cold="cold" in name,
            headers=hx if key == "fragment" else {},
        )
    print(f"\n{load()}")
    if _TEMP_DB:
        connection.close()
        for path in _TEMP_DB.parent.iterdir():
            path.unlink()
        _TEMP_DB.parent.rmdir()


if __name__ == "__main__":
    main()
