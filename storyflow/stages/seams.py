"""Continuity between clips: how visible a seam is, and a guard against colour drift.

Seam score. Where one clip continues another, compare the jump across the join (mean
absolute pixel difference between the frames either side) with the ordinary motion
inside the clips (the median difference between consecutive frames within a second of
the join). A ratio near 1 is invisible; above models.SEAM_WARN_RATIO it is a jump.

Drift guard. Autoregressive extension compounds small errors: colour and brightness
creep from segment to segment. At a seam the picture content is the same on both sides,
so any difference in global colour statistics there is drift, not story. The guard
measures the new clip's first frames against its parent's last frames and, when the
difference exceeds what the codec alone explains, applies one per-channel gain and
offset to the whole new clip. It is anchored at every seam, so it never fights a change
the prompt asks for over time, and it is recorded and logged, never silent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow import media
from storyflow.core.models import SeamScore

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("storyflow.stages.seams")

# Consecutive-frame differences below this are codec noise, not motion: the denominator
# never goes lower, so a still shot does not turn a one-level flicker into a "jump".
MIN_MOTION = 1.0

# Per-channel mean difference (0-255) at a seam that counts as drift: encoding both
# sides at CRF 20 moves channel means by well under one level.
DRIFT_LEVELS = 3.0
# Contrast (per-channel standard deviation) ratio beyond which the seam counts as drift.
DRIFT_CONTRAST = 0.08


def seam_score(before: list[np.ndarray], after: list[np.ndarray]) -> SeamScore:
    """Score the join between the frames `before` it and the frames `after` it."""
    import numpy as np

    if not before or not after:
        raise ValueError("a seam needs frames on both sides")

    def diff(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())

    jump = diff(before[-1], after[0])
    inside = [diff(a, b) for side in (before, after) for a, b in zip(side, side[1:])]
    median = float(np.median(inside)) if inside else 0.0
    return SeamScore(jump=round(jump, 3), median=round(median, 3), ratio=round(jump / max(median, MIN_MOTION), 3))


def score_files(parent: Path, child: Path, fps: int, window_s: float = 1.0) -> SeamScore:
    """Seam score between the end of `parent` and the start of `child`, decoded from the files."""
    window = max(2, round(fps * window_s))
    before = list(media.last_frames(parent, window))
    after = list(media.first_frames(child, window))
    return seam_score(before, after)


def score_wrap(last: Path, first: Path, fps: int, window_s: float = 1.0) -> SeamScore:
    """The seam of a loop: the end of its last clip running back into the start of its first."""
    return score_files(last, first, fps, window_s)


@dataclass(frozen=True)
class ColourMatch:
    """A per-channel gain and offset: out = frame * gain + offset."""

    gain: tuple[float, float, float]
    offset: tuple[float, float, float]
    mean_shift: tuple[float, float, float]  # what the drift was, per channel (reference - new)

    def describe(self) -> str:
        shift = ", ".join(f"{v:+.1f}" for v in self.mean_shift)
        gain = ", ".join(f"x{v:.3f}" for v in self.gain)
        return f"corrected colour drift at the seam: RGB mean shift ({shift}), contrast {gain}"

    def apply(self, frame: np.ndarray) -> np.ndarray:
        import numpy as np

        out = frame.astype(np.float32) * np.asarray(self.gain, np.float32) + np.asarray(self.offset, np.float32)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def drift_correction(reference: np.ndarray, new: np.ndarray) -> ColourMatch | None:
    """The colour correction that maps `new` frames' statistics onto `reference`'s, if they drifted.

    `reference`: the parent's frames at the seam (N, H, W, 3); `new`: the new clip's frames
    at the same seam. None when the difference is within codec noise.
    """
    import numpy as np

    # a reference that itself changes (a flash, a cut inside the parent) is no reference
    ref_frames = reference.reshape(len(reference), -1, 3).mean(axis=1)
    if np.abs(ref_frames - ref_frames.mean(axis=0)).max() > DRIFT_LEVELS:
        return None
    ref = reference.reshape(-1, 3).astype(np.float64)
    cur = new.reshape(-1, 3).astype(np.float64)
    ref_mean, cur_mean = ref.mean(axis=0), cur.mean(axis=0)
    ref_std, cur_std = ref.std(axis=0), cur.std(axis=0)
    shift = ref_mean - cur_mean
    contrast = np.where(cur_std > 1.0, ref_std / np.maximum(cur_std, 1.0), 1.0)
    if np.abs(shift).max() < DRIFT_LEVELS and np.abs(contrast - 1).max() < DRIFT_CONTRAST:
        return None
    gain = np.clip(contrast, 0.5, 2.0)
    offset = ref_mean - cur_mean * gain
    return ColourMatch(
        gain=tuple(round(float(g), 4) for g in gain),  # type: ignore[arg-type]
        offset=tuple(round(float(o), 3) for o in offset),  # type: ignore[arg-type]
        mean_shift=tuple(round(float(s), 2) for s in shift),  # type: ignore[arg-type]
    )


def colour_stats(frames: list[np.ndarray]) -> tuple[float, float, float]:
    """Mean R, G, B over frames: what the drift tests and the summary compare."""
    import numpy as np

    stacked = np.stack(frames).reshape(-1, 3).astype(np.float64)
    mean = stacked.mean(axis=0)
    return float(mean[0]), float(mean[1]), float(mean[2])
