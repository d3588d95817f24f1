"""Shot prompts -> clip chains: segments, conditioning, reuse by cache key, bad backends."""

from __future__ import annotations

import numpy as np
import pytest

from storyflow import media
from storyflow.backends.base import GeneratedVideo, VideoBackend, VideoCapabilities
from storyflow.backends.registry import load_backend
from storyflow.catalog import Generations
from storyflow.core.errors import GenerationError
from storyflow.core.models import (
    CameraMove,
    Character,
    Shot,
    ShotPrompt,
    Storyboard,
    StyleBible,
)
from storyflow.stages.generate import generate_chain


def make_board(*shots, fps=12):
    return Storyboard(
        title="T", slug="t", story_sha256="0" * 64, style=StyleBible(style="flat"),
        characters=(Character(name="Mara", description="a woman in a red coat"),),
        shots=shots, width=96, height=54, fps=fps, seed=5,
    )  # fmt: skip


def shot(i, seconds, continues=False, camera=CameraMove.PAN_LEFT):
    return Shot(id=f"s{i:02d}", index=i - 1, beat=i, story_text="x", action="Mara walks on a beach at noon",
                duration=seconds, camera=camera, characters=("Mara",), continues_previous=continues)  # fmt: skip


def prompt(shot_id, text="Mara walks on a beach at noon, pan left"):
    return ShotPrompt(shot_id=shot_id, prompt=text, caption="Mara walks")


@pytest.fixture
def animatic():
    return load_backend("video", "animatic")


def test_a_long_shot_becomes_a_chain_of_conditioned_segments(tmp_path, animatic):
    long = shot(1, 10.0)  # 120 frames on a 4 s backend: 3 segments of 40
    board = make_board(long)
    chain = generate_chain(long, prompt("s01"), board, animatic, tmp_path, Generations.in_memory())
    assert [c.num_frames for c in chain.clips] == [40, 40, 40]
    assert [c.strategy for c in chain.clips] == ["text_to_video", "continue_video", "continue_video"]
    assert chain.clips[1].parent_sha256 == chain.clips[0].sha256
    assert chain.clips[2].parent_sha256 == chain.clips[1].sha256
    for clip in chain.clips:
        assert media.probe(clip.path).num_frames == clip.num_frames
        assert media.sha256_file(clip.path) == clip.sha256


def test_a_continuing_shot_starts_on_the_previous_shots_last_frame(tmp_path, animatic):
    first, second = shot(1, 2.0), shot(2, 2.0, continues=True, camera=CameraMove.ZOOM_IN)
    board = make_board(first, second)
    a = generate_chain(first, prompt("s01"), board, animatic, tmp_path, Generations.in_memory())
    b = generate_chain(second, prompt("s02", "Mara stops, zoom in"), board, animatic, tmp_path, Generations.in_memory(), previous=a)
    assert b.clips[0].strategy == "image_to_video"
    assert b.clips[0].parent_sha256 == a.last.sha256
    before = [f.astype(int) for f in media.read_frames(a.last.path)]
    head = media.first_frames(b.clips[0].path, 1)[0].astype(int)
    step = np.median([np.abs(f - g).mean() for f, g in zip(before, before[1:])])
    # the seam jump is about the size of an ordinary frame-to-frame change
    assert np.abs(head - before[-1]).mean() < 3 * step + 3


def test_an_unchanged_shot_is_reused_and_an_edited_one_is_not(tmp_path, animatic):
    s = shot(1, 6.0)
    board = make_board(s)
    door = Generations.in_memory()
    made = generate_chain(s, prompt("s01"), board, animatic, tmp_path, door)
    assert door.tally["clip"] == {"made": 2, "reused": 0} and not any(c.reused for c in made.clips)
    again = generate_chain(s, prompt("s01"), board, animatic, tmp_path, door)
    assert door.tally["clip"] == {"made": 2, "reused": 2} and all(c.reused for c in again.clips)
    assert [c.path for c in again.clips] == [c.path for c in made.clips]
    edited = generate_chain(s, prompt("s01", "Mara runs on a beach at night"), board, animatic, tmp_path, door)
    assert door.tally["clip"]["made"] == 4 and not any(c.reused for c in edited.clips)
    assert {c.path for c in edited.clips}.isdisjoint({c.path for c in made.clips})  # old files kept


def test_a_new_parent_changes_the_childs_key(tmp_path, animatic):
    first, second = shot(1, 2.0), shot(2, 2.0, continues=True)
    board = make_board(first, second)
    door = Generations.in_memory()
    a = generate_chain(first, prompt("s01"), board, animatic, tmp_path, door)
    b = generate_chain(second, prompt("s02"), board, animatic, tmp_path, door, previous=a)
    a2 = generate_chain(first, prompt("s01", "Mara on a beach at dusk"), board, animatic, tmp_path, door)
    b2 = generate_chain(second, prompt("s02"), board, animatic, tmp_path, door, previous=a2)
    assert b2.clips[0].cache_key != b.clips[0].cache_key and not b2.clips[0].reused


class ShortBackend(VideoBackend):
    """A broken backend: always one frame short."""

    name = "short"

    @property
    def capabilities(self):
        return VideoCapabilities(max_clip_seconds=4)

    def generate(self, request):
        frames = (np.zeros((request.height, request.width, 3), np.uint8) for _ in range(request.num_frames - 1))
        return GeneratedVideo(frames=frames)


def test_a_backend_that_returns_too_few_frames_fails_and_leaves_no_file(tmp_path):
    s = shot(1, 1.0)
    with pytest.raises(GenerationError, match="returned 11 frames for shot s01, expected 12"):
        generate_chain(s, prompt("s01"), make_board(s), ShortBackend(), tmp_path, Generations.in_memory())
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def chain_colours(chain):
    from storyflow.stages.seams import colour_stats

    return [colour_stats(list(media.read_frames(clip.path))) for clip in chain.clips]


def test_a_six_segment_chain_does_not_drift(tmp_path, animatic):
    long = shot(1, 24.0, camera=CameraMove.STATIC)  # 6 segments of 4 s, each continuing the last
    chain = generate_chain(long, prompt("s01", "Mara stands on a beach at noon, static shot"), make_board(long),
                           animatic, tmp_path, Generations.in_memory())  # fmt: skip
    assert [c.strategy for c in chain.clips] == ["text_to_video"] + ["continue_video"] * 5
    colours = chain_colours(chain)
    assert max(abs(a - b) for a, b in zip(colours[0], colours[-1])) < 2.0  # mean RGB levels
    assert all(not c.seam.visible for c in chain.clips[1:])


class DriftingBackend(VideoBackend):
    """Like a real model's continuation: each new clip starts from the tail, a little brighter."""

    name = "drifting"

    @property
    def capabilities(self):
        return VideoCapabilities(max_clip_seconds=1, extend_from_video=True)

    def generate(self, request):
        if request.conditioning is None:
            base = np.full((request.height, request.width, 3), 90, np.uint8)
            base[:, : request.width // 3] = 160
        else:
            base = request.conditioning[-1]
        brighter = np.clip(base.astype(int) + 10, 0, 255).astype(np.uint8)  # the creep
        return GeneratedVideo(frames=(brighter for _ in range(request.num_frames)))


def test_the_drift_guard_holds_colour_across_a_drifting_chain(tmp_path, caplog):
    long = shot(1, 6.0)  # 6 continuations of 1 s
    board = make_board(long)
    with caplog.at_level("WARNING", logger="storyflow.stages.generate"):
        chain = generate_chain(long, prompt("s01"), board, DriftingBackend(), tmp_path, Generations.in_memory())
    colours = chain_colours(chain)
    assert max(abs(a - b) for a, b in zip(colours[0], colours[-1])) < 3.0  # without the guard: +50 levels
    assert all("corrected colour drift" in c.drift for c in chain.clips[1:])
    assert "corrected colour drift" in caplog.text


def test_a_finish_hook_signs_each_new_clip_before_it_is_hashed(tmp_path, animatic):
    from storyflow.media import credentials

    s = shot(1, 6.0)
    home = tmp_path / "home"

    def sign(path, name):
        credentials.sign_media(path, home=home, title=name, generator_version="test")

    chain = generate_chain(s, prompt("s01"), make_board(s), animatic, tmp_path, Generations.in_memory(), finish=sign)
    for clip in chain.clips:
        assert media.sha256_file(clip.path) == clip.sha256  # recorded as signed
        report = credentials.verify_media(clip.path, home=home)
        assert report.has_manifest and report.valid
        assert report.title == clip.path.name  # signed under a temporary name, titled with its own
    assert chain.clips[1].parent_sha256 == chain.clips[0].sha256  # lineage follows the signed bytes
