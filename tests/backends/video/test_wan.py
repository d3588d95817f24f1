"""The wan backend on tiny random Wan pipelines saved to folders and loaded back as a user's are:
clip lengths and sizes, clips that start on (and end on) given frames, capabilities that follow the
loaded layout, models loaded once, and the errors a user meets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storyflow.backends.registry import load_backend
from storyflow.backends.torch_models import WARM
from storyflow.backends.video.wan import WanBackend
from storyflow.core.errors import BackendOptionError, BackendUnavailableError, GenerationError
from storyflow.core.models import ClipRequest
from storyflow.stages.conform import Conformed, conform

# tiny models: one torch thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

FAST = {"steps": 2, "device": "cpu", "dtype": "float32"}
GREY, DARK = np.full((1, 32, 32, 3), 200, np.uint8), np.zeros((1, 32, 32, 3), np.uint8)


def wan(t2v: Path, i2v: Path | None = None, **options) -> WanBackend:
    values = {"model": str(t2v), **FAST, **options}
    if i2v is not None:
        values["i2v_model"] = str(i2v)
    backend = load_backend("video", "wan", values)
    backend.check_available()
    return backend  # type: ignore[return-value]


def clip(backend: WanBackend, strategy: str = "text_to_video", **fields) -> tuple[list[np.ndarray], int]:
    values = {"prompt": "a lighthouse on a cliff at dusk", "seed": 5, "width": 32, "height": 32, "fps": 16,
              "num_frames": 9, "strategy": strategy, **fields}  # fmt: skip
    result = backend.generate(ClipRequest(**values))
    return list(result.frames), result.context_frames


def mad(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.abs(np.stack(a).astype(np.float32) - np.stack(b).astype(np.float32)).mean())


def frames_received(backend: WanBackend, monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float | None]]:
    """The mean level (0-255) of the first and last frame the image-to-video model encodes, call by call.

    The tiny random VAE all but loses a last frame on its way to the picture, so the test reads what the
    real pipeline was handed, at its own entry point for given frames."""
    pipe = backend.pipeline("i2v")
    seen: list[tuple[float, float | None]] = []
    real = pipe.prepare_latents

    def level(frame) -> float:  # the pipeline's frames are in [-1, 1]
        return round((float(frame.mean()) + 1) * 127.5)

    def spy(image, *args, **kwargs):
        last = args[-1] if len(args) == 10 else kwargs.get("last_image")
        seen.append((level(image), None if last is None else level(last)))
        return real(image, *args, **kwargs)

    monkeypatch.setattr(pipe, "prepare_latents", spy)
    return seen


def test_text_to_video_makes_the_frames_and_size_asked_for(tiny_wan_t2v):
    backend = wan(tiny_wan_t2v)
    frames, context = clip(backend)
    assert len(frames) == 9 and context == 0
    assert all(f.shape == (32, 32, 3) and f.dtype == np.uint8 for f in frames)
    wide, _ = clip(backend, width=48, num_frames=5)
    assert len(wide) == 5 and wide[0].shape == (32, 48, 3)
    assert mad(frames, clip(backend)[0]) == 0.0  # the same seed, the same clip
    assert mad(frames, clip(backend, seed=6)[0]) > 0.5


def test_capabilities_follow_the_loaded_layout(tiny_wan_t2v, tiny_wan_i2v, tiny_wan_i2v_clip):
    alone = wan(tiny_wan_t2v).capabilities
    assert (alone.text_to_video, alone.image_to_video, alone.last_frame, alone.extend_backward) == (True, False, False, False)
    assert alone.frame_rule == "4k+1" and alone.fps == (16,) and alone.size_multiple == 16
    assert alone.longest_clip(16) == 81 and alone.context_frames == 1 and alone.max_concurrency == 1
    assert not alone.extend_from_video and alone.seed and alone.cost_per_second == 0

    both = wan(tiny_wan_t2v, tiny_wan_i2v).capabilities  # Wan 2.2 A14B: first and last frame
    assert both.image_to_video and both.last_frame and both.extend_backward and not both.extend_from_video
    assert both.longest_clip(16) == 77  # the i2v call asks 4 frames more: it stays within the native 81

    clip_layout = wan(tiny_wan_t2v, tiny_wan_i2v_clip).capabilities  # Wan 2.1 I2V with CLIP: first frame only
    assert clip_layout.image_to_video and not clip_layout.last_frame and not clip_layout.extend_backward

    assert WanBackend().capabilities.text_to_video  # `storyflow backends` lists it without a model


def test_image_to_video_starts_on_the_given_frame(tiny_wan_t2v, tiny_wan_i2v, tiny_wan_i2v_clip, monkeypatch):
    for i2v in (tiny_wan_i2v, tiny_wan_i2v_clip):
        backend = wan(tiny_wan_t2v, i2v)
        seen = frames_received(backend, monkeypatch)
        grey, context = clip(backend, "last_frame_i2v", conditioning=GREY)
        assert context == 1 and len(grey) == 1 + 9  # the given frame back as frame 0, then 9 new ones
        assert seen == [(200, None)]
        dark, _ = clip(backend, "last_frame_i2v", conditioning=DARK)
        assert mad(grey, dark) > 0.5  # the clip is made from the frame it was given
    # a continuation (Wan has no native one) starts on the last given frame, like a continuing shot
    assert mad(grey, clip(backend, "continue_video", conditioning=np.concatenate([DARK, GREY]))[0]) == 0.0


def test_a_loop_closes_on_the_given_last_frame(tiny_wan_t2v, tiny_wan_i2v, monkeypatch):
    backend = wan(tiny_wan_t2v, tiny_wan_i2v)
    seen = frames_received(backend, monkeypatch)
    frames, context = clip(backend, "loop_close", conditioning=GREY, end_conditioning=DARK)
    assert context == 1 and len(frames) == 1 + 9  # the given tail back as frame 0, then 9 new ones
    assert seen == [(200, 0)]  # it starts on the tail and ends on the chain's first frame


def test_backward_extension_leads_into_the_given_head(tiny_wan_t2v, tiny_wan_i2v, monkeypatch):
    backend = wan(tiny_wan_t2v, tiny_wan_i2v)
    seen = frames_received(backend, monkeypatch)
    frames, context = clip(backend, "extend_backward", end_conditioning=GREY)
    assert context == 0 and len(frames) == 9  # only new frames: the head is the next clip's
    (first, last), = seen
    assert last == 200 and first != 200  # from the prompt's own first frame into the given head
    drawn, _ = clip(backend, "text_to_video", num_frames=1)
    assert first == round(float(drawn[0].mean()))


def test_a_first_last_frame_model_extends_backward_but_never_starts_on_one_frame(tiny_wan_t2v, tiny_wan_flf2v):
    backend = wan(tiny_wan_t2v, tiny_wan_flf2v)
    caps = backend.capabilities
    assert caps.last_frame and caps.extend_backward and not caps.image_to_video
    frames, context = clip(backend, "extend_backward", end_conditioning=GREY)
    assert context == 0 and len(frames) == 9
    with pytest.raises(GenerationError, match="cannot start on a frame alone"):
        clip(backend, "image_to_video", conditioning=GREY)


def test_a_layout_without_a_last_frame_refuses_a_loop(tiny_wan_t2v, tiny_wan_i2v_clip):
    with pytest.raises(GenerationError) as caught:
        clip(wan(tiny_wan_t2v, tiny_wan_i2v_clip), "loop_close", conditioning=GREY, end_conditioning=DARK)
    assert "takes no last frame" in caught.value.message and "Wan2.2-I2V-A14B" in caught.value.fix
    with pytest.raises(GenerationError, match="cannot start on a given frame"):
        clip(wan(tiny_wan_t2v), "image_to_video", conditioning=GREY)


def test_a_segment_gives_the_film_exactly_the_frames_it_asked_for(tiny_wan_t2v, tiny_wan_i2v):
    """The planner's next segment of a long shot at 24 fps: conform, generate, drop the echoed frame, re-time."""
    backend = wan(tiny_wan_t2v, tiny_wan_i2v)
    for strategy, extra in (("text_to_video", {}), ("last_frame_i2v", {"conditioning": GREY}),
                            ("loop_close", {"conditioning": GREY, "end_conditioning": DARK})):  # fmt: skip
        film = ClipRequest(prompt="waves", seed=1, width=32, height=32, fps=24, num_frames=12, strategy=strategy, **extra)
        fit = conform(film, backend.capabilities, backend.name)
        assert (fit.fps, fit.frames) == (16, 9)
        result = backend.generate(film.model_copy(update={"fps": fit.fps, "num_frames": fit.frames}))
        answer = Conformed(list(result.frames)[result.context_frames :], fit, film, backend.name)
        assert len(list(answer)) == 12
        answer.check("s01")


def test_each_pipeline_is_loaded_once_per_process(tiny_wan_t2v, tiny_wan_i2v):
    first = wan(tiny_wan_t2v, tiny_wan_i2v)
    clip(first)
    clip(first, "image_to_video", conditioning=GREY)
    second = wan(tiny_wan_t2v, tiny_wan_i2v)  # another backend with the same options
    clip(second, seed=9)
    clip(second, "last_frame_i2v", conditioning=DARK)
    ours = {key: count for key, count in WARM.loads.items() if str(tiny_wan_t2v) in key or str(tiny_wan_i2v) in key}
    assert sorted(key[0] for key in ours) == ["WanImageToVideoPipeline", "WanPipeline"]
    assert set(ours.values()) == {1}


def test_a_missing_folder_is_named_before_any_work(tmp_path, tiny_wan_t2v):
    missing = tmp_path / "no-such-wan"
    with pytest.raises(BackendUnavailableError) as caught:
        load_backend("video", "wan", {"model": str(missing)}).check_available()
    assert str(missing) in caught.value.message and "model=" in caught.value.fix
    with pytest.raises(BackendUnavailableError) as caught:
        load_backend("video", "wan", {"model": str(tiny_wan_t2v), "i2v_model": str(missing)}).check_available()
    assert str(missing) in caught.value.message and "i2v_model=" in caught.value.fix


def test_models_of_the_wrong_kind_are_refused_before_any_work(tiny_wan_t2v, tiny_wan_i2v):
    with pytest.raises(BackendUnavailableError) as caught:
        load_backend("video", "wan", {"model": str(tiny_wan_i2v)}).check_available()
    assert "is an image-to-video model" in caught.value.message and "i2v_model=" in caught.value.fix
    with pytest.raises(BackendUnavailableError, match="is a text-to-video model"):
        load_backend("video", "wan", {"model": str(tiny_wan_t2v), "i2v_model": str(tiny_wan_t2v)}).check_available()


def test_option_errors_name_the_option_and_list_the_valid_ones():
    with pytest.raises(BackendOptionError) as caught:
        load_backend("video", "wan", {"model": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "stpes": 4})
    assert "unknown option 'stpes'" in caught.value.message
    assert all(name in caught.value.fix for name in ("steps", "i2v_model", "fps", "offload", "negative_prompt"))
    with pytest.raises(BackendOptionError) as caught:
        load_backend("video", "wan", {"steps": 4})
    assert "--video-option model=" in caught.value.message
