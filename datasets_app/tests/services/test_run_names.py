"""Named runs: a default name that says what ran and when, tags, and edits at any status."""

import pytest

from datasets_app import services
from datasets_app.exceptions import InvalidInput
from datasets_app.models import DatasetRun
from datasets_app.tests.factories import end_run, make_run

pytestmark = pytest.mark.django_db


def test_a_run_without_a_name_is_named_after_its_target_and_start(capitals):
    run = services.run_start(dataset=capitals, target_type="workflow", target_id="echo")
    assert run.name.startswith("echo · 20") and len(run.name) == len("echo · 2026-12-02 09:30")


def test_name_description_metadata_and_tags_are_kept_and_tags_cleaned(capitals):
    run = services.run_start(
        dataset=capitals,
        target_type="workflow",
        target_id="echo",
        name="  baseline  ",
        description="before the prompt change",
        metadata={"commit": "abc123"},
        tags=["prod", " prod ", "", "nightly"],
    )
    run.refresh_from_db()
    assert (run.name, run.description, run.metadata, run.tags) == (
        "baseline",
        "before the prompt change",
        {"commit": "abc123"},
        ["prod", "nightly"],
    )


@pytest.mark.parametrize("tags", ["prod", [1], ["x" * 51], [f"t{n}" for n in range(21)]])
def test_bad_tags_are_refused_naming_the_field(capitals, tags):
    with pytest.raises(InvalidInput) as refused:
        services.run_start(dataset=capitals, target_type="workflow", target_id="echo", tags=tags)
    assert "tags" in refused.value.errors
    assert not DatasetRun.objects.exists()


def test_a_finished_run_can_be_renamed_and_retagged_but_not_unnamed(capitals):
    run = make_run(capitals)
    end_run(run, DatasetRun.Status.COMPLETED)
    services.run_update(run=run, name="v2 prompt", tags=["candidate"])
    run.refresh_from_db()
    assert (run.name, run.tags, run.status) == ("v2 prompt", ["candidate"], "completed")
    with pytest.raises(InvalidInput):
        services.run_update(run=run, name=" ")


def test_an_unavailable_target_or_scorer_is_refused_with_the_reason(capitals, settings):
    settings.OPENAI_BASE_URL = settings.OPENAI_API_KEY = ""
    with pytest.raises(InvalidInput) as refused:
        services.run_start(dataset=capitals, target_type="model", target_id="chat", scorer_ids=["factuality"])
    assert "OPENAI" in refused.value.errors["target_id"][0]
    assert "OPENAI" in refused.value.errors["scorer_ids"][0]
