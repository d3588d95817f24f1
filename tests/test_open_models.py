"""Films made end to end by open models: tiny random Wan, LTX, VITS and MusicGen loaded from folders.

The models are built here offline and saved with save_pretrained; the flow loads them back
through the same from_pretrained path a user's real checkpoints take. Two films from one
story, in one process, against the session's Prefect server: one through Wan (text-to-video,
then image-to-video from the last frame for the rest of a long shot and for the shot that
continues it), one through LTX (native continuation from the tail frames of each segment),
both narrated by VITS and scored by MusicGen. What a user would check is checked, by decoding
the films: size, rate, length, sound; and from the summary and catalog: every segment chained
to its parent, every snap to a model's rules recorded, each model loaded once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storyflow import media
from storyflow.core.timeline import film_timeline
from storyflow.stages.plan import load_storyboard
from tests.support import reporting_to
from tests.tiny_ltx import build_tiny_ltx
from tests.tiny_sound import build_tiny_musicgen, build_tiny_vits, one_torch_thread
from tests.tiny_wan import build_tiny_wan_i2v, build_tiny_wan_t2v

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

STORY = """---
title: Tiny Models
resolution: 64x64
fps: 16
seed: 5
title_card: false
characters:
  Mara: a woman in a red coat
---
Mara walks. [2.5s]

(continuous) Mara stops.

A gull glides. [1.5s]
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-models")
    return {
        "wan": build_tiny_wan_t2v(folder / "wan-t2v"),
        "wan_i2v": build_tiny_wan_i2v(folder / "wan-i2v"),
        "ltx": build_tiny_ltx(folder / "ltx"),
        "vits": build_tiny_vits(folder / "vits"),
        "musicgen": build_tiny_musicgen(folder / "musicgen"),
    }


@pytest.fixture(scope="module")
def films(models, prefect_server, tmp_path_factory):
    """The story made into a film through Wan, then through LTX, in this process."""
    from flows.film import run_film
    from storyflow.backends.torch_models import WARM
    from storyflow.core.config import FilmChoices

    folder = tmp_path_factory.mktemp("open-models")
    story = folder / "tiny.md"
    story.write_text(STORY)
    tiny = {"steps": 2, "device": "cpu", "dtype": "float32"}
    sound = {
        "speech_backend": "vits", "speech_options": {"model": str(models["vits"]), "speaking_rate": 3.0},
        "music_backend": "musicgen", "music_options": {"model": str(models["musicgen"]), "device": "cpu"},
    }  # fmt: skip
    video = {
        "wan": {"model": str(models["wan"]), "i2v_model": str(models["wan_i2v"]), "native_frames": 17, **tiny},
        "ltx": {"model": str(models["ltx"]), "max_frames": 25, "context_frames": 9, **tiny},
    }
    WARM.clear()
    before = dict(WARM.loads)  # other tests in this process loaded their own models
    made = {}
    with one_torch_thread(), pytest.MonkeyPatch.context() as env, \
            reporting_to(prefect_server):  # fmt: skip
        env.setenv("STORYFLOW_HOME", str(folder / "outputs"))
        for backend, options in video.items():
            choices = FilmChoices(video_backend=backend, video_options=options, credentials=False, **sound)
            made[backend] = run_film(story, choices)
        # the same film again, asked to run on "auto" rather than "cpu": where a model runs is not what it makes
        again = {**video["ltx"], "device": "auto"}
        made["ltx again"] = run_film(story, FilmChoices(video_backend="ltx", video_options=again, credentials=False,
                                                         **sound))  # fmt: skip
    loads = {key: count - before.get(key, 0) for key, count in WARM.loads.items() if count > before.get(key, 0)}
    return made, loads


def _decoded_film_matches_its_storyboard(summary: dict) -> None:
    board = load_storyboard(Path(summary["storyboard"]))
    info = media.probe(Path(summary["film"]))
    assert (info.width, info.height, round(info.fps)) == (64, 64, 16)
    assert abs(info.num_frames - film_timeline(board).total_frames) <= 1
    assert info.audio_codec == "aac"


def _chained(shot: dict) -> bool:
    """Every segment after the first was made from the one before it."""
    segments = shot["segments"]
    return all(later["parent_sha256"] for later in segments[1:])


def test_a_film_through_wan_chains_text_to_video_and_image_to_video(films):
    summary = films[0]["wan"]
    _decoded_film_matches_its_storyboard(summary)
    walk, stop, gull = summary["shots"]
    assert walk["segments"][0]["strategy"] == "text_to_video" and len(walk["segments"]) >= 2
    assert {s["strategy"] for s in walk["segments"][1:]} == {"last_frame_i2v"} and _chained(walk)
    # the continuing shot starts from the last frame of the shot before it
    assert stop["segments"][0]["strategy"] == "image_to_video" and stop["segments"][0]["parent_sha256"]
    # Wan makes 4k+1 frames: what was snapped is recorded on the clip
    corrections = [c for shot in (walk, stop, gull) for seg in shot["segments"] for c in seg["corrections"]]
    assert any("4k+1" in c for c in corrections), corrections


def test_a_film_through_ltx_continues_long_shots_natively(films):
    summary = films[0]["ltx"]
    _decoded_film_matches_its_storyboard(summary)
    walk = summary["shots"][0]
    assert walk["segments"][0]["strategy"] == "text_to_video"
    assert {s["strategy"] for s in walk["segments"][1:]} == {"continue_video"} and _chained(walk)
    # LTX makes clips at 24 fps: each was re-timed to the film's 16, and it says so
    first = walk["segments"][0]["corrections"]
    assert any("made at 24 fps" in c and "16 fps" in c for c in first), first


def test_every_model_was_loaded_once_for_both_films(films):
    _, loads = films
    by_model = {}
    for key, count in loads.items():
        name = next((part for part in map(str, key) if "tiny-models" in part), "")
        by_model[Path(name).name] = by_model.get(Path(name).name, 0) + count
    # wan: text-to-video and image-to-video pipelines; ltx; vits narration; musicgen score
    assert by_model == {"wan-t2v": 1, "wan-i2v": 1, "ltx": 1, "vits": 1, "musicgen": 1}, loads
    assert sum(loads.values()) == 5


def test_a_rerun_on_another_device_setting_makes_nothing_again(films):
    made, _ = films
    assert made["ltx"]["clips_generated"] > 0
    again = made["ltx again"]
    assert again["clips_generated"] == 0 and again["clips_reused"] == made["ltx"]["clips_generated"]
    assert again["film"] == made["ltx"]["film"]
