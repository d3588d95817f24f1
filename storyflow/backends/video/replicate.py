"""The replicate video backend: hosted models (Kling, Seedance, Hailuo, Wan) through Replicate's predictions API.

`--video-backend replicate [--video-option model=bytedance/seedance-1-pro]`, through Replicate's own
client (`replicate` 1.x): `replicate.Client(api_token=$REPLICATE_API_TOKEN, base_url=...)`. The key
comes from REPLICATE_API_TOKEN only (never an option, never logged). Calls:

    create    POST /v1/models/{owner}/{name}/predictions   (model "owner/name": the model's latest version)
              POST /v1/predictions {"version": ...}         (model "owner/name:version": that version)
    poll      GET  /v1/predictions/{id}                     until succeeded, failed or canceled
    download  GET  <the output URL>                         at once (Replicate deletes outputs after an hour)

One clip is one prediction, paid for once: with a `PaidJobs` ledger (`resumable_jobs`), a prediction an
earlier run left in flight (`jobs.pending()`) is polled again, never created again; a new one is written
down (`jobs.started(id, cost_usd=...)`) before the first poll and closed (`jobs.finished(id, "done" |
"failed" | "filtered")`) once its video is downloaded or it has failed. A prediction that outlives
`max_wait`, or whose polls keep failing, stays pending: the next run resumes it, unless it is older than
`job_lifetime_s` (an hour: Replicate removes an API prediction's input, output and files after an hour,
https://replicate.com/docs/topics/predictions/data-retention): the ledger then marks it expired and a new
one is made.

Models: MODELS maps storyflow's request onto each known model's input names (prompt, negative_prompt,
duration or num_frames, aspect_ratio, the start and end image, seed), with its durations, frame rate and
list price per second. Any other "owner/name" gets GENERIC (prompt, duration, aspect_ratio, image, seed;
rename with duration_field / image_field / end_image_field) and no price. `input` adds model-specific
fields (e.g. {"mode": "pro"}). The tables follow the models' pages on replicate.com as last seen; they are
not fetched, so a model that renames an input answers 422, passed through as a GenerationError.

Images: the start (and end) frame is sent as a PNG file object; the client turns it into a data URI
(file_encoding_strategy="base64") when it is at most INLINE_IMAGE_BYTES, else uploads it (POST /v1/files)
and sends the file's URL.

Failures: a failed prediction -> GenerationError naming the model and its error; one whose error says
NSFW / safety / flagged / sensitive (Replicate's E005) -> ContentFiltered, the reasons in the message; a
canceled one -> failed. Retries: the client's RetryTransport already retries GET requests (polls,
downloads) on 429/503/504 honouring Retry-After (whole seconds or an ISO date, as Replicate sends it;
not an HTTP date or fractional seconds, which fall back to its backoff); storyflow sets it to `max_retries` attempts with
`backoff_seconds` (Retry-After capped at RETRY_AFTER_CAP) and retries the rest itself, per call, with
jittered exponential backoff honouring Retry-After: the create (429, 5xx, refused connections), 500/502/408
on any call, timeouts and dropped connections on polls and downloads. A create whose answer was lost (a
read timeout, a dropped connection after sending) is NOT retried: it may have started a paid prediction,
and Replicate has no idempotency key. Exhausted -> TransientError naming model, host and status;
401/403 -> BackendUnavailableError naming REPLICATE_API_TOKEN; other 4xx -> GenerationError with the
server's message, redacted.

Cost: price per second (the table's, for the `mode`/`resolution` tier sent, or price_per_second) times the
seconds asked for (the model's duration, or num_frames / its rate: what it bills, even when the clip keeps
fewer frames), in GeneratedVideo.metadata["cost_usd"] and the ledger, whose detail says model, mode,
seconds billed and tier; the metadata also has the resolution (the tier, else the video's size).

The clip's frames are returned exactly (`frames`; `path` is the file as downloaded): a video a frame or
two short is padded with its last frame, one longer is cut.

Tested (tests/backends/video/test_replicate.py, against tests/fake_replicate.py through the real client):
create/poll/download, text and image to video, retries and Retry-After, failed, filtered and canceled
predictions, resuming a pending one, the key check, option refusals. Not tested against replicate.com: the
models' real input schemas, frame counts and prices are taken from their pages.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
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
from storyflow.core.errors import BackendUnavailableError, ContentFiltered, GenerationError, TransientError
from storyflow.core.secrets import redact

if TYPE_CHECKING:
    import numpy as np
    import replicate

    from storyflow.core.models import ClipRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

KEY_VARIABLE = "REPLICATE_API_TOKEN"
DEFAULT_MODEL = "kwaivgi/kling-v2.1-master"
API_HOST = "api.replicate.com"
MIN_POLL_SECONDS = 5.0
RETRY_AFTER_CAP = 120.0
INLINE_IMAGE_BYTES = 1_000_000  # larger start/end frames are uploaded (POST /v1/files) instead of sent inline
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(:[0-9a-f]{6,64})?$")
FILTERED = re.compile(r"nsfw|safety|flagged|sensitive|content polic|moderation|\bE005\b", re.IGNORECASE)
RUNNING = ("starting", "processing")
RESULT_LIFETIME_S = 3600.0  # Replicate removes an API prediction's output after an hour (its data retention)


@dataclass(frozen=True)
class ModelSpec:
    """One model's input names (None: it has no such input), its clip rules and its list prices."""

    prompt: str = "prompt"
    negative_prompt: str | None = None
    duration: str | None = "duration"  # seconds, one of `durations`
    frames: str | None = None  # or a frame count (`frames_range`) at `fps_field`
    fps_field: str | None = None
    aspect_ratio: str | None = "aspect_ratio"
    start_image: str | None = "image"
    end_image: str | None = None
    seed: str | None = "seed"
    durations: tuple[float, ...] = (5, 10)
    frames_range: tuple[int, int] = (0, 0)
    fps: int = 24
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    needs_start_image: bool = False
    end_image_needs: dict[str, Any] = field(default_factory=dict)  # inputs the end image only works with
    tier: str | None = None  # the input that picks the price ("mode", "resolution")
    default_tier: str = ""
    prices: dict[str, float] = field(default_factory=dict)  # USD per second of video, per tier


# List prices (USD per second of video) as last seen on replicate.com; pass price_per_second for your own.
PRICES_NOTE = "list prices per second of video; pass --video-option price_per_second=... for your own"
MODELS: dict[str, ModelSpec] = {
    # start_image is required: image-to-video only; end_image in mode=pro only
    "kwaivgi/kling-v2.1": ModelSpec(negative_prompt="negative_prompt", aspect_ratio=None, start_image="start_image",
                                    end_image="end_image", seed=None, needs_start_image=True,
                                    end_image_needs={"mode": "pro"}, tier="mode", default_tier="standard",
                                    prices={"standard": 0.05, "pro": 0.09}),  # fmt: skip
    "kwaivgi/kling-v2.1-master": ModelSpec(negative_prompt="negative_prompt", start_image="start_image", seed=None,
                                           prices={"": 0.28}),  # fmt: skip
    "bytedance/seedance-1-pro": ModelSpec(durations=tuple(float(s) for s in range(2, 13)), end_image="last_frame_image",
                                          aspect_ratios=("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"),
                                          tier="resolution", default_tier="1080p",
                                          prices={"480p": 0.03, "720p": 0.06, "1080p": 0.15}),  # fmt: skip
    "minimax/hailuo-02": ModelSpec(durations=(6, 10), aspect_ratio=None, start_image="first_frame_image",
                                   end_image="last_frame_image", seed=None, tier="resolution", default_tier="768p",
                                   prices={"512p": 0.017, "768p": 0.045, "1080p": 0.08}),  # fmt: skip
    # Wan 2.2 counts frames (81-121) at frames_per_second; priced per video, so no price per second
    "wan-video/wan-2.2-t2v-fast": ModelSpec(negative_prompt=None, duration=None, frames="num_frames",
                                            fps_field="frames_per_second", start_image=None, frames_range=(81, 121),
                                            fps=16, aspect_ratios=("16:9", "9:16")),  # fmt: skip
    "wan-video/wan-2.2-i2v-fast": ModelSpec(negative_prompt=None, duration=None, frames="num_frames",
                                            fps_field="frames_per_second", frames_range=(81, 121), fps=16,
                                            aspect_ratios=("16:9", "9:16"), needs_start_image=True),  # fmt: skip
}
GENERIC = ModelSpec()  # an unknown model: common input names, no price


class ReplicateOptions(BackendOptions):
    """Replicate's options. The key is never an option: REPLICATE_API_TOKEN."""

    model: str = Field(default=DEFAULT_MODEL, description="the model, 'owner/name' (its latest version) or "
                       "'owner/name:version', e.g. kwaivgi/kling-v2.1-master, bytedance/seedance-1-pro, "
                       "minimax/hailuo-02, wan-video/wan-2.2-t2v-fast")  # fmt: skip
    base_url: str | None = Field(default=None, description="another address for the API (a proxy, a test server)")
    poll_seconds: float = Field(default=5.0, gt=0, description="seconds between polls (at least 5 unless base_url)")
    max_wait: float = Field(default=1800.0, gt=0, description="seconds to wait for one prediction; then the run "
                            "fails and the next run resumes it")  # fmt: skip
    timeout: float = Field(default=60.0, gt=0, description="seconds to wait for one HTTP answer")
    max_retries: int = Field(default=5, ge=0, le=20, description="retries of 429, 5xx, timeouts and dropped "
                             "connections, per call")  # fmt: skip
    backoff_seconds: float = Field(default=2.0, gt=0, le=60, description="the first retry's wait; doubles each "
                                   "time, jittered (Retry-After wins when the server sends it)")  # fmt: skip
    price_per_second: float | None = Field(default=None, ge=0, description="your price in USD per second of video "
                                           "(default: the model's list price, if known)")  # fmt: skip
    input: dict[str, Any] = Field(default_factory=dict, description="more inputs for the model, e.g. "
                                  "{mode: pro} or {resolution: 720p}")  # fmt: skip
    duration_field: str | None = Field(default=None, description="the model's input for seconds (default: the "
                                       "table's, or 'duration')")  # fmt: skip
    image_field: str | None = Field(default=None, description="the model's input for the start image")
    end_image_field: str | None = Field(default=None, description="the model's input for the end image")
    concurrency: int = Field(default=2, ge=1, le=16, description="predictions in flight at once")
    jobs_per_minute: int = Field(default=60, ge=1, le=6000,
                                 description="predictions started a minute, by every run together (the provider's rate limit)")
    download_dir: Path | None = Field(default=None, description="where downloaded videos are kept (default: a "
                                      "folder under the system's temporary folder)")  # fmt: skip

    @field_validator("model")
    @classmethod
    def _model_ref(cls, value: str) -> str:
        if not MODEL_PATTERN.match(value):
            raise ValueError("must be 'owner/name' or 'owner/name:version' (a hex version id)")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") or None if value else None

    @field_validator("input")
    @classmethod
    def _json_able(cls, value: dict[str, Any]) -> dict[str, Any]:
        import json

        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-able: {exc}") from None
        return value

    @model_validator(mode="after")
    def _rules(self) -> ReplicateOptions:
        if self.poll_seconds < MIN_POLL_SECONDS and self.base_url is None:
            raise ValueError(f"poll_seconds must be at least {MIN_POLL_SECONDS:g} against replicate.com "
                             "(smaller values are for test servers, with base_url)")  # fmt: skip
        spec = spec_for(self.model.split(":")[0], self)
        taken = {"prompt": spec.prompt, "duration": spec.duration, "frames": spec.frames, "image": spec.start_image,
                 "end image": spec.end_image, "seed": spec.seed}  # fmt: skip
        clash = sorted(name for name in self.input if name in {v for v in taken.values() if v})
        if clash:
            raise ValueError(f"input sets {', '.join(clash)}, which storyflow fills from each shot; drop it "
                             "(use negative prompts, seeds and frames through the storyboard)")  # fmt: skip
        return self


def spec_for(model: str, options: ReplicateOptions | None = None) -> ModelSpec:
    """The table's entry for `owner/name` (GENERIC if unknown), with the options' field names applied."""
    from dataclasses import replace

    spec = MODELS.get(model, GENERIC)
    if options is None:
        return spec
    changes: dict[str, Any] = {}
    if options.duration_field:
        changes |= {"duration": options.duration_field, "frames": None}
    if options.image_field:
        changes["start_image"] = options.image_field
    if options.end_image_field:
        changes["end_image"] = options.end_image_field
    return replace(spec, **changes) if changes else spec


@dataclass
class _Plan:
    """How one request is asked of the model."""

    input: dict[str, Any]
    seconds: float  # of video asked for (and paid for)
    mode: str  # "text", "image", "interpolate"
    dropped: list[str]


class ReplicateBackend(VideoBackend):
    """Hosted video models on Replicate: predictions created once, resumed from the ledger, downloaded at once."""

    name = "replicate"
    version = "1"
    description = ("hosted video models on Replicate (Kling, Seedance, Hailuo, Wan); key in $REPLICATE_API_TOKEN; "
                   "billed per second of video asked for (the model's clip length)")  # fmt: skip
    Options = ReplicateOptions
    requires = ("replicate",)
    install = 'pip install "storyflow[hosted]"'
    key_env = (KEY_VARIABLE,)
    operational = frozenset({"base_url", "poll_seconds", "max_wait", "timeout", "max_retries", "backoff_seconds",
                             "price_per_second", "concurrency", "jobs_per_minute", "download_dir"})  # fmt: skip
    resumable_jobs = True
    job_lifetime_s = RESULT_LIFETIME_S
    prompt_shape = PromptShape(
        order=("subject", "action", "context", "camera", "style", "composition", "ambience"),
        max_words=90,
        negative_prompt=True,
        notes="Kling, Seedance, Hailuo and Wan read short, concrete prompts best: who, doing what, where, then one "
        "plain camera move and the look; one action per clip. Not every model takes a negative prompt.",
    )

    options: ReplicateOptions

    def __init__(self, options: ReplicateOptions | None = None) -> None:
        super().__init__(options)
        self._client: replicate.Client | None = None
        self._lock = threading.Lock()
        self._seen = threading.local()  # the last answer's Retry-After, per thread
        self._inner_retries = False  # whether the client's RetryTransport retries GETs for us

    # ------------------------------------------------------------ what it is

    @property
    def model(self) -> str:
        return self.options.model.split(":")[0]

    @property
    def revision(self) -> str:
        return self.options.model.partition(":")[2]

    @property
    def spec(self) -> ModelSpec:
        return spec_for(self.model, self.options)

    @property
    def tier(self) -> str:
        spec = self.spec
        return str(self.options.input.get(spec.tier, spec.default_tier)) if spec.tier else ""

    @property
    def price(self) -> float | None:
        if self.options.price_per_second is not None:
            return self.options.price_per_second
        return self.spec.prices.get(self.tier)

    @property
    def durations(self) -> tuple[float, ...]:
        return () if self.spec.frames else self.spec.durations

    @property
    def capabilities(self) -> VideoCapabilities:
        spec = self.spec
        end_ok = bool(spec.end_image) and all(self.options.input.get(k) == v for k, v in spec.end_image_needs.items())
        if spec.frames:
            rule = {"max_clip_seconds": spec.frames_range[1] / spec.fps, "frame_step": 4, "frame_offset": 1}
        else:
            rule = {"max_clip_seconds": max(spec.durations), "durations": spec.durations}
        return VideoCapabilities(
            **rule,
            fps=(spec.fps,),
            size_multiple=2,
            aspect_ratios=spec.aspect_ratios,
            text_to_video=not spec.needs_start_image,
            image_to_video=bool(spec.start_image),
            last_frame=end_ok and bool(spec.start_image),
            extend_from_video=False,  # a continuation starts from the last frame (image-to-video)
            extend_backward=False,
            context_frames=1,
            seed=bool(spec.seed),
            native_audio=False,
            cost_per_second=round(self.price or 0.0, 6),
            max_concurrency=self.options.concurrency,
        )

    @property
    def host(self) -> str:
        url = self.options.base_url or os.environ.get("REPLICATE_BASE_URL") or ""
        if not url:
            return API_HOST
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or url

    def shared_limits(self) -> tuple[SharedLimit, ...]:
        """Its jobs in flight (`concurrency`) and started a minute (`jobs_per_minute`), for every run together."""
        return provider_limits(self.name, self.options.concurrency, self.options.jobs_per_minute,
                               self.options.base_url)

    def check(self) -> None:
        if self.model not in MODELS:
            log.warning("replicate: %s is not in storyflow's table; sending the generic inputs (prompt, duration, "
                        "aspect_ratio, image, seed) and recording no cost", self.model)  # fmt: skip
        elif self.price is None:
            log.warning("replicate: no list price per second for %s (%s)", self.model, PRICES_NOTE)

    def client(self) -> replicate.Client:
        """Replicate's client, made once, with the token from REPLICATE_API_TOKEN and its GET retries tuned."""
        with self._lock:
            if self._client is None:
                token = os.environ.get(KEY_VARIABLE)
                if not token:
                    raise BackendUnavailableError("the video backend 'replicate' needs an API key and none is set",
                                                  fix=f"set {KEY_VARIABLE} in the environment")  # fmt: skip
                import httpx
                import replicate

                self._client = replicate.Client(api_token=token, base_url=self.options.base_url,
                                                timeout=httpx.Timeout(self.options.timeout, connect=10.0),
                                                event_hooks={"response": [self._note]})  # fmt: skip
                self._inner_retries = self._tune(self._client)
            return self._client

    def _note(self, response: Any) -> None:
        self._seen.retry_after = _retry_after(response.headers.get("retry-after"))

    def _tune(self, client: replicate.Client) -> bool:
        """Set the client's RetryTransport (GETs on 429/503/504, honouring Retry-After) to our retries."""
        from replicate.client import RetryTransport

        transport = getattr(client._client, "_transport", None)
        if not isinstance(transport, RetryTransport):
            return False
        transport.max_attempts = self.options.max_retries + 1
        transport.backoff_factor = self.options.backoff_seconds
        transport.max_backoff_wait = RETRY_AFTER_CAP
        plain = transport._calculate_sleep
        transport._calculate_sleep = lambda made, headers: min(plain(made, headers), RETRY_AFTER_CAP)  # type: ignore
        return True

    # ------------------------------------------------------------ making a clip

    def generate(self, request: ClipRequest, jobs: PaidJobs | None = None) -> GeneratedVideo:
        """One clip: resume the ledger's pending prediction or create one, poll it, download it, return its frames."""
        client = self.client()
        plan = self._plan(request)
        cost = round(self.price * plan.seconds, 6) if self.price is not None else None
        pending = jobs.pending() if jobs is not None else None
        if pending:
            log.info("replicate: resuming prediction %s (started by an earlier run; not paid again)", pending)
            prediction = self._call("poll", "GET", lambda: client.predictions.get(pending), jobs=jobs, job=pending)
        else:
            prediction = self._call("create", "POST", lambda: self._create(client, plan))
            if jobs is not None:
                tier = f" at {self.spec.tier} {self.tier}" if self.spec.tier else ""
                jobs.started(prediction.id, cost_usd=cost, detail=f"{self.options.model} {plan.mode} "
                             f"{plan.seconds:g} s billed{tier}")  # fmt: skip
        job = prediction.id
        prediction = self._wait(client, prediction, jobs)
        url = self._outcome(prediction, jobs)
        path = self._download(client, url, job, jobs)
        frames, note, size = self._keep(path, request)
        if jobs is not None:
            jobs.finished(job, "done", detail=f"{path.name} {size}")
        resolution = self.tier if self.spec.tier == "resolution" else size
        metadata: dict[str, Any] = {"prediction": job, "model": self.options.model, "mode": plan.mode,
                                    "seconds_generated": plan.seconds, "resolution": resolution,
                                    "resumed": bool(pending), "file": str(path)}  # fmt: skip
        if cost is not None:
            metadata["cost_usd"] = cost
        if prediction.metrics and prediction.metrics.get("predict_time") is not None:
            metadata["predict_time"] = prediction.metrics["predict_time"]
        notes = [f"{self.model} takes no {name}; left out" for name in plan.dropped] + ([note] if note else [])
        if notes:
            metadata["notes"] = notes
        return GeneratedVideo(frames=frames, path=path, context_frames=0, metadata=metadata)

    def _plan(self, request: ClipRequest) -> _Plan:
        spec, caps = self.spec, self.capabilities
        strategy = request.strategy
        start = request.conditioning[-1] if request.conditioning is not None and len(request.conditioning) else None
        end = request.end_conditioning[0] if request.end_conditioning is not None and len(request.end_conditioning) \
            else None
        if strategy == "extend_backward":
            raise GenerationError(f"replicate model {self.model} cannot end on a given frame without starting on "
                                  "one (extend_backward)", fix="this backend declares extend_backward=False; the "
                                  "planner should not ask for it")  # fmt: skip
        if strategy != "text_to_video" and start is None:
            raise GenerationError(f"replicate: a {strategy} clip needs conditioning frames and got none",
                                  fix="this is a pipeline bug; rerun with --debug")  # fmt: skip
        if start is None and spec.needs_start_image:
            raise GenerationError(f"replicate model {self.model} makes video from a start image only, and this clip "
                                  "starts from text", fix="pick a text-to-video model, e.g. --video-option "
                                  "model=kwaivgi/kling-v2.1-master or bytedance/seedance-1-pro")  # fmt: skip
        if start is not None and not spec.start_image:
            raise GenerationError(f"replicate model {self.model} takes no start image",
                                  fix="pick an image-to-video model, or set --video-option image_field=<its input>")
        if end is not None and not caps.last_frame:
            needs = ", ".join(f"{k}={v}" for k, v in spec.end_image_needs.items())
            raise GenerationError(f"replicate model {self.model} does not take an end image"
                                  + (f" unless input has {needs}" if needs else ""),
                                  fix="pick a model that takes one (e.g. bytedance/seedance-1-pro), "
                                  "or set --video-option end_image_field=<its input>")  # fmt: skip
        fps = request.fps or spec.fps
        body: dict[str, Any] = dict(self.options.input)
        body[spec.prompt] = request.prompt
        if spec.frames:
            low, high = spec.frames_range
            frames = min(max(caps.model_frames(request.num_frames), low), high)
            body[spec.frames] = frames
            if spec.fps_field:
                body[spec.fps_field] = spec.fps
            seconds = frames / spec.fps
        else:
            needed = request.num_frames / fps
            allowed = sorted(spec.durations)
            seconds = next((d for d in allowed if d >= needed - 1e-9), allowed[-1])
            if spec.duration:
                body[spec.duration] = int(seconds) if float(seconds).is_integer() else seconds
        dropped: list[str] = []
        if spec.aspect_ratio and start is None:  # with a start image the models follow the image's shape
            body[spec.aspect_ratio] = _nearest_aspect(request.width, request.height, spec.aspect_ratios)
        if request.negative_prompt.strip():
            if spec.negative_prompt:
                body[spec.negative_prompt] = request.negative_prompt.strip()
            else:
                dropped.append("negative prompt")
        if spec.seed:
            body[spec.seed] = int(request.seed)
        mode = "text"
        if start is not None:
            body[spec.start_image] = _png_file(start, "start")  # type: ignore[index]
            mode = "image"
        if end is not None:
            body[spec.end_image] = _png_file(end, "end")  # type: ignore[index]
            mode = "interpolate"
        return _Plan(input=body, seconds=float(seconds), mode=mode, dropped=dropped)

    def _create(self, client: replicate.Client, plan: _Plan) -> Any:
        files = [v for v in plan.input.values() if isinstance(v, io.BytesIO)]
        inline = all(len(f.getbuffer()) <= INLINE_IMAGE_BYTES for f in files)
        params: dict[str, Any] = {"file_encoding_strategy": "base64"} if inline else {}
        for f in files:
            f.seek(0)
        if self.revision:
            return client.predictions.create(version=self.revision, input=plan.input, **params)
        return client.models.predictions.create(model=self.model, input=plan.input, **params)

    # ------------------------------------------------------------ waiting and fetching

    def _wait(self, client: replicate.Client, prediction: Any, jobs: PaidJobs | None) -> Any:
        deadline = time.monotonic() + self.options.max_wait
        while prediction.status in RUNNING:
            if time.monotonic() > deadline:
                raise TransientError(
                    f"replicate model {self.model} at {self.host}: prediction {prediction.id} still "
                    f"{prediction.status} after {self.options.max_wait:g} s",
                    fix="run again: the prediction is recorded and the next run resumes it without paying again "
                    "(or raise --video-option max_wait=...)",
                )
            time.sleep(self.options.poll_seconds)
            job = prediction.id
            prediction = self._call("poll", "GET", lambda: client.predictions.get(job), jobs=jobs, job=job)
        return prediction

    def _outcome(self, prediction: Any, jobs: PaidJobs | None) -> str:
        job = prediction.id
        if prediction.status in ("failed", "canceled"):
            said = redact(str(prediction.error or prediction.status))
            if prediction.status == "failed" and FILTERED.search(said):
                if jobs is not None:
                    jobs.finished(job, "filtered", detail=said)
                raise ContentFiltered(f"replicate model {self.model}: prediction {job} was filtered by the "
                                      f"provider's safety checks: {said}",
                                      fix="rewrite the shot's prompt (or its first frame)",
                                      reasons=(said,))  # fmt: skip
            if jobs is not None:
                jobs.finished(job, "failed", detail=f"{prediction.status}: {said}")
            raise GenerationError(f"replicate model {self.model}: prediction {job} {prediction.status}: {said}",
                                  fix="try again, or change the prompt or the options")  # fmt: skip
        url = _first_url(prediction.output)
        if not url:
            if jobs is not None:
                jobs.finished(job, "failed", detail=f"succeeded without a video: {str(prediction.output)[:200]}")
            raise GenerationError(f"replicate model {self.model}: prediction {job} succeeded without a video URL",
                                  fix="check that the model makes video")  # fmt: skip
        return url

    def _download(self, client: replicate.Client, url: str, job: str, jobs: PaidJobs | None) -> Path:
        from replicate.helpers import FileOutput

        folder = self.options.download_dir or Path(tempfile.gettempdir()) / "storyflow-replicate"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(job.encode()).hexdigest()[:16]}.mp4"
        partial = path.with_suffix(".part")
        data = self._call("download", "GET", lambda: FileOutput(url, client).read(), jobs=jobs, job=job)
        partial.write_bytes(data)
        os.replace(partial, path)
        return path

    def _keep(self, path: Path, request: ClipRequest) -> tuple[Iterator[np.ndarray], str, str]:
        """Exactly request.num_frames frames of the downloaded video; a note if it was fixed; its size ("WxH")."""
        import numpy as np

        from storyflow import media

        info = media.probe(path)
        total, wanted = info.num_frames, request.num_frames
        count = min(wanted, total)
        short = wanted - count
        if count == 0 or short > max(2, wanted // 20):
            raise GenerationError(f"replicate model {self.model} answered {total} frames for a clip of {wanted}",
                                  fix="pick a duration the model makes, or another model")  # fmt: skip
        note = f"the video was {short} frame{'s' if short > 1 else ''} short; its last frame is held" if short else ""

        def frames() -> Iterator[np.ndarray]:
            frame = None
            for frame in media.read_frames(path, 0, count):
                yield np.ascontiguousarray(frame)
            for _ in range(short):
                yield np.ascontiguousarray(frame)

        return frames(), note, f"{info.width}x{info.height}"

    # ------------------------------------------------------------ calls, retried

    def _call(self, what: str, method: str, call: Callable[[], T], *, jobs: PaidJobs | None = None,
              job: str | None = None) -> T:  # fmt: skip
        """`call` with retries of 429 (honouring Retry-After), 5xx, timeouts and dropped connections."""
        import httpx
        from replicate.exceptions import ReplicateError

        attempts = self.options.max_retries + 1
        last = ""
        for attempt in range(attempts):
            self._seen.retry_after = None
            try:
                return call()
            except (ReplicateError, httpx.HTTPStatusError) as exc:
                if isinstance(exc, ReplicateError):
                    status, said = int(exc.status or 0), redact(str(exc.detail or exc.title or exc.type or ""))
                else:
                    status, said = exc.response.status_code, redact(_body(exc.response))
                if status in (401, 403):
                    raise BackendUnavailableError(
                        f"{self.host} refused the credentials (HTTP {status}) for replicate model {self.model}: "
                        f"{said}", fix=f"set {KEY_VARIABLE} in the environment to a token Replicate accepts "
                        "(keys are never options)") from None  # fmt: skip
                if not (status in (408, 429) or status >= 500):
                    if what == "poll" and jobs is not None and job and status == 404:
                        jobs.finished(job, "failed", detail=f"HTTP 404: {said}")
                    raise GenerationError(f"replicate model {self.model} at {self.host}: {what} refused "
                                          f"(HTTP {status}): {said}", fix="check the model, its inputs "
                                          "(--video-option input=...) and the prompt; the server's message says "
                                          "what it did not accept") from None  # fmt: skip
                last = f"HTTP {status}"
                if method == "GET" and self._inner_retries and status in (429, 503, 504):
                    break  # the client's RetryTransport already retried this max_retries times
                wait = self._seen.retry_after
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {redact(str(exc)) or 'no answer'}"
                if method == "POST" and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    raise TransientError(
                        f"replicate model {self.model} at {self.host}: the create's answer was lost ({last}); a "
                        "prediction may have started, so storyflow does not retry it (that could pay twice)",
                        fix="check https://replicate.com/predictions, cancel a stray one, and run again",
                    ) from None
                wait = None
            if attempt + 1 >= attempts:
                break
            if wait is None:
                wait = self.options.backoff_seconds * 2**attempt * random.uniform(0.5, 1.0)
            wait = min(wait, RETRY_AFTER_CAP)
            log.info("replicate: %s at %s failed (%s); retry %d of %d in %.2f s", what, self.host, last,
                     attempt + 1, attempts - 1, wait)  # fmt: skip
            time.sleep(wait)
        retries = self.options.max_retries
        raise TransientError(
            f"replicate model {self.model} at {self.host}: {what} failed after {retries} "
            f"{'retry' if retries == 1 else 'retries'} ({last})",
            fix="try again later: a prediction already started is recorded and resumed, not paid again"
            if what != "create" else "try again later, or raise --video-option max_retries=...",
        )


# ---------------------------------------------------------------- helpers


def _nearest_aspect(width: int, height: int, choices: tuple[str, ...]) -> str:
    import math

    def ratio(text: str) -> float:
        w, h = text.split(":")
        return float(w) / float(h)

    return min(choices, key=lambda c: abs(math.log(ratio(c) / (width / height))))


def _png_file(frame: Any, name: str) -> io.BytesIO:
    """A frame as a named PNG file object: the client sends it as a data URI or uploads it."""
    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(out, format="PNG")
    out.name = f"{name}.png"  # the client reads the MIME type from the name
    out.seek(0)
    return out


def _first_url(output: Any) -> str:
    """The video URL in a prediction's output: a string, or the first (mp4 first) of a list or dict."""
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, list):
        urls = [item for item in output if isinstance(item, str)]
        return next((u for u in urls if urlsplit(u).path.endswith(".mp4")), urls[0] if urls else "")
    return ""


def _body(response: Any) -> str:
    """The start of an answer's body, or its reason phrase when it was streamed and not read."""
    try:
        return response.text[:500] or response.reason_phrase
    except Exception:  # httpx.ResponseNotRead: a download's error answer
        return str(getattr(response, "reason_phrase", "") or "")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date)."""
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
