"""A new video backend is one file: found, planned around, conformed, recorded and traced, nothing else changed.

The backend below only makes "N frames of W x H", under the rules of a real open model
(Wan: 16 fps, 4k+1 frames, sides in multiples of 16). It is installed the way a third-party
package is (an entry point in the group "storyflow.backends"), as one module beside its
packaging metadata, and a film is made with it through the command line.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storyflow import media
from tests.support import REPO, TINY_STORY, run_cli

pytestmark = pytest.mark.slow

BACKEND = '''
"""Coloured blocks sliding across the frame: a video model in one file."""

import numpy as np

from storyflow.backends.base import GeneratedVideo, VideoBackend, VideoCapabilities


class BlocksBackend(VideoBackend):
    name = "blocks"
    description = "coloured blocks that slide, made the way Wan makes clips"

    @property
    def capabilities(self):
        return VideoCapabilities(max_clip_seconds=2.0, fps=(16,), frame_step=4, frame_offset=1, size_multiple=16)

    def generate(self, request):
        def frames():
            for i in range(request.num_frames):
                frame = np.full((request.height, request.width, 3), 30, np.uint8)
                x = (4 * i) % (request.width - 16)
                frame[:, x : x + 16] = (220, 90, 40)
                yield frame

        return GeneratedVideo(frames=frames())
'''


def test_a_backend_in_one_file_makes_a_film_whose_corrections_are_traced(prefect_server, tmp_path, write_story):
    # 1. the backend: one module, and the metadata any installed package carries
    plugin = tmp_path / "plugin"
    (plugin / "storyflow_blocks-0.1.dist-info").mkdir(parents=True)
    (plugin / "blocks.py").write_text(BACKEND)
    (plugin / "storyflow_blocks-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: storyflow-blocks\nVersion: 0.1\n")
    (plugin / "storyflow_blocks-0.1.dist-info" / "entry_points.txt").write_text(
        "[storyflow.backends]\nvideo.blocks = blocks:BlocksBackend\n")
    env = {"PREFECT_API_URL": prefect_server, "PYTHONPATH": os.pathsep.join([str(REPO), str(plugin)])}
    home = tmp_path / "outputs"

    listed = run_cli(["backends"], home=home, cwd=tmp_path, env=env)
    assert listed.code == 0 and "blocks" in listed.stdout and "frames 4k+1" in listed.stdout

    # 2. a film with it: the story's size and rate (160x90 at 12 fps), whatever the model makes
    story = write_story(TINY_STORY)
    made = run_cli(["film", str(story), "--video-backend", "blocks", "--json"], home=home, cwd=tmp_path, env=env)
    assert made.code == 0, made.stderr
    summary = made.json
    info = media.probe(Path(summary["film"]))
    assert (info.width, info.height, round(info.fps)) == (160, 90, 12)
    segments = [seg for shot in summary["shots"] for seg in shot["segments"]]
    assert len(segments) > len(summary["shots"])  # 2 s clips: long shots became chains
    for seg in segments:
        said = " ".join(seg["corrections"])
        assert "made at 16 fps" in said and "160x96" in said  # the rate, and the size (90 is no multiple of 16)

    # 3. each kind of correction is warned once, however many clips it applies to
    assert made.stderr.count("made at 16 fps") == 1

    # 4. provenance shows them on the clip's record
    clip = segments[0]["path"]
    shown = run_cli(["provenance", clip], home=home, cwd=tmp_path, env=env)
    assert shown.code == 0, shown.stderr
    assert "backend blocks 1" in shown.stdout and "corrected: made at 16 fps" in shown.stdout
