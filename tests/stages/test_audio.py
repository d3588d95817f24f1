"""The film's sound: cues follow the timeline, the score is reused, the mix is film-length."""

from __future__ import annotations

import numpy as np
from storyflow import media
from storyflow.backends.registry import load_backend
from storyflow.catalog import Generations
from storyflow.core.models import Shot, Storyboard, StyleBible, Transition
from storyflow.core.timeline import film_timeline
from storyflow.stages import audio


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


def test_score_is_reused_until_a_mood_changes(tmp_path):
    b = board(["calm", "tense"])
    tl = film_timeline(b)
    store = Generations.in_memory()
    music = load_backend("music", "procedural")
    first = audio.score_film(b, tl, music, tmp_path, store)
    again = audio.score_film(b, tl, music, tmp_path, store)
    assert again.path == first.path and again.sha256 == first.sha256
    changed = audio.score_film(board(["calm", "eerie"]), tl, music, tmp_path, store)
    assert changed.cache_key != first.cache_key
    samples, rate = media.read_wav(first.path)
    assert len(samples) == round(tl.seconds * rate) and np.sqrt((samples**2).mean()) > 0.01


def test_effects_follow_each_shots_clips_and_land_on_the_timeline(tmp_path):
    from tests.stages.test_generate import make_board, prompt, shot

    from storyflow.backends.registry import load_backend as load
    from storyflow.core.models import ClipChain
    from storyflow.stages.generate import generate_chain

    b = make_board(shot(1, 2.0), shot(2, 2.0)).model_copy(update={"title_card": True})
    video, foley = load("video", "animatic"), load("effects", "procedural")
    store = Generations.in_memory()
    texts = {"s01": "Mara walks on a beach at noon", "s02": "a storm over a dark city at night, rain"}
    chains = {s.id: generate_chain(s, prompt(s.id, texts[s.id]), b, video, tmp_path, store) for s in b.shots}
    tracks = {s.id: audio.shot_effects(s, chains[s.id], b, "waves on a beach", foley, tmp_path, store)
              for s in b.shots}  # fmt: skip
    again = audio.shot_effects(b.shots[0], chains["s01"], b, "waves on a beach", foley, tmp_path, store)
    assert again.path == tracks["s01"].path  # unchanged clips: the effects are reused
    other = ClipChain(shot_id="s01", clips=chains["s02"].clips)  # different pictures: new effects
    assert audio.shot_effects(b.shots[0], other, b, "waves on a beach", foley, tmp_path, store).cache_key != again.cache_key

    tl = film_timeline(b, {k: c.num_frames for k, c in chains.items()})
    bed = audio.lay_effects(b, tl, tracks, tmp_path, store)
    samples, rate = media.read_wav(bed.path)
    assert len(samples) == round(tl.seconds * rate)
    title = samples[: int(tl.title_frames / tl.fps * rate)]
    shots = samples[int(tl.title_frames / tl.fps * rate) :]
    assert np.abs(title).max() == 0  # nothing under the title card
    assert np.sqrt((shots**2).mean()) > 1e-3  # the shots have their effects


def test_a_changed_mood_composes_that_cue_alone_and_the_bed_matches_the_whole_score(tmp_path):
    b = board(["calm", "tense", "joyful"])
    tl = film_timeline(b)
    door = Generations.in_memory()
    music = load_backend("music", "procedural")
    first = audio.score_film(b, tl, music, tmp_path, door)
    assert door.tally["music cue"] == {"made": 3, "reused": 0}

    changed = audio.score_film(board(["calm", "eerie", "joyful"]), tl, music, tmp_path, door)
    assert door.tally["music cue"] == {"made": 4, "reused": 2}  # only s02's cue was composed again
    assert changed.cache_key != first.cache_key

    # the bed laid cue by cue from files is the whole score composed in memory, to 16-bit rounding
    whole = music.compose(audio.music_cues(b, tl), tl.seconds, b.seed, first.sample_rate)
    laid, _ = media.read_wav(first.path)
    scale = np.abs(laid).max() / np.abs(whole).max()  # compose() levels the film's peak; the stage levels each cue
    assert laid.shape == whole.shape and np.abs(laid - whole * scale).max() < 3 / 32767


def test_parts_are_laid_in_bounded_windows_exactly_as_in_memory(tmp_path):
    rng = np.random.default_rng(3)
    total, parts, expected = 50_000, [], np.zeros((50_000, 2), dtype=np.float32)
    start = 0
    for _ in range(12):  # overlaps, gaps, a part running past the end
        start += int(rng.integers(0, 6_000))
        part = (rng.standard_normal((int(rng.integers(1, 9_000)), 2)) * 0.1).astype(np.float32)
        parts.append((start, part))
        expected[start : start + len(part)] += part[: max(0, total - start)]
    audio.lay_down(tmp_path / "bed.wav", iter(parts), total, 8_000)
    laid, rate = media.read_wav(tmp_path / "bed.wav")
    assert rate == 8_000 and laid.shape == (total, 2)
    assert np.abs(laid - np.clip(expected, -1, 1)).max() <= 0.5 / 32767 + 1e-6
