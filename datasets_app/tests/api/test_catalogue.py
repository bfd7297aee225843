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

    assert {"targetType": "callable", "targetId": "my-bot", "name": "My bot", "description": "Ours"} in targets
    assert any(t["targetType"] == "workflow" and t["targetId"] == "echo" for t in targets)


def test_scorers_list_the_catalogue(api, plugin):
    scorers = api.get("/api/scorers").json()["scorers"]

    assert {"scorerId": "my-scorer", "name": "Mine", "description": "Scores"} in scorers
    assert any(s["scorerId"] == "exact-match" for s in scorers)
