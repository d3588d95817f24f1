"""Storyboard -> narration: speak every shot's line and make sure it fits inside its shot.

Narration is spoken before any picture is made, because it can change the picture. Speech
never runs over its shot: each line starts LEAD_IN_S after the start of the part of the
film its shot owns (crossfades split at the middle) and ends at least TAIL_S before its end.

How lines and shots are made to fit (`fit`):
- "stretch": a shot too short for its line gets longer (the extension planner then adds
  segments); with a target film length, shots with time to spare give it back.
- "pace": as stretch, but first the narration is spoken faster (up to MAX_PACE times the
  voice's rate) as far as needed to keep every line inside its planned shot and the film
  at its target length; only what is still left over stretches shots.
- "auto" (the default): "pace" when the story asks for a film length, else "stretch".
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from storyflow import progress
from storyflow.backends.base import SpeechBackend
from storyflow.cache import GenerationStore, cache_key
from storyflow.durations import fit_to_target, with_frames
from storyflow.media import AUDIO_SAMPLE_RATE, sha256_file, write_wav
from storyflow.models import NarrationLine, Shot, Storyboard
from storyflow.timeline import Timeline, film_timeline

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("storyflow.narrate")

LEAD_IN_S = 0.25  # from the start of the shot's own part of the film to the first word
TAIL_S = 0.4  # from the last word to the end of the shot's own part
MAX_PACE = 1.3  # pacing speaks at most this much faster than the voice's own rate
MIN_SHOT_S = 1.5  # fitting to a target never shortens a shot below this...
CHANGE_HOLD_S = 1.0  # ...nor a shot with timed changes below its last change plus this
OVERRUN_WARN_S = 1.0  # a film longer than its target by more than this is worth a warning
Fit = Literal["auto", "stretch", "pace"]


def narrate(
    board: Storyboard,
    speech: SpeechBackend,
    out_dir: Path,
    store: GenerationStore,
    *,
    fit: Fit = "auto",
) -> tuple[Storyboard, list[NarrationLine]]:
    """Speak every narration line; return the storyboard with its shots fitted to the speech."""
    if fit == "auto":
        fit = "pace" if board.target_seconds else "stretch"
    narrated = [shot for shot in board.shots if shot.narration.strip()]

    # 1. speak each line at the voice's own rate, and fit the shots to it
    lines = {shot.id: speak_line(shot, speech, speech.rate, out_dir, store) for shot in narrated}
    fitted = fit_to_speech(board, lines)

    # 2. pacing: speak faster, just as much as keeping the planned shots (and the film's
    #    length) needs; then fit again to what is left over
    if fit == "pace" and lines:
        factor = min(MAX_PACE, _pace_needed(board, fitted, lines))
        if factor > 1.0 + 1e-3:
            log.info("narration paced at %.2fx the voice's rate to keep the shots' lengths", factor)
            lines = {shot.id: speak_line(shot, speech, speech.rate * factor, out_dir, store) for shot in narrated}
            fitted = fit_to_speech(board, lines)

    for before, after in zip(board.shots, fitted.shots):
        if after.duration > before.duration:
            log.info("shot %s stretched from %.2f s to %.2f s so its narration fits",
                     after.id, before.duration, after.duration)  # fmt: skip
    if board.target_seconds and film_timeline(fitted).seconds > board.target_seconds + OVERRUN_WARN_S:
        log.warning("the narration needs %.1f s of film; the story asks for %.1f s (shorten the narration, "
                    "or raise the story's duration)", film_timeline(fitted).seconds, board.target_seconds)  # fmt: skip
    return fitted, [lines[shot.id] for shot in narrated]


def fit_to_speech(board: Storyboard, lines: dict[str, NarrationLine]) -> Storyboard:
    """Every shot at least as long as its line needs; with a target length, the film kept at it.

    A shot whose length the story wrote ("[12s]") keeps it unless its line needs more.
    """
    fitted = board
    for _ in range(8):  # a shot's share of its crossfades depends on its neighbours' lengths
        timeline = film_timeline(fitted)
        floors = [_floor_frames(shot, timeline, lines.get(shot.id), board.fps) for shot in fitted.shots]
        fixed = {shot.id for shot, floor in zip(board.shots, floors) if shot.fixed_duration and shot.frames(board.fps) >= floor}
        if board.target_seconds:
            candidate = fit_to_target(board, board.target_seconds, floors, fixed)
        else:
            candidate = with_frames(board, [max(s.frames(board.fps), f) for s, f in zip(board.shots, floors)])
        if candidate == fitted:
            break
        fitted = candidate
    return fitted


def _floor_frames(shot: Shot, timeline: Timeline, line: NarrationLine | None, fps: int) -> int:
    """The fewest frames the shot may have: its line with room around it, and never too short."""
    seconds = MIN_SHOT_S
    if shot.prompt_changes:
        seconds = max(seconds, shot.prompt_changes[-1].at + CHANGE_HOLD_S)
    frames = math.ceil(seconds * fps - 1e-9)
    if line is not None:
        place = timeline.placement(shot.id)
        shared = (place.overlap_in + place.overlap_out) / 2  # half of each crossfade belongs to the neighbour
        frames = max(frames, math.ceil((LEAD_IN_S + line.seconds + TAIL_S) * fps + shared - 1e-9))
    if shot.fixed_duration and line is None:
        return min(frames, shot.frames(fps))  # a written length stands unless speech needs more
    return frames


def _pace_needed(planned: Storyboard, fitted: Storyboard, lines: dict[str, NarrationLine]) -> float:
    """How much faster the narration must be for the fitted film to keep the planned lengths."""
    timeline = film_timeline(planned)
    factor = 1.0
    for shot in planned.shots:  # every line inside its planned shot
        line = lines.get(shot.id)
        if line is not None:
            start, end = timeline.span_seconds(shot.id)
            room = max(end - start - LEAD_IN_S - TAIL_S, 0.1)
            factor = max(factor, line.seconds / room)
    if planned.target_seconds:  # ...or at least the film at its length, if that asks less
        over = film_timeline(fitted).seconds - planned.target_seconds
        speech = sum(line.seconds for line in lines.values())
        if over > 0 and speech > over:
            factor = min(factor, speech / (speech - over))
    return factor


def speak_line(shot: Shot, speech: SpeechBackend, rate: float, out_dir: Path, store: GenerationStore) -> NarrationLine:
    """Speak (or reuse) one shot's narration at `rate` words per minute, as a 48 kHz WAV."""
    text = " ".join(shot.narration.split())
    key = cache_key("narration", backend=speech.model, options=speech.options_dict(), text=text,
                    rate=round(rate, 2), sample_rate=AUDIO_SAMPLE_RATE)  # fmt: skip
    found = store.find_narration(key)
    if found is not None:
        progress.report("narration", shot=shot.id, reused=True, seconds=found.seconds)
        return found.model_copy(update={"shot_id": shot.id, "reused": True})

    started = time.perf_counter()
    spoken = speech.speak(text, rate=rate)
    samples = resample(spoken.samples, spoken.sample_rate, AUDIO_SAMPLE_RATE)
    path = out_dir / "audio" / "narration" / f"{shot.id}-{key[:12]}.wav"
    write_wav(path, samples, AUDIO_SAMPLE_RATE)
    line = NarrationLine(
        shot_id=shot.id,
        text=text,
        path=path.resolve(),
        sha256=sha256_file(path),
        cache_key=key,
        seconds=len(samples) / AUDIO_SAMPLE_RATE,
        offset=LEAD_IN_S,
        rate=round(rate, 2),
        voice=speech.voice,
        backend=speech.label,
        words=spoken.words,
        wall_s=time.perf_counter() - started,
    )
    store.save_narration(line)
    progress.report("narration", shot=shot.id, reused=False, seconds=line.seconds)
    return line


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling (anti-aliased) between two sample rates."""
    from math import gcd

    import numpy as np
    from scipy.signal import resample_poly

    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    step = gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // step, from_rate // step).astype(np.float32)


def line_times(
    board: Storyboard, lines: list[NarrationLine], shot_frames: dict[str, int] | None = None
) -> list[tuple[float, NarrationLine]]:
    """Where each line starts in the film (seconds), from the timeline of the clips made."""
    timeline = film_timeline(board, shot_frames)
    return [(timeline.span_seconds(line.shot_id)[0] + line.offset, line) for line in lines]
