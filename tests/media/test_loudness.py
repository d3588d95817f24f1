"""Loudness: BS.1770 readings match the standard's reference, normalising reaches the target
as an independent meter reads it, and the limiter never lets a peak through."""

from __future__ import annotations

import warnings

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample

from storyflow.media.loudness import (
    integrated_lufs,
    limiter_gain,
    normalize_to_lufs,
    true_peak_dbfs,
)

RATE = 48_000


def sine(freq: float, seconds: float, amplitude: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def oversampled_peak_db(x: np.ndarray, factor: int = 8) -> float:
    """An independent true-peak reading: FFT resampling at 8x (not the code's 4x polyphase)."""
    up = resample(x.astype(np.float64), len(x) * factor, axis=0)
    return float(20 * np.log10(np.abs(up).max()))


def speechy_noise(seconds: float, level: float, seed: int = 0) -> np.ndarray:
    """Stereo noise that comes and goes in 0.3 s bursts, like speech or music phrases."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    envelope = (np.sin(2 * np.pi * np.arange(n) / RATE / 0.6) > -0.2).astype(np.float32)
    return (rng.standard_normal((n, 2)) * level * envelope[:, None]).astype(np.float32)


def test_a_997_hz_sine_reads_as_bs1770_specifies():
    # BS.1770-4: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS; in two channels +3 dB more
    half = sine(997, 3.0, 0.5)
    left_only = np.stack([half, np.zeros_like(half)], axis=1)
    assert integrated_lufs(left_only, RATE) == pytest.approx(-3.01 + 20 * np.log10(0.5), abs=0.1)
    assert integrated_lufs(np.stack([half, half], axis=1), RATE) == pytest.approx(20 * np.log10(0.5), abs=0.1)
    assert integrated_lufs(half, RATE) == pytest.approx(-3.01 + 20 * np.log10(0.5), abs=0.1)  # mono


def test_normalising_reaches_the_target_as_an_independent_meter_reads_it():
    quiet = speechy_noise(6.0, 0.01)
    before = pyloudnorm.Meter(RATE).integrated_loudness(quiet.astype(np.float64))
    out, gain_db, after = normalize_to_lufs(quiet, RATE, -16.0)
    measured = pyloudnorm.Meter(RATE).integrated_loudness(out.astype(np.float64))
    assert out.shape == quiet.shape and out.dtype == np.float32
    assert abs(measured - -16.0) < 0.5
    assert after == pytest.approx(measured, abs=0.05)  # what it reports is what is there
    assert gain_db == pytest.approx(-16.0 - before, abs=0.5)


def test_the_limiter_keeps_every_peak_under_the_ceiling_and_still_reaches_the_target():
    # quiet noise with loud clicks: plain gain to -16 LUFS would put the clicks far above 0 dBFS
    x = speechy_noise(6.0, 0.003, seed=1)
    x[:: RATE // 3] += 0.8
    plain_peak_db = 20 * np.log10(np.abs(x).max()) + (-16.0 - integrated_lufs(x, RATE))
    assert plain_peak_db > 6.0  # the test signal really needs limiting

    out, _, after = normalize_to_lufs(x, RATE, -16.0, ceiling_dbfs=-1.0)
    assert np.abs(out).max() <= 10 ** (-1.0 / 20)  # sample peak under the ceiling
    assert oversampled_peak_db(out) <= -1.0 + 0.1  # and between the samples, within 0.1 dB
    assert true_peak_dbfs(out) <= -1.0 + 1e-4
    assert abs(pyloudnorm.Meter(RATE).integrated_loudness(out.astype(np.float64)) - -16.0) < 0.5
    assert abs(after - -16.0) < 0.5


def test_the_limiter_dips_before_a_peak_and_recovers_after_it():
    x = np.zeros((RATE, 2), dtype=np.float32)
    x[:, 0] = sine(220, 1.0, 0.3)
    at = RATE // 2
    x[at, 0] = 2.0  # one sample far above a -1 dBFS ceiling
    gain = limiter_gain(x, RATE, ceiling_dbfs=-1.0)
    assert gain.shape == (RATE,) and gain.max() <= 1.0
    assert gain[at] * 2.0 <= 10 ** (-1 / 20)  # enough at the peak itself
    assert gain[at - round(0.005 * RATE)] < 0.9  # already falling 5 ms before it (lookahead)
    assert gain[: at - round(0.05 * RATE)].min() == 1.0  # untouched well before
    assert gain[at + round(0.05 * RATE) :].min() == 1.0  # and recovered well after


def test_silence_and_very_short_audio_are_handled_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert integrated_lufs(np.zeros((RATE, 2), np.float32), RATE) == float("-inf")
        assert integrated_lufs(np.zeros(0, np.float32), RATE) == float("-inf")
        out, gain_db, after = normalize_to_lufs(np.zeros((RATE, 2), np.float32), RATE, -16.0)
        assert not out.any() and gain_db == 0.0 and after == float("-inf")
        assert true_peak_dbfs(np.zeros(100, np.float32)) == float("-inf")
        # shorter than one 400 ms gating block: measured as one block, same reading as a long tone
        short = integrated_lufs(sine(997, 0.2, 0.5), RATE)
        assert short == pytest.approx(integrated_lufs(sine(997, 3.0, 0.5), RATE), abs=0.2)


def test_a_signal_too_peaky_for_the_target_ends_short_but_never_clips_and_says_so():
    x = speechy_noise(4.0, 1e-4, seed=2)
    x[:: RATE // 10] = 1.0  # nothing but clicks: loudness must come from limiting them flat
    out, _, after = normalize_to_lufs(x, RATE, -3.0, ceiling_dbfs=-1.0)
    measured = pyloudnorm.Meter(RATE).integrated_loudness(out.astype(np.float64))
    assert np.abs(out).max() <= 10 ** (-1.0 / 20)
    assert after == pytest.approx(measured, abs=0.05)  # the reported loudness is the real one
    assert after < -3.0 - 0.5  # and it did not pretend to reach the target


def test_true_peaks_measured_in_windows_equal_the_whole_signal_oversampled_at_once():
    """Windows keep the memory to one window's (a 30-minute mix oversampled at once took GBs); the peaks they
    find are the ones oversampling everything at once finds, at the windows' seams too."""
    from scipy.signal import resample_poly

    from storyflow.media import loudness

    rng = np.random.default_rng(7)
    data = (rng.standard_normal((3 * loudness.PEAK_WINDOW + 1234, 2)) * 0.2).astype(np.float32)
    seam = loudness.PEAK_WINDOW
    data[seam - 2 : seam + 2] = [[0.9, -0.9], [-0.95, 0.95], [0.97, -0.97], [-0.9, 0.9]]  # an overshoot across a seam
    up = resample_poly(data, loudness.OVERSAMPLING, 1, axis=0, window=loudness._oversampling_filter())
    between = np.abs(up).max(axis=1)[: len(data) * loudness.OVERSAMPLING].reshape(len(data), -1).max(axis=1)
    whole = np.maximum(np.abs(data).max(axis=1), between)
    whole[1:] = np.maximum(whole[1:], between[:-1])
    windowed = loudness._true_peaks(data)
    assert windowed.shape == whole.shape and np.abs(windowed - whole).max() < 1e-6
    assert windowed[seam - 1 : seam + 2].max() > 0.97  # the inter-sample overshoot at the seam is seen


@pytest.mark.parametrize("channels", [1, 2, 5])
def test_the_stream_meter_reads_what_pyloudnorm_reads_whatever_the_windows(channels):
    """Fed window by window (sizes that do and do not divide the 100 ms segments), the meter gives pyloudnorm's
    reading of the whole signal: the same K-weighting, block edges and gates."""
    from storyflow.media.loudness import LoudnessMeter

    rng = np.random.default_rng(channels)
    tone = np.repeat(sine(997, 3.05, 0.25)[:, None], channels, axis=1)
    bursts = np.concatenate([speechy_noise(2.5, 0.05, seed=channels)] * 3, axis=1)[:, :channels]
    gated = (rng.standard_normal((7 * RATE + 4799, channels)) * 0.1).astype(np.float32)
    gated[: 3 * RATE] *= 1e-3  # 60 dB down: below the relative gate, so the gates decide the reading
    for signal in (tone, bursts, gated, gated[: round(0.4 * RATE)]):
        data = signal.astype(np.float64)
        expected = pyloudnorm.Meter(RATE).integrated_loudness(data if channels > 1 else data[:, 0])
        for window, keep_states in [(1000, False), (4799, True), (4800, False), (65536, True), (len(signal), False)]:
            meter = LoudnessMeter(RATE, channels, keep_states=keep_states)
            for start in range(0, len(signal), window):
                meter.feed(signal[start : start + window] if channels > 1 else signal[start : start + window, 0])
            assert meter.lufs() == pytest.approx(expected, abs=1e-6), (len(signal), window)
        assert integrated_lufs(signal, RATE) == pytest.approx(expected, abs=1e-6)


def test_the_stream_meter_at_another_rate_and_on_silence():
    from storyflow.media.loudness import LoudnessMeter

    rate = 44_100
    x = speechy_noise(5.0, 0.02, seed=4)[: 5 * rate]
    expected = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
    meter = LoudnessMeter(rate, 2)
    for start in range(0, len(x), 3333):
        meter.feed(x[start : start + 3333])
    assert meter.lufs() == pytest.approx(expected, abs=1e-6)
    quiet = LoudnessMeter(RATE, 2)
    quiet.feed(np.full((RATE, 2), 1e-5, np.float32))  # about -100 LUFS: under the absolute gate
    assert quiet.lufs() == float("-inf") and LoudnessMeter(RATE, 1).lufs() == float("-inf")


def test_a_replayed_meter_reads_the_changed_signal_as_a_full_pass_would_and_reads_only_near_the_changes():
    """A plan's limiter rounds measure the limited signal from pass 1's meter: segments the limiter leaves
    alone are pass 1's times the gain; only the changed ones, and the filters' memory after them, are
    filtered again."""
    from storyflow.media.loudness import LoudnessMeter

    x = speechy_noise(30.0, 0.05, seed=8)
    meter = LoudnessMeter(RATE, 2, keep_states=True)
    for start in range(0, len(x), 65536):
        meter.feed(x[start : start + 65536])
    gain = np.float32(1.6)
    edges = meter._edges
    last = int(np.searchsorted(edges, len(x))) - 1  # the last segment, cut short by the signal's end
    for changed in ([], [0], [40, 41, 42, 150], [last - 1, last], list(range(last + 1))):
        y = x * gain
        for k in changed:
            y[edges[k] : edges[k + 1]] *= np.float32(0.5)  # as a limiter would dip there
        full = LoudnessMeter(RATE, 2)
        full.feed(y)
        read = []
        replayed = meter.replayed(float(gain), np.array(changed, dtype=int), lambda a, b: read.append(b - a) or y[a:b])
        assert replayed == pytest.approx(full.lufs(), abs=1e-6), changed
        assert sum(read) <= (len(changed) + 4 * (len(changed) > 0)) * 4800  # the changes, and at most ~400 ms after
        assert replayed != pytest.approx(meter.lufs() + 20 * np.log10(gain), abs=1e-4) or changed == []


def test_the_limiter_computed_window_by_window_is_the_whole_signals():
    """limiter_reach() samples of context either side make each window's gain the whole signal's, seams included."""
    from storyflow.media import loudness

    x = speechy_noise(3.0, 0.05, seed=5)
    x[:: RATE // 7] += 0.9  # clicks to limit, some of them near the seams below
    x[4800 * 3 - 2] = -1.5
    whole = limiter_gain(x, RATE, -1.0)
    reach, n = loudness.limiter_reach(RATE), len(x)
    assert whole.min() < 0.7  # the limiter really acts
    for window in (1000, 4801, 14400, 65536):
        pieces = []
        for start in range(0, n, window):
            stop = min(n, start + window)
            lo, hi = max(0, start - reach), min(n, stop + reach)
            pieces.append(limiter_gain(x[lo:hi], RATE, -1.0)[start - lo : stop - lo])
        assert np.abs(np.concatenate(pieces) - whole).max() < 1e-6, window


def test_a_plan_made_in_small_windows_is_the_plan_made_in_one():
    """The windowed plan reads the signal a window (plus the limiter's reach) at a time and gets the same
    gains, loudness and peak as the plan over the whole array."""
    from storyflow.media import loudness

    x = speechy_noise(8.0, 0.003, seed=6)
    x[:: RATE // 3] += 0.8
    whole = loudness.plan_normalization(x, RATE, -16.0, -1.0)
    widest = []

    def read(start: int, stop: int) -> np.ndarray:
        widest.append(stop - start)
        return x[start:stop]

    window = 4096
    small = loudness.plan_normalization_windowed(read, len(x), 2, RATE, -16.0, -1.0, window=window)
    assert max(widest) <= window + 2 * (loudness.limiter_reach(RATE) + loudness.PEAK_PAD)
    assert small.gain_db == pytest.approx(whole.gain_db, abs=1e-9) and whole.limited_db < -3.0
    assert small.lufs_after == pytest.approx(whole.lufs_after, abs=1e-6)
    assert small.true_peak_after == pytest.approx(whole.true_peak_after, abs=1e-6) and whole.true_peak_after <= -1.0
    assert small.limited_db == pytest.approx(whole.limited_db, abs=1e-6)
    gains = np.concatenate([small.gains(s, min(len(x), s + 3000)) for s in range(0, len(x), 3000)])
    assert np.abs(gains - whole.gains(0, len(x))).max() < 1e-6


@pytest.mark.parametrize("clicks", [True, False], ids=["limiter acts", "limiter idle"])
def test_a_plan_oversamples_only_the_blocks_that_can_matter_and_gets_what_oversampling_everything_gets(
    clicks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each block's true peak is bounded from its sample peaks first and oversampled only where the bound
    could pass the ceiling or beat the loudest peak: the plan's gains and peak are those of a limiter fed
    the exact true peaks of the whole signal, while most of a quiet signal is never oversampled."""
    from storyflow.media import loudness

    x = speechy_noise(6.0, 0.05, seed=9)
    x[RATE * 2 + 17] = 0.35  # a lone loud sample: its block's bound is the loudest
    if clicks:
        x[RATE // 2 :: RATE] += 0.6  # a click a second: the limiter acts there
        # and two samples just under the ceiling at the plan's gain, whose true peak between them passes it
        gain = 10 ** (loudness.plan_normalization(x, RATE, -16.0, -1.0).gain_db / 20)
        x[RATE * 4 + 300 : RATE * 4 + 302] = 0.97 * 10 ** (-1.0 / 20) / gain
    oversampled = []

    def counted(data, before=None, after=None):
        oversampled.append(len(data))
        return true_peaks(data, before, after)

    true_peaks = loudness._true_peaks
    monkeypatch.setattr(loudness, "_true_peaks", counted)
    plan = loudness.plan_normalization(x, RATE, -16.0, -1.0)
    gains = plan.gains(0, len(x))
    monkeypatch.setattr(loudness, "_true_peaks", true_peaks)

    scale = np.float32(10 ** (plan.gain_db / 20))
    expected = scale * limiter_gain(x * scale, RATE, -1.0) * np.float32(10 ** (plan.trim_db / 20))
    assert np.abs(gains - expected).max() < 1e-6
    assert (plan.limited_db < -1.0) == clicks, plan
    assert plan.true_peak_after == pytest.approx(true_peak_dbfs(x * expected[:, None]), abs=1e-4)
    assert sum(oversampled) < 0.3 * len(x), f"{sum(oversampled)} of {len(x)} samples oversampled"


def test_the_limiter_curve_worked_out_around_its_loud_stretches_is_the_one_worked_out_everywhere():
    """The curve is computed only within reach of the peaks over the ceiling; loud peaks closer together than
    that, and just further apart, get what the two window operations over the whole signal give."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    from storyflow.media import loudness

    rng = np.random.default_rng(11)
    half = round(loudness.LIMITER_WINDOW_S * RATE)
    peaks = rng.uniform(0.0, 0.85, 40 * half).astype(np.float32)
    at = 3 * half
    for gap in (1, half, 2 * half, 4 * half + 3, 4 * half + 4, 4 * half + 6, 5 * half):  # around the stretches' reach
        peaks[at] = 1.5
        at += gap
    peaks[-2] = 1.2  # one at the very end
    width = 2 * half + 1
    needed = np.minimum(1.0, 0.891 / np.maximum(peaks, 1e-12))
    whole = np.minimum(uniform_filter1d(minimum_filter1d(needed, width, mode="nearest"), width, mode="nearest"),
                       needed).astype(np.float32)  # fmt: skip
    curve = loudness._limiter_curve(peaks, RATE, 20 * np.log10(0.891))
    assert whole.min() < 0.7 and np.abs(curve - whole).max() < 1e-7
    assert (curve == 1.0).sum() == (whole == 1.0).sum()
