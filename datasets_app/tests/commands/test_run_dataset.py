"""`manage.py run_dataset` as a CI gate."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from datasets_app.models import DatasetRun

pytestmark = pytest.mark.django_db(transaction=True)


def run_command(*args):
    from io import StringIO

    out = StringIO()
    try:
        call_command("run_dataset", *args, stdout=out, stderr=StringIO())
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


def test_prints_a_summary_and_passes_the_gate(capitals):
    code, out = run_command(
        str(capitals.id), "--target", "workflow/echo", "--scorer", "valid-json", "--fail-under", "0.5"
    )
    assert code == 0
    assert "Status: completed   results: 3   errors: 0" in out
    assert "valid-json" in out and "3/3" in out
    assert DatasetRun.objects.get().succeeded_count == 3


def test_exits_non_zero_when_a_mean_is_under_the_threshold(capitals):
    code, out = run_command(
        "Capitals", "--target", "keyword-agent", "--scorer", "exact-match", "--fail-under", "0.9", "--concurrency", "3"
    )
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("exact-match"))
    assert line.split()[1] == "0.667"  # Paris and Tokyo right, Lima unknown to the keyword agent


def test_unknown_target_is_a_clear_error(capitals):
    with pytest.raises(CommandError, match="unknown or ambiguous"):
        run_command("Capitals", "--target", "nope")
