"""How loud a piece of audio is, and bringing it to a stated loudness without clipping.

Loudness is ITU-R BS.1770-4 integrated loudness (LUFS, gated, K-weighted), measured by
pyloudnorm. Peaks are *true* peaks estimated by 4x oversampling (a polyphase FIR, in the
spirit of BS.1770-4 Annex 2), so a normalised mix stays under its ceiling after a D/A
converter or an AAC encoder reconstructs the waveform between samples, not just at the
samples. 4x oversampling can under-read the real inter-sample peak of content near the
Nyquist frequency by a fraction of a dB; keep the ceiling at -1 dBTP or lower for AAC.

The limiter is a lookahead peak limiter built from two window operations (a running
minimum of the gain each sample needs, then a moving average of that): the gain starts
falling before a peak arrives and is already low enough when it does, with no
per-sample Python loop. numpy, scipy and pyloudnorm are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SILENCE = float("-inf")  # the loudness (and peak) of digital silence
OVERSAMPLING = 4  # true-peak estimate: 4x as BS.1770-4 Annex 2 suggests at 48 kHz
LIMITER_WINDOW_S = 0.012  # lookahead = release = this; the gain ramps over twice this
PEAK_WINDOW = 1 << 18  # samples oversampled at once (5.5 s at 48 kHz): true peaks in bounded memory
PEAK_PAD = 64  # neighbours each window sees on either side; the 4x filter reaches 6 samples


def integrated_lufs(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4); -inf for silence or anything under the -70 LUFS gate.

    `samples` are float, shape (n,) for mono or (n, channels) with up to 5 channels.
    A signal shorter than one 400 ms gating block is measured as one block of its own length.
    """
    import numpy as np
    import pyloudnorm

    data = _as_channels(samples).astype(np.float64, copy=False)
    if len(data) == 0 or not np.any(data):
        return SILENCE
    block = min(0.4, len(data) / sample_rate)
    meter = pyloudnorm.Meter(sample_rate, block_size=block)
    with np.errstate(divide="ignore", invalid="ignore"):
        lufs = float(meter.integrated_loudness(data if data.shape[1] > 1 else data[:, 0]))
    return lufs if np.isfinite(lufs) else SILENCE


def sample_peak_dbfs(samples: np.ndarray) -> float:
    """The largest absolute sample value in dB full scale (-inf for silence)."""
    import numpy as np

    peak = float(np.abs(samples).max()) if np.size(samples) else 0.0
    return 20 * np.log10(peak) if peak > 0 else SILENCE


def true_peak_dbfs(samples: np.ndarray, sample_rate: int | None = None) -> float:
    """The 4x-oversampled (true) peak in dBTP; -inf for silence. The rate does not change it."""
    import numpy as np

    peaks = _true_peaks(_as_channels(samples))
    top = float(peaks.max()) if len(peaks) else 0.0
    return 20 * np.log10(top) if top > 0 else SILENCE


def limiter_gain(samples: np.ndarray, sample_rate: int, ceiling_dbfs: float = -1.0) -> np.ndarray:
    """Per-sample gain (<= 1, shape (n,)) that keeps the true peak of samples*gain under the ceiling.

    Every sample's needed gain (ceiling / its true peak, capped at 1) goes through a
    running minimum over +-W samples and then a moving average over +-W samples. At a peak
    p, each value the average takes in is a minimum over a window that contains p, so the
    smoothed gain at p is never above what p needs: it dips W before the peak (lookahead)
    and recovers over W after it, with W = LIMITER_WINDOW_S.
    """
    data = _as_channels(samples)
    return _limiter_curve(_true_peaks(data), sample_rate, ceiling_dbfs)


def _limiter_curve(peaks: np.ndarray, sample_rate: int, ceiling_dbfs: float) -> np.ndarray:
    """limiter_gain() from precomputed per-sample true peaks (they scale with any static gain)."""
    import numpy as np
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = 10 ** (ceiling_dbfs / 20)
    if len(peaks) == 0 or peaks.max() <= ceiling:
        return np.ones(len(peaks), dtype=np.float32)
    needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    width = 2 * max(1, round(LIMITER_WINDOW_S * sample_rate)) + 1
    held = minimum_filter1d(needed, size=width, mode="nearest")
    smooth = uniform_filter1d(held, size=width, mode="nearest")
    return np.minimum(smooth, needed).astype(np.float32)  # min() only mops up float rounding


@dataclass(frozen=True)
class Normalization:
    """How to bring a signal to a loudness: a static gain, then a limiter's gain curve."""

    gain_db: float  # static gain applied before the limiter
    limiter: np.ndarray  # per-sample gain <= 1 applied after the static gain, shape (n,)
    lufs_before: float  # measured on the input
    lufs_after: float  # measured on input * gain * limiter
    true_peak_after: float  # dBTP of input * gain * limiter

    @property
    def limited_db(self) -> float:
        """The deepest gain reduction the limiter applied (0.0 when it never acted)."""
        import numpy as np

        low = float(self.limiter.min()) if len(self.limiter) else 1.0
        return 20 * np.log10(low) if low > 0 else SILENCE

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """samples * gain * limiter, as float32 (works on any signal of the same length)."""
        import numpy as np

        scale = np.float32(10 ** (self.gain_db / 20)) * self.limiter
        data = np.asarray(samples, dtype=np.float32)
        return (data * (scale[:, None] if data.ndim == 2 else scale)).astype(np.float32)


def plan_normalization(
    samples: np.ndarray, sample_rate: int, target_lufs: float, ceiling_dbfs: float = -1.0, *, rounds: int = 4
) -> Normalization:
    """Find the static gain and limiter curve that bring `samples` to `target_lufs` under the ceiling.

    Limiting takes a little loudness away, so the gain is raised by what is missing and the
    limiter recomputed, a few rounds at most. A very peaky signal may still end short of
    the target; `lufs_after` says where it ended, measured, never assumed.
    """
    import numpy as np

    # 1. measure; silence stays silence (no gain can make it loud)
    data = _as_channels(samples).astype(np.float32, copy=False)
    before = integrated_lufs(data, sample_rate)
    if before == SILENCE:
        ones = np.ones(len(data), dtype=np.float32)
        return Normalization(0.0, ones, SILENCE, SILENCE, true_peak_dbfs(data))

    # 2. static gain to the target, then the limiter under the ceiling; repeat while limiting cost loudness
    gain_db = target_lufs - before
    peaks = _true_peaks(data)  # computed once: a static gain scales them
    after = before
    for round_ in range(max(1, rounds)):
        if round_:
            gain_db += target_lufs - after  # make up what the limiter took
        scaled = data * np.float32(10 ** (gain_db / 20))
        curve = _limiter_curve(peaks * np.float32(10 ** (gain_db / 20)), sample_rate, ceiling_dbfs)
        after = integrated_lufs(scaled * curve[:, None], sample_rate)
        if curve.min() >= 1.0 or after >= target_lufs - 0.05:
            break

    # 3. a last static trim if the oversampled peak still pokes through (rare: the gain curve's own ripple)
    result = scaled * curve[:, None]
    peak = true_peak_dbfs(result)
    if peak > ceiling_dbfs:
        trim_db = ceiling_dbfs - peak - 0.001
        curve = curve * np.float32(10 ** (trim_db / 20))
        after, peak = after + trim_db, peak + trim_db  # both scale exactly with a static gain
    return Normalization(float(gain_db), curve, before, after, peak)


def normalize_to_lufs(
    samples: np.ndarray, sample_rate: int, target_lufs: float, ceiling_dbfs: float = -1.0
) -> tuple[np.ndarray, float, float]:
    """Bring samples to `target_lufs` integrated with true peaks <= `ceiling_dbfs` (dBTP).

    Returns (samples, static gain in dB, loudness measured after). Silence comes back
    unchanged with gain 0.0 and loudness -inf. The output keeps the input's shape.
    """
    import numpy as np

    plan = plan_normalization(samples, sample_rate, target_lufs, ceiling_dbfs)
    out = plan.apply(_as_channels(samples))
    return (out if np.ndim(samples) == 2 else out[:, 0]), plan.gain_db, plan.lufs_after


def _as_channels(samples: np.ndarray) -> np.ndarray:
    """(n,) -> (n, 1); (n, c) stays; anything else is a programming error."""
    import numpy as np

    data = np.asarray(samples)
    if data.ndim == 1:
        return data[:, None]
    if data.ndim != 2:
        raise ValueError(f"audio must be (n,) or (n, channels), got shape {data.shape}")
    return data


def _true_peaks(data: np.ndarray) -> np.ndarray:
    """Per original sample: the largest |value| among its 4x-oversampled neighbours, across channels.

    Oversampled in windows of PEAK_WINDOW samples, each with PEAK_PAD samples of its neighbours on
    either side (more than the filter reaches), so the memory it takes is one window's, not the
    film's times four, and every window's interior is what oversampling the whole signal gives.
    """
    import numpy as np

    n = len(data)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    magnitude = np.abs(data).max(axis=1).astype(np.float32)
    if n < 8:
        return magnitude
    between = np.empty(n, dtype=np.float32)  # the loudest sub-sample between sample k and k+1
    for start in range(0, n, PEAK_WINDOW):
        stop = min(n, start + PEAK_WINDOW)
        lo, hi = max(0, start - PEAK_PAD), min(n, stop + PEAK_PAD)
        between[start:stop] = _between_peaks(data[lo:hi])[start - lo : stop - lo]
    peaks = np.maximum(magnitude, between)
    peaks[1:] = np.maximum(peaks[1:], between[:-1])
    return peaks


def _between_peaks(data: np.ndarray) -> np.ndarray:
    """For each sample k of `data`: the largest |value| of the 4x-oversampled sub-samples 4k .. 4k+3."""
    import numpy as np
    from scipy.signal import resample_poly

    up = resample_poly(data.astype(np.float32, copy=False), OVERSAMPLING, 1, axis=0, window=_oversampling_filter())
    between = np.abs(up[:, 0])
    for channel in range(1, up.shape[1]):
        np.maximum(between, np.abs(up[:, channel]), out=between)
    return between[: len(data) * OVERSAMPLING].reshape(len(data), OVERSAMPLING).max(axis=1).astype(np.float32)


def _oversampling_filter() -> np.ndarray:
    """A 49-tap low-pass interpolation filter for 4x (BS.1770-4 Annex 2 uses 48 taps, 12 per phase)."""
    from scipy.signal import firwin

    return firwin(12 * OVERSAMPLING + 1, 1.0 / OVERSAMPLING, window=("kaiser", 6.0))  # resample_poly scales by 4
