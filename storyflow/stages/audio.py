"""Clips and storyboard -> the film's music and effects, timed to the picture.

- music: one cue per shot, following the shot's mood, from the same timeline the
  stitcher uses, so the score changes exactly where the picture does;
- effects: each shot's clips go to an effects backend (video-to-audio: the sound is
  derived from the picture), one call per shot, cached by the clips' hashes; the shots'
  effects are then laid on the film's timeline, crossfading where the pictures do.

Narration is spoken earlier (narrate.py, it can stretch shots); mix.py balances the three.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyflow.backends.base import (
    Backend,
    EffectsBackend,
    EffectsRequest,
    MusicBackend,
    MusicCue,
)
from storyflow.catalog import AUDIO, Generations
from storyflow.core import progress
from storyflow.core.hashing import cache_key
from storyflow.core.models import AudioTrack, ClipChain, Shot, Storyboard, Transition
from storyflow.core.timeline import Timeline
from storyflow.media import AUDIO_SAMPLE_RATE, sha256_file, write_wav


def music_cues(board: Storyboard, timeline: Timeline) -> list[MusicCue]:
    """One cue per shot, over the part of the film the shot owns (crossfades split at the middle,
    where neighbouring cues meet); the title card carries the first shot's mood."""
    cues = []
    for i, shot in enumerate(board.shots):
        start, end = timeline.span_seconds(shot.id)
        if i == 0:
            start = 0.0
        if i == len(board.shots) - 1:
            end = timeline.seconds
        cues.append(MusicCue(start=start, end=end, mood=shot.mood, shot_id=shot.id))
    return cues


def score_film(
    board: Storyboard,
    timeline: Timeline,
    backend: MusicBackend,
    out_dir: Path,
    door: Generations | None = None,
    sample_rate: int = AUDIO_SAMPLE_RATE,
) -> AudioTrack:
    """Compose (or reuse) the music bed for the whole film."""
    cues = music_cues(board, timeline)
    key = cache_key(
        "music", **backend.identity(), cues=[(round(c.start, 4), round(c.end, 4), c.mood) for c in cues],
        seconds=round(timeline.seconds, 4), seed=board.seed, sample_rate=sample_rate,
    )  # fmt: skip

    def make() -> AudioTrack:
        started = time.perf_counter()
        samples = backend.compose(cues, timeline.seconds, board.seed, sample_rate)
        return save_track("music", samples, sample_rate, key, out_dir, backend, started)

    track = (door or Generations.in_memory()).reuse_or_make(AUDIO, key, make, tally="music")
    progress.report("audio", kind="music", reused=track.reused)
    return track


def shot_effects(
    shot: Shot,
    chain: ClipChain,
    board: Storyboard,
    prompt: str,
    backend: EffectsBackend,
    out_dir: Path,
    door: Generations | None = None,
    sample_rate: int = AUDIO_SAMPLE_RATE,
) -> AudioTrack:
    """Effects for one shot, derived from its clips (or reused while the clips are unchanged)."""
    index = board.shots.index(shot)
    cut_in = index == 0 or board.shots[index - 1].transition is Transition.CUT
    request = EffectsRequest(
        clips=tuple(clip.path for clip in chain.clips), fps=board.fps, num_frames=chain.num_frames,
        prompt=prompt, sound_cue=shot.sound_cue, camera=shot.camera.value, cut_in=cut_in,
        seed=board.seed, sample_rate=sample_rate,
    )  # fmt: skip
    key = cache_key(
        "effects", **backend.identity(), clips=[clip.sha256 for clip in chain.clips], fps=board.fps,
        num_frames=chain.num_frames, prompt=prompt, sound_cue=shot.sound_cue, camera=shot.camera.value,
        cut_in=cut_in, seed=board.seed, sample_rate=sample_rate,
    )  # fmt: skip

    def make() -> AudioTrack:
        started = time.perf_counter()
        return save_track("effects", backend.render(request), sample_rate, key, out_dir, backend, started,
                          name=shot.id)  # fmt: skip

    track = (door or Generations.in_memory()).reuse_or_make(AUDIO, key, make, tally="effects")
    progress.report("audio", kind=f"effects {shot.id}", reused=track.reused)
    return track


def lay_effects(
    board: Storyboard, timeline: Timeline, shots: dict[str, AudioTrack], out_dir: Path, door: Generations | None = None
) -> AudioTrack:
    """The shots' effects on the film's timeline: equal-power crossfades where pictures overlap,
    fades where the picture dips to black, silence under the title card."""
    key = cache_key(
        "effects-bed", shots=[shots[s.id].sha256 for s in board.shots],
        placements=[(p.start, p.frames, p.overlap_in, p.overlap_out, p.fade_in, p.fade_out) for p in timeline.placements],
        fps=timeline.fps, total=timeline.total_frames,
    )  # fmt: skip

    def make() -> AudioTrack:
        import numpy as np

        from storyflow.media import read_wav

        started = time.perf_counter()
        rate = next(iter(shots.values())).sample_rate
        bed = np.zeros((round(timeline.seconds * rate), 2), dtype=np.float32)
        for place in timeline.placements:
            samples, _ = read_wav(shots[place.shot_id].path)
            start = round(place.start / timeline.fps * rate)
            samples = samples[: max(0, len(bed) - start)] * _envelope(len(samples), place, timeline.fps, rate)[:, None]
            bed[start : start + len(samples)] += samples
        return save_track("effects", bed, rate, key, out_dir, TIMELINE, started)

    return (door or Generations.in_memory()).reuse_or_make(AUDIO, key, make, tally="effects bed")


def _envelope(n: int, place, fps: int, rate: int):
    """A shot's gain over its samples: equal-power ramps over crossfades, linear over fades."""
    import numpy as np

    env = np.ones(n, dtype=np.float32)
    for frames, at_start, power in (
        (place.overlap_in, True, True), (place.overlap_out, False, True),
        (place.fade_in, True, False), (place.fade_out, False, False),
    ):  # fmt: skip
        k = min(n, round(frames / fps * rate))
        if k <= 0:
            continue
        ramp = np.linspace(0.0, 1.0, k, dtype=np.float32)
        ramp = np.sin(ramp * np.pi / 2) if power else ramp
        if at_start:
            env[:k] *= ramp
        else:
            env[n - k :] *= ramp[::-1]
    return env


@dataclass(frozen=True)
class Maker:
    """Who made a track that no backend made (storyflow's own timeline and mixer): label, model, options."""

    label: str
    model_ref: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def options_dict(self) -> dict[str, Any]:
        return self.options


TIMELINE = Maker("storyflow timeline")


def save_track(
    kind: str, samples, sample_rate: int, key: str, out_dir: Path, maker: Backend | Maker, started: float, name: str = ""
) -> AudioTrack:
    """Write samples as out_dir/audio/<kind>[-<name>]-<key12>.wav and describe the file as an AudioTrack."""
    path = out_dir / "audio" / f"{kind}{'-' + name if name else ''}-{key[:12]}.wav"
    write_wav(path, samples, sample_rate)
    return AudioTrack(
        kind=kind,
        path=path.resolve(),
        sha256=sha256_file(path),
        cache_key=key,
        seconds=len(samples) / sample_rate,
        sample_rate=sample_rate,
        backend=maker.label,
        model=maker.model_ref,
        options=maker.options_dict(),
        wall_s=time.perf_counter() - started,
    )
