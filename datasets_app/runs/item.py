"""Execute one item: target attempts with timeout and retries, then scorers,
all in one trace. Returns an `Outcome` for the writer; never raises for
anything the user's code does.

Async callables are awaited on the worker's event loop under the attempt's
timeout, so a timeout, a cancel or a lost lease really cancels them. Sync callables run in a sandbox process (`isolation.py`) that is killed
at the same moments. Only built-ins registered with `isolated=False` (cheap
code that cannot hang) run inline.
"""

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from ..jsonsafe import UnsafeJSON, check_json, encode
from .errors import AttemptTimeout, RemoteError, error_message, is_transient
from .isolation import pool
from .registry import Scorer, Target, TargetOutput
from .rows import EncodedJSON, time_ordered_uuid
from .tracing import SPAN_KIND, ItemTrace, Span, io_attributes, target_span_kind, usage_attributes

logger = logging.getLogger(__name__)

CANCEL_GRACE = 2.0  # seconds a timed-out async call gets to honour its cancellation


def encode_json(value: Any) -> EncodedJSON:
    """JSON text of a value that came out of storage (checked on the way in)."""
    return EncodedJSON(encode(value))


@dataclass(slots=True)
class Job:
    item_id: uuid.UUID
    item_version: int
    repetition: int
    input: Any
    expected_output: Any
    context: Any
    # Encoded once: stored with the result and shown on the spans.
    input_json: EncodedJSON
    expected_json: EncodedJSON

    @property
    def key(self) -> str:
        """How `RunChunk.crash_counts` names this job."""
        return f"{self.item_id}:{self.repetition}"


@dataclass(slots=True)
class Outcome:
    job: Job
    result_id: uuid.UUID = field(default_factory=time_ordered_uuid)
    output: Any = None
    output_json: EncodedJSON | None = None
    error: str | None = None
    usage: dict | None = None
    scores: list = field(default_factory=list)
    retry_count: int = 0
    latency_ms: float = 0.0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    trace_id: str | None = None
    spans: list = field(default_factory=list)

    @classmethod
    def failed_without_running(cls, job: Job, error: str) -> "Outcome":
        now = datetime.now(tz=UTC)
        return cls(job=job, error=error, started_at=now, completed_at=now)


def backoff_delay(retry: int) -> float:
    """Exponential backoff with full jitter: base·2^(retry-1), half fixed, half random."""
    base = settings.PLAYGROUND_RETRY_BASE_DELAY * (2 ** (retry - 1))
    capped = min(base, settings.PLAYGROUND_RETRY_MAX_DELAY)
    return capped / 2 + random.uniform(0, capped / 2)


def _normalise_score(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, dict):
        score, reason = value.get("score"), value.get("reason")
    else:
        score, reason = value, None
    if score is None:
        return None, None if reason is None else str(reason)[:2000]
    if isinstance(score, bool):
        score = float(score)
    if not isinstance(score, (int, float)) or not (0 <= score <= 1):
        raise ValueError(f"score must be a number in 0..1, got {score!r}")
    return float(score), None if reason is None else str(reason)[:2000]


def _being_cancelled() -> bool:
    """True when our own task is being cancelled (cancel, lost lease, shutdown),
    as opposed to user code raising CancelledError of its own."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class ItemExecutor:
    """Everything a run's items share: the target, scorers and limits."""

    def __init__(
        self,
        *,
        run_id: uuid.UUID,
        dataset_id: uuid.UUID,
        target: Target,
        scorers: list[Scorer],
        timeout: float,
        max_retries: int,
    ):
        self.run_id, self.dataset_id = str(run_id), str(dataset_id)
        self.target = target
        self.scorers = scorers
        self.timeout = timeout
        self.max_retries = max_retries
        self.target_kind = target_span_kind(target.target_type)
        # The root span's attributes every item of the run shares, built once.
        self.run_attributes = {
            SPAN_KIND: "CHAIN",
            "playground.run_id": self.run_id,
            "playground.dataset_id": self.dataset_id,
            "playground.target": f"{target.target_type}/{target.target_id}",
        }
        self.metadata_prefix = json.dumps({"runId": self.run_id, "datasetId": self.dataset_id})[:-1]

    async def execute(self, job: Job) -> Outcome:
        """The item's outcome. Cancelling the calling task abandons the item:
        its calls are cancelled or killed, and its spans are never stored."""
        first_started = time.time()
        outcome = Outcome(job=job, started_at=datetime.fromtimestamp(first_started, tz=UTC))
        trace = ItemTrace()
        root = trace.start("run item")
        root.set_built_attributes(self._root_attributes(job))
        finished = await self._run_target(job, outcome, trace, root)
        outcome.latency_ms = round((finished - first_started) * 1000, 3)
        outcome.completed_at = datetime.fromtimestamp(finished, tz=UTC)
        if outcome.error is None:
            outcome.scores = [
                await self._run_scorer(scorer, job, outcome.output, trace, root) for scorer in self.scorers
            ]
        self._end_root(root, outcome)
        outcome.trace_id, outcome.spans = trace.trace_id, trace.as_dicts()
        return outcome

    def _root_attributes(self, job: Job) -> dict:
        item_id = str(job.item_id)
        # json.dumps of {runId, datasetId, itemId, itemVersion, repetition}: ids and ints need no escaping.
        metadata = (
            f'{self.metadata_prefix}, "itemId": "{item_id}", '
            f'"itemVersion": {job.item_version}, "repetition": {job.repetition}}}'
        )
        return {
            **self.run_attributes,
            **io_attributes("input", job.input, job.input_json.text),
            "metadata": metadata,
            "playground.item_id": item_id,
            "playground.item_version": job.item_version,
            "playground.repetition": job.repetition,
        }

    def _end_root(self, root: Span, outcome: Outcome) -> None:
        attributes = {
            "playground.latency_ms": outcome.latency_ms,
            "playground.retry_count": outcome.retry_count,
            **usage_attributes(outcome.usage),
        }
        if outcome.error is not None:
            attributes["error.message"] = outcome.error
            root.fail(outcome.error, "ItemFailed")
        else:
            attributes.update(io_attributes("output", outcome.output, outcome.output_json.text))  # type: ignore[union-attr]
            root.ok()
        root.set_attributes(attributes)
        root.end()

    async def _call(self, kind: str, key: tuple, func: Callable, isolated: bool, *args: Any, **kwargs: Any) -> Any:
        """One call under the timeout. A sync call runs in a sandbox, killed at
        once when its timeout ends it. An async call runs as its own task, so that
        code which swallows its cancellation cannot hold the item: after a short
        grace it is left behind."""

        if isolated:
            # Our own code until the sandbox answers: a cancellation always ends it.
            try:
                async with asyncio.timeout(self.timeout):
                    return await pool.call(kind, key, *args, **kwargs)
            except TimeoutError:
                raise AttemptTimeout(f"Timed out after {self.timeout:g} s") from None
        if not asyncio.iscoroutinefunction(func):
            return func(*args, **kwargs)  # a built-in that cannot hang: no task, no timer

        async def invoke() -> Any:
            try:
                return await func(*args, **kwargs)
            except (SystemExit, KeyboardInterrupt) as exc:
                # asyncio lets these out of the event loop, ending the worker: carry them as a value.
                raise RemoteError(type(exc).__name__, str(exc), transient=False) from None

        # Started eagerly: a call that finishes without suspending (a cheap async
        # target) returns here, without a trip through the event loop or a timer.
        call = asyncio.Task(invoke(), loop=asyncio.get_running_loop(), eager_start=True)
        if call.done():
            return call.result()
        try:
            done, _ = await asyncio.wait({call}, timeout=self.timeout)
        except asyncio.CancelledError:
            call.cancel()
            raise
        if not done:
            call.cancel()
            await asyncio.wait({call}, timeout=CANCEL_GRACE)
            if not call.done():
                logger.warning("%s %s ignored its cancellation; left behind", kind, "/".join(key))
            raise AttemptTimeout(f"Timed out after {self.timeout:g} s")
        return call.result()

    async def _run_target(self, job: Job, outcome: Outcome, trace: ItemTrace, root: Span) -> float:
        """Call the target, retrying transient failures; one span per attempt
        ("target", then "target retry 1", …). Returns when the last attempt ended."""
        target = self.target
        for attempt in range(self.max_retries + 1):
            span = trace.start(
                "target" if attempt == 0 else f"target retry {attempt}",
                parent=root,
                attributes={SPAN_KIND: self.target_kind, **io_attributes("input", job.input, job.input_json.text)},
            )
            retry = False
            try:
                value = await self._call(
                    "target",
                    (target.target_type, target.target_id),
                    target.func,
                    target.isolated,
                    job.input,
                    job.context,
                )
                if isinstance(value, TargetOutput):
                    check_json(value.attributes, label="span attributes")
                    span.set_attributes(value.attributes)
                    span.set_attributes(usage_attributes(value.usage, value.attributes.get("gen_ai.request.model")))
                    if value.usage is not None:
                        check_json(value.usage, label="usage")
                    outcome.usage = value.usage
                    value = value.output
                text = check_json(value, label="output", max_bytes=settings.PLAYGROUND_MAX_OUTPUT_BYTES)
                outcome.output, outcome.output_json, outcome.error = value, EncodedJSON(text), None
                span.set_attributes(io_attributes("output", value, text))
                span.ok()
            except asyncio.CancelledError as exc:
                if _being_cancelled():
                    raise
                outcome.error = error_message(exc)  # the user's code raised it: this item's error
                self._fail_span(span, exc)
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                outcome.output, outcome.output_json, outcome.usage = None, None, None
                outcome.error = error_message(exc)
                self._fail_span(span, exc)
                retry = is_transient(exc) and not isinstance(exc, UnsafeJSON)
            finally:
                span.end()
            outcome.retry_count = attempt
            if not retry or attempt == self.max_retries:
                break
            await asyncio.sleep(backoff_delay(attempt + 1))
        return time.time()

    @staticmethod
    def _fail_span(span: Span, exc: BaseException) -> None:
        span.fail(error_message(exc), getattr(exc, "type_name", type(exc).__name__))

    async def _run_scorer(self, scorer: Scorer, job: Job, output: Any, trace: ItemTrace, root: Span) -> dict:
        entry: dict[str, Any] = {
            "scorerId": scorer.scorer_id,
            "scorerName": scorer.name,
            "score": None,
            "reason": None,
            "error": None,
        }
        span = trace.start(f"scorer {scorer.scorer_id}", parent=root, attributes={SPAN_KIND: "EVALUATOR"})
        try:
            value = await self._call(
                "scorer",
                (scorer.scorer_id,),
                scorer.func,
                scorer.isolated,
                input=job.input,
                output=output,
                expected=job.expected_output,
            )
            entry["score"], entry["reason"] = _normalise_score(value)
            check_json(entry, label=f"scorer {scorer.scorer_id}")
            if entry["score"] is not None:
                span.set_attributes({"playground.score": entry["score"]})
            span.set_attributes(io_attributes("output", {"score": entry["score"], "reason": entry["reason"]}))
            span.ok()
        except asyncio.CancelledError as exc:
            if _being_cancelled():
                raise
            entry["error"] = error_message(exc)
            self._fail_span(span, exc)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            entry["score"], entry["reason"], entry["error"] = None, None, error_message(exc)
            self._fail_span(span, exc)
        finally:
            span.end()
        return entry
