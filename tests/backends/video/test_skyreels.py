"""The skyreels backend on a tiny random SkyReels-V2 diffusion-forcing folder, loaded the way a
user's model is: long clips in one call, native continuation from the given tail, loops that
lead into the given head, one folder read for three pipelines, and the errors a user meets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from storyflow.backends.registry import load_backend
from storyflow.backends.torch_models import WARM
from storyflow.core.errors import BackendOptionError, BackendUnavailableError, GenerationError
from storyflow.core.models import ClipRequest
from storyflow.stages.extend import plan_segments
from tests.tiny_ltx import build_tiny_skyreels

# tiny models: one torch thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

REPO = Path(__file__).resolve().parents[3]
W, H = 48, 32  # multiples of 16, not square
WINDOW = {"base_num_frames": 9, "overlap_history": 5}  # tiny windows: a 24-frame clip takes several


@pytest.fixture(scope="module")
def tiny_skyreels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_skyreels(tmp_path_factory.mktemp("tiny-skyreels") / "df")


@pytest.fixture(scope="module")
def skyreels(tiny_skyreels: Path):
    backend = load_backend("video", "skyreels", {"model": str(tiny_skyreels), "steps": 2, "device": "cpu", **WINDOW})
    backend.check_available()
    return backend


def request(**fields) -> ClipRequest:
    values = {"prompt": "waves break on the rocks below the lighthouse", "seed": 5, "width": W, "height": H,
              "fps": 24, "num_frames": 12, **fields}  # fmt: skip
    return ClipRequest(**values)


def tail(seed: int, count: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, H, W, 3), dtype=np.uint8)


def differ(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_one_call_makes_a_clip_several_windows_long(skyreels):
    result = skyreels.generate(request(num_frames=24))  # 9-frame windows overlapping by 5: five windows
    frames = np.stack(list(result.frames))
    assert frames.shape == (24, H, W, 3) and frames.dtype == np.uint8 and result.context_frames == 0
    assert result.metadata["pipelines"] == ["SkyReelsV2DiffusionForcingPipeline (25 frames)"]


def test_a_continuation_reads_the_tail_natively(skyreels):
    a = skyreels.generate(request(strategy="continue_video", conditioning=tail(1)))
    b = skyreels.generate(request(strategy="continue_video", conditioning=tail(2)))
    fa, fb = np.stack(list(a.frames)), np.stack(list(b.frames))
    # the 5 given frames and their re-rendering come first (context), then 12 new frames
    assert a.context_frames == 10 and fa.shape == (10 + 12, H, W, 3)
    assert np.array_equal(fa[:5], tail(1)[-5:])
    assert a.metadata["pipelines"] == ["SkyReelsV2DiffusionForcingVideoToVideoPipeline (17 frames)"]
    # same seed and prompt: only the tail differs, and the new frames follow it
    assert differ(fa[10], fb[10]) > 0.5 and differ(fa[10:], fb[10:]) > 0.5


def test_image_to_video_starts_on_the_given_frame(skyreels):
    result = skyreels.generate(request(strategy="last_frame_i2v", conditioning=tail(1)))
    assert result.context_frames == 1 and len(list(result.frames)) == 1 + 12


def test_a_long_closing_loop_continues_then_leads_into_the_head(skyreels):
    result = skyreels.generate(request(strategy="loop_close", num_frames=16, conditioning=tail(1),
                                       end_conditioning=tail(3)))  # fmt: skip
    assert result.context_frames == 1 and len(list(result.frames)) == 1 + 16
    # past one window, natively continued first; the last window (8 new frames) leads into the head
    assert result.metadata["loop"]["continued"] == 8 and result.metadata["loop"]["closing_window"] == 8
    assert len(result.metadata["pipelines"]) == 2


def test_one_folder_is_read_once_for_its_three_pipelines(skyreels, tiny_skyreels):
    skyreels.generate(request(num_frames=4))
    skyreels.generate(request(strategy="continue_video", conditioning=tail(4), num_frames=4))
    skyreels.generate(request(strategy="image_to_video", conditioning=tail(4), num_frames=4))
    loads = {key[0]: count for key, count in WARM.loads.items() if key[1] == str(tiny_skyreels)}
    assert loads == {"SkyReelsV2DiffusionForcingPipeline": 1, "SkyReelsV2DiffusionForcingImageToVideoPipeline": 1,
                     "SkyReelsV2DiffusionForcingVideoToVideoPipeline": 1}  # fmt: skip
    assert skyreels.pipeline("v2v", "cpu").transformer is skyreels.pipeline("t2v", "cpu").transformer


def test_long_shots_are_planned_as_few_long_segments(tiny_skyreels):
    caps = load_backend("video", "skyreels", {"model": str(tiny_skyreels)}).capabilities
    assert (caps.frame_rule, caps.size_multiple, caps.fps, caps.context_frames) == ("4k", 16, (24,), 17)
    assert caps.extend_from_video and caps.image_to_video and caps.last_frame and not caps.extend_backward
    plans = plan_segments(60 * 24, 24, caps)  # a one-minute shot: two 30 s segments, the second continuing
    assert [(p.frames, p.strategy) for p in plans] == [(720, "text_to_video"), (720, "continue_video")]


def test_backward_extension_is_refused_as_the_capabilities_say(skyreels):
    with pytest.raises(GenerationError) as caught:
        skyreels.generate(request(strategy="extend_backward", end_conditioning=tail(3)))
    assert "extend_backward" in caught.value.message and "ltx" in caught.value.fix


def test_a_missing_model_folder_is_named_before_any_work(tmp_path):
    backend = load_backend("video", "skyreels", {"model": str(tmp_path / "no-such-model")})
    with pytest.raises(BackendUnavailableError) as caught:
        backend.check_available()
    assert str(tmp_path / "no-such-model") in caught.value.message


def test_option_mistakes_name_the_valid_options():
    model = "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers"
    with pytest.raises(BackendOptionError) as caught:
        load_backend("video", "skyreels", {"model": model, "overlap": 17})
    assert "unknown option 'overlap'" in caught.value.message
    assert all(name in caught.value.fix for name in ("overlap_history", "base_num_frames", "ar_step"))
    with pytest.raises(BackendOptionError) as caught:
        load_backend("video", "skyreels", {"model": model, "base_num_frames": 17, "overlap_history": 17})
    assert "shorter than base_num_frames" in caught.value.message
    with pytest.raises(BackendOptionError) as caught:
        load_backend("video", "skyreels", {"model": model, "ar_step": 5, "causal_block_size": 3})
    assert "causal_block_size" in caught.value.message


def test_the_module_imports_no_torch():
    code = ("import sys, storyflow.backends.video.skyreels as m; m.SkyReelsBackend().capabilities; "
            "print('torch' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
