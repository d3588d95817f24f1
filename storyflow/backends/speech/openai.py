"""The hosted narrator: OpenAI text to speech, or any server that speaks its /v1/audio/speech API.

`--speech-backend openai` asks api.openai.com (key in OPENAI_API_KEY) with
`model=gpt-4o-mini-tts` and `voice=alloy` (`--voice` sets the voice); `--speech-option
instructions="calm, warm storyteller"` says how to speak (models that take it);
`--speech-option base_url=...` (or OPENAI_BASE_URL) points it at an OpenAI-compatible TTS
server instead, which usually needs no key, so a placeholder is sent when none is set. Keys
come from the environment only, never from options or logs.

The API has no words-per-minute setting, only `speed` (1.0 the voice's own pace, 0.25 to
4.0), so a requested rate is mapped through the voice's declared natural rate
(`natural_wpm`): speed = rate / natural_wpm, as the vits narrator does.

Audio comes back as WAV (or raw 24 kHz 16-bit PCM with response_format=pcm) and is decoded
to float32 mono; a streamed WAV whose header leaves its length open is read to its end.
No word timings (subtitles then split lines by their length). Retries are the openai
client's own: timeouts, connection errors, 408/409/429 and 5xx, honouring Retry-After;
a refused key (401/403) is never retried.

Cost: each line's price goes on its Speech (`cost_usd`), and from there on the narration line
and into the catalog. On api.openai.com the list prices of PRICES apply, per model: tts-1 and
tts-1-hd bill per character of input ($15 and $30 per million), gpt-4o-mini-tts per token
($0.60 per million text tokens in, $12 per million audio tokens out), which OpenAI puts at
about $0.015 per minute of audio: storyflow prices it by the minute. `price_per_million_chars`
and `price_per_minute` (either or both) replace the table's price; another server (base_url)
bills nothing unless they are given, and a model the table does not know has no price.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from storyflow.backends.base import Speech, SpeechBackend
from storyflow.backends.openai_api import DEFAULT_HOST, EndpointOptions, OpenAIEndpoint
from storyflow.core.errors import BackendOptionError, GenerationError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SLOWEST, FASTEST = 0.25, 4.0  # the speeds the API takes
PCM_RATE = 24_000  # OpenAI's raw "pcm": 24 kHz, 16-bit little-endian, mono
VOICES = "alloy, ash, ballad, coral, echo, fable, nova, onyx, sage, shimmer, verse"  # OpenAI's, for messages


@dataclass(frozen=True)
class Price:
    """What OpenAI bills for speech: per million characters of input and/or per minute of audio (USD)."""

    per_million_chars: float = 0.0
    per_minute: float = 0.0

    def of(self, text: str, seconds: float) -> float:
        return round(len(text) * self.per_million_chars / 1e6 + seconds / 60 * self.per_minute, 9)


# OpenAI's list prices for text to speech; a user's price_per_million_chars / price_per_minute replace them.
PRICES: dict[str, Price] = {
    "tts-1": Price(per_million_chars=15.0),
    "tts-1-hd": Price(per_million_chars=30.0),
    "gpt-4o-mini-tts": Price(per_minute=0.015),  # billed per token; OpenAI's own estimate per minute of audio
}


class OpenAISpeechOptions(EndpointOptions):
    model: str = Field(default="gpt-4o-mini-tts", min_length=1, description="the TTS model the server knows "
                       "(gpt-4o-mini-tts, tts-1, tts-1-hd)")  # fmt: skip
    voice: str = Field(default="alloy", min_length=1, description=f"the voice ({VOICES} on OpenAI)")
    instructions: str = Field(default="", description="how to speak, e.g. 'calm, warm storyteller' (not for "
                              "tts-1 / tts-1-hd; empty: none sent)")  # fmt: skip
    speed: float = Field(default=1.0, ge=SLOWEST, le=FASTEST, description="the voice's own pace (1.0 as the "
                         "model speaks; 0.25 to 4)")  # fmt: skip
    natural_wpm: float = Field(default=150.0, ge=40.0, le=400.0, description="words per minute the voice speaks "
                               "at speed 1; maps requested rates onto speed")  # fmt: skip
    response_format: Literal["wav", "pcm"] = Field(default="wav", description="wav, or pcm (raw 24 kHz 16-bit)")
    price_per_million_chars: float | None = Field(default=None, ge=0, description="your price in US dollars per "
                                                  "million characters spoken (default on OpenAI: the model's list "
                                                  "price, tts-1 15, tts-1-hd 30)")  # fmt: skip
    price_per_minute: float | None = Field(default=None, ge=0, description="your price in US dollars per minute "
                                           "of audio (default on OpenAI: the model's list price, gpt-4o-mini-tts "
                                           "about 0.015)")  # fmt: skip

class OpenAISpeech(OpenAIEndpoint, SpeechBackend):
    name = "openai"
    version = "1"
    description = ("OpenAI text to speech or an OpenAI-compatible TTS server; key in $OPENAI_API_KEY; on OpenAI "
                   "billed per character (tts-1, tts-1-hd) or per minute (gpt-4o-mini-tts)")  # fmt: skip
    Options = OpenAISpeechOptions
    requires = ("openai",)
    install = 'pip install "storyflow[openai]"'
    operational = frozenset({"timeout", "max_retries", "base_url", "price_per_million_chars", "price_per_minute"})
    local_example = "http://localhost:8880/v1"
    fallback = "--speech-backend espeak"

    options: OpenAISpeechOptions

    def __init__(self, options: OpenAISpeechOptions | None = None) -> None:
        super().__init__(options)
        self.spent_usd = 0.0  # what the lines spoken by this backend cost (0 without a price)

    @property
    def model(self) -> str:
        return self.options.model

    @property
    def voice(self) -> str:
        return self.options.voice

    @property
    def rate(self) -> float:
        """Words per minute at the voice's own pace (declared: natural_wpm x speed)."""
        return self.options.natural_wpm * self.options.speed

    # ------------------------------------------------------------ speaking

    def speed_for(self, rate: float | None) -> float:
        """The API speed for `rate` words per minute (None: the voice's own), within what the API takes."""
        if rate is None:
            return self.options.speed
        if rate <= 0:
            raise BackendOptionError(f"openai speech cannot speak at {rate:g} words per minute",
                                     fix="use a positive rate (speed= sets the voice's own pace)")  # fmt: skip
        speed = rate / self.options.natural_wpm
        clamped = min(max(speed, SLOWEST), FASTEST)
        if clamped != speed:
            log.warning("openai speech: %g words per minute needs speed %.2f; the API takes %g to %g, so %g is sent",
                        rate, speed, SLOWEST, FASTEST, clamped)  # fmt: skip
        return round(clamped, 4)

    def speak(self, text: str, *, rate: float | None = None) -> Speech:
        """Speak one line: mono float32 at the audio's own sample rate (OpenAI: 24 kHz)."""
        import openai

        line = " ".join((text or "").split())
        if not line:
            raise GenerationError(
                "openai speech was asked to speak an empty narration line",
                fix="write the shot's narration in words, or leave the shot without narration",
            )
        options = self.options
        parameters: dict[str, Any] = {"model": options.model, "voice": options.voice, "input": line,
                                      "response_format": options.response_format, "speed": self.speed_for(rate)}
        if options.instructions:
            parameters["instructions"] = options.instructions
        try:
            raw = self.client().audio.speech.with_raw_response.create(**parameters)
            data = raw.content
        except openai.OpenAIError as exc:
            raise self.api_error(exc) from None
        try:
            samples, sample_rate = _decode(data, options.response_format)
        except ValueError as exc:
            raise GenerationError(
                f"openai model {self.model} at {self.host} answered with audio storyflow cannot read: {exc}",
                fix="check that base_url points at an OpenAI-compatible TTS server that can answer "
                "response_format=wav (or try --speech-option response_format=pcm)",
            ) from None
        if not samples.size:
            raise GenerationError(f"openai model {self.model} at {self.host} answered with no sound for "
                                  f"{line[:60]!r}", fix="try again, or check the server's logs")  # fmt: skip
        cost = self.cost_usd(line, samples.size / sample_rate)
        self.spent_usd += cost or 0.0
        log.info("openai speech: %d characters -> %.2f s from %s at %s (%d retries%s)", len(line),
                 samples.size / sample_rate, self.model, self.host, raw.retries_taken,
                 f", ${cost:.4f}" if cost is not None else "")  # fmt: skip
        return Speech(samples=samples, sample_rate=sample_rate, cost_usd=cost)

    @property
    def price(self) -> Price | None:
        """The price of speech here: the options' when given, else OpenAI's list price (on OpenAI only)."""
        given = self.options.price_per_million_chars, self.options.price_per_minute
        if given != (None, None):
            return Price(per_million_chars=given[0] or 0.0, per_minute=given[1] or 0.0)
        return PRICES.get(self.model) if self.host == DEFAULT_HOST else None

    def cost_usd(self, text: str, seconds: float) -> float | None:
        """What a line of `text`, `seconds` long, costs (characters and/or minutes); None without a price."""
        price = self.price
        return price.of(text, seconds) if price is not None else None

    @property
    def refused_fix(self) -> str:
        return (f"check the model (--speech-option model=...), the voice (--voice; OpenAI has {VOICES}), "
                "instructions and base_url against what the server supports")


# ---------------------------------------------------------------- audio


def _decode(data: bytes, response_format: str) -> tuple[np.ndarray, int]:
    """(float32 mono samples in [-1, 1], sample rate) from a WAV file or raw 24 kHz 16-bit PCM."""
    if response_format == "pcm" and not data.startswith(b"RIFF"):
        return _samples(data, 1, 1, 16), PCM_RATE
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"it is not a WAV file (it starts with {data[:12]!r})")
    at, fmt = 12, None
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if chunk == b"fmt ":
            if size < 16:
                raise ValueError("its fmt chunk is too short")
            tag, channels, sample_rate, _, _, bits = struct.unpack_from("<HHIIHH", data, at + 8)
            if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real format opens the subformat GUID
                tag = struct.unpack_from("<H", data, at + 32)[0]
            fmt = (tag, channels, sample_rate, bits)
        elif chunk == b"data":
            if fmt is None:
                raise ValueError("its data comes before its fmt chunk")
            # a streamed WAV leaves the length open (0 or 0xFFFFFFFF): the data runs to the end
            end = len(data) if size in (0, 0xFFFFFFFF) else at + 8 + size
            return _samples(data[at + 8 : end], *fmt[:2], fmt[3]), fmt[2]
        at += 8 + size + (size & 1)
    raise ValueError("it has no audio data")


def _samples(pcm: bytes, tag: int, channels: int, bits: int) -> np.ndarray:
    """Interleaved integer or float PCM -> float32 mono in [-1, 1] (channels averaged)."""
    import numpy as np

    kinds = {(1, 8): ("u1", 128.0, 128.0), (1, 16): ("<i2", 0.0, 32768.0), (1, 32): ("<i4", 0.0, 2.0**31),
             (3, 32): ("<f4", 0.0, 1.0), (3, 64): ("<f8", 0.0, 1.0)}  # fmt: skip
    if channels < 1:
        raise ValueError("it has no channels")
    width = channels * bits // 8
    pcm = pcm[: len(pcm) - len(pcm) % width] if width else b""
    if (tag, bits) == (1, 24):  # three bytes each: widened to int32 with the sign in the top byte
        raw = np.frombuffer(pcm, dtype="u1").reshape(-1, 3)
        values = (raw[:, 0].astype(np.int32) << 8 | raw[:, 1].astype(np.int32) << 16 | raw[:, 2].astype(np.int32) << 24)
        samples = values.astype(np.float64) / 2.0**31
    elif (tag, bits) in kinds:
        dtype, offset, scale = kinds[(tag, bits)]
        samples = (np.frombuffer(pcm, dtype=dtype).astype(np.float64) - offset) / scale
    else:
        raise ValueError(f"its sample format (format tag {tag}, {bits} bits) is not PCM or float")
    mono = samples.reshape(-1, channels).mean(axis=1)
    return np.clip(np.nan_to_num(mono), -1.0, 1.0).astype(np.float32)
