"""Clips and storyboard -> the film's sound.

For now the film's sound is its score: one music cue per shot, following the shot's
mood, timed from the same timeline the stitcher uses, so the music changes exactly
where the picture cuts. The mix is written as a WAV exactly as long as the film.
Narration, effects from the picture and loudness-normalised mixing plug in here.
"""

from __future__ import annotations

import time
from pathlib import Path

from storyflow import progress
from storyflow.backends.base import MusicBackend, MusicCue
from storyflow.cache import GenerationStore, cache_key
from storyflow.media import AUDIO_SAMPLE_RATE, sha256_file, write_wav
from storyflow.models import AudioTrack, Storyboard
from storyflow.timeline import Timeline


def music_cues(board: Storyboard, timeline: Timeline) -> list[MusicCue]:
    """One cue per shot, over the part of the film where that shot is on screen.

    The title card (if any) carries the first shot's mood; a crossfade's overlap is
    split in the middle so neighbouring cues meet where the picture is half-way across.
    """
    cues = []
    fps = timeline.fps
    for i, (shot, place) in enumerate(zip(board.shots, timeline.placements)):
        start = 0 if i == 0 else place.start + place.overlap_in // 2
        end = timeline.total_frames if i == len(board.shots) - 1 else place.end - place.overlap_out // 2
        cues.append(MusicCue(start=start / fps, end=end / fps, mood=shot.mood, shot_id=shot.id))
    return cues


def score_film(
    board: Storyboard,
    timeline: Timeline,
    backend: MusicBackend,
    out_dir: Path,
    store: GenerationStore,
    sample_rate: int = AUDIO_SAMPLE_RATE,
) -> AudioTrack:
    """Compose (or reuse) the music bed for the whole film."""
    cues = music_cues(board, timeline)
    key = cache_key(
        "music",
        backend=backend.label,
        options=backend.options_dict(),
        cues=[(round(c.start, 4), round(c.end, 4), c.mood) for c in cues],
        seconds=round(timeline.seconds, 4),
        seed=board.seed,
        sample_rate=sample_rate,
    )
    found = store.find_audio(key)
    if found is not None:
        progress.report("audio", kind="music", reused=True)
        return found

    started = time.perf_counter()
    samples = backend.compose(cues, timeline.seconds, board.seed, sample_rate)
    track = _save_track("music", samples, sample_rate, key, out_dir, backend.label, backend.options_dict(), started)
    store.save_audio(track)
    progress.report("audio", kind="music", reused=False)
    return track


def mix_film(tracks: list[AudioTrack], seconds: float, out_dir: Path, store: GenerationStore) -> AudioTrack:
    """Sum the tracks into the film's mix, exactly `seconds` long, peaking at -1 dBFS at most."""
    import numpy as np

    from storyflow.media import read_wav

    key = cache_key("mix", inputs=sorted(t.sha256 for t in tracks), seconds=round(seconds, 4))
    found = store.find_audio(key)
    if found is not None:
        return found

    started = time.perf_counter()
    sample_rate = tracks[0].sample_rate
    total = round(seconds * sample_rate)
    mix = np.zeros((total, 2), dtype=np.float32)
    for track in tracks:
        samples, rate = read_wav(track.path)
        if samples.shape[1] == 1:
            samples = np.repeat(samples, 2, axis=1)
        n = min(total, len(samples))
        mix[:n] += samples[:n]
    peak = float(np.abs(mix).max()) if total else 0.0
    ceiling = 10 ** (-1 / 20)
    if peak > ceiling:
        mix *= ceiling / peak
    track = _save_track("mix", mix, sample_rate, key, out_dir, "storyflow mix", {}, started)
    store.save_audio(track)
    return track


def _save_track(
    kind: str, samples, sample_rate: int, key: str, out_dir: Path, backend: str, options: dict, started: float
) -> AudioTrack:
    """Write samples as audio/<kind>-<key>.wav and describe the file as an AudioTrack."""
    path = out_dir / "audio" / f"{kind}-{key[:12]}.wav"
    write_wav(path, samples, sample_rate)
    return AudioTrack(
        kind=kind,
        path=path.resolve(),
        sha256=sha256_file(path),
        cache_key=key,
        seconds=len(samples) / sample_rate,
        sample_rate=sample_rate,
        backend=backend,
        options=options,
        wall_s=time.perf_counter() - started,
    )
