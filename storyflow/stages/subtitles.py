"""Narration -> SubRip (.srt) subtitles.

Cues are plain (start, end, text) records. When the narration is spoken, cues follow the
speech (`speech_cues`): each appears with its first word and stays until its last word
has been said (held to MIN_CUE_SECONDS when the shot has room), so the subtitles say
exactly when the voice speaks. Without speech, each shot's narration is timed to the part
of the film where the shot is on screen alone (`narration_cues`).

Narration too long for one cue is split where a reader would pause: at sentence ends
first, then at clause punctuation (, ; : —), and only then between words, into cues of
similar length. Each cue then gets a share of the span in proportion to its length, but
never less than MIN_CUE_SECONDS while the span has room for that.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import NamedTuple

from storyflow.core.models import NarrationLine, Storyboard
from storyflow.core.printable import strip_controls
from storyflow.core.timeline import Timeline
from storyflow.media import atomic_write_text

LINE_CHARS = 42  # the usual subtitle line length: readable at a glance
MAX_LINES = 2  # per cue; longer narration becomes several consecutive cues
MIN_CUE_SECONDS = 1.0  # a shorter cue is gone before it can be read

# Choosing where to split is a small optimisation: every cue costs _CUE_COST (fewer,
# fuller cues read better), plus the cost of the boundary it ends on, plus _BALANCE times
# its squared fill (which evens out lengths: no orphan words). A cue more than the span
# can show for MIN_CUE_SECONDS costs _CROWDED_COST, so narration is merged into fewer
# cues whenever they can hold it.
_BREAK_COST = {"sentence": 0.0, "clause": 1.0, "word": 5.0}
_CUE_COST = 2.0
_BALANCE = 2.0
_CROWDED_COST = 50.0
# Inside a cue, a line break after a sentence or clause counts as this many characters
# nearer the middle than it is.
_LINE_BREAK_BONUS = {"sentence": 20, "clause": 8, "word": 0}

_CLOSERS = "\"'\u201d\u2019)]"  # quotes and brackets that may follow the punctuation
_SENTENCE_END = re.compile(rf"(?:[.!?]|\u2026)[{re.escape(_CLOSERS)}]*$")
_CLAUSE_END = re.compile(rf"[,;:\u2014\u2013][{re.escape(_CLOSERS)}]*$")
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "st.", "mt.", "jr.", "sr.", "vs.", "e.g.", "i.e."}

_TIME = r"(\d+):(\d{2}):(\d{2}),(\d{3})"
_TIMING = re.compile(rf"^{_TIME}\s*-->\s*{_TIME}")


class Cue(NamedTuple):
    start: float  # seconds into the film
    end: float
    text: str  # lines joined by "\n"


def narration_cues(board: Storyboard, timeline: Timeline) -> list[Cue]:
    """One or more cues per narrated shot, covering the shot's visible span."""
    cues: list[Cue] = []
    for shot in board.shots:
        text = " ".join(shot.narration.split())
        if not text:
            continue
        start, end = timeline.span_seconds(shot.id)
        cues.extend(split_cue(start, end, text))
    return cues


def speech_cues(spoken: list[tuple[float, NarrationLine]], timeline: Timeline) -> list[Cue]:
    """Cues timed by the speech: `spoken` is (film time of the line's start, line) pairs.

    A line is chunked like any narration; each chunk runs from its first word's start to
    its last word's end, then is held up to MIN_CUE_SECONDS where there is room: never
    into the next cue, never past the end of its shot's own frames.
    """
    timed: list[tuple[Cue, float]] = []  # (cue, the latest it may end)
    for start, line in sorted(spoken, key=lambda pair: pair[0]):
        _, shot_end = timeline.span_seconds(line.shot_id)
        for first, last, chunk in _chunk_times(line, chunk_text(line.text)):
            timed.append((Cue(start + first, start + last, "\n".join(wrap_lines(chunk))), shot_end))
    cues = []
    for i, (cue, shot_end) in enumerate(timed):
        limit = min(shot_end, timed[i + 1][0].start) if i + 1 < len(timed) else shot_end
        cues.append(cue._replace(end=max(cue.end, min(cue.start + MIN_CUE_SECONDS, limit))))
    return cues


def _chunk_times(line: NarrationLine, chunks: list[str]) -> list[tuple[float, float, str]]:
    """(start, end, chunk) inside the speech, from word timings (or by length without them)."""
    counts = [len(chunk.split()) for chunk in chunks]
    if line.words and len(line.words) == sum(counts):
        times, at = [], 0
        for count, chunk in zip(counts, chunks):
            times.append((line.words[at][0], line.words[at + count - 1][1], chunk))
            at += count
        return times
    # word timings missing or split differently: share the speech by characters
    shares = _shares([len(chunk) for chunk in chunks], line.seconds, 0.0)
    times, at = [], 0.0
    for share, chunk in zip(shares, chunks):
        times.append((at, at + share, chunk))
        at += share
    return times


def split_cue(start: float, end: float, text: str) -> list[Cue]:
    """Split text into readable cues that tile [start, end], timed by their length."""
    text = " ".join(text.split())
    if not text:
        return []
    span = max(0.0, end - start)
    # 1. where to split: as few cues as the span can show for MIN_CUE_SECONDS each
    room = max(1, int(span / MIN_CUE_SECONDS + 1e-9))
    chunks = chunk_text(text, max_cues=room)
    # 2. how long each stays up: its share of the span, with a floor for short ones
    floor = min(MIN_CUE_SECONDS, span / len(chunks))
    seconds = _shares([len(chunk) for chunk in chunks], span, floor)
    cues, elapsed = [], 0.0
    for number, (chunk, length) in enumerate(zip(chunks, seconds), start=1):
        cue_start = start + elapsed
        elapsed += length
        # Boundaries come from the running total, and the last cue ends exactly at `end`.
        cue_end = end if number == len(chunks) else start + elapsed
        cues.append(Cue(cue_start, cue_end, "\n".join(wrap_lines(chunk))))
    return cues


def chunk_text(text: str, max_cues: int | None = None) -> list[str]:
    """Split text into cue-sized chunks (MAX_LINES lines of LINE_CHARS), in reading order.

    Prefers sentence ends, then clause punctuation, then word boundaries; evens out the
    chunks' lengths; and uses at most `max_cues` chunks when they can hold the text.
    """
    words = text.split()
    if not words:
        return []
    kinds = [_break_kind(word) for word in words[:-1]] + ["sentence"]
    capacity = MAX_LINES * LINE_CHARS
    # best[j][k] = (cost, i): the cheapest way to put words[:j] into k chunks, the last
    # of which is words[i:j]
    best: list[dict[int, tuple[float, int]]] = [{} for _ in range(len(words) + 1)]
    best[0][0] = (0.0, 0)
    for j in range(1, len(words) + 1):
        for i in range(j - 1, -1, -1):
            chunk = " ".join(words[i:j])
            if j - i > 1 and not _fits(chunk):
                break  # adding words never makes a chunk fit again
            cost = _CUE_COST + _BREAK_COST[kinds[j - 1]] + _BALANCE * (len(chunk) / capacity) ** 2
            for k, (before, _) in best[i].items():
                if k + 1 not in best[j] or before + cost < best[j][k + 1][0]:
                    best[j][k + 1] = (before + cost, i)
    limit = max_cues or len(words)
    count = min(best[-1], key=lambda k: best[-1][k][0] + _CROWDED_COST * max(0, k - limit))
    chunks, j = [], len(words)
    for k in range(count, 0, -1):
        i = best[j][k][1]
        chunks.append(" ".join(words[i:j]))
        j = i
    return chunks[::-1]


def wrap_lines(text: str) -> list[str]:
    """A cue's text as lines of at most LINE_CHARS: two lines broken near the middle."""
    if len(text) <= LINE_CHARS:
        return [text]
    words = text.split(" ")
    splits = []
    for i in range(1, len(words)):
        top, bottom = " ".join(words[:i]), " ".join(words[i:])
        if len(top) <= LINE_CHARS and len(bottom) <= LINE_CHARS:
            # nearest the middle, a break after punctuation counting as that much nearer;
            # on a tie the longer line at the bottom
            off_middle = abs(len(top) - len(bottom)) - _LINE_BREAK_BONUS[_break_kind(words[i - 1])]
            splits.append((off_middle, len(top) > len(bottom), top, bottom))
    if splits:
        _, _, top, bottom = min(splits)
        return [top, bottom]
    return textwrap.wrap(text, width=LINE_CHARS)  # more than two lines: no cue can hold it


def _fits(text: str) -> bool:
    return len(wrap_lines(text)) <= MAX_LINES


def _break_kind(word: str) -> str:
    """How natural a cue boundary right after `word` is: sentence, clause or word."""
    if word.lower() in _ABBREVIATIONS:
        return "word"
    if _SENTENCE_END.search(word):
        return "sentence"
    if _CLAUSE_END.search(word):
        return "clause"
    return "word"


def _shares(weights: list[int], total: float, floor: float) -> list[float]:
    """Split `total` in proportion to `weights`, giving none less than `floor`."""
    shares: list[float | None] = [None] * len(weights)
    while True:
        free = [i for i, share in enumerate(shares) if share is None]
        if not free:
            break
        left = total - floor * (len(weights) - len(free))
        weight = sum(weights[i] for i in free)
        proposed = {i: left * weights[i] / weight for i in free}
        short = [i for i in free if proposed[i] < floor]
        if not short:
            for i in free:
                shares[i] = proposed[i]
            break
        for i in short:  # pin the short ones to the floor; share out the rest again
            shares[i] = floor
    return [share or 0.0 for share in shares]


def format_time(seconds: float) -> str:
    """Seconds -> SRT time 'HH:MM:SS,mmm' (rounded to the millisecond)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{ms:03d}"


def format_srt(cues: list[Cue]) -> str:
    """Cues as SRT text: numbered blocks separated by blank lines (no control characters: players show them)."""
    blocks = [
        f"{number}\n{format_time(cue.start)} --> {format_time(cue.end)}\n{strip_controls(cue.text)}\n"
        for number, cue in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def write_cues(cues: list[Cue], path: Path) -> Path:
    """Write cues to `path` as UTF-8 SRT, atomically."""
    path = Path(path)
    atomic_write_text(path, format_srt(cues))
    return path


def write_srt(board: Storyboard, timeline: Timeline, path: Path) -> Path:
    """The narration of every shot as subtitles timed to the film."""
    return write_cues(narration_cues(board, timeline), path)


def parse_srt(path: Path) -> list[tuple[float, float, str]]:
    """Read an SRT file back into (start, end, text) tuples."""
    cues = []
    text = Path(path).read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.split("\n")
        # A block is: number, timing, text lines. Tolerate a missing number.
        timing_at = 1 if len(lines) > 1 and _TIMING.match(lines[1]) else 0
        match = _TIMING.match(lines[timing_at]) if lines else None
        if not match:
            continue
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        cues.append((start, end, "\n".join(lines[timing_at + 1 :])))
    return cues
