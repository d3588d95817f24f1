"""How fast the animatic renders: frames/s and x real time at 640x360, render only and
render + H.264 encode (through media.VideoWriter), side by side, for several camera moves.

    .venv/bin/python -m bench animatic
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import print_table, save_results, timer
from storyflow import media
from storyflow.backends.video.animatic import AnimaticBackend
from storyflow.models import CameraMove, Character, ClipRequest

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


if __name__ == "__main__":
    main()
