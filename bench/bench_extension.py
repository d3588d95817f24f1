"""What extension costs per second of video, and what it buys at the seams.

A 12 s shot on the 4 s animatic, made through the real pipeline stage
(storyflow.stages.generate.generate_chain: plan, condition on the decoded parent, encode, score
the seams), four ways:

- independent clips: three text-to-video clips, no conditioning (the obvious alternative:
  cheapest, but nothing carries across the joins);
- native continuation from the tail (what the animatic declares: continue_video);
- last-frame image-to-video (the same backend with native continuation switched off);
- a seamless loop (the last segment also leads back into the first frame).

Rows: wall seconds, wall seconds per second of video, and the seam ratios (jump across the
join / ordinary frame-to-frame change; about 1 is invisible, over 3 is a visible jump).
The animatic draws every clip as a stretch of one deterministic shot, so even its
independent clips nearly line up; a real model's independent clips would not.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from pathlib import Path

from bench.common import print_table, save_results, timer

SIZE, FPS, SECONDS = (640, 360), 24, 12.0
PROMPT = "Mara walks along a harbour wall at dusk, gulls circle over the boats, pan right"


def _backend(**changes):
    """The animatic, optionally declaring fewer capabilities (the planner then picks other strategies)."""
    from storyflow.backends.video.animatic import AnimaticBackend

    caps = dataclasses.replace(AnimaticBackend().capabilities, **changes)

    class Declared(AnimaticBackend):
        @property
        def capabilities(self):
            return caps

    return Declared()


def rows_for(folder: Path) -> list[dict]:
    from storyflow.catalog import Generations
    from storyflow.core.models import (
        CameraMove,
        Character,
        Shot,
        ShotPrompt,
        Storyboard,
        StyleBible,
    )
    from storyflow.stages import seams as seams_of
    from storyflow.stages.generate import generate_chain

    mara = Character(name="Mara", description="a tall woman in a red raincoat")
    cases = [
        ("independent clips (text_to_video x3)", _backend(extend_from_video=False, image_to_video=False), False),
        ("native continuation (continue_video)", _backend(), False),
        ("last-frame image-to-video", _backend(extend_from_video=False), False),
        ("seamless loop (+ loop_close)", _backend(), True),
    ]
    rows = []
    for name, backend, loop in cases:
        shot = Shot(id="s01", index=0, beat=0, story_text=PROMPT, action=PROMPT, duration=SECONDS,
                    camera=CameraMove.PAN_RIGHT, characters=("Mara",), loop=loop)  # fmt: skip
        board = Storyboard(title="bench", slug="bench", story_sha256="0" * 64, style=StyleBible(style="previz"),
                           characters=(mara,), shots=(shot,), width=SIZE[0], height=SIZE[1], fps=FPS, seed=1)  # fmt: skip
        prompt = ShotPrompt(shot_id="s01", prompt=PROMPT, caption="Mara walks along the harbour wall")
        with timer() as t:
            chain = generate_chain(shot, prompt, board, backend, folder / name.split()[0], Generations.in_memory())
        # every join scored the same way, conditioned or not (plus the wrap-around of the loop)
        joins = list(zip(chain.clips, chain.clips[1:])) + ([(chain.clips[-1], chain.clips[0])] if loop else [])
        seams = [seams_of.score_files(a.path, b.path, FPS).ratio for a, b in joins]
        rows.append({
            "strategy": name,
            "segments": len(chain.clips),
            "video s": SECONDS,
            "wall s": round(t["s"], 2),
            "wall s per video s": round(t["s"] / SECONDS, 3),
            "seam ratio median": round(statistics.median(seams), 2) if seams else None,
            "seam ratio max": round(max(seams), 2) if seams else None,
        })  # fmt: skip
    rows.append(_one_encode_reference(folder, rows[0]))
    return rows


def _one_encode_reference(folder: Path, independent: dict) -> dict:
    """The floor: the independent clips' frames encoded as one file, scored at the same frames.

    The joins then fall on ordinary keyframes inside one encode, so the ratio there is what
    the codec alone does at a keyframe; a seam near it is as good as a seam can be.
    """
    import numpy as np

    from storyflow import media
    from storyflow.stages import seams

    clips = sorted((folder / "independent").rglob("*.mp4"))
    frames = [frame for clip in clips for frame in media.read_frames(clip)]
    whole = folder / "one-encode.mp4"
    media.write_video(whole, frames, SIZE[0], SIZE[1], FPS)
    decoded = list(media.read_frames(whole))
    window, ratios = FPS, []
    for cut in np.cumsum([media.probe(c).num_frames for c in clips])[:-1]:
        ratios.append(seams.seam_score(decoded[cut - window : cut], decoded[cut : cut + window]).ratio)
    return {
        "strategy": "reference: the same frames in one encode",
        "segments": 1,
        "video s": SECONDS,
        "wall s": None,
        "wall s per video s": None,
        "seam ratio median": round(statistics.median(ratios), 2),
        "seam ratio max": round(max(ratios), 2),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="storyflow-bench-ext-") as tmp:
        rows = rows_for(Path(tmp))
    print_table(f"extension: a {SECONDS:g} s shot on the 4 s animatic at {SIZE[0]}x{SIZE[1]}, {FPS} fps "
                "(render + encode + seam scoring)", rows)  # fmt: skip
    print(f"saved {save_results('extension', rows, {'size': SIZE, 'fps': FPS, 'seconds': SECONDS})}")


if __name__ == "__main__":
    main()
