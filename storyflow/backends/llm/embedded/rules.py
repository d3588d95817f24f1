"""The embedded planner's rules: lexicons and small pure functions, one job each.

Everything the planner infers is decided here, from words in the story, so each rule can
be read (and changed) on its own: the shot grammar (framing, camera move, angle, effects)
a shot gets where the story writes none, how events told in sequence are worded,
who is in a shot, where and when it happens, its mood, its sound, what is seen, how long
it lasts, and, for the rewriter, how a camera move and a lighting situation are phrased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storyflow.backends.llm.embedded.text import (
    Directive,
    Event,
    find_directives,
    without_directives,
    word_count,
)
from storyflow.core.models import CameraAngle, CameraMove, Framing, LensEffect
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
MIN_CHANGE_HOLD_SECONDS = 1.0  # ...and a written length ("[10s]") that leaves it less than this is an error
MAX_SHOT_WORDS = 18  # a paragraph is split into shots of at most this many words...
MAX_SHOT_SENTENCES = 3  # ...and at most this many sentences (about 2.5 to 8 s each)


def reading_seconds(text: str) -> float:
    """How long a shot stays on screen for its narration to be read, in seconds."""
    seconds = word_count(text) / WORDS_PER_SECOND + SHOT_PAD_SECONDS
    return min(MAX_SHOT_SECONDS, max(MIN_SHOT_SECONDS, seconds))


# ---------------------------------------------------------------- shot grammar

# What the story did not write is inferred from its words, part by part; every rule below is
# "first match wins". See infer_grammar and rule 4 of the embedded package's docstring.

# Vast places and views: an establishing shot of one is an extreme wide shot.
VAST = _words(
    r"vast", r"endless", r"massive", r"immense", r"enormous", r"huge", r"horizon", r"panorama",
    r"landscape", r"skyline", r"surface of the earth", r"as far as the eye can see", r"sea", r"ocean",
    r"mountains?", r"desert", r"dunes", r"valley", r"canyon", r"tundra", r"nebula", r"galaxy",
    r"universe", r"planet", r"sky",
)
# Framing, first match wins (after what is written, and the establishing shot: see infer_grammar).
FRAMING_RULES: tuple[tuple[Framing, re.Pattern[str]], ...] = (
    # one small detail: an eye, a tear, a drop
    (Framing.EXTREME_CLOSE_UP, _words(
        r"eyes?", r"iris", r"pupils?", r"eyelash(?:es)?", r"tears?", r"teardrop", r"droplets?",
        r"a drop of", r"dewdrops?", r"fingertips?", r"a single (?:drop|petal|feather|grain)",
    )),
    # a face, hands, a whisper, a small object held or looked at
    (Framing.CLOSE_UP, _words(
        r"(?:her|his|their|its|my|a|the) (?:face|hands?|fingers|lips|palms?)", r"whisper(?:s|ed|ing)?",
        r"yawn(?:s|ed|ing)?",
        r"smil(?:e|es|ed|ing)", r"frown(?:s|ed|ing)?", r"weep(?:s|ing)?|wept", r"cr(?:y|ies|ying)",
        r"blink(?:s|ed|ing)?",
        r"(?:hold(?:s|ing)?|held|grips?|gripping|clutch(?:es|ing)?|picks? up|picking up|looks? at|looking at|"
        r"stares? at|staring at|gazes? at|examin(?:es|ing)|studies|studying|turns? over|opens?|reads?|reading)"
        r" (?:a|an|the|his|her|their|its|my|one) (?:\w+ ){0,2}"
        r"(?:keys?|coins?|rings?|letters?|photo(?:graph)?s?|notes?|lockets?|watch|compass|shells?|stones?|"
        r"pebbles?|feathers?|buttons?|cups?|mugs?|phones?|candles?|matches|needles?|seeds?|flowers?|"
        r"petals?|leaf|leaves|jewel|gem|envelopes?|map|ticket|card|bottle|vial|scroll|book)",
    )),
    # two faces in a conversation, eating, drinking, typing: head and shoulders
    (Framing.MEDIUM_CLOSE_UP, _words(
        r"selfie", r"eat(?:s|ing)?|ate", r"drink(?:s|ing)?|drank", r"typ(?:e|es|ing)", r"sips?",
        r"talk(?:s|ing)?", r"speak(?:s|ing)?", r"listen(?:s|ing)?", r"sing(?:s|ing)?", r"kiss(?:es|ing)?",
    )),
    # a chase, a walk along: the whole body in motion
    (Framing.MEDIUM_WIDE, _words(
        r"run|runs|running|ran", r"chas(?:e|es|ed|ing)", r"rac(?:e|es|ed|ing)", r"sprint(?:s|ed|ing)?",
        r"flee(?:s|ing)?|fled", r"gallop(?:s|ed|ing)?", r"pursu(?:e|es|ed|ing)", r"skat(?:e|es|ing)",
        r"walk(?:s|ing)? (?:along|down|through|across|up)", r"danc(?:e|es|ed|ing)", r"jump(?:s|ed|ing)?",
        r"rid(?:e|es|ing)|rode",
    )),
    # flight, a vast view: the whole scene
    (Framing.WIDE, _words(
        r"fl(?:y|ies|ying|ew)", r"soar(?:s|ed|ing)?", r"glid(?:e|es|ed|ing)", r"swoop(?:s|ed|ing)?",
        r"explo(?:de|des|ding|sion)", r"erupt(?:s|ing|ion)?", r"crash(?:es|ing)?", r"storm",
    )),
)
DEFAULT_FRAMING = Framing.MEDIUM

# The camera move, first match wins (after what is written).
CAMERA_RULES: tuple[tuple[CameraMove, re.Pattern[str]], ...] = (
    # running, chasing, racing, riding, walking along: follow the subject along the ground
    (CameraMove.TRACKING_SHOT, _words(
        r"run|runs|running|ran", r"chas(?:e|es|ed|ing)", r"rac(?:e|es|ed|ing)",
        r"sprint(?:s|ed|ing)?", r"flee(?:s|ing)?|fled", r"gallop(?:s|ed|ing)?",
        r"pursu(?:e|es|ed|ing)", r"dash(?:es|ed|ing)?", r"scurr(?:y|ies|ied|ying)",
        r"skat(?:e|es|ing)", r"rid(?:e|es|ing) (?:a|an|the|his|her|their|along|through|down|across)",
        r"walk(?:s|ing)? (?:along|down|through|across)", r"driv(?:e|es|ing) (?:through|along|down|across)",
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
    # looking up, climbing, something towering: tilt up with it
    (CameraMove.TILT_UP, _words(
        r"look(?:s|ed|ing)? up", r"gaz(?:e|es|ed|ing) up", r"towers|towering",
        r"loom(?:s|ed|ing)?", r"climb(?:s|ed|ing)?", r"ascend(?:s|ed|ing)?",
    )),
    # looking down, descending: tilt down
    (CameraMove.TILT_DOWN, _words(
        r"look(?:s|ed|ing)? down", r"peer(?:s|ed|ing)? down", r"descend(?:s|ed|ing)?",
    )),
    # dancing, spinning, a performance: circle the subject
    (CameraMove.ARC_SHOT, _words(
        r"danc(?:e|es|ed|ing)", r"spin(?:s|ning)?|spun", r"twirl(?:s|ed|ing)?", r"pirouettes?",
        r"play(?:s|ing)? (?:the )?(?:drums|guitar|piano|violin|cello|flute|cards|chess)",
        r"circl(?:e|es|ing)",
    )),
    # a reveal: pull out
    (CameraMove.ZOOM_OUT, _words(
        r"reveal(?:s|ed|ing)?", r"emerg(?:e|es|ed|ing)", r"appears? (?:from|out of|behind)",
    )),
)
# An establishing shot (see infer_grammar): a seeded pick among these.
ESTABLISHING_MOVES = (CameraMove.CRANE_SHOT, CameraMove.PAN_RIGHT, CameraMove.PAN_LEFT)
# No rule fired and not a close-up: a seeded pick among calm moves that suit the framing,
# never the previous shot's move (a close-up pushes in, or holds after a push-in).
ROTATION_MOVES: dict[str, tuple[CameraMove, ...]] = {
    "medium": (CameraMove.STATIC, CameraMove.ZOOM_IN, CameraMove.ARC_SHOT, CameraMove.PAN_LEFT, CameraMove.PAN_RIGHT),
    "wide": (CameraMove.PAN_LEFT, CameraMove.PAN_RIGHT, CameraMove.ZOOM_OUT, CameraMove.STATIC, CameraMove.CRANE_SHOT),
}
_SCALE = {
    Framing.EXTREME_CLOSE_UP: "close", Framing.CLOSE_UP: "close", Framing.MEDIUM_CLOSE_UP: "medium",
    Framing.MEDIUM: "medium", Framing.MEDIUM_WIDE: "medium", Framing.WIDE: "wide", Framing.EXTREME_WIDE: "wide",
}  # fmt: skip

# The angle, only where the text implies one (first match wins); else none is set.
ANGLE_RULES: tuple[tuple[CameraAngle, re.Pattern[str]], ...] = (
    (CameraAngle.OVERHEAD, _words(
        r"from (?:high )?above", r"bird'?s[- ]eye", r"top[- ]down", r"directly (?:above|overhead)",
        r"seen from the sky",
    )),
    (CameraAngle.LOW, _words(
        r"towers|towering", r"loom(?:s|ed|ing)?", r"giant", r"colossal", r"gigantic", r"skyscrapers?",
        r"heroic(?:ally)?", r"triumphant(?:ly)?", r"roar(?:s|ed|ing)?", r"from below", r"looks? up at",
        r"looking up at", r"statue",
    )),
    (CameraAngle.HIGH, _words(
        r"tiny", r"far below", r"looks? down (?:on|at)", r"looking down (?:on|at)", r"villages?",
        r"miniature", r"toy-like", r"helpless",
    )),
    (CameraAngle.DUTCH, _words(
        r"dizz(?:y|ily|iness)", r"off-kilter", r"askew", r"disorient(?:ed|ing)", r"drunk(?:enly)?",
        r"reel(?:s|ed|ing)", r"lopsided",
    )),
)
# Effects, only where the text clearly implies one (each that matches); rack focus only when written.
EFFECT_RULES: tuple[tuple[LensEffect, re.Pattern[str]], ...] = (
    (LensEffect.SLOW_MOTION, _words(
        r"slowly (?:fall(?:s|ing)?|drift(?:s|ing)?|float(?:s|ing)?|sink(?:s|ing)?|settl(?:e|es|ing)|tumbl(?:e|es|ing))",
        r"(?:fall(?:s|ing)?|drift(?:s|ing)?|float(?:s|ing)?|sink(?:s|ing)?|settl(?:e|es|ing)|tumbl(?:e|es|ing)) slowly",
        r"frozen in mid-?air", r"suspended in (?:mid-?)?air",
    )),
    (LensEffect.TIME_LAPSE, _words(
        r"over (?:the course of )?(?:the |many |several |a few )?(?:hours|days|weeks|months|years|seasons|the day|the night)",
        r"(?:day|dusk|dawn) (?:turns|fades|gives way) (?:in)?to (?:night|day|dawn|dusk)",
        r"(?:the )?seasons (?:change|pass|turn)", r"hours pass", r"days pass",
    )),
    (LensEffect.TILT_SHIFT, _words(
        r"miniature", r"toy-like", r"toy town", r"model (?:village|town|city)", r"small world",
    )),
)


@dataclass(frozen=True)
class Grammar:
    """A shot's grammar: written parts kept, the rest inferred."""

    framing: Framing
    angle: CameraAngle | None
    moves: tuple[CameraMove, ...]  # the leading move first
    effects: tuple[LensEffect, ...]


def infer_grammar(
    written: list[Directive],
    text: str,
    opening: str,
    establishing: bool,
    previous: CameraMove | None,
    rng: np.random.Generator,
) -> Grammar:
    """The shot grammar: every written directive kept, what is missing inferred (rule 4).

    `text` is all of the shot's words, `opening` what is seen from its start (its framing and
    angle are read from it), `establishing` whether it opens a scene or a new place, and
    `previous` the previous shot's leading move (a seeded pick never repeats it).
    """
    text = without_directives(text)
    opening = without_directives(opening)
    framing = next((d for d in written if isinstance(d, Framing)), None) or infer_framing(opening, establishing)
    angle = next((d for d in written if isinstance(d, CameraAngle)), None) or infer_angle(opening)
    moves = tuple(dict.fromkeys(d for d in written if isinstance(d, CameraMove)))
    if not moves:
        moves = (infer_move(text, framing, establishing, previous, rng),)
    effects = tuple(dict.fromkeys(d for d in written if isinstance(d, LensEffect)))
    if not effects:
        effects = infer_effects(text)
    return Grammar(framing, angle, moves, effects)


def infer_framing(text: str, establishing: bool) -> Framing:
    """A detail or a face (close-ups) wins; then an establishing shot is wide (extreme wide for a
    vast place); then FRAMING_RULES; else a medium shot."""
    for framing, pattern in FRAMING_RULES[:2]:
        if pattern.search(text):
            return framing
    if establishing:
        return Framing.EXTREME_WIDE if VAST.search(text) else Framing.WIDE
    if VAST.search(text) and not _SUBJECT.search(text):
        return Framing.EXTREME_WIDE
    for framing, pattern in FRAMING_RULES[2:]:
        if pattern.search(text):
            return framing
    return Framing.EXTREME_WIDE if VAST.search(text) else DEFAULT_FRAMING


def infer_move(
    text: str, framing: Framing, establishing: bool, previous: CameraMove | None, rng: np.random.Generator
) -> CameraMove:
    """CAMERA_RULES; then an establishing crane or pan; then a seeded calm move for the framing."""
    for move, pattern in CAMERA_RULES:
        if pattern.search(text):
            return move
    if establishing:
        return ESTABLISHING_MOVES[int(rng.integers(len(ESTABLISHING_MOVES)))]
    if _SCALE[framing] == "close":  # a close-up pushes in, or holds after a shot that pushed in
        return CameraMove.STATIC if previous is CameraMove.ZOOM_IN else CameraMove.ZOOM_IN
    choices = [move for move in ROTATION_MOVES[_SCALE[framing]] if move != previous]
    return choices[int(rng.integers(len(choices)))]


def infer_angle(text: str) -> CameraAngle | None:
    """ANGLE_RULES: an angle only where the words imply one."""
    return next((angle for angle, pattern in ANGLE_RULES if pattern.search(text)), None)


def infer_effects(text: str) -> tuple[LensEffect, ...]:
    """EFFECT_RULES: every effect the words clearly imply (usually none)."""
    return tuple(effect for effect, pattern in EFFECT_RULES if pattern.search(text))


# Someone or something to frame: a person, an animal, a figure. Without one, a vast view is
# framed extreme wide even when it does not open a scene.
_SUBJECT = _words(
    r"he|she|they|man|woman|boy|girl|child|people|person|figure|robot|astronaut|dog|cat|horse|bear|"
    r"fox|bird|birds|gull|raccoons?|panda|pandas|lion|dragon|animal|creature|ship|boat|car|train",
)


def big_place_of(text: str) -> str:
    """The first large place (scale 0-1 of PLACES: a coast, a forest, a harbour...) the text names, or ""."""
    return _first_place(text, max_scale=1)


def place_of(text: str) -> str:
    """The first place of any size (PLACES) the text names, or ""."""
    return _first_place(text, max_scale=3)


def _first_place(text: str, max_scale: int) -> str:
    found = [(m.start(), phrase) for phrase, scale, pattern in PLACES if scale <= max_scale for m in [pattern.search(text)] if m]
    return min(found)[1] if found else ""


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
    """Drop the clauses that talk about the camera ("the camera pans left across the bay"); cut
    the other directives out of their clause ("A close-up of her hands" -> "Her hands")."""
    if not find_directives(sentence) and not re.search(r"\bcamera\b", sentence, re.I):
        return sentence
    clauses = [c for c in _CLAUSE_SPLIT.split(sentence.rstrip(".!?…")) if c.strip()]
    kept = []
    for clause in clauses:
        found = [kind for kind, _, _ in find_directives(clause)]
        if re.search(r"\bcamera\b", clause, re.I) or any(isinstance(kind, CameraMove) for kind in found):
            continue
        rest = without_directives(clause) if found else clause
        if re.search(r"[A-Za-z]{2,}", rest):
            kept.append(rest)
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


# ---------------------------------------------------------------- events in sequence

_DETERMINER = re.compile(r"^(?:a|an|the|his|her|their|its|my|our|one|two|three|some)\b", re.I)


def subject_of(event: str, characters: list[str]) -> str:
    """Who or what an event's sentence is about, as a later event can name it: "A man walks in"
    -> "The man"; "Mara climbs" -> "Mara"; "" when it cannot tell."""
    for name in characters:
        if re.match(rf"{re.escape(name)}\b", event, re.I):
            return name
    words = event.split()
    if not words or not _DETERMINER.match(words[0]):
        return ""
    for n in range(2, min(len(words), 5)):  # the noun after the determiner is never the verb
        if re.fullmatch(r"[a-z]+s", words[n]) and not words[n].endswith("ss"):
            phrase = " ".join(words[:n]).strip(",")
            return re.sub(r"^(?:a|an)\b", "The", phrase, flags=re.I)
    return ""


def event_sentence(event: Event, subject: str) -> str:
    """An event as a sentence a picture can be made of: the subject it shares with the event
    before it put back ("sits down" -> "The man sits down."; "It barks." -> "The dog barks.")."""
    text = event.text.strip()
    if subject and event.opens_with_verb:
        text = f"{subject} {text}"
    elif subject and re.match(r"^it\b", text, re.I) and not re.match(r"^it(?:'s| is| was)\b", text, re.I):
        text = subject + text[2:]
    return _as_sentence(text)


# ---------------------------------------------------------------- rephrasing after a safety filter

# Words video providers' safety filters commonly flag, and the plainer words a rephrased prompt
# says instead ("": left out). Small on purpose: the story's own words stay wherever they are safe.
SOFTER = {
    "blood": "red paint", "bloody": "", "bloodied": "", "bleeding": "hurt", "gore": "", "gory": "",
    "gruesome": "", "kill": "stop", "kills": "stops", "killed": "stopped", "killing": "stopping",
    "murder": "crime", "murders": "crimes", "murdered": "struck down", "dead": "motionless",
    "corpse": "still figure", "corpses": "still figures", "die": "fall", "dies": "falls", "died": "fell",
    "dying": "fading", "gun": "prop", "guns": "props", "pistol": "prop", "rifle": "prop", "weapon": "prop",
    "weapons": "props", "stab": "strike", "stabs": "strikes", "stabbed": "struck", "bomb": "device",
    "bombs": "devices", "explosion": "burst of light", "explodes": "bursts into light", "wound": "mark",
    "wounded": "hurt", "violent": "fierce", "violence": "conflict", "brutal": "fierce", "brutally": "fiercely",
    "naked": "", "nude": "", "drugs": "medicine", "terrified": "startled", "horrifying": "startling",
}  # fmt: skip
_FLAGGED = _words(*SOFTER)


def soften(text: str) -> str:
    """The text with every word in SOFTER said plainly or left out (a capital kept); the rest word for word."""
    parts: list[str] = []
    capital = False  # a word left out began with a capital: the next word takes it
    end = 0
    for match in _FLAGGED.finditer(text):
        gap = text[end : match.start()]
        if capital and gap.strip():
            gap, capital = _capitalised(gap), False
        parts.append(gap)
        word = SOFTER[match.group(0).lower()]
        capital = capital or match.group(0)[:1].isupper()
        if word:
            parts.append(_capitalised(word) if capital else word)
            capital = False
        end = match.end()
    if not parts:
        return text
    rest = text[end:]
    softened = "".join(parts) + (_capitalised(rest) if capital else rest)
    return re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", softened)).strip()


def _capitalised(text: str) -> str:
    """The text with its first letter in upper case (leading spaces kept)."""
    stripped = text.lstrip()
    return text[: len(text) - len(stripped)] + stripped[:1].upper() + stripped[1:]
