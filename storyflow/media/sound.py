"""Sound in and out of files: 16-bit WAV, decoding any file's audio, resampling.

numpy, scipy and PyAV are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from storyflow.media.files import atomic_path

if TYPE_CHECKING:
    import numpy as np

AUDIO_SAMPLE_RATE = 48_000  # every sound storyflow writes is at this rate
Tap = Callable[["np.ndarray"], None]  # sees each window of 16-bit samples a WAV writer writes


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = AUDIO_SAMPLE_RATE) -> str:
    """Write float samples in [-1, 1], shape (n,) or (n, channels), as 16-bit PCM WAV; returns its sha256."""
    import numpy as np

    data = np.asarray(samples, dtype=np.float32)
    with wav_writer(path, 1 if data.ndim == 1 else data.shape[1], sample_rate, frames=len(data)) as out:
        out.write(data)
    return out.sha256


class WavOut:
    """A 16-bit WAV being written window by window (see wav_writer)."""

    def __init__(self, wav: wave.Wave_write, channels: int, path: Path, tap: Tap | None = None) -> None:
        self._wav, self.channels, self.frames, self.path, self._tap = wav, channels, 0, path, tap
        self._sha256: str | None = None  # the file's, when worked out while it was written

    def write(self, samples: np.ndarray) -> None:
        """Append float samples in [-1, 1], shape (n,) or (n, channels); clipped, rounded to 16 bits."""
        import numpy as np

        data = np.asarray(samples, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] != self.channels:
            raise ValueError(f"this WAV has {self.channels} channels, got samples of shape {data.shape}")
        scaled = np.multiply(data, np.float32(32767.0), dtype=np.float32)  # clip(x, -1, 1) * 32767, in fewer passes
        np.clip(scaled, -32767.0, 32767.0, out=scaled)
        pcm = np.rint(scaled, out=scaled).astype("<i2")
        self._wav.writeframesraw(pcm.tobytes())  # the header is set on close
        self.frames += len(data)
        if self._tap is not None:
            self._tap(pcm)

    @property
    def sha256(self) -> str:
        """The finished file's sha256 (once the writer is closed): hashed as it was written where it could be."""
        from storyflow.media.files import sha256_file

        return self._sha256 or sha256_file(self.path)


class _HashingFile:
    """A file being written whose bytes are hashed on their way to it, as long as they are written in order."""

    def __init__(self, raw: BinaryIO) -> None:
        import hashlib

        self._raw, self._digest, self.in_order = raw, hashlib.sha256(), True

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._raw.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.in_order = False  # wave patches the header: what was hashed is not the file
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def flush(self) -> None:
        self._raw.flush()

    def hexdigest(self) -> str | None:
        return self._digest.hexdigest() if self.in_order else None


@contextlib.contextmanager
def wav_writer(path: Path, channels: int, sample_rate: int = AUDIO_SAMPLE_RATE, frames: int = 0,
               tap: Tap | None = None) -> Iterator[WavOut]:  # fmt: skip
    """Write a 16-bit WAV in windows, atomically: the final name appears only once every window is written,
    so a film-length track never has to be held in memory and a killed run never leaves half of one.

    Given `frames`, how many the file will hold, its header is written once, first, and the file is hashed
    as it is written (WavOut.sha256): nothing reads it back to hash it. Otherwise the header is set on close.
    `tap` is handed each window's 16-bit samples as written (int16, shape (n, channels)): what the file holds."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        hashing = _HashingFile(raw)
        with wave.open(hashing, "wb") as out:  # type: ignore[call-overload]
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            out.setnframes(frames)
            written = WavOut(out, channels, path, tap)
            yield written
        written._sha256 = hashing.hexdigest()


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Samples as float32 (n, channels) in [-1, 1], and the sample rate."""
    with open_wav(path) as wav:
        return wav.read(0, wav.frames), wav.rate


class WavIn:
    """A 16-bit WAV open for reading any window of it (see open_wav)."""

    def __init__(self, wav: wave.Wave_read) -> None:
        self._wav = wav
        self.channels, self.rate, self.frames = wav.getnchannels(), wav.getframerate(), wav.getnframes()

    def read(self, start: int, count: int) -> np.ndarray:
        """float32 (n, channels) for samples [start, start + count), cut short at the file's end."""
        import numpy as np

        start = min(max(0, start), self.frames)
        self._wav.setpos(start)
        raw = self._wav.readframes(max(0, min(count, self.frames - start)))
        return pcm_samples(np.frombuffer(raw, dtype="<i2")).reshape(-1, self.channels)


def pcm_samples(pcm: np.ndarray) -> np.ndarray:
    """16-bit samples as the float32 ones a WAV is read as (WavIn.read), in one pass: whatever meters a WAV while
    it is written (a wav_writer tap) reads the very values a later reader of the file would."""
    import numpy as np

    return np.divide(pcm, np.float32(32767.0), dtype=np.float32)


@contextlib.contextmanager
def open_wav(path: Path) -> Iterator[WavIn]:
    """Open a 16-bit WAV to read it window by window."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path} is not 16-bit PCM (sample width {wav.getsampwidth()} bytes)")
        yield WavIn(wav)


def decode_audio(path: Path, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """Decode a file's first audio stream to float32 mono at `sample_rate`."""
    import av
    import numpy as np

    chunks = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.float32)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling (anti-aliased, exact for any integer rates) of (n,) or (n, channels) samples."""
    from math import gcd

    import numpy as np
    from scipy.signal import resample_poly

    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    step = gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // step, from_rate // step, axis=0).astype(np.float32)
