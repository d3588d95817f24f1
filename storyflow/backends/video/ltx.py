"""The ltx video backend: LTX-Video on diffusers' LTXConditionPipeline, with native continuation.

`--video-backend ltx --video-option model=Lightricks/LTX-Video-0.9.7-dev` (a hub id, or a
folder saved with save_pretrained). One pipeline makes every kind of clip, because LTX
takes conditions (images or short videos) at any frame index of the clip it makes:

    text_to_video                 the prompt alone
    image_to_video,               conditioning[-1] as an image condition at frame 0: the model
      last_frame_i2v              returns it as frame 0 (context_frames=1), then the new frames
    continue_video                the last `context_frames` frames of conditioning (8k+1 of them:
                                  LTX encodes 8k+1 frames into k+1 latent frames) as a video
                                  condition at frame 0: the clip's first frames are the tail,
                                  re-rendered, so the motion carries across the seam; they are
                                  declared context_frames and dropped by the caller
    extend_backward               end_conditioning[0] as an image condition just after the new
                                  frames: the clip leads into the given head
    loop_close                    both: the tail at frame 0 and the head just after the new frames

Frame counts: LTX makes 8k+1 frames per call (its VAE compresses 8 frames into one latent
frame, plus the first). A clip that starts on given frames holds 8a+1 of them, so it adds 8k
new frames; `frame_step=8, frame_offset=0` says exactly that, and a 24 fps shot of whole
seconds is made without trimming. A call that needs more (text to video, or a loop's extra
keyframe) asks for the next 8k+1 and the spare frames at the end are not returned; a given
head stands right after the kept frames, so nothing between the clip and the head is lost.

The pipeline is loaded once per process (storyflow.backends.torch_models.WARM) and runs one
at a time per device. torch and diffusers are imported only inside the methods.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

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

TEMPORAL = 8  # the LTX VAE: 8 frames per latent frame (plus the first), 32 pixels per latent pixel
SPATIAL = 32
MODEL_FIX = "pass --video-option model=<hub id or folder>, e.g. model=Lightricks/LTX-Video-0.9.7-dev"
STARTS_ON_IMAGE = ("image_to_video", "last_frame_i2v")  # conditioning[-1] at frame 0
CONTINUES_VIDEO = ("continue_video", "loop_close")  # the tail of conditioning at frame 0
LEADS_INTO = ("extend_backward", "loop_close")  # end_conditioning[0] just after the new frames
# What the LTX-Video authors put in their own examples' negative prompt.
DEFAULT_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"


class LTXOptions(DiffusionOptions):
    """LTX-Video's options: the model (required), its rate and length, and how it is conditioned."""

    guidance: float = Field(default=3.0, ge=0.0, le=50.0, description="classifier-free guidance scale "
                            "(3 for LTX-Video 0.9.x dev; 1 for the distilled models)")  # fmt: skip
    negative_prompt: str = Field(default=DEFAULT_NEGATIVE, description="added to every shot's negative prompt")
    fps: Literal[24, 25] = Field(default=24, description="the rate clips are made at (LTX-Video was trained at 24 "
                                 "and 25 fps); a film at another rate is re-timed")  # fmt: skip
    max_frames: int = Field(default=121, ge=9, le=1025, description="the most frames one call makes, 8k+1: the "
                            "model's native length (121 at 24 fps is about 5 s; 0.9.7 manages 161 or 257)")  # fmt: skip
    context_frames: int = Field(default=9, ge=1, le=257, description="how many of the previous segment's last frames "
                                "a continuation is conditioned on, 8k+1 (1: the last frame only)")  # fmt: skip
    image_cond_noise_scale: float = Field(default=0.15, ge=0.0, le=1.0, description="noise added to the given "
                                          "frames while denoising: helps motion continue from a still frame")  # fmt: skip
    decode_timestep: float = Field(default=0.05, ge=0.0, le=1.0, description="the VAE's decode timestep (0.9.1 and "
                                   "later; ignored by VAEs without timestep conditioning)")  # fmt: skip
    decode_noise_scale: float = Field(default=0.025, ge=0.0, le=1.0, description="noise mixed in at decoding "
                                      "(0.9.1 and later)")  # fmt: skip

    @field_validator("max_frames", "context_frames")
    @classmethod
    def _eight_k_plus_one(cls, value: int) -> int:
        if value % TEMPORAL != 1:
            lower = value - (value - 1) % TEMPORAL
            raise ValueError(f"must be 8k+1 (LTX encodes 8k+1 frames), e.g. {lower} or {lower + TEMPORAL}")
        return value

    @field_validator("context_frames")
    @classmethod
    def _room_for_new_frames(cls, value: int, info: ValidationInfo) -> int:
        most = info.data.get("max_frames", 121)
        if value > most - TEMPORAL:
            raise ValueError(f"must leave room for new frames: at most {most - TEMPORAL} with max_frames={most}")
        return value


class LTXBackend(TorchModel, VideoBackend):
    """LTX-Video: text to video, image to video, and native continuation from a clip's tail frames."""

    name = "ltx"
    version = "1"
    description = "LTX-Video on diffusers (LTXConditionPipeline): native continuation from tail frames; a GPU"
    Options = LTXOptions
    requires = ("torch", "diffusers", "transformers", "accelerate")
    install = 'pip install "storyflow[models]"'
    prompt_shape = PromptShape(
        order=("action", "subject", "context", "camera", "style", "ambience", "composition"),
        max_words=200,
        negative_prompt=True,
        notes="LTX-Video follows long, detailed, chronological descriptions in one flowing paragraph: start with "
        "the main action, then specific movements and gestures, the subjects' appearance, the background, the "
        "camera angle and movement, lighting and colour, in literal, concrete words; it takes a negative prompt.",
    )

    options: LTXOptions

    def __init__(self, options: LTXOptions | None = None) -> None:
        # `storyflow backends` reads capabilities from a backend built without options; real use goes through
        # load_backend, which validates them (model is required there)
        super().__init__(options if options is not None else LTXOptions.model_construct(model=""))

    def check(self) -> None:
        """The model is named, and a folder exists and holds a saved pipeline, before any work starts."""
        self._source()

    @property
    def capabilities(self) -> VideoCapabilities:
        options = self.options
        # the longest clip whose continuation call (tail + new frames) stays within max_frames
        new_frames = (options.max_frames - options.context_frames) // TEMPORAL * TEMPORAL
        return VideoCapabilities(
            max_clip_seconds=new_frames / options.fps,
            fps=(options.fps,),
            size_multiple=SPATIAL,
            frame_step=TEMPORAL,  # new frames after the given ones: 8k (the model makes 8k+1 with the first)
            frame_offset=0,
            text_to_video=True,
            image_to_video=True,
            last_frame=True,  # a keyframe condition right after the clip
            extend_from_video=True,  # a video condition at frame 0
            extend_backward=True,
            context_frames=options.context_frames,
            seed=True,
            native_audio=False,
            cost_per_second=0.0,
            max_concurrency=1,  # one pipeline at a time per device
        )

    # ------------------------------------------------------------ making a clip

    def generate(self, request: ClipRequest) -> GeneratedVideo:
        """Make `request.num_frames` new frames, after the given ones it starts on (declared context_frames)."""
        # 1. which frames condition the clip, where they stand, and how many frames the model makes
        options, strategy, n = self.options, request.strategy, request.num_frames
        _check_size(request)
        conditions: list[tuple[str, list[np.ndarray], int]] = []  # (kind, frames, frame index)
        lead = 0  # frames returned before the new ones, repeating what was given
        if strategy in STARTS_ON_IMAGE:
            conditions.append(("image", [_given(request.conditioning, request, "conditioning")[-1]], 0))
            lead = 1
        elif strategy in CONTINUES_VIDEO:
            tail = _given(request.conditioning, request, "conditioning")
            lead = min(options.context_frames, (len(tail) - 1) // TEMPORAL * TEMPORAL + 1)  # 8k+1 of them
            conditions.append(("video", list(tail[-lead:]), 0))
        end = request.end_conditioning
        if strategy in LEADS_INTO:
            end = _given(end, request, "end_conditioning")
        if end is not None and len(end):
            conditions.append(("image", [end[0]], lead + n))  # the frame after the clip's last
        made = _model_frames(lead + n + (1 if end is not None and len(end) else 0))
        metadata: dict[str, Any] = {
            "strategy": strategy, "model": options.model, "pipeline": "LTXConditionPipeline", "model_frames": made,
            "conditions": [f"{kind} of {len(frames)} frame{'s' * (len(frames) > 1)} at frame {index}"
                           for kind, frames, index in conditions],
            "steps": options.steps, "guidance": options.guidance,
        }  # fmt: skip
        if request.conditioning is not None and strategy in ("text_to_video", "extend_backward"):
            metadata["conditioning"] = f"ignored: {strategy} starts from the prompt"

        # 2. generate (loaded once per process), holding the device
        pipe, device = self.pipeline()
        call = _condition_objects(conditions)
        negative = ", ".join(part for part in (request.negative_prompt.strip(), options.negative_prompt.strip()) if part)
        with on_device(device), running(f"the video backend 'ltx' ({options.model})", device), _refused(strategy):
            result = pipe(
                conditions=call or None, prompt=request.prompt, negative_prompt=negative or None,
                width=request.width, height=request.height, num_frames=made, frame_rate=request.fps,
                num_inference_steps=options.steps, guidance_scale=options.guidance,
                image_cond_noise_scale=options.image_cond_noise_scale, decode_timestep=options.decode_timestep,
                decode_noise_scale=options.decode_noise_scale, generator=generator(request.seed, device),
                output_type="np",
            )  # fmt: skip
        frames = uint8_frames(result.frames)[: lead + n]
        return GeneratedVideo(frames=frames, context_frames=lead, metadata=metadata)

    def pipeline(self) -> tuple[Any, str]:
        """The loaded LTXConditionPipeline and the device it runs on (loaded once per process)."""
        from diffusers import LTXConditionPipeline

        options = self.options
        source = self._source()
        device = resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
        key = (LTXConditionPipeline.__name__, source, options.revision, device, str(dtype), options.offload,
               options.vae_tiling)  # fmt: skip

        def load() -> Any:
            quiet_libraries()
            pipe = LTXConditionPipeline.from_pretrained(source, revision=options.revision, dtype=dtype)
            pipe.set_progress_bar_config(disable=True)
            if pipe.scheduler.config.get("use_dynamic_shifting"):
                # the condition pipeline passes its own timesteps and no `mu`: a dynamically shifting scheduler
                # would fail every call ("`mu` must be passed"), so its schedule is used as given
                pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, use_dynamic_shifting=False)
            return place(pipe, options, device)

        with loading("the video backend 'ltx'", source, device):
            return WARM.get(key, load), device

    def _source(self) -> str:
        if not self.options.model:
            raise BackendOptionError("the video backend 'ltx' needs a model", fix=MODEL_FIX)
        return model_source(self.options.model, "video", self.name)


# ---------------------------------------------------------------- helpers


def _model_frames(frames: int) -> int:
    """The fewest frames LTX makes (8k+1) that hold `frames`."""
    return max(0, -(-(frames - 1) // TEMPORAL)) * TEMPORAL + 1


def _check_size(request: ClipRequest) -> None:
    if request.width % SPATIAL or request.height % SPATIAL:
        raise GenerationError(f"ltx makes frames whose sides are multiples of {SPATIAL}, asked for "
                              f"{request.width}x{request.height}",
                              fix="conform the request to the backend's capabilities first (storyflow does)")  # fmt: skip


def _given(frames: Any, request: ClipRequest, argument: str) -> np.ndarray:
    """`frames` checked: uint8 (N, H, W, 3) at the clip's size, at least one."""
    import numpy as np

    example = "storyflow.media.first_frames(path, 1)" if argument == "end_conditioning" else \
        "storyflow.media.last_frames(path, 9)"  # fmt: skip
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


def _condition_objects(conditions: list[tuple[str, list[np.ndarray], int]]) -> list[Any]:
    """LTXVideoCondition objects: PIL images, a video as a list of them."""
    if not conditions:
        return []
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
    from PIL import Image

    made = []
    for kind, frames, index in conditions:
        images = [Image.fromarray(frame).convert("RGB") for frame in frames]
        if kind == "image":
            made.append(LTXVideoCondition(image=images[0], frame_index=index))
        else:
            made.append(LTXVideoCondition(video=images, frame_index=index))
    return made


@contextlib.contextmanager
def _refused(strategy: str) -> Iterator[None]:
    """The pipeline's own refusals (ValueError: a size, a frame count) as a GenerationError naming the fix."""
    try:
        yield
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise GenerationError(f"LTX-Video refused the '{strategy}' clip: {first}",
                              fix="check the request follows the backend's capabilities (sizes multiples of 32, "
                              "frames 8k) and the model is an LTX-Video 0.9.x condition model") from None  # fmt: skip
