"""The skyreels video backend: SkyReels-V2 diffusion forcing on diffusers, made for long clips.

`--video-backend skyreels --video-option model=Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers`
(a hub id, or a folder saved with save_pretrained). Diffusion forcing denoises each latent
frame at its own noise level, so one call makes a clip far longer than the model's window:
windows of `base_num_frames` frames, each starting on the last `overlap_history` frames of
the one before, all inside the pipeline. The capabilities declare that long clip
(`max_clip_seconds`, 30 s by default), so the planner cuts a long shot into few, long segments.

One folder (the DF layout) serves three pipelines that share its weights, each loaded once:

    text_to_video            SkyReelsV2DiffusionForcingPipeline: the prompt alone
    image_to_video,          SkyReelsV2DiffusionForcingImageToVideoPipeline, image=conditioning[-1]:
      last_frame_i2v         returned as frame 0 (context_frames=1), then the new frames
    continue_video           SkyReelsV2DiffusionForcingVideoToVideoPipeline, video=the last
                             `overlap_history` frames of conditioning: NATIVE continuation, the tail
                             is the first window's history. It returns the given frames, then the
                             tail re-rendered, then the new frames: all given ones are context_frames
    loop_close               image=conditioning[-1], last_image=end_conditioning[0] (from the last
                             frame, not the tail). diffusers 0.42 fails on last_image past one window,
                             so a longer closing clip is continued natively up to its last window,
                             which then leads into the given head
    extend_backward          not made: the image-to-video pipeline needs a first frame
                             (extend_backward=False in the capabilities)

Frame counts: the Wan VAE under SkyReels makes 4k+1 frames per call; a clip that starts on a
given frame (or on 4a+1 given frames) adds 4k new ones, so `frame_step=4, frame_offset=0`; a
text-to-video call makes 4k+1 and its spare last frame is not returned. Sizes are multiples of
16, the rate 24 fps (the 540P and 720P models; the pipeline embeds "16 fps" or "not 16").

torch and diffusers are imported only inside the methods.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationInfo, field_validator

from storyflow.backends.base import GeneratedVideo, PromptShape, VideoBackend, VideoCapabilities
from storyflow.backends.torch_models import (
    WARM,
    DiffusionOptions,
    TorchModel,
    generator,
    loading,
    model_source,
    on_device,
    place,
    quiet_libraries,
    resolve_device,
    resolve_dtype,
    running,
    uint8_frames,
)
from storyflow.core.errors import BackendOptionError, GenerationError

if TYPE_CHECKING:
    import numpy as np

    from storyflow.core.models import ClipRequest

TEMPORAL = 4  # the Wan VAE: 4 frames per latent frame (plus the first), 8 pixels per latent pixel
SIZE_MULTIPLE = 16  # VAE 8 x transformer patch 2
FPS = 24
MODEL_FIX = "pass --video-option model=<hub id or folder>, e.g. model=Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers"
PIPELINES = {
    "t2v": "SkyReelsV2DiffusionForcingPipeline",
    "i2v": "SkyReelsV2DiffusionForcingImageToVideoPipeline",
    "v2v": "SkyReelsV2DiffusionForcingVideoToVideoPipeline",
}
STARTS_ON_IMAGE = ("image_to_video", "last_frame_i2v")
DEFAULT_NEGATIVE = ("overexposed, static, blurred details, subtitles, worst quality, low quality, JPEG artefacts, "
                    "deformed, disfigured, still picture, cluttered background, walking backwards")  # fmt: skip


def _four_k_plus_one(value: int) -> int:
    if value % TEMPORAL != 1:
        lower = value - (value - 1) % TEMPORAL
        raise ValueError(f"must be 4k+1 (the Wan VAE encodes 4k+1 frames), e.g. {lower} or {lower + TEMPORAL}")
    return value


class SkyReelsOptions(DiffusionOptions):
    """SkyReels-V2 diffusion forcing: the model (required) and how a long clip is made in windows."""

    guidance: float = Field(default=6.0, ge=0.0, le=50.0, description="classifier-free guidance scale "
                            "(SkyReels: 6 for text to video, 5 for image to video)")  # fmt: skip
    negative_prompt: str = Field(default=DEFAULT_NEGATIVE, description="added to every shot's negative prompt")
    base_num_frames: int = Field(default=97, ge=5, le=1025, description="frames per window, 4k+1: 97 for the 540P "
                                 "models, 121 for 720P")  # fmt: skip
    overlap_history: int = Field(default=17, ge=1, le=1021, description="frames each window of a long clip starts "
                                 "on from the one before, 4k+1 (17 or 37); a continuation reads this many of the "
                                 "previous segment's last frames")  # fmt: skip
    ar_step: int = Field(default=0, ge=0, le=100, description="0: synchronous denoising; 5: asynchronous (each "
                         "block lags the one before by ar_step steps: slower, sometimes more consistent; "
                         "use with causal_block_size=5)")  # fmt: skip
    causal_block_size: int | None = Field(default=None, ge=1, le=64, description="latent frames denoised together "
                                          "when ar_step > 0 (5 recommended); unset: the model's own")  # fmt: skip
    addnoise_condition: float = Field(default=20.0, ge=0.0, le=60.0, description="noise on the frames a window "
                                      "starts on: smoother long clips (20 recommended, at most 50)")  # fmt: skip
    max_clip_seconds: float = Field(default=30.0, gt=0.5, le=600.0, description="the longest clip one call makes; "
                                    "longer shots are cut into segments this long")  # fmt: skip

    @field_validator("base_num_frames", "overlap_history")
    @classmethod
    def _frames(cls, value: int) -> int:
        return _four_k_plus_one(value)

    @field_validator("overlap_history")
    @classmethod
    def _inside_a_window(cls, value: int, info: ValidationInfo) -> int:
        base = info.data.get("base_num_frames", 97)
        if value >= base:
            raise ValueError(f"must be shorter than base_num_frames ({base}), so each window adds new frames")
        return value

    @field_validator("causal_block_size")
    @classmethod
    def _whole_blocks(cls, value: int | None, info: ValidationInfo) -> int | None:
        overlap = info.data.get("overlap_history", 17)
        latents = (overlap - 1) // TEMPORAL + 1
        if value is not None and latents % value:
            raise ValueError(f"must divide overlap_history's {latents} latent frames (overlap_history={overlap}), "
                             "or a window's history is cut short")  # fmt: skip
        return value


class SkyReelsBackend(TorchModel, VideoBackend):
    """SkyReels-V2 diffusion forcing: long clips in one call, native continuation from a clip's tail."""

    name = "skyreels"
    version = "1"
    description = "SkyReels-V2 diffusion forcing on diffusers: long clips in one call, native continuation; a GPU"
    Options = SkyReelsOptions
    requires = ("torch", "diffusers", "transformers", "accelerate", "ftfy")
    install = 'pip install "storyflow[models]"'
    prompt_shape = PromptShape(
        max_words=150,
        negative_prompt=True,
        notes="SkyReels-V2 (a Wan-based model trained on film footage) follows concrete, descriptive prompts in "
        "full sentences: the subject's look and action, the setting, the light, shot type and camera movement; "
        "it takes a negative prompt.",
    )

    options: SkyReelsOptions

    def __init__(self, options: SkyReelsOptions | None = None) -> None:
        # `storyflow backends` reads capabilities from a backend built without options; real use goes through
        # load_backend, which validates them (model is required there)
        super().__init__(options if options is not None else SkyReelsOptions.model_construct(model=""))

    def check(self) -> None:
        """The model is named, and a folder exists and holds a saved pipeline, before any work starts."""
        self._source()

    @property
    def capabilities(self) -> VideoCapabilities:
        return VideoCapabilities(
            max_clip_seconds=self.options.max_clip_seconds,
            fps=(FPS,),
            size_multiple=SIZE_MULTIPLE,
            frame_step=TEMPORAL,  # new frames after the given ones: 4k (the model makes 4k+1 with the first)
            frame_offset=0,
            text_to_video=True,
            image_to_video=True,
            last_frame=True,  # last_image=, for loops
            extend_from_video=True,  # the video-to-video pipeline continues the tail natively
            extend_backward=False,  # its image-to-video pipeline needs a first frame
            context_frames=self.options.overlap_history,
            seed=True,
            native_audio=False,
            cost_per_second=0.0,
            max_concurrency=1,  # one pipeline at a time per device
        )

    # ------------------------------------------------------------ making a clip

    def generate(self, request: ClipRequest) -> GeneratedVideo:
        """Make `request.num_frames` new frames, after the given ones it starts on (declared context_frames)."""
        options, strategy, n = self.options, request.strategy, request.num_frames
        if request.width % SIZE_MULTIPLE or request.height % SIZE_MULTIPLE:
            raise GenerationError(f"skyreels makes frames whose sides are multiples of {SIZE_MULTIPLE}, asked for "
                                  f"{request.width}x{request.height}",
                                  fix="conform the request to the backend's capabilities first (storyflow does)")  # fmt: skip
        if strategy == "extend_backward":
            raise GenerationError("skyreels cannot make an 'extend_backward' clip: its image-to-video pipeline "
                                  "needs a first frame", fix="its capabilities say extend_backward=False: "
                                  "plan without it, or pick --video-backend ltx")  # fmt: skip
        device = resolve_device(options.device)
        metadata: dict[str, Any] = {"strategy": strategy, "model": options.model, "steps": options.steps,
                                    "guidance": options.guidance, "base_num_frames": options.base_num_frames,
                                    "overlap_history": options.overlap_history, "ar_step": options.ar_step}  # fmt: skip
        if request.conditioning is not None and strategy == "text_to_video":
            metadata["conditioning"] = "ignored: text_to_video starts from the prompt"
        if request.end_conditioning is not None and strategy != "loop_close":
            metadata["end_conditioning"] = "ignored: only a closing loop clip leads into given frames"
        run = _Runner(self, request, device, metadata)

        # text to video: 4k+1 frames, the spare last one dropped
        if strategy == "text_to_video":
            return GeneratedVideo(frames=run("t2v", _model_frames(n))[:n], metadata=metadata)
        given = _given(request.conditioning, request, "conditioning")
        if strategy == "loop_close":
            return self._loop_close(run, given, _given(request.end_conditioning, request, "end_conditioning"), n)
        # continue natively from the tail when its history fits whole causal blocks, else from its last frame
        tail = self._tail(given, run.causal_block_size()) if strategy == "continue_video" else 0
        if tail:
            frames = run("v2v", _model_frames(tail + n), video=_images(given[-tail:]), overlap_history=tail)
            # the given frames, the tail re-rendered as the first window's history, then the new frames
            metadata["continued_from"] = f"the last {tail} frames, natively (video to video)"
            return GeneratedVideo(frames=frames[: 2 * tail + n], context_frames=2 * tail, metadata=metadata)
        if strategy == "continue_video":
            metadata["continued_from"] = "the last frame (image to video): too few given frames for a whole history"
        frames = run("i2v", _model_frames(1 + n), image=_images(given[-1:])[0])
        return GeneratedVideo(frames=frames[: 1 + n], context_frames=1, metadata=metadata)

    def _loop_close(self, run: _Runner, given: np.ndarray, end: np.ndarray, n: int) -> GeneratedVideo:
        """Continue the tail and lead into the chain's first frame, which stands right after the clip."""
        if n % TEMPORAL:
            raise GenerationError(f"a closing loop clip from skyreels has 4k new frames, asked for {n}",
                                  fix="conform the request to the backend's capabilities first (storyflow does)")  # fmt: skip
        window = self.options.base_num_frames - 1  # new frames one window can hold after its first frame
        made: list[np.ndarray] = []
        start, first_part = given, 0
        if n > window:  # diffusers fails on last_image past one window: continue natively up to the last window
            first_part = n - window
            tail = self._tail(given, run.causal_block_size())
            if tail:
                frames = run("v2v", _model_frames(tail + first_part), video=_images(given[-tail:]),
                             overlap_history=tail)[2 * tail : 2 * tail + first_part]  # fmt: skip
            else:
                frames = run("i2v", _model_frames(1 + first_part), image=_images(given[-1:])[0])[1 : 1 + first_part]
            made.extend(frames)
            start = [*given, *frames]
        closing = run("i2v", 1 + n - first_part, image=_images(start[-1:])[0], last_image=_images(end[:1])[0])
        made.extend(closing[1 : 1 + n - first_part])
        run.metadata["loop"] = {"continued": first_part, "closing_window": n - first_part,
                                "leads_into": "end_conditioning[0], right after the last frame"}  # fmt: skip
        return GeneratedVideo(frames=[given[-1], *made], context_frames=1, metadata=run.metadata)

    def _tail(self, given: np.ndarray, block: int) -> int:
        """How many of the given frames a native continuation reads: 4k+1, at most overlap_history, whole blocks."""
        count = min(self.options.overlap_history, (len(given) - 1) // TEMPORAL * TEMPORAL + 1)
        while count >= 1 and ((count - 1) // TEMPORAL + 1) % block:
            count -= TEMPORAL
        return max(count, 0)

    def pipeline(self, which: str, device: str) -> Any:
        """The loaded t2v, i2v or v2v pipeline: the folder is read once, the others share its weights."""
        import diffusers

        options = self.options
        source = self._source()
        dtype = resolve_dtype(options.dtype, device)
        key = (source, options.revision, device, str(dtype), options.offload, options.vae_tiling)

        def load() -> Any:
            quiet_libraries()
            pipe = diffusers.SkyReelsV2DiffusionForcingPipeline.from_pretrained(source, revision=options.revision,
                                                                                dtype=dtype)  # fmt: skip
            pipe.set_progress_bar_config(disable=True)
            return place(pipe, options, device)

        with loading("the video backend 'skyreels'", source, device):
            base = WARM.get((PIPELINES["t2v"], *key), load)
            if which == "t2v":
                return base

            def share() -> Any:  # the same modules, already placed: no second copy of the weights
                pipe = getattr(diffusers, PIPELINES[which])(**base.components)
                pipe.set_progress_bar_config(disable=True)
                return pipe

            return WARM.get((PIPELINES[which], *key), share)

    def _source(self) -> str:
        if not self.options.model:
            raise BackendOptionError("the video backend 'skyreels' needs a model", fix=MODEL_FIX)
        return model_source(self.options.model, "video", self.name)


class _Runner:
    """Calls one of the pipelines for a request: the shared arguments, the device held, frames as uint8."""

    def __init__(self, backend: SkyReelsBackend, request: ClipRequest, device: str, metadata: dict[str, Any]):
        self.backend, self.request, self.device, self.metadata = backend, request, device, metadata

    def causal_block_size(self) -> int:
        given = self.backend.options.causal_block_size
        if given is not None:
            return given
        return int(getattr(self.backend.pipeline("t2v", self.device).transformer.config, "num_frame_per_block", 1))

    def __call__(self, which: str, num_frames: int, **call: Any) -> list[np.ndarray]:
        options, request = self.backend.options, self.request
        pipe = self.backend.pipeline(which, self.device)
        negative = ", ".join(part for part in (request.negative_prompt.strip(), options.negative_prompt.strip()) if part)
        arguments = {"prompt": request.prompt, "negative_prompt": negative or None, "width": request.width,
                     "height": request.height, "num_frames": num_frames, "num_inference_steps": options.steps,
                     "guidance_scale": options.guidance, "base_num_frames": options.base_num_frames,
                     "overlap_history": options.overlap_history, "ar_step": options.ar_step,
                     "causal_block_size": options.causal_block_size,
                     "addnoise_condition": options.addnoise_condition, "fps": request.fps,
                     "generator": generator(request.seed, self.device), "output_type": "np", **call}  # fmt: skip
        with on_device(self.device), running(f"the video backend 'skyreels' ({PIPELINES[which]})", self.device), \
                _refused(request.strategy):  # fmt: skip
            result = pipe(**arguments)
        self.metadata.setdefault("pipelines", []).append(f"{PIPELINES[which]} ({num_frames} frames)")
        return uint8_frames(result.frames)


# ---------------------------------------------------------------- helpers


def _model_frames(frames: int) -> int:
    """The fewest frames the model makes (4k+1) that hold `frames`."""
    return max(0, -(-(frames - 1) // TEMPORAL)) * TEMPORAL + 1


def _given(frames: Any, request: ClipRequest, argument: str) -> np.ndarray:
    """`frames` checked: uint8 (N, H, W, 3) at the clip's size, at least one."""
    import numpy as np

    example = "storyflow.media.first_frames(path, 1)" if argument == "end_conditioning" else \
        "storyflow.media.last_frames(path, 17)"  # fmt: skip
    if frames is None or len(frames) == 0:
        raise GenerationError(f"strategy '{request.strategy}' needs {argument} frames, got none",
                              fix=f"pass them as {argument} (N, H, W, 3) uint8, e.g. {example}")  # fmt: skip
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise GenerationError(f"{argument} must be uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}",
                              fix=f"stack 8-bit RGB frames with numpy, e.g. {example}")  # fmt: skip
    if frames.shape[1:3] != (request.height, request.width):
        raise GenerationError(f"{argument} frames are {frames.shape[2]}x{frames.shape[1]} but the clip is "
                              f"{request.width}x{request.height}",
                              fix=f"resize them to {request.width}x{request.height} (storyflow.media.fit_frame)")  # fmt: skip
    return frames


def _images(frames: Any) -> list[Any]:
    """uint8 (H, W, 3) frames as the PIL images the pipelines take."""
    import numpy as np
    from PIL import Image

    return [Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).convert("RGB") for frame in frames]


@contextlib.contextmanager
def _refused(strategy: str) -> Iterator[None]:
    """The pipelines' own refusals (ValueError) as a GenerationError naming the fix."""
    try:
        yield
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise GenerationError(f"SkyReels-V2 refused the '{strategy}' clip: {first}",
                              fix="check base_num_frames, overlap_history, ar_step and causal_block_size (e.g. "
                              "ar_step=5 with causal_block_size=5), and that the model is a SkyReels-V2 DF "
                              "(diffusion forcing) folder") from None  # fmt: skip
