"""Word-level differences (`textdiff.py`): data for <ins>/<del>, bounded work."""

import itertools
import random
import time

import pytest

from datasets_app.textdiff import ADDED, REMOVED, SAME, Segment, diff_lines, diff_values, diff_words, word_tokens


def sides(segments):
    """The two texts a diff runs between: what it keeps and removes, what it keeps and adds."""
    a = "".join(s.text for s in segments if s.kind in (SAME, REMOVED))
    b = "".join(s.text for s in segments if s.kind in (SAME, ADDED))
    return a, b


def test_words_that_changed_are_marked_and_punctuation_is_its_own_token():
    assert diff_words("It is Paris.", "It is Lyon.") == [
        Segment(SAME, "It is "),
        Segment(REMOVED, "Paris"),
        Segment(ADDED, "Lyon"),
        Segment(SAME, "."),
    ]
    assert diff_words("The answer is 4", "The answer is 4!") == [Segment(SAME, "The answer is 4"), Segment(ADDED, "!")]


def test_tokens_join_back_to_the_text():
    text = "  Hello,  wörld!\n\tIt's 100 °C…  "
    assert "".join(word_tokens(text)) == text
    assert word_tokens("a  b.c") == ["a  ", "b", ".", "c"]
    assert word_tokens("one\n  two") == ["one", "\n  ", "two"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("", "", []),
        ("same", "same", [Segment(SAME, "same")]),
        ("", "new", [Segment(ADDED, "new")]),
        ("old", "", [Segment(REMOVED, "old")]),
        ("<b>x</b>", "<i>x</i>", None),  # text is returned as it is: the template escapes it
    ],
)
def test_edge_cases(a, b, expected):
    segments = diff_words(a, b)
    if expected is not None:
        assert segments == expected
    assert sides(segments) == (a, b)


def test_any_two_texts_come_back_from_their_diff():
    rng = random.Random(7)
    vocabulary = ["the", "cat", "sat", "on", "mat", ".", ",", " ", "\n", "Ünïcode", "42"]
    for _ in range(200):
        a = "".join(rng.choice(vocabulary) + rng.choice(["", " ", "  "]) for _ in range(rng.randrange(30)))
        b = "".join(rng.choice(vocabulary) + rng.choice(["", " ", "\n"]) for _ in range(rng.randrange(30)))
        segments = diff_words(a, b)
        assert sides(segments) == (a, b)
        assert all(s.text for s in segments)
        # Neighbours differ in kind, and an addition never comes right before a removal.
        assert all(x.kind != y.kind for x, y in itertools.pairwise(segments))
        assert not any((x.kind, y.kind) == (ADDED, REMOVED) for x, y in itertools.pairwise(segments))


def test_json_objects_are_compared_key_by_key_in_sorted_order():
    expected = {"city": "Paris", "country": "France", "population": 2100000}
    output = {"population": 2100000, "country": "France", "city": "Lyon"}

    segments = diff_values(expected, output)

    assert segments == [
        Segment(SAME, '{\n  "city": "'),
        Segment(REMOVED, "Paris"),
        Segment(ADDED, "Lyon"),
        Segment(SAME, '",\n  "country": "France",\n  "population": 2100000\n}'),
    ]
    assert diff_values({"b": [1, 2], "a": None}, {"a": None, "b": [1, 2]}) == [
        Segment(SAME, '{\n  "a": null,\n  "b": [\n    1,\n    2\n  ]\n}')
    ]


def test_whole_lines_added_to_json_are_marked_as_lines():
    segments = diff_values({"a": 1}, {"a": 1, "b": 2})
    assert sides(segments) == ('{\n  "a": 1\n}', '{\n  "a": 1,\n  "b": 2\n}')
    assert Segment(ADDED, '  "b": 2\n') in segments or any(s.kind == ADDED and '"b": 2' in s.text for s in segments)


def test_a_json_answer_given_as_text_is_compared_as_json():
    segments = diff_values({"answer": "Paris", "sure": True}, '{"sure": true, "answer": "Paris"}')
    assert segments == [Segment(SAME, '{\n  "answer": "Paris",\n  "sure": true\n}')]
    # Text that only looks like JSON stays text.
    assert sides(diff_values({"a": 1}, "{not json")) == ('{\n  "a": 1\n}', "{not json")


def test_strings_and_scalars_are_compared_word_by_word():
    assert diff_values("Paris", "It is Paris") == [Segment(ADDED, "It is "), Segment(SAME, "Paris")]
    assert diff_values(4, "4") == [Segment(SAME, "4")]
    assert diff_values(True, "true") == [Segment(SAME, "true")]
    assert diff_values(None, "an answer") == [Segment(ADDED, "an answer")]  # no expected value
    assert diff_values("Lima", None) == [Segment(REMOVED, "Lima")]


def test_line_diff_refines_changed_lines_word_by_word():
    a = "first line\nthe capital is Paris\nlast line\n"
    b = "first line\nthe capital is Lyon\nlast line\n"
    assert diff_lines(a, b) == [
        Segment(SAME, "first line\nthe capital is "),
        Segment(REMOVED, "Paris"),
        Segment(ADDED, "Lyon"),
        Segment(SAME, "\nlast line\n"),
    ]
    assert diff_lines(a, b, refine=False) == [
        Segment(SAME, "first line\n"),
        Segment(REMOVED, "the capital is Paris\n"),
        Segment(ADDED, "the capital is Lyon\n"),
        Segment(SAME, "last line\n"),
    ]


def test_beyond_the_budget_words_fall_back_to_lines_then_to_a_whole_replacement():
    a = "\n".join(f"line {n} says x x x x x x" for n in range(10))
    b = "\n".join(f"line {n} says x y x y x y" if n % 3 == 0 else f"line {n} says x x x x x x" for n in range(10))

    words = diff_words(a, b)
    lines = diff_words(a, b, max_work=150)
    whole = diff_words(a, b, max_work=10)

    assert words[0] == Segment(SAME, "line 0 says x ") and words[1].kind == ADDED  # word level
    assert lines[:3] == [
        Segment(REMOVED, "line 0 says x x x x x x\n"),
        Segment(ADDED, "line 0 says x y x y x y\n"),
        Segment(SAME, "line 1 says x x x x x x\nline 2 says x x x x x x\n"),
    ]
    assert whole == [Segment(REMOVED, a), Segment(ADDED, b)]
    for segments in (words, lines, whole):
        assert sides(segments) == (a, b)


@pytest.mark.parametrize("size", [100, 500, 5_000, 50_000])
def test_repetitive_text_that_makes_difflib_cubic_stays_bounded(size):
    """Unbounded, SequenceMatcher needs seconds for 500 tokens of this and hours for 5,000."""
    a, b = "x " * size, "x y " * size
    started = time.perf_counter()

    segments = diff_words(a, b)
    values = diff_values({"text": a.replace(" ", "\n")}, {"text": b.replace(" ", "\n")})

    assert time.perf_counter() - started < 3
    assert sides(segments) == (a, b)
    assert values


def test_ordinary_long_answers_are_still_compared_word_by_word():
    rng = random.Random(3)
    words = [f"word{n}" for n in range(400)] + ["the", "a", "of", "and"] * 50
    tokens = [rng.choice(words) for _ in range(800)]
    changed = list(tokens)
    for index in rng.sample(range(len(tokens)), 20):
        changed[index] = "CHANGED"

    segments = diff_words(" ".join(tokens), " ".join(changed))

    assert sum(s.kind == ADDED for s in segments) >= 15  # not one whole replacement
    assert all(set(s.text.split()) == {"CHANGED"} for s in segments if s.kind == ADDED)
