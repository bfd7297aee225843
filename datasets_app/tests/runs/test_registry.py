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


# ---- offer only what works -------------------------------------------------------


@pytest.fixture
def unconfigured(settings):
    settings.OPENAI_BASE_URL = settings.OPENAI_API_KEY = settings.HTTP_TARGET_URL = ""
    return settings


def test_remote_targets_and_llm_judges_need_their_settings(unconfigured):
    chat, http = registry.get_target("model", "chat"), registry.get_target("http", "endpoint")
    judges = [registry.get_scorer("factuality"), registry.get_scorer("closed-qa")]

    assert registry.unavailable_reason(chat) == "Set OPENAI_BASE_URL or OPENAI_API_KEY"  # type: ignore[arg-type]
    assert registry.unavailable_reason(http) == "Set HTTP_TARGET_URL"  # type: ignore[arg-type]
    assert [registry.unavailable_reason(j) for j in judges] == ["Set OPENAI_BASE_URL or OPENAI_API_KEY"] * 2  # type: ignore[arg-type]
    targets = {(t.target_type, t.target_id) for t in registry.available_targets()}
    scorers = {s.scorer_id for s in registry.available_scorers()}
    assert ("model", "chat") not in targets and ("http", "endpoint") not in targets
    assert ("workflow", "echo") in targets and ("agent", "keyword-agent") in targets
    assert not {"factuality", "closed-qa"} & scorers and {"exact-match", "contains"} <= scorers
    # The full catalogue still lists them (pages can show why they are not offered).
    assert {("model", "chat"), ("http", "endpoint")} <= {(t.target_type, t.target_id) for t in registry.all_targets()}


@pytest.mark.parametrize("setting", ["OPENAI_BASE_URL", "OPENAI_API_KEY"])
def test_either_openai_setting_makes_the_model_and_the_judges_available(unconfigured, setting):
    setattr(unconfigured, setting, "http://127.0.0.1:9/v1" if setting == "OPENAI_BASE_URL" else "sk-test")

    assert registry.unavailable_reason(registry.get_target("model", "chat")) is None  # type: ignore[arg-type]
    assert {"factuality", "closed-qa"} <= {s.scorer_id for s in registry.available_scorers()}
    assert ("http", "endpoint") not in {(t.target_type, t.target_id) for t in registry.available_targets()}


def test_the_http_target_is_available_once_its_url_is_set(unconfigured):
    unconfigured.HTTP_TARGET_URL = "http://127.0.0.1:9/answer"

    assert ("http", "endpoint") in {(t.target_type, t.target_id) for t in registry.available_targets()}


@pytest.fixture
def plugins():
    yield
    registry.unregister_target("agent", "needs-flag")
    registry.unregister_target("agent", "broken-check")
    registry.unregister_scorer("needs-flag")


def test_plugins_declare_what_they_need(plugins, settings):
    settings.SUPPORT_FLAG = ""
    registry.register_target("agent", "needs-flag", available=registry.requires_any_setting("SUPPORT_FLAG"))(shout)
    registry.register_scorer("needs-flag", available=lambda: None if settings.SUPPORT_FLAG else "Turn the flag on")(
        has_bang
    )

    def broken():
        raise KeyError("token")

    registry.register_target("agent", "broken-check", available=broken)(shout)

    assert registry.unavailable_reason(registry.get_target("agent", "needs-flag")) == "Set SUPPORT_FLAG"  # type: ignore[arg-type]
    assert registry.unavailable_reason(registry.get_scorer("needs-flag")) == "Turn the flag on"  # type: ignore[arg-type]
    assert registry.unavailable_reason(registry.get_target("agent", "broken-check")) == (  # type: ignore[arg-type]
        "Cannot tell whether it is configured: KeyError: 'token'"
    )
    assert "needs-flag" not in {s.scorer_id for s in registry.available_scorers()}

    settings.SUPPORT_FLAG = "on"  # read at each call

    assert registry.unavailable_reason(registry.get_target("agent", "needs-flag")) is None  # type: ignore[arg-type]
    assert "needs-flag" in {s.scorer_id for s in registry.available_scorers()}
    assert ("agent", "broken-check") not in {(t.target_type, t.target_id) for t in registry.available_targets()}


def test_entries_registered_without_a_check_are_always_available(plugins):
    registry.register_target("agent", "needs-flag")(shout)  # the plugin interface as before

    target = registry.get_target("agent", "needs-flag")
    assert target is not None and target.available is None and registry.unavailable_reason(target) is None
