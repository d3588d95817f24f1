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


def test_the_bass_plays_the_progression_one_chord_a_bar():
    # calm: C major at 72 bpm, chords I V vi IV; the bass plays each root two octaves down, a bar each
    bar_s = 4 * 60 / 72
    cue = ProceduralScore().compose_cue(MusicCue(0, 4 * bar_s, "calm", "s01"), seed=3, sample_rate=RATE)
    roots_hz = [440 * 2 ** ((note - 69) / 12) for note in (36, 43, 45, 41)]  # C2 G2 A2 F2
    heard = []
    for bar in range(4):
        piece = cue[round(bar * bar_s * RATE) : round((bar + 1) * bar_s * RATE)].mean(axis=1)
        spectrum = np.abs(np.fft.rfft(piece * np.hanning(len(piece))))
        freqs = np.fft.rfftfreq(len(piece), 1 / RATE)
        low = freqs < 150
        heard.append(float(freqs[low][np.argmax(spectrum[low])]))
    start = int(np.argmin([abs(heard[0] - f) for f in roots_hz]))  # the seed rotates where the progression starts
    expected = roots_hz[start:] + roots_hz[:start]
    assert heard == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize(("mood", "tempo"), [("calm", 72), ("joyful", 112)])
def test_the_bass_is_struck_on_every_beat(mood: str, tempo: float):
    cue = ProceduralScore().compose_cue(MusicCue(0, 16, mood, "s01"), seed=0, sample_rate=RATE).mean(axis=1)
    freqs = np.fft.rfftfreq(len(cue), 1 / RATE)
    bass = np.fft.irfft(np.where(freqs < 150, np.fft.rfft(cue), 0), len(cue))  # only the bass sounds down there
    window = RATE // 100  # 10 ms
    envelope = np.sqrt((bass[: len(bass) // window * window] ** 2).reshape(-1, window).mean(axis=1))
    pulse = np.abs(np.fft.rfft(envelope - envelope.mean()))
    rates = np.fft.rfftfreq(len(envelope), 1 / 100)
    band = (rates > 0.6) & (rates < 4)
    assert float(rates[band][np.argmax(pulse[band])]) == pytest.approx(tempo / 60, abs=0.1)
