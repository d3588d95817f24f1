"""The backend contracts: one small abstract class per kind, capabilities as data.

The pipeline never names a concrete model. It asks a backend what it can do
(`capabilities`) and plans around the answer: how long a clip may be, whether it can
start from a frame or continue a video, whether a seed is honoured.

A backend is built from its options, a pydantic model with extra="forbid", so a typo
in an option is an error that names the option. Heavy imports (torch, diffusers,
google-genai) belong inside the backend's methods, never at module top level.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np

    from storyflow.core.models import ClipRequest, Shot, ShotPrompt, Story, Storyboard


class BackendOptions(BaseModel):
    """Base for a backend's options: unknown names are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(ABC):
    """What every backend has: a registry name, a version, and typed options."""

    kind: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    Options: ClassVar[type[BackendOptions]] = BackendOptions

    def __init__(self, options: BackendOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @property
    def label(self) -> str:
        """'<name> <version>': what the catalog and the film summary record."""
        return f"{self.name} {self.version}"

    @property
    def model(self) -> str:
        """The model and revision whose output this backend produces (part of every cache key)."""
        return self.label

    def options_dict(self) -> dict[str, Any]:
        """Options as plain data for cache keys and the catalog (never secrets)."""
        return self.options.model_dump(mode="json")

    def check_available(self) -> None:  # noqa: B027 - optional hook
        """Raise BackendUnavailableError naming the fix if this backend cannot run here."""


# ---------------------------------------------------------------- LLM


class LLMBackend(Backend):
    """Writes storyboards and prompts: Story -> Storyboard, Shot -> ShotPrompt."""

    kind = "llm"

    @abstractmethod
    def plan(self, story: Story) -> Storyboard:
        """Break a story into shots."""

    @abstractmethod
    def rewrite(self, shot: Shot, board: Storyboard) -> ShotPrompt:
        """Turn one shot into a model-ready prompt."""


# ---------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoCapabilities:
    """What a video backend can do; the extension planner reads this."""

    max_clip_seconds: float
    fps: tuple[int, ...] = ()  # empty: any frame rate
    sizes: tuple[tuple[int, int], ...] = ()  # empty: any even size
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


class VideoBackend(Backend):
    kind = "video"

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
    """Writes the film's score from its moods."""

    kind = "music"

    @abstractmethod
    def compose(self, cues: list[MusicCue], seconds: float, seed: int, sample_rate: int) -> np.ndarray:
        """Return float32 stereo samples, shape (round(seconds * sample_rate), 2), in [-1, 1]."""


BACKEND_KINDS = ("llm", "video", "music", "speech", "effects")
