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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyflow.backends.base import (
    Backend,
    EffectsBackend,
    EffectsRequest,
    MusicBackend,
    MusicCue,
    ScorePart,
    score_parts,
)
from storyflow.catalog import AUDIO, Generations
from storyflow.core import progress
from storyflow.core.hashing import cache_key
from storyflow.core.models import AudioTrack, ClipChain, Shot, Storyboard, Transition
from storyflow.core.timeline import Timeline
from storyflow.media import AUDIO_SAMPLE_RATE, read_wav, wav_writer, write_wav
from storyflow.media.sound import Tap

if TYPE_CHECKING:
    import numpy as np


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
    """Compose (or reuse) the music bed for the whole film: each cue made once and kept on its own
    (a changed mood re-composes that cue alone), then the cues laid into the bed window by window."""
    door = door or Generations.in_memory()
    parts = score_parts(music_cues(board, timeline), timeline.seconds, sample_rate, backend.crossfade_s)
    cue_tracks = [_score_cue(part, backend, board.seed, sample_rate, out_dir, door) for part in parts]
    key = cache_key(
        "music", **backend.identity(), cues=[track.cache_key for track in cue_tracks],
        placements=[(p.start, p.stop, p.fade, p.fade_in, p.fade_out) for p in parts],
        seconds=round(timeline.seconds, 4), seed=board.seed, sample_rate=sample_rate,
    )  # fmt: skip

    def make() -> AudioTrack:
        started = time.perf_counter()

        def laid() -> Iterator[tuple[int, np.ndarray]]:
            for part, track in zip(parts, cue_tracks):
                samples, _ = read_wav(track.path)
                yield part.start, samples[: part.stop - part.start] * part.envelope()[:, None]

        path = track_path("music", key, out_dir)
        digest = lay_down(path, laid(), round(timeline.seconds * sample_rate), sample_rate)
        return track_of("music", path, key, backend, started, sha256=digest)

    track = door.reuse_or_make(AUDIO, key, make, tally="music")
    progress.report("audio", kind="music", reused=track.reused)
    return track


def _score_cue(part: ScorePart, backend: MusicBackend, seed: int, sample_rate: int, out_dir: Path,
               door: Generations) -> AudioTrack:  # fmt: skip
    """One cue's music (or the same cue made before: same backend, mood, span and seed)."""
    cue = part.cue
    key = cache_key("music-cue", **backend.identity(), mood=cue.mood, shot=cue.shot_id, samples=part.stop - part.start,
                    seed=seed, sample_rate=sample_rate)  # fmt: skip

    def make() -> AudioTrack:
        started = time.perf_counter()
        samples = backend.compose_cue(cue, seed, sample_rate)
        return save_track("music", samples, sample_rate, key, out_dir, backend, started, name=cue.shot_id or "cue")

    return door.reuse_or_make(AUDIO, key, make, tally="music cue")


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
    board: Storyboard,
    timeline: Timeline,
    shots: dict[str, AudioTrack],
    out_dir: Path,
    door: Generations | None = None,
    tap: Tap | None = None,
) -> AudioTrack:
    """The shots' effects on the film's timeline: equal-power crossfades where pictures overlap,
    fades where the picture dips to black, silence under the title card (`tap`: see lay_down)."""
    key = cache_key(
        "effects-bed", shots=[shots[s.id].sha256 for s in board.shots],
        placements=[(p.start, p.frames, p.overlap_in, p.overlap_out, p.fade_in, p.fade_out) for p in timeline.placements],
        fps=timeline.fps, total=timeline.total_frames,
    )  # fmt: skip

    def make() -> AudioTrack:
        started = time.perf_counter()
        rate = next(iter(shots.values())).sample_rate

        def laid() -> Iterator[tuple[int, np.ndarray]]:
            for place in timeline.placements:
                samples, _ = read_wav(shots[place.shot_id].path)
                yield round(place.start / timeline.fps * rate), samples * _envelope(len(samples), place, timeline.fps,
                                                                                   rate)[:, None]  # fmt: skip

        path = track_path("effects", key, out_dir)
        digest = lay_down(path, laid(), round(timeline.seconds * rate), rate, tap)
        return track_of("effects", path, key, TIMELINE, started, sha256=digest)

    return (door or Generations.in_memory()).reuse_or_make(AUDIO, key, make, tally="effects bed")


def lay_down(path: Path, parts: Iterable[tuple[int, np.ndarray]], total: int, sample_rate: int,
             tap: Tap | None = None) -> str:  # fmt: skip
    """Write a stereo WAV of `total` samples: each (start sample, samples) part added at its place, silence
    between; returns the file's sha256. Parts come in order of start; only the parts still overlapping the
    one being laid are held, so a film-length bed costs a shot's memory, not the film's. `tap` sees the
    file's 16-bit samples as they are written (wav_writer)."""
    import numpy as np

    with wav_writer(path, 2, sample_rate, frames=total, tap=tap) as out:
        held = np.zeros((0, 2), dtype=np.float32)  # samples [out.frames, out.frames + len(held)), not final yet

        def flush(until: int) -> np.ndarray:
            """Write everything before sample `until` (no later part reaches it); return what stays held."""
            until = min(until, total)
            final = max(0, until - out.frames)
            out.write(held[:final])
            while out.frames < until:  # silence past what was held, in bounded steps
                out.write(np.zeros((min(1 << 16, until - out.frames), 2), dtype=np.float32))
            return held[final:]

        for start, samples in parts:
            if start < out.frames:
                raise ValueError(f"parts must come in order of start: {start} after {out.frames} was written")
            held = flush(start)
            samples = samples[: max(0, total - start)]
            offset = start - out.frames
            if offset + len(samples) > len(held):
                held = np.concatenate([held, np.zeros((offset + len(samples) - len(held), 2), dtype=np.float32)])
            held[offset : offset + len(samples)] += samples
        flush(total)
    return out.sha256


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
    path = track_path(kind, key, out_dir, name)
    return track_of(kind, path, key, maker, started, sha256=write_wav(path, samples, sample_rate))


def track_path(kind: str, key: str, out_dir: Path, name: str = "") -> Path:
    """Where a track of this kind and cache key lives: out_dir/audio/<kind>[-<name>]-<key12>.wav."""
    return out_dir / "audio" / f"{kind}{'-' + name if name else ''}-{key[:12]}.wav"


def track_of(kind: str, path: Path, key: str, maker: Backend | Maker, started: float, sha256: str) -> AudioTrack:
    """Describe a finished WAV (written whole or window by window) as an AudioTrack; `sha256` is the file's,
    as its writer gives it (WavOut.sha256)."""
    from storyflow.media import open_wav

    with open_wav(path) as wav:
        frames, sample_rate = wav.frames, wav.rate
    return AudioTrack(
        kind=kind,
        path=path.resolve(),
        sha256=sha256,
        cache_key=key,
        seconds=frames / sample_rate,
        sample_rate=sample_rate,
        backend=maker.label,
        model=maker.model_ref,
        options=maker.options_dict(),
        wall_s=time.perf_counter() - started,
    )
