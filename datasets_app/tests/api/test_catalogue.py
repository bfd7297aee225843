import pytest

from datasets_app.runs.registry import register_scorer, register_target, unregister_scorer, unregister_target

pytestmark = pytest.mark.django_db


@pytest.fixture
def plugin():
    register_target("callable", "my-bot", name="My bot", description="Ours")(lambda input, context: input)
    register_scorer("my-scorer", name="Mine", description="Scores")(lambda *, input, output, expected: 1.0)
    yield
    unregister_target("callable", "my-bot")
    unregister_scorer("my-scorer")


def test_targets_list_the_catalogue(api, plugin):
    targets = api.get("/api/targets").json()["targets"]

    assert {
        "targetType": "callable",
        "targetId": "my-bot",
        "name": "My bot",
        "description": "Ours",
        "available": True,
        "unavailableReason": None,
    } in targets
    assert any(t["targetType"] == "workflow" and t["targetId"] == "echo" for t in targets)


def test_scorers_list_the_catalogue(api, plugin):
    scorers = api.get("/api/scorers").json()["scorers"]

    assert {
        "scorerId": "my-scorer",
        "name": "Mine",
        "description": "Scores",
        "available": True,
        "unavailableReason": None,
    } in scorers
    assert any(s["scorerId"] == "exact-match" for s in scorers)


def test_the_catalogue_says_what_is_not_configured(api, settings):
    settings.OPENAI_BASE_URL = settings.OPENAI_API_KEY = ""
    targets = {f"{t['targetType']}/{t['targetId']}": t for t in api.get("/api/targets").json()["targets"]}
    assert targets["workflow/echo"]["available"] is True and targets["workflow/echo"]["unavailableReason"] is None
    assert targets["model/chat"]["available"] is False and "OPENAI" in targets["model/chat"]["unavailableReason"]
    scorers = {s["scorerId"]: s for s in api.get("/api/scorers").json()["scorers"]}
    assert scorers["factuality"]["available"] is False
