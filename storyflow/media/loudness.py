"""How loud a piece of audio is, and bringing it to a stated loudness without clipping, window by window.

Loudness is ITU-R BS.1770-4 integrated loudness (LUFS, gated, K-weighted), measured by
LoudnessMeter: a stream meter fed one window at a time, with pyloudnorm's own K-weighting
coefficients and gating arithmetic, so it reads what pyloudnorm reads on the whole signal
(to float rounding, ~1e-12 dB) while holding one float per channel per 100 ms instead of the signal.
Peaks are *true* peaks estimated by 4x oversampling (a polyphase FIR, in the spirit of
BS.1770-4 Annex 2), so a normalised mix stays under its ceiling after a D/A converter or
an AAC encoder reconstructs the waveform between samples, not just at the samples. 4x
oversampling can under-read the real inter-sample peak of content near the Nyquist
frequency by a fraction of a dB; keep the ceiling at -1 dBTP or lower for AAC.

The limiter is a lookahead peak limiter built from two window operations (a running
minimum of the gain each sample needs, then a moving average of that): the gain starts
falling before a peak arrives and is already low enough when it does, with no
per-sample Python loop. Its gain at a sample depends only on the signal within
limiter_reach() samples of it, so a plan (plan_normalization_windowed) computes it for one
window at a time from a signal it can re-read, and never holds a film-length curve.
numpy, scipy and pyloudnorm are imported inside the functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SILENCE = float("-inf")  # the loudness (and peak) of digital silence
OVERSAMPLING = 4  # true-peak estimate: 4x as BS.1770-4 Annex 2 suggests at 48 kHz
LIMITER_WINDOW_S = 0.012  # lookahead = release = this; the gain ramps over twice this
PEAK_WINDOW = 1 << 15  # samples oversampled at once (0.7 s at 48 kHz): bounded memory, and faster than larger
PEAK_PAD = 64  # neighbours each window sees on either side; the 4x filter reaches 6 samples
PEAK_BLOCK = 1024  # a plan keeps the loudest true peak per this many samples, to skip the limiter where it is idle
GATE_BLOCK_S, GATE_OVERLAP = 0.4, 0.75  # BS.1770 gating blocks: 400 ms, 75 % overlap (as pyloudnorm)
ABSOLUTE_GATE, RELATIVE_GATE = -70.0, -10.0  # LUFS, and LU under the absolutely-gated loudness
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 G_i: L, R, C, Ls, Rs (pyloudnorm's values)
METER_WINDOW = 1 << 16  # samples integrated_lufs filters at once: its float64 copy stays small
PLAN_WINDOW = 1 << 18  # samples a plan reads at once, unless told otherwise
RECALL_BYTES = 24 << 20  # true peaks a plan keeps for its next rounds: a short film's, all of them

# (start, stop) -> float32 samples [start, stop) of a signal, shape (stop - start, channels)
Reader = Callable[[int, int], "np.ndarray"]


class LoudnessMeter:
    """BS.1770-4 integrated loudness of a signal fed window by window (any window sizes, in order).

    K-weighting runs through scipy's sosfilt with its state carried from window to window
    (pyloudnorm's coefficients, read from a pyloudnorm.Meter); the squares are summed per
    segment between gating-block edges (100 ms apart: the blocks are 400 ms, 75 % overlap), and
    lufs() builds the blocks from those sums and gates them (-70 LUFS absolute, -10 LU relative)
    exactly as pyloudnorm.Meter.integrated_loudness does, block edges and all. A signal shorter
    than one block is measured as one block of its own length.
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        import numpy as np
        import pyloudnorm

        if not 1 <= channels <= len(CHANNEL_WEIGHTS):
            raise ValueError(f"BS.1770 loudness takes 1 to {len(CHANNEL_WEIGHTS)} channels, got {channels}")
        self.sample_rate, self.channels, self.frames = sample_rate, channels, 0
        # K-weighting: pyloudnorm's high shelf then high pass, as second-order sections (sosfilt runs the
        # cascade 2.4x faster than lfilter twice; the two differ by float rounding, ~1e-12)
        stages = pyloudnorm.Meter(sample_rate)._filters.values()
        self._sections = np.array([np.concatenate([f.passband_gain * np.asarray(f.b, float) / f.a[0],
                                                   np.asarray(f.a, float) / f.a[0]]) for f in stages])  # fmt: skip
        self._state = np.zeros((len(self._sections), channels, 2))
        self._edges = np.zeros(1, dtype=np.int64)  # segment k is samples [edges[k], edges[k + 1])
        self._sums = np.zeros((0, channels))  # per segment and channel: the sum of the K-weighted squares

    def feed(self, samples: np.ndarray) -> None:
        """Take the next window: float samples, shape (n,) for mono or (n, channels)."""
        import numpy as np
        from scipy.signal import sosfilt

        data = _as_channels(samples)
        if data.shape[1] != self.channels:
            raise ValueError(f"this meter measures {self.channels} channels, got samples of shape {data.shape}")
        if len(data) == 0:
            return
        rows = np.array(data.T, dtype=np.float64)  # channels first: the filter runs along contiguous rows
        weighted, self._state = sosfilt(self._sections, rows, axis=1, zi=self._state)
        start, stop = self.frames, self.frames + len(data)
        self._grid(stop)
        first = int(np.searchsorted(self._edges, start, side="right")) - 1  # the segment `start` falls in
        cuts = self._edges[(self._edges > start) & (self._edges < stop)] - start
        pieces = np.add.reduceat(np.square(weighted), np.concatenate([[0], cuts]), axis=1).T
        needed = first + len(pieces)
        if needed > len(self._sums):
            grown = np.zeros((max(needed, 2 * len(self._sums)), self.channels))
            grown[: len(self._sums)] = self._sums
            self._sums = grown
        self._sums[first:needed] += pieces
        self.frames = stop

    def lufs(self) -> float:
        """Integrated loudness of everything fed so far; -inf for silence or anything under the -70 LUFS gate."""
        import numpy as np

        n, rate = self.frames, self.sample_rate
        if n == 0:
            return SILENCE
        weights = np.asarray(CHANNEL_WEIGHTS[: self.channels])[:, None]
        if n / rate < GATE_BLOCK_S:  # one block of its own length, as integrated_lufs always measured it
            z = self._sums.sum(axis=0)[:, None] * (1.0 / ((n / rate) * rate))
            return _gated_lufs(z, weights)
        # the blocks as pyloudnorm lays them out (its rounding of the count, its truncation of the edges)
        step = 1.0 - GATE_OVERLAP
        count = int(np.round((n / rate - GATE_BLOCK_S) / (GATE_BLOCK_S * step))) + 1
        lows, highs = self._block_edges(np.arange(count))
        self._grid(int(highs[-1]))
        sums = np.zeros((len(self._edges), self.channels))
        used = min(len(self._sums), len(sums))
        sums[:used] = self._sums[:used]
        first, last = np.searchsorted(self._edges, lows), np.searchsorted(self._edges, highs)
        z = np.zeros((count, self.channels))
        for offset in range(int((last - first).max())):  # a block is a handful of segments: add them in turn
            inside = first + offset < last
            z[inside] += sums[(first + offset)[inside]]
        return _gated_lufs(z.T * (1.0 / (GATE_BLOCK_S * rate)), weights)

    def _block_edges(self, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gating block j covers samples [low, high): pyloudnorm's int(T_g * (j * step) * rate) arithmetic."""
        step = 1.0 - GATE_OVERLAP
        low = (GATE_BLOCK_S * (j * step) * self.sample_rate).astype("int64")
        high = (GATE_BLOCK_S * (j * step + 1) * self.sample_rate).astype("int64")
        return low, high

    def _grid(self, upto: int) -> None:
        """Know every block edge up to `upto` (edges only ever get added past what was already fed)."""
        import numpy as np

        if self._edges[-1] > upto:
            return
        step_samples = GATE_BLOCK_S * (1.0 - GATE_OVERLAP) * self.sample_rate
        wanted = 2 * int(upto / step_samples) + 8  # blocks whose start lies past `upto`: room for as much again
        lows, highs = self._block_edges(np.arange(wanted))
        self._edges = np.unique(np.concatenate([lows, highs]))


def _gated_lufs(z: np.ndarray, weights: np.ndarray) -> float:
    """BS.1770 gating of per-block mean squares z (channels, blocks), as pyloudnorm does it."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        blocks = -0.691 + 10.0 * np.log10((weights * z).sum(axis=0))
        above = blocks >= ABSOLUTE_GATE
        if not above.any():
            return SILENCE
        relative = -0.691 + 10.0 * np.log10((weights[:, 0] * z[:, above].mean(axis=1)).sum()) + RELATIVE_GATE
        kept = (blocks > relative) & (blocks > ABSOLUTE_GATE)
        if not kept.any():
            return SILENCE
        lufs = float(-0.691 + 10.0 * np.log10((weights[:, 0] * z[:, kept].mean(axis=1)).sum()))
    return lufs if np.isfinite(lufs) else SILENCE


def integrated_lufs(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4); -inf for silence or anything under the -70 LUFS gate.

    `samples` are float, shape (n,) for mono or (n, channels) with up to 5 channels.
    A signal shorter than one 400 ms gating block is measured as one block of its own length.
    Measured with LoudnessMeter in windows, so a long signal is never copied whole to float64.
    """
    data = _as_channels(samples)
    meter = LoudnessMeter(sample_rate, data.shape[1])
    for start in range(0, len(data), METER_WINDOW):
        meter.feed(data[start : start + METER_WINDOW])
    return meter.lufs()


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


def limiter_reach(sample_rate: int) -> int:
    """Samples on either side of a window that decide the limiter's gain inside it.

    The gain at a sample is a moving average over +-W of a running minimum over +-W of the
    needed gains, each from a true peak that sees PEAK_PAD neighbours: so computed on a
    window widened by 2W + PEAK_PAD each side (cut at the signal's real ends, where
    mode="nearest" then does what it does on the whole signal), the window's gain is the
    whole signal's.
    """
    return 2 * max(1, round(LIMITER_WINDOW_S * sample_rate)) + PEAK_PAD


class _Recall:
    """A plan's reader that keeps the true peaks of the windows it read while they fit in RECALL_BYTES.

    Each limiter round oversamples the same samples again for their true peaks, which only scale
    with the round's gain: a short film's are computed once (4 bytes a sample: a few minutes of
    film fit). Past the budget a window is oversampled each time it is asked for, as before, so
    memory stays bounded whatever the film's length. The peaks it returns are shared: callers
    must not write into them.
    """

    def __init__(self, read: Reader) -> None:
        self._read, self._room = read, RECALL_BYTES
        self._peaks: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, start: int, stop: int) -> np.ndarray:
        return self._read(start, stop)

    def true_peaks(self, start: int, stop: int, samples: np.ndarray | None = None) -> np.ndarray:
        """_true_peaks() of the samples [start, stop) (`samples`, when the caller has just read them)."""
        peaks = self._peaks.get((start, stop))
        if peaks is None:
            peaks = _true_peaks(self._read(start, stop) if samples is None else samples)
            if peaks.nbytes <= self._room:
                self._peaks[start, stop], self._room = peaks, self._room - peaks.nbytes
        return peaks


@dataclass(frozen=True)
class Normalization:
    """How to bring a signal to a loudness: a static gain, then a limiter's gain curve, then a trim.

    The curve is never held: gains(start, stop) computes it for a window from the signal the
    plan was made on (re-read through `read`, so only while that can still be read), and only
    where some true peak nearby would pass the ceiling at the planned gain; elsewhere it is 1.
    """

    gain_db: float  # static gain applied before the limiter
    trim_db: float  # static trim after the limiter (0.0 unless the curve's ripple let a true peak through)
    lufs_before: float  # measured on the input
    lufs_after: float  # measured on input * gain * limiter * trim
    true_peak_after: float  # dBTP of input * gain * limiter * trim
    limited_db: float  # the deepest gain reduction of the limiter and trim (0.0 when neither acted)
    sample_rate: int
    channels: int
    ceiling_dbfs: float
    length: int  # samples in the planned signal
    read: _Recall = field(repr=False, compare=False)  # the planned signal, window by window
    # its loudest true peak per PEAK_BLOCK samples: where the limiter may act (all 0 when the plan leaves it alone)
    block_peaks: np.ndarray = field(repr=False, compare=False)

    def gains(self, start: int, stop: int) -> np.ndarray:
        """float32 (stop - start,): static gain x limiter x trim for samples [start, stop) of the planned signal."""
        import numpy as np

        curve = _limiter_window(self, start, stop, self.gain_db)[1]
        if curve is None:
            curve = np.ones(stop - start, dtype=np.float32)
        if self.trim_db:
            curve = curve * np.float32(10 ** (self.trim_db / 20))
        return np.float32(10 ** (self.gain_db / 20)) * curve

    def apply(self, samples: np.ndarray, start: int = 0) -> np.ndarray:
        """samples * gains, as float32, for a window of any signal as long as the planned one, from `start`."""
        import numpy as np

        data = np.asarray(samples, dtype=np.float32)
        scale = self.gains(start, start + len(data))
        return (data * (scale[:, None] if data.ndim == 2 else scale)).astype(np.float32)


def plan_normalization(
    samples: np.ndarray, sample_rate: int, target_lufs: float, ceiling_dbfs: float = -1.0, *, rounds: int = 4
) -> Normalization:
    """Find the static gain and limiter curve that bring `samples` to `target_lufs` under the ceiling
    (plan_normalization_windowed over an array in memory: see there)."""
    import numpy as np

    data = _as_channels(samples).astype(np.float32, copy=False)
    return plan_normalization_windowed(lambda start, stop: data[start:stop], len(data), data.shape[1], sample_rate,
                                       target_lufs, ceiling_dbfs, rounds=rounds)  # fmt: skip


def plan_normalization_windowed(
    read: Reader,
    length: int,
    channels: int,
    sample_rate: int,
    target_lufs: float,
    ceiling_dbfs: float = -1.0,
    *,
    rounds: int = 4,
    window: int = PLAN_WINDOW,
) -> Normalization:
    """Plan the normalisation of a signal read window by window: memory is a few windows, whatever its length.

    Limiting takes a little loudness away, so the gain is raised by what is missing and the
    limiter recomputed, a few rounds at most; each round is one pass measuring the loudness
    and the true peak of the limited signal. A very peaky signal may still end short of the
    target; `lufs_after` says where it ended, measured, never assumed. A last static trim
    catches a true peak the gain curve's own ripple lets through (rare).
    """
    import numpy as np

    # 1. one pass: loudness and the loudest true peak per block; silence stays silence (no gain can make it loud)
    read = _Recall(read)
    meter = LoudnessMeter(sample_rate, channels)
    block_peaks = np.zeros(-(-length // PEAK_BLOCK), dtype=np.float32)
    window = max(PEAK_BLOCK, window // PEAK_BLOCK * PEAK_BLOCK)  # windows start on a block's first sample
    for start, stop, lo, hi in _windows(length, window, PEAK_PAD):
        chunk = read(lo, hi)
        meter.feed(chunk[start - lo : stop - lo])
        peaks = read.true_peaks(lo, hi, chunk)[start - lo : stop - lo]
        block_peaks[start // PEAK_BLOCK : -(-stop // PEAK_BLOCK)] = _block_max(peaks)
    plan = Normalization(0.0, 0.0, meter.lufs(), SILENCE, SILENCE, 0.0, sample_rate, channels, ceiling_dbfs, length,
                         read, block_peaks)  # fmt: skip
    if plan.lufs_before == SILENCE:  # left as it is: no gain, and no limiter either
        top = float(block_peaks.max()) if length else 0.0
        return replace(plan, true_peak_after=float(20 * np.log10(top)) if top > 0 else SILENCE, block_peaks=0 * block_peaks)

    # 2. static gain to the target, then the limiter under the ceiling; repeat while limiting cost loudness
    gain_db, after = target_lufs - plan.lufs_before, plan.lufs_before
    for round_ in range(max(1, rounds)):
        if round_:
            gain_db += target_lufs - after  # make up what the limiter took
        after, peak, lowest = _limited_pass(plan, gain_db, window)
        if lowest >= 1.0 or after >= target_lufs - 0.05:
            break

    # 3. a last static trim if the oversampled peak still pokes through (rare: the gain curve's own ripple)
    trim_db = 0.0
    if peak > ceiling_dbfs:
        trim_db = ceiling_dbfs - peak - 0.001
        lowest = float(np.float32(lowest) * np.float32(10 ** (trim_db / 20)))
        after, peak = after + trim_db, peak + trim_db  # both scale exactly with a static gain
    limited_db = float(20 * np.log10(lowest)) if lowest > 0 else SILENCE
    return replace(plan, gain_db=float(gain_db), trim_db=float(trim_db), lufs_after=float(after),
                   true_peak_after=float(peak), limited_db=limited_db)  # fmt: skip


def _limited_pass(plan: Normalization, gain_db: float, window: int) -> tuple[float, float, float]:
    """One pass over signal * gain * limiter: (its loudness, its true peak in dBTP, the curve's lowest value).

    Where the limiter is idle, the window's true peak is the gain times its block peaks (to float
    rounding), so it is oversampled again only if it could be the loudest of the whole signal.
    """
    import numpy as np

    scale = np.float32(10 ** (gain_db / 20))
    meter = LoudnessMeter(plan.sample_rate, plan.channels)
    top, lowest, idle = 0.0, 1.0, []
    for start, stop, lo, hi in _windows(plan.length, window, PEAK_PAD):
        signal, curve = _limiter_window(plan, lo, hi, gain_db)
        if curve is None:  # samples * 1.0 is the samples: measuring `scaled` is measuring the limited signal
            meter.feed(signal[start - lo : stop - lo] * scale)
            estimate = float(plan.block_peaks[start // PEAK_BLOCK : -(-stop // PEAK_BLOCK)].max() * scale)
            idle.append((estimate, start, stop, lo, hi))
            continue
        limited = (signal * scale) * curve[:, None]
        meter.feed(limited[start - lo : stop - lo])
        top = max(top, float(_true_peaks(limited)[start - lo : stop - lo].max()))
        lowest = min(lowest, float(curve[start - lo : stop - lo].min()))
    for estimate, start, stop, lo, hi in sorted(idle, reverse=True):  # exact, where an estimate could beat the top
        if estimate * (1 + 1e-5) < top or estimate == 0.0:
            break
        top = max(top, float((plan.read.true_peaks(lo, hi) * scale)[start - lo : stop - lo].max()))
    return meter.lufs(), (float(20 * np.log10(top)) if top > 0 else SILENCE), lowest


def _limiter_window(plan: Normalization, start: int, stop: int, gain_db: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The planned signal [start, stop) and the limiter curve there at `gain_db`, equal to the whole signal's.

    The curve needs the signal limiter_reach() samples either side; it is 1 wherever no true peak
    within that reach passes the ceiling at this gain, which the block peaks tell without reading
    it: then the curve comes back as None (all 1).
    """
    import numpy as np

    reach = limiter_reach(plan.sample_rate)
    lo, hi = max(0, start - reach), min(plan.length, stop + reach)
    nearby = plan.block_peaks[lo // PEAK_BLOCK : -(-hi // PEAK_BLOCK)]
    scale = np.float32(10 ** (gain_db / 20))
    if not len(nearby) or float((nearby * scale).max()) <= 10 ** (plan.ceiling_dbfs / 20):
        return plan.read(start, stop), None
    wide = plan.read(lo, hi)
    curve = _limiter_curve(plan.read.true_peaks(lo, hi, wide) * scale, plan.sample_rate, plan.ceiling_dbfs)
    return wide[start - lo : stop - lo], curve[start - lo : stop - lo]


def _windows(length: int, window: int, pad: int):
    """(start, stop, lo, hi) for consecutive windows [start, stop), each widened by `pad` within [0, length)."""
    for start in range(0, length, window):
        stop = min(length, start + window)
        yield start, stop, max(0, start - pad), min(length, stop + pad)


def _block_max(peaks: np.ndarray) -> np.ndarray:
    """The largest value per PEAK_BLOCK samples (the last block may be short)."""
    import numpy as np

    return np.maximum.reduceat(peaks, np.arange(0, len(peaks), PEAK_BLOCK)) if len(peaks) else peaks


def normalize_to_lufs(
    samples: np.ndarray, sample_rate: int, target_lufs: float, ceiling_dbfs: float = -1.0
) -> tuple[np.ndarray, float, float]:
    """Bring samples to `target_lufs` integrated with true peaks <= `ceiling_dbfs` (dBTP).

    Returns (samples, static gain in dB, loudness measured after). Silence comes back
    unchanged with gain 0.0 and loudness -inf. The output keeps the input's shape.
    """
    import numpy as np

    data = _as_channels(samples)
    plan = plan_normalization(data, sample_rate, target_lufs, ceiling_dbfs)
    windows = _windows(len(data), PEAK_WINDOW, 0)
    out = np.concatenate([plan.apply(data[s:e], s) for s, e, _, _ in windows] or [data.astype(np.float32)])
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
    rows = np.ascontiguousarray(np.asarray(data, dtype=np.float32).T)  # channels first: contiguous rows are fast
    magnitude = np.abs(rows[0])
    for row in rows[1:]:
        np.maximum(magnitude, np.abs(row), out=magnitude)
    if n < 8:
        return magnitude
    between = np.empty(n, dtype=np.float32)  # the loudest sub-sample between sample k and k+1
    for start in range(0, n, PEAK_WINDOW):
        stop = min(n, start + PEAK_WINDOW)
        lo, hi = max(0, start - PEAK_PAD), min(n, stop + PEAK_PAD)
        between[start:stop] = _between_peaks(rows[:, lo:hi])[start - lo : stop - lo]
    peaks = np.maximum(magnitude, between)
    peaks[1:] = np.maximum(peaks[1:], between[:-1])
    return peaks


def _between_peaks(rows: np.ndarray) -> np.ndarray:
    """For each sample k of `rows` (channels, n): the largest |value| of the 4x-oversampled sub-samples 4k .. 4k+3."""
    import numpy as np
    from scipy.signal import resample_poly

    n = rows.shape[1]
    up = resample_poly(rows, OVERSAMPLING, 1, axis=1, window=_oversampling_filter())[:, : n * OVERSAMPLING]
    loudest = np.abs(up[0])
    for row in up[1:]:
        np.maximum(loudest, np.abs(row), out=loudest)
    loudest = loudest.astype(np.float32)  # rounding is monotonic: the max of the rounded is the rounded max
    between = loudest[0::OVERSAMPLING].copy()
    for phase in range(1, OVERSAMPLING):
        np.maximum(between, loudest[phase::OVERSAMPLING], out=between)
    return between


@functools.cache
def _oversampling_filter() -> np.ndarray:
    """A 49-tap low-pass interpolation filter for 4x (BS.1770-4 Annex 2 uses 48 taps, 12 per phase), made once."""
    from scipy.signal import firwin

    return firwin(12 * OVERSAMPLING + 1, 1.0 / OVERSAMPLING, window=("kaiser", 6.0))  # resample_poly scales by 4
