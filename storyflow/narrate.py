"""Storyboard -> narration: speak every shot's line and make sure it fits inside its shot.

Narration is spoken before any picture is made, because it can change the picture:
a line longer than its shot either stretches the shot (the extension planner then adds
segments) or, with fit="pace", is spoken faster (up to MAX_PACE times the voice's rate)
and stretches the shot only for what is still left over. Speech never runs over its shot:
each line starts LEAD_IN_S after the shot's first visible frame (its own frames, not
a crossfade it shares) and ends at least TAIL_S before its last.
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
from storyflow.media import AUDIO_SAMPLE_RATE, sha256_file, write_wav
from storyflow.models import NarrationLine, Shot, Storyboard
from storyflow.timeline import film_timeline

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("storyflow.narrate")

LEAD_IN_S = 0.25  # from the shot's first visible frame to the first word
TAIL_S = 0.4  # from the last word to the end of the shot's visible frames
MAX_PACE = 1.3  # "pace" speaks at most this much faster than the voice's own rate
Fit = Literal["stretch", "pace"]


def narrate(
    board: Storyboard,
    speech: SpeechBackend,
    out_dir: Path,
    store: GenerationStore,
    *,
    fit: Fit = "stretch",
) -> tuple[Storyboard, list[NarrationLine]]:
    """Speak every narration line; return the storyboard with shots stretched to fit them."""
    # 1. speak each line at the voice's own rate
    lines = {
        shot.id: speak_line(shot, speech, speech.rate, out_dir, store)
        for shot in board.shots
        if shot.narration.strip()
    }

    # 2. fit: pace (if allowed) then stretch, until every line fits; stretching a shot can
    #    lengthen its crossfades, so go round until nothing changes
    for _ in range(8):
        timeline = film_timeline(board)
        shots, changed = [], False
        for shot in board.shots:
            line = lines.get(shot.id)
            if line is not None:
                start, end = timeline.span_seconds(shot.id)
                room = end - start - LEAD_IN_S - TAIL_S
                if line.seconds > room + 1e-6 and fit == "pace" and line.rate <= speech.rate:
                    faster = min(MAX_PACE, line.seconds / max(room, 0.1))
                    line = lines[shot.id] = speak_line(shot, speech, speech.rate * faster, out_dir, store)
                if line.seconds > room + 1e-6:
                    longer = math.ceil((shot.duration + line.seconds - room) * board.fps - 1e-6) / board.fps
                    log.info("shot %s stretched from %.2f s to %.2f s so its narration fits",
                             shot.id, shot.duration, longer)  # fmt: skip
                    shot = shot.model_copy(update={"duration": longer})
                    changed = True
            shots.append(shot)
        board = board.model_copy(update={"shots": tuple(shots)})
        if not changed:
            break
    return board, [lines[shot.id] for shot in board.shots if shot.id in lines]


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


def line_times(board: Storyboard, lines: list[NarrationLine], shot_frames: dict[str, int] | None = None) -> list[tuple[float, NarrationLine]]:
    """Where each line starts in the film (seconds), from the timeline of the clips made."""
    timeline = film_timeline(board, shot_frames)
    return [(timeline.span_seconds(line.shot_id)[0] + line.offset, line) for line in lines]
