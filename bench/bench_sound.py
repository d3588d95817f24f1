"""The sound stage's synthesis (issue 12, point 3): today's music and effects beside the code before it.

- music: ProceduralScore.compose_cue on a 60 s cue of every mood at 48 kHz; seconds per minute of music;
- effects: ProceduralFoley.render on typical shots (4-8 s, 48 kHz, 24 fps clips written once), one per
  kind of bed; seconds per second of shot audio. The picture analysis is measured once per shot and then
  handed to both renders, so the rows time the synthesis alone (the analysis is the same code in both).

"Before" is the two backends as they were at the baseline commit (bench.common.DEFAULT_BASELINE, where issue
12 started; BENCH_BASELINE=<commit> picks another), read from git and run in the same process on the same
inputs. The level and brightness columns say the new sound is the same in kind: RMS in dB and the spectral
centroid (Hz), before -> after.

    .venv/bin/python -m bench sound        (BENCH_SOUND_REPEATS=5 by default: best of 5)

Each row's before and after runs take turns, so a busy machine slows both alike; the best of each is shown,
in CPU seconds of the process by default (see CLOCK).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import baseline_commit, module_at, print_table, save_results

RATE, FPS, WIDTH, HEIGHT = 48_000, 24, 256, 144
REPEATS = int(os.environ.get("BENCH_SOUND_REPEATS", "5"))
# Both sides are single-threaded numpy/scipy, so their CPU time is their wall time on an idle machine; on a
# shared one it is the steadier measure (waiting for a core is not counted). BENCH_SOUND_CLOCK=wall for wall time.
CLOCK = time.perf_counter if os.environ.get("BENCH_SOUND_CLOCK") == "wall" else time.process_time

# (bed kind, sound cue, seconds, picture, camera, cut in)
SHOTS = [
    ("rain", "steady rain", 6, "moving", "static shot", False),
    ("waves", "waves on a beach", 8, "still", "static shot", False),
    ("wind+birds", "wind in the trees, birds", 6, "pan", "pan left", False),
    ("footsteps", "footsteps", 4, "jumps", "static shot", False),
    ("fire", "fire crackling", 5, "moving", "static shot", True),
    ("storm", "a storm with thunder", 8, "flashes", "FPV drone shot", False),
    ("engine", "traffic hum", 4, "moving", "static shot", False),
    ("crowd", "a bustling market crowd", 6, "moving", "static shot", False),
    ("movement", "", 4, "moving", "static shot", True),
]


def _frames(kind: str, n: int):
    """Textured frames: still, a square moving steadily or in jumps, a pan, or two lightning flashes."""
    import numpy as np

    rng = np.random.default_rng(len(kind))
    tiles = rng.integers(40, 200, size=(HEIGHT // 8 + 1, (WIDTH + 4 * n) // 8 + 1), dtype=np.uint8)
    wide = np.kron(tiles, np.ones((8, 8), dtype=np.uint8))
    for i in range(n):
        frame = wide[:HEIGHT, 4 * i : 4 * i + WIDTH] if kind == "pan" else wide[:HEIGHT, :WIDTH].copy()
        frame = frame.copy()
        if kind == "moving":
            x = (i * 5) % (WIDTH - 24)
            frame[60:84, x : x + 24] = 255
        elif kind == "jumps":
            x = 20 + 40 * ((i // 12) % 5)
            frame[60:84, x : x + 24] = 255
        elif kind == "flashes":
            frame = frame // 5 if i not in (n // 4, 2 * n // 3) else np.full_like(frame, 250)
        yield np.repeat(frame[:, :, None], 3, axis=2)


def _best_in_turns(repeats: int, before, after) -> tuple[float, float]:
    """The fastest run of each of two functions, run alternately (after a warm-up of each), in CPU seconds
    of this process (CLOCK, see the module's docstring)."""
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, fn in enumerate((before, after)):
            start = CLOCK()
            fn()
            best[i] = min(best[i], CLOCK() - start)
    return best[0], best[1]


def _music_rows() -> list[dict]:
    import numpy as np

    from storyflow.backends.base import MusicCue
    from storyflow.backends.music.procedural import RECIPES, ProceduralScore

    before_module = module_at(baseline_commit(), "storyflow/backends/music/procedural.py", "music_before")
    new = ProceduralScore()
    level = np.float32(10 ** (new.options.level_db / 20))

    def old_cue(cue: MusicCue) -> np.ndarray:
        """What the old compose() did for one cue: its whole-cue render, brought to the level."""
        rng = np.random.default_rng(before_module._seed(7, cue.shot_id, cue.mood))
        part = before_module._render(before_module.RECIPES[cue.mood], np.arange(round(cue.end * RATE)) / RATE, rng)
        return part * (level / np.abs(part).max())

    rows = []
    for mood in RECIPES:
        cue = MusicCue(0.0, 60.0, mood, "s01")
        a, b = old_cue(cue), new.compose_cue(cue, 7, RATE)
        before, after = _best_in_turns(REPEATS, lambda: old_cue(cue), lambda: new.compose_cue(cue, 7, RATE))
        rows.append({"mood": mood, "before s/min": before, "after s/min": after, "speed-up": before / after,
                     "rms dB": f"{_db(a):.1f} -> {_db(b):.1f}", "centroid Hz": f"{_centroid(a):.0f} -> {_centroid(b):.0f}"})  # fmt: skip
    return rows


def _effects_rows(folder: Path) -> list[dict]:
    import storyflow.backends.effects.procedural as after_module

    before_module = module_at(baseline_commit(), "storyflow/backends/effects/procedural.py", "effects_before")
    from storyflow import media
    from storyflow.backends.base import EffectsRequest
    from bench.common import timer

    rows = []
    for kind, cue, seconds, picture_kind, camera, cut_in in SHOTS:
        n = seconds * FPS
        clip = folder / f"{kind}.mp4"
        media.write_video(clip, _frames(picture_kind, n), WIDTH, HEIGHT, FPS)
        request = EffectsRequest(clips=(clip,), fps=FPS, num_frames=n, prompt="", sound_cue=cue, camera=camera,
                                 cut_in=cut_in, seed=5, sample_rate=RATE)  # fmt: skip
        with timer() as analysis:
            picture = after_module.analyze_picture(request.clips, FPS, n)
        measured = before_module.analyze_picture, after_module.analyze_picture
        before_module.analyze_picture = after_module.analyze_picture = lambda *args, **kwargs: picture  # synthesis alone
        try:
            old, new = before_module.ProceduralFoley(), after_module.ProceduralFoley()
            a, b = old.render(request), new.render(request)
            before, after = _best_in_turns(REPEATS, lambda: old.render(request), lambda: new.render(request))
        finally:
            before_module.analyze_picture, after_module.analyze_picture = measured
        timings = {"before": before / seconds, "after": after / seconds}
        rows.append({"shot": kind, "s": seconds, "analysis s/s": analysis["s"] / seconds,
                     "before s/s": timings["before"], "after s/s": timings["after"],
                     "speed-up": timings["before"] / timings["after"],
                     "rms dB": f"{_db(a):.1f} -> {_db(b):.1f}", "centroid Hz": f"{_centroid(a):.0f} -> {_centroid(b):.0f}"})  # fmt: skip
    return rows


def _db(x) -> float:
    import numpy as np

    return float(20 * np.log10(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-12))


def _centroid(x) -> float:
    import numpy as np

    mono = np.asarray(x, np.float64).mean(axis=1)
    power = np.abs(np.fft.rfft(mono)) ** 2  # power-weighted: steady for noise, where magnitude weighting is not
    return float((power * np.fft.rfftfreq(len(mono), 1 / RATE)).sum() / max(power.sum(), 1e-12))


def _total(rows: list[dict], key: str, weight: str | None = None) -> float:
    if weight is None:
        return sum(r[key] for r in rows) / len(rows)
    return sum(r[key] * r[weight] for r in rows) / sum(r[weight] for r in rows)


def main() -> None:
    music = _music_rows()
    music.append({"mood": "mean", "before s/min": _total(music, "before s/min"), "after s/min": _total(music, "after s/min"),
                  "speed-up": _total(music, "before s/min") / _total(music, "after s/min")})  # fmt: skip
    print_table(f"music: compose_cue, seconds per minute of 48 kHz stereo (best of {REPEATS})", music)
    with tempfile.TemporaryDirectory() as tmp:
        effects = _effects_rows(Path(tmp))
    before, after = _total(effects, "before s/s", "s"), _total(effects, "after s/s", "s")
    effects.append({"shot": "all", "s": sum(r["s"] for r in effects), "analysis s/s": _total(effects, "analysis s/s", "s"),
                    "before s/s": before, "after s/s": after, "speed-up": before / after})  # fmt: skip
    print_table(f"effects: ProceduralFoley.render synthesis, seconds per shot second at 48 kHz (best of {REPEATS})",
                effects)  # fmt: skip
    meta = {"rate": RATE, "repeats": REPEATS, "cpus": os.cpu_count(), "clock": CLOCK.__name__}
    path = save_results("sound", music + effects, meta)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
