"""`manage.py run_dataset`: run a dataset from a terminal or CI.

    manage.py run_dataset "Capitals" --target agent/keyword-agent \
        --scorer exact-match --scorer contains --concurrency 8 --fail-under 0.8

Executes in this process (no worker needed, though running workers help), shows a progress bar, prints a
summary table and exits 1 when any scorer's mean is under --fail-under, or
when the run failed — usable as a CI gate.
"""

import sys
import threading
import uuid
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from datasets_app import services
from datasets_app.exceptions import PlaygroundError
from datasets_app.models import Dataset, DatasetRun, Trace, TraceOutbox
from datasets_app.runs import export, registry, summary
from datasets_app.runs.worker import Worker


class Command(BaseCommand):
    help = "Run a dataset against a target and print a scored summary (exit 1 under --fail-under)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="Dataset id or exact name")
        parser.add_argument("--target", required=True, help="TYPE/ID (e.g. agent/keyword-agent) or a unique ID")
        parser.add_argument("--scorer", action="append", default=[], help="Scorer id (repeatable)")
        parser.add_argument("--concurrency", type=int, default=5)
        parser.add_argument("--timeout", type=float, default=None, help="Seconds per attempt")
        parser.add_argument("--retries", type=int, default=0)
        parser.add_argument("--repetitions", type=int, default=1)
        parser.add_argument("--dataset-version", type=int, default=None)
        parser.add_argument("--pass-threshold", type=float, default=0.5, help="Score counted as a pass (default 0.5)")
        parser.add_argument("--fail-under", type=float, default=None, help="Exit 1 if any scorer mean is below this")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = self._dataset(options["dataset"])
        target_type, target_id = self._target(options["target"])
        try:
            run = services.run_start(
                dataset=dataset,
                target_type=target_type,
                target_id=target_id,
                scorer_ids=options["scorer"],
                version=options["dataset_version"],
                max_concurrency=options["concurrency"],
                item_timeout=options["timeout"],
                max_retries=options["retries"],
                repetitions=options["repetitions"],
            )
        except PlaygroundError as exc:
            raise CommandError(f"{exc.message}: {exc.errors}") from exc
        self.stdout.write(f"Run {run.id}: {run.total_items} item(s) of '{dataset.name}' v{run.dataset_version}")

        done = threading.Event()
        progress = threading.Thread(target=self._show_progress, args=(run.pk, done), daemon=True)
        progress.start()
        # This process works on the run itself; running workers may share it.
        Worker(until_idle=True, run_id=run.pk).run()
        done.set()
        progress.join()

        run.refresh_from_db()
        scorers = summary.scorer_stats(run, pass_threshold=options["pass_threshold"])
        self._print_summary(run, scorers)
        if export.export_enabled():
            self._print_export(run)
        failing = self._gate(run, scorers, options["fail_under"])
        if failing:
            self.stderr.write(self.style.ERROR(failing))
            sys.exit(1)

    def _dataset(self, ref: str) -> Dataset:
        try:
            return Dataset.objects.get(pk=uuid.UUID(ref))
        except (ValueError, Dataset.DoesNotExist):
            pass
        matches = list(Dataset.objects.filter(name=ref)[:2])
        if len(matches) != 1:
            raise CommandError(f"No single dataset with id or name {ref!r}")
        return matches[0]

    def _target(self, ref: str) -> tuple[str, str]:
        if "/" in ref:
            target_type, target_id = ref.split("/", 1)
            return target_type, target_id
        found = [t for t in registry.all_targets() if t.target_id == ref]
        if len(found) != 1:
            choices = ", ".join(f"{t.target_type}/{t.target_id}" for t in registry.all_targets())
            raise CommandError(f"Target {ref!r} is unknown or ambiguous; choose one of: {choices}")
        return found[0].target_type, found[0].target_id

    def _show_progress(self, run_id: UUID, done: threading.Event) -> None:
        width = 30
        try:
            while True:
                finished = done.wait(0.25)
                run = DatasetRun.objects.only("total_items", "succeeded_count", "failed_count").get(pk=run_id)
                total = max(run.total_items, 1)
                filled = int(width * run.done_count / total)
                self.stdout.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] {run.done_count}/{run.total_items}"
                    f"  ok {run.succeeded_count}  failed {run.failed_count}",
                    ending="",
                )
                self.stdout.flush()
                if finished:
                    self.stdout.write("")
                    return
        finally:
            connection.close()

    def _print_summary(self, run: DatasetRun, scorers: list[summary.ScorerStats]) -> None:
        self.stdout.write(f"\nStatus: {run.status}   results: {run.done_count}   errors: {run.failed_count}")
        latency = summary.latency_summary(run)
        if latency.p50 is not None and latency.p95 is not None:
            self.stdout.write(f"Latency p50 {latency.p50:.1f} ms   p95 {latency.p95:.1f} ms")
        if scorers:
            self.stdout.write(f"\n{'scorer':<24} {'mean':>8} {'pass rate':>10} {'scored':>8} {'errors':>7}")
            for scorer in scorers:
                mean = "—" if scorer.mean is None else f"{scorer.mean:.3f}"
                rate = "—" if scorer.pass_rate is None else f"{scorer.pass_rate:.1%}"
                self.stdout.write(f"{scorer.scorer_id:<24} {mean:>8} {rate:>10} {scorer.count:>8} {scorer.errors:>7}")

    def _print_export(self, run: DatasetRun) -> None:
        """Whether the run's traces reached the OTLP collector before this process ends."""
        traced = Trace.objects.filter(run_id=run.pk).count()
        waiting = TraceOutbox.objects.filter(trace__run_id=run.pk).count()
        if not waiting:
            self.stdout.write(f"\nTraces: all {traced} sent to the OTLP collector")
            return
        self.stdout.write(
            f"\nTraces: {traced - waiting} of {traced} sent to the OTLP collector; {waiting} wait in the "
            "outbox (the collector did not take them in time) and a running `manage.py run_worker` sends them"
        )

    def _gate(self, run: DatasetRun, scorers: list[summary.ScorerStats], fail_under: float | None) -> str | None:
        if run.status != DatasetRun.Status.COMPLETED:
            return f"Run ended {run.status}"
        if fail_under is None:
            return None
        below = [
            f"{s.scorer_id} mean {0 if s.mean is None else s.mean:.3f} < {fail_under}"
            for s in scorers
            if s.mean is None or s.mean < fail_under
        ]
        return "Below --fail-under: " + "; ".join(below) if below else None
