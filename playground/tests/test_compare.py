"""The compare page: a baseline and up to five runs, each judged over the items
it shares with the baseline (paired means, a 95 % interval: noise is unchanged)."""

import re

import pytest
from django.urls import reverse

from datasets_app import annotations, projects, services
from datasets_app.models import DatasetItem
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def compare(client, dataset, *runs, **query):
    return client.get(reverse("run-compare", args=[dataset.id]), {"runs": [str(r.id) for r in runs], **query})


def in_order(dataset):
    return list(dataset.items.order_by("position"))


def finished_run(dataset, scores, *, name="", outputs=None, items=None, **extra):
    """A completed run scoring `items` (default: all, in order) with `scores`."""
    run = make_run(dataset, **({"name": name} if name else {}))
    items = items if items is not None else in_order(dataset)
    for n, (item, score) in enumerate(zip(items, scores, strict=True)):
        output = outputs[n] if outputs else f"{name or 'run'}-{item.position}"
        add_result(run, item, output=output, score=score, **extra)
    end_run(run)
    return run


@pytest.fixture
def twenty(make_dataset):
    return make_dataset(
        name="Twenty", items=[{"input": {"question": f"q{n}"}, "expectedOutput": f"a{n}"} for n in range(1, 21)]
    )


def scorer_cell(html: str, n: int = 0) -> str:
    cells = re.findall(r'<td class="num scorer-cell (\w+)">(.*?)</td>', html, re.S)
    assert cells, "no scorer cell"
    verdict, body = cells[n]
    return f"{verdict}: {' '.join(re.sub(r'<[^>]+>', ' ', body).split())}"


def test_a_real_regression_over_enough_items_is_flagged(browser_client, twenty):
    baseline = finished_run(twenty, [1.0] * 20, name="Baseline")
    worse = finished_run(twenty, [1.0] * 10 + [0.0] * 10, name="Worse")
    html = compare(browser_client, twenty, baseline, worse).content.decode()
    assert 'badge-failed">regression' in html
    cell = scorer_cell(html)
    assert cell.startswith("regressed:") and "0.500" in cell and "vs 1.000" in cell and "Δ −0.500" in cell
    assert "95 % CI [−0.7" in cell and "Regressed" in cell
    assert "Compared on 20 items both runs have." in html
    assert len(re.findall(r'<tr class="regressed">', html)) == 10


def test_two_of_three_items_dropping_is_noise_not_a_regression(browser_client, capitals):
    """The old rule called this a regression; three items cannot tell it from noise."""
    baseline = finished_run(capitals, [1.0, 1.0, 1.0])
    candidate = finished_run(capitals, [1.0, 0.0, 0.0])
    html = compare(browser_client, capitals, baseline, candidate).content.decode()
    assert scorer_cell(html).startswith("unchanged:") and "Δ −0.667" in scorer_cell(html)
    assert 'badge-completed">no regression' in html and 'badge-failed">regression' not in html
    # The items themselves still show which moved.
    assert len(re.findall(r'<tr class="regressed">', html)) == 2


def test_dataset_change_alone_is_no_regression(browser_client, make_dataset):
    """'Compare says REGRESSION when only the dataset changed': the same target on
    v1 and on v4 (three hard items added since) is compared on the three items
    both ran, which it answers as well as before."""
    dataset = make_dataset(name="Growing", items=[{"input": f"easy {n}", "expectedOutput": "ok"} for n in range(3)])
    assert dataset.version == 1
    v1 = finished_run(dataset, [1.0, 1.0, 1.0], name="v1 run")
    for n in range(3):
        services.item_create(dataset=dataset, input=f"hard {n}", expected_output="ok")
    dataset.refresh_from_db()
    assert dataset.version == 4
    v4 = finished_run(dataset, [1.0, 1.0, 1.0, 0.0, 0.0, 0.0], name="v4 run")
    assert v4.dataset_version == 4
    html = compare(browser_client, dataset, v1, v4).content.decode()
    assert 'badge-completed">no regression' in html and 'badge-failed">regression' not in html
    assert scorer_cell(html).startswith("unchanged:") and "Δ +0.000" in scorer_cell(html)
    assert "Compared on 3 items both runs have; 3 only in this run." in html
    assert "version-mismatch" in html and "dataset version 4" in html


def test_page_says_how_many_items_are_shared(browser_client, twenty):
    items = in_order(twenty)
    baseline = finished_run(twenty, [1.0] * 20)
    partial = finished_run(twenty, [1.0] * 15, items=items[:15])
    html = compare(browser_client, twenty, baseline, partial).content.decode()
    assert "Compared on 15 items both runs have; 5 only in the baseline." in html
    assert "Not in this run" in html


def test_up_to_five_runs_each_in_a_column_against_the_baseline(browser_client, twenty):
    baseline = finished_run(twenty, [0.5] * 20, name="Base")
    others = [finished_run(twenty, [0.5] * 20, name=f"Other {n}") for n in range(1, 7)]
    html = compare(browser_client, twenty, baseline, *others).content.decode()
    heads = re.findall(r'<th scope="col" class="run-head"><a href="[^"]+">([^<]+)</a>', html)
    assert heads == ["Other 1", "Other 2", "Other 3", "Other 4", "Other 5"]
    assert "at most 5 runs are compared; the rest were left out" in html
    assert len(re.findall(r'<td class="num scorer-cell', html)) == 5
    # The picker keeps each choice in its slot.
    for n, run in enumerate(others[:5], start=1):
        select = re.search(rf'<select id="compare-run-{n}" name="runs"[^>]*>(.*?)</select>', html, re.S)
        assert select and f'<option value="{run.id}" selected>' in select.group(1)


def test_picker_names_runs_with_their_tags(browser_client, twenty):
    baseline = finished_run(twenty, [1.0] * 20)
    finished_run(twenty, [1.0] * 20)
    services.run_update(run=baseline, name="Nightly <b>", tags=["prod", "v2"])
    html = compare(browser_client, twenty).content.decode()
    assert "Nightly &lt;b&gt; [prod, v2] · v1 · completed" in html
    assert '<label for="compare-baseline">Baseline</label>' in html
    assert html.count('name="runs"') == 6


def test_outputs_are_diffed_word_by_word_against_the_baseline(browser_client, capitals):
    baseline = finished_run(capitals, [1.0] * 3, outputs=["It is Paris.", "Tokyo", "<Lima> is it"])
    candidate = finished_run(capitals, [1.0] * 3, outputs=["It is Lyon.", "Tokyo", "<Lima> is not it"])
    html = compare(browser_client, capitals, baseline, candidate).content.decode()
    diffs = re.findall(r'<pre class="diff compact"[^>]*>(.*?)</pre>', html, re.S)
    assert diffs == ["It is <del>Paris</del><ins>Lyon</ins>.", "Tokyo", "&lt;Lima&gt; is <ins>not </ins>it"]


def test_every_cell_links_to_its_result(browser_client, capitals):
    baseline = finished_run(capitals, [1.0] * 3)
    candidate = finished_run(capitals, [1.0] * 3)
    html = compare(browser_client, capitals, baseline, candidate).content.decode()
    links = re.findall(r'<a class="result-link" href="([^"]+)"', html)
    expected = {
        reverse("result-detail", args=[capitals.id, run.id, result.id])
        for run in (baseline, candidate)
        for result in run.results.all()
    }
    assert set(links) == expected and len(links) == 6


def test_filters_regressed_improved_changed(browser_client, twenty):
    baseline = finished_run(twenty, [0.5] * 20)
    candidate = finished_run(twenty, [0.0, 1.0, 0.5, 0.5] + [0.5] * 16)
    counts = compare(browser_client, twenty, baseline, candidate).content.decode()
    for label, count in (("All items", 20), ("Regressed", 1), ("Improved", 1), ("Changed", 2)):
        assert re.search(rf">{label} <span class=\"num\">\({count}\)</span></a>", counts), label

    def labels(show):
        html = compare(browser_client, twenty, baseline, candidate, show=show).content.decode()
        return re.findall(r'<td class="item-cell"><strong>([^<]+)</strong>', html)

    assert labels("regressed") == ["#1"]
    assert labels("improved") == ["#2"]
    assert labels("changed") == ["#1", "#2"]
    assert len(labels("")) == 20


def test_items_are_paged(browser_client, make_dataset):
    dataset = make_dataset(items=[{"input": n} for n in range(55)])
    baseline = finished_run(dataset, [1.0] * 55)
    candidate = finished_run(dataset, [1.0] * 55)
    first = compare(browser_client, dataset, baseline, candidate).content.decode()
    assert "1–50 of 55" in first and "Page 1 of 2" in first
    last = compare(browser_client, dataset, baseline, candidate, page=9).content.decode()
    assert "51–55 of 55" in last
    labels = re.findall(r'<td class="item-cell"><strong>([^<]+)</strong>', last)
    assert labels == [f"#{n}" for n in range(51, 56)]


def test_latency_and_cost_deltas_over_shared_items(browser_client, twenty, settings):
    settings.PLAYGROUND_MODEL_PRICES = {"m": {"input": 1.0, "output": 1.0}}
    usage = {"model": "m", "promptTokens": 100, "completionTokens": 100, "totalTokens": 200}
    baseline = finished_run(twenty, [1.0] * 20, latency=100.0, usage=usage)
    slower = finished_run(
        twenty, [1.0] * 20, latency=250.0, usage={**usage, "completionTokens": 300, "totalTokens": 400}
    )
    html = compare(browser_client, twenty, baseline, slower).content.decode()
    assert re.search(
        r"Latency, mean per item</th>\s*<td[^>]*>100 ms</td>\s*<td[^>]*>250 ms <span class=\"ci\">Δ \+150 ms", html
    )
    assert re.search(r"Tokens per item</th>.*?<td[^>]*>400 <span class=\"ci\">Δ \+200</span>", html, re.S)
    assert re.search(r"Cost per item</th>.*?<td[^>]*>0.00040 <span class=\"ci\">Δ \+0.00020</span>", html, re.S)


def test_run_of_another_dataset_is_left_out(browser_client, capitals, make_dataset):
    other = make_dataset(name="Other", items=[{"input": 1}])
    foreign = make_run(other, status="completed")
    mine = finished_run(capitals, [1.0] * 3)
    response = compare(browser_client, capitals, mine, foreign)
    assert response.status_code == 200
    assert "do not belong to this dataset" in response.content.decode()
    assert "Choose a second run" in response.content.decode()


def test_user_text_is_escaped(browser_client, capitals):
    baseline = finished_run(capitals, [1.0] * 3, outputs=["<script>a()</script>"] * 3)
    candidate = finished_run(capitals, [1.0] * 3, outputs=["<script>b()</script>"] * 3)
    services.run_update(run=candidate, name="<img src=x>")
    html = compare(browser_client, capitals, baseline, candidate).content.decode()
    assert "<script>" not in html and "<img src=x>" not in html
    assert "&lt;img src=x&gt;" in html


def test_review_scores_are_compared_like_a_scorer_and_named_as_reviews(browser_client, user, twenty):
    twenty.annotation_config = [{"name": "<b>human</b>", "labels": []}]
    twenty.save(update_fields=["annotation_config"])
    baseline = finished_run(twenty, [1.0] * 20, name="Baseline")
    candidate = finished_run(twenty, [1.0] * 20, name="Candidate")
    for run, score in ((baseline, 1.0), (candidate, 0.2)):
        for result in run.results.all():
            annotations.annotation_save(result=result, dataset=twenty, author=user, score=score)

    html = compare(browser_client, twenty, baseline, candidate).content.decode()

    assert 'badge-failed">regression' in html
    assert scorer_cell(html, 0).startswith("unchanged:")  # exact-match
    review = scorer_cell(html, 1)
    assert review.startswith("regressed:") and "0.200" in review and "Δ −0.800" in review
    assert '<th scope="row"><span class="review-key">&lt;b&gt;human&lt;/b&gt; (review)</span> mean</th>' in html
    assert "annotation:" not in html and "<b>human" not in html
    assert len(re.findall(r'<tr class="regressed">', html)) == 20


def test_a_review_no_item_shares_is_not_compared_rather_than_unchanged(browser_client, user, twenty):
    baseline = finished_run(twenty, [1.0] * 20, name="Baseline")
    candidate = finished_run(twenty, [1.0] * 20, name="Candidate")
    for result in baseline.results.all()[:5]:
        annotations.annotation_save(result=result, dataset=twenty, author=user, score=1.0)

    html = compare(browser_client, twenty, baseline, candidate).content.decode()

    review = scorer_cell(html, 1)
    assert "Not compared" in review and "Unchanged" not in review
    assert "Unchanged" in scorer_cell(html, 0)  # the scorer both runs have is still judged


def test_items_picked_in_a_runs_column_are_added_from_that_runs_form(browser_client, user, capitals):
    baseline = finished_run(capitals, [1.0] * 3, name="Baseline")
    candidate = finished_run(capitals, [0.0] * 3, outputs=["wrong"] * 3, name="Candidate")
    html = compare(browser_client, capitals, baseline, candidate).content.decode()
    picked = candidate.results.order_by("item_id").first()

    # One form per run; each column's checkboxes belong to its run's form.
    assert f'<form id="add-from-{baseline.pk}"' in html and f'<form id="add-from-{candidate.pk}"' in html
    assert f'value="{picked.pk}" form="add-from-{candidate.pk}"' in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # two forms on one page, no id twice
    response = browser_client.post(
        reverse("results-add-to-dataset", args=[capitals.id, candidate.id]),
        {"result_ids": [str(picked.pk)], "new_name": "Regressions", "split": "hard", "expected_from": "expected"},
    )

    assert response.status_code == 302
    added = DatasetItem.objects.get(dataset__name="Regressions")
    assert isinstance(added.metadata, dict)
    assert (added.split, added.expected_output, added.metadata["source"]["runId"]) == (
        "hard",
        picked.expected_output,
        str(candidate.pk),
    )


def test_a_viewer_gets_no_add_to_dataset_forms_on_compare(client, capitals, django_user_model):
    baseline = finished_run(capitals, [1.0] * 3)
    candidate = finished_run(capitals, [0.0] * 3)
    viewer = django_user_model.objects.create_user("viewer")
    projects.member_set(project=capitals.project, username="viewer", role="viewer")
    client.force_login(viewer)

    html = compare(client, capitals, baseline, candidate).content.decode()

    assert "Candidate" in html or 'class="comparison' in html
    assert "add-from-" not in html and 'name="result_ids"' not in html
