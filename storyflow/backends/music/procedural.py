"""The embedded score: a synthesized music bed that follows the storyboard's moods.

Each mood maps to a small musical recipe (key, scale, tempo, chord progression,
instrument colour). Every cue (one per shot) is rendered with its own recipe and the
cues are crossfaded at shot boundaries, so the music changes where the picture does.
Deterministic from the seed; numpy only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from storyflow.backends.base import BackendOptions, MusicBackend, MusicCue

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Recipe:
    root: int  # MIDI note of the key's tonic
    scale: tuple[int, ...]  # semitone steps from the root
    tempo: float  # beats per minute
    progression: tuple[int, ...]  # scale degrees (0-based), one chord per bar
    pad: float  # level of sustained chords
    pulse: float  # level of the rhythmic part (arpeggio or ostinato)
    bass: float  # level of the bass line
    brightness: float  # 0 dark (sine) .. 1 bright (more harmonics)


MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DORIAN = (0, 2, 3, 5, 7, 9, 10)
WHOLE_TONE = (0, 2, 4, 6, 8, 10)

RECIPES: dict[str, Recipe] = {
    "calm": Recipe(60, MAJOR, 72, (0, 4, 5, 3), pad=0.8, pulse=0.25, bass=0.4, brightness=0.3),
    "joyful": Recipe(62, MAJOR, 112, (0, 3, 4, 0), pad=0.5, pulse=0.7, bass=0.6, brightness=0.7),
    "playful": Recipe(65, MAJOR, 124, (0, 5, 3, 4), pad=0.4, pulse=0.8, bass=0.5, brightness=0.8),
    "tense": Recipe(57, MINOR, 104, (0, 0, 5, 4), pad=0.5, pulse=0.8, bass=0.9, brightness=0.5),
    "melancholy": Recipe(57, MINOR, 60, (0, 5, 2, 4), pad=0.9, pulse=0.2, bass=0.4, brightness=0.2),
    "mysterious": Recipe(55, DORIAN, 66, (0, 1, 0, 6), pad=0.8, pulse=0.3, bass=0.5, brightness=0.4),
    "eerie": Recipe(54, WHOLE_TONE, 58, (0, 3, 1, 4), pad=0.9, pulse=0.2, bass=0.6, brightness=0.6),
    "triumphant": Recipe(58, MAJOR, 96, (0, 4, 5, 4), pad=0.8, pulse=0.6, bass=0.8, brightness=0.9),
    "romantic": Recipe(63, MAJOR, 76, (0, 5, 3, 4), pad=0.8, pulse=0.4, bass=0.4, brightness=0.4),
}
DEFAULT_MOOD = "calm"


class ProceduralScoreOptions(BackendOptions):
    crossfade_s: float = Field(default=0.6, ge=0.0, le=4.0, description="blend between cues")
    level_db: float = Field(default=-14.0, ge=-40.0, le=0.0, description="peak level of the bed")


class ProceduralScore(MusicBackend):
    name = "procedural"
    version = "1"
    description = "synthesized score that follows each shot's mood (no model, no network)"
    Options = ProceduralScoreOptions

    def compose(self, cues: list[MusicCue], seconds: float, seed: int, sample_rate: int) -> np.ndarray:
        """Render the whole score: one recipe per cue, crossfaded at cue boundaries."""
        import numpy as np

        total = round(seconds * sample_rate)
        out = np.zeros((total, 2), dtype=np.float32)
        fade = round(self.options.crossfade_s * sample_rate)
        for cue in cues:
            # each cue renders a little past its ends so neighbours can crossfade
            start = max(0, round(cue.start * sample_rate) - fade // 2)
            end = min(total, round(cue.end * sample_rate) + fade // 2)
            if end <= start:
                continue
            recipe = RECIPES.get(cue.mood, RECIPES[DEFAULT_MOOD])
            rng = np.random.default_rng(_seed(seed, cue.shot_id, cue.mood))
            # time since the cue's own start, so a cue's music does not depend on its neighbours
            t = (np.arange(start, end) - start) / sample_rate
            part = _render(recipe, t, rng) * _edges(end - start, fade, start > 0, end < total)[:, None]
            out[start:end] += part
        peak = float(np.abs(out).max()) if total else 0.0
        if peak > 0:
            out *= (10 ** (self.options.level_db / 20)) / peak
        return out


def _seed(seed: int, *parts: str) -> int:
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _edges(n: int, fade: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """Equal-power ramps at the ends of a cue (only where it meets a neighbour)."""
    import numpy as np

    env = np.ones(n, dtype=np.float32)
    k = min(fade, n // 2)
    if k > 0:
        ramp = np.sin(np.linspace(0, np.pi / 2, k, dtype=np.float32)) ** 2
        if fade_in:
            env[:k] *= ramp
        if fade_out:
            env[-k:] *= ramp[::-1]
    return env


def _midi_hz(note: np.ndarray | float) -> np.ndarray:
    import numpy as np

    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69) / 12)


def _tone(freq: np.ndarray, t: np.ndarray, brightness: float) -> np.ndarray:
    """A voice with a few harmonics; brighter recipes keep more of them."""
    import numpy as np

    phase = 2 * np.pi * freq * t
    wave = np.sin(phase)
    for harmonic, weight in ((2, 0.5), (3, 0.3), (4, 0.15)):
        wave += brightness * weight * np.sin(harmonic * phase)
    return wave


def _render(recipe: Recipe, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stereo samples for one cue: pad chords, a pulse (arpeggio) and a bass line."""
    import numpy as np

    beat = 60.0 / recipe.tempo
    bar = 4 * beat
    scale = np.array(recipe.scale)
    n_deg = len(scale)

    def degree_note(degree: np.ndarray, octave: int = 0) -> np.ndarray:
        return recipe.root + 12 * (octave + degree // n_deg) + scale[degree % n_deg]

    # 1. which chord plays when: one per bar, cycling the progression (rotated by the seed)
    offset = int(rng.integers(len(recipe.progression)))
    bar_index = (t // bar).astype(int)
    chord_root = np.array(recipe.progression)[(bar_index + offset) % len(recipe.progression)]
    in_bar = (t % bar) / bar

    # 2. pad: the triad (root, third, fifth), slow swell inside each bar, slightly detuned per side
    pad = np.zeros((len(t), 2))
    swell = 0.6 + 0.4 * np.sin(np.pi * in_bar)
    for step in (0, 2, 4):
        f = _midi_hz(degree_note(chord_root + step))
        for side, detune in enumerate((0.998, 1.002)):
            pad[:, side] += _tone(f * detune, t, recipe.brightness * 0.5) * swell
    pad *= recipe.pad / 3

    # 3. pulse: arpeggio notes on eighth notes, each with a plucked decay
    eighth = beat / 2
    step_index = (t // eighth).astype(int)
    pattern = np.array([0, 2, 4, 7, 4, 2, 0, 4])[step_index % 8]
    note = degree_note(chord_root + pattern, octave=1)
    since = t % eighth
    pluck = np.exp(-since / (eighth * 0.35)) * (1 - np.exp(-since / 0.004))
    pulse = _tone(_midi_hz(note), t, recipe.brightness) * pluck * recipe.pulse
    pan = 0.5 + 0.3 * np.sin(2 * np.pi * step_index / 8)
    pulse_st = np.stack([pulse * (1 - pan), pulse * pan], axis=1)

    # 4. bass: the chord root an octave down, on each beat
    since_beat = t % beat
    bass = np.sin(2 * np.pi * _midi_hz(degree_note(chord_root, octave=-2)) * t)
    bass *= np.exp(-since_beat / (beat * 0.6)) * recipe.bass
    mix = pad + pulse_st + bass[:, None] * 0.8

    # 5. a little air: quiet filtered noise, so even a still cue is not digitally silent
    noise = rng.standard_normal((len(t), 2)) * 0.01
    noise = (noise + np.roll(noise, 1, axis=0)) / 2
    return (mix + noise).astype(np.float32)
