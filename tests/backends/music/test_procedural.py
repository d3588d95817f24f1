"""The embedded score: follows moods, changes at cue boundaries, deterministic, never silent."""

from __future__ import annotations

import numpy as np
import pytest

from storyflow.backends.base import MusicCue
from storyflow.backends.music.procedural import ProceduralScore
from storyflow.backends.registry import load_backend
from storyflow.core.errors import BackendOptionError

RATE = 16_000


def spectrum_centroid(x: np.ndarray) -> float:
    mono = x.mean(axis=1)
    mag = np.abs(np.fft.rfft(mono))
    freqs = np.fft.rfftfreq(len(mono), 1 / RATE)
    return float((mag * freqs).sum() / mag.sum())


def test_score_has_requested_length_level_and_is_deterministic():
    score = ProceduralScore()
    cues = [MusicCue(0, 3, "calm", "s01"), MusicCue(3, 6, "tense", "s02")]
    a = score.compose(cues, 6.0, seed=1, sample_rate=RATE)
    b = score.compose(cues, 6.0, seed=1, sample_rate=RATE)
    assert a.shape == (6 * RATE, 2) and a.dtype == np.float32
    assert np.array_equal(a, b)
    peak = np.abs(a).max()
    assert abs(20 * np.log10(peak) - (-14.0)) < 0.01  # the stated level
    # never silent anywhere: every half second has sound
    halves = a[: len(a) // (RATE // 2) * (RATE // 2)].reshape(-1, RATE // 2, 2)
    assert (np.sqrt((halves**2).mean(axis=(1, 2))) > 0.005).all()
    assert not np.array_equal(a, score.compose(cues, 6.0, seed=2, sample_rate=RATE))


def test_moods_sound_different():
    score = ProceduralScore()
    joyful = score.compose([MusicCue(0, 8, "joyful")], 8.0, 0, RATE)
    melancholy = score.compose([MusicCue(0, 8, "melancholy")], 8.0, 0, RATE)
    assert spectrum_centroid(joyful) > 1.2 * spectrum_centroid(melancholy)  # brighter
    assert not np.allclose(joyful[:RATE], melancholy[:RATE], atol=0.05)


def test_music_changes_at_the_cue_boundary():
    score = ProceduralScore()
    both = score.compose([MusicCue(0, 4, "melancholy"), MusicCue(4, 8, "playful")], 8.0, 0, RATE)
    first, second = both[: 3 * RATE], both[5 * RATE :]
    assert spectrum_centroid(second) > spectrum_centroid(first) * 1.2


def test_options_are_validated_by_name():
    with pytest.raises(BackendOptionError, match="unknown option 'tempo'"):
        load_backend("music", "procedural", {"tempo": 120})
    assert load_backend("music", "procedural", {"level_db": -20}).options.level_db == -20
