"""The embedded video-to-audio backend: sound effects derived from the clips themselves.

It stands in for video-to-audio models (MMAudio and the like) behind the same
EffectsBackend contract: a shot's clips and words in, stereo samples out. It watches the
picture, then synthesizes:

1. the picture, measured on small grey frames (<= 96 px wide): how much things move
   (mean absolute change between frames once the camera's own shift is taken out), how
   the camera moves (the dominant shift between frames, by phase correlation, so a pan
   reads as camera motion and not as motion on screen), and sudden brightness (flashes);
2. a bed whose character comes from the sound cue and the prompt's words (rain, waves,
   wind, birds, footsteps, fire, engine, crowd, thunder, or silence) and whose energy
   follows the on-screen motion;
3. accents: an impact on a hard cut in, a whoosh that follows the camera's speed, and a
   larger swell for the big camera moves (FPV drone, crane, arc, dolly zoom).

Deterministic from the seed (sha256-derived generators); numpy and scipy.signal only.
"""

from __future__ import annotations

import functools
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from storyflow.backends.base import BackendOptions, EffectsBackend, EffectsRequest
from storyflow.core.errors import InputError, MediaError
from storyflow.core.hashing import derive_seed

if TYPE_CHECKING:
    import numpy as np

# ---------------------------------------------------------------- what the words ask for

# Each bed and the words that call for it (matched as whole words, case-insensitive).
BED_WORDS: dict[str, tuple[str, ...]] = {
    "rain": ("rain", "rains", "rainy", "raining", "rainfall", "drizzle", "downpour", "rainstorm", "storm", "stormy"),
    "waves": ("wave", "waves", "sea", "seas", "ocean", "surf", "shore", "tide", "beach", "seaside", "breakers"),
    "wind": ("wind", "winds", "windy", "breeze", "gust", "gusts", "gale", "blizzard", "storm", "stormy", "howling"),
    "birds": ("bird", "birds", "birdsong", "gull", "gulls", "seagull", "seagulls", "chirp", "chirps", "chirping",
              "songbird", "songbirds", "sparrow", "sparrows", "crow", "crows"),  # fmt: skip
    "footsteps": ("footstep", "footsteps", "step", "steps", "walk", "walks", "walking", "run", "runs", "running",
                  "stride", "strides", "march", "marching", "knock", "knocks", "knocking", "stomp"),  # fmt: skip
    "fire": ("fire", "fires", "flame", "flames", "campfire", "fireplace", "torch", "candle", "crackle",
             "crackling", "burning", "embers", "blaze"),  # fmt: skip
    "engine": ("engine", "engines", "motor", "car", "cars", "truck", "traffic", "train", "plane", "airplane",
               "machine", "machinery", "hum", "humming", "generator"),  # fmt: skip
    "crowd": ("crowd", "crowds", "people", "market", "chatter", "audience", "party", "cafe", "bustling", "murmur"),
    "thunder": ("thunder", "thunderclap", "lightning", "thunderstorm", "storm", "stormy"),
}
SILENCE_WORDS = ("silence", "silent", "soundless", "hush", "hushed", "mute", "muted", "quiet")
BIG_CAMERA_MOVES = ("FPV drone shot", "crane shot", "arc shot", "dolly zoom")  # CameraMove values

# Calibration of the picture measures (luminance in 0..1, per second so fps does not matter).
MOTION_FULL = 0.15  # mean luminance change per second that counts as "a lot of motion"
CAMERA_FULL = 0.15  # frame widths per second that count as a fast camera move
FLASH_JUMP = 0.12  # a rise in mean luminance over the recent median that counts as a flash
ANALYSIS_WIDTH = 96  # frames are measured at most this wide
DECODERS = 4  # an extended shot's clips decoded at once


class ProceduralFoleyOptions(BackendOptions):
    motion_gain: float = Field(
        default=1.0, ge=0.0, le=10.0, description="how strongly on-screen motion drives the level"
    )
    accents: bool = Field(default=True, description="impacts on cuts, whooshes and swells on camera moves")
    level_db: float = Field(default=0.0, ge=-40.0, le=12.0, description="overall level offset in dB")


# ---------------------------------------------------------------- 1. the picture, measured


@dataclass(frozen=True)
class PictureMotion:
    """Per-frame measures of a shot's picture; index i is frame i of the shot."""

    fps: int
    motion: np.ndarray  # on-screen motion: mean |change| per second, camera shift removed (luminance 0..1)
    camera_speed: np.ndarray  # camera movement in frame widths per second
    camera_dx: np.ndarray  # signed horizontal camera shift per frame (fraction of width; + = content moves right)
    brightness: np.ndarray  # mean luminance 0..1
    flashes: tuple[int, ...]  # frames where the brightness jumps up (lightning, explosions)

    @property
    def num_frames(self) -> int:
        return len(self.brightness)


def analyze_picture(clips: tuple[Path, ...] | list[Path], fps: int, num_frames: int | None = None) -> PictureMotion:
    """Decode the clips in order and measure motion, camera movement and flashes per frame."""
    import numpy as np

    # 1. small grey frames, all the same size
    grey = _small_grey_frames(clips)
    if num_frames is not None and len(grey) != num_frames:
        warnings.warn(
            f"the clips hold {len(grey)} frames, the request says {num_frames}; "
            "the effects are timed to the request (holding the last frame or dropping extras)",
            stacklevel=2,
        )
        if len(grey) > num_frames:
            grey = grey[:num_frames]
        else:
            grey = np.concatenate([grey, np.repeat(grey[-1:], num_frames - len(grey), axis=0)])
    count, height, width = grey.shape

    # 2. the camera: dominant shift between consecutive frames by phase correlation; each frame's mean
    #    is removed first, so a global flash reads as brightness, not as motion or a shift
    brightness = grey.mean(axis=(1, 2))
    centred = grey - brightness[:, None, None]
    shifts = _phase_correlation_shifts(centred)  # (count, 2): dy, dx in pixels, row 0 is zero

    # 3. on-screen motion: change that remains once the previous frame is moved by the camera shift
    motion = _compensated_differences(centred, shifts)
    if count > 1:
        motion[0] = motion[1]
    motion *= fps

    # 4. flashes: brightness well above the median of the (up to) 6 frames just before
    recent = np.empty(count, dtype=np.float32)
    recent[0] = np.inf  # frame 0 has nothing before it
    for i in range(1, min(count, 6)):
        recent[i] = np.median(brightness[:i])
    if count > 6:
        recent[6:] = np.median(np.lib.stride_tricks.sliding_window_view(brightness[:-1], 6), axis=1)
    flashes: list[int] = []
    for i in np.flatnonzero(brightness - recent > FLASH_JUMP).tolist():
        if not flashes or i - flashes[-1] > fps // 2:
            flashes.append(i)

    camera_speed = np.hypot(shifts[:, 0], shifts[:, 1]) / width * fps
    return PictureMotion(
        fps=fps,
        motion=motion,
        camera_speed=camera_speed.astype(np.float32),
        camera_dx=(shifts[:, 1] / width).astype(np.float32),
        brightness=brightness.astype(np.float32),
        flashes=tuple(flashes),
    )


def _small_grey_frames(clips: tuple[Path, ...] | list[Path]) -> np.ndarray:
    """All frames of the clips as luminance 0..1, downscaled to <= ANALYSIS_WIDTH wide: float32 (n, h, w).
    An extended shot's clips are decoded side by side, a thread each (the decoder releases the GIL)."""
    import numpy as np
    from PIL import Image

    from storyflow.media import read_luma

    def decoded(clip: Path) -> list[np.ndarray]:
        return list(read_luma(clip, ANALYSIS_WIDTH, deblock=False))  # the deblocking would be averaged away

    for clip in clips:
        if not Path(clip).is_file():
            raise MediaError(f"clip {clip} does not exist", fix="render the shot's clips before its effects")
    with ThreadPoolExecutor(max(1, min(len(clips), DECODERS))) as pool:
        pictures = [luma for clip_frames in pool.map(decoded, clips) for luma in clip_frames]
    if not pictures:
        raise MediaError(
            f"no video frames in {', '.join(str(c) for c in clips) or 'the request'}",
            fix="pass the shot's rendered clips (mp4 files with frames)",
        )
    size = pictures[0].shape  # a clip of another size: measured at the first's
    return np.stack([luma if luma.shape == size else
                     np.asarray(Image.fromarray(luma).resize(size[::-1], Image.Resampling.BOX)) for luma in pictures])  # fmt: skip


PHASE_PIXELS = 1 << 17  # frames transformed together, in pixels: a batch that stays in the core's cache (2x faster)


def _phase_correlation_shifts(centred: np.ndarray) -> np.ndarray:
    """(n, 2) sub-pixel shifts (dy, dx) that carry frame i-1 onto frame i; 0 where no shift is coherent.
    `centred`: the frames less their means."""
    import numpy as np
    from scipy import fft  # float32 transforms, faster than numpy's

    count, height, width = centred.shape
    shifts = np.zeros((count, 2), dtype=np.float32)
    if count < 2:
        return shifts
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    chunk = max(4, PHASE_PIXELS // (height * width))
    previous = None  # the last spectrum of the chunk before: each frame is transformed once
    for start in range(0, count, chunk):
        spectra = fft.rfft2(centred[start : start + chunk] * window)
        if previous is not None:
            spectra = np.concatenate([previous, spectra])
        previous = spectra[-1:]
        cross = spectra[1:] * spectra[:-1].conj()
        magnitude = np.abs(cross)
        np.maximum(magnitude, 1e-9, out=magnitude)
        cross /= magnitude
        surface = fft.irfft2(cross, s=(height, width), overwrite_x=True)
        first = max(start, 1)  # surface row k carries frame first + k - 1 onto frame first + k
        shifts[first : first + len(surface)] = _peaks(surface)
    return shifts


def _peaks(surface: np.ndarray) -> np.ndarray:
    """(n, 2) signed sub-pixel positions (dy, dx) of each correlation surface's peak (n, h, w), by a parabola
    through the peak and its neighbours along each axis; 0 where the peak is too low to be a shared shift."""
    import numpy as np

    count, height, width = surface.shape
    flat = surface.reshape(count, -1)
    at = flat.argmax(axis=1)
    rows, y, x = np.arange(count), at // width, at % width
    top = flat[rows, at]
    offsets = np.empty((count, 2), dtype=np.float32)
    neighbours = (
        (y, height, surface[rows, (y - 1) % height, x], surface[rows, (y + 1) % height, x]),
        (x, width, surface[rows, y, (x - 1) % width], surface[rows, y, (x + 1) % width]),
    )
    for axis, (pos, size, before, after) in enumerate(neighbours):
        bend = before - 2 * top + after
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(bend < 0, 0.5 * (before - after) / bend, 0.0)
        signed = np.where(pos <= size // 2, pos, pos - size)
        offsets[:, axis] = signed + np.clip(fraction, -0.5, 0.5)
    offsets[top < 0.08] = 0  # no shift shared by the frame: leave it to the motion measure
    return offsets


def _compensated_differences(centred: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """(n,) float32: mean |frame i - frame i-1 moved by shift i| over the part both frames see; 0 for frame 0.
    Frames are taken together by whole-pixel shift (a shot has few distinct ones)."""
    import numpy as np

    count, height, width = centred.shape
    out = np.zeros(count, dtype=np.float32)
    whole = np.rint(shifts[1:]).astype(np.int64)
    whole[(np.abs(whole[:, 0]) >= height // 2) | (np.abs(whole[:, 1]) >= width // 2)] = 0  # too far: plain difference
    for dy, dx in np.unique(whole, axis=0).tolist():
        pairs = np.flatnonzero((whole[:, 0] == dy) & (whole[:, 1] == dx))  # pair k: frames k and k + 1
        every = 2 * len(pairs) > count  # most of the shot: all pairs by slicing costs less than gathering some
        rows = slice(None) if every else pairs
        cur = centred[1:][rows, max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)]
        prev = centred[:-1][rows, max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
        change = np.subtract(cur, prev)
        np.abs(change, out=change)
        means = change.mean(axis=(1, 2))
        out[pairs + 1] = means[pairs] if every else means
    return out


# ---------------------------------------------------------------- 2. what should be heard


def beds_for(sound_cue: str, prompt: str) -> dict[str, float]:
    """Bed name -> weight (1.0 named by the sound cue, 0.6 only seen in the prompt); {} means silence.

    Sounds the cue names always play ("quiet rain" is rain); a cue that names no sound but
    asks for silence silences the shot, whatever the prompt shows; then the prompt's sounds,
    or its silence; with no sound named anywhere, the bed is 'movement' (soft noise that
    follows motion).
    """
    cue_words = set(re.findall(r"[a-z]+", sound_cue.lower()))
    prompt_words = set(re.findall(r"[a-z]+", prompt.lower()))
    # lists in BED_WORDS' order, not sets: the beds are added in this order, and floats added in another
    # order round differently (a set's order changes with each process's string hashing)
    named = [bed for bed, words in BED_WORDS.items() if cue_words & set(words)]
    seen = [bed for bed, words in BED_WORDS.items() if prompt_words & set(words) and bed not in named]
    if not named and cue_words & set(SILENCE_WORDS):
        return {}
    if not named and not seen and prompt_words & set(SILENCE_WORDS):
        return {}
    beds = {bed: 1.0 for bed in named} | {bed: 0.6 for bed in seen}
    return beds or {"movement": 1.0}


# ---------------------------------------------------------------- the backend


class ProceduralFoley(EffectsBackend):
    name = "procedural"
    # 2: the picture measured on the decoder's luma plane; 3: cheaper synthesis (float32, uniform-draw
    # white noise, filters designed once, crackles filtered per snap): the same beds, new samples;
    # 4: the luma decoded without the loop filter and box-averaged unrounded: the same measures within
    # their noise, so new samples where a measure moves
    version = "4"
    description = "effects from the picture: motion-driven beds from the sound cue, accents on cuts and camera moves"
    Options = ProceduralFoleyOptions

    def render(self, request: EffectsRequest) -> np.ndarray:
        """Stereo float32 effects for the shot, exactly round(num_frames / fps * sample_rate) samples."""
        import numpy as np

        # 1. check inputs and measure the picture
        if request.fps <= 0 or request.num_frames <= 0 or request.sample_rate <= 0:
            raise InputError(
                f"effects request needs positive fps, num_frames and sample_rate "
                f"(got {request.fps}, {request.num_frames}, {request.sample_rate})",
                fix="build the EffectsRequest from the shot's rendered clips",
            )
        if not request.clips:
            raise InputError("effects request has no clips", fix="pass the shot's rendered clips in order")
        picture = analyze_picture(request.clips, request.fps, request.num_frames)
        rate = request.sample_rate
        total = round(request.num_frames / request.fps * rate)
        synth = _Synth(rate, total, request.seed, request.prompt, request.sound_cue)

        # 2. the motion envelope at audio rate: quick to rise, slow to fall
        motion = np.clip(self.options.motion_gain * picture.motion / MOTION_FULL, 0.0, 1.5)
        motion_env = synth.frames_to_audio(_attack_release(motion, request.fps, 0.04, 0.3), request.fps)
        camera = np.clip(picture.camera_speed / CAMERA_FULL, 0.0, 1.5)
        camera_env = synth.frames_to_audio(_attack_release(camera, request.fps, 0.08, 0.4), request.fps)

        # 3. the bed(s) named by the words, each following motion above its own floor
        beds = beds_for(request.sound_cue, request.prompt)
        if not beds:
            out = synth.noise("room")
            out *= np.float32(10 ** (-75 / 20))  # near-nothing, not digital zero
            return out
        out = np.zeros((total, 2), dtype=np.float32)
        for bed, weight in beds.items():
            layer = getattr(synth, bed)(motion_env, picture)
            if weight != 1.0:
                layer *= np.float32(weight)
            out += layer

        # 4. accents: impact on the cut in, whoosh with the camera's speed, swell on big moves
        if self.options.accents:
            big = request.camera in BIG_CAMERA_MOVES
            whoosh = synth.camera_whoosh(camera_env * np.float32(1.8 if big else 1.0), picture)
            if whoosh is not None:
                out += whoosh
            if big:
                out += synth.swell()
            if request.cut_in:
                out += synth.impact()

        # 5. level, and never past full scale
        out *= np.float32(10 ** (self.options.level_db / 20))
        peak = max(float(out.max()), -float(out.min())) if total else 0.0
        if peak > 0.95:
            out *= np.float32(0.95 / peak)
        return out


def _attack_release(values: np.ndarray, fps: int, attack_s: float, release_s: float) -> np.ndarray:
    """One-pole smoothing per frame: rises within ~attack_s, falls within ~release_s."""
    import numpy as np

    up = 1 - np.exp(-1 / max(1e-6, attack_s * fps))
    down = 1 - np.exp(-1 / max(1e-6, release_s * fps))
    out = np.empty(len(values), dtype=np.float32)
    level = float(values[0]) if len(values) else 0.0
    for i, value in enumerate(values):
        level += (value - level) * (up if value > level else down)
        out[i] = level
    return out


# ---------------------------------------------------------------- 3. the sounds


WHOOSH_FLOOR = 0.003  # camera envelope below which the whoosh (-24 dB RMS at full speed) is under -70 dBFS
CONTROL_STEP = 32  # slow curves (envelopes, syllables) are computed every 32 samples and interpolated


class _Synth:
    """The sound recipes for one render: each returns float32 (total, 2), a fresh array the caller may change.

    Cost is kept down by working in float32, in place on arrays of our own, by filtering noise as
    mid and side rows (contiguous, what the filter wants) and by computing slow curves at a control rate.
    """

    def __init__(self, rate: int, total: int, seed: int, prompt: str, sound_cue: str) -> None:
        self.rate, self.total = rate, total
        self.seed, self.context = seed, f"{prompt}\x00{sound_cue}"
        self.seconds = total / rate

    # ---- building blocks

    def rng(self, layer: str):
        import numpy as np

        return np.random.default_rng(derive_seed(self.seed, "foley", layer, self.context))

    def noise(self, layer: str, low: float | None = None, high: float | None = None, stereo: bool = True,
              width: float = 0.6) -> np.ndarray:  # fmt: skip
        """White noise band-passed to [low, high] Hz (None: open), unit variance before the filter:
        (total, 2) where stereo channels share (1 - width) of their signal, else (total,)."""
        import numpy as np

        rng = self.rng(layer)
        if not stereo:
            return self.band_noise(rng, self.total, low, high)[0]
        # mid and side rows at variances a² and b², filtered (the filter is linear), then L = mid + side and
        # R = mid - side: unit variance, correlation a² - b² = 1 - width
        mid, side = self.band_noise(rng, self.total, low, high, scales=(np.sqrt(1 - width / 2), np.sqrt(width / 2)))
        stereo_noise = np.empty((self.total, 2), dtype=np.float32)
        np.add(mid, side, out=stereo_noise[:, 0])
        np.subtract(mid, side, out=stereo_noise[:, 1])
        return stereo_noise

    def band_noise(self, rng: np.random.Generator, count: int, low: float | None, high: float | None,
                   scales: tuple[float, ...] = (1.0,), order: int = 2) -> np.ndarray:  # fmt: skip
        """Rows of white noise (standard deviation `scales`, one per row, at full rate) band-passed to
        [low, high] Hz (None: open): float32 (len(scales), count).

        A band with a low top is drawn and filtered at a lower rate, at least 15 times its top (and at
        most 32 times lower than the full rate), then drawn linearly up to full rate: the same band for a
        fraction of the filtering; the images linear interpolation leaves above the lower rate's Nyquist
        are 46 dB down or more.
        """
        import numpy as np

        scales = np.asarray(scales, dtype=np.float64)[:, None]
        step = 1 if high is None else max(1, min(32, int(self.rate // (15 * high))))
        if step == 1:
            rows = _white(rng, (len(scales), count), scales)
            return _filter(self.rate, rows, low, high, order, axis=-1) if low or high else rows
        # white noise at 1/step of the rate packs its power into 1/step of the band: drawn at 1/sqrt(step) the std
        coarse = _white(rng, (len(scales), count // step + 2), scales / np.sqrt(step))
        return _upsample(_filter(self.rate / step, coarse, low, high, order, axis=-1), step, count)

    def band(self, signal: np.ndarray, low: float | None, high: float | None, order: int = 2,
             axis: int = 0) -> np.ndarray:  # fmt: skip
        """Filter along time: high-pass at `low`, low-pass at `high` (Hz), Butterworth; float32, C-ordered."""
        return _filter(self.rate, signal, low, high, order, axis)

    def at_rms(self, signal: np.ndarray, rms_db: float) -> np.ndarray:
        """Scale a steady signal (in place) so its RMS sits at rms_db (dBFS)."""
        import numpy as np

        flat = signal.reshape(-1)
        rms = float(np.sqrt(np.einsum("i,i->", flat, flat) / flat.size)) if flat.size else 0.0
        if rms > 0:
            signal *= np.float32(10 ** (rms_db / 20) / rms)
        return signal

    def frames_to_audio(self, per_frame: np.ndarray, fps: int) -> np.ndarray:
        """Per-frame values (at frame centres) interpolated to one value per audio sample."""
        return _upsample(self.frames_to_control(per_frame, fps), CONTROL_STEP, self.total)

    def frames_to_control(self, per_frame: np.ndarray, fps: int) -> np.ndarray:
        """Per-frame values (at frame centres) interpolated to the control points."""
        import numpy as np

        return np.interp(self.control_times(), (np.arange(len(per_frame)) + 0.5) / fps, per_frame)

    def control_times(self) -> np.ndarray:
        """The times (s) of the control points: every CONTROL_STEP samples, one past the end."""
        import numpy as np

        return np.arange(self.total // CONTROL_STEP + 2) * (CONTROL_STEP / self.rate)

    def follow(self, env: np.ndarray, floor: float) -> np.ndarray:
        """Level curve (total,): `floor` when nothing moves, 1.0 at full motion."""
        import numpy as np

        return np.float32(floor) + np.float32(1 - floor) * env

    def slow_sine(self, cycles_per_s: float, phase: float) -> np.ndarray:
        """sin(2π f t + phase) for a slow f (up to ~50 Hz: within 0.5% of a true sine), made at the control rate."""
        import numpy as np

        return _upsample(np.sin(2 * np.pi * cycles_per_s * self.control_times() + phase), CONTROL_STEP, self.total)

    def events(self, layer: str, per_second: float) -> np.ndarray:
        """Random event times (seconds) at a mean rate: a Poisson process."""
        import numpy as np

        rng = self.rng(layer)
        count = rng.poisson(per_second * self.seconds)
        return np.sort(rng.uniform(0, self.seconds, count))

    def place(self, out: np.ndarray, sound: np.ndarray, at_s: float, gain: float = 1.0, pan: float = 0.0) -> None:
        """Add a short mono sound into stereo `out` at a time, panned -1 (left) .. 1 (right)."""
        self.place_many(out, sound, [at_s], [gain], [pan])

    def place_many(self, out: np.ndarray, sounds: np.ndarray, at_s, gains, pans) -> None:
        """Add short mono sounds into stereo `out`: one row of `sounds` per time (or one sound for all),
        each with its gain and pan (-1 left .. 1 right); overlaps add up. One scatter for all of them."""
        import numpy as np

        sounds = np.atleast_2d(np.asarray(sounds, dtype=np.float32))
        starts = np.rint(np.asarray(at_s, dtype=np.float64) * self.rate).astype(np.int64)
        at = 2 * (starts[:, None] + np.arange(sounds.shape[1]))  # interleaved: sample i's left is 2i, right 2i + 1
        angle = (np.asarray(pans, dtype=np.float64) + 1) * np.pi / 4
        scale = (np.asarray(gains, dtype=np.float64) * np.sqrt(2))[:, None]
        gains_lr = np.stack([scale * np.cos(angle)[:, None], scale * np.sin(angle)[:, None]]).astype(np.float32)
        weights = sounds * gains_lr  # (2, count, length): left, right
        spots = np.stack([at, at + 1])
        if spots.size and (spots.min() < 0 or spots.max() >= out.size):
            inside = (spots >= 0) & (spots < out.size)
            spots, weights = spots[inside], np.broadcast_to(weights, spots.shape)[inside]
        if not out.flags.c_contiguous:
            raise ValueError("place_many adds into a C-ordered (total, 2) array")
        np.add.at(out.reshape(-1), spots.reshape(-1), np.broadcast_to(weights, spots.shape).reshape(-1))

    def decay(self, seconds: float, tau: float) -> np.ndarray:
        import numpy as np

        t = np.arange(int(seconds * self.rate)) / self.rate
        return np.exp(-t / tau).astype(np.float32)

    # ---- beds (each: motion envelope at audio rate, picture measures -> (total, 2))

    def movement(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """No sound named: soft rustle that only moves when the picture does."""
        rustle = self.at_rms(self.noise("movement", 120, 1800), -27)
        return _scale(rustle, self.follow(env, 0.06))

    def rain(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """High hiss and scattered droplets; present even in a still shot."""
        hiss = self.at_rms(self.noise("rain", 2500, None), -25)
        tick = self.rng("drop").standard_normal(int(0.004 * self.rate)) * self.decay(0.004, 0.001)
        click = self.band(tick, 3000, None)
        rng = self.rng("drop-place")
        drops = self.events("drops", 40)
        placing = rng.uniform(size=(len(drops), 2))  # per drop: gain, pan
        self.place_many(hiss, click, drops, 0.05 * (0.3 + 0.7 * placing[:, 0]), -0.8 + 1.6 * placing[:, 1])
        return _scale(hiss, self.follow(env, 0.7))

    def waves(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """Low swells rolling in every 5-9 s, with a little spray at each crest."""
        import numpy as np

        rng = self.rng("swell")
        period = rng.uniform(5.0, 9.0)
        swell = self.slow_sine(0.5 / period, rng.uniform(0, np.pi))
        swell *= swell
        swell *= np.float32(0.55)
        swell += np.float32(0.45)
        body = self.at_rms(_scale(self.noise("waves", 40, 450), swell), -23)
        body += self.at_rms(_scale(self.noise("spray", 1500, 6000), swell**3), -31)
        return _scale(body, self.follow(env, 0.7))

    def wind(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """Band-passed whoosh whose colour drifts between a low and a higher band with the gusts."""
        import numpy as np

        rng = self.rng("gust")
        gust = self.slow_sine(1 / rng.uniform(3.0, 6.0), rng.uniform(0, 2 * np.pi))
        gust *= np.float32(0.5)
        gust += np.float32(0.5)
        level = np.float32(0.5) + np.float32(0.5) * gust  # the gusts are louder as well as brighter
        low = self.noise("wind-low", 250, 700)
        high = self.noise("wind-high", 700, 1600)
        _scale(low, (1 - gust) * level)
        low += _scale(high, gust * level)
        return _scale(self.at_rms(low, -25), self.follow(env, 0.5))

    def birds(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """Chirps: short upward or downward whistles, often in quick twos and threes."""
        import numpy as np

        out = np.zeros((self.total, 2), dtype=np.float32)
        rng = self.rng("chirp")
        for at in self.events("birds", 1.6):
            start_hz, end_hz = rng.uniform(2500, 4500), rng.uniform(2500, 5000)
            length = rng.uniform(0.05, 0.14)
            t = np.arange(int(length * self.rate)) / self.rate
            freq = np.linspace(start_hz, end_hz, len(t))
            chirp = np.sin(2 * np.pi * np.cumsum(freq) / self.rate) * np.sin(np.pi * t / length) ** 2
            pan = rng.uniform(-0.9, 0.9)
            for repeat in range(int(rng.integers(1, 4))):
                self.place(out, chirp.astype(np.float32), at + repeat * length * 1.4, 0.06, pan)
        return _scale(out, self.follow(env, 0.85))

    def footsteps(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """A soft thud at each peak of on-screen motion (or at a walking pace through steady motion)."""
        import numpy as np

        out = np.zeros((self.total, 2), dtype=np.float32)
        rng = self.rng("step")
        n = int(0.09 * self.rate)
        t = np.arange(n) / self.rate
        thud = np.sin(2 * np.pi * 70 * t) * np.exp(-t / 0.025)
        scuff_shape = np.exp(-t / 0.012)
        steps = _step_times(picture)
        if not steps:
            return out
        scuffs, gains, pans = np.empty((len(steps), n)), np.empty(len(steps)), np.empty(len(steps))
        for row, (_, strength) in enumerate(steps):  # the draws in their order, then all the scuffs filtered at once
            scuffs[row] = rng.standard_normal(n) * scuff_shape
            gains[row], pans[row] = 0.25 * strength * rng.uniform(0.8, 1.1), rng.uniform(-0.2, 0.2)
        sounds = self.band(scuffs, 200, 2500, axis=-1)
        sounds *= np.float32(0.5)
        sounds += (0.7 * thud).astype(np.float32)
        self.place_many(out, sounds, [at for at, _ in steps], gains, pans)
        return out

    def fire(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """A low roar and sharp, irregular crackles."""
        import numpy as np

        roar = self.at_rms(self.noise("roar", 30, 300), -29)
        rng = self.rng("crackle")
        times = self.events("fire", 18)
        if len(times):
            # each snap high-passed on its own, with room for its ring (a 1.5 kHz high-pass rings for well
            # under 1 ms), rather than a whole stereo track of mostly silence: the same sum, the filter being linear
            ring = int(0.004 * self.rate)
            snaps = np.zeros((len(times), int(0.004 * self.rate) + ring))
            gains, pans = np.empty(len(times)), np.empty(len(times))
            for row in range(len(times)):
                n = int(rng.uniform(0.001, 0.004) * self.rate)
                snaps[row, :n] = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.3 * n))
                gains[row], pans[row] = 0.25 * min(1.0, rng.pareto(2.5) * 0.4 + 0.1), rng.uniform(-0.6, 0.6)
            self.place_many(roar, self.band(snaps, 1500, None, axis=-1), times, gains, pans)
        return _scale(roar, self.follow(env, 0.7))

    def engine(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """A harmonic hum whose pitch rises a little with motion (revving), over rumble."""
        import numpy as np

        rng = self.rng("engine")
        base = rng.uniform(38, 55)
        freq = base * (1 + 0.35 * np.clip(env, 0, 1.5).astype(np.float64))
        cycles = np.cumsum(freq) / self.rate
        offsets = [rng.uniform(0, 2 * np.pi) for _ in range(1, 9)]
        hum = _read_period(_harmonics_table(tuple(offsets)), cycles)  # 8 harmonics at 1/k, one lookup
        rumble = self.noise("engine-rumble", 20, 200, stereo=False)
        rumble *= np.float32(2.0)
        rumble += hum
        mono = self.at_rms(rumble, -25)
        mono *= self.follow(env, 0.7)
        return np.stack([mono, mono], axis=1)

    def crowd(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """Babble: several voice-like bands, each opening and closing at syllable rate."""
        import numpy as np

        rng = self.rng("crowd")
        left, right = np.zeros(self.total, dtype=np.float32), np.zeros(self.total, dtype=np.float32)
        for voice in range(8):
            formant = rng.uniform(350, 2500)
            voiced = self.noise(f"voice-{voice}", formant * 0.7, formant * 1.3, stereo=False)
            voiced *= np.abs(self.band_noise(self.rng(f"syllables-{voice}"), self.total, None, rng.uniform(3, 6))[0])
            pan = rng.uniform(-0.8, 0.8)
            left += voiced * np.float32(np.cos((pan + 1) * np.pi / 4))
            right += voiced * np.float32(np.sin((pan + 1) * np.pi / 4))
        out = self.at_rms(np.stack([left, right], axis=1), -27)
        return _scale(out, self.follow(env, 0.7))

    def thunder(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """A crack and a long low rumble shortly after each flash (distant rumbles if none is seen)."""
        import numpy as np

        out = np.zeros((self.total, 2), dtype=np.float32)
        rng = self.rng("thunder")
        if picture.flashes:
            strikes = [(i / picture.fps + rng.uniform(0.15, 0.6), 1.0) for i in picture.flashes]
        else:
            strikes = [(at, 0.4) for at in self.events("distant-thunder", 1 / 8)]
        for at, strength in strikes:
            length = rng.uniform(2.5, 4.0)
            n = int(length * self.rate)
            t = (np.arange(n) / self.rate).astype(np.float32)
            shape = (1 - np.exp(-t / np.float32(0.08))) * np.exp(-t / np.float32(length / 3))
            wobble = np.float32(0.6) + np.float32(0.4) * np.abs(np.sin(t * np.float32(2 * np.pi * rng.uniform(0.8, 2.0))))
            rumble = self.band_noise(rng, n, 25, 140, order=3)[0]
            rumble *= shape * wobble * np.float32(4.0)
            # the crack is over within 0.6 s (10 time constants, below -80 dB): only that much is filtered
            short = min(n, int(0.6 * self.rate))
            crack = self.band_noise(rng, short, 300, 5000)[0]
            crack *= np.exp(-t[:short] / np.float32(0.06)) * np.float32(0.5)
            rumble[:short] += crack
            self.place(out, rumble, at, 0.5 * strength, rng.uniform(-0.5, 0.5))
        return out

    # ---- accents

    def camera_whoosh(self, camera_env: np.ndarray, picture: PictureMotion) -> np.ndarray | None:
        """Air moving with the camera: level follows its speed, panned the way the picture slides.
        None when the camera (nearly) never moves: the whoosh would stay under -70 dBFS, not worth synthesizing."""
        import numpy as np

        if not len(camera_env) or float(camera_env.max()) < WHOOSH_FLOOR:
            return None
        air = self.at_rms(self.noise("whoosh", 250, 2200, stereo=False), -24)
        air *= camera_env
        # the pan law's gains at the control rate, drawn through every sample (cos and sin per sample cost more)
        side = self.frames_to_control(np.clip(picture.camera_dx * picture.fps / CAMERA_FULL, -1, 1), picture.fps)
        angle = (side + 1) * (np.pi / 4)
        gains = _upsample(np.sqrt(2) * np.stack([np.cos(angle), np.sin(angle)]), CONTROL_STEP, self.total)
        out = np.empty((self.total, 2), dtype=np.float32)
        np.multiply(air, gains[0], out=out[:, 0])
        np.multiply(air, gains[1], out=out[:, 1])
        return out

    def swell(self) -> np.ndarray:
        """A big move's swell: air and sub rising to the middle of the shot and falling away."""
        import numpy as np

        shape = self.slow_sine(0.5 / max(self.seconds, 1e-6), 0.0)
        shape *= shape
        air = self.at_rms(self.noise("swell", 150, 1200), -22)
        sub = self.slow_sine(42, 0.0)
        sub *= np.float32(10 ** (-24 / 20))
        air[:, 0] += sub
        air[:, 1] += sub
        return _scale(air, shape)

    def impact(self) -> np.ndarray:
        """The hit of a hard cut: a falling low thump with a short burst of noise, at t = 0."""
        import numpy as np

        n = min(self.total, int(0.5 * self.rate))
        t = np.arange(n) / self.rate
        freq = 35 + 45 * np.exp(-t / 0.05)
        thump = np.sin(2 * np.pi * np.cumsum(freq) / self.rate) * np.exp(-t / 0.12)
        burst = self.band_noise(self.rng("impact"), n, 80, 3000)[0] * np.exp(-t / 0.03)
        hit = (0.35 * thump + 0.12 * burst).astype(np.float32)
        out = np.zeros((self.total, 2), dtype=np.float32)
        self.place(out, hit, 0.0, 1.0)
        return out


INT16_STD = 65536 / 12**0.5  # the standard deviation of uniform int16 draws


def _scale(stereo: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """stereo (total, 2) times a per-sample gain (total,), in place: a pass per channel, three times
    faster than broadcasting over a last axis of two."""
    stereo[:, 0] *= gain
    stereo[:, 1] *= gain
    return stereo


def _white(rng: np.random.Generator, shape: int | tuple[int, ...], scale=1.0) -> np.ndarray:
    """White noise of standard deviation `scale` (a number, or one per row), float32, from uniform 16-bit
    draws: four per 64 random bits, a tenth of the cost of gaussian draws, with the same white spectrum
    (every layer is filtered or far down, and filtered noise is gaussian whatever the draws)."""
    import math

    import numpy as np

    count = math.prod(shape) if isinstance(shape, tuple) else shape
    draws = rng.bit_generator.random_raw(-(-count // 4)).view(np.int16)[:count].reshape(shape)
    return np.multiply(draws, np.asarray(scale, dtype=np.float32) / np.float32(INT16_STD), dtype=np.float32)


def _filter(rate: float, signal: np.ndarray, low: float | None, high: float | None, order: int = 2,
            axis: int = 0) -> np.ndarray:  # fmt: skip
    """Butterworth high-pass at `low`, low-pass at `high` (Hz) along `axis`; float32, C-ordered."""
    import numpy as np
    from scipy.signal import sosfilt

    high = None if high is None else min(high, 0.95 * rate / 2)
    sos = _butterworth(rate, low, high, order)
    # float32 sections filter float32 in float32 (faster) and stay within -70 dB of float64 unless
    # a corner sits below rate / 1200, where the poles crowd 1 and float64 is kept
    if min(f for f in (low, high) if f is not None) >= rate / 1200:
        sos = sos.astype(np.float32)
        signal = np.asarray(signal, dtype=np.float32)
    return np.ascontiguousarray(sosfilt(sos, signal, axis=axis), dtype=np.float32)


def _upsample(values: np.ndarray, step: int, count: int) -> np.ndarray:
    """Values given every `step` samples along the last axis (values[..., i] at sample i * step, at least
    count // step + 2 of them) drawn linearly through every sample: float32 (..., count)."""
    import numpy as np

    blocks = -(-count // step)
    values = np.asarray(values, dtype=np.float32)
    start = values[..., :blocks]
    rise = values[..., 1 : blocks + 1] - start
    curve = np.empty((*values.shape[:-1], blocks, step), dtype=np.float32)
    if step > 12:  # a long ramp per block: one broadcast product
        np.multiply(rise[..., None], np.arange(step, dtype=np.float32) / np.float32(step), out=curve)
        curve += start[..., None]
    else:  # a short one: broadcasting over a tiny last axis is slow, so one strided pass per position
        for j in range(step):
            np.multiply(rise, np.float32(j / step), out=curve[..., j])
            curve[..., j] += start
    return curve.reshape(*values.shape[:-1], blocks * step)[..., :count]


@functools.lru_cache(maxsize=256)
def _butterworth(rate: float, low: float | None, high: float | None, order: int) -> np.ndarray:
    """Second-order sections of a Butterworth high-, low- or band-pass; designed once per shape."""
    from scipy.signal import butter

    nyquist = rate / 2
    if low is not None and high is not None:
        return butter(order, [low / nyquist, high / nyquist], btype="bandpass", output="sos")
    if low is not None:
        return butter(order, low / nyquist, btype="highpass", output="sos")
    return butter(order, high / nyquist, btype="lowpass", output="sos")


HARMONICS_TABLE_SIZE = 1 << 13  # one period of the engine's hum; the 8th harmonic gets 1024 points


def _harmonics_table(offsets: tuple[float, ...]) -> np.ndarray:
    """One period of sum_k sin(k θ + offset_k) / k, float32."""
    import numpy as np

    theta = (2 * np.pi / HARMONICS_TABLE_SIZE) * np.arange(HARMONICS_TABLE_SIZE, dtype=np.float32)
    return sum(np.sin(k * theta + np.float32(offset)) / np.float32(k) for k, offset in enumerate(offsets, start=1))


def _read_period(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """table read at each sample's phase (cycles, float64: exact over long shots), float32."""
    import numpy as np

    fraction = cycles - np.floor(cycles)
    fraction *= len(table)
    return np.take(table, fraction.astype(np.intp), mode="clip")


def _step_times(picture: PictureMotion) -> list[tuple[float, float]]:
    """(time, strength) of footsteps: peaks of the motion curve, or a walking pace through flat motion."""
    import numpy as np
    from scipy.signal import find_peaks

    motion = np.clip(picture.motion / MOTION_FULL, 0, 1.5)
    fps = picture.fps
    peaks, _ = find_peaks(motion, height=0.15, distance=max(1, round(0.28 * fps)), prominence=0.05)
    steps = [(i / fps, float(min(1.0, motion[i]))) for i in peaks]
    # steady motion with no peaks to hang steps on: a pace of two steps a second where it moves
    pace = 0.5
    t = 0.0
    times = [s[0] for s in steps]
    while t < picture.num_frames / fps:
        i = min(picture.num_frames - 1, int(t * fps))
        if motion[i] > 0.15 and not any(abs(t - s) < 0.6 for s in times):
            steps.append((t, float(min(1.0, motion[i]))))
        t += pace
    return sorted(steps)
