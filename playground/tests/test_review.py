"""The review queue: one result at a time, the reviewer's annotation form, the
filters (not yet reviewed, errors, score below), progress, save-and-next with
and without htmx, field errors, and who may see and save what."""

import re
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from datasets_app import annotations, projects, services
from datasets_app.models import Annotation, DatasetRunResult
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def review_url(run, **params):
    url = reverse("run-review", args=[run.dataset_id, run.pk])
    return url, params


def get(client, run, **params):
    url, query = review_url(run, **params)
    return client.get(url, query)


def annotate_url(result, **params):
    url = reverse("result-annotate", args=[result.run.dataset_id, result.run_id, result.pk])
    if params:
        url += "?" + "&".join(f"{key}={value}" for key, value in params.items())
    return url


def heading(html: str) -> str:
    match = re.search(r'<h2 id="review-heading">(.*?)</h2>', html, re.S)
    assert match, "no review heading"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def progress(html: str) -> str:
    match = re.search(r'id="review-progress">([^<]+)<', html)
    assert match, "no progress"
    return match.group(1)


def position(html: str) -> str:
    match = re.search(r'id="review-position" class="num">([^<]+)<', html)
    assert match, "no position"
    return match.group(1)


def link(html: str, link_id: str) -> str | None:
    match = re.search(rf'id="{link_id}" rel="\w+" href="([^"]+)"', html)
    return unescape(match.group(1)) if match else None


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


@pytest.fixture
def queue(make_dataset):
    """Four items: #1 and #2 score 1.0, #3 failed (no score), #4 scored 0.2."""
    dataset = make_dataset(
        name="Queue",
        items=[{"input": {"n": n}, "expectedOutput": f"a{n}"} for n in range(1, 5)],
    )
    run = make_run(dataset)
    items = list(dataset.items.order_by("position"))
    results = [
        add_result(run, items[0], output="a1"),
        add_result(run, items[1], output="a2", trace_id="cd" * 16),
        add_result(run, items[2], error="the target timed out"),
        add_result(run, items[3], output="wrong", score=0.2),
    ]
    end_run(run)
    return run, results


def grade(result, user, **fields):
    fields.setdefault("score", 0.5)
    return annotations.annotation_save(result=result, dataset=result.run.dataset, author=user, **fields)[0]


# ---- the page ------------------------------------------------------------------------


def test_the_page_shows_one_result_escaped_with_its_scores_and_trace(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": {"q": "<script>alert(1)</script>"}, "expectedOutput": "<i>exp</i>"}])
    run = make_run(dataset)
    item = dataset.items.get()
    add_result(run, item, output="<img src=x onerror=alert(2)>", trace_id="ef" * 16, latency=1234)
    end_run(run)
    response = get(browser_client, run)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;i&gt;exp&lt;/i&gt;" in html
    assert heading(html).startswith("Item #1")
    assert "1234 ms" in html
    assert reverse("trace-detail", args=["ef" * 16]) in html
    assert "<code>exact-match</code>" in html and "1.000" in html
    assert position(html) == "Result 1 of 1 in this filter"
    assert progress(html) == "0 / 1 reviewed"
    # The page's script is a file of its own (the CSP runs no inline script).
    assert "/static/js/review.js" in html and "<script>" not in html
    assert 'method="post"' in html and "csrfmiddlewaretoken" in html


def test_no_trace_link_without_a_trace(browser_client, queue):
    run, results = queue
    html = get(browser_client, run, result=results[0].pk).content.decode()
    assert "/traces/" not in html
    html = get(browser_client, run, result=results[1].pk).content.decode()
    assert reverse("trace-detail", args=["cd" * 16]) in html


def test_results_come_in_dataset_order_with_previous_and_next(browser_client, queue):
    run, results = queue
    html = get(browser_client, run, filter="all").content.decode()
    assert heading(html).startswith("Item #1") and position(html) == "Result 1 of 4 in this filter"
    assert link(html, "review-prev") is None
    seen = []
    url = link(html, "review-next")
    while url and "end=1" not in url:
        html = browser_client.get(url).content.decode()
        seen.append(heading(html).split()[1])
        url = link(html, "review-next")
    assert seen == ["#2", "#3", "#4"]
    assert position(html) == "Result 4 of 4 in this filter"
    # Past the last one: the end of the filter, and back to the last one from there.
    end = browser_client.get(url).content.decode()
    assert heading(end) == "End of this filter"
    back = link(end, "review-prev")
    assert back and query_of(back)["result"] == [str(results[3].pk)]
    html = browser_client.get(link(browser_client.get(back).content.decode(), "review-prev")).content.decode()
    assert heading(html).startswith("Item #3")


def test_not_yet_reviewed_skips_what_i_reviewed_but_not_what_others_did(browser_client, queue, user, django_user_model):
    run, results = queue
    bob = django_user_model.objects.create_user(username="bob", password="pw-bob-1234")
    grade(results[0], user, score=0.9)
    grade(results[1], bob, score=0.1)
    html = get(browser_client, run).content.decode()  # "not yet reviewed" is the default
    assert heading(html).startswith("Item #2")
    assert position(html) == "Result 1 of 3 in this filter"
    assert progress(html) == "1 / 4 reviewed"
    assert "by you · 2 by anyone" in html
    # Bob's annotation is shown read-only, with his name.
    assert "<strong>bob</strong>" in html and "0.1" in html
    assert link(html, "review-prev") is None  # #1 is reviewed: not in this filter


def test_errors_filter_shows_only_failed_results_with_their_error(browser_client, queue):
    run, _results = queue
    html = get(browser_client, run, filter="errors").content.decode()
    assert heading(html).startswith("Item #3") and "failed" in heading(html)
    assert "the target timed out" in html
    assert position(html) == "Result 1 of 1 in this filter"


def test_score_below_filter(browser_client, queue):
    run, _results = queue
    html = get(browser_client, run, filter="below", scorer="exact-match", below="0.5").content.decode()
    assert heading(html).startswith("Item #4")
    assert position(html) == "Result 1 of 1 in this filter"
    # Nothing below 0.1: a clear empty state, not an error.
    none = get(browser_client, run, filter="below", scorer="exact-match", below="0.1").content.decode()
    assert heading(none) == "No results here"
    # Every succeeded result is below 1.01 (the failed one has no score).
    html = get(browser_client, run, filter="below", below="1.01").content.decode()
    assert "Result 1 of 1" in position(html)  # out of range: the default 0.5
    html = get(browser_client, run, filter="below", below="1").content.decode()
    assert position(html) == "Result 1 of 1 in this filter"


def test_nonsense_parameters_fall_back_to_defaults(browser_client, queue):
    run, _ = queue
    response = get(browser_client, run, filter="bogus", below="nan", scorer="nope", name="nobody", result="not-a-uuid")
    assert response.status_code == 200
    assert heading(response.content.decode()).startswith("Item #1")


def test_all_reviewed_state(browser_client, queue, user):
    run, results = queue
    for result in results:
        grade(result, user, label="good", score=None)
    html = get(browser_client, run).content.decode()
    assert heading(html) == "All reviewed"
    assert progress(html) == "4 / 4 reviewed"
    assert "Go through all results again" in html and run.get_absolute_url() in html
    assert 'class="review-form' not in html


def test_my_annotation_is_pre_filled(browser_client, queue, user):
    run, results = queue
    grade(results[1], user, score=0.75, label="bad", comment="too <terse>")
    html = get(browser_client, run, filter="all", result=results[1].pk).content.decode()
    assert 'id="review-scored" name="scored" value="1" checked' in html
    # As saved (the API may have given 0.75): saving the comment alone does not round it.
    assert 'name="score" min="0" max="1" step="0.01" value="0.75"' in html
    assert '<input type="radio" name="label" value="bad" checked>' in html
    assert ">too &lt;terse&gt;</textarea>" in html
    assert "saving changes your review" in html
    # Shown while outside the "not yet reviewed" filter: said so.
    html = get(browser_client, run, result=results[1].pk).content.decode()
    assert position(html) == "Not in this filter (3 results not yet reviewed)"


def test_an_annotation_name_select_when_the_dataset_has_several(browser_client, queue, user):
    run, results = queue
    dataset = run.dataset
    dataset.annotation_config = [{"name": "human", "labels": ["good", "bad"]}, {"name": "tone", "labels": ["warm"]}]
    dataset.save(update_fields=["annotation_config"])
    grade(results[0], user, score=1.0, name="human")
    html = get(browser_client, run).content.decode()
    assert '<select id="review-name" name="name">' in html
    assert heading(html).startswith("Item #2")
    html = get(browser_client, run, name="tone").content.decode()
    assert heading(html).startswith("Item #1")  # nothing reviewed as "tone" yet
    assert progress(html) == "0 / 4 reviewed"
    assert 'value="warm"' in html and 'value="good"' not in html
    # My "human" annotation of #1 is listed among the others here, by its name.
    assert "as “human”" in html


# ---- saving ----------------------------------------------------------------------------------


def test_post_saves_and_redirects_to_the_next_unreviewed(browser_client, queue, user):
    _run, results = queue
    grade(results[1], user)  # #2 already reviewed: skipped
    response = browser_client.post(
        annotate_url(results[0], filter="unreviewed", name="human"),
        {"scored": "1", "score": "0.8", "label": "good", "comment": "fine"},
    )
    assert response.status_code == 302
    query = query_of(response["Location"])
    assert query["result"] == [str(results[2].pk)] and query["filter"] == ["unreviewed"]
    saved = Annotation.objects.get(result=results[0], author=user)
    assert (saved.name, saved.score, saved.label, saved.comment) == ("human", 0.8, "good", "fine")
    html = browser_client.get(response["Location"]).content.decode()
    assert heading(html).startswith("Item #3")
    assert progress(html) == "2 / 4 reviewed"
    assert "Saved your review of item #1: 0.8, good." in html


def test_saving_again_updates_and_a_label_alone_is_enough(browser_client, queue, user):
    _run, results = queue
    grade(results[0], user, score=0.3)
    response = browser_client.post(annotate_url(results[0], filter="all"), {"score": "0.9", "label": "unsure"})
    assert response.status_code == 302
    saved = Annotation.objects.get(result=results[0], author=user)
    assert (saved.score, saved.label) == (None, "unsure")  # "give a score" unticked: no score
    assert query_of(response["Location"])["result"] == [str(results[1].pk)]
    assert Annotation.objects.filter(result=results[0]).count() == 1


def test_the_last_one_saved_leads_to_all_reviewed_or_the_end_of_the_filter(browser_client, queue, user):
    _run, results = queue
    for result in results[1:]:
        grade(result, user)
    # #1 is the last not reviewed (the queue wraps to it): saving it finishes the queue.
    response = browser_client.post(annotate_url(results[0]), {"scored": "1", "score": "1"})
    html = browser_client.get(response["Location"]).content.decode()
    assert heading(html) == "All reviewed"
    # In "all results", the last one leads to the end of the filter.
    response = browser_client.post(annotate_url(results[3], filter="all"), {"scored": "1", "score": "0"})
    assert query_of(response["Location"])["end"] == ["1"]
    assert Annotation.objects.get(result=results[3], author=user).score == 0.0


def test_htmx_post_answers_the_next_panel_and_pushes_its_url(browser_client, queue, user):
    _run, results = queue
    response = browser_client.post(
        annotate_url(results[0], filter="unreviewed", name="human"), {"scored": "1", "score": "0.4"}, **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="review-panel"')
    assert "<html" not in html and "review-filters" not in html
    assert heading(html).startswith("Item #2")
    assert progress(html) == "1 / 4 reviewed"
    assert "Saved item #1: 0.4." in html
    assert query_of(response["HX-Push-Url"])["result"] == [str(results[1].pk)]
    assert Annotation.objects.get(result=results[0], author=user).score == 0.4
    # htmx asks for a panel alone when it follows j / k.
    panel = browser_client.get(link(html, "review-next"), **HTMX).content.decode()
    assert panel.lstrip().startswith('<section id="review-panel"') and heading(panel).startswith("Item #3")


def test_htmx_post_of_the_last_one_answers_the_all_reviewed_panel(browser_client, queue, user):
    _run, results = queue
    for result in results[:3]:
        grade(result, user)
    response = browser_client.post(annotate_url(results[3]), {"label": "bad"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and heading(html) == "All reviewed"
    assert "end=1" not in response["HX-Push-Url"] and "result=" not in response["HX-Push-Url"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"comment": "kept <me>"}, "score", "Give a score, a label or both."),
        ({"scored": "1", "score": "1.5", "comment": "kept <me>"}, "score", "Must be between 0 and 1."),
        ({"scored": "1", "score": "abc", "comment": "kept <me>"}, "score", "Must be a number between 0 and 1"),
        ({"label": "excellent", "comment": "kept <me>"}, "label", "Not a label of"),
        ({"scored": "1", "score": "0.5", "comment": "x" * 10_001}, "comment", "At most 10000 characters."),
    ],
)
def test_field_errors_come_back_beside_the_field_with_400(browser_client, queue, user, data, field, message):
    _run, results = queue
    url = annotate_url(results[0], filter="unreviewed", name="human")
    for headers in ({}, HTMX):
        response = browser_client.post(url, data, **headers)
        html = response.content.decode()
        assert response.status_code == 400
        errors = re.search(rf'<ul class="errorlist" id="review-{field}-errors">(.*?)</ul>', html, re.S)
        assert errors and message in unescape(errors.group(1))
        assert heading(html).startswith("Item #1")  # the same result, not the next
        assert "Not saved" in html
        if len(data["comment"]) < 100:
            assert ">kept &lt;me&gt;</textarea>" in html  # nothing typed is lost
        if headers:
            assert html.lstrip().startswith('<section id="review-panel"')
    assert not Annotation.objects.exists()


def test_field_errors_keep_the_score_and_label(browser_client, queue):
    _run, results = queue
    html = browser_client.post(
        annotate_url(results[0]), {"scored": "1", "score": "0.3", "label": "good", "comment": "y" * 10_001}
    ).content.decode()
    assert 'id="review-scored" name="scored" value="1" checked' in html
    assert 'step="0.01" value="0.3"' in html
    assert '<input type="radio" name="label" value="good" checked>' in html


# ---- who may do what ------------------------------------------------------------------------------


@pytest.fixture
def team(user, django_user_model):
    victor = django_user_model.objects.create_user(username="victor", password="pw-victor-123")
    project = projects.project_create(user=user, name="Team")
    projects.member_set(project=project, username="victor", role="viewer")
    return project, victor


def test_a_viewer_reads_the_queue_but_has_no_form_and_cannot_post(client, team, make_dataset, user):
    project, victor = team
    dataset = make_dataset(name="Shared", project=project, items=[{"input": "q1"}, {"input": "q2"}])
    run = make_run(dataset)
    first, second = (add_result(run, item) for item in dataset.items.order_by("position"))
    end_run(run)
    grade(first, user, score=0.6, label="good", comment="alice was here")
    client.force_login(victor)
    html = get(client, run).content.decode()
    assert 'class="review-form' not in html and 'csrfmiddlewaretoken" value' not in html.split("review-panel")[1]
    assert "reviewing needs the editor role" in html
    assert heading(html).startswith("Item #1")  # a viewer's queue starts with every result
    assert progress(html) == "1 / 2 reviewed"  # by anyone
    assert "alice was here" in html
    response = client.post(annotate_url(second), {"scored": "1", "score": "0.5"})
    assert response.status_code == 403
    response = client.post(annotate_url(second), {"scored": "1", "score": "0.5"}, **HTMX)
    assert response.status_code == 403
    assert not Annotation.objects.filter(author=victor).exists()


def test_outside_the_project_everything_is_404(client, queue, django_user_model):
    run, results = queue
    mallory = django_user_model.objects.create_user(username="mallory", password="pw-mallory-123")
    client.force_login(mallory)
    assert get(client, run).status_code == 404
    assert get(client, run, result=results[0].pk).status_code == 404
    assert client.post(annotate_url(results[0]), {"scored": "1", "score": "1"}).status_code == 404
    assert not Annotation.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client, queue):
    run, results = queue
    response = get(client, run)
    assert response.status_code in (302, 404)
    assert client.post(annotate_url(results[0]), {"scored": "1", "score": "1"}).status_code in (302, 404)
    assert not Annotation.objects.exists()


def test_a_result_of_another_run_is_404(browser_client, queue, user):
    run, results = queue
    other_run = make_run(run.dataset)
    other = add_result(other_run, run.dataset.items.order_by("position").first())
    end_run(other_run)
    url = reverse("result-annotate", args=[run.dataset_id, run.pk, other.pk])
    assert browser_client.post(url, {"scored": "1", "score": "1"}).status_code == 404
    assert get(browser_client, run, result=other.pk).status_code == 404
    # A run under another dataset's id: 404 too.
    elsewhere = services.dataset_create(project=run.dataset.project, name="Elsewhere")
    url = reverse("result-annotate", args=[elsewhere.pk, run.pk, results[0].pk])
    assert browser_client.post(url, {"scored": "1", "score": "1"}).status_code == 404
    assert not Annotation.objects.exists()
    assert DatasetRunResult.objects.filter(run=other_run).count() == 1


def test_only_get_reads_and_only_post_saves(browser_client, queue):
    run, results = queue
    url, _ = review_url(run)
    assert browser_client.post(url).status_code == 405
    assert browser_client.get(annotate_url(results[0])).status_code == 405


def test_i_can_remove_my_own_review_and_no_one_elses(browser_client, queue, user, django_user_model):
    run, results = queue
    bob = django_user_model.objects.create_user("bob")
    grade(results[0], user, score=0.9)
    grade(results[0], bob, score=0.1)
    page = get(browser_client, run, filter="all", result=results[0].pk).content.decode()
    assert 'id="review-remove"' in page
    # After the save button, so the form's default submit (Enter) never removes.
    assert page.index("Save and next") < page.index('id="review-remove"')

    response = browser_client.post(annotate_url(results[0], filter="all"), {"action": "remove"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200 and "Removed your review of item #1." in html
    assert list(Annotation.objects.filter(result=results[0]).values_list("author__username", flat=True)) == ["bob"]
    assert 'id="review-remove"' not in html  # nothing of mine left to remove
    assert 'id="review-scored" name="scored" value="1" checked' not in html
