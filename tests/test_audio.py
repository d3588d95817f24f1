"""The film's sound: cues follow the timeline, the score is reused, the mix is film-length."""

from __future__ import annotations

import numpy as np

from storyflow import audio, media
from storyflow.backends.registry import load_backend
from storyflow.models import Shot, StyleBible, Storyboard, Transition
from storyflow.timeline import film_timeline
from tests.test_generate import MemoryStore


class AudioMemoryStore(MemoryStore):
    def __init__(self):
        super().__init__()
        self.tracks = {}

    def find_audio(self, key):
        return self.tracks.get(key)

    def save_audio(self, track):
        self.tracks[track.cache_key] = track


def board(moods, transition=Transition.CROSSFADE, title_card=True):
    shots = tuple(
        Shot(id=f"s{i + 1:02d}", index=i, beat=i, story_text="x", action="a", duration=2.0, mood=mood,
             transition=transition)  # fmt: skip
        for i, mood in enumerate(moods)
    )
    return Storyboard(title="T", slug="t", story_sha256="0" * 64, style=StyleBible(style="s"), shots=shots,
                      width=64, height=36, fps=12, seed=1, title_card=title_card)  # fmt: skip


def test_cues_cover_the_film_and_meet_mid_crossfade():
    b = board(["calm", "tense", "joyful"])
    tl = film_timeline(b)
    cues = audio.music_cues(b, tl)
    assert [c.mood for c in cues] == ["calm", "tense", "joyful"]
    assert cues[0].start == 0 and cues[-1].end == tl.seconds  # the title card carries the first mood
    for left, right in zip(cues, cues[1:]):
        assert left.end == right.start
    # the boundary sits in the middle of the crossfade between s01 and s02
    p = tl.placement("s02")
    assert abs(cues[1].start - (p.start + p.overlap_in / 2) / tl.fps) < 1 / tl.fps


def test_score_is_reused_and_mix_is_exactly_film_length(tmp_path):
    b = board(["calm", "tense"])
    tl = film_timeline(b)
    store = AudioMemoryStore()
    music = load_backend("music", "procedural")
    first = audio.score_film(b, tl, music, tmp_path, store)
    again = audio.score_film(b, tl, music, tmp_path, store)
    assert again.path == first.path and again.sha256 == first.sha256
    changed = audio.score_film(board(["calm", "eerie"]), tl, music, tmp_path, store)
    assert changed.cache_key != first.cache_key
    mix = audio.mix_film([first], tl.seconds, tmp_path, store)
    samples, rate = media.read_wav(mix.path)
    assert len(samples) == round(tl.seconds * rate)
    assert np.abs(samples).max() <= 10 ** (-1 / 20) + 1e-3
    assert np.sqrt((samples**2).mean()) > 0.01
