"""A real Replicate API server for the replicate backend's tests: predictions, scripted faults, every request recorded.

Replicate's client (`replicate` 1.x) speaks through httpx, so only a real server sees its calls. This
one listens on 127.0.0.1 (a free port) in a thread and answers what a video prediction needs, with the
JSON the client parses (replicate/prediction.py `Prediction`, replicate/file.py `File`):

    POST /v1/models/{owner}/{name}/predictions  {"input"}             -> a prediction, status "starting"
    POST /v1/predictions                        {"version", "input"}  -> the same, for a pinned version
    GET  /v1/predictions/{id}                   -> "starting"/"processing", then "succeeded" with "output":
         "<this server>/delivery/{id}/output.mp4", or "failed" with "error", or "canceled"
    GET  /delivery/{id}/output.mp4              -> the mp4 (video/mp4)
    POST /v1/files  (multipart "content")       -> a File whose urls.get is "<this server>/files/{id}"
    GET  /files/{id}                            -> the uploaded bytes

Errors are RFC 7807 bodies ({"title", "detail", "status"}) as Replicate sends them. The token must
come as "Authorization: Bearer <token>"; `token=` pins the one accepted (none: 401, a wrong one: 401
"Invalid token", or `forbidden=True` for 403).

Videos are real H.264 mp4s made with storyflow.media.VideoWriter: size from the input's aspect_ratio
(`sizes`, default 64x36 for 16:9, 36x64 for 9:16, 48x48 for 1:1), rate from frames_per_second (else
`fps`, 24), length from num_frames, else duration x rate (duration default 5). A start image (any
input that is a data URI, or a URL of a file uploaded here) becomes frame 0, and the frames after it
move on from it (so a continuation's seam is smooth). Each frame is distinct.

Predictions finish after `polls` GETs (1: the first poll says succeeded); `hold()` keeps every
prediction running until `release()`. `outcome(...)` scripts how the next created predictions end:
Done() (default), Failed(error), Filtered(error) (a failed prediction whose error says it was flagged),
Canceled(). `fault(kind, Fault(...))` queues HTTP faults for "create", "poll", "download" or "upload":
a status with Retry-After, a delay before answering (status None: then answer normally), or a dropped
connection. A faulted create never creates a prediction. `fault_rate` adds random faults (seeded): 503,
429 with Retry-After, 500 on any call, and dropped connections on GETs only (a create whose answer was
lost is, by design, not retried by the backend: queue Fault(drop=True) for "create" to test that).
`add_prediction()` makes one as if an earlier run had created it (and paid for it).

    with FakeReplicate(polls=2, token="r8_test") as server:
        server.fault("create", Fault(429, retry_after=0.2))
        backend = load_backend("video", "replicate", {"base_url": server.url, "poll_seconds": 0.02})
        ...
        assert len(server.creates) == 1 and len(server.polls) == 2

As a fixture: `pytest_plugins = ["tests.fake_replicate"]`, then ask for `fake_replicate`.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import random
import shutil
import string
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

KINDS = ("create", "poll", "download", "upload")


@dataclass
class Fault:
    """One scripted HTTP fault: `status` (None: no error, only the delay), `retry_after` seconds (the
    Retry-After header), `delay` seconds before answering, `drop` the connection unanswered."""

    status: int | None = 503
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    detail: str = ""


@dataclass
class Done:
    """The prediction succeeds (the default)."""


@dataclass
class Failed:
    error: str = "Prediction failed: CUDA out of memory"


@dataclass
class Filtered:
    """Replicate's safety check: a failed prediction whose error says the output was flagged."""

    error: str = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"


@dataclass
class Canceled:
    """Someone canceled it (on the website, or with the API)."""


@dataclass
class Request:
    """One request as received: kind (create, poll, download, upload or other), method, path, headers, body."""

    kind: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 200  # what it was answered with (0: dropped)
    at: float = field(default_factory=time.monotonic)


@dataclass
class Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    outcome: Done | Failed | Filtered | Canceled
    created_at: str
    polls: int = 0
    output: str | None = None


class FakeReplicate:
    """The server: `url` (the base_url to give the client), `requests`, `predictions`, `files`, `uploads`."""

    def __init__(self, *, polls: int = 1, token: str | None = None, forbidden: bool = False, fps: int = 24,
                 sizes: dict[str, tuple[int, int]] | None = None, fault_rate: float = 0.0,
                 seed: int = 0) -> None:  # fmt: skip
        self.polls_needed = polls
        self.token = token
        self.forbidden = forbidden
        self.fps = fps
        self.sizes = sizes or {"16:9": (64, 36), "9:16": (36, 64), "1:1": (48, 48)}
        self.requests: list[Request] = []
        self.predictions: dict[str, Prediction] = {}
        self.files: dict[str, bytes] = {}  # prediction id -> its mp4
        self.uploads: dict[str, tuple[str, bytes]] = {}  # file id -> (content type, bytes)
        self.outcomes: deque[Done | Failed | Filtered | Canceled] = deque()
        self.faults: dict[str, deque[Fault]] = {kind: deque() for kind in KINDS}
        self.held = False
        self.fault_rate = fault_rate
        self.random = random.Random(seed)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._dir: Path | None = None

    # ------------------------------------------------------------ scripting

    def fault(self, kind: str, *faults: Fault) -> FakeReplicate:
        """Queue faults for the next calls of `kind` (create, poll, download, upload), in order."""
        assert kind in KINDS, kind
        with self._lock:
            self.faults[kind].extend(faults)
        return self

    def outcome(self, *outcomes: Done | Failed | Filtered | Canceled) -> FakeReplicate:
        """How the next created predictions end, in order (then Done)."""
        with self._lock:
            self.outcomes.extend(outcomes)
        return self

    def hold(self) -> None:
        """Keep every prediction running ("processing") until release()."""
        self.held = True

    def release(self) -> None:
        self.held = False

    def add_prediction(self, model: str = "kwaivgi/kling-v2.1-master", input: dict[str, Any] | None = None, *,
                       outcome: Done | Failed | Filtered | Canceled | None = None) -> str:  # fmt: skip
        """A prediction as if an earlier run had created it (and paid for it); returns its id."""
        return self._create(model, "", input or {"prompt": "an earlier run's clip", "duration": 5},
                            outcome or Done()).id  # fmt: skip

    def of_kind(self, kind: str, *, answered: bool = True) -> list[Request]:
        """The requests of a kind; `answered`: only those answered 2xx (not the faulted ones)."""
        with self._lock:
            return [r for r in self.requests if r.kind == kind and (200 <= r.status < 300 or not answered)]

    @property
    def creates(self) -> list[Request]:
        """Create requests that created a prediction (paid ones)."""
        return self.of_kind("create")

    @property
    def polls(self) -> list[Request]:
        return self.of_kind("poll")

    @property
    def downloads(self) -> list[Request]:
        return self.of_kind("download")

    # ------------------------------------------------------------ serving

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeReplicate:
        fake = self
        self._dir = Path(tempfile.mkdtemp(prefix="fake-replicate-"))

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                fake._handle(self, "POST")

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> FakeReplicate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ answering

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(handler.path).path
        headers = {name.lower(): value for name, value in handler.headers.items()}
        raw = handler.rfile.read(int(headers.get("content-length") or 0))
        body: Any = raw
        if headers.get("content-type", "").startswith("application/json"):
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        parts = path.strip("/").split("/")
        if method == "POST" and (path == "/v1/predictions" or (len(parts) == 5 and parts[:2] == ["v1", "models"]
                                                               and parts[4] == "predictions")):  # fmt: skip
            kind = "create"
        elif method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "predictions"]:
            kind = "poll"
        elif method == "GET" and parts[0] == "delivery":
            kind = "download"
        elif method == "POST" and path == "/v1/files":
            kind = "upload"
        else:
            kind = "other"
        record = Request(kind, method, path, headers, body)
        with self._lock:
            self.requests.append(record)
            fault = self.faults[kind].popleft() if kind in KINDS and self.faults[kind] else None
            if fault is None and kind in KINDS and self.fault_rate and self.random.random() < self.fault_rate:
                drop = [Fault(drop=True)] if method == "GET" else []
                fault = self.random.choice([Fault(503), Fault(429, retry_after=0.01), Fault(500), *drop])
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                record.status = 0
                handler.close_connection = True
                return
            if fault.status is not None:
                extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                record.status = fault.status
                return self._problem(handler, fault.status, fault.detail, extra)
        if kind in ("create", "poll", "upload"):  # the API wants the token; delivery URLs are public
            token = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not token or (self.token is not None and token != self.token):
                record.status = 403 if self.forbidden else 401
                return self._problem(handler, record.status, "You did not pass a valid authentication token"
                                     if not token else "Invalid token.")  # fmt: skip
        try:
            if kind == "create":
                body = body if isinstance(body, dict) else {}
                if path == "/v1/predictions":
                    version = str(body.get("version") or "")
                    model = "unknown/pinned-version"
                else:
                    model, version = f"{parts[2]}/{parts[3]}", ""
                if not isinstance(body.get("input"), dict) or not body["input"].get("prompt"):
                    record.status = 422
                    return self._problem(handler, 422, "- input: prompt is required")
                with self._lock:
                    outcome = self.outcomes.popleft() if self.outcomes else Done()
                prediction = self._create(model, version, body["input"], outcome)
                record.status = 201
                return self._json(handler, 201, self._view(prediction))
            if kind == "poll":
                with self._lock:
                    prediction = self.predictions.get(parts[2])
                if prediction is None:
                    record.status = 404
                    return self._problem(handler, 404, "The requested resource could not be found.")
                self._advance(prediction)
                return self._json(handler, 200, self._view(prediction))
            if kind == "download":
                data = self.files.get(parts[1]) if len(parts) == 3 else None
                if data is None:
                    record.status = 404
                    return self._send(handler, 404, b"Not Found", "text/plain")
                return self._send(handler, 200, data, "video/mp4")
            if kind == "upload":
                name, content_type, data = _multipart_file(headers.get("content-type", ""), raw)
                file_id = f"file{next(self._ids):04d}"
                self.uploads[file_id] = (content_type, data)
                record.status = 201
                now = _now()
                return self._json(handler, 201, {
                    "id": file_id, "name": name, "content_type": content_type, "size": len(data), "etag": file_id,
                    "checksums": {}, "metadata": {}, "created_at": now, "expires_at": None,
                    "urls": {"get": f"{self.url}/files/{file_id}"}})  # fmt: skip
            if method == "GET" and parts[0] == "files" and len(parts) == 2 and parts[1] in self.uploads:
                content_type, data = self.uploads[parts[1]]
                return self._send(handler, 200, data, content_type)
        except Exception as exc:  # a bug in the fake: say so in the answer
            record.status = 500
            return self._problem(handler, 500, f"fake server error: {exc!r}")
        record.status = 404
        return self._problem(handler, 404, f"no route {method} {path}")

    def _create(self, model: str, version: str, input: dict[str, Any],
                outcome: Done | Failed | Filtered | Canceled) -> Prediction:  # fmt: skip
        number = next(self._ids)
        alphabet = string.ascii_lowercase + string.digits
        pid = "".join(alphabet[(number * 7919 + i * 104729) % 36] for i in range(20)) + f"{number:06d}"
        prediction = Prediction(pid, model, version or "dp-" + "0" * 32, input, outcome, _now())
        with self._lock:
            self.predictions[pid] = prediction
        return prediction

    def _advance(self, prediction: Prediction) -> None:
        with self._lock:
            prediction.polls += 1
            if self.held or prediction.polls < self.polls_needed:
                return
            if isinstance(prediction.outcome, Done) and prediction.output is None:
                self.files[prediction.id] = self._render(prediction)
                prediction.output = f"{self.url}/delivery/{prediction.id}/output.mp4"

    def _status(self, prediction: Prediction) -> str:
        if prediction.polls == 0:
            return "starting"
        if self.held or prediction.polls < self.polls_needed:
            return "processing"
        return {Done: "succeeded", Failed: "failed", Filtered: "failed", Canceled: "canceled"}[type(prediction.outcome)]

    def _view(self, prediction: Prediction) -> dict[str, Any]:
        """The prediction as Replicate answers it."""
        status = self._status(prediction)
        outcome = prediction.outcome
        error = outcome.error if status == "failed" and isinstance(outcome, Failed | Filtered) else None
        done = status in ("succeeded", "failed", "canceled")
        base = f"{self.url}/v1/predictions/{prediction.id}"
        return {
            "id": prediction.id, "model": prediction.model, "version": prediction.version,
            "input": _shown(prediction.input), "logs": "" if status == "starting" else "Generating video...\n",
            "output": prediction.output if status == "succeeded" else None, "data_removed": False,
            "error": error, "status": status, "source": "api", "created_at": prediction.created_at,
            "started_at": prediction.created_at if status != "starting" else None,
            "completed_at": _now() if done else None,
            "metrics": {"predict_time": 12.5} if status == "succeeded" else {},
            "urls": {"get": base, "cancel": f"{base}/cancel", "stream": f"{self.url}/stream/{prediction.id}",
                     "web": f"https://replicate.com/p/{prediction.id}"},
        }  # fmt: skip

    def _image(self, value: Any) -> Any:
        """The picture a data URI or an uploaded file's URL holds, else None."""
        from PIL import Image

        data = None
        if isinstance(value, str) and value.startswith("data:image/"):
            data = base64.b64decode(value.split(",", 1)[1])
        elif isinstance(value, str) and value.startswith(f"{self.url}/files/"):
            data = self.uploads.get(value.rsplit("/", 1)[1], ("", None))[1]
        return Image.open(io.BytesIO(data)).convert("RGB") if data else None

    def start_image(self, prediction: Prediction | str) -> Any:
        """The start image a prediction was sent (as an array), or None."""
        import numpy as np

        prediction = self.predictions[prediction] if isinstance(prediction, str) else prediction
        for name in ("start_image", "first_frame_image", "image"):
            picture = self._image(prediction.input.get(name))
            if picture is not None:
                return np.asarray(picture)
        return None

    def _render(self, prediction: Prediction) -> bytes:
        import numpy as np

        from storyflow import media

        input = prediction.input
        width, height = self.sizes.get(str(input.get("aspect_ratio") or "16:9"), self.sizes["16:9"])
        fps = int(input.get("frames_per_second") or self.fps)
        count = int(input.get("num_frames") or round(float(input.get("duration") or 5) * fps))
        first = self.start_image(prediction)
        if first is not None:
            width, height = (64, 36) if first.shape[1] >= first.shape[0] else (36, 64)
            first = media.fit_frame(first, width, height)
        seed = sum(prediction.id.encode()) % 256
        colour = np.array([seed, 255 - seed, (seed * 3) % 256], dtype=np.float32)
        xs = np.arange(width, dtype=np.float32)[None, :, None]
        frames = []
        strip = 0 if first is None else int(first[: height // 4].mean())  # a continuation goes on from its image
        for index in range(count):
            t = index / max(count - 1, 1)
            if first is None:
                frame = np.broadcast_to(colour * (0.4 + 0.6 * t), (height, width, 3)).copy()
                frame = np.where(np.abs(xs - t * (width - 1)) < max(2, width // 10), 255.0 - frame, frame)
            else:  # image to video: the picture moves on from the start image, as the real models' do
                frame = first.astype(np.float32) * (1 - 0.1 * t) + colour * 0.1 * t
            frame[: height // 4] = (strip + index * 7) % 256
            frames.append(first if index == 0 and first is not None else frame.astype(np.uint8))
        path = self._dir / f"{prediction.id}.mp4"
        media.write_video(path, frames, width, height, fps)
        return path.read_bytes()

    # ------------------------------------------------------------ writing answers

    @staticmethod
    def _problem(handler: BaseHTTPRequestHandler, status: int, detail: str = "",
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        titles = {401: "Unauthenticated", 403: "Forbidden", 404: "Not found", 422: "Input validation failed",
                  429: "Too many requests", 500: "Internal server error", 502: "Bad gateway",
                  503: "Service unavailable", 504: "Gateway timeout"}  # fmt: skip
        body = {"title": titles.get(status, "Error"), "detail": detail or f"fake {status}", "status": status}
        FakeReplicate._send(handler, status, json.dumps(body).encode(), "application/problem+json", headers)

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        FakeReplicate._send(handler, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:  # fmt: skip
        try:
            handler.send_response(status)
            handler.send_header("content-type", content_type)
            handler.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up
            pass


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _shown(input: dict[str, Any]) -> dict[str, Any]:
    """The input as the API echoes it (long data URIs shortened)."""
    return {k: (v[:40] + "..." if isinstance(v, str) and v.startswith("data:") else v) for k, v in input.items()}


def _multipart_file(content_type: str, raw: bytes) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of the "content" part of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "content":
            return part.get_filename() or "file", part.get_content_type(), part.get_payload(decode=True) or b""
    raise ValueError("no 'content' part in the upload")


@pytest.fixture
def fake_replicate():
    """A running FakeReplicate (predictions done on the first poll): script it, then point the backend at `.url`."""
    with FakeReplicate() as server:
        yield server
