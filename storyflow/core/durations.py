"""Fitting shot lengths to a film length, in whole frames.

Used twice: by a planner that turns a story's `duration` into shot lengths, and by the
narration stage after speech has set each shot's shortest possible length. Both say
which shots may not change (a length written in the story) and how short each may get;
the rest are scaled together. Fitting is local on purpose: shot lengths decide which
clips exist, so a rule that re-timed every shot after any edit would regenerate the film.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection

from storyflow.core.models import Shot, Storyboard
from storyflow.core.timeline import film_timeline
from storyflow.core.vocabulary import CHANGE_HOLD_SECONDS

log = logging.getLogger(__name__)

MIN_FITTED_SECONDS = 1.0  # fitting a target length never shortens a shot below this

# A film within 2% of its target length is on target (about a second in a minute). The
# slack is what lets an edit to one shot leave every other shot, and its clips, alone.
TARGET_TOLERANCE = 0.02
# Scaling factors come from this geometric grid (1.03^k): a small edit moves the exact
# factor a little, the grid factor usually not at all.
SCALE_STEP = 1.03


def tolerance_frames(target_frames: int) -> int:
    """How far from its target a film may end and still be on target: TARGET_TOLERANCE, at least a frame."""
    return max(1, round(target_frames * TARGET_TOLERANCE))


def on_target(total_frames: int, target_frames: int) -> bool:
    return abs(total_frames - target_frames) <= tolerance_frames(target_frames)


def not_over_target(total_frames: int, target_frames: int) -> bool:
    return total_frames - target_frames <= tolerance_frames(target_frames)


def with_frames(board: Storyboard, frames: list[int]) -> Storyboard:
    """The storyboard with each shot `frames[i]` frames long."""
    shots = tuple(
        shot.model_copy(update={"duration": count / board.fps}) for shot, count in zip(board.shots, frames, strict=True)
    )
    return board.model_copy(update={"shots": shots})


def fit_to_target(board: Storyboard, target: float, floors: list[int], fixed: Collection[str] = ()) -> Storyboard:
    """Fit the free shots so the film lasts `target` seconds, give or take TARGET_TOLERANCE.

    `floors[i]`: the fewest frames shot i may have; shots named in `fixed` keep their length.
    Shots below their floor are raised to it first. A film already inside the tolerance is
    left as it is; otherwise the free shots are scaled by one factor taken from a fixed grid.
    Both make fitting local: editing one shot (a word more, a line spoken longer) changes
    that shot's length and nothing else, so the other shots' clips are not made again. Only
    where the grid cannot land inside the tolerance (a very short film, most shots at their
    floors) are the shots fitted to the frame.
    """
    fps = board.fps
    target_frames = round(target * fps)
    planned = [shot.frames(fps) for shot in board.shots]
    frames = [count if shot.id in fixed else max(count, floor) for shot, count, floor in zip(board.shots, planned, floors, strict=True)]  # fmt: skip
    free = [i for i, shot in enumerate(board.shots) if shot.id not in fixed]

    def film_frames(counts: list[int]) -> int:
        return film_timeline(with_frames(board, counts)).total_frames

    if not free or on_target(film_frames(frames), target_frames):
        return with_frames(board, frames)

    # 1. one factor for every free shot: the exact one, then the nearest on the grid
    def scaled(factor: float) -> list[int]:
        free_set = set(free)
        return [max(floors[i], round(planned[i] * factor)) if i in free_set else frames[i] for i in range(len(frames))]

    factor = 1.0
    for _ in range(12):
        counts = scaled(factor)
        scalable = sum(counts[i] for i in free if counts[i] > floors[i])
        missing = target_frames - film_frames(counts)
        if not scalable or missing == 0:
            break
        factor *= max(scalable + missing, 1) / scalable
    on_grid = scaled(SCALE_STEP ** round(math.log(factor) / math.log(SCALE_STEP)))
    if on_target(film_frames(on_grid), target_frames):
        return with_frames(board, on_grid)

    # 2. to the frame: the free shots share what is left in proportion to their lengths
    for _ in range(8):
        total = film_frames(frames)
        if total == target_frames:
            break
        wanted = sum(frames[i] for i in free) + target_frames - total
        fitted = apportion([frames[i] for i in free], wanted, [floors[i] for i in free])
        if fitted == [frames[i] for i in free]:
            break
        for i, count in zip(free, fitted, strict=True):
            frames[i] = count
    return with_frames(board, frames)


def apportion(weights: list[int], total: int, floors: list[int]) -> list[int]:
    """Split `total` frames in proportion to `weights` (largest remainders), none below its floor."""
    pinned: dict[int, int] = {}
    while True:
        free = [i for i in range(len(weights)) if i not in pinned]
        budget = total - sum(pinned.values())
        if not free or budget <= sum(floors[i] for i in free):
            return [pinned.get(i, floors[i]) for i in range(len(weights))]
        weight = sum(weights[i] for i in free)
        exact = {i: weights[i] * budget / weight for i in free}
        share = {i: int(exact[i]) for i in free}
        by_remainder = sorted(free, key=lambda i: (-(exact[i] - share[i]), i))
        for i in by_remainder[: budget - sum(share.values())]:
            share[i] += 1
        too_short = [i for i in free if share[i] < floors[i]]
        if not too_short:
            return [pinned.get(i, share.get(i, 0)) for i in range(len(weights))]
        pinned.update({i: floors[i] for i in too_short})


def fit_to_duration(board: Storyboard, target: float, fixed: Collection[str] = ()) -> Storyboard:
    """Scale the shots so the film's timeline lasts `target` seconds (within storyflow.core.durations' tolerance).

    Shots named in `fixed` (a length written in the story, "[12s]") keep their length; the
    others share what is left. No shot goes under MIN_FITTED_SECONDS, nor a shot with timed
    changes under its last change + CHANGE_HOLD_SECONDS.
    """
    from storyflow.core.timeline import film_timeline

    fps = board.fps
    target_frames = round(target * fps)
    frames = [shot.frames(fps) for shot in board.shots]
    floors = [_shortest_frames(shot, fps) for shot in board.shots]
    # 1. the written lengths alone may already be too long for the target
    shortest = [count if shot.id in fixed else floor for shot, count, floor in zip(board.shots, frames, floors)]
    too_long = bool(fixed) and film_timeline(with_frames(board, shortest)).total_frames > target_frames
    if too_long:
        written = sum(count for shot, count in zip(board.shots, frames) if shot.id in fixed)
        log.warning(
            "the shots with a written length ([Ns]) last %.2f s together; with the title card and the other "
            "shots at their shortest (%.1f s each), the film cannot last the %.2f s asked for",
            written / fps, MIN_FITTED_SECONDS, target,
        )
    # 2. scale the free shots
    board = fit_to_target(board, target, floors, fixed)
    reached = film_timeline(board).total_frames
    if not on_target(reached, target_frames) and not too_long:
        log.warning(
            "the storyboard lasts %.2f s, not the %.2f s asked for: %d shots need at least %.1f s each "
            "(a shot with timed changes, its last change + %.1f s)",
            reached / fps, target, len(frames), MIN_FITTED_SECONDS, CHANGE_HOLD_SECONDS,
        )
    return board


def _shortest_frames(shot: Shot, fps: int) -> int:
    """The fewest frames fitting may leave a shot: a second, or its last change held on screen."""
    seconds = MIN_FITTED_SECONDS
    if shot.prompt_changes:
        seconds = max(seconds, shot.prompt_changes[-1].at + CHANGE_HOLD_SECONDS)
    return max(1, math.ceil(seconds * fps - 1e-9))
