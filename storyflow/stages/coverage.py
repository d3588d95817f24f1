"""Story coverage: where in the story each shot comes from, and whether every part lands in a shot.

A planner, rule-based or a chat model, copies into every shot the story text it covers
(`Shot.story_text`). Here that text is found again in the story, word by word:

1. The story's words are those of its paragraphs. Headings, horizontal rules, HTML
   comments and timing markers ("[12s]", "[at 4s]") are not story to film, so they need
   no shot (a shot may still quote them).
2. Each shot's words are looked for in order, from where the previous shot ended (a model
   may also go back, e.g. for a flashback). An exact run of the same words is a match;
   otherwise the longest common run, when it holds at least MIN_MATCH of the shot's words
   (a model may tidy punctuation or drop a stray word). The shot's span is the character
   range of the story it covers (`Shot.span`), its beat the paragraph where it starts.
3. Coverage is the share of the story's words inside some span. A run of at least
   LOST_WORDS words in no shot is lost, and a shot whose text is not found covers nothing:
   both are problems a chat model is asked to repair, and a storyboard that keeps them is
   refused. A shorter gap (a stray "Arc shot." a model folded into the next shot's camera)
   only lowers the figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storyflow.core.models import Storyboard

MIN_MATCH = 0.6  # the share of a shot's words that must appear, in order, in one run of the story
LOST_WORDS = 4  # a run of this many story words in no shot is lost story

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_NOT_STORY = re.compile(
    r"<!--[\s\S]*?-->"  # comments
    r"|\[\s*(?:at\s+)?\d+(?:\.\d+)?\s*(?:s|secs?|seconds?)\s*\]"  # timing markers
    r"|^\s{0,3}#{1,6}\s.*$"  # ATX headings
    r"|^.*\n\s{0,3}(?:=+|-+)\s*$"  # setext headings (the line and its underline)
    r"|^\s{0,3}(?:[-*_]\s*){3,}$",  # horizontal rules
    re.M | re.I,
)


@dataclass(frozen=True)
class Words:
    """The words of a text, lowercased, with where each starts and ends in it."""

    words: list[str]
    starts: list[int]
    ends: list[int]

    @classmethod
    def of(cls, text: str) -> Words:
        matches = list(_WORD.finditer(text))
        return cls([m.group().lower().replace("’", "'") for m in matches], [m.start() for m in matches],
                   [m.end() for m in matches])  # fmt: skip


@dataclass(frozen=True)
class Coverage:
    """Where each shot sits in the story and how much of the story the shots cover."""

    spans: list[tuple[int, int] | None]  # per shot: [start, end) characters of Story.text, None: not found
    beats: list[int]  # per shot: the paragraph (from 1) its span starts in, 0 when not found
    share: float  # covered story words / story words (1.0 when the story has none)
    problems: list[str]  # shots whose text is not the story's, story text in no shot

    @property
    def complete(self) -> bool:
        return not self.problems


def story_words(text: str) -> tuple[Words, list[bool], list[int]]:
    """The story's words, which of them need a shot, and the paragraph (from 1) of each."""
    words = Words.of(text)
    skipped = [(m.start(), m.end()) for m in _NOT_STORY.finditer(text)]
    needed = [not any(s <= start < e for s, e in skipped) for start in words.starts]
    breaks = [m.end() for m in re.finditer(r"\n\s*\n", text)]
    blocks, block, next_break = [], 0, 0
    for start in words.starts:
        while next_break < len(breaks) and breaks[next_break] <= start:
            block, next_break = block + 1, next_break + 1
        blocks.append(block)
    # number only the blocks that hold story (a heading on its own is not a paragraph)
    story_blocks = sorted({b for b, need in zip(blocks, needed) if need})
    number = {b: position + 1 for position, b in enumerate(story_blocks)}
    numbered = [number[b] if need else 0 for b, need in zip(blocks, needed)]
    return words, needed, numbered


def cover(board: Storyboard, text: str) -> Coverage:
    """Find every shot's story_text in the story `text` (Story.text) and measure what is covered."""
    story, needed, paragraphs = story_words(text)
    covered = [False] * len(story.words)
    spans: list[tuple[int, int] | None] = []
    beats: list[int] = []
    problems: list[str] = []
    cursor = 0
    for shot in board.shots:
        shot_words = Words.of(shot.story_text).words
        found = _find(story.words, shot_words, cursor)
        if found is None:
            spans.append(None)
            beats.append(0)
            problems.append(
                f"shot {shot.id}: field 'story_text' ({_quote(shot.story_text)}) is not text from the story: "
                "copy the story's words exactly"
            )
            continue
        first, last = found
        for index in range(first, last):
            covered[index] = True
        spans.append((story.starts[first], _through_punctuation(text, story.ends[last - 1])))
        beats.append(next((p for p in paragraphs[first:last] if p), 0))
        cursor = last
    # story words in no shot
    total = sum(needed)
    share = sum(1 for need, c in zip(needed, covered) if need and c) / total if total else 1.0
    for start, end in _gaps(needed, covered):
        if sum(needed[start:end]) >= LOST_WORDS:
            lost = text[story.starts[start] : story.ends[end - 1]]
            problems.append(f"the story text {_quote(lost)} is in no shot: give it a shot, or add it to a shot's story_text")
    return Coverage(spans=spans, beats=beats, share=round(share, 4), problems=problems)


def _find(story: list[str], shot: list[str], cursor: int) -> tuple[int, int] | None:
    """[first, last) word indices of `shot` in `story`: exact from the cursor, exact anywhere, or close."""
    if not shot:
        return None
    n = len(shot)
    for begin in (cursor, 0):
        for start in range(begin, len(story) - n + 1):
            if story[start] == shot[0] and story[start : start + n] == shot:
                return start, start + n
    matcher = SequenceMatcher(None, story, shot, autojunk=False)
    blocks = [block for block in matcher.get_matching_blocks() if block.size]
    if not blocks or sum(block.size for block in blocks) < MIN_MATCH * n:
        return None
    # the story stretch the matching runs span, if it is not much longer than the shot
    first, last = blocks[0].a, blocks[-1].a + blocks[-1].size
    if last - first > 2 * n:  # scattered single words, not one passage
        best = max(blocks, key=lambda block: block.size)
        if best.size < MIN_MATCH * n:
            return None
        first, last = best.a, best.a + best.size
    return first, last


def _gaps(needed: list[bool], covered: list[bool]) -> list[tuple[int, int]]:
    """Runs [start, end) of needed words in no shot; words that need no shot neither break nor end a run."""
    gaps: list[tuple[int, int]] = []
    start: int | None = None
    end = 0
    for index, (need, c) in enumerate(zip(needed, covered)):
        if not need:
            continue
        if c:
            if start is not None:
                gaps.append((start, end))
            start = None
        else:
            start = index if start is None else start
            end = index + 1
    if start is not None:
        gaps.append((start, end))
    return gaps


def _through_punctuation(text: str, end: int) -> int:
    """The end of a span moved past the punctuation that closes its last word ('dawn.', 'go!"')."""
    while end < len(text) and not text[end].isspace() and not text[end].isalnum():
        end += 1
    return end


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
