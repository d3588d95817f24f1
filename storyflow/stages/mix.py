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
back and a user can remix from them. numpy/scipy are imported inside the functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow.catalog import AUDIO, Generations
from storyflow.core import progress
from storyflow.core.errors import InputError
from storyflow.core.hashing import cache_key
from storyflow.core.models import AudioTrack
from storyflow.stages.audio import Maker, save_track

if TYPE_CHECKING:
    import numpy as np

MIX_VERSION = "storyflow mix 1"  # bump when the mixing recipe changes, so old mixes stop matching
STEM_KINDS = ("narration", "music", "effects")
REFERENCE_LUFS = -23.0  # where the narration is placed before the whole mix is normalised
CONTROL_HOP_S = 0.01  # the ducking envelope is computed every 10 ms, then interpolated
SPEECH_FLOOR_DB = -40.0  # narration quieter than this under its loudest 10 ms is not speech
WORD_GAP_S = 0.3  # pauses shorter than this inside speech do not release the duck
OVERRUN_SILENCE_DBFS = -60.0  # narration past the film's end must be quieter than this


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
    narration: list[tuple[float, Path]],
    music: Path | None,
    effects: Path | None,
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
) -> MixResult:
    """Mix narration lines, music and effects into the film's sound, plus its three stems.

    `narration` holds (start second in the film, WAV of one spoken line). `music` and
    `effects` are film-length WAVs (or None: that stem is then silent). Writes
    out_dir/audio/<kind>-<key12>.wav for the mix and each stem, atomically.

    What holds between the files (all 16-bit stereo WAVs, exactly round(seconds * rate)
    samples): narration + music + effects == mix, sample for sample, to within 16-bit
    rounding (at most 2 LSB), because each stem is its source times every gain the mix
    used: balance gain, ducking curve, normalisation gain AND the limiter's gain curve.
    The limiter's curve is 1.0 wherever no true peak of the sum would pass the ceiling, so
    there the stems are simply the sources at their mix gains; where it acted (see
    `limited_db`), it acted on all three stems alike, so a remix that changes the balance
    inherits those short dips.
    """
    import numpy as np

    from storyflow.media import sha256_file
    from storyflow.media.loudness import integrated_lufs, plan_normalization

    # 1. check inputs; the cache key is made of the inputs' contents and every setting
    _check_inputs(seconds, sample_rate, narration, music, effects)
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
    key = cache_key(
        "mix",
        recipe=MIX_VERSION,
        narration=[(round(start, 6), sha256_file(path)) for start, path in narration],
        music=sha256_file(music) if music else None,
        effects=sha256_file(effects) if effects else None,
        seconds=round(seconds, 6),
        sample_rate=sample_rate,
        settings=settings,
    )
    stem_keys = {kind: cache_key("mix-stem", stem=kind, mix=key) for kind in STEM_KINDS}

    # 2. reuse a finished mix only when the mix and all three stems are there (the stems are parts of the
    #    mix: the run's tally counts the mix alone)
    door = door or Generations.in_memory()
    stems_found = {kind: door.reuse(AUDIO, stem_keys[kind], tally=None) for kind in STEM_KINDS}
    found = door.reuse(AUDIO, key, tally="mix") if all(stems_found.values()) else None
    if found is not None:
        progress.report("audio", kind="mix", reused=True)
        return _result_from_record(found, stems_found)  # type: ignore[arg-type]

    # 3. the sources, each film-length stereo at the mix's rate
    started = time.perf_counter()
    total = round(seconds * sample_rate)
    speech = _place_narration(narration, total, sample_rate)
    bed = _film_length(music, total, sample_rate, "music") if music else np.zeros((total, 2), np.float32)
    sfx = _film_length(effects, total, sample_rate, "effects") if effects else np.zeros((total, 2), np.float32)

    # 4. balance by loudness: narration at the reference, music and effects below it
    speech_lufs = integrated_lufs(speech, sample_rate)
    narration_gain = _gain_to(speech_lufs, REFERENCE_LUFS)
    music_gain = _gain_to(integrated_lufs(bed, sample_rate), REFERENCE_LUFS + music_db)
    effects_gain = _gain_to(integrated_lufs(sfx, sample_rate), REFERENCE_LUFS + music_db + effects_db)

    # 5. the sidechain: how far under speech each bed is pulled, per sample (0 .. 1)
    depth, spans = _duck_depth(speech[:, 0], sample_rate, attack_s, release_s, lookahead_s)
    music_curve = (music_gain * 10 ** (duck_db * depth / 20)).astype(np.float32)
    effects_curve = (effects_gain * 10 ** (effects_duck_db * depth / 20)).astype(np.float32)
    # each source becomes its part in place: a film-length array fewer per part (memory grows with the film)
    speech *= np.float32(narration_gain)
    bed *= music_curve[:, None]
    sfx *= effects_curve[:, None]
    parts = {"narration": speech, "music": bed, "effects": sfx}
    del music_curve, effects_curve, depth

    # 6. loudness normalisation and the true-peak limiter, planned on the sum, applied to each part
    balanced = parts["narration"] + parts["music"] + parts["effects"]
    plan = plan_normalization(balanced, sample_rate, target_lufs, ceiling_dbfs)
    ducking = Ducking(duck_db, effects_duck_db, attack_s, release_s, lookahead_s, spans)

    # 7. write the stems, then the mix; record the mix last, so a recorded mix implies its stems
    measured = {
        "lufs": _json_number(plan.lufs_after),
        "gain_db": round(plan.gain_db, 4),
        "limited_db": _json_number(plan.limited_db),
        "true_peak_dbtp": _json_number(plan.true_peak_after),
        "ducking": ducking.as_dict(),
    }
    stem_tracks = {}
    for kind in STEM_KINDS:  # one stem in memory at a time: made, written, let go
        track = save_track(kind, plan.apply(parts.pop(kind)), sample_rate, stem_keys[kind], out_dir,
                           Maker(MIX_VERSION, options={"stem_of": key, **settings}), started)  # fmt: skip
        stem_tracks[kind] = door.keep(AUDIO, track, tally=None)
    mix = plan.apply(balanced)
    del balanced
    mix_track = save_track("mix", mix, sample_rate, key, out_dir,
                           Maker(MIX_VERSION, options={**settings, "measured": measured}), started)  # fmt: skip
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


def _place_narration(narration: list[tuple[float, Path]], total: int, sample_rate: int) -> np.ndarray:
    """Every line at its start time on one film-length stereo track (the voice in the centre)."""
    import numpy as np

    from storyflow.media import read_wav, resample

    track = np.zeros((total, 2), dtype=np.float32)
    for start, path in narration:
        samples, rate = read_wav(path)
        voice = resample(samples.mean(axis=1), rate, sample_rate)
        at = round(start * sample_rate)
        fits = min(len(voice), total - at)
        overrun = voice[fits:]
        if len(overrun) and np.abs(overrun).max() > 10 ** (OVERRUN_SILENCE_DBFS / 20):
            raise InputError(
                f"narration line {Path(path).name} runs {len(overrun) / sample_rate:.2f} s past the film's end",
                fix="shorten the line, speak it faster (--speech-rate), or lengthen its shot",
            )
        track[at : at + fits] += voice[:fits, None]  # only silence is cut off the end
    return track


def _film_length(path: Path, total: int, sample_rate: int, what: str) -> np.ndarray:
    """A music or effects WAV as film-length stereo; more than 0.1 s off the film's length is an error."""
    import numpy as np

    from storyflow.media import read_wav, resample

    samples, rate = read_wav(path)
    samples = resample(samples, rate, sample_rate)
    if samples.shape[1] == 1:
        samples = np.repeat(samples, 2, axis=1)
    elif samples.shape[1] > 2:
        raise InputError(f"{what} file {path} has {samples.shape[1]} channels", fix="give a mono or stereo WAV")
    if abs(len(samples) - total) > 0.1 * sample_rate:
        raise InputError(
            f"{what} file {Path(path).name} is {len(samples) / sample_rate:.2f} s long, "
            f"the film {total / sample_rate:.2f} s",
            fix=f"render the {what} for the film's final length (after extension) and mix again",
        )
    out = np.zeros((total, 2), dtype=np.float32)
    n = min(total, len(samples))
    out[:n] = samples[:n]
    return out


# ---------------------------------------------------------------- balance and ducking


def _gain_to(measured_lufs: float, target_lufs: float) -> float:
    """Linear gain that moves a measured loudness to a target (1.0 for silence)."""
    if measured_lufs == float("-inf"):
        return 1.0
    return 10 ** ((target_lufs - measured_lufs) / 20)


def _duck_depth(
    voice: np.ndarray, sample_rate: int, attack_s: float, release_s: float, lookahead_s: float
) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """Per-sample ducking depth 0..1 from the narration, and the spans where speech was found.

    1. speech activity every 10 ms: louder than SPEECH_FLOOR_DB under the loudest 10 ms;
    2. pauses shorter than WORD_GAP_S are bridged, so the music does not pump between words;
    3. the activity is moved `lookahead_s` earlier at its starts (never at its ends);
    4. the depth ramps linearly towards it: 0 -> 1 over attack_s, 1 -> 0 over release_s.
    """
    import numpy as np

    total = len(voice)
    hop = max(1, round(CONTROL_HOP_S * sample_rate))
    frames = -(-total // hop)
    padded = np.zeros(frames * hop, dtype=np.float32)
    padded[:total] = voice
    rms = np.sqrt((padded.reshape(frames, hop) ** 2).mean(axis=1))
    loudest = float(rms.max()) if frames else 0.0
    if loudest <= 1e-6:
        return np.zeros(total, dtype=np.float32), ()

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
    # each control value holds from the start of its 10 ms step; interpolate between step starts
    times = np.arange(frames) * hop
    per_sample = np.interp(np.arange(total), times, depth).astype(np.float32)
    return per_sample, spans


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
