"""The built-in scorers grade the way their descriptions promise."""

import pytest

from datasets_app.runs import registry


def score(scorer_id, output, expected, input=None):
    return registry.get_scorer(scorer_id).func(input=input, output=output, expected=expected)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("scorer_id", "output", "expected", "wanted"),
    [
        ("exact-match", "Paris", "Paris", 1.0),
        ("exact-match", "Paris", "paris", 0.0),
        ("exact-match", {"a": 1}, {"a": 1}, 1.0),
        ("levenshtein", "kitten", "kitten", 1.0),
        ("numeric-diff", 100, 100, 1.0),
        ("numeric-diff", "50", 100, 1 - 50 / 150),
        ("json-diff", {"a": 1, "b": 2}, {"a": 1, "b": 2}, 1.0),
        ("valid-json", '{"a": 1}', None, 1.0),
        ("valid-json", "{nope", None, 0.0),
        ("list-contains", ["a", "b", "c"], ["a", "b"], 1.0),
        ("contains", "The capital is Paris.", "paris", 1.0),
        ("contains", "The capital is Lyon.", "paris", 0.0),
        ("regex", "Order #1234 shipped", r"#\d{4}", 1.0),
        ("regex", "Order shipped", r"#\d{4}", 0.0),
    ],
)
def test_standard_scorers(scorer_id, output, expected, wanted):
    assert score(scorer_id, output, expected)["score"] == pytest.approx(wanted)


def test_partial_similarity_is_between_zero_and_one():
    assert 0 < score("levenshtein", "kitten", "sitting")["score"] < 1
    assert 0 < score("json-diff", {"a": 1, "b": 2}, {"a": 1, "b": 3})["score"] < 1


@pytest.mark.parametrize(
    ("scorer_id", "output", "expected"),
    [("numeric-diff", "many", 3), ("regex", "x", "(unclosed"), ("list-contains", "a", ["a"]), ("contains", "x", None)],
)
def test_unusable_inputs_raise_a_clear_error(scorer_id, output, expected):
    with pytest.raises(ValueError):
        score(scorer_id, output, expected)


def test_every_scorer_has_a_name_and_description():
    scorers = registry.all_scorers()
    assert {
        "exact-match",
        "levenshtein",
        "numeric-diff",
        "json-diff",
        "valid-json",
        "list-contains",
        "contains",
        "regex",
        "factuality",
        "closed-qa",
    } <= {s.scorer_id for s in scorers}
    assert all(s.name and s.description for s in scorers)


def test_pass_counts_come_from_the_histogram_only_at_bucket_edges():
    from datasets_app.runs.summary import add_scores, passed_at

    stats = add_scores({}, [[{"scorerId": "s", "score": v}] for v in (0.0, 0.49, 0.5, 0.75, 1.0)])
    histogram = stats["s"]["histogram"]
    assert passed_at(histogram, 0.5) == 3
    assert passed_at(histogram, 0.0) == 5
    assert passed_at(histogram, 0.75) is None  # inside a bucket: the caller must count
    assert passed_at(histogram, 1.0) is None  # 0.9 and 1.0 share the last bucket
