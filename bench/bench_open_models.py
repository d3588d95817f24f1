"""What an open video model costs per second of video, beside the animatic: load time, seconds of
compute per second of video, peak memory, on the best device here (a GPU when there is one).

Without arguments it builds tiny random Wan, LTX and SkyReels folders (as the tests do) and
measures the code paths, not real models: the figures show the overhead storyflow adds
around a pipeline (loading once, conforming, decoding frames), not a model's speed. Point it
at real checkpoints on a GPU machine with environment variables:

    STORYFLOW_BENCH_WAN=Wan-AI/Wan2.1-T2V-1.3B-Diffusers \\
    STORYFLOW_BENCH_LTX=Lightricks/LTX-Video-0.9.7-distilled \\
    STORYFLOW_BENCH_SIZE=832x480 .venv/bin/python -m bench open_models
"""

from __future__ import annotations

import importlib
import os
import resource
import tempfile
from pathlib import Path
from typing import Any

from bench.common import print_table, save_results, timer
from storyflow.backends.registry import load_backend
from storyflow.core.models import ClipRequest


def peak_memory_mb(device: str) -> float:
    """Peak memory so far: the GPU's allocator on CUDA, else this process's resident high-water mark."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# tiny random folders (as the tests build them), for when no real checkpoint is named
TINY = {
    "wan": ("tests.tiny_wan", "build_tiny_wan_t2v", {"steps": 2}),
    "ltx": ("tests.tiny_ltx", "build_tiny_ltx", {"steps": 2}),
    "skyreels": ("tests.tiny_ltx", "build_tiny_skyreels", {"steps": 2, "base_num_frames": 9, "overlap_history": 5}),
}


def model_options(name: str, folder: Path) -> tuple[dict[str, Any], tuple[int, int]]:
    """A backend's options and the size to measure it at: a real checkpoint from the environment, else a tiny one."""
    size = os.environ.get("STORYFLOW_BENCH_SIZE")
    real = os.environ.get(f"STORYFLOW_BENCH_{name.upper()}")
    if real:
        width, height = (int(side) for side in (size or "832x480").split("x"))
        return {"model": real}, (width, height)
    module, builder, options = TINY[name]
    return {"model": str(getattr(importlib.import_module(module), builder)(folder / name)), **options}, (64, 64)


def main() -> None:
    import torch

    from storyflow.backends.torch_models import WARM, resolve_device

    device = resolve_device("auto")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-open-models-") as scratch:
        # the obvious alternative: the embedded previz, at the same size
        for name in ("animatic", *TINY):
            options, (width, height) = ({}, (64, 64)) if name == "animatic" else model_options(name, Path(scratch))
            backend = load_backend("video", name, options if name == "animatic" else {**options, "device": device})
            caps = backend.capabilities
            fps = caps.native_fps(24)
            frames = caps.clip_frames(round(min(caps.max_clip_seconds, 2.0) * fps), fps)
            request = ClipRequest(prompt="a gull glides over a harbour at dawn", seed=1, width=width, height=height,
                                  fps=fps, num_frames=frames)  # fmt: skip
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            loads = sum(WARM.loads.values())
            with timer() as first:
                made = list(backend.generate(request).frames or [])
            with timer() as warm:
                list(backend.generate(request).frames or [])
            seconds = frames / fps
            rows.append({
                "backend": name, "device": device if name != "animatic" else "cpu", "size": f"{width}x{height}",
                "frames": len(made), "video s": round(seconds, 3),
                "load + first call s": round(first["s"], 3), "loaded": sum(WARM.loads.values()) - loads,
                "warm call s": round(warm["s"], 3), "s per video s": round(warm["s"] / seconds, 3),
                "peak memory MB": round(peak_memory_mb(device), 1),
            })  # fmt: skip
    print_table(f"open video models vs the animatic, one clip each ({device}; tiny random models unless "
                "STORYFLOW_BENCH_* name real ones)", rows)  # fmt: skip
    save_results("open_models", rows, {"device": device, "torch": torch.__version__})
