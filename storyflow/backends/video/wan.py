"""The wan video backend: Wan 2.1 / 2.2 on Hugging Face diffusers, run in this process.

`--video-backend wan --video-option model=Wan-AI/Wan2.1-T2V-1.3B-Diffusers` (a hub id, or a
folder saved with save_pretrained) makes every clip from its prompt with `WanPipeline`.
`--video-option i2v_model=Wan-AI/Wan2.2-I2V-A14B-Diffusers` adds `WanImageToVideoPipeline`,
which starts a clip on a given frame: continuing shots, and the next segment of a long shot
(Wan has no native video continuation: it continues from the last frame, image to video).

What the image-to-video model can do depends on its layout, read from its configs (cheap
JSON, no weights) and declared honestly in the capabilities:

    Wan 2.2 A14B (two transformers, boundary_ratio,  first frame, and optionally a last frame:
      no image encoder)                              loops and backward extension
    Wan 2.1 I2V (a CLIP image encoder)               first frame only
    Wan 2.1 FLF2V (CLIP, image pos-embeddings for 2) first AND last frame, always: no plain
                                                     image-to-video, backward extension only
    Wan 2.2 TI2V-5B (expand_timesteps)               first frame only (it ignores last_image)

Frames, per strategy (conditioning arrives as uint8 (N, H, W, 3) at the clip's size):
    text_to_video                          WanPipeline, num_frames frames
    image_to_video, last_frame_i2v,        image=conditioning[-1]; the model returns that frame
      continue_video                       as frame 0 (context_frames=1), then num_frames new ones
    loop_close                             image=conditioning[-1], last_image=end_conditioning[0]
    extend_backward                        a one-frame WanPipeline pass draws the prompt's first
                                           frame, then image=that, last_image=end_conditioning[0];
                                           the num_frames just before the given head are kept
A clip that must hold given frames asks the model for one latent frame (4 frames) more than it
keeps, so it always has num_frames new frames between the given ones; the capabilities keep
that inside the model's native length (`native_frames`). Between a given first and last
frame the two spare frames are dropped evenly (a 2-in-83 retime at full length).

Both pipelines are loaded once per process (storyflow.backends.torch_models.WARM) and run
one at a time per device. torch and diffusers are imported only inside the methods.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

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
from storyflow.core.errors import BackendOptionError, BackendUnavailableError, GenerationError

if TYPE_CHECKING:
    import numpy as np

    from storyflow.core.models import ClipRequest

MODEL_FIX = "pass --video-option model=<hub id or folder>, e.g. model=Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
I2V_FIX = "pass the image-to-video model as --video-option i2v_model=..., e.g. Wan-AI/Wan2.2-I2V-A14B-Diffusers"
STARTS_ON_GIVEN = ("image_to_video", "last_frame_i2v", "continue_video", "loop_close")  # image=conditioning[-1]
NEEDS_END = ("loop_close", "extend_backward")  # last_image=end_conditioning[0]
# What Wan was trained to avoid, in the words of its own default negative prompt (English).
DEFAULT_NEGATIVE = ("oversaturated, overexposed, static, blurred details, subtitles, overall grey, worst quality, "
                    "low quality, JPEG artefacts, deformed, disfigured, extra fingers, fused fingers, still picture, "
                    "cluttered background, walking backwards")  # fmt: skip


class WanOptions(DiffusionOptions):
    model: str = Field(default="", validate_default=True,
                       description="the text-to-video model: a hub id or a folder saved with save_pretrained (required)")  # fmt: skip
    i2v_model: str | None = Field(default=None, description="the image-to-video model (hub id or folder): clips that "
                                  "start on a given frame; without it every clip starts from its prompt")  # fmt: skip
    i2v_revision: str | None = Field(default=None, description="the image-to-video model's hub revision")
    fps: int = Field(default=16, ge=1, le=60, description="the model's frame rate: 16 (Wan 2.1, 2.2 A14B), "
                     "24 (Wan 2.2 TI2V-5B)")  # fmt: skip
    native_frames: int = Field(default=81, ge=5, le=1001, description="the clip length the model was trained on: "
                               "81 (Wan 2.1, 2.2 A14B), 121 (Wan 2.2 TI2V-5B)")  # fmt: skip
    negative_prompt: str = Field(default=DEFAULT_NEGATIVE, description="added to every shot's negative prompt")

    @field_validator("model")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"required: {MODEL_FIX}")
        return value.strip()


@dataclass(frozen=True)
class Layout:
    """What a Wan folder can do, read from its configs (model_index.json, transformer/, vae/)."""

    pipeline: str  # model_index.json's _class_name
    text_to_video: bool  # makes clips from the prompt alone (WanPipeline; TI2V-5B does both)
    image_to_video: bool  # starts on given frames (encoded frames in its input channels, or TI2V's first latent)
    single_frame: bool  # starts on one given frame alone (image= without last_image=)
    last_image: bool  # last_image= is honoured
    size_multiple: int  # VAE spatial factor x patch size: 16 (Wan 2.1, A14B), 32 (TI2V-5B)
    frame_step: int  # VAE temporal factor: frames are frame_step * k + 1

    @property
    def name(self) -> str:
        if not self.image_to_video:
            return "text-to-video"
        if not self.single_frame:
            return "first-last-frame (FLF2V): needs both frames"
        return "image-to-video, first and last frame" if self.last_image else "image-to-video, first frame only"


class WanBackend(TorchModel, VideoBackend):
    """Wan 2.1 / 2.2 text-to-video, and image-to-video from a given first (and last) frame."""

    name = "wan"
    version = "1"
    description = "Wan 2.1 / 2.2 open video models on diffusers (a GPU, or very slow on the CPU)"
    Options = WanOptions
    requires = ("torch", "diffusers", "transformers", "accelerate", "ftfy")
    install = 'pip install "storyflow[models]"'
    prompt_shape = PromptShape(
        max_words=150,
        negative_prompt=True,
        notes="Wan follows long, concrete, descriptive prompts: write full sentences naming the subject's look "
        "and action, the setting, the light, the style and the camera move; it honours a negative prompt.",
    )

    options: WanOptions

    def __init__(self, options: WanOptions | None = None) -> None:
        # `storyflow backends` lists capabilities from a backend built without options: build it unvalidated
        # (no model: text-to-video at Wan's rules); any real use goes through load_backend and validation.
        super().__init__(options if options is not None else WanOptions.model_construct(model=""))
        self._layouts: dict[str, Layout] = {}

    # ------------------------------------------------------------ what it can do

    def check(self) -> None:
        """The model folders exist and hold the right kind of Wan pipeline, before any work starts."""
        self._model_named()
        t2v = self.layout("t2v")
        if not t2v.text_to_video:
            raise BackendUnavailableError(
                f"the video backend 'wan': model={self.options.model} is an image-to-video model ({t2v.pipeline})",
                fix=f"pass a text-to-video model as model=..., e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers; {I2V_FIX}",
            )
        if self.options.i2v_model:
            i2v = self.layout("i2v")
            if not i2v.image_to_video:
                raise BackendUnavailableError(
                    f"the video backend 'wan': i2v_model={self.options.i2v_model} is a text-to-video model "
                    f"({i2v.pipeline}): it cannot start on a given frame",
                    fix=f"{I2V_FIX} (or leave i2v_model out: every clip then starts from its prompt)",
                )

    @property
    def capabilities(self) -> VideoCapabilities:
        options = self.options
        layouts = [self.layout("t2v")] if options.model else []
        i2v = self.layout("i2v") if options.model and options.i2v_model else None
        if i2v is not None:
            layouts.append(i2v)
        step = max((layout.frame_step for layout in layouts), default=4)
        multiple = math.lcm(*(layout.size_multiple for layout in layouts)) if layouts else 16
        # a clip that holds given frames asks for `step` frames more than it keeps: stay within the native length
        frames = options.native_frames - (step if i2v is not None else 0)
        return VideoCapabilities(
            max_clip_seconds=frames / options.fps,
            fps=(options.fps,),
            size_multiple=multiple,
            frame_step=step,
            frame_offset=1,
            text_to_video=True,
            image_to_video=i2v is not None and i2v.single_frame,
            last_frame=i2v is not None and i2v.last_image,
            extend_from_video=False,  # it continues from the last frame: the planner asks for last_frame_i2v
            extend_backward=i2v is not None and i2v.last_image,
            context_frames=1,
            seed=True,
            native_audio=False,
            cost_per_second=0.0,
            max_concurrency=1,  # one GPU, one pipeline at a time
        )

    def layout(self, which: str) -> Layout:
        """The layout of the text-to-video ("t2v") or image-to-video ("i2v") model, read once from its configs."""
        if which not in self._layouts:
            model, revision = self._source(which)
            self._layouts[which] = read_layout(model, revision, self.options.i2v_model if which == "i2v" else None)
        return self._layouts[which]

    # ------------------------------------------------------------ making a clip

    def generate(self, request: ClipRequest) -> GeneratedVideo:
        """Make `request.num_frames` new frames (after the given first frame, for image-to-video)."""
        # 1. what the request needs from the loaded layouts, checked before anything loads
        self._model_named()
        options, strategy, n = self.options, request.strategy, request.num_frames
        start = _last(request.conditioning, "conditioning") if strategy in STARTS_ON_GIVEN else None
        end = _first(request.end_conditioning, "end_conditioning")
        i2v = self.layout("i2v") if options.i2v_model else None
        metadata: dict[str, Any] = {"strategy": strategy, "model": options.model, "steps": options.steps,
                                    "guidance": options.guidance, "num_frames": n}  # fmt: skip
        if end is not None and (i2v is None or not i2v.last_image):
            if strategy in NEEDS_END:
                raise GenerationError(
                    f"wan cannot make a '{strategy}' clip: "
                    + (f"its image-to-video model ({i2v.name}) takes no last frame" if i2v else "it has no i2v_model"),
                    fix="use an image-to-video model that takes a last frame, e.g. "
                    "i2v_model=Wan-AI/Wan2.2-I2V-A14B-Diffusers (its capabilities then say last_frame)",
                )
            metadata["end_conditioning"] = "ignored: the image-to-video model takes no last frame"
            end = None
        if start is not None and (i2v is None or not i2v.single_frame) and end is None:
            raise GenerationError(
                f"wan cannot make a '{strategy}' clip: "
                + (f"its image-to-video model ({i2v.name}) cannot start on a frame alone" if i2v else
                   "it has no i2v_model, so it cannot start on a given frame"),
                fix=(f"{I2V_FIX}; without one, the planner makes every segment text to video" if i2v is None else
                     "use an i2v_model that starts on one frame, e.g. Wan-AI/Wan2.2-I2V-A14B-Diffusers (the "
                     "planner reads the capabilities: image_to_video is false for this one)"),
            )  # fmt: skip
        if n % self.capabilities.frame_step != 1:
            raise GenerationError(f"wan makes clips of 4k+1 frames, asked for {n}",
                                  fix="conform the request to the backend's capabilities first (storyflow does)")  # fmt: skip

        # 2. generate
        negative = ", ".join(part for part in (request.negative_prompt.strip(), options.negative_prompt.strip()) if part)
        device = resolve_device(options.device)
        seed_generator = generator(request.seed, device)
        common = {"prompt": request.prompt, "negative_prompt": negative, "width": request.width,
                  "height": request.height, "num_inference_steps": options.steps,
                  "guidance_scale": options.guidance, "output_type": "np"}  # fmt: skip
        step = self.capabilities.frame_step
        context = 0
        if start is None and end is None:  # from the prompt alone
            frames = self._run("t2v", device, common, num_frames=n, generator=seed_generator)
            metadata["pipelines"] = ["WanPipeline"]
        elif end is None:  # starts on the given frame: it comes back as frame 0, then n new frames
            frames = self._run("i2v", device, common, num_frames=n + step, generator=seed_generator,
                               image=_image(start))[: n + 1]  # fmt: skip
            context = 1
        elif start is not None:  # between a given first and last frame: n of the n + 2 between them, evenly
            made = self._run("i2v", device, common, num_frames=n + step, generator=seed_generator,
                             image=_image(start), last_image=_image(end))  # fmt: skip
            between = made[1:-1]
            frames = [made[0], *(between[index] for index in _evenly(len(between), n))]
            context = 1
            metadata["retimed"] = f"{len(between) - n} of the {len(between)} frames between the given ones dropped evenly"
        else:  # leads into a given head from the prompt: the prompt's first frame, then to the head
            first = self._run("t2v", device, common, num_frames=1, generator=seed_generator)[0]
            made = self._run("i2v", device, common, num_frames=n + step, generator=generator(request.seed, device),
                             image=_image(first), last_image=_image(end))  # fmt: skip
            frames = made[len(made) - 1 - n : len(made) - 1]  # the n frames just before the given head
            metadata["first_frame"] = "drawn from the prompt by a one-frame text-to-video pass"
            metadata["pipelines"] = ["WanPipeline", "WanImageToVideoPipeline"]
        metadata.setdefault("pipelines", ["WanImageToVideoPipeline"])
        metadata["given"] = [name for name, frame in (("first", start), ("last", end)) if frame is not None]
        return GeneratedVideo(frames=frames, context_frames=context, metadata=metadata)

    def _run(self, which: str, device: str, common: dict[str, Any], **call: Any) -> list[np.ndarray]:
        """One pipeline call, loaded once per process, holding the device; its frames as uint8 arrays."""
        with on_device(device):  # loading too: a model does not arrive on a GPU while another one runs there
            pipe = self.pipeline(which, device)
            with running(f"the video backend 'wan' ({which})", device):
                result = pipe(**common, **call)
        return uint8_frames(result.frames)

    def pipeline(self, which: str, device: str | None = None) -> Any:
        """The loaded WanPipeline ("t2v") or WanImageToVideoPipeline ("i2v"), once per process."""
        from diffusers import WanImageToVideoPipeline, WanPipeline

        options = self.options
        device = device or resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
        cls = WanPipeline if which == "t2v" else WanImageToVideoPipeline
        model, revision = self._source(which)
        key = (cls.__name__, model, revision, device, str(dtype), options.offload, options.vae_tiling)

        def load() -> Any:
            quiet_libraries()
            import torch
            from diffusers import AutoencoderKLWan

            # Wan's VAE decodes in float32 whatever the transformer runs in (as Wan's own examples load it)
            vae = AutoencoderKLWan.from_pretrained(model, subfolder="vae", revision=revision, dtype=torch.float32)
            pipe = cls.from_pretrained(model, revision=revision, dtype=dtype, vae=vae)
            pipe.set_progress_bar_config(disable=True)
            return place(pipe, options, device)

        with loading(f"the video backend 'wan' ({which})", model, device):
            return WARM.get(key, load)

    # ------------------------------------------------------------ helpers

    def _model_named(self) -> None:
        if not self.options.model:
            raise BackendOptionError("the video backend 'wan' needs a model", fix=MODEL_FIX)

    def _source(self, which: str) -> tuple[str, str | None]:
        """The folder or hub id, and revision, of the t2v or i2v model (a missing folder is named)."""
        options = self.options
        if which == "t2v":
            return model_source(options.model, "video", self.name), options.revision
        if not options.i2v_model:
            raise GenerationError("the video backend 'wan' has no image-to-video model", fix=I2V_FIX)
        try:
            return model_source(options.i2v_model, "video", self.name), options.i2v_revision
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(exc.message.replace("model folder", "i2v_model folder"),
                                          fix="point --video-option i2v_model=... at a folder saved with "
                                          "save_pretrained, or at a hub id") from None  # fmt: skip


def read_layout(source: str, revision: str | None, i2v: str | None = None) -> Layout:
    """A Wan folder's (or hub id's) layout from its JSON configs: no weights are read."""
    option = "i2v_model" if i2v else "model"
    try:
        index = _config(source, revision, "model_index.json")
        present = [part for part in ("transformer", "transformer_2") if (index.get(part) or [None])[0]]
        if not present or "vae" not in index:
            raise ValueError(f"model_index.json names no transformer or vae ({index.get('_class_name')})")
        transformer = _config(source, revision, f"{present[0]}/config.json")
        vae = _config(source, revision, "vae/config.json")
    except BackendUnavailableError:
        raise
    except Exception as exc:  # not found (offline, misspelt, gated), not a Wan folder
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailableError(
            f"the video backend 'wan' cannot read the Wan pipeline {option}={source}: {first[:300]}",
            fix=f"point {option}=... at a Wan diffusers folder (model_index.json, transformer/, vae/) or hub id; "
            "without a network, download it first (huggingface-cli download) and set HF_HUB_OFFLINE=1",
        ) from None
    latents = int(vae.get("z_dim", 16))
    reads_frames = int(transformer.get("in_channels", latents)) > latents  # noise + mask + encoded frames
    clip_images = transformer.get("image_dim") is not None  # Wan 2.1 I2V / FLF2V: CLIP image embeddings
    both_frames = clip_images and transformer.get("pos_embed_seq_len") is not None  # FLF2V: embeds 2 images
    expand = bool(index.get("expand_timesteps"))  # Wan 2.2 TI2V-5B: conditions the first latent frame only
    patch = transformer.get("patch_size") or [1, 2, 2]
    return Layout(
        pipeline=str(index.get("_class_name", "?")),
        text_to_video=not reads_frames,
        image_to_video=reads_frames or expand,
        single_frame=(reads_frames or expand) and not both_frames,
        last_image=reads_frames and not expand and (both_frames or not clip_images),
        size_multiple=int(vae.get("scale_factor_spatial", 8)) * int(patch[1]),
        frame_step=int(vae.get("scale_factor_temporal", 4)),
    )


def _config(source: str, revision: str | None, name: str) -> dict[str, Any]:
    """One JSON config of a folder or hub repo (hub files come from the local cache when offline)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        path = folder / name
    else:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(source, name, revision=revision))
    return json.loads(path.read_text(encoding="utf-8"))


def _last(frames: Any, argument: str) -> np.ndarray:
    if frames is None or len(frames) == 0:
        raise GenerationError(f"wan needs {argument} frames for this strategy, got none",
                              fix="pass the previous clip's last frame, e.g. storyflow.media.last_frames(path, 1)")  # fmt: skip
    return frames[-1]


def _first(frames: Any, argument: str) -> np.ndarray | None:
    return None if frames is None or len(frames) == 0 else frames[0]


def _image(frame: np.ndarray) -> Any:
    """A uint8 (H, W, 3) frame as the PIL image the pipeline takes."""
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).convert("RGB")


def _evenly(have: int, keep: int) -> list[int]:
    """`keep` indices of `have` frames, spread evenly (the ones dropped are far apart)."""
    return [min(have - 1, round((i + 0.5) * have / keep - 0.5)) for i in range(keep)]
