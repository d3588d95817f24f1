"""The check before a segment is generated: what the backend is asked, and how its answer is conformed.

A film asks for a size, a frame rate and a length; a model makes what its rules allow
(storyflow.backends.base.VideoCapabilities): Wan makes 4k+1 frames at 16 fps in multiples
of 16 pixels, LTX 8k+1 frames at 24 or 25 fps in multiples of 32, Veo 4, 6 or 8 seconds.
`conform(request, caps)` decides, before the call, what the backend is asked for: the
nearest rate, size and frame count it can make that covers the segment. `conform_frames`
brings the answer back to the film: frames re-timed to the film's rate, the length trimmed
to the segment's, the picture resized and centre-cropped to the film's size.

Nothing is changed silently: every correction is one sentence recorded on the clip (and
shown by `storyflow provenance`), and warned once per run for each kind of correction.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storyflow import media
from storyflow.core.errors import GenerationError

if TYPE_CHECKING:
    import numpy as np

    from storyflow.backends.base import VideoCapabilities
    from storyflow.core.models import ClipRequest

log = logging.getLogger("storyflow.stages.conform")

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class Conform:
    """How one segment is made: what the backend is asked for, and what the film keeps of it."""

    fps: int  # the rate the backend makes it at
    frames: int  # the frames the backend is asked for (its rules allow them)
    width: int  # the size the backend makes it at
    height: int
    keep: int  # the film's frames the segment adds, at the film's rate and size
    corrections: tuple[tuple[str, str], ...] = ()  # (kind, sentence) per change: rate, length, size

    @property
    def sentences(self) -> tuple[str, ...]:
        return tuple(sentence for _, sentence in self.corrections)


def conform(request: ClipRequest, caps: VideoCapabilities, backend: str) -> Conform:
    """What `backend` is asked for to make `request`, and each way that differs from the film's."""
    film_fps, film_frames = request.fps, request.num_frames
    corrections: list[tuple[str, str]] = []

    # 1. the rate: the film's, or the nearest the backend makes (frames are re-timed afterwards)
    fps = caps.native_fps(film_fps)
    if fps != film_fps:
        corrections.append(("rate", f"made at {fps} fps, {backend}'s rate, and re-timed to the film's {film_fps} fps"))

    # 2. the length: enough frames at that rate to cover the segment, snapped to the backend's rule
    needed = math.ceil(film_frames * fps / film_fps - 1e-9)
    frames = caps.clip_frames(needed, fps)
    if frames < needed:
        raise GenerationError(
            f"{backend} makes clips of at most {frames} frames at {fps} fps; this segment needs {needed}",
            fix="this is a planning bug: report it (the extension planner should cut shorter segments)",
        )
    if frames != needed:
        rule = (f"its clips last {', '.join(f'{d:g}' for d in caps.durations)} s" if caps.durations
                else f"its clips have {caps.frame_rule} frames")  # fmt: skip
        corrections.append(("length", f"asked {backend} for {frames} frames at {fps} fps instead of {needed} "
                                      f"({rule}); the last {frames - needed} trimmed"))  # fmt: skip

    # 3. the size: the film's, or the nearest the backend makes (resized and centre-cropped back)
    width, height = caps.model_size(request.width, request.height)
    if (width, height) != (request.width, request.height):
        corrections.append(("size", f"made at {width}x{height} ({_size_rule(caps)}), resized and cropped to the "
                                    f"film's {request.width}x{request.height}"))  # fmt: skip
    return Conform(fps, frames, width, height, film_frames, tuple(corrections))


class Conformed:
    """The backend's frames as the film needs them: `plan.keep` frames at the film's rate and size.

    Iterate it once. `received` counts the backend's frames read, `extra` holds a correction
    when the backend answered at another size than it was asked for (fitted too, never trusted
    silently); after the last frame, `check()` says whether it answered with as many frames as
    it was asked for.
    """

    def __init__(self, frames: Iterable[np.ndarray], plan: Conform, request: ClipRequest, backend: str) -> None:
        self.frames, self.plan, self.request, self.backend = frames, plan, request, backend
        self.received = 0
        self.extra: list[tuple[str, str]] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        plan, request = self.plan, self.request
        source = iter(self.frames)
        produced = 0
        for index, frame in enumerate(source):
            self.received = index + 1
            if frame.shape[:2] != (request.height, request.width):
                if frame.shape[:2] != (plan.height, plan.width) and not self.extra:
                    self.extra.append(("answer size", f"{self.backend} answered with {frame.shape[1]}x{frame.shape[0]} "
                                       f"frames, not the {plan.width}x{plan.height} asked for; resized and cropped to "
                                       f"the film's {request.width}x{request.height}"))  # fmt: skip
                frame = media.fit_frame(frame, request.width, request.height)
            while produced < plan.keep and _source_index(produced, plan.fps, request.fps) == index:
                yield frame
                produced += 1
            if produced == plan.keep:
                break
        self.received += sum(1 for _ in source)  # frames past what the film keeps: counted, not decoded twice

    def check(self, shot_id: str) -> None:
        """GenerationError if the backend answered with fewer or more frames than it was asked for."""
        needed = _source_index(self.plan.keep - 1, self.plan.fps, self.request.fps) + 1
        if self.received < needed:
            raise GenerationError(
                f"{self.backend} returned {self.received} frames for shot {shot_id}, expected {self.plan.frames}",
                fix="this is a backend bug; pick another backend with --video-backend",
            )
        if self.received > self.plan.frames:
            raise GenerationError(
                f"{self.backend} returned more than the {self.plan.frames} frames asked for shot {shot_id}",
                fix="this is a backend bug; pick another backend with --video-backend",
            )


def warn_once(backend: str, kind: str, sentence: str) -> None:
    """Log each kind of correction once per process and backend; every clip records its own."""
    with _warned_lock:
        if (backend, kind) in _warned:
            return
        _warned.add((backend, kind))
    log.warning("%s (every clip this applies to records it: `storyflow provenance` shows it)", sentence)


def _source_index(film_frame: int, fps: int, film_fps: int) -> int:
    """The backend frame on screen at film frame `film_frame`."""
    return math.floor(film_frame * fps / film_fps + 1e-9)


def _size_rule(caps: VideoCapabilities) -> str:
    if caps.sizes:
        return "the nearest of its sizes, " + ", ".join(f"{w}x{h}" for w, h in caps.sizes)
    return f"its sides are multiples of {caps.size_multiple}"
