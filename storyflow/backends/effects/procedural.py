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

import re
import warnings
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

    # 2. the camera: dominant shift between consecutive frames by phase correlation
    shifts = _phase_correlation_shifts(grey)  # (count, 2): dy, dx in pixels, row 0 is zero

    # 3. on-screen motion: change that remains once the previous frame is moved by the camera shift;
    #    each frame's mean is removed first, so a global flash reads as brightness, not motion
    centred = grey - grey.mean(axis=(1, 2), keepdims=True)
    motion = np.zeros(count, dtype=np.float32)
    for i in range(1, count):
        motion[i] = _compensated_difference(centred[i - 1], centred[i], shifts[i])
    if count > 1:
        motion[0] = motion[1]
    motion *= fps

    # 4. flashes: brightness well above the median of the frames just before
    brightness = grey.mean(axis=(1, 2))
    flashes: list[int] = []
    for i in range(1, count):
        recent = np.median(brightness[max(0, i - 6) : i])
        if brightness[i] - recent > FLASH_JUMP and (not flashes or i - flashes[-1] > fps // 2):
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
    """All frames of the clips as luminance 0..1, downscaled to <= ANALYSIS_WIDTH wide: (n, h, w)."""
    import numpy as np
    from PIL import Image

    from storyflow.media import read_frames

    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0
    size: tuple[int, int] | None = None
    frames: list[np.ndarray] = []
    for clip in clips:
        if not Path(clip).is_file():
            raise MediaError(f"clip {clip} does not exist", fix="render the shot's clips before its effects")
        for frame in read_frames(clip):
            if size is None:
                h, w = frame.shape[:2]
                scale = min(1.0, ANALYSIS_WIDTH / w)
                size = (max(8, round(w * scale)), max(8, round(h * scale)))
            small = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BOX), dtype=np.float32)
            frames.append(small @ weights)
    if not frames:
        raise MediaError(
            f"no video frames in {', '.join(str(c) for c in clips) or 'the request'}",
            fix="pass the shot's rendered clips (mp4 files with frames)",
        )
    return np.stack(frames)


def _phase_correlation_shifts(grey: np.ndarray) -> np.ndarray:
    """(n, 2) sub-pixel shifts (dy, dx) that carry frame i-1 onto frame i; 0 where no shift is coherent."""
    import numpy as np

    count, height, width = grey.shape
    shifts = np.zeros((count, 2), dtype=np.float32)
    if count < 2:
        return shifts
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    spectra = np.fft.rfft2((grey - grey.mean(axis=(1, 2), keepdims=True)) * window)
    cross = spectra[1:] * np.conj(spectra[:-1])
    cross /= np.maximum(np.abs(cross), 1e-9)
    surface = np.fft.irfft2(cross, s=(height, width))
    for i, corr in enumerate(surface, start=1):
        peak = np.unravel_index(int(np.argmax(corr)), corr.shape)
        if corr[peak] < 0.08:  # no shift shared by the frame: leave it to the motion measure
            continue
        offsets = []
        for axis, size in ((0, height), (1, width)):
            at = peak[axis]
            before = corr[(at - 1) % size, peak[1]] if axis == 0 else corr[peak[0], (at - 1) % size]
            after = corr[(at + 1) % size, peak[1]] if axis == 0 else corr[peak[0], (at + 1) % size]
            bend = before - 2 * corr[peak] + after
            fraction = 0.5 * (before - after) / bend if bend < 0 else 0.0  # parabola through the peak
            signed = at if at <= size // 2 else at - size
            offsets.append(signed + float(np.clip(fraction, -0.5, 0.5)))
        shifts[i] = offsets
    return shifts


def _compensated_difference(previous: np.ndarray, current: np.ndarray, shift: np.ndarray) -> float:
    """Mean |current - previous moved by shift| over the part both frames see."""
    import numpy as np

    dy, dx = int(round(float(shift[0]))), int(round(float(shift[1])))
    height, width = current.shape
    if abs(dy) >= height // 2 or abs(dx) >= width // 2:
        return float(np.abs(current - previous).mean())
    cur = current[max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)]
    prev = previous[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
    return float(np.abs(cur - prev).mean())


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
    named = {bed for bed, words in BED_WORDS.items() if cue_words & set(words)}
    seen = {bed for bed, words in BED_WORDS.items() if prompt_words & set(words)} - named
    if not named and cue_words & set(SILENCE_WORDS):
        return {}
    if not named and not seen and prompt_words & set(SILENCE_WORDS):
        return {}
    beds = {bed: 1.0 for bed in named} | {bed: 0.6 for bed in seen}
    return beds or {"movement": 1.0}


# ---------------------------------------------------------------- the backend


class ProceduralFoley(EffectsBackend):
    name = "procedural"
    version = "1"
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
        out = np.zeros((total, 2), dtype=np.float32)
        if not beds:
            out += synth.noise("room", 2) * np.float32(10 ** (-75 / 20))  # near-nothing, not digital zero
            return out
        for bed, weight in beds.items():
            layer = getattr(synth, bed)(motion_env, picture)
            out += np.float32(weight) * layer

        # 4. accents: impact on the cut in, whoosh with the camera's speed, swell on big moves
        if self.options.accents:
            big = request.camera in BIG_CAMERA_MOVES
            out += synth.camera_whoosh(camera_env * (1.8 if big else 1.0), picture)
            if big:
                out += synth.swell()
            if request.cut_in:
                out += synth.impact()

        # 5. level, and never past full scale
        out *= np.float32(10 ** (self.options.level_db / 20))
        peak = float(np.abs(out).max()) if total else 0.0
        if peak > 0.95:
            out *= np.float32(0.95 / peak)
        return out.astype(np.float32)


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


class _Synth:
    """The sound recipes for one render: each returns float32 (total, 2)."""

    def __init__(self, rate: int, total: int, seed: int, prompt: str, sound_cue: str) -> None:
        self.rate, self.total = rate, total
        self.seed, self.context = seed, f"{prompt}\x00{sound_cue}"
        self.seconds = total / rate

    # ---- building blocks

    def rng(self, layer: str):
        import numpy as np

        return np.random.default_rng(derive_seed(self.seed, "foley", layer, self.context))

    def noise(self, layer: str, channels: int = 2, width: float = 0.6) -> np.ndarray:
        """Gaussian noise (total, channels); stereo channels share (1 - width) of their signal."""
        import numpy as np

        rng = self.rng(layer)
        common = rng.standard_normal(self.total).astype(np.float32)
        if channels == 1:
            return common[:, None]
        sides = rng.standard_normal((self.total, channels)).astype(np.float32)
        mixed = np.sqrt(1 - width) * common[:, None] + np.sqrt(width) * sides
        return mixed.astype(np.float32)

    def band(self, signal: np.ndarray, low: float | None, high: float | None, order: int = 2) -> np.ndarray:
        """Filter along time: high-pass at `low`, low-pass at `high` (Hz), Butterworth."""
        import numpy as np
        from scipy.signal import butter, sosfilt

        nyquist = self.rate / 2
        if low is not None and high is not None:
            sos = butter(order, [low / nyquist, min(high, 0.95 * nyquist) / nyquist], btype="bandpass", output="sos")
        elif low is not None:
            sos = butter(order, low / nyquist, btype="highpass", output="sos")
        else:
            sos = butter(order, min(high, 0.95 * nyquist) / nyquist, btype="lowpass", output="sos")
        return sosfilt(sos, signal, axis=0).astype(np.float32)

    def at_rms(self, signal: np.ndarray, rms_db: float) -> np.ndarray:
        """Scale a steady signal so its RMS sits at rms_db (dBFS)."""
        import numpy as np

        rms = float(np.sqrt(np.mean(signal.astype(np.float64) ** 2))) if len(signal) else 0.0
        return signal * np.float32(10 ** (rms_db / 20) / rms) if rms > 0 else signal

    def frames_to_audio(self, per_frame: np.ndarray, fps: int) -> np.ndarray:
        """Per-frame values (at frame centres) interpolated to one value per audio sample."""
        import numpy as np

        frame_times = (np.arange(len(per_frame)) + 0.5) / fps
        sample_times = np.arange(self.total) / self.rate
        return np.interp(sample_times, frame_times, per_frame).astype(np.float32)

    def follow(self, env: np.ndarray, floor: float) -> np.ndarray:
        """Level curve (total, 1): `floor` when nothing moves, 1.0 at full motion."""
        return (floor + (1 - floor) * env)[:, None]

    def events(self, layer: str, per_second: float) -> np.ndarray:
        """Random event times (seconds) at a mean rate: a Poisson process."""
        import numpy as np

        rng = self.rng(layer)
        count = rng.poisson(per_second * self.seconds)
        return np.sort(rng.uniform(0, self.seconds, count))

    def place(self, out: np.ndarray, sound: np.ndarray, at_s: float, gain: float = 1.0, pan: float = 0.0) -> None:
        """Add a short mono sound into stereo `out` at a time, panned -1 (left) .. 1 (right)."""
        import numpy as np

        start = int(round(at_s * self.rate))
        if start >= self.total or start + len(sound) <= 0:
            return
        piece = sound[: self.total - start] if start >= 0 else sound[-start : self.total - start]
        start = max(0, start)
        left, right = np.cos((pan + 1) * np.pi / 4), np.sin((pan + 1) * np.pi / 4)
        out[start : start + len(piece), 0] += np.float32(gain * left * np.sqrt(2)) * piece
        out[start : start + len(piece), 1] += np.float32(gain * right * np.sqrt(2)) * piece

    def decay(self, seconds: float, tau: float) -> np.ndarray:
        import numpy as np

        t = np.arange(int(seconds * self.rate)) / self.rate
        return np.exp(-t / tau).astype(np.float32)

    # ---- beds (each: motion envelope at audio rate, picture measures -> (total, 2))

    def movement(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """No sound named: soft rustle that only moves when the picture does."""
        rustle = self.band(self.noise("movement"), 120, 1800)
        return self.at_rms(rustle, -27) * self.follow(env, 0.06)

    def rain(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """High hiss and scattered droplets; present even in a still shot."""
        import numpy as np

        hiss = self.at_rms(self.band(self.noise("rain"), 2500, None), -25)
        drops = np.zeros_like(hiss)
        tick = self.rng("drop").standard_normal(int(0.004 * self.rate)) * self.decay(0.004, 0.001)
        click = self.band(tick[:, None], 3000, None)[:, 0]
        rng = self.rng("drop-place")
        for at in self.events("drops", 40):
            self.place(drops, click, at, gain=0.05 * rng.uniform(0.3, 1.0), pan=rng.uniform(-0.8, 0.8))
        return (hiss + drops) * self.follow(env, 0.7)

    def waves(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """Low swells rolling in every 5-9 s, with a little spray at each crest."""
        import numpy as np

        rng = self.rng("swell")
        t = np.arange(self.total) / self.rate
        period = rng.uniform(5.0, 9.0)
        swell = (0.45 + 0.55 * np.sin(np.pi * t / period + rng.uniform(0, np.pi)) ** 2).astype(np.float32)[:, None]
        body = self.at_rms(self.band(self.noise("waves"), 40, 450) * swell, -23)
        spray = self.at_rms(self.band(self.noise("spray"), 1500, 6000) * swell**3, -31)
        return (body + spray) * self.follow(env, 0.7)

    def wind(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """Band-passed whoosh whose colour drifts between a low and a higher band with the gusts."""
        import numpy as np

        rng = self.rng("gust")
        t = np.arange(self.total) / self.rate
        gust = 0.5 + 0.5 * np.sin(2 * np.pi * t / rng.uniform(3.0, 6.0) + rng.uniform(0, 2 * np.pi))
        low = self.band(self.noise("wind-low"), 250, 700)
        high = self.band(self.noise("wind-high"), 700, 1600)
        mixed = low * (1 - gust)[:, None].astype(np.float32) + high * gust[:, None].astype(np.float32)
        level = (0.5 + 0.5 * gust)[:, None].astype(np.float32)
        return self.at_rms(mixed * level, -25) * self.follow(env, 0.5)

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
        return out * self.follow(env, 0.85)

    def footsteps(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """A soft thud at each peak of on-screen motion (or at a walking pace through steady motion)."""
        import numpy as np

        out = np.zeros((self.total, 2), dtype=np.float32)
        rng = self.rng("step")
        for at, strength in _step_times(picture):
            n = int(0.09 * self.rate)
            t = np.arange(n) / self.rate
            thud = np.sin(2 * np.pi * 70 * t) * np.exp(-t / 0.025)
            scuff = self.band(rng.standard_normal(n)[:, None] * np.exp(-t / 0.012)[:, None], 200, 2500)[:, 0]
            step = (0.7 * thud + 0.5 * scuff).astype(np.float32)
            self.place(out, step, at, 0.25 * strength * rng.uniform(0.8, 1.1), rng.uniform(-0.2, 0.2))
        return out

    def fire(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """A low roar and sharp, irregular crackles."""
        import numpy as np

        roar = self.at_rms(self.band(self.noise("roar"), 30, 300), -29)
        crackles = np.zeros_like(roar)
        rng = self.rng("crackle")
        for at in self.events("fire", 18):
            n = int(rng.uniform(0.001, 0.004) * self.rate)
            snap = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.3 * n))
            self.place(crackles, snap.astype(np.float32), at, 0.25 * min(1.0, rng.pareto(2.5) * 0.4 + 0.1),
                       rng.uniform(-0.6, 0.6))  # fmt: skip
        crackles = self.band(crackles, 1500, None)
        return (roar + crackles) * self.follow(env, 0.7)

    def engine(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """A harmonic hum whose pitch rises a little with motion (revving), over rumble."""
        import numpy as np

        rng = self.rng("engine")
        base = rng.uniform(38, 55)
        freq = base * (1 + 0.35 * np.clip(env, 0, 1.5))
        phase = 2 * np.pi * np.cumsum(freq) / self.rate
        hum = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 9))
        rumble = self.band(self.noise("engine-rumble", 1), 20, 200)[:, 0]
        mono = self.at_rms((hum + 2.0 * rumble).astype(np.float32), -25)
        return np.repeat(mono[:, None], 2, axis=1) * self.follow(env, 0.7)

    def crowd(self, env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """Babble: several voice-like bands, each opening and closing at syllable rate."""
        import numpy as np

        rng = self.rng("crowd")
        out = np.zeros((self.total, 2), dtype=np.float32)
        for voice in range(8):
            formant = rng.uniform(350, 2500)
            band = self.band(self.noise(f"voice-{voice}", 1), formant * 0.7, formant * 1.3)[:, 0]
            syllables = np.abs(self.band(self.noise(f"syllables-{voice}", 1), None, rng.uniform(3, 6))[:, 0])
            pan = rng.uniform(-0.8, 0.8)
            voiced = band * syllables
            out[:, 0] += voiced * np.float32(np.cos((pan + 1) * np.pi / 4))
            out[:, 1] += voiced * np.float32(np.sin((pan + 1) * np.pi / 4))
        return self.at_rms(out, -27) * self.follow(env, 0.7)

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
            t = np.arange(n) / self.rate
            shape = (1 - np.exp(-t / 0.08)) * np.exp(-t / (length / 3))
            wobble = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * t * rng.uniform(0.8, 2.0)))
            rumble = self.band(rng.standard_normal((n, 1)), 25, 140, order=3)[:, 0] * shape * wobble
            crack = self.band(rng.standard_normal((n, 1)), 300, 5000)[:, 0] * np.exp(-t / 0.06)
            sound = (rumble * 4.0 + crack * 0.5).astype(np.float32)
            self.place(out, sound, at, 0.5 * strength, rng.uniform(-0.5, 0.5))
        return out

    # ---- accents

    def camera_whoosh(self, camera_env: np.ndarray, picture: PictureMotion) -> np.ndarray:
        """Air moving with the camera: level follows its speed, panned the way the picture slides."""
        import numpy as np

        air = self.at_rms(self.band(self.noise("whoosh", 1), 250, 2200), -24)[:, 0]
        side = self.frames_to_audio(np.clip(picture.camera_dx * picture.fps / CAMERA_FULL, -1, 1), picture.fps)
        level = air * camera_env
        left, right = np.cos((side + 1) * np.pi / 4), np.sin((side + 1) * np.pi / 4)
        return (np.stack([level * left, level * right], axis=1) * np.sqrt(2)).astype(np.float32)

    def swell(self) -> np.ndarray:
        """A big move's swell: air and sub rising to the middle of the shot and falling away."""
        import numpy as np

        t = np.arange(self.total) / self.rate
        shape = (np.sin(np.pi * t / max(self.seconds, 1e-6)) ** 2).astype(np.float32)[:, None]
        air = self.at_rms(self.band(self.noise("swell"), 150, 1200), -22)
        sub = np.sin(2 * np.pi * 42 * t).astype(np.float32)[:, None] * np.float32(10 ** (-24 / 20))
        return (air + sub) * shape

    def impact(self) -> np.ndarray:
        """The hit of a hard cut: a falling low thump with a short burst of noise, at t = 0."""
        import numpy as np

        n = min(self.total, int(0.5 * self.rate))
        t = np.arange(n) / self.rate
        freq = 35 + 45 * np.exp(-t / 0.05)
        thump = np.sin(2 * np.pi * np.cumsum(freq) / self.rate) * np.exp(-t / 0.12)
        burst = self.band(self.rng("impact").standard_normal((n, 1)), 80, 3000)[:, 0] * np.exp(-t / 0.03)
        hit = (0.35 * thump + 0.12 * burst).astype(np.float32)
        out = np.zeros((self.total, 2), dtype=np.float32)
        self.place(out, hit, 0.0, 1.0)
        return out


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
