"""End to end on a held-out story: a 12 s shot made by extension, a continuing shot, and the
film's sound (narration inside its shots, music ducked under it), checked by decoding the film."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from storyflow import media
from storyflow.media.loudness import integrated_lufs
from storyflow.stages.subtitles import parse_srt
from tests.support import run_cli

pytestmark = pytest.mark.slow

HELD_OUT = """---
title: Held Out Harbour
resolution: 160x90
fps: 12
seed: 11
title_card: false
characters:
  Ada: a small girl in a yellow raincoat
---
Ada walks along the harbour wall at dusk. [12s] Pan right. [at 4s] Rain begins to fall. [at 8s] The lamps come on one by one.

(continuous) Ada stops at the end of the wall and looks out to sea.

A gull circles over the empty beach while the waves roll in.
"""
RATE = 16_000


@pytest.fixture(scope="module")
def film(prefect_server, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("held-out")
    story = cwd / "held-out.md"
    story.write_text(HELD_OUT)
    home = cwd / "outputs"
    result = run_cli(["film", str(story), "--json"], home=home, cwd=cwd, env={"PREFECT_API_URL": prefect_server})
    assert result.code == 0, result.stderr
    return home, cwd, result.json


def test_a_twelve_second_shot_is_a_three_segment_chain_with_lineage_and_seams(film):
    home, cwd, summary = film
    shot = summary["shots"][0]
    assert shot["seconds"] == 12.0
    segments = shot["segments"]
    assert [s["strategy"] for s in segments] == ["text_to_video", "continue_video", "continue_video"]
    assert [s["seconds"] for s in segments] == [4.0, 4.0, 4.0]
    # each segment is made with the prompt in force at its start
    assert "Rain begins" not in segments[0]["prompt"] and "lamps" not in segments[0]["prompt"]
    assert "Rain begins" in segments[1]["prompt"] and "lamps" not in segments[1]["prompt"]
    assert "lamps" in segments[2]["prompt"]
    # lineage: every segment points at the one before it, with a seam score, in the catalog too
    shas = [media.sha256_file(Path(s["path"])) for s in segments]
    assert [s["parent_sha256"] for s in segments] == [None, shas[0], shas[1]]
    db = sqlite3.connect(summary["catalog"])
    try:
        rows = db.execute(
            "SELECT c.segment, p.sha256, c.seam_ratio FROM clips c LEFT JOIN clips p ON p.id = c.parent_clip_id "
            "WHERE c.shot_key = 's01' ORDER BY c.segment"
        ).fetchall()
    finally:
        db.close()
    assert [(r[0], r[1]) for r in rows] == [(0, None), (1, shas[0]), (2, shas[1])]
    assert rows[0][2] is None and all(r[2] is not None for r in rows[1:])
    # `storyflow shots` lists the chain with its seams
    listed = run_cli(["shots", summary["film"], "--json"], home=home, cwd=cwd)
    assert listed.code == 0, listed.stderr
    tree = json.loads(listed.stdout)
    chain = tree["shots"][0]["segments"]
    assert [seg["parent_sha256"] for seg in chain] == [None, shas[0], shas[1]]
    assert all(seg["seam"]["ratio"] < 3 for seg in chain[1:])  # no visible jump
    assert summary["seams"]["visible"] == []


def test_a_continuing_shot_begins_on_the_previous_shots_last_frame(film):
    _, _, summary = film
    first, second = summary["shots"][0], summary["shots"][1]
    assert second["continues_previous"]
    head = second["segments"][0]
    assert head["strategy"] == "image_to_video"
    assert head["parent_sha256"] == media.sha256_file(Path(first["segments"][-1]["path"]))
    before = [f.astype(int) for f in media.read_frames(Path(first["segments"][-1]["path"]))]
    after = media.first_frames(Path(head["path"]), 1)[0].astype(int)
    step = np.median([np.abs(a - b).mean() for a, b in zip(before, before[1:])])
    assert np.abs(after - before[-1]).mean() < 3 * max(step, 1.0)


def test_every_narration_line_is_spoken_inside_its_shot(film):
    _, _, summary = film
    spoken = [shot for shot in summary["shots"] if shot["narration"]]
    assert len(spoken) == 3
    for shot in spoken:
        line = shot["spoken"]
        assert shot["starts_at"] <= line["starts_at"] < line["ends_at"] <= shot["ends_at"], shot["id"]


def rms_db(samples: np.ndarray) -> float:
    return 20 * np.log10(max(float(np.sqrt(np.mean(samples**2))), 1e-9))


def mono(path: Path) -> np.ndarray:
    return media.decode_audio(path, sample_rate=RATE)


def test_speech_is_where_the_subtitles_say_and_nowhere_else(film):
    _, _, summary = film
    cues = parse_srt(Path(summary["subtitles"]))
    assert len(cues) >= 3
    narration = mono(Path(summary["stems"]["narration"]))
    film_sound = mono(Path(summary["film"]))
    inside = np.zeros(len(narration), bool)
    for start, end, _ in cues:
        window = slice(int(start * RATE), int(end * RATE))
        inside[window] = True
        # the voice is there, and it is in the film itself: the film's sound follows the voice
        assert rms_db(narration[window]) > -40
        lag = _best_lag(film_sound[window], narration[window])
        corr = np.corrcoef(film_sound[window][max(0, lag):][: len(narration[window])],
                           narration[window][max(0, -lag):][: len(film_sound[window][max(0, lag):])])[0, 1]  # fmt: skip
        assert corr > 0.5, (start, end, corr)
    # outside the cues the narration is silent
    outside = narration[~inside]
    assert rms_db(outside) < -60


def _best_lag(a: np.ndarray, b: np.ndarray, most: int = 2048) -> int:
    """The shift of a against b (AAC adds a small delay) that lines them up best."""
    n = min(len(a), len(b))
    scores = [np.dot(a[max(0, k) : n + min(0, k)], b[max(0, -k) : n - max(0, k)]) for k in range(-most, most + 1, 64)]
    return range(-most, most + 1, 64)[int(np.argmax(scores))]


def test_music_plays_under_the_speech_ducked_and_the_film_is_normalised(film):
    _, _, summary = film
    music = mono(Path(summary["stems"]["music"]))
    cues = parse_srt(Path(summary["subtitles"]))
    under = np.concatenate([music[int(s * RATE) : int(e * RATE)] for s, e, _ in cues])
    mask = np.ones(len(music), bool)
    for s, e, _ in cues:
        mask[int((s - 0.6) * RATE) : int((e + 0.6) * RATE)] = False
    away = music[mask]
    assert rms_db(under) > -50  # music is there under the speech...
    assert rms_db(away) - rms_db(under) > 6  # ...ducked well below its level elsewhere
    samples = media.decode_audio(Path(summary["film"]), sample_rate=48_000)
    assert abs(integrated_lufs(samples, 48_000) - (-16.0)) < 1.0
    assert abs(summary["sound"]["loudness_lufs"] - (-16.0)) < 0.5
    assert set(summary["stems"]) == {"narration", "music", "effects"}
