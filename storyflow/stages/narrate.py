"""Storyboard -> narration: speak every shot's line and make sure it fits inside its shot.

Narration is spoken before any picture is made, because it can change the picture. Speech
never runs over its shot: each line starts LEAD_IN_S after the start of the part of the
film its shot owns (crossfades split at the middle) and ends at least TAIL_S before its end.

How lines and shots are made to fit (`fit`):
- "stretch": a shot too short for its line gets longer (the extension planner then adds
  segments); with a target film length, shots with time to spare give it back.
- "pace": as stretch, but first lines are spoken faster (up to MAX_PACE times the voice's
  rate): each as far as its planned shot needs, and all at least at the film's pace, the
  slowest that keeps the film at its target length; only what is left over stretches shots.
- "auto" (the default): "pace" when the story asks for a film length, else "stretch".

A line spoken by a hosted voice records what it was charged (`NarrationLine.cost_usd`, from the
backend's Speech); a reused line was paid for by the run that made it.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Literal

from storyflow import media
from storyflow.backends.base import SpeechBackend
from storyflow.catalog import NARRATION, Generations
from storyflow.core import progress
from storyflow.core.durations import fit_to_target, not_over_target, with_frames
from storyflow.core.hashing import cache_key
from storyflow.core.models import NarrationLine, Shot, Storyboard
from storyflow.core.timeline import Timeline, film_timeline
from storyflow.media import AUDIO_SAMPLE_RATE, write_wav

log = logging.getLogger("storyflow.stages.narrate")

LEAD_IN_S = 0.25  # from the start of the shot's own part of the film to the first word
TAIL_S = 0.4  # from the last word to the end of the shot's own part
MAX_PACE = 1.3  # pacing speaks at most this much faster than the voice's own rate...
PACE_STEP = 0.05  # ...in steps of this much
MIN_SHOT_S = 1.5  # fitting to a target never shortens a shot below this...
CHANGE_HOLD_S = 1.0  # ...nor a shot with timed changes below its last change plus this
Fit = Literal["auto", "stretch", "pace"]


def narrate(
    board: Storyboard,
    speech: SpeechBackend,
    out_dir: Path,
    door: Generations | None = None,
    *,
    fit: Fit = "auto",
) -> tuple[Storyboard, list[NarrationLine]]:
    """Speak every narration line; return the storyboard with its shots fitted to the speech.

    Each line is reported once, as it will be heard (with its pace, when it was spoken again
    faster to fit).
    """
    door = door or Generations.in_memory()
    if fit == "auto":
        fit = "pace" if board.target_seconds else "stretch"
    narrated = [shot for shot in board.shots if shot.narration.strip()]

    # 1. speak each line at the voice's own rate, and fit the shots to it
    lines = {shot.id: speak_line(shot, speech, speech.rate, out_dir, door) for shot in narrated}
    fitted = fit_to_speech(board, lines)

    # 2. pacing: each line spoken as much faster as its own planned shot needs, and at least
    #    at the film's pace (what keeping the target length needs); both in PACE_STEP steps,
    #    so an edited line is re-spoken alone unless it tips the film's pace; then fit again
    if fit == "pace" and lines:
        timeline = film_timeline(board)
        own = {shot_id: _pace_needed(line, timeline.span_seconds(shot_id)) for shot_id, line in lines.items()}
        film_pace = _film_pace(board, lines, own)
        plain = lines
        while True:
            factors = {shot_id: max(own[shot_id], film_pace) for shot_id in plain}
            paced = [shot for shot in narrated if factors[shot.id] > 1.0]
            lines = plain | {shot.id: speak_line(shot, speech, speech.rate * factors[shot.id], out_dir, door)
                             for shot in paced}  # fmt: skip
            fitted = fit_to_speech(board, lines)
            # the pace was chosen on estimates (pauses do not speed up): one step more if they fell short
            if film_pace >= MAX_PACE - 1e-9 or not board.target_seconds or _not_over(fitted):
                break
            film_pace = round(film_pace + PACE_STEP, 2)
        if paced:
            log.info("narration paced at up to %.2fx the voice's rate to keep the shots' lengths", max(factors.values()))

    for before, after in zip(board.shots, fitted.shots):
        if after.duration > before.duration:
            log.info("shot %s stretched from %.2f s to %.2f s so its narration fits",
                     after.id, before.duration, after.duration)  # fmt: skip
    if board.target_seconds and not _not_over(fitted):
        log.warning("the narration needs %.1f s of film; the story asks for %.1f s (shorten the narration, "
                    "or raise the story's duration)", film_timeline(fitted).seconds, board.target_seconds)  # fmt: skip
    spoken = [lines[shot.id] for shot in narrated]
    for line in spoken:
        progress.report("narration", shot=line.shot_id, reused=line.reused, seconds=line.seconds,
                        pace=round(line.rate / speech.rate, 2))  # fmt: skip
    return fitted, spoken


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


def _pace_needed(line: NarrationLine, span: tuple[float, float]) -> float:
    """How much faster a line must be spoken to fit its planned shot: 1, or a PACE_STEP step up to MAX_PACE.

    Steps, not the exact ratio: a line edited by a word then mostly keeps its pace (and its
    recording, and its shot's length).
    """
    start, end = span
    room = max(end - start - LEAD_IN_S - TAIL_S, 0.1)
    needed = line.seconds / room
    if needed <= 1.0:
        return 1.0
    return min(MAX_PACE, math.ceil(needed / PACE_STEP - 1e-9) * PACE_STEP)


def _not_over(board: Storyboard) -> bool:
    """Whether the film is no longer than its target allows (see storyflow.core.durations)."""
    return not_over_target(film_timeline(board).total_frames, round(board.target_seconds * board.fps))


def _film_pace(board: Storyboard, lines: dict[str, NarrationLine], own: dict[str, float]) -> float:
    """The slowest PACE_STEP step (1 without a target) at which the fitted film keeps its target length.

    Judged on estimates (speech at k times the rate lasts 1/k as long), so only the lines
    finally chosen are spoken. MAX_PACE when no step is enough.
    """
    if not board.target_seconds:
        return 1.0
    pace = 1.0
    while pace < MAX_PACE - 1e-9:
        estimated = {i: line.model_copy(update={"seconds": line.seconds / max(pace, own[i])}) for i, line in lines.items()}
        if _not_over(fit_to_speech(board, estimated)):
            break
        pace = round(pace + PACE_STEP, 2)
    return pace


def speak_line(shot: Shot, speech: SpeechBackend, rate: float, out_dir: Path, door: Generations) -> NarrationLine:
    """Speak (or reuse) one shot's narration at `rate` words per minute, as a 48 kHz WAV."""
    text = " ".join(shot.narration.split())
    key = cache_key("narration", **speech.identity(), text=text, rate=round(rate, 2), sample_rate=AUDIO_SAMPLE_RATE)

    def make() -> NarrationLine:
        started = time.perf_counter()
        spoken = speech.speak(text, rate=rate)
        samples = media.resample(spoken.samples, spoken.sample_rate, AUDIO_SAMPLE_RATE)
        path = out_dir / "audio" / "narration" / f"{shot.id}-{key[:12]}.wav"
        digest = write_wav(path, samples, AUDIO_SAMPLE_RATE)  # hashed as it is written
        return NarrationLine(
            shot_id=shot.id,
            text=text,
            path=path.resolve(),
            sha256=digest,
            cache_key=key,
            seconds=len(samples) / AUDIO_SAMPLE_RATE,
            offset=LEAD_IN_S,
            rate=round(rate, 2),
            voice=speech.voice,
            backend=speech.label,
            model=speech.model_ref,
            words=spoken.words,
            cost_usd=spoken.cost_usd,  # what a hosted voice charged (None: a local one)
            wall_s=time.perf_counter() - started,
        )

    line = door.reuse_or_make(NARRATION, key, make)
    return line.model_copy(update={"shot_id": shot.id}) if line.shot_id != shot.id else line


def line_times(
    board: Storyboard, lines: list[NarrationLine], shot_frames: dict[str, int] | None = None
) -> list[tuple[float, NarrationLine]]:
    """Where each line starts in the film (seconds), from the timeline of the clips made."""
    timeline = film_timeline(board, shot_frames)
    return [(timeline.span_seconds(line.shot_id)[0] + line.offset, line) for line in lines]
