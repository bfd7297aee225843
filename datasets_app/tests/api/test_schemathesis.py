"""Schemathesis against every operation of `/api/schema/`: no request a client
can send answers a 5xx, and every documented answer matches the schema.

The schema needs a login, so it is fetched with a signed-in client and loaded
with `schemathesis.openapi.from_dict`; each case goes to the live server with
a token (`Authorization: Token …`). Before each operation, fresh objects are
seeded — a dataset with items, a finished run with a failed item, its results
and traces, a second run to compare with, and a project that alice owns with
bob as a viewer — and some of the operation's cases name those real ids in
their path (all of them, or only the dataset's), so they get past the 404
into the views, and some valid ones name a real target, runs, items or user
in their body, so they get past the 400; the others take whatever hypothesis
generates. Each operation gets valid data, then invalid data (schemathesis's
positive and negative modes). Checks: `not_a_server_error` and
`response_schema_conformance`, on every answer.

Written as one test over `schema.get_all_operations()` with each operation's
`as_strategy()`, not with `schemathesis.pytest.from_fixture`: that one reads
`request.node._nodeid`, which pytest 9 no longer has.

Bounded: `MAX_EXAMPLES` cases per operation and mode, no shrinking, and a time
budget after which no more requests are sent (the totals say so).
Deterministic: hypothesis's derandomized mode. PostgreSQL only (the second
pass of `make test`); `pytest -s` shows the totals.
"""

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.views import APIView
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from datasets_app import annotations, projects, services
from datasets_app.api import views
from datasets_app.tests.factories import add_result, end_run, make_run

MAX_EXAMPLES = 30
TIME_BUDGET_SECONDS = 200.0

CHECKS = [schemathesis.checks.not_a_server_error, response_schema_conformance]

HYPOTHESIS_SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
    verbosity=hypothesis.Verbosity.quiet,
)


@dataclass
class Tally:
    """What was sent and what came back, over every operation."""

    started: float = field(default_factory=time.monotonic)
    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    failures: list[str] = field(default_factory=list)
    unsent: int = 0

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > TIME_BUDGET_SECONDS

    def summary(self) -> str:
        unsent = f"; time budget reached, {self.unsent} cases not sent" if self.unsent else ""
        return (
            f"schemathesis: {self.operations} operations, {self.cases} cases, {self.server_errors} 5xx, "
            f"{len(self.failures)} failed checks, {time.monotonic() - self.started:.0f} s "
            f"({answers(self.statuses)}){unsent}"
        )


def answers(statuses: Counter[int]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))


@dataclass
class Seeded:
    """Real objects for one operation's cases: by the path parameter that names
    them, and by the body field that does."""

    path: dict[str, str]
    body: dict[str, Any]


def seed_objects(alice: Any) -> Seeded:
    shared = projects.project_create(user=alice, name=f"Shared {uuid.uuid4().hex[:8]}")
    projects.member_set(project=shared, username="bob", role="viewer")
    dataset = services.dataset_create(project=projects.personal_project(alice), name="Capitals")
    items = services.items_bulk_create(
        dataset=dataset,
        items=[
            {"input": {"question": "Capital of France?"}, "expected_output": "Paris"},
            {"input": {"question": "Capital of Japan?"}, "expected_output": "Tokyo"},
            {"input": {"question": "Capital of Peru?"}, "expected_output": "Lima", "context": {"continent": "SA"}},
        ],
    )
    run = make_run(dataset)
    trace_id = uuid.uuid4().hex
    add_result(run, items[0], output="Paris", trace_id=trace_id, usage={"promptTokens": 3, "totalTokens": 5})
    add_result(run, items[1], error="the target failed", trace_id=uuid.uuid4().hex)
    last = add_result(run, items[2], output="Lima", score=0.0)
    end_run(run)
    annotation, _ = annotations.annotation_save(result=last, dataset=dataset, author=alice, label="good")
    other = make_run(dataset)
    for item in items:
        add_result(other, item, output="x", score=0.5)
    end_run(other)
    path = {
        "projectId": str(shared.pk),
        "username": "bob",
        "datasetId": str(dataset.pk),
        "itemId": str(items[0].pk),
        "runId": str(run.pk),
        "resultId": str(last.pk),
        "annotationId": str(annotation.pk),
        "traceId": trace_id,
    }
    body = {
        "targetType": "workflow",
        "targetId": "echo",
        "scorerIds": ["exact-match", "contains"],
        "baselineRunId": str(run.pk),
        "runIds": [str(other.pk)],
        "itemIds": [str(item.pk) for item in items[1:]],
        "resultIds": [str(last.pk)],
        "username": "bob",
    }
    return Seeded(path=path, body=body)


def with_known_values(case: Any, known: dict[str, Any]) -> Any:
    """The case with the body fields that name something (a target, a run, an
    item, a user) naming a real one, so that it gets past the 400 or 404."""
    if isinstance(case.body, dict):
        for field in case.body.keys() & known.keys():
            case.body[field] = known[field]
    return case


def strategy_for(operation: Any, mode: GenerationMode, seeded: Seeded) -> Any:
    """The operation's cases in `mode`, some with the real ids in their path:
    all of them, or only the dataset's. Invalid cases with real ids carry their
    invalid data in the query or body, when the operation takes either; some
    valid ones also name real things in their body."""
    generated = operation.as_strategy(generation_mode=mode)
    names = [p.name for p in operation.path_parameters]
    takes_data = bool(list(operation.query)) or bool(list(operation.body))
    if mode is GenerationMode.NEGATIVE and not takes_data:
        return generated
    real = operation.as_strategy(generation_mode=mode, path_parameters={n: seeded.path[n] for n in names})
    variants = [real, generated] if names else [real]
    if mode is GenerationMode.POSITIVE and list(operation.body):
        variants.append(real.map(lambda case: with_known_values(case, seeded.body)))
    if "datasetId" in names and len(names) > 1:
        only = operation.as_strategy(generation_mode=mode, path_parameters={"datasetId": seeded.path["datasetId"]})
        variants.append(only)
    return st.one_of(variants)


@pytest.fixture
def unthrottled(settings, monkeypatch) -> None:
    """No throttle answers 429 in this test. The views take their throttle
    classes when they are imported, so those are emptied too."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_CLASSES": [],
        "DEFAULT_THROTTLE_RATES": {"user": None, "anon": None, "run_start": "1000000/min"},
    }
    monkeypatch.setattr(APIView, "throttle_classes", [])
    for view in (views.RunListView, views.RunRerunFailedView):
        monkeypatch.setattr(view, "throttle_classes", [])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_request_answers_a_server_error(live_server, user, django_user_model, unthrottled):
    django_user_model.objects.create_user(username="bob", password="bob's password")
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    client = APIClient()
    client.force_login(user)
    document = client.get("/api/schema/", {"format": "json"})
    assert document.status_code == 200
    schema = schemathesis.openapi.from_dict(document.json())
    tally = Tally()

    def send(case: Any) -> None:
        if tally.out_of_time():
            tally.unsent += 1
            return
        response = case.call(base_url=live_server.url, headers=headers, timeout=60)
        tally.cases += 1
        tally.statuses[response.status_code] += 1
        operation_statuses[response.status_code] += 1
        tally.server_errors += response.status_code >= 500
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as failed:
            tally.failures.append(f"{case.operation.label}: {failed}")

    print()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        tally.operations += 1
        operation_statuses: Counter[int] = Counter()
        seeded = seed_objects(user)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @HYPOTHESIS_SETTINGS
            @hypothesis.given(case=strategy_for(operation, mode, seeded))
            def cases(case: Any) -> None:
                send(case)

            try:
                cases()
            except hypothesis.errors.Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): the valid cases covered it.
                assert mode is GenerationMode.NEGATIVE, operation.label
        print(f"{operation.label}: {answers(operation_statuses)}")

    print(tally.summary())
    assert not tally.failures, "\n\n".join(tally.failures)
    assert tally.server_errors == 0
