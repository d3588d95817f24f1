"""A real OpenAI-compatible HTTP server for tests: scripted replies, every request recorded.

The openai package speaks through httpx2, so only a real server sees its calls. This one
listens on 127.0.0.1 (a free port) in a thread and answers POST /v1/chat/completions
(non-streaming) with the body OpenAI sends: id, object, created, model, choices[0].message,
finish_reason, usage. Each request takes the next scripted reply; when the script runs out,
`respond(request_json)` answers (the way to plan whole stories), else `default`.

    with FakeOpenAI([Reply(status=429, headers={"retry-after-ms": "50"}), '{"prompt": "a gull"}']) as server:
        backend = load_backend("llm", "openai", {"base_url": server.url, "model": "fake"})
        ...
        assert len(server.requests) == 2 and server.requests[0]["model"] == "fake"

A scripted reply is a `Reply`, or shorthand: a str is the assistant's text, a dict is sent
as its JSON text. `FakeOpenAI.error(status, message)` builds an error reply with OpenAI's
error body. As a fixture: `pytest_plugins = ["tests.fake_openai"]`, then ask for `fake_openai`.

It also answers POST /v1/audio/speech (text to speech), recorded in `requests` like chat
requests: a scripted error reply (or a `Reply` whose `body` is bytes) answers as it is,
else `speech(request_json)` builds the audio: bytes, sent as audio/wav (audio/pcm when
the request asked for response_format "pcm"). The default speaks a quiet tone of
`SECONDS_PER_WORD` per word at the requested speed, as WAV or raw PCM at 24 kHz
(`wav_bytes`, `tone`).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import wave
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

CHAT_PATH = "/v1/chat/completions"
SPEECH_PATH = "/v1/audio/speech"
SPEECH_RATE = 24_000  # OpenAI's TTS sample rate (its raw "pcm" format is 24 kHz 16-bit mono)
SECONDS_PER_WORD = 0.4  # the default fake voice: 150 words a minute at speed 1


@dataclass
class Reply:
    """One scripted answer.

    `content` is the assistant's text (a dict or list is sent as JSON text). `status` other
    than 200 sends `body` (an error, see FakeOpenAI.error) instead of a completion. `body`
    with status 200 replaces the whole completion (a str is sent raw, e.g. broken JSON).
    `delay` (seconds) is waited before answering: longer than the client's timeout, it
    provokes one. `usage` overrides the token counts (None: counted from the words; False:
    no usage at all).
    """

    content: Any = ""
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    finish_reason: str = "stop"
    usage: dict[str, int] | bool | None = None


Scripted = Reply | str | dict
Respond = Callable[[dict[str, Any]], Scripted]
Speak = Callable[[dict[str, Any]], bytes]


def tone(seconds: float, sample_rate: int = SPEECH_RATE, channels: int = 1) -> bytes:
    """`seconds` of a quiet 220 Hz tone as 16-bit little-endian PCM frames (`channels` identical channels)."""
    frames = round(seconds * sample_rate)
    samples = (round(8000 * math.sin(2 * math.pi * 220 * i / sample_rate)) for i in range(frames))
    return b"".join(value.to_bytes(2, "little", signed=True) * channels for value in samples)


def wav_bytes(pcm: bytes, sample_rate: int = SPEECH_RATE, channels: int = 1) -> bytes:
    """16-bit PCM frames wrapped as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


def speak_tone(request: dict[str, Any]) -> bytes:
    """The default fake voice: SECONDS_PER_WORD per word of `input`, divided by `speed`; WAV or raw PCM."""
    words = max(len(str(request.get("input", "")).split()), 1)
    pcm = tone(words * SECONDS_PER_WORD / float(request.get("speed") or 1.0))
    return pcm if request.get("response_format") == "pcm" else wav_bytes(pcm)


def as_reply(item: Scripted) -> Reply:
    return item if isinstance(item, Reply) else Reply(content=item)


class FakeOpenAI:
    """The server: `url` (ends in /v1), `requests` (every JSON body received), `headers` (theirs, names lowercased)."""

    def __init__(self, replies: Iterable[Scripted] = (), *, respond: Respond | None = None,
                 default: Scripted | None = None, speech: Speak = speak_tone) -> None:  # fmt: skip
        self.script: deque[Scripted] = deque(replies)
        self.respond = respond
        self.default = default
        self.speech = speech
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ scripting

    def add(self, *replies: Scripted) -> FakeOpenAI:
        """Queue more replies, answered in order."""
        with self._lock:
            self.script.extend(replies)
        return self

    @staticmethod
    def error(
        status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
        param: str | None = None, headers: dict[str, str] | None = None, delay: float = 0.0,
    ) -> Reply:  # fmt: skip
        """An error reply with the body OpenAI sends: {"error": {"message", "type", "param", "code"}}."""
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return Reply(status=status, body=body, headers=dict(headers or {}), delay=delay)

    @property
    def messages(self) -> list[list[dict[str, Any]]]:
        """The messages of every request, in order."""
        return [request.get("messages", []) for request in self.requests]

    # ------------------------------------------------------------ serving

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                path = self.path.rstrip("/")
                if path not in (CHAT_PATH, SPEECH_PATH):
                    return self._send(FakeOpenAI.error(404, f"no route {self.path}"), {})
                try:
                    request = json.loads(raw or b"{}")
                except ValueError:
                    return self._send(FakeOpenAI.error(400, "the body is not JSON"), {})
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = fake._next(request, headers) if path == CHAT_PATH else fake._next_speech(request, headers)
                if reply.delay:
                    time.sleep(reply.delay)
                self._send(reply, request)

            def _send(self, reply: Reply, request: dict[str, Any]) -> None:
                body = fake._body(reply, request)
                audio = isinstance(body, bytes)  # speech: the audio file itself
                data = body if audio else body.encode() if isinstance(body, str) else json.dumps(body).encode()
                kind = f"audio/{'pcm' if request.get('response_format') == 'pcm' else 'wav'}"
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", kind if audio else "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a provoked timeout)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ answering

    def _next(self, request: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
            item = self.script.popleft() if self.script else None
        if item is None and self.respond is not None:
            item = self.respond(request)
        if item is None:
            item = self.default
        if item is None:
            return FakeOpenAI.error(418, f"fake server: no scripted reply left for request {len(self.requests)}")
        return as_reply(item)

    def _next_speech(self, request: dict[str, Any], headers: dict[str, str]) -> Reply:
        """A speech request's reply: the next scripted one if any (an error, or audio bytes as its `body`),
        with the audio `speech(request)` builds when it has no body (its delay and headers kept)."""
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
            item = self.script.popleft() if self.script else None
        reply = as_reply(item) if item is not None else Reply()
        if reply.status == 200 and reply.body is None:
            reply = Reply(status=200, body=self.speech(request), headers=reply.headers, delay=reply.delay)
        return reply

    def _body(self, reply: Reply, request: dict[str, Any]) -> Any:
        if reply.status != 200:
            return reply.body if reply.body is not None else {"error": {"message": f"HTTP {reply.status}"}}
        if reply.body is not None:
            return reply.body
        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        body: dict[str, Any] = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake-model"),
            "system_fingerprint": "fp_fake",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }],
        }  # fmt: skip
        if reply.usage is not False:
            usage = reply.usage if isinstance(reply.usage, dict) else None
            if usage is None:
                prompt = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
                usage = {"prompt_tokens": prompt, "completion_tokens": len(content.split())}
            body["usage"] = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
        return body


@pytest.fixture
def fake_openai():
    """A running FakeOpenAI with an empty script: `fake_openai.add(...)`, then point a client at `.url`."""
    with FakeOpenAI() as server:
        yield server
