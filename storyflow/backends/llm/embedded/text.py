"""Reading a story body the way the embedded planner sees it.

Markdown body -> blocks (scene headings, scene breaks, paragraphs of plain text) ->
timing markers taken out of each paragraph ("[12s]", "[at 4s]") -> sentences -> each
sentence classified as narration, a camera directive ("Arc shot."), or a marker
("Continuous.", "Fade to black.", "Cut to:", "Seamless loop.").

Camera directives are read wherever they appear, case-insensitive. A sentence that is
only a directive (plus filler such as "slow", "the camera") is removed from the
narration; a directive inside a longer sentence ("The camera pans left across the bay")
is detected and the sentence stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from storyflow.core.models import CameraMove

# ---------------------------------------------------------------- blocks and markdown


@dataclass(frozen=True)
class Block:
    kind: str  # "heading" (a new scene), "break" (a horizontal rule: a new scene) or "paragraph"
    text: str  # plain text, markdown removed
    line: int = 1  # the body line (from 1) the block starts on
    raw: tuple[tuple[int, str], ...] = ()  # (body line, text as written) of each line it was read from

    def line_of(self, pattern: re.Pattern[str], nth: int) -> int:
        """The body line of the nth match of `pattern` in the block as written (else its first line)."""
        joined, starts = "", []
        for number, text in self.raw:
            starts.append((len(joined), number))
            joined += text + " "
        matches = list(pattern.finditer(joined))
        if nth >= len(matches):
            return self.line
        offset = matches[nth].start()
        return max(number for start, number in starts if start <= offset)


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}=+\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
_QUOTE_PREFIX = re.compile(r"^\s*(?:>\s?)+")
_LIST_PREFIX = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def split_blocks(body: str) -> list[Block]:
    """Split a Markdown body into headings, scene breaks and paragraphs (blank-line separated)."""
    body, origin = _without_comments(body)  # comments are notes, not story
    blocks: list[Block] = []
    lines: list[str] = []
    numbered: list[tuple[int, str]] = []  # the paragraph's lines as written, for error messages
    in_fence = False

    def flush() -> None:
        text = plain(" ".join(lines))
        if text:
            blocks.append(Block("paragraph", text, numbered[0][0], tuple(numbered)))
        lines.clear()
        numbered.clear()

    for index, line in enumerate(body.split("\n")):
        number = origin[index]
        if _FENCE.match(line):
            flush()
            in_fence = not in_fence
            continue
        if in_fence or (_REFERENCE.match(line) and not _MARKER_AT_START.match(line)):
            continue
        if not line.strip():
            flush()
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            blocks.append(Block("heading", plain(heading.group(1)), number))
            continue
        if lines and _SETEXT_UNDERLINE.match(line):
            # "Title\n=====": the lines above are a heading. ("---" right under text is read
            # as a scene break, not a heading, so no narration is ever lost to it.)
            text = plain(" ".join(lines))
            first = numbered[0][0]
            lines.clear()
            numbered.clear()
            if text:
                blocks.append(Block("heading", text, first))
            continue
        if _RULE.match(line):
            flush()
            blocks.append(Block("break", "", number))
            continue
        numbered.append((number, line))
        line = _QUOTE_PREFIX.sub("", line)
        line = _LIST_PREFIX.sub("", line)
        lines.append(line)
    flush()
    return blocks


def _without_comments(body: str) -> tuple[str, list[int]]:
    """The body with HTML comments replaced by a space, and the body line (from 1) of each line left."""
    kept: list[str] = []
    origin = [1]  # origin[i]: the line as written that line i of the result starts on
    line, position = 1, 0
    for comment in [*_COMMENT.finditer(body), None]:
        end = comment.start() if comment else len(body)
        text = body[position:end]
        for _ in range(text.count("\n")):
            line += 1
            origin.append(line)
        kept.append(text)
        if comment:
            kept.append(" ")
            line += comment.group().count("\n")
            position = comment.end()
    return "".join(kept), origin


def plain(text: str) -> str:
    """Inline markdown removed (emphasis, links, images, code, html), whitespace normalised."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)  # images carry no narration
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # [text](url) -> text
    text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)  # [text][ref] -> text
    text = re.sub(r"</?[A-Za-z][^>\n]*>", " ", text)  # html tags
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])", r"\1", text)
    text = re.sub(r"~~(.+?)~~", r"\1", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!>~|])", r"\1", text)  # backslash escapes
    return " ".join(text.split())


# ---------------------------------------------------------------- sentences

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "prof", "capt", "lt", "sgt", "col",
    "gen", "rev", "vs", "etc", "e.g", "i.e", "no", "fig", "approx",
}  # fmt: skip
# Terminal punctuation, closing quotes/brackets, whitespace, then something that starts a sentence.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split plain text into sentences; quoted dialogue stays with its sentence."""
    sentences: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        words = text[start : end.start()].split()
        last = words[-1].lower().strip("\"'“‘(") if words else ""
        is_abbreviation = end.group().startswith(".") and (
            last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())
        )
        if is_abbreviation:
            continue
        sentences.append(text[start : end.end()].strip())
        start = end.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def word_count(text: str) -> int:
    return len(re.findall(r"[\w’']+", text))


# ---------------------------------------------------------------- camera directives

# Phrases for every CameraMove, most specific first: where two overlap ("dolly zoom in"),
# the earlier entry wins. Inflections cover in-sentence use ("the camera pans left").
DIRECTIVE_PHRASES: dict[CameraMove, str] = {
    CameraMove.DOLLY_ZOOM: r"dolly[- ]?zoom(?:s|ed|ing)?|vertigo (?:shot|effect)|zolly",
    CameraMove.TILT_SHIFT: r"tilt[- ]?shift(?: shot| lens| effect| view)?",
    CameraMove.FPV_DRONE: r"fpv(?: drone)?(?: shot)?|drone (?:shot|footage)",
    CameraMove.ARC_SHOT: r"arc(?:ing)? shot|orbit(?:ing|al)? shot|camera (?:orbits|circles|arcs)(?: around)?",
    CameraMove.CRANE_SHOT: r"crane (?:shot|up|down)|camera cranes(?: up| down)?",
    CameraMove.TRACKING_SHOT: r"tracking shot|follow(?:ing)? shot|camera (?:tracks|follows)",
    CameraMove.STATIC: r"static (?:shot|camera)|locked[- ]off(?: shot| camera)?",
    CameraMove.PAN_LEFT: r"pan(?:s|ned|ning)? (?:to the )?left",
    CameraMove.PAN_RIGHT: r"pan(?:s|ned|ning)? (?:to the )?right",
    CameraMove.TILT_UP: r"tilt(?:s|ed|ing)? up(?:wards?)?",
    CameraMove.TILT_DOWN: r"tilt(?:s|ed|ing)? down(?:wards?)?",
    CameraMove.ZOOM_IN: r"zoom(?:s|ed|ing)? in",
    CameraMove.ZOOM_OUT: r"zoom(?:s|ed|ing)? out",
}
_DIRECTIVES = [(move, re.compile(rf"\b(?:{p})\b", re.I)) for move, p in DIRECTIVE_PHRASES.items()]

# Words that may stand beside a directive in a directive-only sentence ("Slow pan left.").
_FILLER = {
    "a", "an", "the", "camera", "shot", "slow", "slowly", "quick", "quickly", "fast", "gentle",
    "gently", "smooth", "smoothly", "steady", "steadily", "then", "now", "and", "very", "long",
    "sweeping", "dramatic", "we", "to", "on", "in", "out", "up", "down", "move", "movement",
    "angle", "cam",
}  # fmt: skip


def find_directives(sentence: str) -> list[tuple[CameraMove, int, int]]:
    """Every camera directive in a sentence as (move, start, end), in reading order."""
    found: list[tuple[CameraMove, int, int]] = []
    for move, pattern in _DIRECTIVES:  # most specific first, so overlaps go to it
        for match in pattern.finditer(sentence):
            start, end = match.span()
            if all(end <= s or start >= e for _, s, e in found):
                found.append((move, start, end))
    return sorted(found, key=lambda item: item[1])


def without_directives(sentence: str) -> str:
    """The sentence with its directive phrases cut out."""
    for _, start, end in reversed(find_directives(sentence)):
        sentence = sentence[:start] + " " + sentence[end:]
    return " ".join(sentence.split())


def _only_filler(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    return all(word in _FILLER for word in words)


# ---------------------------------------------------------------- markers

_CONTINUOUS_SENTENCE = re.compile(r"^\(?\s*continuous\s*[.!:]?\s*\)?\s*[.!:]?$", re.I)
_CONTINUOUS_PREFIX = re.compile(r"^(?:\(\s*continuous\s*\.?\s*\)|continuous\s*[:—–-])\s*", re.I)
_LOOP_SENTENCE = re.compile(
    r"^\(?\s*(?:an?\s+)?(?:(?:seamless(?:ly)?|perfect|endless)\s+)?"
    r"loop(?:s|ed|ing)?(?:\s+shot)?\s*[.!]?\s*\)?\s*[.!]?$",
    re.I,
)
_CUT_SENTENCE = re.compile(r"^(?:(?:smash|hard|jump)\s+)?cut(?:\s+to)?\s*[.!:]?$", re.I)
_CUT_PREFIX = re.compile(r"^(?:(?:smash|hard|jump)\s+)?cut\s+to\b\s*[:.,—–-]?\s*", re.I)
_FADE = re.compile(r"\b(?:fades?|fading)\s+(?:out\s+)?(?:to|into)\s+black\b|\bfade\s+out\b", re.I)
# A paragraph that opens with a jump in time fades in rather than crossfading.
TIME_SKIP = re.compile(
    r"^(?:later|much later|(?:years|months|weeks|days|hours) later|"
    r"(?:the )?(?:next|following) (?:morning|day|night|evening|spring|summer|autumn|winter)|"
    r"that (?:night|evening))\b",
    re.I,
)


@dataclass(frozen=True)
class Sentence:
    """One sentence of the story and what it tells the planner."""

    source: str  # as written (markdown removed): what Shot.story_text is made of
    text: str  # its narration: "" for a directive-only or marker sentence
    camera: CameraMove | None = None  # the first camera directive it names
    continues: bool = False  # "Continuous." / "(continuous) ...": continue the previous shot
    fade_out: bool = False  # "Fade to black.": the shot holding it fades out
    cut_in: bool = False  # "Cut to: ...": a hard cut into the shot holding it
    loop: bool = False  # "Seamless loop." / "Loop.": the shot holding it loops

    @property
    def is_narration(self) -> bool:
        return bool(self.text)


def classify(source: str) -> Sentence:
    """Read one sentence: its narration, its camera directive and its markers."""
    text = source
    # 1. markers that are the whole sentence
    if _CONTINUOUS_SENTENCE.match(text):
        return Sentence(source, "", continues=True)
    if _CUT_SENTENCE.match(text):
        return Sentence(source, "", cut_in=True)
    if _LOOP_SENTENCE.match(text):
        return Sentence(source, "", loop=True)
    # 2. markers that open a sentence: strip them, keep the rest as narration
    continues = cut_in = False
    prefix = _CONTINUOUS_PREFIX.match(text)
    if prefix:
        continues, text = True, text[prefix.end() :]
    prefix = _CUT_PREFIX.match(text)
    if prefix:
        cut_in, text = True, text[prefix.end() :]
    if text and text != source:
        text = text[0].upper() + text[1:]
    # 3. "fade to black" anywhere; alone it is only a marker
    fade_out = bool(_FADE.search(text))
    if fade_out and _only_filler(_FADE.sub(" ", text)):
        return Sentence(source, "", fade_out=True, continues=continues, cut_in=cut_in)
    # 4. camera directives; alone they are not narration
    directives = find_directives(text)
    camera = directives[0][0] if directives else None
    if camera is not None and _only_filler(without_directives(text)):
        text = ""
    if not re.search(r"\w", text):
        text = ""
    return Sentence(source, " ".join(text.split()), camera, continues, fade_out, cut_in)


# ---------------------------------------------------------------- timing markers

# "[12s]" sets a shot's length; "[at 4s] text" adds text to what is seen from 4 s on.
_SECONDS = r"(\d+(?:\.\d+)?)\s*(?:s|secs?|seconds?)"
_LENGTH_MARKER = re.compile(rf"\[\s*{_SECONDS}\s*\]", re.I)
_CHANGE_MARKER = re.compile(rf"\[\s*at\s+{_SECONDS}\s*\]", re.I)
# Anything in brackets that looks like a time is read as a marker; one that is not
# written like one of the two above is a typo the user must hear about.
TIME_LIKE = re.compile(r"\[\s*(?:at\b[^\]]*|\d[\d.,]*\s*[a-z]*\s*)\]", re.I)
# "[at 4s]: Rain falls." opening a line is a marker, not a Markdown link reference ("[1]: https://...").
_MARKER_AT_START = re.compile(rf"^\s{{0,3}}\[\s*(?:at\s+)?{_SECONDS}\s*\]", re.I)


@dataclass(frozen=True)
class Marker:
    """One bracketed timing marker in a paragraph's text."""

    kind: Literal["length", "change", "bad"]
    seconds: float  # 0.0 for a bad marker
    written: str  # as written, e.g. "[at 4s]"
    nth: int  # its place among the paragraph's TIME_LIKE matches (to find its line)
    start: int
    end: int


def find_markers(text: str) -> list[Marker]:
    """Every timing marker in a paragraph's plain text, in reading order."""
    markers = []
    for nth, match in enumerate(TIME_LIKE.finditer(text)):
        written = match.group()
        length, change = _LENGTH_MARKER.fullmatch(written), _CHANGE_MARKER.fullmatch(written)
        kind: Literal["length", "change", "bad"] = "length" if length else "change" if change else "bad"
        seconds = float((length or change).group(1)) if (length or change) else 0.0
        markers.append(Marker(kind, seconds, written, nth, match.start(), match.end()))
    return markers


def split_at_markers(text: str, markers: list[Marker]) -> tuple[str, list[tuple[Marker, str]]]:
    """The text before the first change marker, and each change marker with the text it opens.

    Length markers are cut out wherever they stand; a change's text runs to the next
    change marker or the end of the paragraph.
    """
    pieces: list[str] = []
    changes: list[tuple[Marker, str]] = []
    position = 0
    opened: Marker | None = None
    for marker in [*markers, None]:
        end = marker.start if marker else len(text)
        pieces.append(text[position:end])
        if marker is not None and marker.kind == "length":
            position = marker.end
            continue
        piece = " ".join("".join(pieces).split())
        if opened is None:
            before = piece
        else:
            changes.append((opened, piece.lstrip(":;,—–- ")))  # "[at 4s]: Rain falls."
        pieces = []
        if marker is not None:
            opened, position = marker, marker.end
    return before, changes
