"""The veo video backend: Google's Veo through google-genai 2.x, a paid hosted job per clip, never paid twice.

`--video-backend veo [--video-option model=veo-3.1-generate-preview]`. Two ways in, both set
up by the SDK from its own environment variables (keys are never options, never logged):

    Gemini Developer API   GEMINI_API_KEY or GOOGLE_API_KEY. POST /v1beta/models/{model}:predictLongRunning,
                           poll GET /v1beta/{operation name}, download GET /v1beta/files/{id}:download?alt=media
    Vertex AI              GOOGLE_GENAI_USE_VERTEXAI=true (or endpoint=vertex) with GOOGLE_CLOUD_PROJECT and
                           GOOGLE_CLOUD_LOCATION (application default credentials), or with an API key alone
                           (express mode); videos come back inline (bytes), polled via fetchPredictOperation

`--video-option base_url=URL` points either at a proxy or a test server (HttpOptions.base_url).

One clip is one long-running operation, and it is paid for once: with a `PaidJobs` ledger
(`resumable_jobs`), a job an earlier run left in flight (`jobs.pending()`) is polled again, never
created again; a new one is written down (`jobs.started(name, cost_usd=...)`) before the first
poll and closed (`jobs.finished(name, "done" | "failed" | "filtered")`) once its video is
downloaded or it has failed. A job that outlives `max_wait`, or whose polls or download keep
failing, stays pending: the next run resumes it. Videos are downloaded at once (the service
keeps them two days: a job left pending longer, `job_lifetime_s`, is marked expired by the ledger
and made again).

What each ClipRequest.strategy becomes (GenerateVideosConfig / GenerateVideosSource):
    text_to_video                 the prompt
    image_to_video, last_frame_i2v  image= conditioning[-1] (PNG); its first frame is kept (no context frame)
    continue_video                native extension (video= the earlier Veo video; +7 s, one combined video
                                  whose new seconds are returned) when conditioning[-1] is the last frame
                                  of a clip this process downloaded less than two days ago and the clip
                                  asks for at most 7 s; else image-to-video from conditioning[-1]
    loop_close, or any strategy   image= conditioning[-1] and last_frame= end_conditioning[0]
      with end_conditioning       (interpolation; Veo needs the first frame too)
    extend_backward               refused: Veo cannot end on a frame without starting on one
Always: negative prompt (the shot's, then the option's), aspect ratio from the size (16:9 or
9:16), duration 4/6/8 s (the fewest seconds that hold the frames; Veo 2: 5-8), resolution
720p (1080p only for 8 s clips when the option allows it), person generation, enhance_prompt,
number_of_videos (the first is used), reference_images (files, sent as ASSET references).
Features Veo makes at 8 s only (extension, interpolation, reference images on Veo 3.1) are
asked for at 8 s and cut to the frames the clip needs (evenly spaced when both ends are fixed).
The clip's frames are returned exactly (`frames`; `path` is the file as downloaded): a video a
frame or two short is padded with its last frame, one longer is cut.

Seed, fps and generate_audio exist on Vertex only: asked for on the Gemini API they are refused
before any work starts (BackendOptionError). Veo 3 makes sound too; storyflow keeps the picture.

Failures: an operation done with `error` -> GenerationError naming the model and the error; a
filtered one (no videos, rai_media_filtered_reasons) -> ContentFiltered whose message says
"filtered" with the reasons (and `.reasons`); 429, 5xx, timeouts and dropped connections on any call -> retried
with jittered exponential backoff, honouring Retry-After (the SDK ignores it), up to
`max_retries`, then TransientError naming model, host and status; 401/403 ->
BackendUnavailableError naming the key variable; other 4xx -> GenerationError with the server's
message, redacted. A create whose answer was lost (a timeout, a dropped connection) may have
started a job the retry pays for again: the service gives no way to tell.

Cost: list prices per second of video (PRICES, per model; a user overrides them with
price_per_second) times the seconds billed times number_of_videos, in
GeneratedVideo.metadata["cost_usd"] and the ledger (its detail says model, mode, seconds billed and
resolution). Seconds billed (`billed_seconds`): a job bills the duration it asks for (4, 6 or 8 s;
Veo 2: 5 to 8), even when the clip keeps fewer frames; an extension bills the 7 s it adds, whatever
the clip asked for (its request says 8 s, the length Veo extends at).

Tested (tests/backends/video/test_veo.py, against tests/fake_gemini.py through the real SDK): the
Gemini API set-up, create/poll/download, text and image to video, native extension, retries and
Retry-After, failed and filtered jobs, resuming a pending job, option refusals. Not tested: the
Vertex set-ups (project/ADC and express mode) and inline-bytes download, which need Google's
service; the real service's frame counts and its 8-second rules are taken from its guide.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from storyflow.backends.base import (
    BackendOptions,
    GeneratedVideo,
    PaidJobs,
    PromptShape,
    SharedLimit,
    VideoBackend,
    VideoCapabilities,
    provider_limits,
)
from storyflow.core.errors import (
    BackendOptionError,
    BackendUnavailableError,
    ContentFiltered,
    GenerationError,
    TransientError,
)
from storyflow.core.secrets import redact

if TYPE_CHECKING:
    import numpy as np
    from google import genai
    from google.genai import types

    from storyflow.core.models import ClipRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MODEL = "veo-3.1-generate-preview"
GEMINI_HOST = "generativelanguage.googleapis.com"
KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
VERTEX_ONLY = ("seed", "fps", "generate_audio")
FPS = 24  # Veo's rate
EXTENSION_SECONDS = 7  # what one extension adds
MAX_EXTENDED_INPUT_SECONDS = 141  # the longest video Veo extends (to at most 148 s)
RESULT_LIFETIME_S = 2 * 86_400  # the service keeps generated videos two days
HANDLE_LIFETIME_S = 47 * 3600  # ...so a video to extend is trusted for an hour less
MIN_POLL_SECONDS = 5.0
MATCH_TOLERANCE = 8.0  # mean absolute difference (0-255) of two 32x18 thumbnails that are "the same frame"
FAILED_STATUSES = {401, 403}


@dataclass(frozen=True)
class ModelFacts:
    """What one Veo model does on the Gemini API (its guide), and its list price."""

    price: float | None  # US dollars per second of video: a list price; price_per_second overrides it
    durations: tuple[float, ...] = (4, 6, 8)
    hd: bool = True  # 1080p (8 s only)
    last_frame: bool = True
    extension: bool = True
    reference_images: bool = True
    eight_seconds_for: tuple[str, ...] = ("extension", "last_frame", "reference_images")


# List prices (USD per second of generated video), as published for the Gemini API; users override them.
PRICES_NOTE = "list prices per second of video; pass --video-option price_per_second=... for your own"
BILLING = f"billed per second of video: a clip its 4/6/8 s asked, an extension the {EXTENSION_SECONDS} s it adds"
MODELS: dict[str, ModelFacts] = {
    "veo-3.1-generate-preview": ModelFacts(price=0.40),
    "veo-3.1-fast-generate-preview": ModelFacts(price=0.15),
    "veo-3.0-generate-001": ModelFacts(price=0.40, last_frame=False, extension=False, reference_images=False,
                                       eight_seconds_for=()),  # fmt: skip
    "veo-3.0-fast-generate-001": ModelFacts(price=0.15, last_frame=False, extension=False, reference_images=False,
                                            eight_seconds_for=()),  # fmt: skip
    "veo-2.0-generate-001": ModelFacts(price=0.35, durations=(5, 6, 7, 8), hd=False, last_frame=False,
                                       extension=False, reference_images=False, eight_seconds_for=()),  # fmt: skip
}
PRICES = {name: facts.price for name, facts in MODELS.items()}


def billed_seconds(mode: str, seconds: int) -> float:
    """The seconds of video a job is billed for: an extension the 7 s it adds, any other job the duration asked."""
    return float(EXTENSION_SECONDS if mode == "extend" else seconds)


def facts_for(model: str) -> ModelFacts:
    """The facts of a model (a newer one than the table knows is taken to be like the newest, price unknown)."""
    return MODELS.get(model) or ModelFacts(price=None)


class VeoOptions(BackendOptions):
    """Veo's options. Keys are never options: GEMINI_API_KEY / GOOGLE_API_KEY, or Vertex's variables."""

    model: str = Field(default=DEFAULT_MODEL, min_length=1, description="the Veo model, e.g. veo-3.1-generate-preview, "
                       "veo-3.1-fast-generate-preview, veo-3.0-generate-001, veo-2.0-generate-001")  # fmt: skip
    endpoint: Literal["auto", "gemini", "vertex"] = Field(default="auto", description="gemini (the Gemini Developer "
                                                          "API), vertex, or auto: vertex when GOOGLE_GENAI_USE_VERTEXAI "
                                                          "is true")  # fmt: skip
    base_url: str | None = Field(default=None, description="another address for the API (a proxy, a test server)")
    poll_seconds: float = Field(default=10.0, gt=0, description="seconds between polls of a job (at least 5 unless "
                                "base_url is set)")  # fmt: skip
    max_wait: float = Field(default=1800.0, gt=0, description="seconds to wait for one job; then the run fails and "
                            "the next run resumes the job")  # fmt: skip
    timeout: float = Field(default=120.0, gt=0, description="seconds to wait for one HTTP answer")
    max_retries: int = Field(default=5, ge=0, le=20, description="retries of 429, 5xx, timeouts and dropped "
                             "connections, per call")  # fmt: skip
    backoff_seconds: float = Field(default=2.0, gt=0, le=60, description="the first retry's wait; doubles each "
                                   "time, jittered (Retry-After wins when the server sends it)")  # fmt: skip
    price_per_second: float | None = Field(default=None, ge=0, description="your price in USD per second of video "
                                           "billed (default: the model's list price: " + ", ".join(
                                               f"{name} ${price:.2f}" for name, price in PRICES.items()
                                               if price is not None) + ")")  # fmt: skip
    resolution: Literal["720p", "1080p"] = Field(default="720p", description="the highest resolution asked for "
                                                 "(1080p for 8 s clips only)")  # fmt: skip
    negative_prompt: str = Field(default="", description="added to every shot's negative prompt")
    person_generation: Literal["dont_allow", "allow_adult", "allow_all"] | None = Field(
        default=None, description="whether people may appear (default: the service's)")
    enhance_prompt: bool | None = Field(default=None, description="let the service rewrite prompts (default: its own)")
    number_of_videos: int = Field(default=1, ge=1, le=4, description="videos per job (each is paid; the first is used)")
    reference_images: tuple[Path, ...] = Field(default=(), max_length=3, description="up to 3 image files (the "
                                               "character bible's) every clip should show")  # fmt: skip
    native_extension: bool = Field(default=True, description="continue a clip of this process by extending its Veo "
                                   "video (else image-to-video from its last frame)")  # fmt: skip
    seed: bool = Field(default=False, description="send each clip's seed (Vertex AI only)")
    fps: int | None = Field(default=None, ge=1, le=60, description="the rate Veo makes clips at (Vertex AI only)")
    generate_audio: bool | None = Field(default=None, description="ask Veo 3 for sound (Vertex AI only; storyflow "
                                        "keeps the picture)")  # fmt: skip
    concurrency: int = Field(default=2, ge=1, le=16, description="jobs in flight at once")
    jobs_per_minute: int = Field(default=10, ge=1, le=6000,
                                 description="jobs started a minute, by every run together (the provider's rate limit)")
    download_dir: Path | None = Field(default=None, description="where downloaded videos are kept (default: a "
                                      "folder under the system's temporary folder)")  # fmt: skip

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") or None if value else None

    @field_validator("reference_images")
    @classmethod
    def _files_exist(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        missing = [str(path) for path in value if not Path(path).expanduser().is_file()]
        if missing:
            raise ValueError(f"no such image file: {', '.join(missing)}")
        return tuple(Path(path).expanduser().resolve() for path in value)

    @model_validator(mode="after")
    def _rules(self) -> VeoOptions:
        if self.poll_seconds < MIN_POLL_SECONDS and self.base_url is None:
            raise ValueError(f"poll_seconds must be at least {MIN_POLL_SECONDS:g} against Google's service "
                             "(smaller values are for test servers, with base_url)")  # fmt: skip
        if self.endpoint == "gemini":
            asked = vertex_only_asked(self)
            if asked:
                raise ValueError(vertex_only_message(asked))
        return self


def vertex_only_asked(options: VeoOptions) -> list[str]:
    """The Vertex-only options that are set."""
    return [name for name in VERTEX_ONLY if getattr(options, name) not in (None, False)]


def vertex_only_message(asked: list[str]) -> str:
    return (f"{', '.join(asked)} {'is' if len(asked) == 1 else 'are'} accepted by Vertex AI only, not by the Gemini "
            "Developer API: set GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION "
            "(or endpoint=vertex), or drop the option")  # fmt: skip


@dataclass
class _Handle:
    """A video this process downloaded: what native extension needs to continue it."""

    video: Any  # google.genai types.Video (the URI on the Gemini API; bytes are read from `path` on Vertex)
    path: Path
    frames: int  # frames in the downloaded file
    seconds: float
    thumb: Any  # the last returned frame, 32x18, float32
    where: str  # endpoint, address and model family: a handle is only valid where it was made
    created: float


_RECENT: dict[str, _Handle] = {}  # sha256 of a downloaded file -> its handle (this process only)
_RECENT_LOCK = threading.Lock()


@dataclass
class _Plan:
    """How one request is asked of Veo."""

    mode: str  # "text", "image", "interpolate", "extend"
    seconds: int  # durationSeconds sent (extension: 8, it adds EXTENSION_SECONDS)
    new_seconds: float  # seconds of new video the job makes (and is paid for)
    resolution: str
    aspect: str
    spread: bool  # both ends fixed: keep evenly spaced frames, not the first ones
    handle: _Handle | None = None
    note: str = ""

    def describe(self, model: str, videos: int) -> str:
        """What the ledger keeps of the job: model, mode, seconds billed, resolution."""
        return f"{model} {self.mode} {self.new_seconds:g} s billed at {self.resolution}" + (
            f" x {videos} videos" if videos > 1 else "")


class VeoBackend(VideoBackend):
    """Veo on the Gemini API or Vertex AI: long-running jobs, resumed from the ledger, paid once."""

    name = "veo"
    version = "1"
    description = f"Google Veo (google-genai 2.x) on the Gemini API or Vertex AI; key in $GEMINI_API_KEY; {BILLING}"
    Options = VeoOptions
    requires = ("google.genai",)
    install = 'pip install "google-genai>=2,<3"'
    key_env = KEY_VARIABLES
    operational = frozenset({"endpoint", "base_url", "poll_seconds", "max_wait", "timeout", "max_retries",
                             "backoff_seconds", "price_per_second", "concurrency", "jobs_per_minute", "download_dir"})  # fmt: skip
    resumable_jobs = True
    job_lifetime_s = RESULT_LIFETIME_S
    prompt_shape = PromptShape(
        order=("subject", "context", "action", "style", "camera", "composition", "ambience"),
        max_words=150,
        negative_prompt=True,
        notes="Veo follows the parts of its prompt guide in this order: subject, context, action, style, camera "
        "motion, composition, ambience; name the camera move and the lens plainly, describe sounds in words, and "
        "write what to avoid in the negative prompt as nouns, not as 'no ...'.",
    )

    options: VeoOptions

    def __init__(self, options: VeoOptions | None = None) -> None:
        super().__init__(options)
        self._client: genai.Client | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ what it is

    @property
    def model(self) -> str:
        return self.options.model

    @property
    def facts(self) -> ModelFacts:
        return facts_for(self.options.model)

    @property
    def price(self) -> float | None:
        return self.options.price_per_second if self.options.price_per_second is not None else self.facts.price

    @property
    def fps(self) -> int:
        return self.options.fps or FPS

    @property
    def durations(self) -> tuple[float, ...]:
        facts = self.facts
        if self.options.reference_images and "reference_images" in facts.eight_seconds_for:
            return (8,)
        return facts.durations

    @property
    def capabilities(self) -> VideoCapabilities:
        facts = self.facts
        sizes: tuple[tuple[int, int], ...] = ((1280, 720), (720, 1280))
        if self.options.resolution == "1080p" and facts.hd:
            sizes += ((1920, 1080), (1080, 1920))
        return VideoCapabilities(
            max_clip_seconds=max(self.durations),
            fps=(self.fps,),
            sizes=sizes,
            size_multiple=2,
            durations=self.durations,
            aspect_ratios=("16:9", "9:16"),
            text_to_video=True,
            image_to_video=True,
            last_frame=facts.last_frame or self.vertex,  # interpolation: a first and a last frame
            extend_from_video=facts.extension and self.options.native_extension,
            extend_backward=False,  # Veo cannot end on a frame without starting on one
            context_frames=1,  # the last frame: to find our own clip, or to start the next from
            seed=self.options.seed,
            native_audio=False,  # Veo 3 makes sound; storyflow keeps the picture only
            cost_per_second=round((self.price or 0.0) * self.options.number_of_videos, 6),
            max_concurrency=self.options.concurrency,
        )

    def identity(self) -> dict[str, Any]:
        """The cache key's facts: reference images by content, not by path."""
        found = super().identity()
        found["options"]["reference_images"] = [_sha256(Path(p)) for p in self.options.reference_images]
        return found

    # ------------------------------------------------------------ where it asks

    @property
    def vertex(self) -> bool:
        """Vertex AI (the option, or GOOGLE_GENAI_USE_VERTEXAI / GOOGLE_GENAI_USE_ENTERPRISE) or the Gemini API."""
        if self.options.endpoint != "auto":
            return self.options.endpoint == "vertex"
        flag = os.environ.get("GOOGLE_GENAI_USE_ENTERPRISE") or os.environ.get("GOOGLE_GENAI_USE_VERTEXAI") or ""
        return flag.strip().lower() in ("true", "1")

    @property
    def vertex_project(self) -> bool:
        """Vertex with a project (application default credentials), not express mode (an API key)."""
        return self.vertex and bool(os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GOOGLE_CLOUD_LOCATION"))

    @property
    def host(self) -> str:
        if self.options.base_url:
            parts = urlsplit(self.options.base_url)
            return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or self.options.base_url
        if self.vertex:
            location = os.environ.get("GOOGLE_CLOUD_LOCATION") or "global"
            return "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
        return GEMINI_HOST

    @property
    def key_fix(self) -> str:
        if self.vertex_project:
            return ("run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS) with an "
                    "account allowed to use Vertex AI in GOOGLE_CLOUD_PROJECT")  # fmt: skip
        return "set GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment to a key the service accepts " \
               "(keys are never options)"

    def check_available(self) -> None:
        # Vertex with a project signs in with application default credentials: no key variable needed
        self.key_env = () if self.vertex_project else KEY_VARIABLES  # type: ignore[misc]
        super().check_available()

    def shared_limits(self) -> tuple[SharedLimit, ...]:
        """Its jobs in flight (`concurrency`) and started a minute (`jobs_per_minute`), for every run together."""
        return provider_limits(self.name, self.options.concurrency, self.options.jobs_per_minute,
                               self.options.base_url)

    def check(self) -> None:
        """Vertex-only options on the Gemini API, and Vertex's own variables, before any work starts."""
        asked = vertex_only_asked(self.options)
        if asked and not self.vertex:
            raise BackendOptionError(f"video backend 'veo': {vertex_only_message(asked)}",
                                     fix="drop " + ", ".join(f"--video-option {name}=..." for name in asked)
                                     + " or switch to Vertex AI")  # fmt: skip
        if self.vertex_project and not os.environ.get("GOOGLE_CLOUD_PROJECT"):
            raise BackendUnavailableError("the video backend 'veo' on Vertex AI needs a project",
                                          fix="set GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_LOCATION, e.g. us-central1)")
        if self.vertex_project and not os.environ.get("GOOGLE_CLOUD_LOCATION"):
            raise BackendUnavailableError("the video backend 'veo' on Vertex AI needs a location",
                                          fix="set GOOGLE_CLOUD_LOCATION, e.g. us-central1")
        if self.vertex_project:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError

            try:
                google.auth.default()
            except DefaultCredentialsError:
                raise BackendUnavailableError("the video backend 'veo' on Vertex AI finds no Google credentials",
                                              fix=self.key_fix) from None
        if self.price is None:
            log.warning("veo: no list price for model %s; its cost is not recorded (%s)", self.model, PRICES_NOTE)

    def client(self) -> genai.Client:
        """The google-genai client, made once; the SDK reads the key (or project and location) itself."""
        with self._lock:
            if self._client is None:
                from google import genai
                from google.genai import types

                http = types.HttpOptions(base_url=self.options.base_url, timeout=int(self.options.timeout * 1000))
                try:
                    self._client = genai.Client(vertexai=self.vertex, http_options=http)
                except ValueError as exc:
                    raise BackendUnavailableError(f"cannot set up the google-genai client for {self.host}: "
                                                  f"{redact(str(exc))}", fix=self.key_fix) from None  # fmt: skip
            return self._client

    # ------------------------------------------------------------ making a clip

    def generate(self, request: ClipRequest, jobs: PaidJobs | None = None) -> GeneratedVideo:
        """One clip: resume the ledger's pending job or create one, poll it, download its video, return its frames."""
        asked = vertex_only_asked(self.options)
        if asked and not self.vertex:  # check() says so first; this guards direct callers
            raise BackendOptionError(f"video backend 'veo': {vertex_only_message(asked)}")
        plan = self._plan(request)
        client = self.client()
        cost = round(self.price * plan.new_seconds * self.options.number_of_videos, 6) if self.price is not None \
            else None
        pending = jobs.pending() if jobs is not None else None
        if pending:
            from google.genai import types

            log.info("veo: resuming job %s (started by an earlier run; not paid again)", pending)
            operation = self._call("poll", lambda: client.operations.get(types.GenerateVideosOperation(name=pending)))
        else:
            source, config = self._request(request, plan)
            operation = self._call("create", lambda: client.models.generate_videos(
                model=self.model, source=source, config=config))  # fmt: skip
            if not operation.name:
                raise GenerationError(f"veo model {self.model} at {self.host} answered a job without a name",
                                      fix="check that base_url points at the Gemini API")  # fmt: skip
            if jobs is not None:
                jobs.started(operation.name, cost_usd=cost,
                             detail=plan.describe(self.model, self.options.number_of_videos))
        name = operation.name or pending or ""
        operation = self._wait(client, operation, jobs)
        video = self._outcome(operation, name, jobs)
        path = self._download(client, video, name, jobs)
        frames, returned_last, note = self._keep(path, request, plan)
        self._remember(path, video, request, returned_last)
        if jobs is not None:
            jobs.finished(name, "done", detail=str(path.name))
        metadata: dict[str, Any] = {"operation": name, "model": self.model, "mode": plan.mode,
                                    "seconds_generated": plan.new_seconds, "resolution": plan.resolution,
                                    "resumed": bool(pending), "file": str(path)}  # fmt: skip
        if cost is not None:
            metadata["cost_usd"] = cost
        for text in (plan.note, note):
            if text:
                metadata.setdefault("notes", []).append(text)
        return GeneratedVideo(frames=frames, path=path, context_frames=0, metadata=metadata)

    def _plan(self, request: ClipRequest) -> _Plan:
        facts = self.facts
        fps = request.fps or self.fps
        seconds_needed = request.num_frames / fps
        allowed = sorted(int(d) for d in self.durations)
        seconds = next((d for d in allowed if d >= seconds_needed - 1e-9), allowed[-1])
        aspect = "16:9" if request.width >= request.height else "9:16"
        strategy = request.strategy
        end = request.end_conditioning
        start = request.conditioning[-1] if request.conditioning is not None and len(request.conditioning) else None
        note = ""
        if strategy == "extend_backward":
            raise GenerationError(f"veo model {self.model} cannot end on a given frame without starting on one "
                                  "(extend_backward)", fix="this backend declares extend_backward=False; the "
                                  "planner should not ask for it")  # fmt: skip
        if strategy in ("image_to_video", "last_frame_i2v", "continue_video", "loop_close") and start is None:
            raise GenerationError(f"veo: a {strategy} clip needs conditioning frames and got none",
                                  fix="this is a pipeline bug; rerun with --debug")  # fmt: skip
        mode = "text" if start is None else "image"
        handle = None
        if end is not None and len(end):
            if start is None:
                raise GenerationError(f"veo model {self.model} cannot end on a given frame without starting on one",
                                      fix="give the clip a first frame (conditioning) too")  # fmt: skip
            if not (facts.last_frame or self.vertex):
                raise GenerationError(f"veo model {self.model} does not take a last frame on the Gemini API",
                                      fix="use --video-option model=veo-3.1-generate-preview, or Vertex AI")
            mode = "interpolate"
        elif strategy == "continue_video" and self.capabilities.extend_from_video:
            handle, why = self._own_clip(start, request)
            if handle is not None:
                mode = "extend"
            else:
                note = f"native extension not used ({why}); made from the last frame instead"
        feature = {"interpolate": "last_frame", "extend": "extension"}.get(mode, "")
        if self.options.reference_images:
            feature = feature or "reference_images"
        if feature and feature in facts.eight_seconds_for and seconds != 8:
            seconds = 8
        resolution = "720p"
        if self.options.resolution == "1080p" and facts.hd and seconds == 8 and mode != "extend" and \
                max(request.width, request.height) >= 1920:
            resolution = "1080p"
        new_seconds = billed_seconds(mode, seconds)
        return _Plan(mode=mode, seconds=seconds, new_seconds=new_seconds, resolution=resolution, aspect=aspect,
                     spread=mode == "interpolate", handle=handle, note=note)  # fmt: skip

    def _request(self, request: ClipRequest, plan: _Plan) -> tuple[types.GenerateVideosSource, types.GenerateVideosConfig]:
        from google.genai import types

        options = self.options
        negative = ", ".join(part for part in (request.negative_prompt.strip(), options.negative_prompt.strip()) if part)
        config: dict[str, Any] = {
            "number_of_videos": options.number_of_videos,
            "duration_seconds": plan.seconds,
            "aspect_ratio": plan.aspect,
            "resolution": plan.resolution,
        }
        if negative:
            config["negative_prompt"] = negative
        if options.person_generation is not None:
            config["person_generation"] = options.person_generation
        if options.enhance_prompt is not None:
            config["enhance_prompt"] = options.enhance_prompt
        if self.vertex:
            if options.seed:
                config["seed"] = request.seed
            if options.fps is not None:
                config["fps"] = options.fps
            if options.generate_audio is not None:
                config["generate_audio"] = options.generate_audio
        if options.reference_images:
            config["reference_images"] = [
                types.VideoGenerationReferenceImage(image=types.Image(image_bytes=Path(p).read_bytes(),
                                                                      mime_type=_mime(Path(p))),
                                                    reference_type="ASSET")
                for p in options.reference_images
            ]  # fmt: skip
        source: dict[str, Any] = {"prompt": request.prompt}
        if plan.mode == "extend" and plan.handle is not None:
            config["resolution"] = "720p"  # Veo extends 720p videos
            source["video"] = self._video_source(plan.handle)
        elif plan.mode in ("image", "interpolate"):
            source["image"] = types.Image(image_bytes=_png(request.conditioning[-1]), mime_type="image/png")
            if plan.mode == "interpolate":
                config["last_frame"] = types.Image(image_bytes=_png(request.end_conditioning[0]), mime_type="image/png")
        return types.GenerateVideosSource(**source), types.GenerateVideosConfig(**config)

    def _video_source(self, handle: _Handle) -> types.Video:
        from google.genai import types

        if self.vertex:  # Vertex takes the video itself (or a gs:// URI); ours came back inline
            return types.Video(video_bytes=handle.path.read_bytes(), mime_type="video/mp4")
        return types.Video(uri=handle.video.uri)

    # ------------------------------------------------------------ waiting and fetching

    def _wait(self, client: genai.Client, operation: types.GenerateVideosOperation,
              jobs: PaidJobs | None) -> types.GenerateVideosOperation:  # fmt: skip
        deadline = time.monotonic() + self.options.max_wait
        while not operation.done:
            if time.monotonic() > deadline:
                raise TransientError(
                    f"veo model {self.model} at {self.host}: job {operation.name} still running after "
                    f"{self.options.max_wait:g} s",
                    fix="run again: the job is recorded and the next run resumes it without paying again "
                    "(or raise --video-option max_wait=...)",
                )
            time.sleep(self.options.poll_seconds)
            current = operation
            operation = self._call("poll", lambda: client.operations.get(current), jobs=jobs, job=current.name)
        return operation

    def _outcome(self, operation: types.GenerateVideosOperation, name: str, jobs: PaidJobs | None) -> types.Video:
        if operation.error:
            error = operation.error
            said = redact(str(error.get("message") or error))
            code = error.get("status") or error.get("code") or "error"
            if jobs is not None:
                jobs.finished(name, "failed", detail=f"{code}: {said}")
            raise GenerationError(f"veo model {self.model} failed job {name}: {code}: {said}",
                                  fix="try again, or change the prompt or the options")  # fmt: skip
        result = operation.response or operation.result
        videos = [v.video for v in (result.generated_videos or [])] if result is not None else []
        videos = [v for v in videos if v is not None]
        if not videos:
            reasons = list(getattr(result, "rai_media_filtered_reasons", None) or []) if result is not None else []
            count = getattr(result, "rai_media_filtered_count", None) if result is not None else None
            if reasons or count:
                detail = "; ".join(redact(r) for r in reasons) or f"{count} video(s) filtered, no reason given"
                if jobs is not None:
                    jobs.finished(name, "filtered", detail=detail)
                raise ContentFiltered(f"veo model {self.model}: job {name} was filtered by the service's safety "
                                      f"filters: {detail}",
                                      fix="rewrite the shot's prompt (or its first frame), or relax "
                                      "--video-option person_generation=...",
                                      reasons=tuple(redact(r) for r in reasons) or (detail,))  # fmt: skip
            if jobs is not None:
                jobs.finished(name, "failed", detail="done without videos")
            raise GenerationError(f"veo model {self.model}: job {name} finished without a video",
                                  fix="try again; if it persists, check the model name")  # fmt: skip
        return videos[0]

    def _download(self, client: genai.Client, video: types.Video, name: str, jobs: PaidJobs | None) -> Path:
        folder = self.options.download_dir or Path(tempfile.gettempdir()) / "storyflow-veo"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.mp4"
        partial = path.with_suffix(".part")
        if video.video_bytes:  # Vertex: inline
            partial.write_bytes(video.video_bytes)
        elif self.vertex:
            raise GenerationError(f"veo model {self.model} on Vertex AI answered with {video.uri!r}, not the video",
                                  fix="storyflow reads videos inline; do not set an output bucket")  # fmt: skip
        else:
            self._call("download", lambda: client.files.download(file=video, destination=str(partial)),
                       jobs=jobs, job=name)  # fmt: skip
        os.replace(partial, path)
        return path

    # ------------------------------------------------------------ the frames the clip keeps

    def _keep(self, path: Path, request: ClipRequest, plan: _Plan) -> tuple[Iterator[np.ndarray], np.ndarray, str]:
        """Exactly request.num_frames frames of the downloaded video; the last of them; a note if it was fixed."""
        import numpy as np

        from storyflow import media

        info = media.probe(path)
        total, wanted = info.num_frames, request.num_frames
        fps = request.fps or self.fps
        new = round(plan.new_seconds * fps)
        # an extension answers the input video and the new seconds, as one video: keep the new seconds. A job
        # resumed by a new process was planned without its video handle (as image-to-video), so a video longer
        # than planned is an extension's answer too: its new seconds are the last EXTENSION_SECONDS
        extended = plan.mode == "extend" or total > new + fps
        skip = max(0, total - round(EXTENSION_SECONDS * fps)) if extended else 0
        available = total - skip
        note = ""
        if plan.spread and available > wanted:  # both ends fixed: evenly spaced frames keep both
            picks = [skip + round(i * (available - 1) / max(wanted - 1, 1)) for i in range(wanted)]
        else:
            picks = [skip + i for i in range(min(wanted, available))]
        short = wanted - len(picks)
        if short > max(2, wanted // 20):
            raise GenerationError(f"veo model {self.model} answered {available} frames for a clip of {wanted}",
                                  fix="this may be a service change; rerun with --debug")  # fmt: skip
        if short:
            picks += [picks[-1]] * short
            note = f"the video was {short} frame{'s' if short > 1 else ''} short; its last frame is held"
        last = next(media.read_frames(path, picks[-1], 1))

        def frames() -> Iterator[np.ndarray]:
            wanted_at: dict[int, int] = {}
            for index in picks:
                wanted_at[index] = wanted_at.get(index, 0) + 1
            for index, frame in enumerate(media.read_frames(path, picks[0], picks[-1] - picks[0] + 1), picks[0]):
                for _ in range(wanted_at.get(index, 0)):
                    yield np.ascontiguousarray(frame)

        return frames(), last, note

    # ------------------------------------------------------------ native extension: our own recent clips

    def _where(self) -> str:
        return f"{'vertex' if self.vertex else 'gemini'}|{self.options.base_url or ''}|{self.model}"

    def _remember(self, path: Path, video: types.Video, request: ClipRequest, last: np.ndarray) -> None:
        from storyflow import media

        info = media.probe(path)
        handle = _Handle(video=video, path=path, frames=info.num_frames,
                         seconds=info.num_frames / (info.fps or self.fps), thumb=_thumb(last), where=self._where(),
                         created=time.time())  # fmt: skip
        with _RECENT_LOCK:
            now = time.time()
            for key in [k for k, h in _RECENT.items() if now - h.created > HANDLE_LIFETIME_S]:
                del _RECENT[key]
            _RECENT[media.sha256_file(path)] = handle

    def _own_clip(self, frame: np.ndarray, request: ClipRequest) -> tuple[_Handle | None, str]:
        """The recent Veo video whose returned last frame `frame` is, if any; else why not."""
        fps = request.fps or self.fps
        if request.num_frames > EXTENSION_SECONDS * fps:
            return None, f"the clip is longer than the {EXTENSION_SECONDS} s one extension adds"
        thumb = _thumb(frame)
        where, now = self._where(), time.time()
        with _RECENT_LOCK:
            candidates = [h for h in _RECENT.values() if h.where == where and now - h.created < HANDLE_LIFETIME_S]
        if not candidates:
            return None, "the previous clip was not made by this process in the last two days"
        import numpy as np

        best = min(candidates, key=lambda h: float(np.abs(h.thumb - thumb).mean()))
        if float(np.abs(best.thumb - thumb).mean()) > MATCH_TOLERANCE:
            return None, "the previous clip is not one of this process's Veo videos"
        if best.seconds > MAX_EXTENDED_INPUT_SECONDS:
            return None, f"Veo extends videos of at most {MAX_EXTENDED_INPUT_SECONDS} s"
        return best, ""

    # ------------------------------------------------------------ calls, retried

    def _call(self, what: str, call: Callable[[], T], *, jobs: PaidJobs | None = None, job: str | None = None) -> T:
        """`call` with retries of 429 (honouring Retry-After), 5xx, timeouts and dropped connections."""
        from google.genai import errors

        transport = _transport_errors()
        attempts = self.options.max_retries + 1
        last = ""
        for attempt in range(attempts):
            try:
                return call()
            except errors.APIError as exc:
                status = int(exc.code or 0)
                said = redact(str(exc.message or exc.status or exc))
                if status in FAILED_STATUSES:
                    raise BackendUnavailableError(
                        f"{self.host} refused the credentials (HTTP {status}) for veo model {self.model}: {said}",
                        fix=self.key_fix) from None  # fmt: skip
                if not (status in (408, 429) or status >= 500):
                    if what == "poll" and jobs is not None and job and status == 404:
                        jobs.finished(job, "failed", detail=f"HTTP 404: {said}")
                    raise GenerationError(f"veo model {self.model} at {self.host}: {what} refused (HTTP {status}): "
                                          f"{said}", fix="check the options and the prompt; the server's message "
                                          "says what it did not accept")  # fmt: skip
                last = f"HTTP {status} {exc.status or ''}".strip()
                wait = _retry_after(exc)
            except transport as exc:
                last = f"{type(exc).__name__}: {redact(str(exc)) or 'no answer'}"
                wait = None
            except ValueError as exc:  # the SDK refuses a request before sending it
                raise GenerationError(f"veo model {self.model}: google-genai refused the {what} request: "
                                      f"{redact(str(exc))}", fix="check the options for this endpoint") from None
            if attempt + 1 >= attempts:
                break
            if wait is None:
                wait = self.options.backoff_seconds * 2**attempt * random.uniform(0.5, 1.0)
            wait = min(wait, 120.0)
            log.info("veo: %s at %s failed (%s); retry %d of %d in %.2f s", what, self.host, last, attempt + 1,
                     attempts - 1, wait)  # fmt: skip
            time.sleep(wait)
        retries = attempts - 1
        raise TransientError(
            f"veo model {self.model} at {self.host}: {what} failed after {retries} "
            f"{'retry' if retries == 1 else 'retries'} ({last})",
            fix="try again later: a job already started is recorded and resumed, not paid again"
            if what != "create" else "try again later, or raise --video-option max_retries=...",
        )


# ---------------------------------------------------------------- helpers


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Timeouts and dropped or refused connections, from httpx and httpx2 (whichever the SDK uses)."""
    found: list[type[BaseException]] = []
    for module in ("httpx", "httpx2"):
        try:
            found.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found) or (OSError,)


def _retry_after(exc: Any) -> float | None:
    """Seconds from the answer's Retry-After header (seconds or an HTTP date), if it has one."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _png(frame: Any) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def _thumb(frame: Any) -> np.ndarray:
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(np.asarray(frame, dtype=np.uint8)).resize((32, 18), Image.BOX),
                      dtype=np.float32)  # fmt: skip


def _mime(path: Path) -> str:
    return {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(path.suffix.lower(), "image/png")


def _sha256(path: Path) -> str:
    from storyflow import media

    return media.sha256_file(path) if path.is_file() else str(path)

