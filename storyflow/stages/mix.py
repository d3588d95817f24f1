"""The film's sound, mixed: narration on top, music ducked under speech, effects under both.

The balance is set by loudness, not by peaks, so it does not depend on how loud each
source happened to be rendered:

- narration is brought to a reference loudness (measured over the speech, BS.1770 gated);
- music sits `music_db` under the narration's loudness, and dips a further `duck_db`
  wherever someone speaks (a sidechain from the narration: the dip starts `lookahead_s`
  before the first word, reaches full depth `attack_s` later, and recovers over
  `release_s` after the last word of a line);
- effects sit `effects_db` under the music's nominal level, and dip `effects_duck_db`
  under speech;
- the sum is normalised to `target_lufs` integrated, with a lookahead limiter keeping true
  peaks (4x oversampled) at or under `ceiling_dbfs`.

Besides the mix, three stems (narration, music, effects) are written film-length, each at
exactly the gains it has inside the mix, limiter included, so summing them gives the mix
back and a user can remix from them.

Nothing film-length is held in memory: the sources are read WINDOW samples at a time (the
narration lines placed, music and effects read from their WAVs and resampled on the fly),
in a few passes: (1) each source's loudness and the voice's 10 ms levels for the sidechain
(skipped for the sources measured ahead: see Heard);
(2..) the balanced sum's loudness, true peaks and limiter rounds (storyflow.media.loudness);
(last) the three stems and the mix written together. What persists between passes is
control-rate: the ducking envelope (one value per 10 ms) and a peak per 1024 samples.
Windows do not change the sound: every window computes what the whole signal would.
numpy/scipy are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from storyflow.catalog import AUDIO, Generations
from storyflow.core import progress
from storyflow.core.errors import InputError
from storyflow.core.hashing import cache_key
from storyflow.core.models import AudioTrack
from storyflow.stages.audio import Maker, track_of, track_path

if TYPE_CHECKING:
    import numpy as np

    from storyflow.media import WavIn
    from storyflow.media.loudness import Normalization

MIX_VERSION = "storyflow mix 1"  # bump when the mixing recipe changes, so old mixes stop matching
STEM_KINDS = ("narration", "music", "effects")
REFERENCE_LUFS = -23.0  # where the narration is placed before the whole mix is normalised
CONTROL_HOP_S = 0.01  # the ducking envelope is computed every 10 ms, then interpolated
SPEECH_FLOOR_DB = -40.0  # narration quieter than this under its loudest 10 ms is not speech
WORD_GAP_S = 0.3  # pauses shorter than this inside speech do not release the duck
OVERRUN_SILENCE_DBFS = -60.0  # narration past the film's end must be quieter than this
WINDOW = 1 << 18  # samples of each source held at once (5.5 s at 48 kHz): the mix's memory, whatever the film's length


@dataclass(frozen=True)
class Ducking:
    """What the sidechain did: its settings and where it found speech."""

    music_db: float  # the music's gain under speech, relative to away from speech
    effects_db: float  # the same for the effects
    attack_s: float
    release_s: float
    lookahead_s: float  # the dip starts this long before each stretch of speech
    speech_spans: tuple[tuple[float, float], ...]  # (start, end) seconds in the film where speech was found

    @property
    def lead_s(self) -> float:
        """How long before the first word the music starts to dip (0.0 with no speech)."""
        return self.lookahead_s if self.speech_spans else 0.0

    def as_dict(self) -> dict:
        return {
            "music_db": self.music_db,
            "effects_db": self.effects_db,
            "attack_s": self.attack_s,
            "release_s": self.release_s,
            "lookahead_s": self.lookahead_s,
            "speech_spans": [list(span) for span in self.speech_spans],
        }


@dataclass(frozen=True)
class MixResult:
    """The mix, its stems, and the measured facts about them."""

    mix: AudioTrack  # kind "mix": the film's sound
    stems: dict[str, AudioTrack]  # "narration", "music", "effects" -> film-length WAVs at their mix gains
    lufs: float  # integrated loudness of the mix, measured after normalisation (LUFS)
    target_lufs: float
    gain_db: float  # static gain the loudness normalisation applied to the balanced sum
    limited_db: float  # deepest gain reduction of the peak limiter (0.0: it never acted)
    true_peak_dbtp: float  # the mix's 4x-oversampled peak
    ducking: Ducking
    reused: bool = False


def mix_film(
    *,
    seconds: float,
    sample_rate: int,
    narration: list[tuple[float, Source]],
    music: Source | None,
    effects: Source | None,
    out_dir: Path,
    door: Generations | None = None,
    target_lufs: float = -16.0,
    duck_db: float = -12.0,
    music_db: float = -6.0,
    effects_db: float = -6.0,
    effects_duck_db: float = -4.0,
    ceiling_dbfs: float = -1.0,
    attack_s: float = 0.05,
    release_s: float = 0.4,
    lookahead_s: float = 0.1,
    heard: Iterable[Heard] = (),
) -> MixResult:
    """Mix narration lines, music and effects into the film's sound, plus its three stems.

    `narration` holds (start second in the film, WAV of one spoken line). `music` and
    `effects` are film-length WAVs (or None: that stem is then silent). Each WAV is a path,
    or a track that knows its file's sha256 (not hashed again). Writes
    out_dir/audio/<kind>-<key12>.wav for the mix and each stem, atomically.

    What holds between the files (all 16-bit stereo WAVs, exactly round(seconds * rate)
    samples): narration + music + effects == mix, sample for sample, to within 16-bit
    rounding (at most 2 LSB), because each stem is its source times every gain the mix
    used: balance gain, ducking curve, normalisation gain AND the limiter's gain curve.
    The limiter's curve is 1.0 wherever no true peak of the sum would pass the ceiling, so
    there the stems are simply the sources at their mix gains; where it acted (see
    `limited_db`), it acted on all three stems alike, so a remix that changes the balance
    inherits those short dips.

    Memory does not grow with the film: a few windows of WINDOW samples and control-rate
    arrays (10 ms steps), read and computed again in each pass rather than kept.

    `heard`: sources already measured as this mix measures them (hear_narration, hear_bed,
    BedMeter), so its first pass skips them; one that does not match an input exactly is unused.
    """
    from storyflow.media.loudness import plan_normalization_windowed

    # 1. check inputs; the cache key is made of the inputs' contents and every setting
    lines = [(start, _path(line)) for start, line in narration]
    music_path, effects_path = (_path(source) if source else None for source in (music, effects))
    _check_inputs(seconds, sample_rate, lines, music_path, effects_path)
    settings = {
        "target_lufs": target_lufs,
        "duck_db": duck_db,
        "music_db": music_db,
        "effects_db": effects_db,
        "effects_duck_db": effects_duck_db,
        "ceiling_dbfs": ceiling_dbfs,
        "attack_s": attack_s,
        "release_s": release_s,
        "lookahead_s": lookahead_s,
    }
    line_digests = [_sha256(line) for _, line in narration]
    music_digest, effects_digest = (_sha256(source) if source else None for source in (music, effects))
    key = cache_key(
        "mix",
        recipe=MIX_VERSION,
        narration=[(round(start, 6), digest) for (start, _), digest in zip(narration, line_digests)],
        music=music_digest,
        effects=effects_digest,
        seconds=round(seconds, 6),
        sample_rate=sample_rate,
        settings=settings,
    )
    stem_keys = {kind: cache_key("mix-stem", stem=kind, mix=key) for kind in STEM_KINDS}
    narration, music, effects = lines, music_path, effects_path  # the files from here on

    # 2. reuse a finished mix only when the mix and all three stems are there (the stems are parts of the
    #    mix: the run's tally counts the mix alone)
    door = door or Generations.in_memory()
    stems_found = {kind: door.reuse(AUDIO, stem_keys[kind], tally=None) for kind in STEM_KINDS}
    found = door.reuse(AUDIO, key, tally="mix") if all(stems_found.values()) else None
    if found is not None:
        progress.report("audio", kind="mix", reused=True)
        return _result_from_record(found, stems_found)  # type: ignore[arg-type]

    started = time.perf_counter()
    total = round(seconds * sample_rate)
    hop, window = _steps(sample_rate)
    with contextlib.ExitStack() as stack:
        # 3. the sources, each read window by window as film-length stereo at the mix's rate (checked here, before
        #    anything is written: a narration line running past the end, music or effects of the wrong length)
        sources = _Sources(
            _Narration(narration, total, sample_rate),
            stack.enter_context(_FilmSource.opened(music, total, sample_rate, "music")),
            stack.enter_context(_FilmSource.opened(effects, total, sample_rate, "effects")),
        )

        # 4. one pass: balance by loudness (narration at the reference, music and effects below it), and the
        #    voice's 10 ms levels for the sidechain
        known = {measured.of: measured for measured in heard}
        beds = (known.get(_bed_of(digest, total, sample_rate)) for digest in (music_digest, effects_digest))
        ahead = [known.get(_narration_of(narration, line_digests, total, sample_rate)), *beds]
        speech_lufs, music_lufs, effects_lufs, levels = sources.measure(window, hop, ahead)
        narration_gain = _gain_to(speech_lufs, REFERENCE_LUFS)
        music_gain = _gain_to(music_lufs, REFERENCE_LUFS + music_db)
        effects_gain = _gain_to(effects_lufs, REFERENCE_LUFS + music_db + effects_db)

        # 5. the sidechain: how far under speech each bed is pulled, every 10 ms (0 .. 1), then the parts' gains
        depth, spans = _duck_envelope(levels, total, sample_rate, attack_s, release_s, lookahead_s)
        sources.set_gains(narration_gain, music_gain, effects_gain, duck_db, effects_duck_db, depth, hop)
        ducking = Ducking(duck_db, effects_duck_db, attack_s, release_s, lookahead_s, spans)

        # 6. loudness normalisation and the true-peak limiter, planned on the sum (a pass per limiter round)
        plan = plan_normalization_windowed(sources.balanced, total, 2, sample_rate, target_lufs, ceiling_dbfs,
                                           window=window)  # fmt: skip

        # 7. one pass writing the stems and the mix, each window times the plan's gains
        paths = {kind: track_path(kind, stem_keys[kind], out_dir) for kind in STEM_KINDS}
        paths["mix"] = track_path("mix", key, out_dir)
        digests = sources.write(plan, paths, sample_rate, window)

    # 8. record the stems, then the mix: a recorded mix implies its stems
    measured = {
        "lufs": _json_number(plan.lufs_after),
        "gain_db": round(plan.gain_db, 4),
        "limited_db": _json_number(plan.limited_db),
        "true_peak_dbtp": _json_number(plan.true_peak_after),
        "ducking": ducking.as_dict(),
    }
    stem_tracks = {}
    for kind in STEM_KINDS:
        track = track_of(kind, paths[kind], stem_keys[kind], Maker(MIX_VERSION, options={"stem_of": key, **settings}),
                         started, sha256=digests[kind])  # fmt: skip
        stem_tracks[kind] = door.keep(AUDIO, track, tally=None)
    mix_track = track_of("mix", paths["mix"], key, Maker(MIX_VERSION, options={**settings, "measured": measured}),
                         started, sha256=digests["mix"])  # fmt: skip
    door.keep(AUDIO, mix_track, tally="mix")
    progress.report("audio", kind="mix", reused=False, lufs=plan.lufs_after)
    return MixResult(
        mix=mix_track,
        stems=stem_tracks,
        lufs=plan.lufs_after,
        target_lufs=target_lufs,
        gain_db=plan.gain_db,
        limited_db=plan.limited_db,
        true_peak_dbtp=plan.true_peak_after,
        ducking=ducking,
    )


# ---------------------------------------------------------------- inputs


class HashedFile(Protocol):
    """A file that knows its sha256 (an AudioTrack, a NarrationLine): mixing it does not hash it again."""

    path: Path
    sha256: str


Source = Path | HashedFile  # a WAV to mix: its path, or a track that knows its file's sha256


def _path(source: Source) -> Path:
    return Path(source) if isinstance(source, (str, os.PathLike)) else Path(source.path)


def _sha256(source: Source) -> str:
    from storyflow.media import sha256_file

    return sha256_file(Path(source)) if isinstance(source, (str, os.PathLike)) else source.sha256


def _check_inputs(
    seconds: float, sample_rate: int, narration: list[tuple[float, Path]], music: Path | None, effects: Path | None
) -> None:
    """Fail early, naming the argument, before anything is read or written."""
    if not seconds > 0:
        raise InputError(f"mix_film: seconds must be positive, got {seconds}", fix="pass the film's length in seconds")
    if sample_rate <= 0:
        raise InputError(f"mix_film: sample_rate must be positive, got {sample_rate}", fix="pass e.g. 48000")
    for start, path in narration:
        if not 0 <= start < seconds:
            raise InputError(
                f"narration line {Path(path).name} starts at {start:.3f} s, outside the {seconds:.3f} s film",
                fix="place each line inside its shot (start between 0 and the film's length)",
            )
    for what, path in [*(("narration", p) for _, p in narration), ("music", music), ("effects", effects)]:
        if path is not None and not Path(path).is_file():
            raise InputError(f"{what} file {path} does not exist", fix=f"render the {what} before mixing")


class _Narration:
    """The narration lines on the film's timeline as one mono voice (it sits in the centre), read window by window.

    A line is read and resampled when a window first reaches it and let go once the windows have
    passed it, so only the lines under the current window are held.
    """

    def __init__(self, lines: list[tuple[float, Path]], total: int, sample_rate: int) -> None:
        import numpy as np

        from storyflow.media import open_wav

        self.sample_rate, self.total = sample_rate, total
        self.lines: list[tuple[int, int, Path]] = []  # (first sample, end sample in the film, WAV)
        self._held: dict[int, np.ndarray] = {}
        for start, path in lines:
            with open_wav(path) as wav:
                length = _resampled_length(wav.frames, wav.rate, sample_rate)
            at = round(start * sample_rate)
            fits = min(length, total - at)
            if fits < length:  # only silence may be cut off the end
                overrun = self._voice(path)[fits:]
                if np.abs(overrun).max() > 10 ** (OVERRUN_SILENCE_DBFS / 20):
                    raise InputError(
                        f"narration line {Path(path).name} runs {len(overrun) / sample_rate:.2f} s past the film's end",
                        fix="shorten the line, speak it faster (--speech-rate), or lengthen its shot",
                    )
            self.lines.append((at, at + fits, Path(path)))

    def read(self, start: int, stop: int) -> np.ndarray:
        """float32 (stop - start,): every line that sounds in [start, stop), added in the order given."""
        import numpy as np

        out = np.zeros(stop - start, dtype=np.float32)
        for i, (at, end, path) in enumerate(self.lines):
            if at < stop and end > start:
                if i not in self._held:
                    self._held[i] = self._voice(path)[: end - at]
                lo, hi = max(at, start), min(end, stop)
                out[lo - start : hi - start] += self._held[i][lo - at : hi - at]
        for i in [i for i in self._held if self.lines[i][1] <= start]:  # passed: windows only move forward
            del self._held[i]
        return out

    def measure(self, window: int, hop: int) -> tuple[float, np.ndarray]:
        """The voice's loudness (centred: once, weighed as both channels) and its RMS per 10 ms step."""
        import numpy as np

        from storyflow.media.loudness import LoudnessMeter

        meter = LoudnessMeter(self.sample_rate, 1, weights=(2.0,))
        levels = np.zeros(-(-self.total // hop), dtype=np.float32)
        for start in range(0, self.total, window):
            stop = min(self.total, start + window)
            voice = self.read(start, stop)
            levels[start // hop : -(-stop // hop)] = _voice_levels(voice, hop)
            meter.feed(voice)
        return meter.lufs(), levels

    def _voice(self, path: Path) -> np.ndarray:
        from storyflow.media import read_wav, resample

        samples, rate = read_wav(path)
        return resample(samples.mean(axis=1), rate, self.sample_rate)


class _FilmSource:
    """A music or effects WAV as film-length stereo at the mix's rate, read window by window (None: silence).

    Mono becomes stereo; past its end it is silent. Another rate is converted on the fly with the
    same polyphase filter as resampling the whole file: each window starts on a sample where the
    filter's phases line up with the whole file's and sees enough neighbours, so it gets the
    samples resampling the whole file would give.
    """

    def __init__(self, wav: WavIn | None, total: int, sample_rate: int) -> None:
        from math import ceil, gcd

        self.wav, self.total, self.sample_rate = wav, total, sample_rate
        rate = wav.rate if wav else sample_rate
        self.up, self.down = sample_rate // gcd(rate, sample_rate), rate // gcd(rate, sample_rate)
        reach = 10 * max(self.up, self.down) / self.up + 2  # resample_poly's filter, in source samples
        self.pad = self.down * ceil(reach / self.down)  # a whole number of phase cycles

    @classmethod
    @contextlib.contextmanager
    def opened(cls, path: Path | None, total: int, sample_rate: int, what: str) -> Iterator[_FilmSource]:
        """Open and check the file: mono or stereo, within 0.1 s of the film's length."""
        from storyflow.media import open_wav

        if path is None:
            yield cls(None, total, sample_rate)
            return
        with open_wav(path) as wav:
            if wav.channels > 2:
                raise InputError(f"{what} file {path} has {wav.channels} channels", fix="give a mono or stereo WAV")
            length = _resampled_length(wav.frames, wav.rate, sample_rate)
            if abs(length - total) > 0.1 * sample_rate:
                raise InputError(
                    f"{what} file {Path(path).name} is {length / sample_rate:.2f} s long, "
                    f"the film {total / sample_rate:.2f} s",
                    fix=f"render the {what} for the film's final length (after extension) and mix again",
                )
            yield cls(wav, total, sample_rate)

    def read(self, start: int, stop: int) -> np.ndarray:
        """float32 (stop - start, 2) of the film's samples [start, stop)."""
        import numpy as np

        if self.wav is None:
            return np.zeros((stop - start, 2), dtype=np.float32)
        data = self._at_mix_rate(start, stop)
        if data.shape == (stop - start, 2) and data.dtype == np.float32:
            return data  # a stereo window read whole: already what is asked for
        out = np.zeros((stop - start, 2), dtype=np.float32)
        out[: len(data)] = data  # mono fills both channels by broadcasting
        return out

    def _at_mix_rate(self, start: int, stop: int) -> np.ndarray:
        from storyflow.media import resample

        wav, up, down = self.wav, self.up, self.down
        if up == down:
            return wav.read(start, stop - start)
        # output sample m sits at source sample m * down / up: start on a multiple of `down` source samples
        first, last = (start // up) * down, -(-stop // up) * down
        lo, hi = max(0, first - self.pad), min(wav.frames, last + self.pad)
        if lo >= hi:
            return wav.read(0, 0)
        offset = lo * up // down
        return resample(wav.read(lo, hi - lo), wav.rate, self.sample_rate)[start - offset : stop - offset]


def _resampled_length(frames: int, from_rate: int, to_rate: int) -> int:
    """How many samples resampling `frames` samples gives (resample_poly's ceil(frames * up / down))."""
    return -(-frames * to_rate // from_rate)


class _Sources:
    """The three sources read together window by window, and their parts in the mix once the gains are set."""

    def __init__(self, narration: _Narration, music: _FilmSource, effects: _FilmSource) -> None:
        self.narration, self.music, self.effects = narration, music, effects
        self.total, self.sample_rate = music.total, music.sample_rate

    def measure(self, window: int, hop: int, heard: list[Heard | None]) -> tuple[float, float, float, np.ndarray]:
        """One pass: the loudness of the narration (centred stereo), music and effects, and the voice's 10 ms RMS,
        but for what was heard ahead (`heard`: narration, music, effects, each a Heard or None).

        The beds are measured each on a thread of its own beside the voice (the filters release the GIL),
        each source read by one thread only."""
        from concurrent.futures import ThreadPoolExecutor

        voice, *beds = heard
        with ThreadPoolExecutor(2) as pool:
            measuring = [None if known else pool.submit(_bed_lufs, source, window)
                         for source, known in zip((self.music, self.effects), beds)]  # fmt: skip
            speech_lufs, levels = (voice.lufs, voice.levels) if voice else self.narration.measure(window, hop)
            music_lufs, effects_lufs = (known.lufs if known else job.result() for known, job in zip(beds, measuring))
        return speech_lufs, music_lufs, effects_lufs, levels

    def set_gains(
        self, narration: float, music: float, effects: float, duck_db: float, effects_duck_db: float,
        depth: np.ndarray, hop: int,
    ) -> None:  # fmt: skip
        """Each part's gain: a static one for the narration; the beds' balance times their ducking curves."""
        import numpy as np

        self._narration_gain, self._music_gain, self._effects_gain = narration, music, effects
        self._duck_db, self._effects_duck_db = duck_db, effects_duck_db
        self._depth, self._hop = depth.astype(np.float64), hop  # each value holds from the start of its step
        self._slopes = np.diff(self._depth) / hop

    def parts(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """float32 per stem kind: each source at its gains in the mix, ducking included; (stop - start, 2) for
        the beds, (stop - start, 1) for the centred narration (the same on both channels)."""
        import numpy as np

        music_gains, effects_gains = self._ducked_gains(start, stop)
        return {
            "narration": (self.narration.read(start, stop) * np.float32(self._narration_gain))[:, None],
            "music": self.music.read(start, stop) * music_gains[:, None],
            "effects": self.effects.read(start, stop) * effects_gains[:, None],
        }

    def _ducked_gains(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 (stop - start,) gains of the music and of the effects: each bed's balance times its dip under
        speech, 10 ** (dip_db * depth / 20). The depth is np.interp between the steps' starts, with np.interp's
        own arithmetic, done directly because the steps are evenly spaced; a step whose depth holds (most of
        them) has one gain, worked out once, and only the ramps are worked out sample by sample."""
        import numpy as np

        depth, hop, last = self._depth, self._hop, len(self._depth) - 1
        first = start // hop
        steps = np.arange(first, -(-stop // hop))  # a row per step: no per-sample gather
        holds = np.ones(len(steps), dtype=bool)  # steps whose depth holds: flat, or past the last step's start
        if last >= 1:
            holds = (steps >= last) | (self._slopes[np.minimum(steps, last - 1)] == 0)
        ramps = steps[~holds]
        ramped = (self._slopes[ramps][:, None] * np.arange(hop) + depth[ramps][:, None]).astype(np.float32)
        held = depth[np.minimum(steps[holds], last)].astype(np.float32)[:, None]
        gains = []
        for balance, dip_db in ((self._music_gain, self._duck_db), (self._effects_gain, self._effects_duck_db)):
            rows = np.empty((len(steps), hop), dtype=np.float32)
            rows[holds] = balance * 10 ** (dip_db * held / 20)
            rows[~holds] = balance * 10 ** (dip_db * ramped / 20)
            gains.append(rows.ravel()[start - first * hop : stop - first * hop])
        return gains[0], gains[1]

    def balanced(self, start: int, stop: int) -> np.ndarray:
        """float32 (stop - start, 2): the three parts summed, before normalisation."""
        parts = self.parts(start, stop)
        return parts["narration"] + parts["music"] + parts["effects"]

    def write(self, plan: Normalization, paths: dict[str, Path], sample_rate: int, window: int) -> dict[str, str]:
        """One pass: each stem and the mix times the plan's gains, written atomically (the mix's name appears last);
        returns each file's sha256, hashed as it was written.

        The music and effects stems are written on a second thread beside the mix and the narration (the
        products, the 16-bit conversion and the file writes release the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        from storyflow.media import wav_writer

        def write_stems(kinds: tuple[str, ...], parts: dict[str, np.ndarray], scale: np.ndarray) -> None:
            for kind in kinds:
                outs[kind].write(np.broadcast_to(parts[kind] * scale, (len(scale), 2)))

        with contextlib.ExitStack() as files, ThreadPoolExecutor(1) as pool:
            outs = {kind: files.enter_context(wav_writer(paths[kind], 2, sample_rate, frames=self.total))
                    for kind in ("mix", *STEM_KINDS)}  # fmt: skip
            for start in range(0, self.total, window):
                stop = min(self.total, start + window)
                parts = self.parts(start, stop)
                scale = plan.gains(start, stop)[:, None]
                beds = pool.submit(write_stems, ("music", "effects"), parts, scale)
                outs["mix"].write((parts["narration"] + parts["music"] + parts["effects"]) * scale)
                write_stems(("narration",), parts, scale)
                beds.result()
        return {kind: out.sha256 for kind, out in outs.items()}


# ---------------------------------------------------------------- measuring ahead


@dataclass(frozen=True)
class Heard:
    """A source as a mix's first pass measures it: its loudness and, for the narration, its 10 ms levels.

    Measured ahead of the mix (the narration and the score while the clips are made, the effects bed
    as it is laid), it spares the mix that pass over it. `of` names exactly what was measured: the
    files' sha256, where they sit, the film's length and rate; a mix of anything else ignores it.
    """

    of: tuple
    lufs: float
    levels: np.ndarray | None = field(default=None, compare=False)


def hear_narration(narration: list[tuple[float, Source]], seconds: float, sample_rate: int) -> Heard:
    """The narration lines on the film's timeline, measured as mix_film measures them."""
    total = round(seconds * sample_rate)
    hop, window = _steps(sample_rate)
    voice = _Narration([(start, _path(line)) for start, line in narration], total, sample_rate)
    lufs, levels = voice.measure(window, hop)
    return Heard(_narration_of(narration, [_sha256(line) for _, line in narration], total, sample_rate), lufs, levels)


def hear_bed(source: Source, seconds: float, sample_rate: int, what: str = "music") -> Heard:
    """A film-length music or effects WAV, measured as mix_film measures it."""
    total = round(seconds * sample_rate)
    with _FilmSource.opened(_path(source), total, sample_rate, what) as bed:
        return Heard(_bed_of(_sha256(source), total, sample_rate), _bed_lufs(bed, _steps(sample_rate)[1]))


class BedMeter:
    """Measures a film-length stereo WAV at the mix's rate while it is written (a tap for audio.lay_down), on
    a thread of its own: fed what the file holds (16-bit samples, in order), it reads what mix_film would
    read from the file, to the last bit, because it meters the same windows of the same values. A context
    manager: its thread ends with the block."""

    def __init__(self, seconds: float, sample_rate: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from storyflow.media.loudness import LoudnessMeter

        self.total, self.sample_rate, self.frames = round(seconds * sample_rate), sample_rate, 0
        self._window = _steps(sample_rate)[1]
        self._meter = LoudnessMeter(sample_rate, 2)
        self._held: list[np.ndarray] = []  # 16-bit samples not metered yet (less than a window)
        self._pool = ThreadPoolExecutor(1)
        self._metering: list = []

    def feed(self, pcm: np.ndarray) -> None:
        """The next int16 (n, 2) samples written to the file."""
        import numpy as np

        self._held.append(pcm)
        self.frames += len(pcm)
        held = sum(map(len, self._held))
        if held >= self._window or self.frames >= self.total:
            joined = np.concatenate(self._held)
            cut = len(joined) if self.frames >= self.total else len(joined) // self._window * self._window
            self._held = [joined[cut:]] if cut < len(joined) else []
            for start in range(0, cut, self._window):
                self._metering.append(self._pool.submit(self._feed, joined[start : start + self._window]))

    def __enter__(self) -> BedMeter:
        return self

    def __exit__(self, *exc_info) -> None:
        self._pool.shutdown(cancel_futures=True)

    def heard(self, bed: AudioTrack) -> Heard | None:
        """The measurement of the written file (None unless it was fed, at the mix's rate, exactly the film's
        length: a bed found in the catalog instead, say)."""
        for metering in self._metering:
            metering.result()
        if self.frames != self.total or self._held or bed.sample_rate != self.sample_rate or bed.reused:
            return None
        return Heard(_bed_of(bed.sha256, self.total, self.sample_rate), self._meter.lufs())

    def _feed(self, pcm: np.ndarray) -> None:
        from storyflow.media import pcm_samples

        self._meter.feed(pcm_samples(pcm))


def _narration_of(narration: list, digests: list[str], total: int, sample_rate: int) -> tuple:
    return ("narration", tuple((round(start * sample_rate), digest) for (start, _), digest in zip(narration, digests)),
            total, sample_rate)  # fmt: skip


def _bed_of(digest: str | None, total: int, sample_rate: int) -> tuple:
    return ("bed", digest, total, sample_rate)


def _bed_lufs(source: _FilmSource, window: int) -> float:
    """A music or effects source's loudness, read window by window (a silent source: -inf)."""
    from storyflow.media.loudness import LoudnessMeter

    meter = LoudnessMeter(source.sample_rate, 2)
    for start in range(0, source.total if source.wav is not None else 0, window):
        meter.feed(source.read(start, min(source.total, start + window)))
    return meter.lufs()


def _steps(sample_rate: int) -> tuple[int, int]:
    """(hop, window): the 10 ms control step in samples, and the window sources are read in (whole steps, so
    the voice's levels come out as one pass would)."""
    hop = max(1, round(CONTROL_HOP_S * sample_rate))
    return hop, max(hop, WINDOW // hop * hop)


# ---------------------------------------------------------------- balance and ducking


def _gain_to(measured_lufs: float, target_lufs: float) -> float:
    """Linear gain that moves a measured loudness to a target (1.0 for silence)."""
    if measured_lufs == float("-inf"):
        return 1.0
    return 10 ** ((target_lufs - measured_lufs) / 20)


def _voice_levels(voice: np.ndarray, hop: int) -> np.ndarray:
    """The voice's RMS per 10 ms step (`hop` samples; a short last step is padded with silence)."""
    import numpy as np

    frames = -(-len(voice) // hop)
    padded = np.zeros(frames * hop, dtype=np.float32)
    padded[: len(voice)] = voice
    return np.sqrt((padded.reshape(frames, hop) ** 2).mean(axis=1))


def _duck_envelope(
    rms: np.ndarray, total: int, sample_rate: int, attack_s: float, release_s: float, lookahead_s: float
) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """Ducking depth 0..1 per 10 ms step from the voice's levels, and the spans where speech was found.

    1. speech activity every 10 ms: louder than SPEECH_FLOOR_DB under the loudest 10 ms;
    2. pauses shorter than WORD_GAP_S are bridged, so the music does not pump between words;
    3. the activity is moved `lookahead_s` earlier at its starts (never at its ends);
    4. the depth ramps linearly towards it: 0 -> 1 over attack_s, 1 -> 0 over release_s.
    Each value holds from the start of its step; windows interpolate between step starts.
    """
    import numpy as np

    hop = max(1, round(CONTROL_HOP_S * sample_rate))
    frames = len(rms)
    loudest = float(rms.max()) if frames else 0.0
    if loudest <= 1e-6:
        return np.zeros(frames, dtype=np.float32), ()

    # 1-2. activity, with short pauses bridged
    active = rms > loudest * 10 ** (SPEECH_FLOOR_DB / 20)
    gap = round(WORD_GAP_S / CONTROL_HOP_S)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    starts, ends = edges[0::2], edges[1::2]  # [start, end) in control frames
    keep_starts, keep_ends = [starts[0]], []
    for start, end_before in zip(starts[1:], ends[:-1]):
        if start - end_before > gap:
            keep_ends.append(end_before)
            keep_starts.append(start)
    keep_ends.append(ends[-1])
    spans = tuple(
        (float(round(s * hop / sample_rate, 4)), float(round(min(total, e * hop) / sample_rate, 4)))
        for s, e in zip(keep_starts, keep_ends)
    )

    # 3. the target: 1 from `lookahead` before each span's start to its end
    lead = round(lookahead_s / CONTROL_HOP_S)
    target = np.zeros(frames, dtype=np.float32)
    for start, end in zip(keep_starts, keep_ends):
        target[max(0, start - lead) : end] = 1.0

    # 4. linear ramps towards the target (a loop over 10 ms steps: cheap even for long films)
    up, down = CONTROL_HOP_S / max(attack_s, 1e-6), CONTROL_HOP_S / max(release_s, 1e-6)
    depth = np.empty(frames, dtype=np.float32)
    level = 0.0
    for i, want in enumerate(target):
        level = min(want, level + up) if want > level else max(want, level - down)
        depth[i] = level
    return depth, spans


# ---------------------------------------------------------------- files and records


def _result_from_record(mix: AudioTrack, stems: dict[str, AudioTrack]) -> MixResult:
    """A MixResult for a reused mix, from the facts recorded with it."""
    measured = mix.options.get("measured", {})
    duck = measured.get("ducking", {})
    return MixResult(
        mix=mix,
        stems=stems,
        lufs=_number(measured.get("lufs")),
        target_lufs=float(mix.options.get("target_lufs", float("nan"))),
        gain_db=float(measured.get("gain_db", 0.0)),
        limited_db=_number(measured.get("limited_db")),
        true_peak_dbtp=_number(measured.get("true_peak_dbtp")),
        ducking=Ducking(
            music_db=float(duck.get("music_db", mix.options.get("duck_db", 0.0))),
            effects_db=float(duck.get("effects_db", mix.options.get("effects_duck_db", 0.0))),
            attack_s=float(duck.get("attack_s", 0.0)),
            release_s=float(duck.get("release_s", 0.0)),
            lookahead_s=float(duck.get("lookahead_s", 0.0)),
            speech_spans=tuple(tuple(span) for span in duck.get("speech_spans", ())),  # type: ignore[misc]
        ),
        reused=True,
    )


def _json_number(value: float) -> float | None:
    """Round for the record; -inf (silence) is stored as None, since JSON has no infinity."""
    import math

    return round(value, 4) if math.isfinite(value) else None


def _number(value: float | None) -> float:
    return float("-inf") if value is None else float(value)
