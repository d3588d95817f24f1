"""Open models on torch, shared by the backends that run them: where, in what precision, loaded once.

Every diffusers video backend and transformers sound backend takes the same options for
where its model comes from and where it runs (TorchOptions; DiffusionOptions adds the
sampling and memory options of a diffusion pipeline), and goes through the same four
steps, written once here:

1. `model_source`: a folder saved with `save_pretrained`, or a hub id. A path that is not
   such a folder is an error naming the folder, before any work starts.
2. `WARM.get(key, load)`: a model is loaded once per process and kept warm for every shot
   and segment after (minutes of loading paid once, not once per shot). `WARM.loads`
   counts real loads (the tests read it).
3. `loading(...)`: whatever goes wrong while loading (out of memory, missing files, a hub id
   with no network, a folder of another kind of model) becomes an error that names the fix:
   `offload=model`, `dtype=float16`, the folder path, HF_HUB_OFFLINE.
4. `on_device(device)`: one pipeline at a time on a device in this process, so Prefect tasks
   that share a GPU never run two pipelines on it at once (the flow runs shots on threads).

Torch, diffusers and transformers are imported inside the functions: importing this module
costs nothing.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import Field, field_validator

from storyflow.backends.base import BackendOptions, SharedLimit
from storyflow.core.errors import BackendUnavailableError, GenerationError

if TYPE_CHECKING:
    import numpy as np
    import torch

T = TypeVar("T")

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
Dtype = Literal["auto", "bfloat16", "float16", "float32"]
Offload = Literal["none", "model", "sequential", "group"]


class TorchOptions(BackendOptions):
    """Where a model comes from and where it runs."""

    model: str = Field(min_length=1, description="a hub id, or a folder saved with save_pretrained")
    revision: str | None = Field(default=None, description="the hub revision (a branch, tag or commit)")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N or mps")
    dtype: Dtype = Field(default="auto", description="auto (bfloat16 on a GPU, float32 on the CPU), bfloat16, "
                         "float16 or float32")  # fmt: skip

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError("must be auto, cpu, cuda, cuda:N (e.g. cuda:1) or mps")
        return value


class DiffusionOptions(TorchOptions):
    """A diffusion pipeline's sampling and memory options, on top of where it runs."""

    steps: int = Field(default=30, ge=1, le=500, description="denoising steps")
    guidance: float = Field(default=5.0, ge=0.0, le=50.0, description="classifier-free guidance scale")
    offload: Offload = Field(default="none", description="none, model (whole models to the CPU between uses), "
                             "sequential (layer by layer: least memory, slowest) or group (blocks)")  # fmt: skip
    vae_tiling: bool = Field(default=False, description="decode in tiles: less memory for large frames")
    negative_prompt: str = Field(default="", description="added to every shot's negative prompt")


# ---------------------------------------------------------------- where it comes from


def model_source(model: str, kind: str, name: str) -> str:
    """The folder (as a path) or hub id to load `model` from; BackendUnavailableError for a folder that is not one."""
    looks_like_path = model.startswith(("/", ".", "~")) or Path(model).expanduser().exists() or "\\" in model
    if not looks_like_path:
        return model  # a hub id: from the hub, or the local hub cache (HF_HUB_OFFLINE=1)
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise BackendUnavailableError(
            f"the {kind} backend '{name}' cannot find the model folder {folder}",
            fix=f"point --{kind}-option model=... at a folder saved with save_pretrained, or at a hub id",
        )
    if not any((folder / marker).is_file() for marker in ("model_index.json", "config.json")):
        raise BackendUnavailableError(
            f"the {kind} backend '{name}': {folder} holds no model (no model_index.json or config.json)",
            fix="point model=... at the folder save_pretrained wrote (or the hub snapshot folder)",
        )
    return str(folder)


# ---------------------------------------------------------------- where it runs


def resolve_device(name: str) -> str:
    """'auto' -> cuda when a GPU is there, else mps, else cpu; a named device must exist."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailableError(f"device {name} was asked for, and this machine has no CUDA GPU "
                                      "(or torch is a CPU build)",
                                      fix="use device=cpu (slow) or device=auto, or install a CUDA build of torch "
                                      "(see the README)")  # fmt: skip
    if name.startswith("cuda:") and int(name.split(":")[1]) >= torch.cuda.device_count():
        raise BackendUnavailableError(f"device {name} does not exist: this machine has "
                                      f"{torch.cuda.device_count()} GPU(s)", fix="use cuda:0 ... or device=auto")  # fmt: skip
    return name


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """'auto' -> bfloat16 on a GPU (float16 where bfloat16 is not supported), float32 on the CPU."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def place(pipe: Any, options: DiffusionOptions, device: str) -> Any:
    """Put a pipeline where it runs: on the device, or offloaded as `offload` says; VAE tiling when asked."""
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif options.offload == "group":
        import torch

        pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                  offload_type="block_level", num_blocks_per_group=1)  # fmt: skip
    else:
        pipe.to(device)
    if options.vae_tiling and hasattr(pipe, "vae") and hasattr(pipe.vae, "enable_tiling"):
        pipe.vae.enable_tiling()
    return pipe


def generator(seed: int, device: str) -> torch.Generator:
    """A generator seeded for one call, on the device the noise is drawn on."""
    import torch

    return torch.Generator(device="cpu" if device == "mps" else device).manual_seed(seed % 2**63)


# ---------------------------------------------------------------- what every such backend shares


class TorchModel:
    """Mixin for a backend built from TorchOptions: its model and revision are the options', its
    folder is checked before any work, and where it runs (device, offload) is not part of what it
    makes: a clip made on cuda:1 is reused on cuda:0."""

    operational: ClassVar[frozenset[str]] = frozenset({"device", "offload"})
    options: TorchOptions
    kind: ClassVar[str]
    name: ClassVar[str]

    @property
    def model(self) -> str:
        return self.options.model

    @property
    def revision(self) -> str:
        return self.options.revision or ""

    def check(self) -> None:
        """The model folder is there (a hub id is looked up when loaded), before any work starts."""
        model_source(self.options.model, self.kind, self.name)

    def shared_limits(self) -> tuple[SharedLimit, ...]:
        """One pipeline at a time on its device, for every run on this machine (the device resolved: a GPU)."""
        import socket

        device = resolve_device(self.options.device)
        host = re.sub(r"[^a-z0-9]+", "-", socket.gethostname().lower()).strip("-") or "host"
        return (SharedLimit(f"storyflow-device-{host}-{device.replace(':', '-')}", 1,
                            why=f"pipelines at once on {device} of {socket.gethostname()}"),)  # fmt: skip

    def warm_key(self, *extra: Hashable) -> tuple[Hashable, ...]:
        """What identifies the loaded model in WARM: backend class, model, revision, device and dtype (resolved)."""
        device = resolve_device(self.options.device)
        dtype = str(resolve_dtype(self.options.dtype, device)).removeprefix("torch.")
        cls = type(self)
        return (f"{cls.__module__}.{cls.__qualname__}", self.options.model, self.options.revision, device, dtype,
                *extra)  # fmt: skip


def quiet_libraries() -> None:
    """No progress bars or notices from transformers and diffusers: storyflow reports what it does itself."""
    from transformers.utils import logging as transformers_logging

    libraries = [transformers_logging]
    try:
        from diffusers.utils import logging as diffusers_logging

        libraries.append(diffusers_logging)
    except ImportError:  # the sound backends need only transformers
        pass
    for library in libraries:
        library.set_verbosity_error()
        library.disable_progress_bar()


@contextlib.contextmanager
def seeded(seed: int, device: str) -> Iterator[None]:
    """Seed torch's global generators for one call, then put them back (for models that take no generator)."""
    import torch

    where = torch.device(device)
    devices = [where.index or 0] if where.type == "cuda" else []  # the CPU's generator is always kept
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed % 2**63)
        yield


# ---------------------------------------------------------------- loaded once


class Warm:
    """Models loaded in this process, by what identifies them; each loaded once, then reused."""

    def __init__(self) -> None:
        self._models: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self.loads: Counter[Hashable] = Counter()  # real loads per key: the tests count them

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        with self._lock:  # two shots asking at once wait for one load
            if key not in self._models:
                self._models[key] = load()
                self.loads[key] += 1
            return self._models[key]

    def clear(self) -> None:
        """Forget every model (their memory is freed when nothing else holds them)."""
        with self._lock:
            self._models.clear()


WARM = Warm()
_DEVICE_LOCKS: dict[str, threading.Lock] = {}
_DEVICE_LOCKS_LOCK = threading.Lock()


@contextlib.contextmanager
def on_device(device: str) -> Iterator[None]:
    """Hold the device: one pipeline at a time on it in this process (a GPU shared by tasks on threads)."""
    with _DEVICE_LOCKS_LOCK:
        lock = _DEVICE_LOCKS.setdefault(device, threading.Lock())
    with lock:
        yield


@contextlib.contextmanager
def loading(what: str, model: str, device: str) -> Iterator[None]:
    """Turn whatever goes wrong while loading `model` into an error that names the fix."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError:
        raise BackendUnavailableError(
            f"{what}: {model} does not fit in memory on {device}",
            fix="use offload=model (or offload=sequential), dtype=float16 or bfloat16, or a smaller model",
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"the folder {model}" if Path(model).expanduser().is_dir() else f"the hub id {model}"
        raise BackendUnavailableError(
            f"{what}: cannot load {where}: {first[:300]}",
            fix="check the folder holds what save_pretrained wrote for this kind of model, or the hub id and "
            "revision; without a network, download the model first (huggingface-cli download) and set "
            "HF_HUB_OFFLINE=1",
        ) from None


@contextlib.contextmanager
def running(what: str, device: str) -> Iterator[None]:
    """Turn a failure while a model runs into a GenerationError that names the fix."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError:
        raise GenerationError(
            f"{what} ran out of memory on {device}",
            fix="use offload=model, vae_tiling=true, dtype=float16, or a smaller size or fewer frames",
        ) from None
    except (RuntimeError, ValueError) as exc:  # a device or kernel failure, or arguments the model refuses
        raise GenerationError(f"{what} failed on {device}: {str(exc).strip().splitlines()[0][:300]}",
                              fix="try device=cpu or dtype=float32; rerun with --debug for the traceback")  # fmt: skip


# ---------------------------------------------------------------- frames


def uint8_frames(video: Any) -> list[np.ndarray]:
    """A pipeline's frames (output_type="np": floats in [0, 1], (F, H, W, 3) or (1, F, H, W, 3)) as uint8 arrays."""
    import numpy as np

    array = np.asarray(video)
    if array.ndim == 5:
        array = array[0]
    return [frame for frame in (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)]
