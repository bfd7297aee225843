"""`manage.py run_worker`: the process that executes runs.

One worker process is one event loop (`datasets_app/runs/worker.py`). With
`--processes N` this command is instead a supervisor: it starts N worker
processes (plus one OTLP exporter process when export is on) and starts a
fresh one whenever one dies (a crash, kill -9, a stalled event loop), so
`make run` and a Procfile line keep working through anything user code does. SIGTERM (or Ctrl-C) drains: stop claiming, finish or
release every chunk, exit.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from datasets_app.runs import export
from datasets_app.runs.isolation import die_with_parent
from datasets_app.runs.worker import Worker, new_worker_id

logger = logging.getLogger("datasets_app.worker")

RESTART_BACKOFF_MAX = 10.0  # seconds between restarts of a worker that keeps dying at once


class Command(BaseCommand):
    help = "Run the background worker that executes dataset runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--processes", type=int, default=0, help="Supervise this many worker processes, restarting any that dies"
        )
        parser.add_argument(
            "--worker-id",
            default=None,
            help="Name in chunk leases, after host:pid:pid-namespace (default: a random one)",
        )
        parser.add_argument("--batch", action="store_true", help="Exit when there is no work left")
        parser.add_argument(
            "--exporter", action="store_true", help="Only drain the OTLP export outbox (the supervisor starts one)"
        )
        parser.add_argument(
            "--no-exporter-thread", action="store_true", help="Leave the export outbox to a separate --exporter process"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["processes"]:
            return self._supervise(options["processes"])
        if options["exporter"]:
            return self._export()
        Worker(
            worker_id=new_worker_id(options["worker_id"]),
            until_idle=options["batch"],
            handle_signals=True,
            export_thread=not options["no_exporter_thread"],
        ).run()

    @staticmethod
    def _export() -> None:
        os.nice(10)  # export may lag a little; the workers' event loops must not
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        export.run_exporter(stop)

    def _supervise(self, count: int) -> None:
        base = [sys.executable, sys.argv[0], "run_worker", "--skip-checks"]
        # With OTLP export on, one more process drains the outbox, so export
        # never takes CPU from the event loops that run items.
        commands = [[*base, "--no-exporter-thread"]] * count
        if export.export_enabled():
            commands.append([*base, "--exporter"])
        processes: dict[int, subprocess.Popen] = {}
        started: dict[int, float] = {}
        backoff: dict[int, float] = {}
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True
            for process in processes.values():
                process.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

        def spawn(slot: int) -> subprocess.Popen:
            # A supervisor that is killed outright takes its workers with it (they drain).
            return subprocess.Popen(commands[slot], preexec_fn=lambda: die_with_parent(signal.SIGTERM))

        for slot in range(len(commands)):
            processes[slot], started[slot] = spawn(slot), time.monotonic()
        while processes:
            time.sleep(0.2)
            for slot, process in list(processes.items()):
                code = process.poll()
                if code is None:
                    continue
                if stopping:
                    del processes[slot]
                    continue
                # Quick deaths back off, so a broken setup does not spin.
                quick = time.monotonic() - started[slot] < 5
                backoff[slot] = min(RESTART_BACKOFF_MAX, backoff.get(slot, 0.1) * 2) if quick else 0.1
                logger.warning(
                    "Worker process %s exited with %s; restarting in %.1f s", process.pid, code, backoff[slot]
                )
                time.sleep(backoff[slot])
                processes[slot], started[slot] = spawn(slot), time.monotonic()
