"""The embedded narrator: real espeak-ng speech, measured the way a listener would notice."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from storyflow.backends.base import Speech
from storyflow.backends.registry import load_backend
from storyflow.backends.speech.espeak import (
    EspeakOptions,
    EspeakSpeech,
    list_variants,
    list_voices,
)
from storyflow.core.errors import (
    BackendOptionError,
    BackendUnavailableError,
    GenerationError,
)

LINE = "The old keeper climbed the winding stairs to light the lamp."
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def narrator() -> EspeakSpeech:
    return EspeakSpeech()


def speaker(**options) -> EspeakSpeech:
    return EspeakSpeech(EspeakOptions(**options))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def band_fraction(speech: Speech, low: float, high: float) -> float:
    """Share of the spectral energy between `low` and `high` Hz."""
    power = np.abs(np.fft.rfft(speech.samples)) ** 2
    freqs = np.fft.rfftfreq(len(speech.samples), 1 / speech.sample_rate)
    return float(power[(freqs >= low) & (freqs <= high)].sum() / power.sum())


def median_pitch_hz(speech: Speech) -> float:
    """Median fundamental frequency of the loud voiced stretches (autocorrelation per 40 ms)."""
    x, rate = speech.samples, speech.sample_rate
    frame, loud, pitches = int(0.04 * rate), rms(speech.samples), []
    for start in range(0, len(x) - frame, frame):
        part = x[start : start + frame] - x[start : start + frame].mean()
        if rms(part) < 0.5 * loud:
            continue
        corr = np.correlate(part, part, "full")[frame - 1 :]
        shortest, longest = rate // 400, rate // 60
        lag = shortest + int(np.argmax(corr[shortest:longest]))
        if corr[lag] > 0.5 * corr[0]:
            pitches.append(rate / lag)
    assert len(pitches) >= 10, "too few voiced frames to measure pitch"
    return float(np.median(pitches))


# ---------------------------------------------------------------- the sound


def test_speech_is_audible_voice_band_sound_with_short_silent_edges(narrator):
    speech = narrator.speak(LINE)
    x = speech.samples
    assert speech.sample_rate == 22050  # espeak-ng's own rate, reported as it is
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.abs(x).max() <= 1.0
    assert rms(x) > 0.03  # clearly more than silence (silence is 0)
    assert band_fraction(speech, 100, 4000) > 0.8  # a voice, not hiss or hum
    # about 50 ms of silence at each end, then sound right away
    edge = int(0.045 * speech.sample_rate)
    assert rms(x[:edge]) < 1e-4 and rms(x[-edge:]) < 1e-4
    assert rms(x[edge : edge + int(0.1 * speech.sample_rate)]) > 1e-3
    assert rms(x[-edge - int(0.1 * speech.sample_rate) : -edge]) > 1e-3


def test_longer_text_takes_longer_and_a_faster_rate_speaks_faster(narrator):
    short = narrator.speak("The lamp is lit.")
    long = narrator.speak(LINE + " Below him the sea rolled against the rocks all night long.")
    assert long.seconds > 3 * short.seconds

    slow, fast = narrator.speak(LINE, rate=120), narrator.speak(LINE, rate=240)
    assert 1.6 < slow.seconds / fast.seconds < 2.4  # twice the rate, about half the time
    assert slow.seconds > narrator.speak(LINE).seconds > fast.seconds  # 160 wpm in between

    # the per-call rate is the same as a voice set to that rate
    voice_at_240 = speaker(rate=240)
    assert voice_at_240.rate == 240.0 and narrator.rate == 160.0 and narrator.voice == "en-us"
    assert np.array_equal(voice_at_240.speak(LINE).samples, fast.samples)


def test_gap_ms_puts_that_much_pause_between_words():
    gaps = len(LINE.split()) - 1
    for rate in (120, 240):  # espeak's own gap unit shrinks with the rate; gap_ms does not
        plain = speaker(rate=rate).speak(LINE)
        spaced = speaker(rate=rate, gap_ms=150).speak(LINE)
        added_ms = 1000 * (spaced.seconds - plain.seconds) / gaps
        assert 110 < added_ms < 220, (rate, added_ms)


# ---------------------------------------------------------------- word timings


def test_word_timings_cover_each_word_in_order(narrator):
    speech = narrator.speak(LINE)
    words = speech.words
    assert [w for _, _, w in words] == [w.strip(".,") for w in LINE.split()]
    starts = [start for start, _, _ in words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    for (start, end, _), following in zip(words, [*words[1:], None], strict=True):
        assert 0 <= start < end <= speech.seconds
        if following is not None:
            assert end <= following[0] + 1e-9
    assert words[0][0] < 0.1  # the first word starts with the sound
    assert speech.seconds - 0.15 < words[-1][1] <= speech.seconds  # the last ends near the end
    # every word's span holds sound: subtitles shown from these times show over speech
    rate = speech.sample_rate
    for start, end, word in words:
        assert rms(speech.samples[int(start * rate) : int(end * rate)]) > 0.01, word


def test_a_comma_pause_belongs_to_no_word_and_numbers_stay_one_word(narrator):
    speech = narrator.speak("Hello there, friend. In 1984 the lamp went out.")
    labels = [w for _, _, w in speech.words]
    assert labels == ["Hello", "there", "friend", "In", "1984", "the", "lamp", "went", "out"]
    there, friend = speech.words[1], speech.words[2]
    assert friend[0] - there[1] > 0.05  # silence between them is not part of either
    nineteen_eighty_four = speech.words[4]
    assert nineteen_eighty_four[1] - nineteen_eighty_four[0] > 0.5  # spoken as three words


# ---------------------------------------------------------------- determinism and threads


def test_the_same_line_gives_identical_samples_even_after_other_lines(narrator):
    first = narrator.speak(LINE)
    speaker(voice="en-gb+f3", rate=300).speak("Something else entirely, spoken first.")
    again = narrator.speak(LINE)
    fresh = EspeakSpeech().speak(LINE)
    assert np.array_equal(first.samples, again.samples) and first.words == again.words
    assert np.array_equal(first.samples, fresh.samples)


def test_two_threads_speaking_at_once_sound_as_if_alone():
    voices = {"us": speaker(voice="en-us"), "gb": speaker(voice="en-gb+f3")}
    texts = {"us": LINE, "gb": "Below him the sea rolled against the rocks."}
    alone = {key: voices[key].speak(texts[key]) for key in voices}

    together: dict[str, list[Speech]] = {key: [] for key in voices}
    start = threading.Barrier(len(voices))

    def run(key: str) -> None:
        start.wait()
        for _ in range(4):
            together[key].append(voices[key].speak(texts[key]))

    threads = [threading.Thread(target=run, args=(key,)) for key in voices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for key in voices:
        assert len(together[key]) == 4
        for speech in together[key]:
            assert np.array_equal(speech.samples, alone[key].samples) and speech.words == alone[key].words


# ---------------------------------------------------------------- voices and options


def test_voices_and_pitch_change_the_sound(narrator):
    us = narrator.speak(LINE)
    gb = speaker(voice="en-gb").speak(LINE)
    female = speaker(voice="en-us+f3").speak(LINE)
    assert not np.array_equal(us.samples, gb.samples)
    assert median_pitch_hz(female) > 1.5 * median_pitch_hz(us)  # a higher voice, audibly
    low, high = speaker(pitch=20).speak(LINE), speaker(pitch=80).speak(LINE)
    assert median_pitch_hz(high) > 1.3 * median_pitch_hz(low)


def test_voice_list_holds_the_usual_voices_and_variants():
    voices = list_voices()
    assert {"en-us", "en-gb", "fr-fr", "de", "es"} <= set(voices)
    assert len(voices) > 50 and len(voices) == len(set(voices))
    assert {"f1", "f3", "m1", "m3"} <= set(list_variants())


def test_an_unknown_voice_names_itself_and_lists_real_voices():
    with pytest.raises(BackendOptionError) as info:
        speaker(voice="en-mars").speak("hello")
    error = info.value
    assert "en-mars" in error.message
    assert "list_voices" in error.fix
    suggested = error.fix.split("one of ", 1)[1].split(" (", 1)[0].split(", ")
    assert len(suggested) >= 3 and set(suggested) <= set(list_voices())

    with pytest.raises(BackendOptionError) as info:
        speaker(voice="en-us+nosuch").check_available()  # found before anything is rendered
    assert "nosuch" in info.value.message and "en-us+f1" in info.value.fix


def test_options_are_checked_through_the_registry():
    backend = load_backend("speech", "espeak", {"voice": "en-gb", "rate": 200, "gap_ms": 50})
    assert isinstance(backend, EspeakSpeech) and backend.voice == "en-gb" and backend.rate == 200.0
    with pytest.raises(BackendOptionError) as info:
        load_backend("speech", "espeak", {"voise": "en-gb"})
    assert "voise" in info.value.message and "voice" in info.value.fix
    with pytest.raises(BackendOptionError) as info:
        load_backend("speech", "espeak", {"rate": 2000})
    assert "rate" in info.value.message


def test_empty_text_and_impossible_rates_are_errors_with_a_fix(narrator):
    for text in ("", "   \n\t"):
        with pytest.raises(GenerationError) as info:
            narrator.speak(text)
        assert info.value.fix
    with pytest.raises(BackendOptionError) as info:
        narrator.speak(LINE, rate=20)
    assert "20" in info.value.message and "80" in info.value.fix


# ---------------------------------------------------------------- loading


def test_check_available_names_the_install_when_the_package_is_missing(narrator, monkeypatch):
    narrator.check_available()  # installed here: no error
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # what Python does for a missing package
    with pytest.raises(BackendUnavailableError) as info:
        EspeakSpeech().check_available()
    assert "pip install espeakng-loader" in info.value.fix


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the process's loaded libraries from /proc")
def test_importing_the_backend_does_not_load_espeak():
    script = (
        "import sys\n"
        "import storyflow.backends.speech.espeak as espeak\n"
        "from storyflow.backends.registry import load_backend\n"
        "backend = load_backend('speech', 'espeak', {})\n"
        "loaded = lambda: 'libespeak-ng' in open('/proc/self/maps').read()\n"
        "assert not loaded() and 'espeakng_loader' not in sys.modules, 'loaded at import'\n"
        "speech = backend.speak('hello')\n"
        "assert speech.seconds > 0.2 and 'espeakng_loader' in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
