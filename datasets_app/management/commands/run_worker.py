"""`manage.py run_worker`: django-tasks-db's db_worker plus a lease reaper.

The reaper thread re-enqueues chunks whose worker died (kill -9, lost
machine), so a run never stays `running` with nobody working on it while at
least one worker is alive. All db_worker options apply.
"""

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from datasets_app.runs.tasks import reap_expired_chunks

logger = logging.getLogger("datasets_app.worker")


class Command(DbWorkerCommand):
    help = "Run the background worker that executes dataset runs (db_worker + lease reaper)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        # db_worker reloads on code changes when DEBUG is on, by running the
        # worker in a child process; a supervisor (or a test) that kills the
        # worker would then kill only the parent and orphan the child.
        parser.set_defaults(reload=False)

    def handle(self, *args, **options):
        stop = threading.Event()
        reaper = threading.Thread(target=self._reap_forever, args=(stop,), daemon=True, name="lease-reaper")
        reaper.start()
        try:
            return super().handle(*args, **options)
        finally:
            stop.set()

    @staticmethod
    def _reap_forever(stop: threading.Event) -> None:
        interval = max(0.5, settings.PLAYGROUND_LEASE_SECONDS / 3)
        while not stop.wait(interval):
            try:
                close_old_connections()
                reap_expired_chunks()
            except Exception:  # noqa: BLE001 — a busy database must not kill the reaper
                logger.exception("Lease reaper failed; trying again in %.1f s", interval)
            finally:
                connection.close()
