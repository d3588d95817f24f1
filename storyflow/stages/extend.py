"""Long shots from short clips: plan the segments of a shot's chain.

Video models make short clips. A shot longer than the backend's `max_clip_seconds` is
made as a chain: the first segment from the prompt (or from the previous shot's last
frame when the shot continues it), each next segment conditioned on the tail of the
one before. The strategy follows the backend's capabilities, best first:

    native continuation from the tail frames  (extend_from_video)
    image-to-video from the last frame        (image_to_video)
    an independent clip from the prompt       (neither; the seam will show)

An evolving shot (timed prompt changes) starts a new segment at every change, so each
segment is made with the prompt in force at its start. A loop shot ends with a segment
that continues the chain and leads back into its first frame (needs `last_frame`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from storyflow.backends.base import VideoCapabilities
from storyflow.core.errors import GenerationError
from storyflow.core.models import SegmentStrategy

log = logging.getLogger("storyflow.stages.extend")


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
    change_frames: Sequence[int] = (),
    loop: bool = False,
) -> list[SegmentPlan]:
    """Split a shot of `total_frames` into segments the backend can make, with strategies.

    `change_frames`: shot frames where the prompt changes; a segment starts at each.
    `loop`: the last segment closes the loop back into the first frame.
    """
    # 1. check inputs; the longest segment the backend can make, at the film's rate
    if total_frames <= 0:
        raise GenerationError(f"a shot needs at least one frame, got {total_frames}", fix="check the shot's duration")
    lengths_allowed = segment_lengths(caps, fps)
    max_frames = max(lengths_allowed) if lengths_allowed else 0
    if max_frames < 1:
        raise GenerationError(
            f"the backend's clips ({caps.max_clip_seconds} s) are shorter than one frame at {fps} fps",
            fix="raise the film's fps or pick another backend",
        )
    bad = [f for f in change_frames if not 0 < f < total_frames]
    if bad:
        raise GenerationError(
            f"prompt change at frame {bad[0]} is outside the shot's {total_frames} frames",
            fix="put timed changes inside the shot: [at 4s] needs a shot longer than 4 s",
        )

    # 2. pieces between prompt changes, each split into as few, as equal segments as allowed
    can_loop = loop and caps.last_frame and (caps.extend_from_video or caps.image_to_video)
    if loop and not can_loop:
        log.warning("backend cannot end on a given frame; the loop shot will not loop seamlessly")
    edges = [0, *sorted(set(change_frames)), total_frames]
    lengths: list[int] = []
    for start, stop in zip(edges, edges[1:]):
        lengths += _split(stop - start, max_frames, lengths_allowed if caps.durations else ())
    if can_loop and len(lengths) == 1:
        lengths = _even_split(total_frames, max(1, math.ceil(total_frames / 2)))  # a loop needs a closing segment
        if len(lengths) == 1:
            can_loop = False  # a one-frame shot cannot loop

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
        if len(lengths) > 1:
            log.warning("backend cannot continue a clip; a %d-frame shot is %d independent clips",
                        total_frames, len(lengths))  # fmt: skip

    plans, offset = [], 0
    for index, frames in enumerate(lengths):
        strategy = first if index == 0 else rest
        if can_loop and index == len(lengths) - 1:
            strategy = "loop_close"
        plans.append(SegmentPlan(index, offset, frames, strategy))
        offset += frames
    return plans


def segment_lengths(caps: VideoCapabilities, fps: int) -> list[int]:
    """The segment lengths, in film frames at `fps`, the backend can make: each of its durations,
    or (without durations) just the longest its frame rule and clip length allow."""
    native = caps.native_fps(fps)

    def film_frames(native_frames: int) -> int:
        return math.floor(native_frames * fps / native + 1e-9)

    if caps.durations:
        return sorted({film_frames(round(seconds * native)) for seconds in caps.durations})
    return [film_frames(caps.longest_clip(native))]


def _split(frames: int, max_frames: int, allowed: Sequence[int]) -> list[int]:
    """`frames` as the fewest segments; with fixed lengths `allowed`, the mix of them that wastes
    least (the last segment is made at its full length and trimmed), else as equal as can be."""
    if not allowed:
        return _even_split(frames, max_frames)
    import itertools

    count = math.ceil(frames / max_frames)
    best = min(itertools.combinations_with_replacement(sorted(allowed, reverse=True), count),
               key=lambda pick: (sum(pick) < frames, abs(sum(pick) - frames)))  # fmt: skip
    pieces = list(best)
    pieces[-1] -= max(0, sum(pieces) - frames)
    return pieces


def _even_split(frames: int, max_frames: int) -> list[int]:
    """`frames` as the fewest pieces of at most `max_frames`, lengths differing by at most one."""
    count = math.ceil(frames / max_frames)
    base, extra = divmod(frames, count)
    return [base + (1 if i < extra else 0) for i in range(count)]
