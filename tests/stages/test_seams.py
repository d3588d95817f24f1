"""Seam scores and the drift guard, on real frames and real files."""

from __future__ import annotations

import numpy as np
import pytest

from storyflow import media
from storyflow.stages import seams


def moving_bar(n, start=0, w=96, h=54, level=120):
    frames = []
    for i in range(start, start + n):
        frame = np.full((h, w, 3), level, np.uint8)
        frame[:, (i * 2) % w : (i * 2) % w + 6] = 250
        frames.append(frame)
    return frames


def test_a_continuous_join_scores_about_one_and_a_jump_scores_high():
    frames = moving_bar(24)
    smooth = seams.seam_score(frames[:12], frames[12:])
    assert 0.5 < smooth.ratio < 1.5 and not smooth.visible
    jumped = seams.seam_score(frames[:12], moving_bar(12, start=12, level=60))  # the picture darkens at once
    assert jumped.ratio > 3 and jumped.visible


def test_a_still_shot_does_not_turn_codec_noise_into_a_jump():
    still = [np.full((54, 96, 3), 100, np.uint8)] * 6
    flicker = [np.full((54, 96, 3), 101, np.uint8)] * 6
    assert not seams.seam_score(still, flicker).visible


def test_score_files_reads_both_sides_from_disk(tmp_path):
    frames = moving_bar(24)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    media.write_video(a, frames[:12], 96, 54, 12)
    media.write_video(b, frames[12:], 96, 54, 12)
    assert seams.score_files(a, b, 12).ratio < 2


def test_drift_is_detected_and_corrected_only_beyond_codec_noise():
    ref = np.stack(moving_bar(2))
    assert seams.drift_correction(ref, np.stack(moving_bar(2)) + 1) is None  # one level: noise
    brighter = np.clip(np.stack(moving_bar(2)).astype(int) + 12, 0, 255).astype(np.uint8)
    fix = seams.drift_correction(ref, brighter)
    assert fix is not None and all(s < -8 for s in fix.mean_shift)
    corrected = fix.apply(brighter[0])
    assert np.abs(corrected.astype(int) - ref[0].astype(int)).mean() < 2
    assert "corrected colour drift" in fix.describe()


def test_seam_needs_frames_on_both_sides():
    with pytest.raises(ValueError):
        seams.seam_score([], moving_bar(2))


def test_a_flash_in_the_reference_is_no_reason_to_correct():
    calm = np.stack(moving_bar(2))
    flashed = calm.copy()
    flashed[-1] = np.clip(flashed[-1].astype(int) + 80, 0, 255).astype(np.uint8)  # the parent ends on a flash
    assert seams.drift_correction(flashed, calm) is None
