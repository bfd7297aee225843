"""`GET /healthz`: is this web process able to serve, for load balancers and monitors.

No login, no data beyond counts. 200 while the database answers:

    {"status": "ok", "database": "ok",
     "workers": {"alive": 2, "lastSeenAt": "2026-01-01T12:00:00.123456+00:00", "state": "ok"},
     "queue": {"pending": 3, "running": 1}}

503 when it does not: `{"status": "error", "database": "error: OperationalError"}`
(the exception's class only: the full reason, which may name hosts, goes to the
server log, not to whoever asks).

Workers: nothing records an idle worker. A worker leaves a trace only in the
chunk leases it holds (`RunChunk.lease_owner`, `lease_expires_at`, renewed
about five times per PLAYGROUND_LEASE_SECONDS while it works), so:

* `alive` counts the distinct lease owners with a lease that has not run out,
  i.e. workers busy with a run right now; idle workers count 0;
* `lastSeenAt` is the newest lease renewal still on record (the lease's expiry
  minus PLAYGROUND_LEASE_SECONDS); finished chunks drop their lease, so it is
  null when no chunk is held or abandoned, even if workers are up and idle.

What can be told is whether work waits on workers that are not there: no live
lease while a run's chunk has waited longer than STALLED_AFTER seconds (a new
run's since the run was created, an abandoned chunk's since its lease ran out).
Then `workers.state` is "error: no worker has claimed work for 60 s while 3 runs
wait" and the top `status` is "degraded", but the answer stays 200: a load
balancer uses this to pick web processes, and the web tier serves pages and the
API fine without workers. Alert on "degraded" from a monitor instead.

`queue.pending` / `queue.running` count runs in those states.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.db.models import Count, Max, Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from datasets_app.models import DatasetRun, RunChunk

logger = logging.getLogger(__name__)

STALLED_AFTER = 60  # seconds a run's work may wait with no worker alive before the workers are "error"


def database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def queue_state() -> dict[str, int]:
    counts = dict(
        DatasetRun.objects.filter(status__in=DatasetRun.ACTIVE_STATUSES)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {"pending": counts.get(DatasetRun.Status.PENDING, 0), "running": counts.get(DatasetRun.Status.RUNNING, 0)}


def worker_state() -> dict[str, Any]:
    now = timezone.now()
    lease = timedelta(seconds=settings.PLAYGROUND_LEASE_SECONDS)
    live = RunChunk.objects.filter(status=RunChunk.Status.RUNNING, lease_expires_at__gte=now).exclude(lease_owner="")
    alive = live.values("lease_owner").distinct().count()
    newest_expiry = RunChunk.objects.exclude(lease_expires_at=None).aggregate(newest=Max("lease_expires_at"))["newest"]
    state = "ok"
    if not alive:
        since = now - timedelta(seconds=STALLED_AFTER)
        waiting = (
            RunChunk.objects.filter(run__status__in=DatasetRun.ACTIVE_STATUSES)
            .filter(
                Q(status=RunChunk.Status.PENDING, lease_expires_at=None, run__created_at__lt=since)
                | Q(status__in=[RunChunk.Status.PENDING, RunChunk.Status.RUNNING], lease_expires_at__lt=since)
            )
            .values("run_id")
            .distinct()
            .count()
        )
        if waiting:
            runs = "run waits" if waiting == 1 else "runs wait"
            state = f"error: no worker has claimed work for {STALLED_AFTER} s while {waiting} {runs}"
    return {
        "alive": alive,
        "lastSeenAt": (newest_expiry - lease).isoformat() if newest_expiry else None,
        "state": state,
    }


@login_not_required
@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        database_check()
        workers = worker_state()
        queue = queue_state()
    except DatabaseError as error:
        logger.warning("Health check: the database failed: %s", error)
        return JsonResponse({"status": "error", "database": f"error: {type(error).__name__}"}, status=503)
    status = "ok" if workers["state"] == "ok" else "degraded"
    return JsonResponse({"status": status, "database": "ok", "workers": workers, "queue": queue})
