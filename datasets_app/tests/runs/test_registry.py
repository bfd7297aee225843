"""Teams register their own callables as targets and scorers."""

import pytest

from datasets_app import services
from datasets_app.runs import registry


def shout(input, context):
    return str(input).upper() + "!"


def has_bang(*, input, output, expected):
    return {"score": 1.0 if output.endswith("!") else 0.0, "reason": "ends with !"}


@pytest.fixture
def reload_registry():
    yield registry.load
    registry.unregister_target("agent", "shouter")
    registry.unregister_scorer("has-bang")


@pytest.mark.django_db(transaction=True)
def test_callables_registered_by_dotted_path_in_settings_run(settings, reload_registry, make_dataset, run_worker):
    settings.PLAYGROUND_TARGETS = {"agent/shouter": "datasets_app.tests.runs.test_registry.shout"}
    settings.PLAYGROUND_SCORERS = {"has-bang": "datasets_app.tests.runs.test_registry.has_bang"}
    reload_registry()  # what Django's start-up does with these settings

    assert registry.get_target("agent", "shouter").func is shout  # type: ignore[union-attr]
    dataset = make_dataset(items=[{"input": "hello"}])
    run = services.run_start(dataset=dataset, target_type="agent", target_id="shouter", scorer_ids=["has-bang"])
    result = run_worker(run.id).results.get()
    assert result.output == "HELLO!"
    assert result.scores[0]["score"] == 1.0 and result.scores[0]["reason"] == "ends with !"


def test_an_unknown_target_type_is_refused():
    with pytest.raises(ValueError, match="target_type must be one of"):
        registry.register_target("robot", "x")(shout)
