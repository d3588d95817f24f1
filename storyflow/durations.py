"""Fitting shot lengths to a film length, in whole frames.

Used twice: by a planner that turns a story's `duration` into shot lengths, and by the
narration stage after speech has set each shot's shortest possible length. Both say
which shots may not change (a length written in the story) and how short each may get;
the rest share what is left in proportion to their current lengths.
"""

from __future__ import annotations

from collections.abc import Collection

from storyflow.models import Storyboard
from storyflow.timeline import film_timeline


def with_frames(board: Storyboard, frames: list[int]) -> Storyboard:
    """The storyboard with each shot `frames[i]` frames long."""
    shots = tuple(
        shot.model_copy(update={"duration": count / board.fps}) for shot, count in zip(board.shots, frames, strict=True)
    )
    return board.model_copy(update={"shots": shots})


def fit_to_target(board: Storyboard, target: float, floors: list[int], fixed: Collection[str] = ()) -> Storyboard:
    """Scale the free shots so the film lasts `target` seconds (to the frame where the floors allow).

    `floors[i]`: the fewest frames shot i may have; shots named in `fixed` keep their length.
    Shots already below their floor are raised to it first. The timeline adds the title card
    and takes off crossfade overlaps; those move only when shots get very short, so a few
    rounds always settle. Returns the fitted storyboard (check its timeline for the result).
    """
    target_frames = round(target * board.fps)
    frames = [
        count if shot.id in fixed else max(count, floor)
        for shot, count, floor in zip(board.shots, (s.frames(board.fps) for s in board.shots), floors, strict=True)
    ]
    free = [i for i, shot in enumerate(board.shots) if shot.id not in fixed]
    for _ in range(8):
        total = film_timeline(with_frames(board, frames)).total_frames
        if total == target_frames or not free:
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
