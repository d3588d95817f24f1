"""The film's mix against its length: storyflow's windowed mix beside the in-memory mix it replaced.

Synthetic inputs per length: a narration line (24 kHz mono, speech-like, 3-5 s) every 8 s,
music and effects as film-length 48 kHz stereo WAVs, the effects with a hit every 1.5 s, so the
limiter acts in every window (the windowed mix's worst case: it recomputes the limiter's gain in
each pass instead of holding it). Each mix runs in a process of its own;
its peak memory is that process's maximum resident set (os.wait4), shown with and without
the ~constant cost of the imports (a process that imports the same modules and mixes nothing).

- "windowed": storyflow.stages.mix.mix_film, which holds one window of each source at a time;
- "in memory": a compact copy of the mix as it was before (issue 12): every source film-length
  stereo float32 in memory, pyloudnorm on float64 copies, the limiter curve film-length:
  the obvious alternative, and what every film's mix cost before.

Both write the same mix and stems; the table says how far apart the two mixes are (16-bit LSBs).
The in-memory copy shares today's true-peak code (2.4x faster than it was), so it runs faster than
the mix it copies did: the original, measured before issue 12 on the same 2-core machine, took
3.8 s / 409 MB (1 min), 31.8 s / 1482 MB (5 min) and 116 s / 8064 MB (30 min) wall / peak resident.

Usage: python -m bench mix    (BENCH_MIX_MINUTES=1,5,30 for the long one; default 1,5)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import print_table, save_results

REPO = Path(__file__).resolve().parent.parent
RATE = 48_000
LINE_RATE = 24_000  # what a TTS voice typically speaks at: every line is resampled
LINE_EVERY_S = 8.0


def make_inputs(folder: Path, minutes: float) -> dict:
    """Narration lines, film-length music and effects WAVs for a film of `minutes`, written window by window."""
    import numpy as np

    from storyflow.media import wav_writer, write_wav

    seconds = minutes * 60
    total = round(seconds * RATE)
    rng = np.random.default_rng(3)
    lines = []
    for i, start in enumerate(np.arange(1.0, seconds - 6.0, LINE_EVERY_S)):
        length = 3.0 + 2.0 * rng.random()
        t = np.arange(round(length * LINE_RATE)) / LINE_RATE
        pitch = 110 + 60 * rng.random()
        buzz = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 10))
        words = np.sqrt(np.clip(np.sin(np.pi * (t % 0.32) / 0.25), 0, None)) * ((t % 0.32) < 0.25)
        path = folder / f"line{i:04d}.wav"
        write_wav(path, (0.1 * buzz * words).astype(np.float32), LINE_RATE)
        lines.append((float(start), str(path)))
    block = 1 << 20
    for name, make in (("music", _music_block), ("effects", _effects_block)):
        with wav_writer(folder / f"{name}.wav", 2, RATE) as out:
            for start in range(0, total, block):
                out.write(make(start, min(block, total - start), rng))
    return {"seconds": seconds, "narration": lines, "music": str(folder / "music.wav"),
            "effects": str(folder / "effects.wav")}  # fmt: skip


def _music_block(start: int, n: int, rng):
    """Chords that change every 2 s, a little detuned between the channels."""
    import numpy as np

    t = (start + np.arange(n)) / RATE
    root = 110 * 2 ** (((t // 2) % 5) / 12)
    left = sum(np.sin(2 * np.pi * root * r * t) for r in (1, 1.26, 1.5)) * 0.12
    right = sum(np.sin(2 * np.pi * root * r * 1.002 * t) for r in (1, 1.26, 1.5)) * 0.12
    return np.stack([left, right], axis=1).astype(np.float32)


def _effects_block(start: int, n: int, rng):
    """Quiet noise with a sharp hit every 1.5 s: the limiter has work to do."""
    import numpy as np

    out = rng.standard_normal((n, 2)).astype(np.float32) * 0.02
    every = round(1.5 * RATE)
    hits = np.arange(-(-start // every) * every, start + n, every) - start
    out[hits] = 0.95
    return out


# ---------------------------------------------------------------- the in-memory mix, as it was


def mix_in_memory(inputs: dict, out_dir: Path) -> dict:
    """Today's recipe before issue 12, compactly: film-length arrays throughout."""
    import numpy as np
    import pyloudnorm

    from storyflow.media import read_wav, resample, write_wav
    from storyflow.media.loudness import _limiter_curve, _true_peaks
    from storyflow.stages import mix

    rate, total = RATE, round(inputs["seconds"] * RATE)

    def lufs(x):
        data = x.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(pyloudnorm.Meter(rate, block_size=min(0.4, len(data) / rate)).integrated_loudness(data))
        return value if np.isfinite(value) else float("-inf")

    def film_length(path):
        samples, source_rate = read_wav(path)
        samples = resample(samples, source_rate, rate)
        samples = np.repeat(samples, 2, axis=1) if samples.shape[1] == 1 else samples
        out = np.zeros((total, 2), np.float32)
        out[: min(total, len(samples))] = samples[:total]
        return out

    speech = np.zeros((total, 2), np.float32)
    for start, path in inputs["narration"]:
        samples, line_rate = read_wav(path)
        voice = resample(samples.mean(axis=1), line_rate, rate)
        at = round(start * rate)
        speech[at : at + len(voice)] += voice[: total - at, None]
    bed, sfx = film_length(inputs["music"]), film_length(inputs["effects"])
    ref = mix.REFERENCE_LUFS
    speech *= np.float32(mix._gain_to(lufs(speech), ref))
    music_gain, effects_gain = mix._gain_to(lufs(bed), ref - 6.0), mix._gain_to(lufs(sfx), ref - 12.0)

    # the ducking curve, per sample, from 10 ms RMS of the voice
    hop = round(mix.CONTROL_HOP_S * rate)
    frames = -(-total // hop)
    padded = np.zeros(frames * hop, np.float32)
    padded[:total] = speech[:, 0]
    rms = np.sqrt((padded.reshape(frames, hop) ** 2).mean(axis=1))
    del padded
    depth = mix._duck_envelope(rms, total, rate, 0.05, 0.4, 0.1)[0]
    depth = np.interp(np.arange(total), np.arange(frames) * hop, depth).astype(np.float32)
    bed *= (music_gain * 10 ** (-12.0 * depth / 20)).astype(np.float32)[:, None]
    sfx *= (effects_gain * 10 ** (-4.0 * depth / 20)).astype(np.float32)[:, None]
    del depth
    balanced = speech + bed + sfx

    # normalisation: static gain, limiter rounds, final trim
    before, target, ceiling = lufs(balanced), -16.0, -1.0
    gain_db, peaks, after = target - before, _true_peaks(balanced), before
    for round_ in range(4):
        if round_:
            gain_db += target - after
        scaled = balanced * np.float32(10 ** (gain_db / 20))
        curve = _limiter_curve(peaks * np.float32(10 ** (gain_db / 20)), rate, ceiling)
        after = lufs(scaled * curve[:, None])
        if curve.min() >= 1.0 or after >= target - 0.05:
            break
    result = scaled * curve[:, None]
    del scaled
    top = float(_true_peaks(result).max())
    del result
    peak = 20 * np.log10(top)
    if peak > ceiling:
        trim_db = ceiling - peak - 0.001
        curve = curve * np.float32(10 ** (trim_db / 20))
        after, peak = after + trim_db, peak + trim_db
    scale = np.float32(10 ** (gain_db / 20)) * curve
    for kind, part in (("narration", speech), ("music", bed), ("effects", sfx), ("mix", balanced)):
        write_wav(out_dir / f"{kind}.wav", part * scale[:, None], rate)
    return {"lufs": after, "gain_db": gain_db, "true_peak_dbtp": peak, "mix": str(out_dir / "mix.wav")}


def mix_windowed(inputs: dict, out_dir: Path) -> dict:
    from storyflow.catalog import Generations
    from storyflow.stages.mix import mix_film

    result = mix_film(seconds=inputs["seconds"], sample_rate=RATE, narration=[(s, Path(p)) for s, p in inputs["narration"]],
                      music=Path(inputs["music"]), effects=Path(inputs["effects"]), out_dir=out_dir,
                      door=Generations.in_memory())  # fmt: skip
    return {"lufs": result.lufs, "gain_db": result.gain_db, "true_peak_dbtp": result.true_peak_dbtp,
            "limited_db": result.limited_db, "mix": str(result.mix.path)}  # fmt: skip


# ---------------------------------------------------------------- one mix per process


def child(how: str, inputs_json: str, out_dir: str) -> None:
    """Run one mix (or, for 'imports', only what a mix imports) and print its facts as JSON."""
    import importlib

    for module in ("numpy", "pyloudnorm", "scipy.ndimage", "scipy.signal", "storyflow.stages.mix"):
        importlib.import_module(module)  # what any mix imports, paid before the clock starts and counted apart

    inputs = json.loads(Path(inputs_json).read_text())
    started, cpu = time.perf_counter(), time.process_time()
    facts = {} if how == "imports" else (mix_windowed if how == "windowed" else mix_in_memory)(inputs, Path(out_dir))
    print(json.dumps({"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu, **facts}))


def run_child(how: str, inputs_json: Path, out_dir: Path) -> dict:
    """Facts, wall seconds and peak resident MB of one mix in a process of its own."""
    out_dir.mkdir(parents=True, exist_ok=True)
    said, errors = out_dir / "child.out", out_dir / "child.err"
    with open(said, "wb") as stdout, open(errors, "wb") as stderr:  # files, not pipes: wait4 keeps the rusage
        process = subprocess.Popen([sys.executable, "-m", "bench.bench_mix", "--child", how, str(inputs_json),
                                    str(out_dir)], cwd=REPO, stdout=stdout, stderr=stderr)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{how} mix failed:\n{errors.read_text()[-3000:]}")
    facts = json.loads(said.read_text().strip().splitlines()[-1])
    return {**facts, "peak_mb": usage.ru_maxrss / 1024}  # KB on Linux


def lsb_apart(a: str, b: str) -> int:
    """The largest difference between two 16-bit WAVs, in LSBs, read window by window."""
    import numpy as np

    from storyflow.media import open_wav

    worst = 0
    with open_wav(Path(a)) as x, open_wav(Path(b)) as y:
        for start in range(0, max(x.frames, y.frames), 1 << 20):
            p, q = x.read(start, 1 << 20), y.read(start, 1 << 20)
            worst = max(worst, int(np.rint(np.abs(p - q).max() * 32767)) if len(p) == len(q) else 1 << 16)
    return worst


def main() -> None:
    minutes = [float(m) for m in os.environ.get("BENCH_MIX_MINUTES", "1,5").split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="storyflow-bench-mix-") as tmp:
        root = Path(tmp)
        imports = run_child("imports", _write_inputs(root / "none", 0.1), root / "none-out")
        for length in minutes:
            inputs_json = _write_inputs(root / f"in-{length:g}", length)
            facts = {how: run_child(how, inputs_json, root / f"{how}-{length:g}") for how in ("in memory", "windowed")}
            apart = lsb_apart(facts["in memory"]["mix"], facts["windowed"]["mix"])
            for how, got in facts.items():
                rows.append({"film min": length, "mix": how, "wall s": round(got["wall_s"], 2),
                             "CPU s": round(got["cpu_s"], 2),
                             "peak MB": round(got["peak_mb"]),
                             "peak MB over imports": round(got["peak_mb"] - imports["peak_mb"]),
                             "LUFS": round(got["lufs"], 3), "true peak dBTP": round(got["true_peak_dbtp"], 3),
                             "LSB from in-memory": apart if how == "windowed" else 0})  # fmt: skip
            for folder in (root / f"in-{length:g}", root / f"in memory-{length:g}", root / f"windowed-{length:g}"):
                shutil.rmtree(folder)  # the next length's inputs need the disk
    print_table(f"the film's mix against its length (48 kHz stereo; imports alone: {imports['peak_mb']:.0f} MB "
                "resident; peak: the mixing process's maximum resident set)", rows)  # fmt: skip
    save_results("mix", rows, {"cores": os.cpu_count(), "imports_peak_mb": round(imports["peak_mb"])})


def _write_inputs(folder: Path, minutes: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inputs.json"
    path.write_text(json.dumps(make_inputs(folder, minutes)))
    return path


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:5])
    else:
        main()
