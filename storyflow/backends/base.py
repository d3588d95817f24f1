"""The backend contracts: one small abstract class per kind, capabilities and needs as data.

The pipeline never names a concrete model. It asks a backend what it can do
(`capabilities`) and plans around the answer: how long a clip may be and in which steps,
at which sizes and frame rates, whether it can start from a frame or continue a video,
whether a seed is honoured.

A backend states what it needs to run, as data: the packages it imports (`requires`,
with the command that installs them) and the environment variables that hold its key
(`key_env`). `check_available()` checks both before any work starts, and the message
names the install command or the variable. A backend is built from its options, a
pydantic model with extra="forbid", so a typo in an option is an error that names the
option. Heavy imports (torch, diffusers, google-genai) belong inside the backend's
methods, never at module top level.

Every cache key names the backend, its model and the model's revision (`identity()`):
a new model, or a new revision of one, never reuses another's output.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from storyflow.core.errors import BackendUnavailableError

if TYPE_CHECKING:
    import numpy as np

    from storyflow.core.models import (
        ClipRequest,
        LLMUsage,
        PlanAnswer,
        PromptAnswer,
        Shot,
        ShotPrompt,
        Story,
        Storyboard,
    )
    from storyflow.core.templates import PromptFolder


@dataclass(frozen=True)
class SharedLimit:
    """A limit every run of a backend shares, across processes and machines (the flows make it a
    Prefect global concurrency limit, created with `limit` when missing; a person may change it
    there, in the UI's Concurrency page, and storyflow keeps their number).

    `per_minute=False`: at most `limit` calls at once (a GPU slot, a provider's jobs in flight);
    `per_minute=True`: at most `limit` calls started a minute (a provider's request rate).
    """

    name: str  # e.g. "storyflow-veo-jobs", "storyflow-gpu-host1-cuda-0"
    limit: int
    per_minute: bool = False
    why: str = ""  # what it protects, for people reading the limits


def provider_limits(backend: str, in_flight: int, per_minute: int, base_url: str | None = None
                    ) -> tuple[SharedLimit, SharedLimit]:  # fmt: skip
    """A hosted provider's limits, shared by every run that calls it: jobs in flight, and jobs started a minute.
    Another endpoint (`base_url`: a proxy, a regional or test server) has limits of its own."""
    import re
    from urllib.parse import urlsplit

    where = backend + (f"-{re.sub(r'[^a-z0-9]+', '-', urlsplit(base_url).netloc.lower()).strip('-')}" if base_url else "")
    return (SharedLimit(f"storyflow-{where}-jobs", in_flight, why=f"{backend} jobs in flight at once"),
            SharedLimit(f"storyflow-{where}-starts", per_minute, per_minute=True,
                        why=f"{backend} jobs started a minute"))  # fmt: skip


class BackendOptions(BaseModel):
    """Base for a backend's options: unknown names are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(ABC):
    """What every backend has: a registry name, a version, typed options, and what it needs."""

    kind: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    # What it needs to run: the packages it imports (import names), how to install them, and
    # the environment variables that hold its key (any one of them will do).
    requires: ClassVar[tuple[str, ...]] = ()
    install: ClassVar[str] = ""  # e.g. 'pip install "storyflow[diffusers]"'; default: pip install <requires>
    key_env: ClassVar[tuple[str, ...]] = ()
    # Options that change how an output is fetched, paid for or where it runs, never what it is
    # (retries, prices, the GPU it ran on): recorded with the output, left out of its cache key.
    operational: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: BackendOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @property
    def label(self) -> str:
        """'<name> <version>': what the catalog and the film summary record."""
        return f"{self.name} {self.version}"

    @property
    def model(self) -> str:
        """The model this backend runs: a hub id, a folder, an API model name (default: its label)."""
        return self.label

    @property
    def revision(self) -> str:
        """The model's revision: a commit, a release, an API version ("" when `model` says it all)."""
        return ""

    @property
    def model_ref(self) -> str:
        """'<model>@<revision>' (or the model alone): what the catalog records as the model."""
        return f"{self.model}@{self.revision}" if self.revision else self.model

    def identity(self) -> dict[str, Any]:
        """What every cache key of this backend's output names: backend, version, model, revision, and the
        options that can change the output (not the `operational` ones)."""
        options = {name: value for name, value in self.options_dict().items() if name not in self.operational}
        return {"backend": self.name, "version": self.version, "model": self.model, "revision": self.revision,
                "options": options}  # fmt: skip

    def options_dict(self) -> dict[str, Any]:
        """Options as plain data for cache keys and the catalog (never secrets)."""
        return self.options.model_dump(mode="json")

    def check_available(self) -> None:
        """BackendUnavailableError naming the fix if this backend cannot run here: a package, a key, its own checks."""
        import os

        # 1. the packages it imports, without importing them (torch alone takes seconds)
        missing = [package for package in self.requires if not _installed(package)]
        if missing:
            raise BackendUnavailableError(
                f"the {self.kind} backend '{self.name}' needs {', '.join(missing)}, which is not installed",
                fix=self.install or f"pip install {' '.join(missing)}",
            )
        # 2. its key, from the environment only
        if self.key_env and not any(os.environ.get(variable) for variable in self.key_env):
            raise BackendUnavailableError(
                f"the {self.kind} backend '{self.name}' needs an API key and none is set",
                fix=f"set {' or '.join(self.key_env)} in the environment (keys are never options), "
                f"or pick another backend ({FLAGS[self.kind]})",
            )
        # 3. whatever else it must see before work starts (a model folder, a voice)
        self.check()

    def check(self) -> None:  # noqa: B027 - optional hook
        """A backend's own checks beyond packages and keys; raise BackendUnavailableError naming the fix."""

    def shared_limits(self) -> tuple[SharedLimit, ...]:
        """The limits its calls share with every other run (a GPU slot, a provider's jobs and rate); none by default."""
        return ()


def _installed(package: str) -> bool:
    """Whether `package` can be imported, found without importing it."""
    import importlib.util
    import sys

    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError, AttributeError):  # a module entry without a spec: None means "missing"
        return sys.modules.get(package) is not None


# Each kind of backend, and the option that picks one.
FLAGS = {"llm": "--llm", "video": "--video-backend", "music": "--music-backend", "speech": "--speech-backend",
          "effects": "--effects-backend"}  # fmt: skip


# ---------------------------------------------------------------- LLM


@dataclass(frozen=True)
class LLMTask:
    """What a stage asks an LLM for, handed to the backend with the question.

    `instructions` is the system prompt (rendered from prompts/ by the stage) and `question`
    the user message: the story or the shot, always as data to work on, never as
    instructions. `answer` is the pydantic model the answer must validate against (`schema`
    is its JSON Schema, for structured output, named `name`). `check` finds what the schema
    cannot (a story span lost, a character who is not in the story): a chat backend sends
    its problems back to the model for repair, as it does validation errors. `templates`
    are the prompt templates a template-driven backend (the embedded one) renders instead
    of asking a model; `shape` is how the video backend likes its prompts written. A chat
    backend appends what each answer cost to `usage`. A backend never imports a stage.
    """

    instructions: str
    answer: type[BaseModel]
    templates: PromptFolder
    question: str = ""
    name: str = "answer"
    check: Callable[[Any], list[str]] | None = None
    shape: PromptShape | None = None
    usage: list[LLMUsage] = field(default_factory=list, compare=False)

    @property
    def schema(self) -> dict[str, Any]:
        return self.answer.model_json_schema()

    def problems(self, answer: Any) -> list[str]:
        """What `check` finds wrong with a validated answer ([] when there is no check)."""
        return list(self.check(answer)) if self.check is not None else []


class LLMBackend(Backend):
    """Writes storyboards and prompts: Story -> Storyboard, Shot -> ShotPrompt.

    A rule-based planner answers with the finished records (Storyboard, ShotPrompt); a chat
    model answers with `task.answer` (PlanAnswer, PromptAnswer), validated, which the stage
    turns into the records: it numbers the shots, finds their spans in the story, snaps
    durations to whole frames and stamps template and model on every prompt.
    """

    kind = "llm"

    @abstractmethod
    def plan(self, story: Story, task: LLMTask) -> Storyboard | PlanAnswer:
        """Break a story into shots, as `task` says."""

    @abstractmethod
    def rewrite(self, shot: Shot, board: Storyboard, task: LLMTask) -> ShotPrompt | PromptAnswer:
        """Turn one shot into a model-ready prompt, as `task` says."""


# ---------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoCapabilities:
    """What a video backend can do, and the rules its clips follow; the planner and conform read this.

    Length: a clip lasts at most `max_clip_seconds`; when `durations` is set, only those
    lengths (Veo: 4, 6 or 8 s); its frame count follows `frames = frame_step * k +
    frame_offset` (Wan: 4k+1, LTX: 8k+1; the default 1k+0 allows any count). Size: one of
    `sizes` when set, else any size whose sides are multiples of `size_multiple` (Wan 16,
    LTX 32). Rate: one of `fps` when set (Wan 16, LTX 24 or 25), else any. A film that
    asks for something else gets the nearest the backend can make, brought back to the
    film's size, rate and length, and every such correction is recorded on the clip.
    """

    max_clip_seconds: float
    fps: tuple[int, ...] = ()  # native frame rates; empty: any
    sizes: tuple[tuple[int, int], ...] = ()  # supported (width, height); empty: any meeting size_multiple
    size_multiple: int = 2  # width and height are multiples of this
    frame_step: int = 1  # clip lengths in frames: frame_step * k + frame_offset...
    frame_offset: int = 0
    durations: tuple[float, ...] = ()  # ...or only these lengths in seconds; empty: any up to max_clip_seconds
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    text_to_video: bool = True
    image_to_video: bool = False  # can start from a given first frame
    last_frame: bool = False  # can end on a given last frame (loops, interpolation)
    extend_from_video: bool = False  # native continuation from a clip's tail frames
    extend_backward: bool = False  # can generate what came before a clip's head frames
    context_frames: int = 1  # how many tail frames a continuation reads
    seed: bool = True  # the same seed gives the same clip
    native_audio: bool = False
    cost_per_second: float = 0.0  # in US dollars
    max_concurrency: int = 1

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self) | {"frame_rule": self.frame_rule}

    @property
    def frame_rule(self) -> str:
        """The frame-count rule as people write it: '4k+1', or 'any'."""
        if self.frame_step == 1 and self.frame_offset == 0:
            return "any"
        return f"{self.frame_step}k+{self.frame_offset}" if self.frame_offset else f"{self.frame_step}k"

    def native_fps(self, fps: int) -> int:
        """The rate clips for a film at `fps` are made at: `fps` itself, else the nearest the backend has."""
        if not self.fps or fps in self.fps:
            return fps
        return min(self.fps, key=lambda native: (abs(native - fps), -native))

    def model_frames(self, frames: int) -> int:
        """The fewest frames the backend can make that are at least `frames` (its durations or frame rule)."""
        frames = max(frames, 1)
        if self.durations:
            raise ValueError("model_frames needs a rate with durations: use clip_frames(frames, fps)")
        k = max(0, math.ceil((frames - self.frame_offset) / self.frame_step))
        return max(self.frame_step * k + self.frame_offset, self.frame_offset or self.frame_step)

    def clip_frames(self, frames: int, fps: int) -> int:
        """The frames a clip of at least `frames` frames at the backend's rate `fps` is made with."""
        if self.durations:
            allowed = sorted(round(seconds * fps) for seconds in self.durations)
            return next((n for n in allowed if n >= frames), allowed[-1])
        return self.model_frames(frames)

    def longest_clip(self, fps: int) -> int:
        """The most frames one clip can have at the backend's rate `fps`."""
        if self.durations:
            return round(max(self.durations) * fps)
        most = math.floor(self.max_clip_seconds * fps + 1e-9)
        k = math.floor((most - self.frame_offset) / self.frame_step)
        return max(self.frame_step * k + self.frame_offset, 0)

    def model_size(self, width: int, height: int) -> tuple[int, int]:
        """The size clips for a film of width x height are made at (the nearest the backend allows)."""
        if self.sizes:
            aspect = width / height
            return min(self.sizes, key=lambda size: (abs(math.log(size[0] / size[1] / aspect)),
                                                     abs(size[0] * size[1] - width * height)))  # fmt: skip
        step = max(1, self.size_multiple)
        return (max(step, round(width / step) * step), max(step, round(height / step) * step))


@dataclass(frozen=True)
class PromptShape:
    """How a video model reads prompts best: what the rewriter writes for it.

    `template` is the file under prompts/ the embedded rewriter renders (a chat LLM is told
    the same order and limits); `order` the parts of a prompt, in the order the model
    follows best (the parts of the Veo prompt guide: subject, context, action, style, camera
    motion, composition, ambience); `max_words` what the model reads before it stops
    listening; `negative_prompt` whether it takes one (no: the rewriter writes none).
    """

    template: str = "shot_prompt.j2"
    order: tuple[str, ...] = ("subject", "context", "action", "style", "camera", "composition", "ambience")
    max_words: int = 160
    negative_prompt: bool = True
    notes: str = ""  # one sentence for a chat LLM about this model's taste, if any

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass
class GeneratedVideo:
    """A backend's answer: frames to encode, or a file it already wrote.

    `context_frames` counts leading frames that repeat the conditioning (e.g. an
    image-to-video model returns the given first frame as frame 0); they are dropped
    so the seam shows each moment once.
    """

    frames: Iterable[np.ndarray] | None = None
    path: Path | None = None
    context_frames: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


class PaidJobs(Protocol):
    """Where a hosted backend writes down a job it pays for, before it waits for it: never pay twice.

    The pipeline hands one to a backend with `resumable_jobs` for each clip (the catalog keeps
    it under the clip's cache key). A job a killed run left in flight is `pending()`: the
    backend resumes polling it instead of creating (and paying for) a new one.
    """

    def pending(self) -> str | None:
        """The provider's id of a job an earlier run started for this very clip and never finished."""

    def started(self, job_id: str, *, cost_usd: float | None = None, detail: str = "") -> None:
        """Record a job the provider accepted, before polling starts."""

    def finished(self, job_id: str, status: str, *, detail: str = "") -> None:
        """Record how it ended: "done", "failed" or "filtered" (with the provider's reasons)."""


class VideoBackend(Backend):
    kind = "video"
    # How this backend's model reads prompts best (see PromptShape); the rewriter follows it.
    prompt_shape: ClassVar[PromptShape] = PromptShape()
    # A hosted backend that takes a PaidJobs ledger: generate(request, jobs=...) records and resumes its jobs.
    resumable_jobs: ClassVar[bool] = False
    # How long its provider keeps a job's result (seconds; None: as long as the ledger): an older job is not resumed.
    job_lifetime_s: ClassVar[float | None] = None

    @property
    @abstractmethod
    def capabilities(self) -> VideoCapabilities: ...

    @abstractmethod
    def generate(self, request: ClipRequest) -> GeneratedVideo:
        """Make one clip of `request.num_frames` frames at the requested size."""


# ---------------------------------------------------------------- audio


@dataclass(frozen=True)
class MusicCue:
    """A stretch of the film and the mood the score should carry there."""

    start: float  # seconds
    end: float
    mood: str
    shot_id: str = ""


@dataclass(frozen=True)
class Speech:
    """Spoken text: mono samples and, where the backend knows them, word timings."""

    samples: np.ndarray  # float32, shape (n,), in [-1, 1]
    sample_rate: int
    words: tuple[tuple[float, float, str], ...] = ()  # (start, end, word) in seconds
    cost_usd: float | None = None  # what a hosted service charged for it (None: free, or no price known)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


class SpeechBackend(Backend):
    """Speaks narration lines (text to speech)."""

    kind = "speech"

    @abstractmethod
    def speak(self, text: str, *, rate: float | None = None) -> Speech:
        """Speak `text`; `rate` (words per minute) overrides the backend's own when given."""

    @property
    def voice(self) -> str:
        """The voice it speaks with (recorded with every line)."""
        return ""

    @property
    def rate(self) -> float:
        """Its speaking rate in words per minute."""
        return 160.0


@dataclass(frozen=True)
class EffectsRequest:
    """One shot's picture, for sound derived from it (video-to-audio)."""

    clips: tuple[Path, ...]  # the shot's clips in order; together `num_frames` frames
    fps: int
    num_frames: int
    prompt: str  # what is seen
    sound_cue: str  # what the storyboard says should be heard (may be empty)
    camera: str  # the camera directive (a CameraMove value)
    cut_in: bool  # the shot starts on a hard cut (an accent fits there)
    seed: int
    sample_rate: int


class EffectsBackend(Backend):
    """Sound effects from the picture: the stand-in for video-to-audio models."""

    kind = "effects"

    @abstractmethod
    def render(self, request: EffectsRequest) -> np.ndarray:
        """Return float32 stereo samples, shape (round(num_frames / fps * sample_rate), 2)."""


class MusicBackend(Backend):
    """Writes the film's score from its moods, one cue at a time.

    A backend renders each cue on its own (compose_cue); the film's bed is the cues laid
    end to end with equal-power crossfades where they meet (score_parts says where each
    one goes), so a cue is made once, cached on its own, and a whole score is never held.
    """

    kind = "music"

    @abstractmethod
    def compose_cue(self, cue: MusicCue, seed: int, sample_rate: int) -> np.ndarray:
        """float32 stereo for the cue's span, shape (round((end - start) * sample_rate), 2), peaking at the
        backend's level: the cue's mood alone, never depending on its neighbours."""

    @property
    def crossfade_s(self) -> float:
        """How long neighbouring cues blend (each is rendered half of it past its ends)."""
        return float(getattr(self.options, "crossfade_s", 0.0))

    def compose(self, cues: list[MusicCue], seconds: float, seed: int, sample_rate: int) -> np.ndarray:
        """The whole score in memory, shape (round(seconds * sample_rate), 2), peaking at the backend's level
        (short scores and tests; the film's stage lays the cues into a file window by window instead)."""
        import numpy as np

        out = np.zeros((round(seconds * sample_rate), 2), dtype=np.float32)
        for part in score_parts(cues, seconds, sample_rate, self.crossfade_s):
            out[part.start : part.stop] += self.compose_cue(part.cue, seed, sample_rate) * part.envelope()[:, None]
        peak = float(np.abs(out).max()) if len(out) else 0.0
        level = 10 ** (float(getattr(self.options, "level_db", 0.0)) / 20)
        return out * np.float32(level / peak) if peak > 0 else out


@dataclass(frozen=True)
class ScorePart:
    """Where one cue's music sits in the film: samples [start, stop), rendered for `cue` (its span
    widened by half the crossfade where it meets a neighbour), faded in/out over `fade` samples."""

    cue: MusicCue
    start: int
    stop: int
    fade: int
    fade_in: bool
    fade_out: bool

    def envelope(self) -> np.ndarray:
        """Equal-power ramps (sin squared: two meeting ramps sum to 1) where the cue meets a neighbour."""
        import numpy as np

        n = self.stop - self.start
        env = np.ones(n, dtype=np.float32)
        k = min(self.fade, n // 2)
        if k > 0:
            ramp = np.sin(np.linspace(0, np.pi / 2, k, dtype=np.float32)) ** 2
            if self.fade_in:
                env[:k] *= ramp
            if self.fade_out:
                env[-k:] *= ramp[::-1]
        return env


def score_parts(cues: list[MusicCue], seconds: float, sample_rate: int, crossfade_s: float) -> list[ScorePart]:
    """Each cue's place in a score of `seconds`: a little past its ends where neighbours crossfade."""
    total, fade = round(seconds * sample_rate), round(crossfade_s * sample_rate)
    parts = []
    for cue in cues:
        start = max(0, round(cue.start * sample_rate) - fade // 2)
        stop = min(total, round(cue.end * sample_rate) + fade // 2)
        if stop > start:
            widened = MusicCue(start / sample_rate, stop / sample_rate, cue.mood, cue.shot_id)
            parts.append(ScorePart(widened, start, stop, fade, start > 0, stop < total))
    return parts


BACKEND_KINDS = tuple(FLAGS)
