"""The ltx backend on a tiny random LTX-Video folder, loaded the way a user's model is: frame
counts and sizes, that continuations really read the given tail and loops the given head,
one load per process, and the errors a user meets (a missing folder, a mistyped option)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from storyflow.backends.registry import load_backend
from storyflow.backends.torch_models import WARM
from storyflow.core.errors import BackendOptionError, BackendUnavailableError, GenerationError
from storyflow.core.models import ClipRequest
from storyflow.stages.conform import conform
from tests.tiny_ltx import build_tiny_ltx

# tiny models: one torch thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

REPO = Path(__file__).resolve().parents[3]
W, H = 96, 64  # multiples of 32, not square: the size is not swapped anywhere


@pytest.fixture(scope="module")
def tiny_ltx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx") / "ltx")


@pytest.fixture(scope="module")
def ltx(tiny_ltx: Path):
    backend = load_backend("video", "ltx", {"model": str(tiny_ltx), "steps": 2, "device": "cpu"})
    backend.check_available()
    return backend


def request(**fields) -> ClipRequest:
    values = {"prompt": "a lighthouse keeper climbs the stairs at dusk", "seed": 11, "width": W, "height": H,
              "fps": 24, "num_frames": 16, **fields}  # fmt: skip
    return ClipRequest(**values)


def frames_of(backend, **fields) -> tuple[np.ndarray, int]:
    result = backend.generate(request(**fields))
    return np.stack(list(result.frames)), result.context_frames


def tail(seed: int, count: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, H, W, 3), dtype=np.uint8)


def differ(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_text_to_video_makes_the_frames_asked_for_at_the_size_asked_for(ltx):
    frames, context = frames_of(ltx)
    assert frames.shape == (16, H, W, 3) and frames.dtype == np.uint8 and context == 0
    again, _ = frames_of(ltx)
    assert np.array_equal(frames, again)  # the same seed, the same clip
    other, _ = frames_of(ltx, seed=12)
    assert differ(frames, other) > 0.5


def test_a_continuation_starts_on_the_given_tail_and_carries_it_on(ltx):
    # the tail comes back first (declared context frames, dropped by the caller), then 16 new frames
    a, context = frames_of(ltx, strategy="continue_video", conditioning=tail(1))
    b, _ = frames_of(ltx, strategy="continue_video", conditioning=tail(2))
    assert context == 9 and a.shape == (9 + 16, H, W, 3)
    # same seed and prompt: only the tail differs, and the new frames follow it
    assert differ(a[9], b[9]) > 0.5 and differ(a[9:], b[9:]) > 0.5
    # text to video does not read a tail, given or not
    plain, _ = frames_of(ltx)
    ignored, _ = frames_of(ltx, conditioning=tail(1))
    assert np.array_equal(plain, ignored)
    assert differ(a[9:], plain) > 0.5


def test_a_short_tail_is_read_as_8k_plus_1_frames(ltx):
    result = ltx.generate(request(strategy="continue_video", conditioning=tail(1, count=5)))
    assert result.context_frames == 1 and len(list(result.frames)) == 1 + 16
    assert result.metadata["conditions"] == ["video of 1 frame at frame 0"]


def test_image_to_video_starts_on_the_given_frame(ltx):
    a, context = frames_of(ltx, strategy="image_to_video", conditioning=tail(1))
    b, _ = frames_of(ltx, strategy="image_to_video", conditioning=tail(2))
    assert context == 1 and a.shape == (1 + 16, H, W, 3)
    assert differ(a[1:], b[1:]) > 0.5


def test_backward_extension_and_loops_lead_into_the_given_head(ltx):
    result = ltx.generate(request(strategy="extend_backward", end_conditioning=tail(3)))
    a = np.stack(list(result.frames))
    assert result.context_frames == 0 and a.shape == (16, H, W, 3)
    assert result.metadata["model_frames"] == 17  # 16 frames, then the head as the 17th: 8k+1, nothing wasted
    assert result.metadata["conditions"] == ["image of 1 frame at frame 16"]
    b, _ = frames_of(ltx, strategy="extend_backward", end_conditioning=tail(4))
    # same seed and prompt, another head: another clip (a tiny random model attends to the head only weakly)
    assert not np.array_equal(a, b)

    loop = ltx.generate(request(strategy="loop_close", conditioning=tail(1), end_conditioning=tail(3)))
    assert loop.context_frames == 9 and len(list(loop.frames)) == 9 + 16
    assert loop.metadata["conditions"] == ["video of 9 frames at frame 0", "image of 1 frame at frame 25"]


def test_the_model_is_loaded_once_for_every_clip(ltx, tiny_ltx):
    for strategy in ("text_to_video", "continue_video"):
        ltx.generate(request(strategy=strategy, conditioning=tail(5), num_frames=8))
    loads = [count for key, count in WARM.loads.items() if key[0] == "LTXConditionPipeline" and key[1] == str(tiny_ltx)]
    assert loads == [1]


def test_a_folder_whose_scheduler_shifts_dynamically_still_runs(tiny_ltx, tmp_path):
    # LTXConditionPipeline passes its own timesteps and no `mu`; such a scheduler would fail every call
    folder = tmp_path / "dynamic"
    shutil.copytree(tiny_ltx, folder)
    config_path = folder / "scheduler" / "scheduler_config.json"
    config_path.write_text(json.dumps(json.loads(config_path.read_text()) | {"use_dynamic_shifting": True}))
    backend = load_backend("video", "ltx", {"model": str(folder), "steps": 2, "device": "cpu"})
    frames, _ = frames_of(backend, num_frames=8, width=32, height=32)
    assert frames.shape == (8, 32, 32, 3)


def test_the_capabilities_follow_the_model_and_the_options(tiny_ltx):
    caps = load_backend("video", "ltx", {"model": str(tiny_ltx)}).capabilities
    assert (caps.frame_rule, caps.size_multiple, caps.fps, caps.context_frames) == ("8k", 32, (24,), 9)
    assert caps.extend_from_video and caps.image_to_video and caps.last_frame and caps.extend_backward
    assert caps.longest_clip(24) == 112  # a continuation (9 + 112 frames) stays inside max_frames=121
    # a 2 s segment of a 24 fps film is made as it is: no frames trimmed, nothing re-timed
    assert conform(request(num_frames=48), caps, "ltx").corrections == ()
    caps25 = load_backend("video", "ltx", {"model": str(tiny_ltx), "fps": 25, "context_frames": 17,
                                           "max_frames": 161}).capabilities  # fmt: skip
    assert caps25.fps == (25,) and caps25.context_frames == 17 and caps25.longest_clip(25) == 144


def test_a_missing_model_folder_is_named_before_any_work(tmp_path):
    backend = load_backend("video", "ltx", {"model": str(tmp_path / "no-such-model")})
    with pytest.raises(BackendUnavailableError) as caught:
        backend.check_available()
    assert str(tmp_path / "no-such-model") in caught.value.message and "save_pretrained" in caught.value.fix


def test_option_mistakes_name_the_valid_options():
    with pytest.raises(BackendOptionError) as caught:
        load_backend("video", "ltx", {"model": "Lightricks/LTX-Video-0.9.7-dev", "context_frame": 9})
    assert "unknown option 'context_frame'" in caught.value.message
    assert "context_frames" in caught.value.fix and "max_frames" in caught.value.fix
    with pytest.raises(BackendOptionError) as caught:
        load_backend("video", "ltx", {"model": "Lightricks/LTX-Video-0.9.7-dev", "context_frames": 8})
    assert "8k+1" in caught.value.message
    with pytest.raises(BackendOptionError) as caught:
        load_backend("video", "ltx", {})
    assert "'model'" in caught.value.message


def test_a_continuation_without_frames_is_refused_with_the_fix(ltx):
    with pytest.raises(GenerationError) as caught:
        ltx.generate(request(strategy="continue_video"))
    assert "needs conditioning frames" in caught.value.message and "last_frames" in caught.value.fix


def test_the_module_imports_no_torch():
    code = "import sys, storyflow.backends.video.ltx as m; m.LTXBackend().capabilities; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
