"""How fast the animatic renders: frames/s and x real time at 640x360, render only and
render + H.264 encode (through media.VideoWriter), side by side, for several camera moves.

A second table puts the strategies that join clips beside plain text-to-video on one
12 s pan shot made of three 4 s clips: continuing forward, extending backward and closing
a loop, with what each costs (frames/s) and how visible its seams are (jump across the
seam / median step inside the clips, measured on decoded mp4s as the pipeline reads them).

    .venv/bin/python -m bench animatic
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.common import print_table, save_results, timer
from storyflow import media
from storyflow.backends.video.animatic import AnimaticBackend
from storyflow.core.models import SEAM_WARN_RATIO, CameraMove, Character, ClipRequest

WIDTH, HEIGHT, FPS = 640, 360, 24
FRAMES = 96  # one full 4 s clip
PROMPT = "Mara walks through a pine forest at dawn, light rain, wind in the trees"
CAPTION = "Mara walks through the forest as the first light breaks through the rain."
SUBJECTS = (Character(name="Mara", description="a tall woman in a red raincoat"),)
MOVES = (
    CameraMove.STATIC,
    CameraMove.PAN_LEFT,
    CameraMove.ZOOM_IN,
    CameraMove.TRACKING_SHOT,
    CameraMove.DOLLY_ZOOM,
    CameraMove.ARC_SHOT,
    CameraMove.FPV_DRONE,
)


def clip_request(move: CameraMove, prompt: str = PROMPT) -> ClipRequest:
    return ClipRequest(
        prompt=prompt, seed=1, width=WIDTH, height=HEIGHT, fps=FPS, num_frames=FRAMES,
        camera=move, subjects=SUBJECTS, caption=CAPTION,
    )  # fmt: skip


def render_only(backend: AnimaticBackend, request: ClipRequest) -> float:
    """Wall seconds to render every frame of the clip (layers drawn once, included)."""
    with timer() as t:
        for _ in backend.generate(request).frames:
            pass
    return t["s"]


def render_and_encode(backend: AnimaticBackend, request: ClipRequest, folder: Path) -> float:
    """Wall seconds to render the clip and encode it to an mp4, streaming frame by frame."""
    with timer() as t:
        media.write_video(folder / "clip.mp4", backend.generate(request).frames, WIDTH, HEIGHT, FPS)
    return t["s"]


def mp4_frames(folder: Path, name: str, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Encode to an mp4 and decode back: what the pipeline conditions the next clip on."""
    path = folder / f"{name}.mp4"
    media.write_video(path, iter(frames), WIDTH, HEIGHT, FPS)
    return list(media.read_frames(path))


def seam_ratio(before: list[np.ndarray], after: list[np.ndarray]) -> float:
    """Jump from the last frame of `before` to the first of `after`, over the median step inside both."""

    def mad(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())

    inside = [mad(a, b) for clip in (before, after) for a, b in zip(clip, clip[1:])]
    return mad(before[-1], after[0]) / float(np.median(inside))


def joining_rows(backend: AnimaticBackend, folder: Path) -> list[dict]:
    """Each joining strategy on one 3-clip pan shot: its cost and its seams, beside text-to-video."""
    total = 3 * FRAMES

    def segment(offset: int, strategy: str = "text_to_video", **frames) -> tuple[list[np.ndarray], float]:
        request = clip_request(CameraMove.PAN_LEFT).model_copy(update={
            "shot_offset_frames": offset, "shot_total_frames": total, "strategy": strategy, **frames})  # fmt: skip
        seconds = min(render_only(backend, request) for _ in range(2))
        return list(backend.generate(request).frames), seconds

    # 1. a forward chain that closes into a loop: t2v, continue, loop_close
    first, t2v_s = segment(0)
    first = mp4_frames(folder, "first", first)
    second, continue_s = segment(FRAMES, "continue_video", conditioning=np.stack(first[-1:]))
    second = mp4_frames(folder, "second", second)
    closing, loop_s = segment(2 * FRAMES, "loop_close", conditioning=np.stack(second[-1:]),
                              end_conditioning=np.stack(first[:1]))  # fmt: skip
    closing = mp4_frames(folder, "closing", closing)
    # 2. the middle clip made first, then what came before it
    later = mp4_frames(folder, "later", segment(FRAMES)[0])
    before, backward_s = segment(0, "extend_backward", end_conditioning=np.stack(later[:1]))
    before = mp4_frames(folder, "before", before)

    def row(strategy: str, seconds: float, start: float | None, end: float | None) -> dict:
        return {"strategy": strategy, "render fps": FRAMES / seconds, "render x real time": FRAMES / FPS / seconds,
                "seam in (jump / median)": start, "seam out (jump / median)": end}  # fmt: skip

    return [
        row("text_to_video (baseline)", t2v_s, None, None),
        row("continue_video", continue_s, seam_ratio(first, second), None),
        row("extend_backward", backward_s, None, seam_ratio(before, later)),
        row("loop_close (out = the wrap)", loop_s, seam_ratio(second, closing), seam_ratio(closing, first)),
    ]


def main() -> None:
    backend = AnimaticBackend()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-animatic-") as tmp:
        for prompt_kind, prompt in (("forest, rain, wind", PROMPT), ("city street, clear", "Mara walks down a city street at noon")):
            for move in MOVES:
                request = clip_request(move, prompt)
                render_only(backend, request)  # warm up (imports, fonts)
                render_s = min(render_only(backend, request) for _ in range(2))
                encode_s = render_and_encode(backend, request, Path(tmp))
                rows.append({
                    "scene": prompt_kind,
                    "camera": move.value,
                    "render fps": FRAMES / render_s,
                    "render x real time": FRAMES / FPS / render_s,
                    "render+encode fps": FRAMES / encode_s,
                    "render+encode x real time": FRAMES / FPS / encode_s,
                })  # fmt: skip
    print_table(f"animatic at {WIDTH}x{HEIGHT}, {FRAMES} frames at {FPS} fps (one 4 s clip, set-up included)", rows)
    path = save_results("animatic", rows, {"width": WIDTH, "height": HEIGHT, "fps": FPS, "frames": FRAMES})
    print(f"\nsaved {path}")
    joins = joining()
    print(f"saved {joins}")


def joining() -> Path:
    """The joining strategies' table (also runnable alone: python -c 'from bench.bench_animatic import joining; joining()')."""
    with tempfile.TemporaryDirectory(prefix="bench-animatic-joins-") as tmp:
        rows = joining_rows(AnimaticBackend(), Path(tmp))
    print_table(f"joining clips at {WIDTH}x{HEIGHT}: a 12 s pan-left shot as three {FRAMES}-frame clips at {FPS} fps "
                "(forest, rain, wind; seams measured on decoded mp4s; about 1 is invisible, "
                f"storyflow warns above {SEAM_WARN_RATIO:g})", rows)  # fmt: skip
    return save_results("animatic_joins", rows, {"width": WIDTH, "height": HEIGHT, "fps": FPS, "frames": FRAMES})


if __name__ == "__main__":
    main()
