"""Clips + the sound mix -> the film: planned transitions, title card, subtitles, stills.

Two strategies, both frame-exact against `storyflow.core.timeline.film_timeline`:

- "smart" (default) re-encodes only the frames a transition or the title card touches and
  joins everything else by stream copy (ffmpeg's concat demuxer with `-c copy`). Every clip
  is H.264 from the one encoder in `storyflow.media`, with a keyframe every half second and
  closed GOPs, so a clip can be cut at any keyframe and a re-encoded piece slots in beside
  copied ones. A cut-only film is copied entirely.
- "moviepy" composes the whole film in moviepy and re-encodes every frame: the obvious
  alternative, kept for comparison and as a fallback.

Before either, every clip is checked (size, fps, codec, encoder settings, frame count); a
clip that does not match is re-encoded to match, with a warning — never silently.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow import media
from storyflow.core.errors import InputError, MediaError
from storyflow.core.models import ClipChain, Film, Storyboard
from storyflow.core.timeline import Placement, Timeline, film_timeline

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("storyflow.stages.stitch")

STRATEGIES = ("smart", "moviepy")

# x264 pieces of one or two frames carry no B-frame delay, so their timestamps would not
# line up with the pieces around them in a stream copy: re-encoded pieces are never shorter.
MIN_PIECE_FRAMES = 3

# Transition pieces rendered at once.
RENDER_WORKERS = max(1, min(4, (os.cpu_count() or 1)))


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class ClipSource:
    """A clip ready to be cut: its file (original or normalised), length and keyframes."""

    path: Path
    frames: int
    keyframes: tuple[int, ...]  # frame indices where a stream copy may start


@dataclass(frozen=True)
class CopyRun:
    """Frames [first, stop) of one clip file, joined by stream copy."""

    path: Path
    first: int
    stop: int
    whole_file: bool

    @property
    def frames(self) -> int:
        return self.stop - self.first


@dataclass(frozen=True)
class RenderRun:
    """Film frames [start, stop), decoded, composed with numpy and re-encoded."""

    start: int
    stop: int
    title: bool = False  # the title card (drawn with moviepy)

    @property
    def frames(self) -> int:
        return self.stop - self.start


Run = CopyRun | RenderRun


def _cut_points(sources: list[ClipSource]) -> list[int]:
    """Shot-local frames where a stream copy may start or stop: keyframes and clip ends."""
    points = set()
    offset = 0
    for source in sources:
        if source.frames >= MIN_PIECE_FRAMES:  # a shorter clip could not be copied on its own
            points.update(offset + k for k in source.keyframes)
        offset += source.frames
    points.add(offset)
    return sorted(points)


@dataclass
class _Span:
    """Shot-local frames [a, b) of one shot that will be stream-copied."""

    placement: Placement
    cuts: list[int]
    a: int
    b: int

    @property
    def film_start(self) -> int:
        return self.placement.start + self.a

    @property
    def film_stop(self) -> int:
        return self.placement.start + self.b


def _copy_spans(placement: Placement, sources: list[ClipSource]) -> list[_Span]:
    """The parts of a shot no transition touches, narrowed to cut points.

    Frames that must be re-encoded: the head and tail a transition touches, and any clip
    too short to be copied on its own.
    """
    cuts = _cut_points(sources)
    head = max(placement.overlap_in, placement.fade_in)
    tail = max(placement.overlap_out, placement.fade_out)
    holes = [(0, head), (placement.frames - tail, placement.frames)]
    offset = 0
    for source in sources:
        if source.frames < MIN_PIECE_FRAMES:
            holes.append((offset, offset + source.frames))
        offset += source.frames
    holes.sort()
    spans = []
    for (_, lo), (hi, _) in zip(holes, holes[1:]):
        a = min((c for c in cuts if c >= lo), default=placement.frames)
        b = max((c for c in cuts if c <= hi), default=0)
        if a < b:
            spans.append(_Span(placement, cuts, a, b))
    return spans


def plan_smart(timeline: Timeline, sources: dict[str, list[ClipSource]]) -> list[Run]:
    """Split the film into stream-copied clip runs and re-encoded pieces, in film order."""
    # 1. what can be copied, in film order, on keyframe boundaries
    spans = [span for p in timeline.placements for span in _copy_spans(p, sources[p.shot_id])]

    # 2. re-encoded pieces must not be shorter than MIN_PIECE_FRAMES: widen a short piece
    #    into a neighbouring copy span, one cut point at a time, until it is long enough
    while True:
        edges = [timeline.title_frames, *(x for s in spans for x in (s.film_start, s.film_stop))]
        edges.append(timeline.total_frames)
        gaps = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]  # gap i: before span i
        short = next((i for i, (lo, hi) in enumerate(gaps) if 0 < hi - lo < MIN_PIECE_FRAMES), None)
        if short is None:
            break
        if short < len(spans):  # move the next span's start to its next cut point
            span = spans[short]
            span.a = min((c for c in span.cuts if c > span.a), default=span.b)
        elif spans:  # the film's last piece: move the last span's end back
            span = spans[-1]
            span.b = max((c for c in span.cuts if c < span.b), default=span.a)
        else:
            break  # no span to widen into: the film is one piece
        spans = [s for s in spans if s.a < s.b]

    # 3. runs in film order: the title card, then pieces and copied runs alternately
    runs: list[Run] = []
    if timeline.title_frames:
        runs.append(RenderRun(0, timeline.title_frames, title=True))
    cursor = timeline.title_frames
    for span in spans:
        if span.film_start > cursor:
            runs.append(RenderRun(cursor, span.film_start))
        runs.extend(_copy_runs(sources[span.placement.shot_id], span.a, span.b))
        cursor = span.film_stop
    if cursor < timeline.total_frames:
        runs.append(RenderRun(cursor, timeline.total_frames))
    return runs


def _copy_runs(sources: list[ClipSource], a: int, b: int) -> list[CopyRun]:
    """Shot-local frames [a, b) as one copy run per clip they cross."""
    runs, offset = [], 0
    for source in sources:
        first, stop = max(a, offset) - offset, min(b, offset + source.frames) - offset
        if first < stop:
            whole = first == 0 and stop == source.frames
            runs.append(CopyRun(source.path, first, stop, whole))
        offset += source.frames
    return runs


# ---------------------------------------------------------------- composing frames


def _fade_gain(p: Placement, local: int) -> float:
    """Brightness of shot-local frame `local`: rising from black, falling to black."""
    gain = 1.0
    if p.fade_in and local < p.fade_in:
        gain *= local / p.fade_in
    if p.fade_out and local >= p.frames - p.fade_out:
        gain *= (p.frames - 1 - local) / p.fade_out
    return gain


def _shot_frames(sources: list[ClipSource], first: int, stop: int) -> Iterator[np.ndarray]:
    """Decode shot-local frames [first, stop) across the shot's clips."""
    offset = 0
    for source in sources:
        lo, hi = max(first, offset) - offset, min(stop, offset + source.frames) - offset
        if lo < hi:
            yield from media.decode_range(source.path, lo, hi - lo)
        offset += source.frames


def compose_frames(
    timeline: Timeline,
    sources: dict[str, list[ClipSource]],
    start: int,
    stop: int,
    width: int,
    height: int,
) -> Iterator[np.ndarray]:
    """Film frames [start, stop) after the title: shots with fades and crossfades applied."""
    import numpy as np

    involved = [p for p in timeline.placements if p.start < stop and p.end > start]
    streams = {
        p.shot_id: _shot_frames(
            sources[p.shot_id], max(0, start - p.start), min(p.frames, stop - p.start)
        )
        for p in involved
    }
    for f in range(start, stop):
        layers = []
        for p in involved:
            if p.start <= f < p.end:
                frame = next(streams[p.shot_id], None)
                if frame is None:
                    raise MediaError(
                        f"shot {p.shot_id} has fewer frames than its clips declare",
                        fix="delete the shot's clips and rerun so they are generated again",
                    )
                layers.append((p, frame.astype(np.float32) * _fade_gain(p, f - p.start)))
        if not layers:
            yield np.zeros((height, width, 3), np.uint8)
            continue
        if len(layers) == 1:
            picture = layers[0][1]
        else:  # a crossfade: the incoming shot's weight rises linearly over the overlap
            (_, outgoing), (incoming_p, incoming) = layers[0], layers[1]
            alpha = (f - incoming_p.start + 1) / (incoming_p.overlap_in + 1)
            picture = outgoing * (1 - alpha) + incoming * alpha
        yield np.clip(np.rint(picture), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- checking clips


@dataclass(frozen=True)
class _Signature:
    extradata: bytes  # SPS/PPS: equal bytes mean the same encoder settings
    delay: int  # first packet's pts - dts in frames (the B-frame delay)


def _signature(path: Path, fps: int) -> _Signature:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        ticks = 1 / (fps * float(stream.time_base))
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None and packet.dts is not None:
                return _Signature(extradata, round((packet.pts - packet.dts) / ticks))
    return _Signature(extradata, 0)


def _reference_signature(board: Storyboard, folder: Path) -> _Signature:
    """What the project's one encoder writes at the board's size and fps."""
    import numpy as np

    path = folder / "reference.mp4"
    black = np.zeros((board.height, board.width, 3), np.uint8)
    media.write_video(path, [black] * MIN_PIECE_FRAMES, board.width, board.height, board.fps)
    signature = _signature(path, board.fps)
    path.unlink()
    return signature


def _normalise(path: Path, frames: int, source_frames: int, board: Storyboard, out: Path) -> None:
    """Re-encode a clip at the board's size and fps with exactly `frames` frames."""

    def resampled() -> Iterator[np.ndarray]:
        # Frame i of the output shows the source frame at the same relative time.
        wanted = [min(source_frames - 1, i * source_frames // frames) for i in range(frames)]
        cursor = 0
        last = None
        for index, frame in enumerate(media.read_frames(path)):
            last = media.fit_frame(frame, board.width, board.height)
            while cursor < frames and wanted[cursor] == index:
                yield last
                cursor += 1
        while last is not None and cursor < frames:  # the file was shorter than it said
            yield last
            cursor += 1

    written = media.write_video(out, resampled(), board.width, board.height, board.fps)
    if written != frames:
        raise MediaError(f"could not normalise {path}", fix="delete the clip and rerun")


def prepare_clips(
    board: Storyboard,
    chains: dict[str, ClipChain],
    folder: Path,
    reference: _Signature | None = None,
) -> tuple[dict[str, list[ClipSource]], int]:
    """Check every clip; re-encode (with a warning) any that would not join cleanly.

    Returns the clips to use per shot and how many had to be normalised.
    """
    sources: dict[str, list[ClipSource]] = {}
    normalised = 0
    for shot in board.shots:
        chain = chains.get(shot.id)
        if chain is None or not chain.clips:
            raise MediaError(
                f"shot {shot.id} has no clips to stitch",
                fix="generate the shot first: rerun `storyflow film` on the story",
            )
        sources[shot.id] = []
        for clip in chain.clips:
            path = Path(clip.path)
            if not path.is_file():
                raise MediaError(
                    f"clip {path} of shot {shot.id} is missing",
                    fix="rerun `storyflow film` to generate the clip again, or restore the file",
                )
            info = media.probe(path)
            problems = []
            if (info.width, info.height) != (board.width, board.height):
                problems.append(
                    f"size {info.width}x{info.height}, not {board.width}x{board.height}"
                )
            if abs(info.fps - board.fps) > 0.01:
                problems.append(f"{info.fps:g} fps, not {board.fps}")
            if info.video_codec != "h264":
                problems.append(f"codec {info.video_codec}, not h264")
            if info.num_frames != clip.num_frames:
                problems.append(f"{info.num_frames} frames, not the {clip.num_frames} recorded")
            if not problems and reference is not None and info.num_frames >= MIN_PIECE_FRAMES:
                signature = _signature(path, board.fps)
                if signature != reference:
                    problems.append("H.264 settings differ from storyflow's encoder")
            if problems:
                out = folder / f"normalised-{shot.id}-{clip.segment:03d}.mp4"
                log.warning(
                    "clip %s of shot %s: %s; re-encoding it to match the film",
                    path,
                    shot.id,
                    "; ".join(problems),
                )
                _normalise(path, clip.num_frames, info.num_frames, board, out)
                info = media.probe(out)
                path = out
                normalised += 1
            sources[shot.id].append(ClipSource(path, info.num_frames, info.keyframes))
    return sources, normalised


# ---------------------------------------------------------------- writing pieces


def _ffmpeg_params_without(args: list[str], drop: set[str]) -> list[str]:
    """`args` minus the named options and their values."""
    kept, i = [], 0
    while i < len(args):
        if args[i] in drop:
            i += 2
            continue
        kept.append(args[i])
        i += 1
    return kept


def _write_title_piece(board: Storyboard, timeline: Timeline, path: Path) -> None:
    """The title card through moviepy: the title on dark, fading out to black."""
    from moviepy import ImageClip, vfx

    from storyflow.stages.stills import title_card_frame

    fps, frames = board.fps, timeline.title_frames
    card = ImageClip(title_card_frame(board)).with_duration(frames / fps)
    if timeline.title_fade:
        card = card.with_effects([vfx.FadeOut(timeline.title_fade / fps)])
    # moviepy writes int(duration * fps) frames; a hair more than `frames` periods keeps
    # float rounding from dropping the last one.
    card = card.with_duration((frames + 1e-6) / fps)
    # Same encoder settings as every clip (codec and preset passed by name, since moviepy
    # sets them itself), so the piece joins the copied clips by stream copy.
    params = _ffmpeg_params_without(media.h264_args(fps), {"-c:v", "-preset", "-pix_fmt"})
    card.write_videofile(
        str(path), fps=fps, codec="libx264", preset="veryfast", audio=False, logger=None,
        ffmpeg_params=[*params, "-pix_fmt", "yuv420p"],
    )  # fmt: skip
    card.close()


def _write_title_numpy(board: Storyboard, timeline: Timeline, path: Path) -> None:
    """The same title card drawn frame by frame and encoded with storyflow's own writer."""
    import numpy as np

    from storyflow.stages.stills import title_card_frame

    card = title_card_frame(board).astype(np.float32)
    n, fade = timeline.title_frames, timeline.title_fade
    frames = (
        np.clip(np.rint(card * min(1.0, (n - i) / fade if fade else 1.0)), 0, 255).astype(np.uint8)
        for i in range(n)
    )
    media.write_video(path, frames, board.width, board.height, board.fps)


def _copy_segment(run: CopyRun, fps: int, out: Path) -> None:
    """Frames [first, stop) of a clip into their own file, packet for packet (no decoding).

    Both ends are keyframes (or the clip's end) and GOPs are closed, so the packets of
    those frames are exactly the ones from the first keyframe's up to the stop keyframe's.
    """
    import av

    taken = 0
    with av.open(str(run.path)) as src, av.open(str(out), "w", format="mp4") as dst:
        stream = src.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        ticks = 1 / (fps * float(stream.time_base))
        origin = None  # pts of frame 0
        offset = None  # pts of frame `first`
        for packet in src.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            if origin is None:
                origin = packet.pts
            index = round((packet.pts - origin) / ticks)
            if packet.is_keyframe and index == run.first:
                offset = packet.pts
            elif packet.is_keyframe and index >= run.stop:
                break
            if offset is None:
                continue
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = copy
            dst.mux(packet)
            taken += 1
    if taken != run.frames:
        raise MediaError(
            f"could not cut frames {run.first}-{run.stop} out of {run.path} by stream copy "
            f"({taken} frames came out)",
            fix="stitch with --stitch moviepy (re-encodes everything)",
        )


def _concat_listing(files: list[tuple[Path, int]], fps: int) -> str:
    """An ffconcat listing that states every file's exact length.

    Left to itself the concat demuxer starts each file where the one before ends by that
    file's container duration, which the mp4 muxer writes into the edit list in
    milliseconds and sometimes rounds down (583 ms for 14 frames at 24 fps): the next
    file would start a third of a millisecond early. The lengths are counted in frames,
    so they are stated instead, as differences of cumulative microsecond times so that
    the rounding never adds up.
    """
    lines = ["ffconcat version 1.0"]
    frames_done, start_us = 0, 0
    for path, frames in files:
        frames_done += frames
        stop_us = (frames_done * 2_000_000 + fps) // (2 * fps)  # rounded to nearest
        length_us = stop_us - start_us
        escaped = str(path.resolve()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
        lines.append(f"duration {length_us // 1_000_000}.{length_us % 1_000_000:06d}")
        start_us = stop_us
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Joined:
    copied_runs: int
    pieces: int
    frames_reencoded: int
    title_renderer: str


def _join_smart(
    board: Storyboard,
    timeline: Timeline,
    sources: dict[str, list[ClipSource]],
    reference: _Signature,
    sound: Future[Path],
    folder: Path,
    out: Path,
) -> _Joined:
    """Write pieces and copy segments into `folder`, then concat them with the sound into `out`."""
    runs = plan_smart(timeline, sources)
    files: list[tuple[Path, int]] = []  # each file to join and its length in frames
    renders: list[Future[str]] = []

    def render(run: RenderRun, piece: Path) -> str:
        if run.title:
            return _title_piece(board, timeline, reference, piece)
        frames = compose_frames(timeline, sources, run.start, run.stop, board.width, board.height)
        media.write_video(piece, frames, board.width, board.height, board.fps)
        return "numpy"

    # Pieces are independent: a few render at once (decoding, numpy and x264 all release
    # the GIL), while copy segments are cut in this thread.
    with ThreadPoolExecutor(max_workers=RENDER_WORKERS) as pool:
        for number, run in enumerate(runs):
            if isinstance(run, RenderRun):
                piece = folder / f"{number:04d}-{'title' if run.title else 'piece'}.mp4"
                renders.append(pool.submit(render, run, piece))
                files.append((piece, run.frames))
            elif run.whole_file:
                files.append((run.path, run.frames))
            else:
                segment = folder / f"{number:04d}-copy.mp4"
                _copy_segment(run, board.fps, segment)
                files.append((segment, run.frames))
        renderers = [future.result() for future in renders]

    pieces = [r for r in runs if isinstance(r, RenderRun)]
    copied = len(runs) - len(pieces)
    reencoded = sum(r.frames for r in pieces)
    title_renderer = renderers[0] if pieces and pieces[0].title else ""
    listing = folder / "concat.txt"
    listing.write_text(_concat_listing(files, board.fps))
    media.run_ffmpeg(
        [
            "-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(sound.result()),
            "-map", "0:v:0", "-map", "1:a:0", "-c", "copy",
            "-movflags", "+faststart", "-f", "mp4", str(out),
        ],
        "joining the clips by stream copy",
    )  # fmt: skip
    return _Joined(copied, len(pieces), reencoded, title_renderer)


def _title_piece(board: Storyboard, timeline: Timeline, reference: _Signature, path: Path) -> str:
    """Write the title card piece with moviepy; fall back to numpy if it would not join."""
    _write_title_piece(board, timeline, path)
    info = media.probe(path)
    if info.num_frames == timeline.title_frames and _signature(path, board.fps) == reference:
        return "moviepy"
    log.warning(
        "moviepy's title card (%d frames) does not match the clips' encoding; "
        "drawing it with storyflow's own encoder instead",
        info.num_frames,
    )
    path.unlink(missing_ok=True)
    _write_title_numpy(board, timeline, path)
    return "numpy"


def _encode_sound(audio_wav: Path, timeline: Timeline, out: Path) -> Path:
    """The mix as AAC, padded with silence or cut to exactly the film's length."""
    seconds = f"{timeline.total_frames / timeline.fps:.6f}"
    media.run_ffmpeg(
        [
            "-i", str(audio_wav), "-map", "0:a:0", "-vn",
            "-af", f"apad=whole_dur={seconds},atrim=end={seconds}",
            "-c:a", "aac", "-b:a", "192k", "-f", "mp4", str(out),
        ],
        "encoding the sound mix",
    )  # fmt: skip
    return out


# ---------------------------------------------------------------- moviepy


def _join_moviepy(
    board: Storyboard,
    timeline: Timeline,
    sources: dict[str, list[ClipSource]],
    audio_wav: Path,
    folder: Path,
    out: Path,
) -> None:
    """Compose the whole film in moviepy and write it in one re-encode."""
    from moviepy import (
        AudioFileClip,
        CompositeVideoClip,
        ImageClip,
        VideoFileClip,
        concatenate_videoclips,
        vfx,
    )

    from storyflow.stages.stills import title_card_frame

    fps = board.fps
    # moviepy asks for frame i at t = i / fps. Every layer starts a quarter frame early, so
    # each request lands inside a frame period, never on a boundary where float rounding
    # would pick the neighbouring frame or clip.
    early = 0.25 / fps
    opened = []
    layers = []
    try:
        # 1. the title card, fading out
        if timeline.title_frames:
            card = ImageClip(title_card_frame(board)).with_duration(timeline.title_frames / fps)
            if timeline.title_fade:
                card = card.with_effects([vfx.FadeOut(timeline.title_fade / fps)])
            layers.append(card.with_start(-early))
        # 2. each shot: its clips end to end, its fades, a crossfade in over the previous shot
        for placement in timeline.placements:
            parts = []
            for source in sources[placement.shot_id]:
                clip = VideoFileClip(str(source.path), audio=False)
                opened.append(clip)
                parts.append(clip.with_duration(source.frames / fps))
            shot = parts[0] if len(parts) == 1 else concatenate_videoclips(parts)
            effects = []
            if placement.fade_in:
                effects.append(vfx.FadeIn(placement.fade_in / fps))
            if placement.fade_out:
                effects.append(vfx.FadeOut(placement.fade_out / fps))
            if placement.overlap_in:
                effects.append(vfx.CrossFadeIn(placement.overlap_in / fps))
            layers.append(shot.with_effects(effects).with_start(placement.start / fps - early))
        # 3. layered in film order (later shots on top), with the mix as the sound
        sound = AudioFileClip(str(audio_wav))
        opened.append(sound)
        seconds = timeline.total_frames / fps
        film = CompositeVideoClip(layers, size=(board.width, board.height), bg_color=(0, 0, 0))
        film = film.with_duration((timeline.total_frames + 1e-6) / fps)
        film = film.with_audio(sound.with_duration(min(sound.duration, seconds)))
        params = _ffmpeg_params_without(media.h264_args(fps), {"-c:v", "-preset", "-pix_fmt"})
        film.write_videofile(
            str(out), fps=fps, codec="libx264", preset="veryfast", audio_codec="aac",
            audio_bitrate="192k", audio_fps=media.AUDIO_SAMPLE_RATE,
            temp_audiofile_path=str(folder), logger=None,
            ffmpeg_params=[*params, "-pix_fmt", "yuv420p", "-movflags", "+faststart"],
        )  # fmt: skip
    finally:
        for clip in opened:
            clip.close()


# ---------------------------------------------------------------- the stage


def stitch_film(
    board: Storyboard,
    chains: dict[str, ClipChain],
    audio_wav: Path,
    out_dir: Path,
    *,
    strategy: str = "smart",
    storyboard_json: Path,
    cues: list | None = None,
    burn_subtitles: bool = False,
) -> Film:
    """Join the shots into out_dir/<slug>.mp4 and write its subtitles, poster and contact sheet.

    `cues`: subtitles timed by the spoken narration (subtitles.speech_cues); without them
    each shot's narration is timed to the shot. `burn_subtitles` also draws them into the
    picture, which re-encodes every frame.
    """
    from storyflow.stages import subtitles

    began = time.perf_counter()

    # 1. check inputs
    if strategy not in STRATEGIES:
        raise InputError(
            f"unknown stitch strategy {strategy!r}",
            fix=f"use one of: {', '.join(STRATEGIES)} (STORYFLOW_STITCH or --stitch)",
        )
    audio_wav = Path(audio_wav)
    if not audio_wav.is_file():
        raise MediaError(
            f"the sound mix {audio_wav} is missing", fix="rerun `storyflow film` to make it again"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{board.slug}.mp4"
    beside = {  # the files next to the film
        "subtitles": out_dir / f"{board.slug}.srt",
        "poster": out_dir / f"{board.slug}.poster.png",
        "contact_sheet": out_dir / f"{board.slug}.contact-sheet.png",
    }

    # 2. where every shot lands, from the clips' real lengths
    timeline = film_timeline(board, {sid: chain.num_frames for sid, chain in chains.items()})
    _check_sound_length(audio_wav, timeline)

    # 3. everything is made in a scratch folder inside out_dir, removed afterwards
    folder = Path(tempfile.mkdtemp(prefix=".stitch-", dir=out_dir))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # 3a. the sound encodes (one ffmpeg process) while the picture is prepared
            sound = (
                pool.submit(_encode_sound, audio_wav, timeline, folder / "sound.m4a")
                if strategy == "smart"
                else None
            )
            reference = _reference_signature(board, folder) if strategy == "smart" else None
            sources, normalised = prepare_clips(board, chains, folder, reference)

            # 3b. subtitles, poster and contact sheet (moved into place with the film)
            made = {
                "subtitles": subtitles.write_cues(
                    cues if cues is not None else subtitles.narration_cues(board, timeline),
                    folder / beside["subtitles"].name,
                ),
                **_write_stills(board, timeline, chains, folder, beside),
            }

            # 3c. the film, verified before it takes its final name
            with media.atomic_path(final) as partial:
                if strategy == "smart":
                    assert reference is not None and sound is not None
                    joined = _join_smart(
                        board, timeline, sources, reference, sound, folder, partial
                    )
                    how = (
                        f"smart: {joined.copied_runs} clip segments stream-copied, "
                        f"{joined.pieces} pieces re-encoded "
                        f"({joined.frames_reencoded} of {timeline.total_frames} frames, "
                        f"{joined.frames_reencoded / board.fps:.1f} s)"
                    )
                    if joined.title_renderer:
                        how += f", title card drawn with {joined.title_renderer}"
                else:
                    _join_moviepy(board, timeline, sources, audio_wav, folder, partial)
                    how = (
                        f"moviepy: all {timeline.total_frames} frames re-encoded "
                        f"({timeline.seconds:.1f} s)"
                    )
                if normalised:
                    how += f"; {normalised} clip(s) normalised"
                if burn_subtitles:
                    _burn_subtitles(partial, subtitles.parse_srt(made["subtitles"]), board, folder)
                    how += "; subtitles burned in (every frame re-encoded)"
                info = _verify(partial, board, timeline, strategy)
        for name, path in made.items():
            media.commit_partial(path, beside[name])
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    wall = time.perf_counter() - began
    log.info("stitched %s in %.1f s (%s)", final.name, wall, how)
    return Film(
        slug=board.slug, path=final, sha256=media.sha256_file(final), subtitles=beside["subtitles"],
        poster=beside["poster"], contact_sheet=beside["contact_sheet"],
        storyboard_json=Path(storyboard_json), num_frames=info.num_frames, fps=board.fps,
        width=info.width, height=info.height, stitch_strategy=how, wall_s=wall,
    )  # fmt: skip


def _burn_subtitles(film: Path, cues: list[tuple[float, float, str]], board: Storyboard, folder: Path) -> None:
    """Draw the cues into every frame of `film` (replaced in place), keeping its sound as is."""
    from storyflow.stages import stills

    picture = folder / "burned-picture.mp4"

    def frames() -> Iterator[np.ndarray]:
        for index, frame in enumerate(media.read_frames(film)):
            t = (index + 0.5) / board.fps
            text = next((text for start, end, text in cues if start <= t < end), None)
            yield stills.draw_subtitle(frame, text) if text else frame

    media.write_video(picture, frames(), board.width, board.height, board.fps)
    burned = folder / "burned.mp4"
    media.run_ffmpeg(
        ["-i", str(picture), "-i", str(film), "-map", "0:v", "-map", "1:a", "-c", "copy",
         "-movflags", "+faststart", str(burned)],
        "burning in the subtitles",
    )  # fmt: skip
    os.replace(burned, film)


def _write_stills(
    board: Storyboard,
    timeline: Timeline,
    chains: dict[str, ClipChain],
    folder: Path,
    beside: dict[str, Path],
) -> dict[str, Path]:
    """Poster and contact sheet into `folder`, from each shot's middle frame (decoded as each is drawn)."""
    from storyflow.stages import stills

    middles = stills.middle_frames(board, chains)
    return {
        "poster": stills.write_poster(
            board, timeline, chains, folder / beside["poster"].name, frames=middles
        ),
        "contact_sheet": stills.write_contact_sheet(
            board, chains, folder / beside["contact_sheet"].name, frames=middles
        ),
    }


def _check_sound_length(audio_wav: Path, timeline: Timeline) -> None:
    """Warn when the mix is not as long as the picture (it is padded or cut to fit)."""
    import wave

    try:
        with wave.open(str(audio_wav), "rb") as wav:
            seconds = wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError):
        return  # not 16-bit PCM; ffmpeg still reads it, and pads or cuts it to fit
    if abs(seconds - timeline.seconds) > 1 / timeline.fps:
        log.warning(
            "the sound mix lasts %.3f s but the picture %.3f s; the sound is %s to fit",
            seconds,
            timeline.seconds,
            "cut" if seconds > timeline.seconds else "padded with silence",
        )


def _verify(path: Path, board: Storyboard, timeline: Timeline, strategy: str) -> media.MediaInfo:
    """The written film must have the planned length, size and an audio stream."""
    info = media.probe(path)
    problems = []
    if info.num_frames != timeline.total_frames:
        problems.append(f"{info.num_frames} frames instead of {timeline.total_frames}")
    if (info.width, info.height) != (board.width, board.height):
        problems.append(f"size {info.width}x{info.height} instead of {board.width}x{board.height}")
    if info.audio_codec is None:
        problems.append("no audio stream")
    if problems:
        other = "moviepy" if strategy == "smart" else "smart"
        raise MediaError(
            f"the stitched film came out wrong ({'; '.join(problems)})",
            fix=f"rerun with --debug, or stitch with --stitch {other}",
        )
    return info
