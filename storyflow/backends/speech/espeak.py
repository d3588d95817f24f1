"""The embedded narrator: espeak-ng speaks each narration line, with word timings.

espeak-ng ships on PyPI as `espeakng-loader` (the shared library and its voice data), so
no system package is needed. Its C API (speak_lib.h) is called through ctypes in
synchronous retrieval mode: the library hands back 16-bit samples and word events
through a callback while `espeak_Synth` runs.

Two facts about the library shape this module:
- espeak-ng is one process-global C library (one voice, one set of parameters, one
  callback), so every call into it holds the module-level `_LOCK`.
- its waveform generator carries state from one utterance to the next (pitch-flutter
  and glottal phase, an automatic gain, a noise generator seeded from the clock), so a
  library that stays loaded speaks the same line a little differently every time.
  To make the same text and options give identical samples, each line is spoken by a
  freshly loaded engine (load, initialise, speak, terminate, unload: about 1 ms) with a
  fixed noise seed. Nothing is loaded at import: `storyflow --help` never touches it.
"""

from __future__ import annotations

import ctypes
import difflib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from storyflow.backends.base import BackendOptions, Speech, SpeechBackend
from storyflow.core.errors import (
    BackendOptionError,
    BackendUnavailableError,
    GenerationError,
)

if TYPE_CHECKING:
    import numpy as np

# ---------------------------------------------------------------- espeak-ng's C API

# constants from speak_lib.h (API revision 12)
AUDIO_OUTPUT_SYNCHRONOUS = 2  # retrieval through the callback; espeak_Synth returns when done
INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() when data is missing
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1  # start of a word: text_position (1-based characters), audio_position (ms)
EVENT_SAMPLERATE = 8
PARAM_RATE = 1
PARAM_PITCH = 3
PARAM_WORDGAP = 7
EE_OK = 0

SLOWEST_RATE = 80  # espeak silently speaks anything slower at 80 wpm
FASTEST_VOICE_RATE = 450  # espeak's nominal maximum for a voice's own rate
FASTEST_RATE = 900  # a line paced to fit may go faster (espeak time-compresses it), up to 2x
NOISE_SEED = 1  # espeak's breath and frication noise; fixed so that a line is reproducible
TRIM_PAD_S = 0.05  # silence before the first and after the last sound of a line
SILENCE_DB = -45.0  # a 10 ms frame this far below the loudest frame counts as silence

INSTALL_FIX = "pip install espeakng-loader (it is a dependency of storyflow; run `make install`)"
LIST_VOICES_HINT = (
    'list them all with `python -c "from storyflow.backends.speech.espeak import list_voices; '
    'print(*list_voices())"`'
)

# espeak's word-gap unit shrinks as the rate rises (its pauses scale with the speed), so
# milliseconds are converted through this curve: (rate in wpm, ms of pause per unit),
# measured on espeak-ng 1.52 with en-us and 15..40 units; interpolated between points.
WORDGAP_MS_PER_UNIT = (
    (80, 31.0), (120, 19.2), (175, 10.6), (200, 8.3), (280, 3.6),
    (320, 2.3), (350, 1.3), (380, 0.9), (450, 1.8), (600, 1.4), (900, 0.95),
)  # fmt: skip


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """espeak_VOICE; `languages` is a list of (priority byte, name, NUL), ended by a NUL."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class _Capture:
    """What the callback received during one espeak_Synth call."""

    chunks: list[bytes] = field(default_factory=list)
    words: list[tuple[int, int]] = field(default_factory=list)  # (text_position, audio_position ms)
    sample_rate: int = 0


_LOCK = threading.Lock()  # one engine at a time in this process: load, speak, unload
_capture = _Capture()
_callback = None  # the ctypes callback, created on first use and kept alive for the process


def _on_synth(wav: ctypes._Pointer, num_samples: int, events: ctypes._Pointer) -> int:
    """espeak's synth callback: keep the samples and the word events; 0 = continue."""
    if wav and num_samples > 0:
        _capture.chunks.append(ctypes.string_at(wav, num_samples * ctypes.sizeof(ctypes.c_short)))
    index = 0
    while events and events[index].type != EVENT_LIST_TERMINATED:
        event = events[index]
        if event.type == EVENT_WORD:
            _capture.words.append((event.text_position, event.audio_position))
        elif event.type == EVENT_SAMPLERATE:
            _capture.sample_rate = event.id.number
        index += 1
    return 0


def _paths() -> tuple[str, Path]:
    """(the shared library, the espeak-ng-data folder) shipped by espeakng-loader."""
    try:
        import espeakng_loader
    except ImportError:
        raise BackendUnavailableError("the espeak narrator needs espeakng-loader", fix=INSTALL_FIX) from None
    library = espeakng_loader.get_library_path()
    try:
        data = Path(espeakng_loader.get_data_path())
    except RuntimeError as exc:
        raise BackendUnavailableError(f"espeakng-loader has no voice data: {exc}", fix=INSTALL_FIX) from None
    return library, data


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types of the functions used (speak_lib.h)."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p


def _unload(lib: ctypes.CDLL) -> None:
    """Unload the library so that the next engine starts from fresh static state."""
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


@contextmanager
def _engine() -> Iterator[tuple[ctypes.CDLL, int]]:
    """A freshly loaded and initialised espeak-ng and its sample rate (caller holds _LOCK)."""
    global _callback
    library, data = _paths()
    try:
        lib = ctypes.CDLL(library, mode=ctypes.RTLD_LOCAL)
    except OSError as exc:
        raise BackendUnavailableError(f"cannot load espeak-ng from {library}: {exc}", fix=INSTALL_FIX) from None
    try:
        _declare(lib)
        # `path` is the folder that holds espeak-ng-data; 0 = default buffer length (60 ms)
        folder = str(data.parent).encode()
        sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, folder, INITIALIZE_DONT_EXIT)
        if sample_rate <= 0:
            raise BackendUnavailableError(f"espeak-ng could not read its voice data in {data}", fix=INSTALL_FIX)
        try:
            if _callback is None:
                _callback = _SynthCallback(_on_synth)
            lib.espeak_SetSynthCallback(_callback)
            yield lib, sample_rate
        finally:
            lib.espeak_Terminate()
    finally:
        _unload(lib)


# ---------------------------------------------------------------- voices


@dataclass(frozen=True)
class _VoiceEntry:
    identifier: str  # file under espeak-ng-data/voices, e.g. "gmw/en-US"
    name: str  # e.g. "English (America)"
    languages: tuple[tuple[int, str], ...]  # (priority, code); the first is its own language

    @property
    def code(self) -> str:
        return self.languages[0][1] if self.languages else self.identifier


def _read_languages(address: int | None) -> tuple[tuple[int, str], ...]:
    languages = []
    while address:
        priority = ctypes.string_at(address, 1)[0]
        if priority == 0:
            break
        code = ctypes.string_at(address + 1)
        languages.append((priority, code.decode()))
        address += 2 + len(code)
    return tuple(languages)


@cache
def _voice_catalog() -> tuple[_VoiceEntry, ...]:
    """Every espeak voice this installation can speak with (MBROLA voices need another program)."""
    entries = []
    with _LOCK, _engine() as (lib, _):
        table = lib.espeak_ListVoices(None)
        index = 0
        while table[index]:
            voice = table[index].contents
            entries.append(
                _VoiceEntry(voice.identifier.decode(), voice.name.decode(), _read_languages(voice.languages))
            )
            index += 1
    return tuple(entry for entry in entries if not entry.identifier.startswith("mb/"))


def list_voices() -> list[str]:
    """Every voice name `voice=` accepts without a variant: language codes such as 'en-us'."""
    return list(dict.fromkeys(entry.code for entry in _voice_catalog()))


def list_variants() -> list[str]:
    """Voice variants that can follow a voice after '+': 'f3' in 'en-us+f3'."""
    _, data = _paths()
    return sorted(path.name for path in (data / "voices" / "!v").iterdir() if path.is_file())


@cache
def engine_version() -> str:
    """The espeak-ng library's version (its output changes with it)."""
    with _LOCK, _engine() as (lib, _):
        return lib.espeak_Info(None).decode()


def _resolve_voice(voice: str) -> str:
    """'en-gb+f3' -> 'gmw/en+f3': the name espeak_SetVoiceByName finds; errors list the fix."""
    base, _, variant = voice.strip().partition("+")
    wanted = base.lower()
    catalog = _voice_catalog()
    # a language code first (the voice that ranks it best), then a file or display name
    ranked = [(priority, i) for i, entry in enumerate(catalog) for priority, code in entry.languages if code == wanted]
    named = [
        entry
        for entry in catalog
        if wanted in (entry.identifier.lower(), entry.identifier.rsplit("/", 1)[-1].lower(), entry.name.lower())
    ]
    match = catalog[min(ranked)[1]] if ranked else (named[0] if named else None)
    if match is None:
        names = list_voices()
        close = difflib.get_close_matches(wanted, names, n=5, cutoff=0.5)
        examples = list(dict.fromkeys([*close, "en-us", "en-gb", "fr-fr", "de", "es"]))[:6]
        raise BackendOptionError(
            f"espeak has no voice '{voice}'",
            fix=f"pass voice= one of {', '.join(examples)} ({len(names)} voices; {LIST_VOICES_HINT})",
        )
    if variant:
        variants = list_variants()
        if variant not in variants:
            raise BackendOptionError(
                f"espeak has no voice variant '{variant}' (in voice '{voice}')",
                fix=f"use {base}+f1 .. {base}+f5 (female) or {base}+m1 .. {base}+m7 (male); "
                f"all {len(variants)} variants: from storyflow.backends.speech.espeak import list_variants",
            )
        return f"{match.identifier}+{variant}"
    return match.identifier


# ---------------------------------------------------------------- the backend


class EspeakOptions(BackendOptions):
    voice: str = Field(
        default="en-us",
        min_length=1,
        description="espeak-ng voice: a language code (en-us, en-gb, fr-fr), optionally with a variant (en-us+f3)",
    )
    rate: float = Field(
        default=160.0, ge=SLOWEST_RATE, le=FASTEST_VOICE_RATE, description="speaking rate in espeak's words per minute"
    )
    pitch: int = Field(default=50, ge=0, le=99, description="base pitch: 0 low, 50 the voice's own, 99 high")
    gap_ms: int = Field(default=0, ge=0, le=1000, description="extra pause between words, in milliseconds")


class EspeakSpeech(SpeechBackend):
    name = "espeak"
    version = "1"
    description = "espeak-ng text to speech, embedded (espeakng-loader: no system package, no network)"
    Options = EspeakOptions
    requires = ("espeakng_loader",)
    install = INSTALL_FIX

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self._voice_name: str | None = None  # resolved on first use (that loads the library)

    @property
    def model(self) -> str:
        return "espeak-ng"

    @property
    def revision(self) -> str:
        """espeak-ng's speech changes between library releases, so its version keys the cache."""
        return engine_version()

    @property
    def voice(self) -> str:
        return self.options.voice

    @property
    def rate(self) -> float:
        return float(self.options.rate)

    def check(self) -> None:
        """Load espeak-ng and resolve the voice, so that problems show before any rendering."""
        with _LOCK, _engine():
            pass
        self._resolved_voice()

    def speak(self, text: str, *, rate: float | None = None) -> Speech:
        """Speak one line: mono float32 at espeak's own sample rate, with word timings."""
        import numpy as np

        # 1. check inputs
        line = " ".join((text or "").split())
        if not line:
            raise GenerationError(
                "espeak was asked to speak an empty narration line",
                fix="write the shot's narration in words, or leave the shot without narration",
            )
        wpm = self.rate if rate is None else float(rate)
        if not SLOWEST_RATE <= wpm <= FASTEST_RATE:
            raise BackendOptionError(
                f"espeak cannot speak at {wpm:g} words per minute",
                fix=f"use a rate between {SLOWEST_RATE} and {FASTEST_RATE} (a line that does not fit at "
                "that pace needs a longer shot)",
            )
        voice = self._resolved_voice()

        # 2. synthesise with a fresh engine (see the module docstring: why fresh)
        raw, word_events, sample_rate = _synthesize(line, voice, wpm, self.options.pitch, self.options.gap_ms)
        samples = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0

        # 3. exactly TRIM_PAD_S of silence before the first and after the last sound
        #    (espeak leaves anything from none to a clause pause)
        frame = sample_rate // 100
        loud = np.flatnonzero(_loud_frames(samples, frame))
        if loud.size == 0:
            raise GenerationError(
                f"espeak produced no speech for {line!r}", fix="write the narration line in words espeak can read"
            )
        pad = round(TRIM_PAD_S * sample_rate)
        sound_start, sound_end = int(loud[0]) * frame, min(len(samples), (int(loud[-1]) + 1) * frame)
        start, end = max(0, sound_start - pad), min(len(samples), sound_end + pad)
        head, tail = pad - (sound_start - start), pad - (end - sound_end)
        samples = np.concatenate([np.zeros(head, np.float32), samples[start:end], np.zeros(tail, np.float32)])

        # 4. word timings from espeak's word events, moved into the trimmed speech
        shift = (head - start) / sample_rate
        seconds = len(samples) / sample_rate
        words = _word_timings(line, word_events, shift, _loud_frames(samples, frame), frame / sample_rate, seconds)
        return Speech(samples=samples, sample_rate=sample_rate, words=words)

    def _resolved_voice(self) -> str:
        if self._voice_name is None:
            self._voice_name = _resolve_voice(self.options.voice)
        return self._voice_name


def _synthesize(line: str, voice: str, wpm: float, pitch: int, gap_ms: int) -> tuple[bytes, list[tuple[int, int]], int]:
    """One espeak_Synth call: (16-bit samples, word events, sample rate)."""
    encoded = line.encode("utf-8")
    with _LOCK, _engine() as (lib, sample_rate):
        _capture.chunks, _capture.words, _capture.sample_rate = [], [], sample_rate
        if lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            raise GenerationError(
                f"espeak-ng could not load the voice '{voice}'", fix=f"try voice=en-us; {LIST_VOICES_HINT}"
            )
        # parameters after the voice: loading a voice resets them
        for parameter, value in (
            (PARAM_RATE, round(wpm)),
            (PARAM_PITCH, pitch),
            (PARAM_WORDGAP, _wordgap_units(gap_ms, wpm)),
        ):
            if lib.espeak_SetParameter(parameter, value, 0) != EE_OK:
                raise GenerationError(f"espeak-ng refused parameter {parameter}={value}", fix="use the default options")
        if hasattr(lib, "espeak_ng_SetRandSeed"):  # espeak-ng >= 1.52
            lib.espeak_ng_SetRandSeed(ctypes.c_long(NOISE_SEED))
        status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if status != EE_OK:
            raise GenerationError(f"espeak-ng failed to speak {line[:40]!r} (status {status})", fix="shorten the line")
        return b"".join(_capture.chunks), list(_capture.words), _capture.sample_rate


def _wordgap_units(gap_ms: int, wpm: float) -> int:
    """Milliseconds of pause between words -> espeak's word-gap units at this rate."""
    if gap_ms <= 0:
        return 0
    rates, per_unit = zip(*WORDGAP_MS_PER_UNIT, strict=True)
    return max(1, round(gap_ms / _interpolate(wpm, rates, per_unit)))


def _interpolate(x: float, xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:]), strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


def _loud_frames(samples: np.ndarray, frame: int) -> np.ndarray:
    """One flag per `frame` samples: is there sound (above SILENCE_DB under the loudest frame)?"""
    import numpy as np

    count = -(-len(samples) // frame)
    padded = np.zeros(count * frame, dtype=np.float32)
    padded[: len(samples)] = samples
    rms = np.sqrt((padded.reshape(count, frame) ** 2).mean(axis=1))
    threshold = max(float(rms.max()) * 10 ** (SILENCE_DB / 20), 1e-4)
    return rms > threshold


_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def _word_timings(
    line: str,
    events: list[tuple[int, int]],
    shift_s: float,
    loud: np.ndarray,
    frame_s: float,
    seconds: float,
) -> tuple[tuple[float, float, str], ...]:
    """(start, end, word) for each written word of `line`, from espeak's word events.

    espeak may send several events for one written word ("1984" is spoken as three) or
    point into it; each written word takes the start of the first event inside it. A word
    that got no event of its own joins the word before it. A word ends where the next one
    starts, or earlier where its sound ends (a pause after a comma belongs to no word).
    """
    tokens = [(m.start(), m.end(), _EDGE_PUNCTUATION.sub("", m.group())) for m in _WORD.finditer(line)]
    tokens = [token for token in tokens if token[2]]

    # 1. the first event inside each written word (text_position counts characters from 1)
    starts: dict[int, float] = {}
    for position, audio_ms in events:
        for index, (begin, end, _) in enumerate(tokens):
            if begin <= position - 1 < end:
                starts.setdefault(index, min(max(audio_ms / 1000 + shift_s, 0.0), seconds))
                break

    # 2. words without an event join the word before (or, at the start, the word after)
    timed: list[list] = []  # [start, label]
    pending: list[str] = []
    for index, (_, _, label) in enumerate(tokens):
        if index in starts:
            timed.append([starts[index], " ".join([*pending, label])])
            pending = []
        elif timed:
            timed[-1][1] += f" {label}"
        else:
            pending.append(label)

    # 3. ends: the next word's start, or the end of this word's sound
    words = []
    previous = 0.0
    for index, (start, label) in enumerate(timed):
        start = max(start, previous)
        limit = timed[index + 1][0] if index + 1 < len(timed) else seconds
        limit = max(limit, start)
        first_frame, last_frame = int(start / frame_s), int(limit / frame_s + 0.5)
        sounding = [k for k in range(first_frame, min(last_frame, len(loud))) if loud[k]]
        end = min(limit, (sounding[-1] + 1) * frame_s) if sounding else limit
        end = max(end, min(limit, start + frame_s))
        words.append((round(start, 4), round(end, 4), label))
        previous = start
    return tuple(words)

