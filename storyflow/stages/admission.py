"""What a storyboard may ask of this machine: shots, film length and clips, checked before any work.

A story's size is bounded when it is read (storyflow.stages.story: bytes, title, front matter);
what it plans to is bounded here, right after planning and again once narration has stretched
the shots, so a 500-paragraph story or a `[99999s]` timing marker is refused with the limit
and the setting that raises it, before a single clip or line of narration is made.
"""

from __future__ import annotations

from storyflow.backends.base import VideoCapabilities
from storyflow.core.config import Limits
from storyflow.core.errors import InputError
from storyflow.core.models import Storyboard
from storyflow.core.timeline import film_timeline
from storyflow.stages.extend import plan_segments


def check_storyboard_size(
    board: Storyboard, limits: Limits, caps: VideoCapabilities | None = None, candidates: int = 1
) -> None:
    """Refuse a storyboard over the limits: shots, seconds of film, and (given the video backend's
    capabilities) the clips it would be asked for, every take counted."""
    # 1. shots, then the film's length (its longest shot named: usually a timing marker)
    if len(board.shots) > limits.max_shots:
        raise InputError(
            f"the storyboard has {len(board.shots):,} shots, more than the {limits.max_shots:,} allowed",
            fix="shorten the story or split it into several films, or raise STORYFLOW_MAX_SHOTS",
        )
    seconds = film_timeline(board).seconds
    if seconds > limits.max_film_seconds:
        longest = max(board.shots, key=lambda shot: shot.duration)
        raise InputError(
            f"the film would last {_hours(seconds)}, longer than the {_hours(limits.max_film_seconds)} allowed "
            f"(its longest shot, {longest.id}, lasts {_hours(longest.duration)})",
            fix="shorten the story or its timing markers such as [90s], or raise STORYFLOW_MAX_FILM_SECONDS",
        )

    # 2. the clips: each shot's segments as generation will split it
    if caps is None:
        return
    segments = 0
    for index, shot in enumerate(board.shots):
        segments += len(plan_segments(
            shot.frames(board.fps), board.fps, caps, continues_previous=shot.continues_previous and index > 0,
            change_frames=[round(change.at * board.fps) for change in shot.prompt_changes], loop=shot.loop,
        )) * candidates  # fmt: skip
        if segments > limits.max_segments:
            raise InputError(
                f"the film would need more than {limits.max_segments:,} clips from the video backend "
                f"({candidates} take{'s' if candidates > 1 else ''} of each segment)",
                fix="shorten the story, lower --candidates, or raise STORYFLOW_MAX_SEGMENTS",
            )


def _hours(seconds: float) -> str:
    """'2 h 05 min', '41 min 10 s', '9.5 s'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min {secs:02d} s"
