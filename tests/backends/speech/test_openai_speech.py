"""--speech-backend openai: the real openai client, through the backend, against a real local server.

What a user would notice: the line's audio, what reached the server (model, voice,
instructions, text, speed), how a rate limit is waited out, and the error text (which
names the model, the host and the fix, and never the key).
"""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from storyflow.backends.registry import load_backend
from storyflow.core.errors import BackendOptionError, BackendUnavailableError, GenerationError, TransientError
from tests.fake_openai import SECONDS_PER_WORD, SPEECH_RATE, FakeOpenAI, Reply, tone, wav_bytes

KEY = "sk-test-do-not-leak-0123456789"
LINE = "The gull glides over the harbour at dawn."  # 8 words


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeOpenAI() as fake:
        yield fake


def narrator(server: FakeOpenAI, **options):
    """As the CLI builds it: --speech-backend openai --speech-option base_url=... (--voice gives voice=)."""
    return load_backend("speech", "openai", {"base_url": server.url, "max_retries": 2} | options)


def host(server: FakeOpenAI) -> str:
    return server.url.split("//")[1].removesuffix("/v1")


def test_a_line_is_spoken_as_the_server_sent_it(server):
    served = tone(1.25, sample_rate=22_050)
    server.speech = lambda request: wav_bytes(served, sample_rate=22_050)
    speech = narrator(server, voice="nova", instructions="calm, warm storyteller")
    speech.check_available()
    spoken = speech.speak(f"  {LINE}\n")
    assert spoken.samples.dtype == np.float32 and spoken.samples.ndim == 1
    assert spoken.sample_rate == 22_050 and len(spoken.samples) == len(served) // 2
    expected = np.frombuffer(served, dtype="<i2") / 32768.0
    assert np.allclose(spoken.samples, expected, atol=1e-6) and np.abs(spoken.samples).max() <= 1.0
    assert spoken.words == ()  # no word timings: subtitles split the line by length
    [request] = server.requests
    assert request == {"model": "gpt-4o-mini-tts", "voice": "nova", "instructions": "calm, warm storyteller",
                       "input": LINE, "response_format": "wav", "speed": 1.0}  # fmt: skip
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    # what the catalog records, and what keys its cache (not the operational options)
    assert (speech.voice, speech.model_ref, speech.rate) == ("nova", "gpt-4o-mini-tts", 150.0)
    identity = speech.identity()
    assert identity["model"] == "gpt-4o-mini-tts" and identity["options"]["voice"] == "nova"
    assert not {"base_url", "timeout", "max_retries", "price_per_minute"} & set(identity["options"])


def test_a_stereo_or_streamed_wav_and_raw_pcm_are_read_as_mono(server):
    stereo = wav_bytes(tone(0.5, channels=2), channels=2)
    streamed = stereo[:40] + struct.pack("<I", 0xFFFFFFFF) + stereo[44:]  # a header that leaves the length open
    server.speech = lambda request: tone(0.75) if request["response_format"] == "pcm" else streamed
    wav = narrator(server).speak(LINE)
    assert (wav.sample_rate, len(wav.samples)) == (SPEECH_RATE, SPEECH_RATE // 2)
    pcm = narrator(server, response_format="pcm").speak(LINE)
    assert (pcm.sample_rate, len(pcm.samples)) == (24_000, 18_000)
    assert server.requests[1]["response_format"] == "pcm"


def test_a_faster_rate_sends_a_higher_speed_and_the_line_is_shorter(server):
    speech = narrator(server, natural_wpm=150)
    plain = speech.speak(LINE)
    paced = speech.speak(LINE, rate=speech.rate * 1.3)  # what the narration stage's "pace" fit asks for
    assert [request["speed"] for request in server.requests] == [1.0, 1.3]
    assert plain.seconds == pytest.approx(8 * SECONDS_PER_WORD) and paced.seconds < 0.8 * plain.seconds
    narrator(server).speak(LINE, rate=2000)  # beyond what the API takes: its fastest
    assert server.requests[-1]["speed"] == 4.0
    slow = narrator(server, speed=0.8, natural_wpm=160)
    assert slow.rate == 128.0
    slow.speak(LINE)
    assert server.requests[-1]["speed"] == 0.8


def test_no_instructions_are_sent_when_none_are_given(server):
    narrator(server, model="tts-1").speak(LINE)
    assert "instructions" not in server.requests[0] and server.requests[0]["model"] == "tts-1"


def test_a_refused_key_is_not_retried_names_openai_api_key_and_never_shows_the_key(server):
    server.add(FakeOpenAI.error(401, f"Incorrect API key provided: {KEY}.", code="invalid_api_key"))
    with pytest.raises(BackendUnavailableError) as caught:
        narrator(server).speak(LINE)
    assert len(server.requests) == 1
    assert f"{host(server)} refused the API key (HTTP 401)" in caught.value.message
    assert "OPENAI_API_KEY" in caught.value.fix
    assert KEY not in str(caught.value)


def test_a_rate_limit_is_waited_out_as_long_as_retry_after_says(server):
    server.add(FakeOpenAI.error(429, "Rate limit reached", type="requests", headers={"retry-after": "1"}))
    started = time.monotonic()
    spoken = narrator(server).speak(LINE)
    assert time.monotonic() - started >= 1.0  # the client's own backoff alone would wait at most 0.5 s
    assert len(server.requests) == 2 and spoken.seconds == pytest.approx(8 * SECONDS_PER_WORD)


def test_server_errors_that_outlast_the_retries_are_transient_and_name_model_host_and_status(server):
    server.add(*[FakeOpenAI.error(500, "The server had an error", type="server_error",
                                  headers={"retry-after-ms": "20"})] * 2)  # fmt: skip
    with pytest.raises(TransientError) as caught:
        narrator(server, max_retries=1).speak(LINE)
    assert len(server.requests) == 2
    assert f"openai model gpt-4o-mini-tts at {host(server)} failed with HTTP 500" in caught.value.message
    assert "The server had an error" in caught.value.message and caught.value.fix


def test_a_refused_request_says_what_the_server_said(server):
    server.add(FakeOpenAI.error(400, f"Invalid voice 'gull' (key {KEY})", param="voice"))
    with pytest.raises(GenerationError) as caught:
        narrator(server, voice="gull").speak(LINE)
    assert not isinstance(caught.value, TransientError) and len(server.requests) == 1
    assert "refused the request (HTTP 400): Invalid voice 'gull'" in caught.value.message
    assert KEY not in str(caught.value) and "--voice" in caught.value.fix


def test_audio_that_is_not_wav_is_an_error_that_says_so(server):
    server.add(Reply(status=200, body=b"ID3\x04not a wav"))
    with pytest.raises(GenerationError) as caught:
        narrator(server).speak(LINE)
    assert "not a WAV file" in caught.value.message


def test_without_a_key_or_a_server_it_refuses_to_start(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendUnavailableError) as caught:
        load_backend("speech", "openai").check_available()
    assert "OPENAI_API_KEY" in caught.value.message and "OPENAI_API_KEY" in caught.value.fix


def test_a_local_server_needs_no_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    speech = narrator(server)
    speech.check_available()
    speech.speak(LINE)
    assert server.headers[0]["authorization"] == "Bearer not-needed"


def test_each_line_reports_what_it_cost_at_the_prices_given(server):
    speech = narrator(server, price_per_million_chars=15.0, price_per_minute=0.6)
    spoken = speech.speak(LINE)
    cost = len(LINE) * 15.0 / 1e6 + 8 * SECONDS_PER_WORD / 60 * 0.6
    assert spoken.cost_usd == pytest.approx(cost) and speech.spent_usd == pytest.approx(cost)
    assert narrator(server, price_per_minute=0.015).speak(LINE).cost_usd == pytest.approx(3.2 / 60 * 0.015)
    # a server of one's own (base_url) bills nothing unless a price is given
    assert narrator(server, model="tts-1").speak(LINE).cost_usd is None


@pytest.mark.parametrize(("model", "cost"), [
    ("tts-1", len(LINE) * 15.0 / 1e6),  # per character
    ("tts-1-hd", len(LINE) * 30.0 / 1e6),
    ("gpt-4o-mini-tts", 3.2 / 60 * 0.015),  # per token, about $0.015 a minute of audio
    ("some-new-tts", None),  # a model the table does not know: no price, rather than a wrong one
])  # fmt: skip
def test_on_openai_a_line_costs_the_models_list_price_unless_overridden(monkeypatch, model, cost):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    speech = load_backend("speech", "openai", {"model": model})
    assert speech.host == "api.openai.com"
    assert speech.cost_usd(LINE, 3.2) == (pytest.approx(cost) if cost is not None else None)
    mine = load_backend("speech", "openai", {"model": model, "price_per_minute": 0.3})
    assert mine.cost_usd(LINE, 3.2) == pytest.approx(3.2 / 60 * 0.3)  # the user's price replaces the table's


@pytest.mark.parametrize(("options", "said"), [
    ({"voise": "nova"}, "unknown option 'voise'"),
    ({"speed": 9}, "option 'speed'"),
    ({"api_key": "sk-x"}, "looks like a secret"),
    ({"base_url": "localhost:8880"}, "option 'base_url'"),
])  # fmt: skip
def test_bad_options_are_named(options, said):
    with pytest.raises(BackendOptionError) as caught:
        load_backend("speech", "openai", options)
    assert said in caught.value.message


@pytest.mark.parametrize(("tag", "bits", "extensible"), [(1, 24, False), (3, 32, True), (1, 32, False)])
def test_other_wav_sample_formats_are_read(server, tag, bits, extensible):
    """What OpenAI-compatible servers may send: 24/32-bit integer or float WAV, plain or WAVE_FORMAT_EXTENSIBLE."""
    values = np.array([0.5, -0.5, 0.25, -1.0])
    if tag == 3:
        payload = values.astype("<f4").tobytes()
    else:
        scale = 2 ** (bits - 1)
        payload = b"".join(max(round(v * scale), -scale).to_bytes(bits // 8, "little", signed=True) for v in values)
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, 1, 16_000, 16_000 * bits // 8, bits // 8, bits)
    if extensible:
        fmt += struct.pack("<HHIH", 22, bits, 0, tag) + b"\x00" * 14
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(payload)) + payload
    server.speech = lambda request: b"RIFF" + struct.pack("<I", len(body)) + body
    spoken = narrator(server).speak(LINE)
    assert spoken.sample_rate == 16_000 and np.allclose(spoken.samples, values)
