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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
PEAK_REACH = 8  # a sample's true peak depends on samples at most this far away (the 4x filter's 6, and the gap after)
LEVEL_SLACK = 1e-6  # blocks this close under a level are made exact too: float32 rounding of the gain can't move them
LOUDEST_BATCH = 16  # the loudest bounds, oversampled first while looking for the loudest peak
GATE_BLOCK_S, GATE_OVERLAP = 0.4, 0.75  # BS.1770 gating blocks: 400 ms, 75 % overlap (as pyloudnorm)
ABSOLUTE_GATE, RELATIVE_GATE = -70.0, -10.0  # LUFS, and LU under the absolutely-gated loudness
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 G_i: L, R, C, Ls, Rs (pyloudnorm's values)
METER_WINDOW = 1 << 16  # samples a meter filters at once: its float64 copies stay small
PLAN_WINDOW = 1 << 18  # samples a plan reads at once, unless told otherwise
RECALL_BYTES = 28 << 20  # samples and true peaks a plan keeps for its next passes: a short film's, all of them

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

    def __init__(self, sample_rate: int, channels: int, weights: tuple[float, ...] | None = None, *,
                 keep_states: bool = False) -> None:  # fmt: skip
        import numpy as np
        import pyloudnorm

        if not 1 <= channels <= len(CHANNEL_WEIGHTS):
            raise ValueError(f"BS.1770 loudness takes 1 to {len(CHANNEL_WEIGHTS)} channels, got {channels}")
        self.sample_rate, self.channels, self.frames = sample_rate, channels, 0
        # BS.1770's G_i per channel; a centred mono source heard on two speakers is (2.0,): L = R, twice the power
        self.weights = CHANNEL_WEIGHTS[:channels] if weights is None else tuple(weights)
        # K-weighting: pyloudnorm's high shelf then high pass, as second-order sections (sosfilt runs the
        # cascade 2.4x faster than lfilter twice; the two differ by float rounding, ~1e-12)
        stages = pyloudnorm.Meter(sample_rate)._filters.values()
        self._sections = np.array([np.concatenate([f.passband_gain * np.asarray(f.b, float) / f.a[0],
                                                   np.asarray(f.a, float) / f.a[0]]) for f in stages])  # fmt: skip
        self._state = np.zeros((len(self._sections), channels, 2))
        self._edges = np.zeros(1, dtype=np.int64)  # segment k is samples [edges[k], edges[k + 1])
        self._sums = np.zeros((0, channels))  # per segment and channel: the sum of the K-weighted squares
        # with keep_states, the filters' state where each segment starts (what a plan's limiter rounds start from)
        self._states = np.zeros((0, *self._state.shape)) if keep_states else None

    def feed(self, samples: np.ndarray) -> None:
        """Take the next window: float samples, shape (n,) for mono or (n, channels)."""
        data = _as_channels(samples)
        if data.shape[1] != self.channels:
            raise ValueError(f"this meter measures {self.channels} channels, got samples of shape {data.shape}")
        for at in range(0, len(data), METER_WINDOW):  # a slice at a time: its float64 copies stay small
            self._feed(data[at : at + METER_WINDOW])

    def _feed(self, data: np.ndarray) -> None:
        import numpy as np
        from scipy.signal import sosfilt

        rows = np.array(data.T, dtype=np.float64)  # channels first: the filter runs along contiguous rows
        start, stop = self.frames, self.frames + len(data)
        self._grid(stop)
        first = int(np.searchsorted(self._edges, start, side="right")) - 1  # the segment `start` falls in
        cuts = np.concatenate([[0], self._edges[(self._edges > start) & (self._edges < stop)] - start])
        if self._states is None:
            weighted, self._state = sosfilt(self._sections, rows, axis=1, zi=self._state)
            pieces = np.add.reduceat(np.square(weighted), cuts, axis=1).T
        else:  # a segment at a time, keeping the state each one starts from
            pieces = np.zeros((len(cuts), self.channels))
            self._states = _grown(self._states, first + len(cuts))
            for i, (low, high) in enumerate(zip(cuts, [*cuts[1:], len(data)])):
                if start + low == self._edges[first + i]:
                    self._states[first + i] = self._state
                weighted, self._state = sosfilt(self._sections, rows[:, low:high], axis=1, zi=self._state)
                pieces[i] = np.square(weighted).sum(axis=1)
        self._sums = _grown(self._sums, first + len(pieces))
        self._sums[first : first + len(pieces)] += pieces
        self.frames = stop

    def replayed(self, scale: float, segments: np.ndarray, read: Reader) -> float:
        """The loudness of the signal fed so far times `scale`, with the given segments (sorted indices)
        replaced by what `read` gives there (a meter made with keep_states only).

        K-weighting is linear: where a signal is the fed one times `scale`, so are the filters' output and
        state, and the segments' sums are scale² times the fed ones. Each run of replaced segments is filtered
        again from the state it starts from, times `scale`; after it, segments are filtered again (from
        `read` too, which there must give the scaled signal) until the state is the scaled one again: the
        filters forget within a few hundred milliseconds."""
        import numpy as np
        from scipy.signal import sosfilt

        sums, state = self._sums * scale**2, None
        replaced = np.zeros(len(sums) + 1, dtype=bool)
        replaced[segments] = True
        k, end = int(segments[0]) if len(segments) else len(sums), int(np.searchsorted(self._edges, self.frames))
        while k < end:
            if not replaced[k] and (state is None or _settled(state, self._states[k] * scale)):
                state, k = None, k + 1  # the scaled signal with the scaled state: the fed sums hold
                continue
            if state is None:
                state = self._states[k] * scale
            low, high = int(self._edges[k]), min(self.frames, int(self._edges[k + 1]))
            weighted, state = sosfilt(self._sections, np.array(read(low, high).T, dtype=np.float64), axis=1, zi=state)
            sums[k] = np.square(weighted).sum(axis=1)
            k += 1
        return self._gated(sums)

    def segments_over(self, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
        """The sorted indices of the fed segments that overlap any of the ranges [lows[i], highs[i])."""
        import numpy as np

        first = (np.searchsorted(self._edges, lows, side="right") - 1).clip(0)
        past = np.searchsorted(self._edges, highs, side="left")  # past the last segment each range overlaps
        marks = np.zeros(len(self._edges) + 1, dtype=np.int64)
        np.add.at(marks, first, 1)
        np.add.at(marks, past, -1)
        return np.flatnonzero(np.cumsum(marks)[: np.searchsorted(self._edges, self.frames)] > 0)

    def lufs(self) -> float:
        """Integrated loudness of everything fed so far; -inf for silence or anything under the -70 LUFS gate."""
        return self._gated(self._sums)

    def _gated(self, segment_sums: np.ndarray) -> float:
        """The gated loudness of the fed length, from the per-segment sums of the K-weighted squares."""
        import numpy as np

        n, rate = self.frames, self.sample_rate
        if n == 0:
            return SILENCE
        weights = np.asarray(self.weights)[:, None]
        if n / rate < GATE_BLOCK_S:  # one block of its own length, as integrated_lufs always measured it
            z = segment_sums.sum(axis=0)[:, None] * (1.0 / ((n / rate) * rate))
            return _gated_lufs(z, weights)
        # the blocks as pyloudnorm lays them out (its rounding of the count, its truncation of the edges)
        step = 1.0 - GATE_OVERLAP
        count = int(np.round((n / rate - GATE_BLOCK_S) / (GATE_BLOCK_S * step))) + 1
        lows, highs = self._block_edges(np.arange(count))
        self._grid(int(highs[-1]))
        sums = np.zeros((len(self._edges), self.channels))
        used = min(len(segment_sums), len(sums))
        sums[:used] = segment_sums[:used]
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


def _grown(rows: np.ndarray, needed: int) -> np.ndarray:
    """`rows` with room for at least `needed` rows (doubling, zeros after the old ones)."""
    import numpy as np

    if needed <= len(rows):
        return rows
    grown = np.zeros((max(needed, 2 * len(rows)), *rows.shape[1:]))
    grown[: len(rows)] = rows
    return grown


def _settled(state: np.ndarray, target: np.ndarray) -> bool:
    """Whether a filter state is `target` again, to float32 rounding (the signals are float32)."""
    import numpy as np

    return bool(np.abs(state - target).max() <= 1e-6 * np.abs(target).max() + 1e-12)


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
    meter.feed(data)
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
    """limiter_gain() from precomputed per-sample true peaks (they scale with any static gain).

    The curve is 1 but within 2W + 1 samples of a peak over the ceiling, so the two window operations
    run only on the stretches around those peaks (each stretch reaching 1s on both sides, so it gets
    what the whole signal would); a film's few loud moments cost their own length, not the film's."""
    import numpy as np
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = 10 ** (ceiling_dbfs / 20)
    curve = np.ones(len(peaks), dtype=np.float32)
    loud = np.flatnonzero(peaks > ceiling)
    if not len(loud):
        return curve
    # each of the two operations spreads a dip `half` samples either side: together under `width`
    width = 2 * max(1, round(LIMITER_WINDOW_S * sample_rate)) + 1
    gaps = np.flatnonzero(np.diff(loud) > 2 * width + 2)  # stretches that do not touch each other
    for first, last in zip(loud[np.concatenate([[0], gaps + 1])], loud[np.concatenate([gaps, [len(loud) - 1]])]):
        lo, hi = max(0, first - 2 * width), min(len(peaks), last + 1 + 2 * width)  # the stretch, and 1s around it
        needed = np.minimum(1.0, ceiling / np.maximum(peaks[lo:hi], 1e-12))
        held = minimum_filter1d(needed, size=width, mode="nearest")
        smooth = np.minimum(uniform_filter1d(held, size=width, mode="nearest"), needed)  # min(): float rounding
        keep_lo, keep_hi = max(0, first - width), min(len(peaks), last + 1 + width)  # all the stretch dips
        curve[keep_lo:keep_hi] = smooth[keep_lo - lo : keep_hi - lo]
    return curve


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
    """A plan's reader that keeps what it read while it fits in RECALL_BYTES.

    Each pass of a plan (its limiter rounds, then writing) reads the same signal again. The samples
    are kept on a grid of `window` samples: a grid window is read once and any range is put together
    from the grid. A short film's windows all fit (8 bytes a stereo sample: about 70 s at 48 kHz, less
    what the plan's true peaks take of the same budget). Past the budget a range is read again each
    time it is asked for, so memory stays bounded whatever the film's length. What it returns may be
    shared: callers must not write into it.
    """

    def __init__(self, read: Reader, length: int, channels: int, window: int) -> None:
        self._read, self.length, self._channels, self._window = read, length, channels, window
        self._room = RECALL_BYTES
        self._samples: dict[int, np.ndarray] = {}
        self._last = (0, 0, None)  # past the budget: the last range read, PEAK_PAD wider, for its peaks

    def __call__(self, start: int, stop: int) -> np.ndarray:
        """float32 (stop - start, channels): the signal's samples [start, stop)."""
        import numpy as np

        first, last = start // self._window, max(start // self._window, -(-stop // self._window) - 1)
        missing = [k for k in range(first, last + 1) if k not in self._samples]
        if sum(stop - start for start, stop in map(self._bounds, missing)) * 4 * self._channels > self._room:
            return self._read_range(start, stop)  # past the budget: the range alone, read again
        for k in missing:
            self._samples[k] = self._read(*self._bounds(k))
            self._room -= self._samples[k].nbytes
        pieces = [self._samples[k] for k in range(first, last + 1)]
        whole = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return whole[start - first * self._window : stop - first * self._window]

    def take_room(self, nbytes: int) -> bool:
        """Take `nbytes` of the budget for something worked out from the signal (its true peaks), if they fit."""
        if nbytes > self._room:
            return False
        self._room -= nbytes
        return True

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        """Read [start, stop) with PEAK_PAD more each side, kept until the next read: asking for the range's
        neighbours next (its true peaks need them) reads nothing again."""
        lo, hi, data = self._last
        if data is None or not lo <= start <= stop <= hi:
            lo, hi = max(0, start - PEAK_PAD), min(self.length, stop + PEAK_PAD)
            data = self._read(lo, hi)
            self._last = (lo, hi, data)
        return data[start - lo : stop - lo]

    def _bounds(self, k: int) -> tuple[int, int]:
        """Grid window k: samples [start, stop)."""
        return k * self._window, min(self.length, (k + 1) * self._window)


class _BlockPeaks:
    """The loudest true peak of each PEAK_BLOCK samples of a plan's signal, oversampled only where it matters.

    Oversampling is most of what measuring a film's peaks costs, and only the loud stretches can
    make the limiter act or hold the loudest peak. So the first pass gives every block a bound: its
    sample peak (with PEAK_REACH neighbours) times the 4x filter's largest gain over one phase, which
    no true peak there can pass. A block is oversampled (made exact) only when a question needs it:
    whether it passes a level (over), its per-sample peaks where the limiter may act (samples), the
    loudest of them all (loudest). Everything these answer is what exact peaks everywhere would give.
    Exact blocks keep their per-sample peaks while the reader's budget has room; past it they are
    oversampled again when asked for.
    """

    def __init__(self, read: _Recall) -> None:
        import numpy as np

        self._read = read
        count = -(-read.length // PEAK_BLOCK)
        self.values = np.zeros(count, dtype=np.float32)  # exact where `exact`, else the bound (never under it)
        self.exact = np.zeros(count, dtype=bool)
        self._kept: dict[int, np.ndarray] = {}  # exact blocks' per-sample true peaks, while they fit
        self._sample_peaks = np.zeros((3, count), dtype=np.float32)  # pass 1: each block's |x| max, first and last

    def bound(self, start: int, samples: np.ndarray) -> None:
        """Pass 1: take the sample peaks of the window starting at `start` (on a block's first sample)."""
        import numpy as np

        n, channels = samples.shape
        blocks = -(-n // PEAK_BLOCK)
        rows = np.zeros((blocks, PEAK_BLOCK * channels), dtype=np.float32)  # a block's samples, channels interleaved
        np.abs(samples.reshape(-1), out=rows.reshape(-1)[: n * channels])
        reach = PEAK_REACH * channels
        first = start // PEAK_BLOCK
        self._sample_peaks[:, first : first + blocks] = (rows.max(axis=1), rows[:, :reach].max(axis=1),
                                                         rows[:, -reach:].max(axis=1))  # fmt: skip

    def bounded(self) -> _BlockPeaks:
        """Pass 1 is done: each block's bound, from its own sample peak and its neighbours' nearest samples."""
        import numpy as np

        whole, head, tail = self._sample_peaks
        near = whole.copy()
        np.maximum(near[1:], tail[:-1], out=near[1:])  # the previous block's last samples
        np.maximum(near[:-1], head[1:], out=near[:-1])  # the next block's first samples
        self.values = (near * np.float32(_bound_factor())).astype(np.float32)
        del self._sample_peaks
        return self

    def silenced(self) -> _BlockPeaks:
        """All zero and exact: a plan that leaves its signal alone never limits it."""
        self.values[:] = 0.0
        self.exact[:] = True
        return self

    def over(self, level: float, first: int = 0, last: int | None = None) -> np.ndarray:
        """The block peaks first..last (all of them by default), exact wherever they pass `level`: every block
        whose bound passes it is oversampled first. Blocks left at their bound are under the level."""
        import numpy as np

        last = len(self.values) if last is None else last
        rough = np.flatnonzero(~self.exact[first:last] & (self.values[first:last] > level * (1 - LEVEL_SLACK)))
        if len(rough):
            self._oversample(rough + first)
        return self.values[first:last]

    def samples(self, lo: int, hi: int, level: float) -> np.ndarray:
        """float32 (hi - lo,): each sample's true peak wherever its block's passes `level`, 0 elsewhere (where
        the true peaks are all under the level: to a limiter at that level, the same)."""
        import numpy as np

        first, last = lo // PEAK_BLOCK, -(-hi // PEAK_BLOCK)
        loud = np.flatnonzero(self.over(level, first, last) > level * (1 - LEVEL_SLACK)) + first
        out = np.zeros(hi - lo, dtype=np.float32)
        again = [block for block in loud.tolist() if block not in self._kept]
        fresh = dict(self._oversampled(_runs(np.array(again, dtype=np.int64)))) if again else {}
        for block in loud.tolist():
            peaks = self._kept.get(block)
            if peaks is None:
                peaks = fresh[block]
            b_lo, b_hi = block * PEAK_BLOCK, min(self._read.length, (block + 1) * PEAK_BLOCK)
            out[max(b_lo, lo) - lo : min(b_hi, hi) - lo] = peaks[max(b_lo, lo) - b_lo : min(b_hi, hi) - b_lo]
        return out

    def loudest(self, scale: float, top: float = 0.0, skip: np.ndarray | None = None) -> float:
        """The loudest true peak of the signal times `scale` over the blocks not in `skip`, or `top` if that
        is louder: blocks are oversampled, loudest bound first, only while their bound could beat the top."""
        import numpy as np

        scale = np.float32(scale)
        open_ = np.ones(len(self.values), dtype=bool) if skip is None else ~skip
        while True:
            scaled = self.values * scale
            known = open_ & self.exact
            if known.any():
                top = max(top, float(scaled[known].max()))
            rough = np.flatnonzero(open_ & ~self.exact & (scaled > 0) & (scaled * (1 + 1e-5) >= top))
            if not len(rough):
                return top
            if not top:  # nothing to beat yet: the loudest bounds first, then every bound that could beat them
                rough = rough[np.argsort(self.values[rough])[-LOUDEST_BATCH:]]
            self._oversample(np.sort(rough))

    def _oversample(self, blocks: np.ndarray) -> None:
        """Make the given blocks exact (sorted indices), keeping their per-sample peaks if the budget allows."""
        for block, peaks in self._oversampled(_runs(blocks)):
            self.values[block] = peaks.max()
            self.exact[block] = True
            if self._read.take_room(peaks.nbytes):
                self._kept[block] = peaks

    def _oversampled(self, runs: list[tuple[int, int]]) -> Iterator[tuple[int, np.ndarray]]:
        """(block, its per-sample true peaks) for every block of the runs [first, last), each run oversampled
        with PEAK_PAD neighbours (so exactly as the whole signal would be), two runs at once (the filter
        releases the GIL); the samples are read on this thread only, a batch of about PLAN_WINDOW at a time."""
        length = self._read.length

        def peaks_of(lo: int, start: int, stop: int, hi: int, data: np.ndarray) -> np.ndarray:
            return _true_peaks(data[start - lo : stop - lo], data[: start - lo], data[stop - lo :])

        with ThreadPoolExecutor(2) as pool:
            for batch in _batches(runs, PLAN_WINDOW):
                jobs = []
                for first, last in batch:
                    start, stop = first * PEAK_BLOCK, min(length, last * PEAK_BLOCK)
                    lo, hi = max(0, start - PEAK_PAD), min(length, stop + PEAK_PAD)
                    jobs.append((first, start, pool.submit(peaks_of, lo, start, stop, hi, self._read(lo, hi))))
                for first, start, job in jobs:
                    peaks = job.result()
                    for at in range(0, len(peaks), PEAK_BLOCK):
                        yield first + at // PEAK_BLOCK, peaks[at : at + PEAK_BLOCK]


def _runs(blocks: np.ndarray) -> list[tuple[int, int]]:
    """Sorted block indices as runs [first, last) of consecutive blocks."""
    import numpy as np

    if not len(blocks):
        return []
    breaks = np.flatnonzero(np.diff(blocks) > 1)
    firsts = np.concatenate([[blocks[0]], blocks[breaks + 1]])
    lasts = np.concatenate([blocks[breaks], [blocks[-1]]]) + 1
    return list(zip(firsts.tolist(), lasts.tolist()))


def _batches(runs: list[tuple[int, int]], samples: int) -> Iterator[list[tuple[int, int]]]:
    """The runs in batches of about `samples` samples (a run longer than that is cut into pieces)."""
    most = max(1, samples // PEAK_BLOCK)
    batch, size = [], 0
    for first, last in runs:
        for piece in range(first, last, most):
            batch.append((piece, min(last, piece + most)))
            size += min(last, piece + most) - piece
            if size >= most:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


@functools.cache
def _bound_factor() -> float:
    """The most the 4x filter can make of samples no louder than 1: the largest L1 norm among its four
    phases (about 1.856), with room for float rounding. A sample's true peak looks at most PEAK_REACH
    samples away, so this times the sample peak within that reach bounds it."""
    import numpy as np

    taps = OVERSAMPLING * _oversampling_filter()  # resample_poly scales the filter by the factor
    return float(max(np.abs(taps[phase::OVERSAMPLING]).sum() for phase in range(OVERSAMPLING)) * (1 + 1e-5))


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
    peaks: _BlockPeaks = field(repr=False, compare=False)

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
    limiter recomputed, a few rounds at most; each round measures the limited signal's loudness
    again only where the limiter acts (elsewhere it is the first pass's, times the gain), and the
    last round's true peak is measured once. A very peaky signal may still end short of the
    target; `lufs_after` says where it ended, measured, never assumed. A last static trim
    catches a true peak the gain curve's own ripple lets through (rare).
    """
    import numpy as np

    # 1. one pass: loudness, and a bound on the true peaks of each block (oversampled later, where they matter);
    #    silence stays silence (no gain can make it loud)
    meter = LoudnessMeter(sample_rate, channels, keep_states=True)  # the limiter rounds start from its states
    window = max(PEAK_BLOCK, window // PEAK_BLOCK * PEAK_BLOCK)  # windows start on a block's first sample
    read = _Recall(read, length, channels, window)
    peaks = _BlockPeaks(read)
    with ThreadPoolExecutor(1) as pool:  # a window is metered on a thread of its own while the next one is read
        metering = None
        for start, stop, _, _ in _windows(length, window, 0):
            samples = read(start, stop)
            if metering:
                metering.result()
            metering = pool.submit(meter.feed, samples)  # the filters release the GIL
            peaks.bound(start, samples)
        if metering:
            metering.result()
    plan = Normalization(0.0, 0.0, meter.lufs(), SILENCE, SILENCE, 0.0, sample_rate, channels, ceiling_dbfs, length,
                         read, peaks.bounded())  # fmt: skip
    if plan.lufs_before == SILENCE:  # left as it is: no gain, and no limiter either
        top = peaks.loudest(1.0)
        return replace(plan, true_peak_after=float(20 * np.log10(top)) if top > 0 else SILENCE,
                       peaks=peaks.silenced())  # fmt: skip

    # 2. static gain to the target, then the limiter under the ceiling; repeat while limiting cost loudness
    gain_db, after = target_lufs - plan.lufs_before, plan.lufs_before
    for round_ in range(max(1, rounds)):
        if round_:
            gain_db += target_lufs - after  # make up what the limiter took
        after, lowest = _limited_loudness(plan, meter, gain_db)
        if lowest >= 1.0 or after >= target_lufs - 0.05:
            break
    peak = _limited_true_peak(plan, gain_db, window)  # of the last round only: no round before needs it

    # 3. a last static trim if the oversampled peak still pokes through (rare: the gain curve's own ripple)
    trim_db = 0.0
    if peak > ceiling_dbfs:
        trim_db = ceiling_dbfs - peak - 0.001
        lowest = float(np.float32(lowest) * np.float32(10 ** (trim_db / 20)))
        after, peak = after + trim_db, peak + trim_db  # both scale exactly with a static gain
    limited_db = float(20 * np.log10(lowest)) if lowest > 0 else SILENCE
    return replace(plan, gain_db=float(gain_db), trim_db=float(trim_db), lufs_after=float(after),
                   true_peak_after=float(peak), limited_db=limited_db)  # fmt: skip


def _limited_loudness(plan: Normalization, meter: LoudnessMeter, gain_db: float) -> tuple[float, float]:
    """The loudness of signal * gain * limiter, and the curve's lowest value, from pass 1's meter: only
    the segments the limiter may touch are measured again (LoudnessMeter.replayed)."""
    import numpy as np

    scale = np.float32(10 ** (gain_db / 20))
    lowest = 1.0

    def limited(start: int, stop: int) -> np.ndarray:
        nonlocal lowest
        signal, curve = _limiter_window(plan, start, stop, gain_db)
        if curve is None:  # samples * 1.0 is the samples: measuring `scaled` is measuring the limited signal
            return signal * scale
        lowest = min(lowest, float(curve.min()))
        return (signal * scale) * curve[:, None]

    return meter.replayed(float(scale), _limited_segments(plan, meter, scale), limited), lowest


def _limited_segments(plan: Normalization, meter: LoudnessMeter, scale: np.float32) -> np.ndarray:
    """The meter's segments the limiter may act in at this scale: within limiter_reach() of a block whose
    true peak would pass the ceiling (as _limiter_acts tells)."""
    import numpy as np

    level = _level(plan, scale)
    acting = np.flatnonzero(plan.peaks.over(level) * scale > 10 ** (plan.ceiling_dbfs / 20))
    reach = limiter_reach(plan.sample_rate)
    return meter.segments_over(acting * PEAK_BLOCK - reach, (acting + 1) * PEAK_BLOCK + reach)


def _limited_true_peak(plan: Normalization, gain_db: float, window: int) -> float:
    """The true peak of signal * gain * limiter, in dBTP.

    Where the limiter touches the signal, those stretches are oversampled again, limited. Elsewhere the
    limited signal is the scaled signal, whose true peaks are the gain times the plan's: the loudest of
    them is found oversampling only the blocks whose bound could beat the top.
    """
    import numpy as np

    scale = np.float32(10 ** (gain_db / 20))
    top, touched = 0.0, np.zeros(len(plan.peaks.values), dtype=bool)
    for start, stop, lo, hi in _windows(plan.length, window, PEAK_PAD):
        curve = _limiter_gains(plan, lo, hi, gain_db)
        if curve is not None:
            window_top, blocks = _touched_peak(plan, scale, curve, lo, start, stop)
            top = max(top, window_top)
            touched[start // PEAK_BLOCK : start // PEAK_BLOCK + len(blocks)] = blocks
    top = plan.peaks.loudest(scale, top, skip=touched)
    return float(20 * np.log10(top)) if top > 0 else SILENCE


def _touched_peak(plan: Normalization, scale: np.float32, curve: np.ndarray, lo: int, start: int,
                  stop: int) -> tuple[float, np.ndarray]:  # fmt: skip
    """The largest true peak of signal * scale * curve (the curve given over [lo, lo + len(curve))) where the
    curve touches [start, stop), and which PEAK_BLOCKs of [start, stop) it touches (a block whose samples and
    PEAK_PAD neighbours the curve leaves at 1 has the scaled signal's peaks: not measured here). Touched
    blocks are read and oversampled again, limited, in runs."""
    import numpy as np

    hi = lo + len(curve)
    edges = np.arange(start, stop + PEAK_BLOCK, PEAK_BLOCK).clip(max=stop)  # block b is [edges[b], edges[b + 1])
    dips = np.flatnonzero(curve < 1.0) + lo
    touched = np.searchsorted(dips, edges[1:] + PEAK_PAD) > np.searchsorted(dips, edges[:-1] - PEAK_PAD)
    top = 0.0
    runs = np.flatnonzero(np.diff(np.concatenate([[0], touched.astype(np.int8), [0]])))
    for first, last in zip(runs[0::2], runs[1::2]):  # touched blocks [first, last)
        run_lo, run_hi = int(edges[first]), int(edges[last])
        wide_lo, wide_hi = max(lo, run_lo - PEAK_PAD), min(hi, run_hi + PEAK_PAD)
        limited = (plan.read(wide_lo, wide_hi) * scale) * curve[wide_lo - lo : wide_hi - lo, None]
        top = max(top, float(_true_peaks(limited)[run_lo - wide_lo : run_hi - wide_lo].max()))
    return top, touched


def _limiter_window(plan: Normalization, start: int, stop: int, gain_db: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The planned signal [start, stop) and the limiter curve there at `gain_db` (see _limiter_gains)."""
    return plan.read(start, stop), _limiter_gains(plan, start, stop, gain_db)


def _limiter_gains(plan: Normalization, start: int, stop: int, gain_db: float) -> np.ndarray | None:
    """The limiter curve over [start, stop) at `gain_db`, equal to the whole signal's (None where the limiter
    is idle: all 1). The curve needs the signal limiter_reach() samples either side, and the true peaks only
    where they pass the ceiling (a peak under it leaves the curve at 1, whatever it is)."""
    import numpy as np

    if not _limiter_acts(plan, start, stop, gain_db):
        return None
    reach = limiter_reach(plan.sample_rate)
    lo, hi = max(0, start - reach), min(plan.length, stop + reach)
    scale = np.float32(10 ** (gain_db / 20))
    peaks = plan.peaks.samples(lo, hi, _level(plan, scale)) * scale
    return _limiter_curve(peaks, plan.sample_rate, plan.ceiling_dbfs)[start - lo : stop - lo]


def _limiter_acts(plan: Normalization, start: int, stop: int, gain_db: float) -> bool:
    """Whether some true peak within limiter_reach() of [start, stop) passes the ceiling at `gain_db`: the
    block peaks tell, without reading the signal (but for blocks whose bound could pass it)."""
    import numpy as np

    reach = limiter_reach(plan.sample_rate)
    lo, hi = max(0, start - reach), min(plan.length, stop + reach)
    scale = np.float32(10 ** (gain_db / 20))
    nearby = plan.peaks.over(_level(plan, scale), lo // PEAK_BLOCK, -(-hi // PEAK_BLOCK))
    return bool(len(nearby)) and float((nearby * scale).max()) > 10 ** (plan.ceiling_dbfs / 20)


def _level(plan: Normalization, scale: np.float32) -> float:
    """The true peak that passes the ceiling once scaled (before float32 rounding: see LEVEL_SLACK)."""
    return 10 ** (plan.ceiling_dbfs / 20) / float(scale)


def _windows(length: int, window: int, pad: int):
    """(start, stop, lo, hi) for consecutive windows [start, stop), each widened by `pad` within [0, length)."""
    for start in range(0, length, window):
        stop = min(length, start + window)
        yield start, stop, max(0, start - pad), min(length, stop + pad)


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


def _true_peaks(data: np.ndarray, before: np.ndarray | None = None, after: np.ndarray | None = None) -> np.ndarray:
    """Per sample of `data`: the largest |value| among its 4x-oversampled neighbours, across channels.

    `before` and `after` are the signal's samples just before and after `data` (none: data's ends are the
    signal's), seen as its neighbours. Oversampled in windows of PEAK_WINDOW samples, each with PEAK_PAD
    samples of its neighbours on either side (more than the filter reaches), so the memory it takes is one
    window's, not the signal's times four, and every window's interior is what oversampling the whole
    signal gives. Only the windows at data's ends are put together from two arrays.
    """
    import numpy as np

    pieces = [piece for piece in (before, data, after) if piece is not None and len(piece)]
    offsets = np.cumsum([0, *map(len, pieces)])
    head, size = (len(before) if before is not None else 0), int(offsets[-1])
    if size < 8:  # too short to oversample: the samples' own magnitudes
        return np.abs(np.asarray(data, dtype=np.float32)).max(axis=1, initial=0.0)

    def span(lo: int, hi: int) -> np.ndarray:  # samples [lo, hi) of before + data + after, channels first
        parts = [piece[max(0, lo - at) : max(0, hi - at)] for piece, at in zip(pieces, offsets)]
        parts = [part for part in parts if len(part)]
        joined = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return np.ascontiguousarray(np.asarray(joined, dtype=np.float32).T)  # contiguous rows are fast

    first = max(0, head - 1)  # from the sample before data, if any: data's first peak looks between the two
    peaks = np.empty(head + len(data) - first, dtype=np.float32)
    previous = np.float32(0.0)  # the loudest sub-sample between the last window's last sample and this one's first
    for start in range(first, head + len(data), PEAK_WINDOW):
        stop = min(head + len(data), start + PEAK_WINDOW)
        lo, hi = max(0, start - PEAK_PAD), min(size, stop + PEAK_PAD)
        rows = span(lo, hi)
        magnitude = np.abs(rows[0, start - lo : stop - lo])
        for row in rows[1:]:
            np.maximum(magnitude, np.abs(row[start - lo : stop - lo]), out=magnitude)
        between = _between_peaks(rows)[start - lo : stop - lo]  # the loudest sub-sample between k and k+1
        window = peaks[start - first : stop - first]
        np.maximum(magnitude, between, out=window)
        np.maximum(window[1:], between[:-1], out=window[1:])
        window[0] = max(window[0], previous)
        previous = between[-1]
    return peaks[head - first :]


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
