"""Prompt words -> Scene: what the animatic draws and in what light.

The animatic understands a prompt through small keyword lexicons: time of day, weather,
setting, palette and style words, props, and action verbs. The request's subjects become
figures whose look comes from their descriptions ("a tall woman in a red raincoat" ->
a tall person with a red coat). Pure Python: no numpy, no Pillow.

Words inside a subject's description describe that subject only: "red raincoat" paints
Mara's coat, it does not tint the sky.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache

from storyflow.core.models import Character

RGB = tuple[int, int, int]

# ---------------------------------------------------------------- lexicons

# Named colours: figure clothes, accents and tints. Lower case, as written in prompts.
COLOURS: dict[str, RGB] = {
    "red": (200, 40, 40), "crimson": (170, 20, 45), "scarlet": (225, 35, 30),
    "orange": (235, 125, 35), "amber": (240, 165, 40), "golden": (235, 185, 60),
    "gold": (230, 180, 55), "yellow": (240, 210, 50), "green": (60, 150, 60),
    "emerald": (30, 150, 90), "olive": (110, 120, 50), "teal": (30, 140, 140),
    "turquoise": (50, 190, 180), "cyan": (40, 200, 220), "blue": (45, 85, 190),
    "navy": (30, 40, 100), "purple": (120, 55, 160), "violet": (140, 80, 200),
    "magenta": (210, 40, 170), "pink": (235, 130, 170), "brown": (120, 75, 40),
    "indigo": (70, 40, 140), "ochre": (200, 140, 50), "black": (35, 35, 40), "white": (235, 235, 235), "grey": (130, 130, 135),
    "gray": (130, 130, 135), "silver": (185, 190, 200), "beige": (210, 190, 150),
}  # fmt: skip

# Time of day: the first one the prompt mentions wins.
TIMES: dict[str, tuple[str, ...]] = {
    "dawn": ("dawn", "sunrise", "daybreak", "first light", "early morning"),
    "morning": ("morning",),
    "noon": ("noon", "midday", "day", "daytime", "daylight", "broad daylight"),
    "afternoon": ("afternoon",),
    "sunset": ("golden hour", "sunset", "sundown", "evening"),
    "dusk": ("dusk", "twilight", "nightfall", "blue hour"),
    "night": ("night", "midnight", "moonlit", "moonlight", "starry", "stars", "nighttime", "after dark"),
}

# Weather: every one mentioned applies. A storm brings rain, wind and lightning.
WEATHER: dict[str, tuple[str, ...]] = {
    "clouds": ("cloudy", "clouds", "cloud"),
    "overcast": ("overcast", "grey sky", "gray sky", "gloomy"),
    "rain": ("rain", "raining", "rainy", "drizzle", "downpour", "showers", "rainfall"),
    "storm": ("storm", "stormy", "thunderstorm", "tempest"),
    "snow": ("snow", "snowy", "snowing", "snowfall", "blizzard", "snowflakes", "winter"),
    "fog": ("fog", "foggy", "mist", "misty", "haze", "hazy"),
    "lightning": ("lightning", "thunder"),
    "wind": ("wind", "windy", "breeze", "breezy", "gust", "gale", "blizzard"),
}

# Settings: the one with the most mentions wins; ties go to the earliest mention.
# A variant refines the drawing ("lighthouse" -> a sea with a lighthouse).
SETTINGS: dict[str, tuple[str, ...]] = {
    "forest": ("forest", "woods", "woodland", "pines", "jungle", "grove", "trees"),
    "city": ("city", "street", "avenue", "rooftop", "downtown", "alley", "skyline",
             "metropolis", "skyscraper", "boulevard", "neon city"),
    "sea": ("sea", "ocean", "beach", "coast", "shore", "harbour", "harbor", "lighthouse",
            "waves", "pier", "bay", "seaside", "docks"),
    "mountain": ("mountain", "peak", "cliff", "summit", "ridge", "alps", "glacier"),
    "desert": ("desert", "dunes", "dune", "sahara", "canyon", "mesa", "wasteland"),
    "meadow": ("meadow", "field", "garden", "grassland", "prairie", "farm", "orchard", "pasture"),
    "village": ("village", "town", "hamlet", "cottage", "market square", "marketplace"),
    "river": ("river", "lake", "pond", "stream", "creek", "canal", "riverbank"),
    "interior": ("room", "kitchen", "library", "cinema", "theater", "theatre", "hall", "bedroom",
                 "office", "indoors", "inside", "interior", "corridor", "hallway", "studio",
                 "attic", "classroom", "cafe", "museum", "cabin", "staircase", "stairs"),
    "space": ("space", "outer space", "spaceship", "starship", "planet", "mars", "martian",
              "galaxy", "nebula", "asteroid", "orbit", "cosmos", "lunar"),
    "cave": ("cave", "cavern", "grotto", "tunnel", "mine", "underground"),
}  # fmt: skip
# "cabin" alone is a weak hint: "a cabin in the woods" is a forest.
WEAK_SETTING_WORDS = {"cabin": 0.5, "trees": 0.6, "inside": 0.6, "stars": 0.5}

VARIANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "sea": {"harbour": ("harbour", "harbor", "pier", "docks", "port"), "beach": ("beach", "sand")},
    "mountain": {"cliff": ("cliff",)},
    "meadow": {"garden": ("garden",)},
    "river": {"lake": ("lake", "pond")},
    "interior": {"library": ("library",), "kitchen": ("kitchen",), "cinema": ("cinema", "theater", "theatre"),
                 "cabin": ("cabin",), "hall": ("hall", "corridor", "hallway", "museum", "staircase", "stairs")},
    "space": {"mars": ("mars", "martian", "red planet")},
}

PROPS: dict[str, tuple[str, ...]] = {
    "lighthouse": ("lighthouse",),
    "boat": ("boat", "boats", "ship", "sailboat", "fishing boat"),
    "castle": ("castle", "tower", "fortress"),
    "campfire": ("campfire", "bonfire", "fire pit"),
    "tent": ("tent",),
    "bridge": ("bridge",),
    "moon": ("moon", "full moon"),
    "birds": ("birds", "gulls", "seagulls", "flock", "crows", "swallows"),
    "pines": ("pine", "fir", "spruce", "conifer", "evergreen"),
    "leafy": ("oak", "birch", "maple", "willow", "beech", "elm", "orchard"),
}

# Style and palette.
STYLES: dict[str, tuple[str, ...]] = {
    "noir": ("noir", "black and white", "black-and-white", "monochrome", "b&w", "greyscale", "grayscale"),
    "neon": ("neon", "vaporwave", "cyberpunk", "synthwave", "retrowave"),
    "pastel": ("pastel",),
    "sepia": ("sepia", "vintage", "old photograph"),
    "watercolor": ("watercolor", "watercolour", "painterly", "gouache"),
    "muted": ("muted", "desaturated", "faded", "washed out"),
    "vivid": ("vivid", "vibrant", "saturated", "technicolor"),
}
# Words that tint the whole picture, and how strongly.
TINT_WORDS: dict[str, tuple[RGB, float]] = {
    "golden": ((255, 200, 110), 0.22), "amber": ((255, 180, 80), 0.22), "teal": ((60, 180, 190), 0.2),
    "warm": ((255, 190, 130), 0.15), "cool": ((140, 180, 255), 0.15), "cold": ((140, 180, 255), 0.18),
    "rosy": ((255, 160, 180), 0.15), "crimson": ((200, 40, 60), 0.15), "emerald": ((60, 200, 120), 0.15),
}
# A colour word followed by one of these paints the whole scene ("blue light").
TINT_NOUNS = ("light", "lights", "tones", "tone", "hues", "hue", "palette", "glow", "tint",
              "grade", "haze", "wash", "lighting", "sky")  # fmt: skip

# Action verbs, per subject when the clause names one, else for everyone.
ACTIONS: dict[str, tuple[str, ...]] = {
    "run": ("runs", "running", "run", "ran", "sprints", "sprinting", "races", "racing", "dashes",
            "chases", "chasing", "flees", "fleeing", "gallops", "galloping"),
    "walk": ("walks", "walking", "walk", "walked", "strolls", "strolling", "wanders", "wandering",
             "marches", "marching", "hikes", "hiking", "strides", "paces", "trudges", "steps"),
    "sit": ("sits", "sitting", "seated", "sit", "sat", "rests", "resting", "perched", "perches"),
    "sleep": ("sleeps", "sleeping", "asleep", "naps", "napping", "dozes", "dozing", "lies", "lying",
              "curled up"),
    "fly": ("flies", "flying", "fly", "soars", "soaring", "glides", "gliding", "hovers", "hovering",
            "flaps", "flapping", "circle", "circles", "circling"),
    "dance": ("dances", "dancing", "dance", "twirls", "twirling", "spins", "spinning"),
    "climb": ("climbs", "climbing", "climb", "scales", "scaling", "ascends", "clambers"),
    "stand": ("stands", "standing", "stand", "waits", "waiting", "watches", "watching", "looks",
              "gazes", "stops", "pauses", "listens"),
}  # fmt: skip
# A clause with one of these (and no name) sets the action for every subject: "they run".
PRONOUNS = ("he", "she", "they", "it", "his", "her", "their", "its", "everyone", "together", "both")

# Creatures: kind and proportions, in units of a person's height.
#   body: length, height; legs: length; head: radius; ears; tail; neck (long-necked animals)
@dataclass(frozen=True)
class Build:
    kind: str  # "quadruped", "bird", "robot", "person"
    body_len: float = 0.0
    body_h: float = 0.0
    leg: float = 0.0
    head: float = 0.0
    ears: str = "none"  # "point", "round", "long", "none"
    tail: str = "none"  # "bushy", "thin", "short", "hair", "none"
    neck: bool = False
    antlers: bool = False
    colour: RGB = (120, 100, 80)


SPECIES: dict[str, Build] = {
    "fox": Build("quadruped", 0.42, 0.13, 0.12, 0.075, "point", "bushy", colour=(215, 110, 40)),
    "cat": Build("quadruped", 0.30, 0.11, 0.10, 0.065, "point", "thin", colour=(90, 90, 95)),
    "kitten": Build("quadruped", 0.22, 0.09, 0.07, 0.055, "point", "thin", colour=(200, 150, 90)),
    "dog": Build("quadruped", 0.45, 0.16, 0.17, 0.08, "round", "short", colour=(170, 120, 70)),
    "puppy": Build("quadruped", 0.30, 0.12, 0.10, 0.07, "round", "short", colour=(190, 150, 100)),
    "wolf": Build("quadruped", 0.55, 0.18, 0.20, 0.085, "point", "bushy", colour=(125, 125, 130)),
    "bear": Build("quadruped", 0.70, 0.33, 0.20, 0.12, "round", "short", colour=(95, 60, 35)),
    "horse": Build("quadruped", 0.80, 0.30, 0.45, 0.10, "point", "hair", neck=True, colour=(120, 70, 40)),
    "deer": Build("quadruped", 0.60, 0.22, 0.40, 0.08, "point", "short", neck=True, antlers=True,
                  colour=(165, 115, 70)),
    "rabbit": Build("quadruped", 0.22, 0.12, 0.05, 0.06, "long", "short", colour=(180, 165, 150)),
    "otter": Build("quadruped", 0.42, 0.1, 0.05, 0.06, "round", "thin", colour=(110, 75, 45)),
    "mouse": Build("quadruped", 0.12, 0.06, 0.03, 0.035, "round", "thin", colour=(150, 140, 135)),
    "squirrel": Build("quadruped", 0.18, 0.09, 0.05, 0.045, "point", "bushy", colour=(170, 90, 40)),
    "badger": Build("quadruped", 0.4, 0.15, 0.07, 0.07, "round", "short", colour=(90, 90, 90)),
    "lion": Build("quadruped", 0.8, 0.3, 0.32, 0.14, "round", "thin", colour=(205, 160, 90)),
    "tiger": Build("quadruped", 0.85, 0.28, 0.3, 0.12, "round", "thin", colour=(225, 125, 40)),
    "sheep": Build("quadruped", 0.5, 0.26, 0.2, 0.08, "round", "short", colour=(235, 232, 220)),
    "cow": Build("quadruped", 0.85, 0.38, 0.32, 0.11, "round", "thin", colour=(240, 240, 235)),
    "pig": Build("quadruped", 0.55, 0.25, 0.12, 0.09, "point", "thin", colour=(235, 170, 165)),
    "goat": Build("quadruped", 0.5, 0.22, 0.25, 0.08, "point", "short", colour=(200, 190, 170)),
    "bird": Build("bird", 0.16, 0.08, 0.03, 0.04, colour=(60, 60, 70)),
    "owl": Build("bird", 0.18, 0.12, 0.03, 0.06, colour=(140, 110, 80)),
    "crow": Build("bird", 0.16, 0.08, 0.03, 0.04, colour=(30, 30, 35)),
    "raven": Build("bird", 0.18, 0.09, 0.03, 0.045, colour=(25, 25, 30)),
    "gull": Build("bird", 0.18, 0.07, 0.03, 0.04, colour=(235, 235, 235)),
    "seagull": Build("bird", 0.18, 0.07, 0.03, 0.04, colour=(235, 235, 235)),
    "eagle": Build("bird", 0.26, 0.10, 0.04, 0.05, colour=(95, 65, 40)),
    "hawk": Build("bird", 0.22, 0.09, 0.04, 0.045, colour=(120, 85, 55)),
    "heron": Build("bird", 0.3, 0.12, 0.25, 0.05, colour=(150, 155, 165)),
    "duck": Build("bird", 0.2, 0.1, 0.03, 0.05, colour=(120, 100, 70)),
    "swan": Build("bird", 0.32, 0.14, 0.03, 0.05, colour=(245, 245, 245)),
    "parrot": Build("bird", 0.16, 0.09, 0.03, 0.045, colour=(40, 170, 70)),
    "dragon": Build("bird", 0.9, 0.3, 0.1, 0.12, colour=(60, 120, 70)),
    "robot": Build("robot", colour=(170, 175, 185)),
    "android": Build("robot", colour=(190, 195, 205)),
    "droid": Build("robot", colour=(170, 175, 185)),
    "automaton": Build("robot", colour=(180, 140, 70)),
}
PERSON = Build("person")
CHILD_WORDS = ("child", "kid", "boy", "girl", "toddler", "baby")
HEIGHT_WORDS = {"tall": 1.15, "towering": 1.3, "giant": 1.5, "huge": 1.35, "small": 0.85, "little": 0.85,
                "short": 0.88, "tiny": 0.6, "petite": 0.9, "large": 1.15, "big": 1.15}  # fmt: skip
GARMENTS = ("coat", "raincoat", "overcoat", "trench coat", "dress", "robe", "gown", "cloak", "cape", "poncho")
HAT_WORDS = ("hat", "cap", "beanie", "hood", "hooded", "helmet", "bonnet")
SKIN_TONES: tuple[RGB, ...] = ((241, 194, 160), (224, 172, 125), (198, 134, 92), (141, 85, 54), (96, 60, 40))
HAIR_TONES: tuple[RGB, ...] = ((40, 30, 25), (95, 60, 35), (200, 160, 90), (150, 70, 35), (60, 45, 35))
CLOTHES: tuple[RGB, ...] = ((70, 90, 140), (140, 70, 60), (80, 120, 80), (150, 130, 90), (100, 80, 130),
                            (60, 110, 120))  # fmt: skip


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class FigureSpec:
    """One subject as the animatic draws it."""

    name: str
    build: Build
    species: str  # "person", "fox", "robot", ...
    colour: RGB  # body / coat
    colour2: RGB  # trousers, hat, markings
    skin: RGB
    hair: RGB
    height: float  # relative to an adult person
    action: str  # "stand", "walk", "run", "sit", "sleep", "fly", "dance", "climb"
    garment: bool = False  # a long coat or dress
    hat: bool = False
    umbrella: bool = False
    lantern: bool = False

    @property
    def kind(self) -> str:
        return self.build.kind


@dataclass(frozen=True)
class Look:
    """The light the words ask for: sky colours, sun or moon, light level, haze, fog."""

    time: str
    sky_top: RGB
    sky_horizon: RGB
    light: tuple[float, float, float]  # multiplies every lit colour
    haze: RGB  # what distance fades towards
    haze_strength: float
    fog: float  # 0 none .. 1 thick
    sun: tuple[float, float, RGB, float] | None  # x (fraction of width), height above horizon (of H), colour, radius (of H)
    moon: tuple[float, float] | None
    stars: float  # 0 .. 1
    clouds: float  # 0 .. 1 how much of the sky
    cloud_colour: RGB
    night: bool  # windows and lamps glow
    glow_colours: tuple[RGB, ...] = ((255, 210, 120),)

    def lit(self, albedo: RGB, depth: float) -> RGB:
        """A surface colour under this light, faded by distance and fog at `depth`."""
        r, g, b = (albedo[i] * self.light[i] for i in range(3))
        return _fade((r, g, b), self.haze, self.distance_fade(depth))

    def glow(self, colour: RGB, depth: float) -> RGB:
        """An emissive colour (lamps, windows, fire): not darkened, only fogged."""
        return _fade(colour, self.haze, 0.6 * self.distance_fade(depth))

    def distance_fade(self, depth: float) -> float:
        import math

        air = self.haze_strength * (1.0 - math.exp(-depth / 6.0))
        fog = 1.0 - math.exp(-self.fog * depth * 0.45)
        return min(0.97, 1.0 - (1.0 - air) * (1.0 - fog))


@dataclass(frozen=True)
class Scene:
    """Everything the prompt's words decided, ready to draw."""

    prompt: str
    world_seed: int  # places trees, houses, stars: same seed and setting -> same world
    setting: str
    variant: str
    time: str
    weather: frozenset[str]
    styles: frozenset[str]
    tint: tuple[RGB, float] | None
    accents: tuple[RGB, ...]
    props: frozenset[str]
    figures: tuple[FigureSpec, ...]
    look: Look = field(repr=False)

    def summary(self) -> dict[str, object]:
        """What the animatic understood, for the catalog and for debugging a prompt."""
        return {
            "setting": self.setting + (f" ({self.variant})" if self.variant else ""),
            "time": self.time,
            "weather": sorted(self.weather) or ["clear"],
            "style": sorted(self.styles),
            "props": sorted(self.props),
            "figures": [f"{f.name}: {f.species}, {f.action}" for f in self.figures],
        }


# ---------------------------------------------------------------- reading the words


def read_scene(prompt: str, subjects: tuple[Character, ...], seed: int) -> Scene:
    """Interpret a prompt and its subjects into a Scene."""
    # 1. separate the words about the subjects from the words about the scene
    lowered = " " + prompt.lower() + " "
    without_descriptions = lowered
    for subject in subjects:
        if subject.description.strip():
            without_descriptions = without_descriptions.replace(subject.description.lower(), " ")
    scene_text = without_descriptions
    for subject in subjects:
        scene_text = re.sub(rf"\b{re.escape(subject.name.lower())}\b", " ", scene_text)

    # 2. time, weather, setting, props, style
    time = _first_of(TIMES, scene_text) or "noon"
    weather = {name for name, words in WEATHER.items() if _mentions(scene_text, words)}
    if "storm" in weather:
        weather |= {"rain", "wind", "lightning", "overcast"}
    if "rain" in weather or "snow" in weather:
        weather.add("clouds")
    setting = _setting_of(scene_text)
    variant = next((v for v, words in VARIANTS.get(setting, {}).items() if _mentions(scene_text, words)), "")
    if setting == "sea" and _mentions(scene_text, ("lighthouse",)):
        variant = variant or "lighthouse"
    props = frozenset(name for name, words in PROPS.items() if _mentions(scene_text, words))
    styles = frozenset(name for name, words in STYLES.items() if _mentions(scene_text, words))
    tint = _tint_of(scene_text)
    accents = tuple(COLOURS[word] for word in _colour_words(scene_text))

    # 3. the world seed: the request seed and the place, so an evolving prompt keeps its world
    world_seed = _digest_int("animatic-world", seed, setting, variant)

    # 4. figures, each with its own action verb when its clause has one
    default_action = _shared_action(without_descriptions)
    figures = tuple(
        _figure(subject, without_descriptions, default_action, index, seed)
        for index, subject in enumerate(subjects)
    )
    look = _look(time, frozenset(weather), styles, setting, variant)
    return Scene(
        prompt=prompt,
        world_seed=world_seed,
        setting=setting,
        variant=variant,
        time=time,
        weather=frozenset(weather),
        styles=styles,
        tint=tint,
        accents=accents,
        props=props,
        figures=figures,
        look=look,
    )


def _figure(subject: Character, text: str, default_action: str | None, index: int, seed: int) -> FigureSpec:
    """One subject: species, colours, height and action from its name and description."""
    words = f" {subject.name.lower()} {subject.description.lower()} "
    species = next((s for s in SPECIES if _mentions(words, (s,))), "person")
    build = SPECIES.get(species, PERSON)
    pick = _digest_int("animatic-figure", seed, subject.name)

    # colours: "red-haired" colours hair; other colour words colour clothes (or fur)
    hair = HAIR_TONES[pick % len(HAIR_TONES)]
    clothes: list[RGB] = []
    for match in re.finditer(r"\b(" + "|".join(COLOURS) + r")\b(-haired| hair| fur| eyes|-eyed)?", words):
        colour, what = COLOURS[match.group(1)], match.group(2)
        if what in ("-haired", " hair"):
            hair = colour
        elif what in (" eyes", "-eyed"):
            continue
        else:
            clothes.append(colour)
    if build.kind == "person":
        colour = clothes[0] if clothes else CLOTHES[pick % len(CLOTHES)]
        colour2 = clothes[1] if len(clothes) > 1 else _shade(colour, 0.55)
    else:
        colour = clothes[0] if clothes else build.colour
        colour2 = clothes[1] if len(clothes) > 1 else _shade(colour, 0.7)

    # size: a child is small, "tall" and "tiny" scale
    height = 0.68 if build.kind == "person" and _mentions(words, CHILD_WORDS) else 1.0
    for word, factor in HEIGHT_WORDS.items():
        if _mentions(words, (word,)):
            height *= factor
            break

    # action: the verb in the clause that names the subject ("Mara runs", "the knight climbs"),
    # else a verb said of everyone ("they run")
    names = (subject.name, _head_noun(subject.description), species if species != "person" else "")
    action = next((a for a in (_action_for(n, text) for n in names if n) if a), None) or default_action
    if action is None:
        action = "fly" if build.kind == "bird" else "stand"
    if action == "fly" and build.kind == "quadruped":
        action = "run"
    return FigureSpec(
        name=subject.name,
        build=build,
        species=species,
        colour=colour,
        colour2=colour2,
        skin=SKIN_TONES[(pick >> 8) % len(SKIN_TONES)],
        hair=hair,
        height=height,
        action=action,
        garment=build.kind == "person" and _mentions(words, GARMENTS),
        hat=build.kind == "person" and _mentions(words, HAT_WORDS),
        umbrella=_mentions(words, ("umbrella",)),
        lantern=_mentions(words, ("lantern", "torch", "lamp", "flashlight")),
    )


def _head_noun(description: str) -> str:
    """What a description calls its subject: "a tall knight in a silver helmet" -> "knight"."""
    words = re.findall(r"[a-z]+", description.lower())
    stops = {"in", "with", "of", "wearing", "who", "and", "that", "from", "on", "at", "carrying", "holding"}
    head = []
    for word in words:
        if word in stops:
            break
        head.append(word)
    return head[-1] if head else ""


def _action_for(name: str, text: str) -> str | None:
    """The first action verb after `name` in a clause that names it."""
    first = name.lower().split()[0] if name.split() else name.lower()
    for clause in re.split(r"[.;!?]|\bwhile\b|\bwhereas\b|,\s*(?:and|but|as)\b", text):
        found = re.search(rf"\b{re.escape(first)}\b", clause)
        if found:
            action = _first_of(ACTIONS, clause[found.end():])
            if action:
                return action
    return None


def _shared_action(text: str) -> str | None:
    """An action said of everyone: the first verb in a clause that speaks through a pronoun."""
    for clause in re.split(r"[.;!?]|\bwhile\b|\bwhereas\b|,\s*(?:and|but|as)\b", text):
        if _mentions(clause, PRONOUNS):
            action = _first_of(ACTIONS, clause)
            if action:
                return action
    return None


def _setting_of(text: str) -> str:
    """The setting with the most (weighted) mentions; ties go to the earliest."""
    best, best_score, best_pos = "generic", 0.0, 1 << 30
    for name, words in SETTINGS.items():
        score, first = 0.0, 1 << 30
        for word in words:
            for match in _pattern(word).finditer(text):
                if _negated(text, match.start()):
                    continue
                score += WEAK_SETTING_WORDS.get(word, 1.0)
                first = min(first, match.start())
        if score > best_score or (score == best_score and score > 0 and first < best_pos):
            best, best_score, best_pos = name, score, first
    return best


def _tint_of(text: str) -> tuple[RGB, float] | None:
    """A colour the whole picture leans towards: 'golden', 'teal', 'blue light'."""
    found: list[tuple[int, RGB, float]] = []
    for word, (colour, strength) in TINT_WORDS.items():
        match = _pattern(word).search(text)
        if match and not re.match(r"\s+hour\b", text[match.end():]):
            found.append((match.start(), colour, strength))
    nouns = "|".join(TINT_NOUNS)
    for match in re.finditer(r"\b(" + "|".join(COLOURS) + r")\s+(?:" + nouns + r")\b", text):
        found.append((match.start(), COLOURS[match.group(1)], 0.2))
    return min(found)[1:] if found else None


def _colour_words(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"\b(" + "|".join(COLOURS) + r")\b", text)][:4]


def _look(time: str, weather: frozenset[str], styles: frozenset[str], setting: str, variant: str) -> Look:
    """Sky, sun, light level and haze for a time of day under some weather."""
    # 1. the time of day
    top, horizon, light, sun, moon, stars = {
        "dawn": ((92, 110, 170), (250, 180, 140), (0.88, 0.78, 0.78), (0.22, 0.05, (255, 205, 150), 0.06), None, 0.1),
        "morning": ((105, 160, 225), (205, 225, 240), (1.0, 0.97, 0.93), (0.3, 0.3, (255, 245, 220), 0.045), None, 0.0),
        "noon": ((70, 135, 225), (180, 215, 245), (1.05, 1.05, 1.02), (0.58, 0.42, (255, 255, 235), 0.04), None, 0.0),
        "afternoon": ((85, 145, 220), (215, 215, 205), (1.0, 0.95, 0.86), (0.72, 0.25, (255, 240, 200), 0.045), None, 0.0),
        "sunset": ((70, 80, 150), (255, 150, 80), (0.92, 0.7, 0.55), (0.7, 0.035, (255, 170, 90), 0.075), None, 0.0),
        "dusk": ((35, 40, 90), (190, 110, 120), (0.5, 0.45, 0.6), None, None, 0.35),
        "night": ((6, 10, 30), (28, 40, 75), (0.25, 0.3, 0.45), None, (0.72, 0.32), 1.0),
    }[time]  # fmt: skip
    haze, haze_strength, fog, clouds = horizon, 0.55, 0.0, 0.12
    cloud_colour: RGB = _mix((255, 255, 255), horizon, 0.25)
    night = time in ("night", "dusk")

    # 2. weather dims and greys the sky
    if "clouds" in weather:
        clouds = 0.45
    if weather & {"overcast", "rain", "snow"}:
        grey = (150, 155, 165) if not night else (30, 34, 45)
        top, horizon = _mix(top, grey, 0.7), _mix(horizon, grey, 0.6)
        dim = 0.62 if "storm" in weather else 0.75 if "rain" in weather else 0.85
        light = tuple(v * dim for v in light)  # type: ignore[assignment]
        sun, moon, clouds, haze, stars = None, None, 0.85, horizon, 0.0
        cloud_colour = _mix(grey, (255, 255, 255), 0.3 if "snow" in weather else 0.1)
        if "snow" in weather and not night:
            top, horizon = _mix(top, (215, 220, 230), 0.5), _mix(horizon, (235, 238, 242), 0.5)
    if "fog" in weather:
        fog, haze = 1.0, _mix(horizon, (200, 200, 205) if not night else (45, 50, 60), 0.5)
        sun = None if sun is None else (sun[0], sun[1], _mix(sun[2], haze, 0.5), sun[3] * 1.5)
    if night:
        cloud_colour = _mix(top, (90, 95, 110), 0.5)

    # 3. places and styles with their own sky
    glow_colours: tuple[RGB, ...] = ((255, 210, 120), (255, 230, 170))
    if setting == "space":
        top, horizon, stars, clouds, fog = (2, 2, 10), (12, 10, 35), 1.0, 0.0, 0.0
        light, haze_strength, sun, moon = (0.85, 0.85, 0.95), 0.1, None, None
        if variant == "mars":
            top, horizon, stars = (120, 70, 50), (220, 150, 100), 0.0
            light, haze_strength = (1.0, 0.82, 0.7), 0.45
    if setting in ("interior", "cave"):
        haze_strength = 0.15
        if night:  # lamplight indoors, not moonlight
            light = (0.78, 0.66, 0.5)
        if setting == "cave":
            light = tuple(v * 0.6 for v in light)  # type: ignore[assignment]
    if "neon" in styles:
        top, horizon = _mix(top, (40, 10, 80), 0.6), _mix(horizon, (240, 60, 170), 0.55)
        glow_colours, night = ((255, 60, 200), (40, 230, 255), (170, 90, 255)), True
        light = tuple(v * 0.8 for v in light)  # type: ignore[assignment]
    return Look(
        time=time, sky_top=top, sky_horizon=horizon, light=light, haze=haze,
        haze_strength=haze_strength, fog=fog, sun=sun, moon=moon, stars=stars,
        clouds=clouds, cloud_colour=cloud_colour, night=night, glow_colours=glow_colours,
    )  # fmt: skip


# ---------------------------------------------------------------- helpers


@cache
def _pattern(phrase: str) -> re.Pattern[str]:
    """A whole-word pattern for a phrase, allowing a plural 's' or 'es'."""
    return re.compile(r"(?<![\w-])" + re.escape(phrase) + r"(?:s|es)?(?![\w-])")


def _negated(text: str, position: int) -> bool:
    before = text[max(0, position - 9) : position]
    return before.endswith(("no ", "without ", "not "))


def _mentions(text: str, phrases: tuple[str, ...]) -> bool:
    return any(not _negated(text, m.start()) for p in phrases for m in _pattern(p).finditer(text))


def _first_of(lexicon: dict[str, tuple[str, ...]], text: str) -> str | None:
    """The lexicon entry mentioned earliest in `text`."""
    best: tuple[int, str] | None = None
    for name, phrases in lexicon.items():
        for phrase in phrases:
            for match in _pattern(phrase).finditer(text):
                if not _negated(text, match.start()):
                    if best is None or match.start() < best[0]:
                        best = (match.start(), name)
                    break
    return best[1] if best else None


def _digest_int(*parts: object) -> int:
    """A stable 63-bit integer from parts (hashlib, never Python's salted hash())."""
    data = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 1


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(a[i] + (b[i] - a[i]) * t) for i in range(3))  # type: ignore[return-value]


def _fade(colour: tuple[float, float, float], towards: RGB, t: float) -> RGB:
    return tuple(max(0, min(255, round(colour[i] + (towards[i] - colour[i]) * t))) for i in range(3))  # type: ignore[return-value]


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(max(0, min(255, round(c * factor))) for c in colour)  # type: ignore[return-value]

