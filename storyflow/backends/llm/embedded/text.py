"""Reading a story body the way the embedded planner sees it.

Markdown body -> blocks (scene headings, scene breaks, paragraphs of plain text) ->
timing markers taken out of each paragraph ("[12s]", "[at 4s]") -> sentences -> each
sentence classified as narration, directives of the shot grammar ("Close-up, low angle.",
"Arc shot."), or a marker ("Continuous.", "Fade to black.", "Cut to:", "Seamless loop.").

Directives (framing, angle, camera moves, lens and speed effects: DIRECTIVE_PHRASES) are
read wherever they appear. A sentence that is only directives (plus filler such as "slow",
"the camera", "then") is removed from the narration; a directive inside a longer sentence
("The camera pans left across the bay", "A close-up of her hands") is detected and the
sentence stays. Ordinary words are never directives on their own: "close", "wide", "low",
"slow" need their directive phrase ("close-up", "wide shot", "low angle", "slow motion").
Sentences that tell events in sequence ("..., and then ...", "Then ...", "Finally ...")
are cut into events by split_events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from storyflow.core.models import CameraAngle, CameraMove, Framing, LensEffect

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


# ---------------------------------------------------------------- shot grammar: directives

# A directive is one part of the shot grammar a story may write: a framing ("close-up"),
# an angle ("low angle"), a camera move ("arc shot") or a lens or speed effect ("slow motion").
Directive = CameraMove | Framing | CameraAngle | LensEffect

# "close up" written apart is also a verb ("the flowers close up at night"): it is a framing
# only after an article or a framing word, before "of"/"on"/"shot", or standing alone in a
# list of directives ("Close up, slow motion.").
_CLOSE_UP_APART = (
    r"(?:(?<=\ba )|(?<=\ban )|(?<=\bthe )|(?<=\bin )|(?<=\btight )|(?<=^))close up(?:s)?"
    r"|close up(?= (?:shot|of|on)\b)"
    r"|(?<=[,;:.] )close up(?=\s*(?:[.,;:!]|$))"
)

# Phrases for every directive, most specific first: where two overlap ("extreme close-up",
# "dolly zoom in") the earlier entry wins. Inflections cover in-sentence use ("the camera
# pans left"). Lower-case phrases match in any case; the abbreviations (ECU, MCU, CU) only
# in capitals, so ordinary words never read as one. Words that are ordinary prose on their
# own ("close", "wide", "low", "slow", "overhead", "from below") are never directives.
# CameraMove.TILT_SHIFT is not here: "tilt shift" is the lens effect.
DIRECTIVE_PHRASES: dict[Directive, str] = {
    # framing
    Framing.EXTREME_CLOSE_UP: r"(?i:extreme close[- ]?ups?|extreme close up(?:s)?|macro shot)|ECU",
    Framing.MEDIUM_CLOSE_UP: r"(?i:medium close[- ]?ups?|medium close up(?:s)?)|MCU",
    Framing.EXTREME_WIDE: r"(?i:extreme(?:ly)? wide(?: shot| angle)?|extreme long shot)",
    Framing.MEDIUM_WIDE: r"(?i:medium wide shot|medium long shot|full[- ]body shot|full shot|cowboy shot)",
    Framing.CLOSE_UP: rf"(?i:close-ups?|closeups?|{_CLOSE_UP_APART})|CU",
    Framing.WIDE: r"(?i:wide shot|wide[- ]angle (?:shot|view|lens)|establishing shot)",
    Framing.MEDIUM: r"(?i:medium shot|mid[- ]shot)",
    # angles
    CameraAngle.EYE_LEVEL: r"(?i:eye[- ]level(?: shot| angle| view)?)",
    CameraAngle.LOW: r"(?i:low[- ]angle(?: shot| view)?|worm'?s[- ]eye (?:view|shot))",
    CameraAngle.HIGH: r"(?i:high[- ]angle(?: shot| view)?)",
    CameraAngle.OVERHEAD: r"(?i:overhead (?:shot|view|angle)|bird'?s[- ]eye (?:view|shot)|top[- ]down (?:shot|view))",
    CameraAngle.DUTCH: r"(?i:dutch (?:angle|tilt)(?: shot)?|canted (?:angle|shot|camera))",
    # camera moves
    CameraMove.DOLLY_ZOOM: r"(?i:dolly[- ]?zoom(?:s|ed|ing)?|vertigo (?:shot|effect)|zolly)",
    CameraMove.FPV_DRONE: r"(?i:fpv(?: drone)?(?: shot| footage)?|drone (?:shot|footage))",
    CameraMove.ARC_SHOT: r"(?i:arc(?:ing)? shot|orbit(?:ing|al)? shot|camera (?:orbits|circles|arcs)(?: around)?)",
    CameraMove.CRANE_SHOT: r"(?i:crane (?:shot|up|down)|camera cranes(?: up| down)?)",
    CameraMove.TRACKING_SHOT: r"(?i:tracking shot|follow(?:ing)? shot|camera (?:tracks|follows))",
    CameraMove.STATIC: r"(?i:static (?:shot|camera)|locked[- ]off(?: shot| camera)?)",
    CameraMove.PAN_LEFT: r"(?i:pan(?:s|ned|ning)? (?:to the )?left)",
    CameraMove.PAN_RIGHT: r"(?i:pan(?:s|ned|ning)? (?:to the )?right|panning shot|rotating panorama)",
    CameraMove.TILT_UP: r"(?i:tilt(?:s|ed|ing)? up(?:wards?)?)",
    CameraMove.TILT_DOWN: r"(?i:tilt(?:s|ed|ing)? down(?:wards?)?)",
    CameraMove.ZOOM_IN: r"(?i:zoom(?:s|ed|ing)? in)",
    CameraMove.ZOOM_OUT: r"(?i:zoom(?:s|ed|ing)? out)",
    # lens and speed effects
    LensEffect.TILT_SHIFT: r"(?i:tilt[- ]?shift(?: shot| lens| effect| view| look)?|miniature (?:effect|look))",
    LensEffect.SLOW_MOTION: r"(?i:(?:in )?slow[- ]?motion|slow[- ]?mo|slo[- ]?mo)",
    LensEffect.TIME_LAPSE: r"(?i:time[- ]?lapse(?: shot| footage)?|hyperlapse)",
    LensEffect.RACK_FOCUS: r"(?i:rack(?:s|ed|ing)?[- ]focus(?:es|ed|ing)?|focus pull|pull(?:s|ed|ing)? focus)",
}
_DIRECTIVES = [(kind, re.compile(rf"(?<![\w-])(?:{p})(?![\w-])")) for kind, p in DIRECTIVE_PHRASES.items()]

# Words that may stand beside directives in a directive-only sentence ("Slow pan left.",
# "Close-up, low angle, then zoom in.").
_FILLER = {
    "a", "an", "the", "camera", "shot", "slow", "slowly", "quick", "quickly", "fast", "gentle",
    "gently", "smooth", "smoothly", "steady", "steadily", "then", "now", "and", "very", "long",
    "sweeping", "dramatic", "we", "to", "on", "in", "out", "up", "down", "move", "movement",
    "angle", "cam", "with", "followed", "by", "after", "that", "finally", "lens", "effect",
}  # fmt: skip


def find_directives(sentence: str) -> list[tuple[Directive, int, int]]:
    """Every directive in a sentence as (directive, start, end), in reading order."""
    found: list[tuple[Directive, int, int]] = []
    for kind, pattern in _DIRECTIVES:  # most specific first, so overlaps go to it
        for match in pattern.finditer(sentence):
            start, end = match.span()
            if all(end <= s or start >= e for _, s, e in found):
                found.append((kind, start, end))
    return sorted(found, key=lambda item: item[1])


def without_directives(sentence: str) -> str:
    """The sentence with its directive phrases cut out ("A close-up of her hands" -> "her hands")."""
    for _, start, end in reversed(find_directives(sentence)):
        before = re.search(r"(?:\b(?:an?|the)\s+)?$", sentence[:start], re.I)
        after = re.match(r"\s+(?:of|on)\b", sentence[end:], re.I)
        start = before.start() if before and before.group() else start
        end = end + after.end() if after else end
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
    directives: tuple[Directive, ...] = ()  # every directive it names, in reading order
    continues: bool = False  # "Continuous." / "(continuous) ...": continue the previous shot
    fade_out: bool = False  # "Fade to black.": the shot holding it fades out
    cut_in: bool = False  # "Cut to: ...": a hard cut into the shot holding it
    loop: bool = False  # "Seamless loop." / "Loop.": the shot holding it loops

    @property
    def is_narration(self) -> bool:
        return bool(self.text)

    @property
    def camera(self) -> CameraMove | None:
        """The first camera move it names."""
        return next((d for d in self.directives if isinstance(d, CameraMove)), None)


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
    # 4. directives (framing, angle, moves, effects); alone they are not narration
    directives = tuple(dict.fromkeys(kind for kind, _, _ in find_directives(text)))
    if directives and _only_filler(without_directives(text)):
        text = ""
    if not re.search(r"\w", text):
        text = ""
    return Sentence(source, " ".join(text.split()), directives, continues, fade_out, cut_in)


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


# ---------------------------------------------------------------- events in sequence

# A sentence opening with one of these tells the next event of a sequence.
SEQUENCE_OPENER = re.compile(
    r"^(?:and\s+)?(?:then|next|after that|afterwards|after this|finally|at last|eventually|"
    r"soon after|moments later|a moment later|in the end)\b[\s,:]*",
    re.I,
)
# "then" inside a sentence, between two events ("..., and then picks up a book"); not "back
# then", "just then", "by then", "since then", and not "then," (an aside).
_THEN = re.compile(
    r"(?<!\bjust)(?<!\bonly)(?<!\beven)(?<!\bby)(?<!\buntil)(?<!\bsince)(?<!\bback)(?<!\bfrom)(?<!\btill)"
    r"\s+(?:and\s+)?then\s+(?=[a-z])",
    re.I,
)
# Where a sentence of a sequence may change event: a comma or semicolon, or "then".
_EVENT_BREAK = re.compile(r"\s*[,;]\s*(?:and\s+)?(?:then\s+)?|\s+(?:and\s+)?then\s+|\s+and\s+(?=\w+s\b)", re.I)
_NOT_VERBS = {
    "his", "hers", "its", "this", "thus", "was", "as", "us", "always", "perhaps", "across", "towards",
    "afterwards", "besides", "sometimes", "unless", "less", "glass", "grass", "dress", "moss", "yes",
    "plus", "various", "nervous", "famous", "anxious", "curious", "glorious", "furious", "whereas",
    "upstairs", "downstairs", "outdoors", "indoors", "backwards", "forwards", "sideways", "clothes",
}  # fmt: skip
_PRONOUN_START = re.compile(r"^(?:he|she|it|they|we|i)\s+\w", re.I)


@dataclass(frozen=True)
class Event:
    """One event of a sequence: its words as written and the sentence (index) it comes from."""

    text: str  # as written, sequence words ("Then", "and then") taken off
    sentence: int  # which of the sentences given to split_events
    opens_with_verb: bool  # "sits down": the subject is the previous event's


def _verb_like(word: str) -> bool:
    """A present-tense verb of the third person, as prose writes events: 'sits', 'picks', 'goes'."""
    word = word.lower()
    return len(word) > 2 and word.isalpha() and word.endswith("s") and not word.endswith("ss") and word not in _NOT_VERBS


def split_events(sentences: list[str]) -> list[Event]:
    """The events a run of sentences tells in sequence, or [] when it tells none.

    A sequence needs a sequence word: a sentence opening with "Then", "Next", "After that",
    "Finally"... or "then" between two clauses of a sentence. Then every sentence is an
    event, and a sentence holding "then" is cut at its commas and "then"s into one event per
    clause that opens with "then", a verb ("sits down") or a pronoun ("she sits"); other
    clauses ("slowly") stay with the event before them.
    """
    cued = any(SEQUENCE_OPENER.match(s) for s in sentences[1:]) or any(_THEN.search(s) for s in sentences)
    if not cued:
        return []
    events: list[Event] = []
    for index, sentence in enumerate(sentences):
        body = SEQUENCE_OPENER.sub("", sentence, count=1) if index or events else sentence
        body = body[:1].upper() + body[1:]
        if not _THEN.search(body):
            events.append(Event(body, index, opens_with_verb=False))
            continue
        clauses: list[str] = []
        position = 0
        for cut in _EVENT_BREAK.finditer(body):
            clauses.append(body[position : cut.start()])
            clauses.append(cut.group())
            position = cut.end()
        clauses.append(body[position:])
        parts = [(clauses[0], True)]
        for glue, clause in zip(clauses[1::2], clauses[2::2]):
            words = clause.split()
            starts_event = bool(words) and (
                bool(re.search(r"\bthen\b", glue, re.I)) or _verb_like(words[0]) or bool(_PRONOUN_START.match(clause))
            )
            if starts_event:
                parts.append((clause, False))
            else:  # "slowly": part of the event before it
                text, first = parts[-1]
                parts[-1] = (text + glue + clause, first)
        for text, first in parts:
            text = text.strip(" ,;")
            if not re.search(r"[A-Za-z]{2,}", text):
                continue
            verb = not first and _verb_like(text.split()[0])
            events.append(Event(text[:1].upper() + text[1:] if not verb else text, index, verb))
    return events if len(events) >= 2 else []
