"""A real Gemini Developer API server for Veo tests: long-running video jobs, scripted faults, every request recorded.

google-genai 2.x speaks through httpx, so only a real server sees its calls. This one listens
on 127.0.0.1 (a free port) in a thread and answers the three calls Veo needs, with the JSON
bodies the SDK parses (google/genai/models.py `_GenerateVideosOperation_from_mldev`):

    POST /v1beta/models/{model}:predictLongRunning   -> {"name": "models/{model}/operations/{id}"}
    GET  /v1beta/models/{model}/operations/{id}      -> {"name", "done": false, "metadata"}, then done with
         "response": {"generateVideoResponse": {"generatedSamples": [{"video": {"uri": ...}}]}},
         or "error": {"code", "message", "status"} (a failed job), or a response with no samples and
         "raiMediaFilteredCount"/"raiMediaFilteredReasons" (a filtered one)
    GET  /v1beta/files/{id}:download?alt=media       -> the mp4 (video/mp4)

Video URIs look like the service's (https://generativelanguage.googleapis.com/v1beta/files/<id>:download
?alt=media): the SDK keeps only the file id and downloads through its own base_url, i.e. here.
The key must come in the `x-goog-api-key` header (or `?key=`); `key=` pins the one accepted
(a wrong one is a 403 PERMISSION_DENIED, none a 401 UNAUTHENTICATED, with Google's error body).

Videos are real H.264 mp4s made with storyflow.media.VideoWriter: `sizes` per aspect ratio
(default 64x36 and 36x64), `fps` (24), `durationSeconds` (default 8) x fps frames. An
image-to-video job starts on the sent image; a job with `instances[0].video` whose URI is one of
this server's files is an extension: the input video followed by `extension_seconds` (7) new
seconds, one video, as Veo 3.1 answers. Each frame is distinct (a moving bar over a colour
from the prompt and the job), so the last frames of two jobs never look alike.

Jobs finish after `polls` GETs (1: the first poll says done); `hold()` keeps every job running
until `release()` (a kill while a job is in flight). `outcomes` scripts how the next created
jobs end: Done() (default), Failed(code, message), Filtered(reasons). `fault(kind, Fault(...))`
queues HTTP faults for "create", "poll" or "download": a status with Retry-After, a delay
before answering (status None: then answer normally), or a dropped connection;
`fault_rate` adds random 503/429/dropped faults to any call (seeded). A faulted create never
creates a job. `add_operation()` makes a job as if an earlier run had created it.

    with FakeGemini(polls=2) as server:
        server.fault("create", Fault(429, retry_after=0.2))
        backend = load_backend("video", "veo", {"base_url": server.url, "poll_seconds": 0.05})
        ...
        assert len(server.creates) == 1 and len(server.polls) == 2

As a fixture: `pytest_plugins = ["tests.fake_gemini"]`, then ask for `fake_gemini`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

PUBLIC_FILES = "https://generativelanguage.googleapis.com/v1beta/files/"
KINDS = ("create", "poll", "download")


@dataclass
class Fault:
    """One scripted HTTP fault: `status` (None: no error, only the delay), `retry_after` seconds
    (the Retry-After header), `delay` seconds before answering, `drop` the connection unanswered."""

    status: int | None = 503
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    message: str = ""


@dataclass
class Done:
    """The job succeeds (the default)."""


@dataclass
class Failed:
    """The job ends `done` with `error` set (google.rpc.Status)."""

    code: int = 13
    message: str = "Internal error while generating the video."
    status: str = "INTERNAL"


@dataclass
class Filtered:
    """The job ends `done` with no videos: the responsible-AI filters took them."""

    reasons: tuple[str, ...] = ("The video was filtered because it may violate our usage guidelines.",)


@dataclass
class Request:
    """One request as received: kind (create, poll, download or other), method, path, query, headers, body."""

    kind: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 200  # what it was answered with (0: dropped)
    at: float = field(default_factory=time.monotonic)


@dataclass
class Operation:
    name: str
    model: str
    instance: dict[str, Any]
    parameters: dict[str, Any]
    outcome: Done | Failed | Filtered
    polls: int = 0
    file_ids: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None  # when a poll first answered it done


class FakeGemini:
    """The server: `url` (the base_url to give the SDK), `requests`, `operations`, `files` (id -> mp4 bytes)."""

    def __init__(self, *, polls: int = 1, key: str | None = None, fps: int = 24,
                 sizes: dict[str, tuple[int, int]] | None = None, extension_seconds: int = 7,
                 fault_rate: float = 0.0, seed: int = 0) -> None:  # fmt: skip
        self.polls_needed = polls
        self.key = key
        self.fps = fps
        self.sizes = sizes or {"16:9": (64, 36), "9:16": (36, 64)}
        self.extension_seconds = extension_seconds
        self.fault_rate = fault_rate
        self.random = random.Random(seed)
        self.requests: list[Request] = []
        self.operations: dict[str, Operation] = {}
        self.files: dict[str, bytes] = {}
        self.file_frames: dict[str, int] = {}
        self.outcomes: deque[Done | Failed | Filtered] = deque()
        self.faults: dict[str, deque[Fault]] = {kind: deque() for kind in KINDS}
        self.held = False
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._dir: Path | None = None

    # ------------------------------------------------------------ scripting

    def fault(self, kind: str, *faults: Fault) -> FakeGemini:
        """Queue faults for the next calls of `kind` (create, poll, download), in order."""
        assert kind in KINDS, kind
        with self._lock:
            self.faults[kind].extend(faults)
        return self

    def outcome(self, *outcomes: Done | Failed | Filtered) -> FakeGemini:
        """How the next created jobs end, in order (then Done)."""
        with self._lock:
            self.outcomes.extend(outcomes)
        return self

    def hold(self) -> None:
        """Keep every job running (done: false) until release()."""
        self.held = True

    def release(self) -> None:
        self.held = False

    def add_operation(self, model: str = "veo-3.1-generate-preview", prompt: str = "an earlier run's job", *,
                      parameters: dict[str, Any] | None = None, outcome: Done | Failed | Filtered | None = None) -> str:
        """A job as if an earlier run had created it (and paid for it); returns its name."""
        return self._create(model, {"prompt": prompt}, parameters or {}, outcome or Done()).name

    def of_kind(self, kind: str, *, answered: bool = True) -> list[Request]:
        """The requests of a kind; `answered`: only those answered 200 (not the faulted ones)."""
        with self._lock:
            return [r for r in self.requests if r.kind == kind and (r.status == 200 or not answered)]

    def most_in_flight(self) -> int:
        """The most jobs that were in flight at once: created, and not yet answered done to a poll."""
        with self._lock:
            events = sorted([(op.created, 1) for op in self.operations.values()]
                            + [(op.finished, -1) for op in self.operations.values() if op.finished is not None])  # fmt: skip
        most = running = 0
        for _, step in events:
            running += step
            most = max(most, running)
        return most

    @property
    def creates(self) -> list[Request]:
        """Create requests that created a job (paid ones)."""
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

    def start(self) -> FakeGemini:
        fake = self
        self._dir = Path(tempfile.mkdtemp(prefix="fake-gemini-"))

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

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ answering

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        path, query = parts.path, parse_qs(parts.query)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        raw = handler.rfile.read(int(headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        if method == "POST" and path.startswith("/v1beta/models/") and path.endswith(":predictLongRunning"):
            kind = "create"
        elif method == "GET" and "/operations/" in path:
            kind = "poll"
        elif method == "GET" and path.startswith("/v1beta/files/") and path.endswith(":download"):
            kind = "download"
        else:
            kind = "other"
        record = Request(kind, method, path, query, headers, body)
        with self._lock:
            self.requests.append(record)
            fault = self.faults[kind].popleft() if kind in KINDS and self.faults[kind] else None
            if fault is None and kind in KINDS and self.fault_rate and self.random.random() < self.fault_rate:
                fault = self.random.choice([Fault(503), Fault(429, retry_after=0.01), Fault(500), Fault(drop=True)])
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                record.status = 0
                handler.close_connection = True
                return
            if fault.status is not None:
                headers_out = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                record.status = fault.status
                return self._json(handler, fault.status, _error(fault.status, fault.message), headers_out)
        key = headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
        if not key:
            record.status = 401
            return self._json(handler, 401, _error(401, "Method doesn't allow unregistered callers. Please use "
                                                   "API Key or other form of API consumer identity."))  # fmt: skip
        if self.key is not None and key != self.key:
            record.status = 403
            return self._json(handler, 403, _error(403, "API key not valid. Please pass a valid API key."))
        try:
            if kind == "create":
                model = path[len("/v1beta/models/"):-len(":predictLongRunning")]
                instance = ((body or {}).get("instances") or [{}])[0]
                with self._lock:
                    outcome = self.outcomes.popleft() if self.outcomes else Done()
                operation = self._create(model, instance, (body or {}).get("parameters") or {}, outcome)
                return self._json(handler, 200, {"name": operation.name})
            if kind == "poll":
                name = path[len("/v1beta/"):]
                with self._lock:
                    operation = self.operations.get(name)
                if operation is None:
                    record.status = 404
                    return self._json(handler, 404, _error(404, f"Operation {name} not found."))
                return self._json(handler, 200, self._poll(operation))
            if kind == "download":
                file_id = path[len("/v1beta/files/"):-len(":download")]
                data = self.files.get(file_id)
                if data is None:
                    record.status = 404
                    return self._json(handler, 404, _error(404, f"File {file_id} not found."))
                return self._send(handler, 200, data, "video/mp4")
        except Exception as exc:  # a bug in the fake: say so in the answer
            record.status = 500
            return self._json(handler, 500, _error(500, f"fake server error: {exc!r}"))
        record.status = 404
        return self._json(handler, 404, _error(404, f"no route {method} {path}"))

    def _create(self, model: str, instance: dict[str, Any], parameters: dict[str, Any],
                outcome: Done | Failed | Filtered) -> Operation:  # fmt: skip
        job = f"{next(self._ids):04d}{hashlib.sha256(repr(instance).encode()).hexdigest()[:8]}"
        operation = Operation(f"models/{model}/operations/{job}", model, instance, parameters, outcome)
        with self._lock:
            self.operations[operation.name] = operation
        return operation

    def _poll(self, operation: Operation) -> dict[str, Any]:
        with self._lock:
            operation.polls += 1
            running = self.held or operation.polls < self.polls_needed
            if not running and operation.finished is None:
                operation.finished = time.monotonic()
        answer: dict[str, Any] = {"name": operation.name}
        if running:
            return answer | {"done": False, "metadata": {"@type": "type.googleapis.com/google.ai.generativelanguage"
                                                          ".v1beta.PredictLongRunningMetadata"}}  # fmt: skip
        outcome = operation.outcome
        if isinstance(outcome, Failed):
            return answer | {"done": True, "error": {"code": outcome.code, "message": outcome.message,
                                                      "status": outcome.status}}  # fmt: skip
        response: dict[str, Any] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                                    "PredictLongRunningResponse"}  # fmt: skip
        if isinstance(outcome, Filtered):
            response["generateVideoResponse"] = {"raiMediaFilteredCount": 1,
                                                 "raiMediaFilteredReasons": list(outcome.reasons)}  # fmt: skip
            return answer | {"done": True, "response": response}
        with self._lock:
            if not operation.file_ids:
                count = int(operation.parameters.get("sampleCount") or 1)
                operation.file_ids = [self._render(operation, n) for n in range(count)]
        samples = [{"video": {"uri": f"{PUBLIC_FILES}{fid}:download?alt=media"}} for fid in operation.file_ids]
        response["generateVideoResponse"] = {"generatedSamples": samples}
        return answer | {"done": True, "response": response}

    def _render(self, operation: Operation, sample: int) -> str:
        """Make the job's mp4; returns its file id."""
        import numpy as np

        from storyflow import media

        width, height = self.sizes.get(str(operation.parameters.get("aspectRatio") or "16:9"), self.sizes["16:9"])
        seconds = int(operation.parameters.get("durationSeconds") or 8)
        frames: list[np.ndarray] = []
        source = (operation.instance.get("video") or {}).get("uri") or ""
        if source:  # an extension: the input video, then new seconds
            source_id = source.split("files/")[-1].split(":")[0]
            if source_id not in self.files:
                raise ValueError(f"extension of unknown video {source!r}")
            path = self._dir / f"{source_id}.mp4"
            frames = [frame for frame in media.read_frames(path)]
            seconds = self.extension_seconds
        digest = hashlib.sha256(f"{operation.instance.get('prompt')}|{operation.name}|{sample}".encode()).digest()
        colour = np.array(list(digest[:3]), dtype=np.float32)
        first = None
        image = operation.instance.get("image")
        if image and image.get("bytesBase64Encoded"):
            import io

            from PIL import Image

            picture = Image.open(io.BytesIO(base64.b64decode(image["bytesBase64Encoded"]))).convert("RGB")
            first = media.fit_frame(np.asarray(picture), width, height)
        xs = np.arange(width, dtype=np.float32)[None, :, None]
        new = seconds * self.fps
        for index in range(new):
            t = index / max(new - 1, 1)
            frame = np.broadcast_to(colour * (0.4 + 0.6 * t), (height, width, 3)).copy()
            bar = np.abs(xs - t * (width - 1)) < max(2, width // 10)
            frame = np.where(bar, 255.0 - frame, frame)
            frame[: height // 4, :, :] = (index * 7) % 256  # a strip that differs frame to frame
            if first is not None and index == 0:
                frame = first.astype(np.float32)
            frames.append(frame.astype(np.uint8))
        file_id = hashlib.sha256(f"{operation.name}/{sample}".encode()).hexdigest()[:12]
        path = self._dir / f"{file_id}.mp4"
        media.write_video(path, frames, width, height, self.fps)
        self.files[file_id] = path.read_bytes()
        self.file_frames[file_id] = len(frames)
        return file_id

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        FakeGemini._send(handler, status, json.dumps(body).encode(), "application/json", headers)

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
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a provoked timeout)
            pass


_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}  # fmt: skip


def _error(status: int, message: str = "") -> dict[str, Any]:
    """Google's error body: {"error": {"code", "message", "status"}}."""
    name = _STATUS.get(status, "UNKNOWN")
    return {"error": {"code": status, "message": message or f"fake {name.lower()}", "status": name}}


@pytest.fixture
def fake_gemini():
    """A running FakeGemini (jobs done on the first poll): script it, then point the backend at `.url`."""
    with FakeGemini() as server:
        yield server
