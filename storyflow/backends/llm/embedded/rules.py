"""The embedded planner's rules: lexicons and small pure functions, one job each.

Everything the planner infers is decided here, from words in the story, so each rule can
be read (and changed) on its own: which camera a shot gets when the story names none,
who is in a shot, where and when it happens, its mood, its sound, what is seen, how long
it lasts, and, for the rewriter, how a camera move and a lighting situation are phrased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storyflow.backends.llm.embedded.text import (
    find_directives,
    without_directives,
    word_count,
)
from storyflow.core.models import CameraMove
from storyflow.core.vocabulary import DEFAULT_MOOD

if TYPE_CHECKING:
    import numpy as np


def _words(*alternatives: str) -> re.Pattern[str]:
    """One case-insensitive pattern matching any of the alternatives as whole words."""
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.I)


# ---------------------------------------------------------------- durations

WORDS_PER_SECOND = 2.6  # a calm narration pace
SHOT_PAD_SECONDS = 1.0  # time to take the picture in beyond reading it
MIN_SHOT_SECONDS, MAX_SHOT_SECONDS = 2.5, 12.0  # reading-speed durations are clamped here
MIN_FITTED_SECONDS = 1.0  # fitting a target length never shortens a shot below this
MIN_CHANGE_HOLD_SECONDS = 1.0  # ...and a written length ("[10s]") that leaves it less than this is an error
MAX_SHOT_WORDS = 18  # a paragraph is split into shots of at most this many words...
MAX_SHOT_SENTENCES = 3  # ...and at most this many sentences (about 2.5 to 8 s each)


def reading_seconds(text: str) -> float:
    """How long a shot stays on screen for its narration to be read, in seconds."""
    seconds = word_count(text) / WORDS_PER_SECOND + SHOT_PAD_SECONDS
    return min(MAX_SHOT_SECONDS, max(MIN_SHOT_SECONDS, seconds))


# ---------------------------------------------------------------- cameras

# When the story names no camera move, the first rule whose words appear wins. The first
# shot of a scene is an establishing shot and is handled before these (crane or pan).
CAMERA_RULES: tuple[tuple[CameraMove, re.Pattern[str]], ...] = (
    # running, chasing, racing: follow the subject along the ground
    (CameraMove.TRACKING_SHOT, _words(
        r"run|runs|running|ran", r"chas(?:e|es|ed|ing)", r"rac(?:e|es|ed|ing)",
        r"sprint(?:s|ed|ing)?", r"flee(?:s|ing)?|fled", r"gallop(?:s|ed|ing)?",
        r"pursu(?:e|es|ed|ing)", r"dash(?:es|ed|ing)?", r"scurr(?:y|ies|ied|ying)",
    )),
    # flying, soaring, diving, over the city: fly with it
    (CameraMove.FPV_DRONE, _words(
        r"fl(?:y|ies|ying|ew)", r"soar(?:s|ed|ing)?", r"glid(?:e|es|ed|ing)",
        r"div(?:e|es|ed|ing)|dove", r"swoop(?:s|ed|ing)?",
        r"over the (?:city|rooftops|town|forest|sea|water|valley|river|waves)",
    )),
    # a shock or a realisation: the world lurches
    (CameraMove.DOLLY_ZOOM, _words(
        r"reali[sz](?:e|es|ed|ing)", r"shock(?:ed)?", r"horror|horrified", r"sudden(?:ly)?",
        r"freez(?:e|es)|froze", r"gasp(?:s|ed)?", r"stunned",
    )),
    # something tiny, a village, a view from above: a miniature
    (CameraMove.TILT_SHIFT, _words(
        r"tiny", r"villages?", r"miniature", r"toy-like", r"from above", r"far below",
    )),
    # looking up, climbing, something towering: tilt up with it
    (CameraMove.TILT_UP, _words(
        r"look(?:s|ed|ing)? up", r"gaz(?:e|es|ed|ing) up", r"towers|towering",
        r"loom(?:s|ed|ing)?", r"climb(?:s|ed|ing)?", r"ascend(?:s|ed|ing)?",
    )),
    # looking down, descending: tilt down
    (CameraMove.TILT_DOWN, _words(
        r"look(?:s|ed|ing)? down", r"peer(?:s|ed|ing)? down", r"descend(?:s|ed|ing)?",
    )),
    # a reveal, something wide or vast: pull out
    (CameraMove.ZOOM_OUT, _words(
        r"reveal(?:s|ed|ing)?", r"wide", r"vast", r"endless", r"horizon",
    )),
    # something close: a whisper, eyes, a face
    (CameraMove.ZOOM_IN, _words(
        r"close|closer", r"whisper(?:s|ed|ing)?", r"eyes?", r"face", r"tears?",
        r"lean(?:s|ed)? in", r"stares?",
    )),
)
ESTABLISHING_MOVES = (CameraMove.CRANE_SHOT, CameraMove.PAN_RIGHT, CameraMove.PAN_LEFT)
# No rule fired: a seeded choice among calm moves, never the previous shot's move.
ROTATION_MOVES = (
    CameraMove.STATIC,
    CameraMove.PAN_LEFT,
    CameraMove.PAN_RIGHT,
    CameraMove.ZOOM_IN,
    CameraMove.ZOOM_OUT,
    CameraMove.ARC_SHOT,
)


def infer_camera(
    text: str, establishing: bool, previous: CameraMove | None, rng: np.random.Generator
) -> CameraMove:
    """The camera move for a shot whose text names none (see CAMERA_RULES)."""
    if establishing:
        return ESTABLISHING_MOVES[int(rng.integers(len(ESTABLISHING_MOVES)))]
    for move, pattern in CAMERA_RULES:
        if pattern.search(text):
            return move
    choices = [move for move in ROTATION_MOVES if move != previous]
    return choices[int(rng.integers(len(choices)))]


# ---------------------------------------------------------------- characters

_PRONOUNS = _words(r"he|she|they|him|her|hers|his|them|their|theirs|himself|herself|themselves")


def characters_in(text: str, names: list[str]) -> list[str]:
    """Front-matter names the text mentions (whole words, any case, "Mara's" too), in their order.

    Names spoken inside quoted dialogue ("Follow the light, Finn!") do not put a character
    in the shot: being called is not being seen.
    """
    seen = _QUOTED.sub(" ", text)
    return [name for name in names if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", seen, re.I)]


def uses_pronoun(text: str) -> bool:
    return bool(_PRONOUNS.search(text))


# ---------------------------------------------------------------- setting

# (phrase, scale, words): scale orders a pair from the larger place to the smaller one,
# so "a rocky coast with a lighthouse" rather than the other way round.
PLACES: tuple[tuple[str, int, re.Pattern[str]], ...] = (
    ("a rocky coast", 0, _words(r"coast(?:line)?", r"shores?", r"cliffs?", r"headland", r"rocks")),
    ("the open sea", 0, _words(r"sea", r"ocean", r"open water")),
    ("a pine forest", 0, _words(r"forest", r"woods", r"pines", r"trees")),
    ("mountains", 0, _words(r"mountains?", r"peaks?", r"ridge", r"valley")),
    ("a desert", 0, _words(r"desert", r"dunes")),
    ("a snowy plain", 0, _words(r"tundra", r"snowfield", r"plain")),
    ("a city street", 0, _words(r"city", r"streets?", r"rooftops?", r"alley(?:way)?", r"downtown")),
    ("a bay", 1, _words(r"bay", r"cove")),
    ("a harbour", 1, _words(r"harbou?r", r"docks?", r"pier", r"quay", r"jetty")),
    ("a beach", 1, _words(r"beach", r"sand")),
    ("a river", 1, _words(r"river(?:bank)?", r"stream", r"creek", r"rapids")),
    ("a lake", 1, _words(r"lake", r"pond")),
    ("a meadow", 1, _words(r"meadow", r"fields?", r"grassland")),
    ("a hilltop", 1, _words(r"hill(?:top|side|s)?")),
    ("a village", 1, _words(r"village", r"hamlet")),
    ("a market square", 1, _words(r"market", r"bazaar", r"square")),
    ("a garden", 1, _words(r"garden")),
    ("a lighthouse", 2, _words(r"lighthouse")),
    ("a wooden bridge", 2, _words(r"bridge")),
    ("a waterfall", 2, _words(r"waterfall")),
    ("a cave", 2, _words(r"caves?", r"cavern", r"tunnel")),
    ("a small boat", 2, _words(r"boat", r"rowboat", r"canoe", r"raft", r"deck")),
    ("a train station", 2, _words(r"station", r"platform", r"train")),
    ("a cottage", 2, _words(r"cottage", r"cabin", r"hut")),
    ("a castle", 2, _words(r"castle")),
    ("a spiral staircase", 3, _words(r"stairs", r"staircase", r"stairwell")),
    ("a lantern room", 3, _words(r"lantern room", r"lamp room")),
    ("a cosy kitchen", 3, _words(r"kitchen")),
    ("a small room", 3, _words(r"room", r"bedroom", r"attic")),
)
TIMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("at dawn", _words(r"dawn", r"sunrise", r"daybreak", r"first light")),
    ("in the morning", _words(r"morning")),
    ("at midday", _words(r"noon", r"midday")),
    ("in the afternoon", _words(r"afternoon")),
    ("at dusk", _words(r"dusk", r"sunset", r"twilight", r"evening", r"sundown")),
    ("at night", _words(r"night(?:fall)?", r"midnight", r"moonlight", r"moonlit", r"moon", r"stars", r"starlight")),
)
WEATHERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # listed first so that "the storm passes" clears the sky rather than starting a storm
    ("under a clear sky", _words(
        r"(?:rain|storm|snow|fog|mist)\s+(?:stops|ends|eases|passes|clears|lifts)",
        r"clear sky", r"sunny", r"sunshine", r"the sky clears",
    )),
    ("in a thunderstorm", _words(r"thunder(?:storm)?", r"lightning")),
    ("in heavy rain", _words(r"storm", r"downpour", r"pouring", r"heavy rain", r"lashing rain", r"gale")),
    ("in the rain", _words(r"rain(?:s|ing|y|fall)?", r"drizzle")),
    ("in falling snow", _words(r"snow(?:s|ing|fall|flakes)?", r"blizzard")),
    ("in thick fog", _words(r"fog(?:gy)?", r"mist(?:y)?", r"haze")),
    ("in strong wind", _words(r"wind", r"windy", r"gusts?")),
)


@dataclass
class SceneState:
    """Where and when the story is: carried from shot to shot until the text changes it."""

    place: str = ""
    time: str = ""
    weather: str = ""

    def update(self, text: str) -> None:
        """Take in a shot's (or a scene heading's) words."""
        # 1. places: the (at most two) named in this text replace the old place
        named: list[tuple[int, int, str]] = []
        taken: list[tuple[int, int]] = []  # "lantern room" is not also "a small room"
        for phrase, scale, pattern in sorted(PLACES, key=lambda place: -place[1]):
            for match in pattern.finditer(text):
                start, end = match.span()
                if all(end <= s or start >= e for s, e in taken):
                    named.append((start, scale, phrase))
                    taken.append((start, end))
                    break
        if named:
            first_two = sorted(named)[:2]  # the two mentioned first...
            ordered = [phrase for _, _, phrase in sorted(first_two, key=lambda n: (n[1], n[0]))]
            self.place = " with ".join(ordered)  # ...larger place first
        # 2. time of day and weather: the one mentioned last wins
        self.time = _last_mentioned(TIMES, text) or self.time
        self.weather = _last_mentioned(WEATHERS, text) or self.weather

    def describe(self) -> str:
        """'a rocky coast with a lighthouse, at dusk, in heavy rain'."""
        return ", ".join(part for part in (self.place, self.time, self.weather) if part)


def _last_mentioned(lexicon: tuple[tuple[str, re.Pattern[str]], ...], text: str) -> str:
    best: tuple[int, int, str] | None = None
    for rank, (phrase, pattern) in enumerate(lexicon):
        for match in pattern.finditer(text):
            # the mention that ends last wins ("heavy rain" over its own "rain"); at a tie the earlier entry
            key = (match.end(), -rank, phrase)
            if best is None or key[:2] > best[:2]:
                best = key
    return best[2] if best else ""


# ---------------------------------------------------------------- mood

# The words that tell each mood of storyflow.core.vocabulary.MOODS. The mood with the most
# matching words wins (ties: the earlier one here); none: carried over.
MOOD_WORDS: dict[str, re.Pattern[str]] = {
    "tense": _words(
        r"chas(?:e|es|ed|ing)", r"run|runs|running|ran", r"danger(?:ous)?", r"fear", r"afraid",
        r"panic", r"rac(?:e|es|ing)", r"flee(?:s|ing)?", r"hunt(?:s|ing)?", r"threat", r"storm",
        r"crash(?:es)?", r"pounding", r"escape(?:s)?", r"snaps?", r"grabs?", r"faster", r"desperate",
    ),
    "joyful": _words(
        r"laugh(?:s|ing)?", r"smil(?:e|es|ing)", r"joy(?:ful)?", r"happy", r"delight(?:ed)?",
        r"cheer(?:s|ful)?", r"celebrat(?:e|es|ing)", r"danc(?:e|es|ing)", r"sings?", r"grins?",
    ),
    "melancholy": _words(
        r"alone", r"lonely", r"tears?", r"cr(?:y|ies)", r"weeps?", r"grief", r"sad", r"sorrow",
        r"loss", r"lost", r"empty", r"remembers?", r"memor(?:y|ies)", r"goodbye", r"farewell", r"gone",
    ),
    "mysterious": _words(
        r"strange", r"shadows?", r"unknown", r"secret", r"hidden", r"glow(?:s|ing)?", r"mist",
        r"fog", r"whisper(?:s|ed)?", r"flicker(?:s|ing)?", r"faint", r"magic(?:al)?", r"shimmer(?:s|ing)?",
        r"wonder", r"gleam(?:s|ing)?",
    ),
    "triumphant": _words(
        r"victory", r"wins?", r"triumph(?:ant)?", r"safe(?:ly)?", r"saved?", r"rescues?", r"proud(?:ly)?",
        r"at last", r"finally", r"made it",
    ),
    "eerie": _words(
        r"ghost(?:ly)?", r"eerie", r"silent", r"creak(?:s|ing)?", r"hollow", r"abandoned",
        r"cold", r"dead", r"howl(?:s|ing)?",
    ),
    "romantic": _words(r"love", r"kiss(?:es)?", r"embrac(?:e|es)", r"hand in hand", r"heart", r"tender"),
    "playful": _words(
        r"play(?:s|ing)?", r"bounc(?:e|es|ing)", r"tumbl(?:e|es|ing)", r"leap(?:s|ing)?",
        r"giggl(?:e|es)", r"teas(?:e|es|ing)", r"splash(?:es|ing)?", r"skips?", r"pounc(?:e|es)",
        r"wiggl(?:e|es)", r"somersault(?:s)?",
    ),
    "calm": _words(
        r"quiet(?:ly)?", r"calm", r"still", r"gentle", r"gently", r"peaceful", r"soft(?:ly)?",
        r"slow(?:ly)?", r"drifts?", r"rests?", r"sleeps?", r"warm",
    ),
}


def mood_of(text: str, previous: str | None) -> str:
    """The shot's mood from its words; the previous shot's when none match."""
    scores = {mood: len(pattern.findall(text)) for mood, pattern in MOOD_WORDS.items()}
    best = max(scores, key=lambda mood: scores[mood])  # max keeps the first of equals
    if scores[best]:
        return best
    return previous or DEFAULT_MOOD


# ---------------------------------------------------------------- sound

# Sounds the text names, in priority order; a shot keeps at most two.
SOUNDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("thunder", _words(r"thunder(?:storm)?", r"lightning")),
    ("rain", _words(r"rain(?:s|ing|fall)?", r"downpour", r"drizzle", r"storm")),
    ("waves", _words(r"waves?", r"surf", r"sea", r"ocean", r"tide")),
    ("wind", _words(r"wind", r"gale", r"gusts?", r"breeze")),
    ("running water", _words(r"river", r"stream", r"creek", r"rapids", r"waterfall", r"splash(?:es|ing)?")),
    ("footsteps", _words(r"footsteps", r"steps", r"walks?", r"runs?", r"running", r"climbs?", r"stairs", r"paws")),
    ("birds", _words(r"birds?", r"gulls?", r"seagulls?", r"owls?", r"crows?", r"herons?", r"wings")),
    ("crowd", _words(r"crowd", r"people", r"market", r"cheers", r"townsfolk")),
    ("engine", _words(r"engines?", r"motor", r"car", r"truck", r"train")),
    ("fire", _words(r"fire", r"flames?", r"crackl(?:e|es|ing)", r"hearth", r"campfire")),
    ("bells", _words(r"bells?", r"chimes?")),
    ("creaking wood", _words(r"creak(?:s|ing)?")),
    ("howling", _words(r"howl(?:s|ing)?")),
    ("silence", _words(r"silence", r"silent", r"hush(?:ed)?")),
)
# Nothing named: an ambience that fits the setting (first match), else a quiet room tone.
AMBIENCES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("thunder, rain", _words(r"thunderstorm")),
    ("rain", _words(r"rain")),
    ("wind", _words(r"wind", r"snow(?:y)?")),
    ("waves", _words(r"sea", r"coast", r"harbour", r"bay", r"beach", r"lighthouse")),
    ("running water", _words(r"river", r"waterfall", r"lake")),
    ("birds", _words(r"forest", r"meadow", r"garden", r"hilltop")),
    ("distant traffic", _words(r"city", r"street", r"station")),
    ("crowd", _words(r"market")),
    ("crickets", _words(r"night")),
)
DEFAULT_SOUND = "quiet room tone"


def sound_of(text: str, setting: str) -> str:
    """The shot's sound cue: what the text names, else an ambience for its setting."""
    named = [sound for sound, pattern in SOUNDS if pattern.search(text)]
    if named:
        return ", ".join(named[:2])
    for ambience, pattern in AMBIENCES:
        if pattern.search(setting):
            return ambience
    return DEFAULT_SOUND


# ---------------------------------------------------------------- action: what is seen

ACTION_MAX_WORDS = 40
_QUOTED = re.compile(r"[\"“][^\"“”]*[\"”]")
_CLAUSE_SPLIT = re.compile(r"\s*(?:[,;:]|\s[—–-]\s|\s(?=(?:as|while|and then)\s))\s*")
_LEADING_LINK = re.compile(r"^(?:as|while|where|and then|and|then|but)\s+", re.I)


def action_of(sentences: list[str], characters: list[str]) -> str:
    """What is seen: the sentences without dialogue or camera talk, concise."""
    parts: list[str] = []
    tags: list[str] = []  # what is left of a line of dialogue: "She whispers."
    for sentence in sentences:
        spoken = bool(_QUOTED.search(sentence))
        seen = _name_the_subject(_without_dialogue(_without_camera_talk(sentence)), characters)
        if seen and spoken and word_count(seen) <= 3:
            tags.append(seen)
        elif seen:
            parts.append(seen)
        if word_count(" ".join(parts)) >= ACTION_MAX_WORDS:
            break
    if parts or tags:
        return " ".join(parts or tags)  # a speech tag is shown only when nothing else is
    if characters:  # only dialogue: show who speaks
        return f"{' and '.join(characters)} {'speaks' if len(characters) == 1 else 'speak'}."
    return " ".join(sentences)


def _without_camera_talk(sentence: str) -> str:
    """Drop the clauses that talk about the camera ("the camera pans left across the bay")."""
    if not find_directives(sentence) and not re.search(r"\bcamera\b", sentence, re.I):
        return sentence
    clauses = [c for c in _CLAUSE_SPLIT.split(sentence.rstrip(".!?…")) if c.strip()]
    kept = [c for c in clauses if not find_directives(c) and not re.search(r"\bcamera\b", c, re.I)]
    if not kept:  # the whole sentence is camera talk: keep what it looks at, if anything
        rest = re.sub(r"\b(?:the )?camera\b", " ", without_directives(sentence), flags=re.I)
        kept = [rest] if re.search(r"[A-Za-z]{3,}", rest) else []
    return _as_sentence(", ".join(_LEADING_LINK.sub("", c.strip()) for c in kept))


def _without_dialogue(sentence: str) -> str:
    text = _QUOTED.sub(" ", sentence)
    text = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(text.split()))
    text = re.sub(r"^[\s,.;:!?—–-]+", "", text)
    return _as_sentence(text) if re.search(r"[A-Za-z]{2,}", text) else ""


def _name_the_subject(sentence: str, characters: list[str]) -> str:
    """'She climbs' -> 'Mara climbs' when exactly one character is in the shot."""
    if len(characters) != 1 or not sentence:
        return sentence
    name = characters[0]
    sentence = re.sub(r"^(?:She|He)\b", name, sentence)
    return re.sub(r"^(?:Her|His)\b", f"{name}'s", sentence)


def _as_sentence(text: str) -> str:
    text = " ".join(text.split()).strip(" ,;:—–-")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…\"”" else text + "."


# ---------------------------------------------------------------- style and lighting

_COLOURS = (
    r"red|crimson|scarlet|orange|amber|gold(?:en)?|yellow|ochre|green|emerald|olive|teal|"
    r"turquoise|cyan|blue|navy|indigo|violet|purple|magenta|pink|rose|brown|sepia|umber|"
    r"black|white|grey|gray|silver|cream|ivory|pastels?|monochrome"
)
_PALETTE = re.compile(  # "muted teal", "emerald green", "blue-grey"
    rf"\b(?:(?:muted|pale|deep|dark|bright|warm|cool|soft|dusty|faded|rich|burnt|neon)\s+)?"
    rf"(?:{_COLOURS})(?:[\s-]+(?:{_COLOURS}))?\b",
    re.I,
)


def palette_of(style: str) -> str:
    """The colour words of a style, in order: 'muted teal, amber'."""
    seen: list[str] = []
    for match in _PALETTE.finditer(style):
        colour = match.group().lower()
        if colour not in seen:
            seen.append(colour)
    return ", ".join(seen)


LIGHT_BY_TIME: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("soft pink dawn light", _words(r"dawn")),
    ("fresh morning light", _words(r"morning")),
    ("bright overhead sun", _words(r"midday")),
    ("warm afternoon light", _words(r"afternoon")),
    ("low golden light", _words(r"dusk")),
    ("cool blue moonlight, deep shadows", _words(r"night")),
)
LIGHT_BY_WEATHER: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("crisp clear light", _words(r"clear sky")),
    ("flashes of lightning", _words(r"thunderstorm")),
    ("wet reflective surfaces", _words(r"rain")),
    ("soft diffuse light from the snow", _words(r"snow")),
    ("diffused hazy light", _words(r"fog")),
)
LIGHT_BY_MOOD = {
    "calm": "soft even light",
    "joyful": "bright saturated colours",
    "tense": "high contrast",
    "melancholy": "muted desaturated tones",
    "mysterious": "low-key lighting",
    "triumphant": "radiant backlight",
    "eerie": "cold pale light",
    "romantic": "soft warm glow",
    "playful": "bright cheerful light",
}


def lighting_of(setting: str, mood: str) -> str:
    """Lighting words for a shot from its setting (time, weather) and mood."""
    words = [light for light, pattern in LIGHT_BY_TIME if pattern.search(setting)][:1]
    words += [light for light, pattern in LIGHT_BY_WEATHER if pattern.search(setting)][:1]
    words.append(LIGHT_BY_MOOD.get(mood, LIGHT_BY_MOOD[DEFAULT_MOOD]))
    return ", ".join(words)
