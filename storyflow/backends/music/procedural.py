"""The embedded score: a synthesized music bed that follows the storyboard's moods.

Each mood maps to a small musical recipe (key, scale, tempo, chord progression,
instrument colour). Every cue (one per shot) is rendered with its own recipe and the
cues are crossfaded at shot boundaries (MusicBackend.compose / the stage's bed), so the
music changes where the picture does.
Deterministic from the seed; numpy only.
"""

from __future__ import annotations

import functools
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
    version = "3"  # 3: oscillators by phase accumulator, uniform air noise (faster; same music, new samples)
    description = "synthesized score that follows each shot's mood (no model, no network)"
    Options = ProceduralScoreOptions

    def compose_cue(self, cue: MusicCue, seed: int, sample_rate: int) -> np.ndarray:
        """One cue's music from its mood's recipe, timed from the cue's own start, at the stated peak level."""
        import numpy as np

        recipe = RECIPES.get(cue.mood, RECIPES[DEFAULT_MOOD])
        rng = np.random.default_rng(_seed(seed, cue.shot_id, cue.mood))
        n = max(0, round((cue.end - cue.start) * sample_rate))
        part = _render(recipe, n, sample_rate, rng)
        peak = max(float(part.max()), -float(part.min())) if n else 0.0
        if peak > 0:
            part *= np.float32(10 ** (self.options.level_db / 20) / peak)
        return part


def _seed(seed: int, *parts: str) -> int:
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _midi_hz(note: np.ndarray | float) -> np.ndarray:
    import numpy as np

    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69) / 12)


# Oscillators are direct digital synthesis: a voice's phase is a uint32 that advances by
# round(f / rate * 2**32) a sample, so sample k's phase is k * step, wrapping exactly as the
# cycles do (integer arithmetic: no float32 detuning in long cues; f is within rate / 2**32).
# The top PHASE_BITS of the phase index one period of the voice, tabulated once.
PHASE_BITS = 12
WAVETABLE_SIZE = 1 << PHASE_BITS  # about -70 dB of lookup error


def _phase_step(freq: float, sample_rate: int) -> np.uint32:
    import numpy as np

    return np.uint32(round(freq / sample_rate * 2**32) % 2**32)


@functools.cache
def _wavetable(brightness: float, gain: float = 1.0) -> np.ndarray:
    """One period of a voice with a few harmonics (brighter keeps more of them), float32, times gain."""
    import numpy as np

    phase = 2 * np.pi * np.arange(WAVETABLE_SIZE) / WAVETABLE_SIZE
    wave = np.sin(phase)
    for harmonic, weight in ((2, 0.5), (3, 0.3), (4, 0.15)):
        wave += brightness * weight * np.sin(harmonic * phase)
    return (wave * gain).astype(np.float32)


class _Oscillator:
    """Reads a wavetable by phase into scratch buffers; one per render, reused for every note."""

    def __init__(self, n: int, sample_rate: int) -> None:
        import numpy as np

        self.rate = sample_rate
        self.index = np.arange(n, dtype=np.uint32)  # sample number k (wraps after 2**32 samples, as the phase does)
        self.phase = np.empty(n, dtype=np.uint32)
        self.value = np.empty(n, dtype=np.float32)

    def play(self, table: np.ndarray, freq: float, start: int, stop: int) -> np.ndarray:
        """The voice at `freq` over samples [start, stop), phase counted from sample 0 (a scratch view)."""
        import numpy as np

        count = stop - start
        phase, value = self.phase[:count], self.value[:count]
        np.multiply(self.index[start:stop], _phase_step(freq, self.rate), out=phase)  # wraps mod 2**32
        np.right_shift(phase, 32 - PHASE_BITS, out=phase)
        return np.take(table, phase, out=value)


ARPEGGIO = (0, 2, 4, 7, 4, 2, 0, 4)  # scale steps above the chord root, one per eighth note


def _render(recipe: Recipe, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Stereo float32 samples for one cue: pad chords, a pulse (arpeggio) and a bass line.

    Rendered bar by bar (every part's pitch is fixed within a bar or an eighth), so the work
    stays in cache; the envelopes repeat every bar, eighth or beat and are tabulated once.
    """
    import math

    import numpy as np

    beat = 60.0 / recipe.tempo
    eighth = beat / 2
    scale = recipe.scale
    n_deg = len(scale)

    def degree_hz(degree: int, octave: int = 0) -> float:
        return float(_midi_hz(recipe.root + 12 * (octave + degree // n_deg) + scale[degree % n_deg]))

    # 1. the grid: sample i is in eighth floor(i / rate / eighth); beats and bars are every 2nd and 8th edge
    per_eighth = eighth * sample_rate
    edges = np.minimum(np.ceil(np.arange(math.ceil(n / per_eighth) + 1) * per_eighth).astype(np.int64), n)
    longest = int(np.diff(edges).max(initial=0)) * 8 + 8

    # 2. envelopes, one period each, with the part's level folded in
    since = np.arange(longest) / sample_rate
    swell = (recipe.pad / 3 * (0.6 + 0.4 * np.sin(np.pi * np.minimum(since / (8 * eighth), 1.0)))).astype(np.float32)
    pluck = (recipe.pulse * np.exp(-since / (eighth * 0.35)) * (1 - np.exp(-since / 0.004))).astype(np.float32)
    thump = (0.8 * recipe.bass * np.exp(-since / (beat * 0.6))).astype(np.float32)
    pan = 0.5 + 0.3 * np.sin(2 * np.pi * np.arange(8) / 8)  # per eighth of the bar: a slow sweep across

    pad_table = _wavetable(round(recipe.brightness * 0.5, 6))
    pulse_table = _wavetable(round(recipe.brightness, 6))
    bass_table = _wavetable(0.0)
    osc = _Oscillator(n, sample_rate)
    left, right = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)

    # 3. one chord per bar, cycling the progression (rotated by the seed)
    offset = int(rng.integers(len(recipe.progression)))
    for bar_number, first in enumerate(range(0, len(edges) - 1, 8)):
        start, stop = int(edges[first]), int(edges[min(first + 8, len(edges) - 1)])
        root = recipe.progression[(bar_number + offset) % len(recipe.progression)]

        # 3a. pad: the triad, slightly detuned per side, one swell over the bar
        for side, detune in ((left, 0.998), (right, 1.002)):
            voices = side[start:stop]
            for step in (0, 2, 4):
                voices += osc.play(pad_table, degree_hz(root + step) * detune, start, stop)
            voices *= swell[: stop - start]

        # 3b. pulse: an arpeggio note on each eighth, plucked, panned along the bar
        for slot in range(min(8, len(edges) - 1 - first)):
            a, b = int(edges[first + slot]), int(edges[first + slot + 1])
            note = osc.play(pulse_table, degree_hz(root + ARPEGGIO[slot], octave=1), a, b)
            note *= pluck[: b - a]
            left[a:b] += note * np.float32(1 - pan[slot])
            right[a:b] += note * np.float32(pan[slot])

        # 3c. bass: the chord root two octaves down, struck on each beat (the same in both channels)
        bass = osc.play(bass_table, degree_hz(root, octave=-2), start, stop)
        for slot in range(0, min(8, len(edges) - 1 - first), 2):
            a, b = int(edges[first + slot]), int(edges[min(first + slot + 2, len(edges) - 1)])
            bass[a - start : b - start] *= thump[: b - a]
        left[start:stop] += bass
        right[start:stop] += bass

    # 4. a little air: quiet noise (uniform, the std of the old gaussian's), smoothed by a 2-tap average
    mix = np.stack([left, right], axis=1)
    air = rng.random((n + 1, 2), dtype=np.float32)
    air -= np.float32(0.5)
    air *= np.float32(0.01 * math.sqrt(12) / 2)
    mix += air[1:]
    mix += air[:-1]
    return mix
