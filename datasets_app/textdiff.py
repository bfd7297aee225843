"""What changed between an expected value and an output, word by word, for
pages that show it (the compare page, a result's page).

    diff_words("It is Paris.", "It is Lyon.")
    → [Segment("same", "It is "), Segment("removed", "Paris"), Segment("added", "Lyon"), Segment("same", ".")]

Segments run from the first text (`a`, the expected value) to the second
(`b`, the output): "removed" is text only the expected value has, "added" text
only the output has. Joining the "same" and "removed" texts gives `a` back,
the "same" and "added" ones `b`. This module only returns data: a template
renders each segment as text, <del> or <ins>, and Django escapes it (keep
newlines and indentation visible with `white-space: pre-wrap`).

Tokens are words with the spaces after them, one punctuation character with
its spaces, or whitespace holding a line break: "Paris." is "Paris" and ".",
so a changed full stop does not mark the word, nor a changed word its line break.

Bounded work. difflib.SequenceMatcher (autojunk off, so frequent words still
anchor matches) can take cubic time on repetitive text: "x x x …" against
"x y x y …" of 500 tokens each takes seconds. So every comparison is metered:
before each `find_longest_match(alo, ahi, blo, bhi)` call the matcher is
charged the most index pairs that call can visit (the occurrences in `b` of
each token of `a[alo:ahi]`, read from prefix sums, plus the range's length),
and a diff whose charges pass what is left of the budget is abandoned at once.
One call of `diff_words` / `diff_lines` / `diff_values` spends at most
`max_work` (MAX_WORK, 250,000 steps: under half a second at worst
on a laptop, typically far less) in matchers:

1. words (common leading and trailing tokens cut off first, linearly);
2. if that runs out, lines (each line a token), with what is left; the lines
   a JSON diff finds changed are refined word by word while the budget lasts;
3. for whatever no longer fits: the expected text as removed and the output
   as added.

Tokenising, trimming, counting and joining are linear in the texts' length,
so a diff costs O(len(a) + len(b) + max_work).
"""

import difflib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

from . import jsonsafe

MAX_WORK = 250_000

SegmentKind = Literal["same", "added", "removed"]
SAME: SegmentKind = "same"
ADDED: SegmentKind = "added"
REMOVED: SegmentKind = "removed"

# A word with the spaces after it, one other character with its spaces, or a run
# of whitespace holding a line break (or leading the text). One linear pass.
_WORD_TOKENS = re.compile(r"\w+[^\S\n]*|[^\w\s][^\S\n]*|\s+")


@dataclass(frozen=True)
class Segment:
    """A run of text that is in both values ("same"), only in the output
    ("added") or only in the expected value ("removed")."""

    kind: SegmentKind
    text: str


class _OverBudget(Exception):
    """The comparison would spend more than is left."""


class _Budget:
    """The comparison steps one diff may still spend."""

    def __init__(self, steps: int):
        self.left = steps

    def spend(self, steps: int) -> None:
        if steps > self.left:  # refused before it runs: what is left stays for a coarser diff
            raise _OverBudget
        self.left -= steps


class _MeteredMatcher(difflib.SequenceMatcher[str]):
    """A SequenceMatcher (autojunk off) that charges each longest-match search
    its worst case before running it, raising _OverBudget when that does not fit."""

    def __init__(self, a: Sequence[str], b: Sequence[str], budget: _Budget):
        budget.spend(len(a) + len(b))  # indexing b, counting a
        super().__init__(None, a, b, autojunk=False)
        self._budget = budget
        # Without junk, the positions the search visits for a[i] are b's occurrences of it.
        in_b = Counter(b)
        self._pairs = list(accumulate((in_b.get(token, 0) for token in a), initial=0))

    def find_longest_match(
        self, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None
    ) -> difflib.Match:
        high = len(self._pairs) - 1 if ahi is None else ahi
        self._budget.spend(self._pairs[high] - self._pairs[alo] + (high - alo) + 1)
        return super().find_longest_match(alo, ahi, blo, bhi)


def word_tokens(text: str) -> list[str]:
    """`text` cut into the tokens `diff_words` compares; they join back to `text`."""
    return _WORD_TOKENS.findall(text)


def diff_words(a_text: str, b_text: str, *, max_work: int = MAX_WORK) -> list[Segment]:
    """Word-by-word difference from `a_text` to `b_text`; falls back to lines,
    then to a whole replacement, beyond `max_work` (see the module docstring)."""
    return _merge(_diff_words(a_text, b_text, _Budget(max_work)))


def diff_lines(a_text: str, b_text: str, *, refine: bool = True, max_work: int = MAX_WORK) -> list[Segment]:
    """Line-by-line difference; with `refine`, lines that changed are compared
    word by word while the budget lasts."""
    return _merge(_diff_lines(a_text, b_text, _Budget(max_work), refine=refine))


def diff_values(expected: Any, output: Any, *, max_work: int = MAX_WORK) -> list[Segment]:
    """The difference from an expected value to an output.

    Two strings (or numbers, booleans) are compared word by word. When either
    side is a JSON object or list, both are pretty-printed (sorted keys, 2-space
    indent) and compared line by line, then word by word within changed lines;
    a string on the other side that parses as a JSON object or list (a model
    answering with JSON text) is pretty-printed the same way first. None (no
    value) is the empty text; other scalars are their JSON text (`4`, `true`).
    """
    budget = _Budget(max_work)
    if _is_container(expected) or _is_container(output):
        return _merge(_diff_lines(_pretty(expected), _pretty(output), budget, refine=True))
    return _merge(_diff_words(_plain(expected), _plain(output), budget))


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _pretty(value: Any) -> str:
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = jsonsafe.loads_depth_checked(value, label="output")
        except ValueError:  # not JSON after all (JSONDecodeError, UnsafeJSON): compare the text
            parsed = None
        if _is_container(parsed):
            value = parsed
    if not _is_container(value):
        return _plain(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2, default=str)


def _diff_words(a_text: str, b_text: str, budget: _Budget) -> list[Segment]:
    if a_text == b_text:
        return [Segment(SAME, a_text)] if a_text else []
    segments = _diff_tokens(word_tokens(a_text), word_tokens(b_text), budget)
    if segments is not None:
        return segments
    return _diff_lines(a_text, b_text, budget, refine=False)


def _diff_lines(a_text: str, b_text: str, budget: _Budget, *, refine: bool) -> list[Segment]:
    if a_text == b_text:
        return [Segment(SAME, a_text)] if a_text else []
    a_lines, b_lines = a_text.splitlines(keepends=True), b_text.splitlines(keepends=True)
    head, a_mid, b_mid, tail = _trim(a_lines, b_lines)
    try:
        opcodes = _MeteredMatcher(a_mid, b_mid, budget).get_opcodes()
    except _OverBudget:
        return [*head, *_replace("".join(a_mid), "".join(b_mid)), *tail]
    segments = list(head)
    for tag, a_low, a_high, b_low, b_high in opcodes:
        a_part, b_part = "".join(a_mid[a_low:a_high]), "".join(b_mid[b_low:b_high])
        if tag == "equal":
            segments.append(Segment(SAME, a_part))
        elif tag == "replace" and refine:
            refined = _diff_tokens(word_tokens(a_part), word_tokens(b_part), budget)
            segments.extend(refined if refined is not None else _replace(a_part, b_part))
        else:
            segments.extend(_replace(a_part, b_part))
    segments.extend(tail)
    return segments


def _diff_tokens(a: list[str], b: list[str], budget: _Budget) -> list[Segment] | None:
    """The token diff, or None when its worst case does not fit the budget."""
    head, a_mid, b_mid, tail = _trim(a, b)
    try:
        opcodes = _MeteredMatcher(a_mid, b_mid, budget).get_opcodes()
    except _OverBudget:
        return None
    segments = list(head)
    for tag, a_low, a_high, b_low, b_high in opcodes:
        a_part, b_part = "".join(a_mid[a_low:a_high]), "".join(b_mid[b_low:b_high])
        segments.extend([Segment(SAME, a_part)] if tag == "equal" else _replace(a_part, b_part))
    segments.extend(tail)
    return segments


def _trim(a: list[str], b: list[str]) -> tuple[list[Segment], list[str], list[str], list[Segment]]:
    """Common leading and trailing tokens as "same" segments, and what lies between."""
    start, limit = 0, min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end = 0
    while end < limit - start and a[-1 - end] == b[-1 - end]:
        end += 1
    head = [Segment(SAME, "".join(a[:start]))] if start else []
    tail = [Segment(SAME, "".join(a[len(a) - end :]))] if end else []
    return head, a[start : len(a) - end], b[start : len(b) - end], tail


def _replace(a_part: str, b_part: str) -> list[Segment]:
    return [Segment(kind, text) for kind, text in ((REMOVED, a_part), (ADDED, b_part)) if text]


def _merge(segments: list[Segment]) -> list[Segment]:
    """Adjacent segments of one kind joined, empty ones dropped; a removal
    always comes before the addition next to it."""
    merged: list[Segment] = []
    for segment in segments:
        if not segment.text:
            continue
        if merged and merged[-1].kind == segment.kind:
            merged[-1] = Segment(segment.kind, merged[-1].text + segment.text)
        elif segment.kind == REMOVED and merged and merged[-1].kind == ADDED:
            # ADDED then REMOVED (from neighbouring blocks): put the removal first, joining its kin.
            added = merged.pop()
            if merged and merged[-1].kind == REMOVED:
                merged[-1] = Segment(REMOVED, merged[-1].text + segment.text)
            else:
                merged.append(segment)
            merged.append(added)
        else:
            merged.append(segment)
    return merged
