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


@pytest.mark.parametrize(
    ("output", "expected", "wanted"),
    [
        ("I don't know.", "No", 0.0),  # "no" inside "know" is not the word "No"
        ("It is Paris.", "Paris", 1.0),
        ("new york city", "New York", 1.0),
        ("2 + 2 = 4", "4", 1.0),
        ("2 + 2 = 4", 4, 1.0),  # a JSON number is compared as its text
        ("Water boils at 100 °C.", "100 °C", 1.0),
        ("100 °C.", "100 °C", 1.0),
        ("Parisian cafés", "Paris", 0.0),
        ("about 1000 °C", "100 °C", 0.0),
        ("3.14159", "3.14", 0.0),
        ("No.", "no", 1.0),
        ("Nope", "No", 0.0),
        ("New\n  York", "new york", 1.0),  # any run of whitespace matches any other
        ("NewYork", "New York", 0.0),
        ("ÉCOLE normale", "école", 1.0),  # Unicode case folding
        ("Cafe\u0301 au lait", "café", 1.0),  # decomposed é is the same word (NFC)
        ("Straße", "STRASSE", 1.0),  # full case folding: ß is ss
        ("東京 is Tokyo", "東京", 1.0),
        ("über", "b", 0.0),  # a non-ASCII letter is part of the word
        ("x_y", "x", 0.0),  # so is _
        ("Answer: (b)", "(b)", 1.0),
        ("Answer: b)", "(b)", 0.0),
        ("  Paris  ", "  paris\n", 1.0),  # the expected text's outer whitespace does not count
    ],
)
def test_contains_matches_whole_words_and_phrases(output, expected, wanted):
    assert score("contains", output, expected)["score"] == wanted


def test_contains_says_what_it_did_not_find():
    assert score("contains", "I don't know.", "No")["reason"] == "'No' not found as whole words in the output"
    assert score("contains", "It is Paris.", "Paris")["reason"] == "found"


def test_contains_stays_linear_on_adversarial_text():
    """A substring search retried at every near miss is quadratic here; this one is linear."""
    import time

    haystack = "a " * 200_000 + "b"
    needle = "a " * 50_000 + "c"
    started = time.perf_counter()
    assert score("contains", haystack, needle)["score"] == 0.0
    assert score("contains", "aa" * 200_000, "a" * 100_000)["score"] == 0.0
    assert time.perf_counter() - started < 2


def test_partial_similarity_is_between_zero_and_one():
    assert 0 < score("levenshtein", "kitten", "sitting")["score"] < 1
    assert 0 < score("json-diff", {"a": 1, "b": 2}, {"a": 1, "b": 3})["score"] < 1


@pytest.mark.parametrize(
    ("scorer_id", "output", "expected"),
    [
        ("numeric-diff", "many", 3),
        ("regex", "x", "(unclosed"),
        ("list-contains", "a", ["a"]),
        ("contains", "x", None),
        ("contains", "x", "  "),
    ],
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
