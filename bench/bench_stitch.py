"""Stitching speed: storyflow's smart stitch against moviepy and raw ffmpeg concat.

The same 10 clips (4 s each, 640x360 at 24 fps, written once with storyflow's encoder)
are joined by: raw `ffmpeg -f concat -c copy` (the floor), the smart stitch with cuts only,
with crossfades, with crossfades and a title card, and the moviepy full re-encode.
The stitch rows include everything stitch_film does: checking clips, muxing AAC audio,
subtitles, poster and contact sheet.

    .venv/bin/python -m bench stitch
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from bench.common import best_of, print_table, save_results, timer

CLIPS, SECONDS, WIDTH, HEIGHT, FPS = 10, 4, 640, 360, 24


def _frames(index: int, n: int):
    """A gradient in the clip's own hue with a moving bar and some texture to encode."""
    import numpy as np

    rng = np.random.default_rng(index)
    ramp = np.linspace(0.35, 1.0, WIDTH, dtype=np.float32)[None, :, None]
    hue = rng.uniform(60, 230, size=3).astype(np.float32)
    base = (ramp * hue).repeat(HEIGHT, axis=0)
    texture = rng.normal(0, 6, size=(HEIGHT, WIDTH, 3)).astype(np.float32)
    for i in range(n):
        frame = base + np.roll(texture, i * 3, axis=1)
        x = (i * 9) % (WIDTH - 40)
        frame[:, x : x + 40] = 240
        yield np.clip(frame, 0, 255).astype(np.uint8)


def _make_inputs(folder: Path):
    """Clips, a storyboard per transition style, and a sine mix for each film length."""

    from storyflow import media
    from storyflow.core.models import (
        Clip,
        ClipChain,
        Shot,
        Storyboard,
        StyleBible,
        Transition,
    )

    n = SECONDS * FPS
    chains = {}
    for i in range(CLIPS):
        sid = f"s{i + 1:02d}"
        path = folder / f"{sid}.mp4"
        media.write_video(path, _frames(i, n), WIDTH, HEIGHT, FPS)
        clip = Clip(
            shot_id=sid,
            segment=0,
            path=path,
            sha256=media.sha256_file(path),
            cache_key=sid,
            num_frames=n,
            fps=FPS,
            width=WIDTH,
            height=HEIGHT,
            strategy="text_to_video",
            backend="bench",
            model="bench",
            seed=0,
        )
        chains[sid] = ClipChain(shot_id=sid, clips=(clip,))

    def board(transition: Transition, title_card: bool) -> Storyboard:
        shots = tuple(
            Shot(
                id=sid,
                index=i,
                beat=i,
                story_text="x",
                action=f"shot {i + 1}",
                duration=SECONDS,
                narration=f"Narration for shot {i + 1}.",
                transition=transition,
            )
            for i, sid in enumerate(chains)
        )
        return Storyboard(
            title="Bench Film",
            slug="bench-film",
            story_sha256="",
            style=StyleBible(style="x"),
            shots=shots,
            width=WIDTH,
            height=HEIGHT,
            fps=FPS,
            seed=0,
            title_card=title_card,
        )

    boards = {
        "cuts": board(Transition.CUT, False),
        "crossfades": board(Transition.CROSSFADE, False),
        "crossfades + title": board(Transition.CROSSFADE, True),
    }
    return chains, boards


def _mix(path: Path, seconds: float) -> Path:
    import numpy as np

    from storyflow import media

    t = np.arange(round(seconds * media.AUDIO_SAMPLE_RATE)) / media.AUDIO_SAMPLE_RATE
    media.write_wav(path, 0.3 * np.sin(2 * np.pi * 220 * t))
    return path


def _frames_reencoded(board, chains) -> int:
    """What the smart plan re-encodes for this board (the title card included)."""
    from storyflow import media
    from storyflow.core.timeline import film_timeline
    from storyflow.stages.stitch import ClipSource, RenderRun, plan_smart

    timeline = film_timeline(board, {sid: c.num_frames for sid, c in chains.items()})
    sources = {}
    for sid, chain in chains.items():
        sources[sid] = []
        for clip in chain.clips:
            info = media.probe(clip.path)
            sources[sid].append(ClipSource(clip.path, info.num_frames, info.keyframes))
    return sum(r.frames for r in plan_smart(timeline, sources) if isinstance(r, RenderRun))


def main() -> None:
    from storyflow import media
    from storyflow.core.timeline import film_timeline
    from storyflow.stages.stitch import stitch_film

    logging.getLogger("storyflow").setLevel(logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-stitch-") as tmp:
        folder = Path(tmp)
        with timer() as made:
            chains, boards = _make_inputs(folder)
        print(
            f"made {CLIPS} clips of {SECONDS} s at {WIDTH}x{HEIGHT} {FPS} fps in {made['s']:.1f} s"
        )

        def row(method: str, seconds: float, film_seconds: float, reencoded: int) -> None:
            rows.append(
                {
                    "method": method,
                    "seconds": round(seconds, 3),
                    "x real time": round(film_seconds / seconds, 1),
                    "frames re-encoded": reencoded,
                }
            )

        # 1. the floor: ffmpeg's concat demuxer, stream copy, no audio, nothing else
        listing = folder / "concat.txt"
        listing.write_text("".join(f"file '{c.clips[0].path}'\n" for c in chains.values()))
        raw = folder / "raw.mp4"
        concat = ["-f", "concat", "-safe", "0", "-i", str(listing)]
        seconds = best_of(
            3, lambda: media.run_ffmpeg([*concat, "-c", "copy", str(raw)], "bench concat")
        )
        film_seconds = CLIPS * SECONDS
        row("ffmpeg concat -c copy (video only)", seconds, film_seconds, 0)
        mix = _mix(folder / "mix-cuts.wav", film_seconds)
        seconds = best_of(
            3,
            lambda: media.run_ffmpeg(
                [
                    *concat,
                    "-i",
                    str(mix),
                    "-map",
                    "0:v",
                    "-map",
                    "1:a",
                    "-c:v",
                    "copy",
                    "-c:a",
                    "aac",
                    "-b:a",
                    "192k",
                    "-movflags",
                    "+faststart",
                    str(raw),
                ],
                "bench concat + audio",
            ),
        )
        row("ffmpeg concat -c copy + AAC mux", seconds, film_seconds, 0)

        # 2. storyflow: smart with cuts, crossfades, crossfades + title; then moviepy
        runs = [("smart", name, 3) for name in boards] + [
            ("moviepy", "crossfades", 1),
            ("moviepy", "cuts", 1),
        ]
        for strategy, name, repeats in runs:
            board = boards[name]
            timeline = film_timeline(board, {sid: c.num_frames for sid, c in chains.items()})
            wav = _mix(folder / f"mix-{len(rows)}.wav", timeline.seconds)
            out = folder / f"out-{strategy}-{len(rows)}"

            def run(board=board, wav=wav, out=out, strategy=strategy) -> None:
                stitch_film(
                    board, chains, wav, out, strategy=strategy, storyboard_json=folder / "sb.json"
                )

            seconds = best_of(repeats, run)
            film = media.probe(out / f"{board.slug}.mp4")
            assert film.num_frames == timeline.total_frames, (strategy, name, film.num_frames)
            reencoded = (
                _frames_reencoded(board, chains) if strategy == "smart" else timeline.total_frames
            )
            row(f"storyflow {strategy}, {name}", seconds, timeline.seconds, reencoded)

    print_table(f"stitch: {CLIPS} clips x {SECONDS} s, {WIDTH}x{HEIGHT} @ {FPS} fps", rows)
    meta = {"clips": CLIPS, "clip_seconds": SECONDS, "width": WIDTH, "height": HEIGHT, "fps": FPS}
    print(f"saved {save_results('stitch', rows, meta)}")


if __name__ == "__main__":
    main()
