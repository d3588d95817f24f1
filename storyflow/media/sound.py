"""Sound in and out of files: 16-bit WAV, decoding any file's audio, resampling.

numpy, scipy and PyAV are imported inside the functions that need them.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow.media.files import atomic_path

if TYPE_CHECKING:
    import numpy as np

AUDIO_SAMPLE_RATE = 48_000  # every sound storyflow writes is at this rate


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = AUDIO_SAMPLE_RATE) -> None:
    """Write float samples in [-1, 1], shape (n,) or (n, channels), as 16-bit PCM WAV."""
    import numpy as np

    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Samples as float32 (n, channels) in [-1, 1], and the sample rate."""
    import numpy as np

    with wave.open(str(path), "rb") as wav:
        channels, rate, n = wav.getnchannels(), wav.getframerate(), wav.getnframes()
        raw = wav.readframes(n)
    data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32767.0
    return data.reshape(-1, channels), rate


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
