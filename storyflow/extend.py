"""Long shots from short clips: plan the segments of a shot's chain.

Video models make short clips. A shot longer than the backend's `max_clip_seconds` is
made as a chain: the first segment from the prompt (or from the previous shot's last
frame when the shot continues it), each next segment conditioned on the tail of the
one before. The strategy follows the backend's capabilities, best first:

    native continuation from the tail frames  (extend_from_video)
    image-to-video from the last frame        (image_to_video)
    an independent clip from the prompt       (neither; the seam will show)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from storyflow.backends.base import VideoCapabilities
from storyflow.errors import GenerationError
from storyflow.models import SegmentStrategy

log = logging.getLogger("storyflow.extend")


@dataclass(frozen=True)
class SegmentPlan:
    index: int  # position in the chain
    offset: int  # first frame of the segment inside the shot
    frames: int  # new frames this segment adds
    strategy: SegmentStrategy

    @property
    def conditioned(self) -> bool:
        return self.strategy != "text_to_video"


def plan_segments(
    total_frames: int,
    fps: int,
    caps: VideoCapabilities,
    *,
    continues_previous: bool = False,
) -> list[SegmentPlan]:
    """Split a shot of `total_frames` into segments the backend can make, with strategies."""
    # 1. check inputs
    if total_frames <= 0:
        raise GenerationError(f"a shot needs at least one frame, got {total_frames}", fix="check the shot's duration")
    max_frames = math.floor(caps.max_clip_seconds * fps)
    if max_frames < 1:
        raise GenerationError(
            f"the backend's clips ({caps.max_clip_seconds} s) are shorter than one frame at {fps} fps",
            fix="raise the film's fps or pick another backend",
        )

    # 2. as few segments as the backend allows, as equal in length as possible
    count = math.ceil(total_frames / max_frames)
    base, extra = divmod(total_frames, count)
    lengths = [base + (1 if i < extra else 0) for i in range(count)]

    # 3. the strategy of each segment
    if continues_previous and caps.image_to_video:
        first: SegmentStrategy = "image_to_video"
    else:
        if continues_previous:
            log.warning("backend cannot start from a frame; a continuing shot starts fresh from its prompt")
        first = "text_to_video"
    if caps.extend_from_video:
        rest: SegmentStrategy = "continue_video"
    elif caps.image_to_video:
        rest = "last_frame_i2v"
    else:
        rest = "text_to_video"
        if count > 1:
            log.warning("backend cannot continue a clip; a %d-frame shot is %d independent clips", total_frames, count)

    plans, offset = [], 0
    for index, frames in enumerate(lengths):
        plans.append(SegmentPlan(index, offset, frames, first if index == 0 else rest))
        offset += frames
    return plans
