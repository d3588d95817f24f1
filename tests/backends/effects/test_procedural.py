"""Effects from the picture, judged by ear-like measures on what comes out: louder where
things move, a hit on a cut, thunder after lightning, rain that hisses, silence that is
silent. Every clip is a real mp4 written and decoded back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from storyflow import media
from storyflow.backends.base import EffectsRequest
from storyflow.backends.effects.procedural import ProceduralFoley, analyze_picture
from storyflow.backends.registry import load_backend
from storyflow.core.errors import BackendOptionError, MediaError

W, H, FPS = 96, 54, 12
RATE = 24_000
FOLEY = ProceduralFoley()


def backdrop(seed: int = 0, width: int = W, height: int = H) -> np.ndarray:
    """A still, textured scene: 6-px tiles of random greys (something for motion to show against)."""
    rng = np.random.default_rng(seed)
    tiles = rng.integers(40, 200, size=(height // 6 + 1, width // 6 + 1), dtype=np.uint8)
    grey = np.kron(tiles, np.ones((6, 6), dtype=np.uint8))[:height, :width]
    return np.repeat(grey[:, :, None], 3, axis=2)


def with_square(frame: np.ndarray, x: int, y: int = 20, size: int = 14) -> np.ndarray:
    out = frame.copy()
    out[y : y + size, max(0, x) : max(0, x + size)] = 255
    return out


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    media.write_video(path, frames, frames[0].shape[1], frames[0].shape[0], FPS)
    return path


def request(clips: tuple[Path, ...], num_frames: int, **fields) -> EffectsRequest:
    values = dict(fps=FPS, num_frames=num_frames, prompt="", sound_cue="", camera="static shot",
                  cut_in=False, seed=5, sample_rate=RATE)  # fmt: skip
    return EffectsRequest(clips=clips, **{**values, **fields})


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def band_rms(x: np.ndarray, low: float | None, high: float | None, rate: int = RATE) -> np.ndarray:
    """The signal (mono) filtered to a band: what an ear hears in that register."""
    nyquist = rate / 2
    if low and high:
        sos = butter(4, [low / nyquist, high / nyquist], btype="bandpass", output="sos")
    elif low:
        sos = butter(4, low / nyquist, btype="highpass", output="sos")
    else:
        sos = butter(4, high / nyquist, btype="lowpass", output="sos")
    return sosfilt(sos, x.mean(axis=1))


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory) -> Path:
    """2 s of a scene where nothing moves."""
    folder = tmp_path_factory.mktemp("foley")
    return write_clip(folder / "still.mp4", [backdrop()] * 24)


@pytest.fixture(scope="module")
def still_then_moving(tmp_path_factory) -> Path:
    """2 s: still for the first second, then a white square crossing the frame."""
    folder = tmp_path_factory.mktemp("foley")
    frames = [with_square(backdrop(), 4)] * 12 + [with_square(backdrop(), 4 + 6 * i) for i in range(1, 13)]
    return write_clip(folder / "moving.mp4", frames)


def test_energy_follows_on_screen_motion(still_then_moving: Path):
    picture = analyze_picture([still_then_moving], FPS)
    assert picture.motion[14:].mean() > 10 * picture.motion[2:11].mean() + 1e-6
    assert picture.camera_speed.max() < 0.05  # an object moved; the camera did not

    sound = FOLEY.render(request((still_then_moving,), 24))
    first, second = sound[: RATE // 1], sound[int(1.2 * RATE) :]
    assert rms(second) > 4 * rms(first)
    weaker = ProceduralFoley(ProceduralFoley.Options(motion_gain=0.3)).render(request((still_then_moving,), 24))
    assert rms(second) > 1.5 * rms(weaker[int(1.2 * RATE) :])  # motion_gain scales how much motion is heard


def test_a_pan_reads_as_camera_motion_and_is_heard_as_a_whoosh(tmp_path: Path):
    wide = backdrop(seed=3, width=W + 4 * 24 + 8)
    frames = [wide[:, 4 * i : 4 * i + W].copy() for i in range(24)]  # the view slides 4 px a frame
    clip = write_clip(tmp_path / "pan.mp4", frames)
    picture = analyze_picture([clip], FPS)
    expected_speed = 4 * FPS / W  # frame widths per second
    assert np.median(picture.camera_speed[1:]) == pytest.approx(expected_speed, rel=0.2)
    assert (np.sign(picture.camera_dx[2:]) == -1).mean() > 0.9  # content slides left
    raw = np.mean([np.abs(media_luma(a) - media_luma(b)).mean() for a, b in zip(frames, frames[1:])]) * FPS
    assert np.median(picture.motion) < 0.35 * raw  # the pan is not counted as things moving

    with_accents = FOLEY.render(request((clip,), 24, camera="pan left"))
    without = ProceduralFoley(ProceduralFoley.Options(accents=False)).render(request((clip,), 24, camera="pan left"))
    assert rms(with_accents[RATE // 2 :]) > 2 * rms(without[RATE // 2 :])


def test_a_long_pan_is_measured_on_every_frame(tmp_path: Path):
    """Longer than the batches the analysis works in (frames are downscaled and transformed in groups):
    every pair of frames gets its own shift, none skipped or misaligned where one batch meets the next."""
    wide = backdrop(seed=4, width=W + 3 * 70 + 8)
    frames = [wide[:, 3 * i : 3 * i + W].copy() for i in range(70)]  # the view slides 3 px a frame
    picture = analyze_picture([write_clip(tmp_path / "long-pan.mp4", frames)], FPS)
    assert picture.num_frames == 70 and picture.camera_dx[0] == 0
    assert np.abs(picture.camera_dx[1:] * W + 3).max() < 0.75  # content slides 3 px left, frame after frame
    assert np.median(picture.motion) < 0.05


def test_a_flash_in_the_first_frames_is_found(tmp_path: Path):
    dark = (backdrop() // 5).astype(np.uint8)
    frames = [dark] * 12
    frames[2] = np.full_like(dark, 250)  # fewer than 6 frames before it to take the median of
    assert analyze_picture([write_clip(tmp_path / "early.mp4", frames)], FPS).flashes == (2,)


def media_luma(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255


def test_a_cut_in_lands_with_an_impact(still_clip: Path):
    cut = FOLEY.render(request((still_clip,), 24, cut_in=True))
    plain = FOLEY.render(request((still_clip,), 24, cut_in=False))
    head = int(0.15 * RATE)
    assert rms(cut[:head]) > 3 * rms(plain[:head])
    assert np.array_equal(cut[RATE // 2 :], plain[RATE // 2 :])  # only the start changes


def test_a_big_camera_move_gets_a_swell(still_clip: Path):
    drone = FOLEY.render(request((still_clip,), 24, camera="FPV drone shot"))
    static = FOLEY.render(request((still_clip,), 24, camera="static shot"))
    middle = slice(int(0.7 * RATE), int(1.3 * RATE))
    assert rms(drone[middle]) > 3 * rms(static[middle])


def test_thunder_rumbles_after_the_lightning_flashes(tmp_path: Path):
    dark = (backdrop() // 5).astype(np.uint8)
    frames = [dark] * 48
    frames[12] = frames[30] = np.full_like(dark, 250)  # flashes at 1.0 s and 2.5 s
    clip = write_clip(tmp_path / "storm.mp4", frames)
    assert analyze_picture([clip], FPS).flashes == (12, 30)

    thunder = FOLEY.render(request((clip,), 48, sound_cue="thunder"))
    wind = FOLEY.render(request((clip,), 48, sound_cue="wind"))
    low = band_rms(thunder, None, 200)
    before = rms(low[: int(0.95 * RATE)])
    after_first = rms(low[int(1.1 * RATE) : int(2.4 * RATE)])
    after_second = rms(low[int(2.6 * RATE) : int(3.9 * RATE)])
    assert after_first > 5 * before + 1e-5 and after_second > 5 * before + 1e-5
    assert after_first > 3 * rms(band_rms(wind, None, 200)[int(1.1 * RATE) : int(2.4 * RATE)])


def test_rain_hisses_and_silence_is_silent(still_clip: Path):
    rate = 48_000
    rain = FOLEY.render(request((still_clip,), 24, sound_cue="steady rain", sample_rate=rate))
    silence = FOLEY.render(request((still_clip,), 24, sound_cue="silence", sample_rate=rate, cut_in=True))
    assert rms(rain) > 100 * rms(silence)  # 40 dB apart
    assert 20 * np.log10(np.abs(silence).max()) < -60  # even with a cut: silence means silence
    high = rms(band_rms(rain, 4000, None, rate))
    assert high**2 > 0.5 * rms(rain.mean(axis=1)) ** 2  # most of the rain's power is above 4 kHz
    # "quiet" softens nothing away: a cue that names a sound plays it; a silent cue overrides the prompt
    quiet_rain = FOLEY.render(request((still_clip,), 24, sound_cue="quiet rain", sample_rate=rate))
    assert rms(quiet_rain) > 100 * rms(silence)
    hushed = FOLEY.render(request((still_clip,), 24, sound_cue="silence", prompt="rain on the sea", sample_rate=rate))
    assert rms(hushed) < 2 * rms(silence)


def test_each_named_sound_sits_in_its_own_register(still_clip: Path):
    def share(cue: str, low: float | None, high: float | None) -> float:
        sound = FOLEY.render(request((still_clip,), 24, sound_cue=cue))
        return rms(band_rms(sound, low, high)) ** 2 / rms(sound.mean(axis=1)) ** 2

    assert share("waves on the shore", None, 500) > 0.6  # low swells
    assert share("gulls crying", 2000, 6000) > 0.6  # chirps up high
    assert share("an engine idles", None, 500) > 0.6  # a hum
    # words in the prompt count too, when the cue names nothing
    seen = FOLEY.render(request((still_clip,), 24, prompt="waves roll onto the beach"))
    unseen = FOLEY.render(request((still_clip,), 24, prompt="a closed room"))
    assert rms(seen) > 5 * rms(unseen)


def test_footsteps_fall_on_the_motion_peaks(tmp_path: Path):
    # a square that jumps at 0.5 s, 1.25 s and 2.0 s and otherwise stands still
    jumps = {6: 30, 15: 56, 24: 20}
    x, frames = 10, []
    for i in range(36):
        x = jumps.get(i, x)
        frames.append(with_square(backdrop(), x))
    clip = write_clip(tmp_path / "steps.mp4", frames)
    quiet = ProceduralFoley(ProceduralFoley.Options(accents=False))
    sound = quiet.render(request((clip,), 36, sound_cue="footsteps"))
    window = int(0.02 * RATE)
    energy = np.sqrt((sound.mean(axis=1)[: len(sound) // window * window] ** 2).reshape(-1, window).mean(axis=1))
    loud = np.flatnonzero(energy > 0.3 * energy.max()) * window / RATE
    for jump_frame in jumps:
        at = jump_frame / FPS
        assert np.any(np.abs(loud - at) < 0.12), f"no step near {at:.2f} s"
    assert np.all(np.min(np.abs(loud[:, None] - np.array(list(jumps)) / FPS), axis=1) < 0.2)  # none elsewhere


def test_length_is_exact_and_the_same_seed_gives_the_same_sound(tmp_path: Path, still_clip: Path):
    # two clips of one shot, 25 frames in all, at a rate that does not divide evenly
    first = write_clip(tmp_path / "a.mp4", [backdrop()] * 13)
    second = write_clip(tmp_path / "b.mp4", [with_square(backdrop(), 8 * i) for i in range(12)])
    req = request((first, second), 25, sound_cue="wind and rain", sample_rate=44_100, cut_in=True)
    a, b = FOLEY.render(req), FOLEY.render(req)
    assert a.shape == (round(25 / FPS * 44_100), 2) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, FOLEY.render(request((first, second), 25, sound_cue="wind and rain",
                                                      sample_rate=44_100, cut_in=True, seed=6)))  # fmt: skip
    assert np.abs(a).max() <= 1.0

    # a request that disagrees with its clips still gets exactly its own length, with a warning
    with pytest.warns(UserWarning, match="the clips hold 24 frames"):
        long = FOLEY.render(request((still_clip,), 30))
    assert len(long) == round(30 / FPS * RATE)


def test_options_and_inputs_are_checked(tmp_path: Path):
    with pytest.raises(BackendOptionError, match="unknown option 'motion_gian'"):
        load_backend("effects", "procedural", {"motion_gian": 2})
    backend = load_backend("effects", "procedural", {"motion_gain": 2, "accents": False})
    assert isinstance(backend, ProceduralFoley) and backend.options.motion_gain == 2
    with pytest.raises(MediaError, match="does not exist") as error:
        FOLEY.render(request((tmp_path / "missing.mp4",), 12))
    assert error.value.fix


def window_rms(x: np.ndarray, seconds: float, rate: int = RATE) -> np.ndarray:
    """RMS of the mono signal in consecutive windows: the level an ear follows over time."""
    size = int(seconds * rate)
    mono = np.asarray(x, np.float64).mean(axis=1)
    return np.sqrt((mono[: len(mono) // size * size] ** 2).reshape(-1, size).mean(axis=1))


@pytest.fixture(scope="module")
def long_still_clip(tmp_path_factory) -> Path:
    """12 s of a scene where nothing moves: long enough for a wave to roll in and out."""
    folder = tmp_path_factory.mktemp("foley")
    return write_clip(folder / "long-still.mp4", [backdrop()] * (12 * FPS))


def test_waves_rise_and_fall_slowly_while_rain_stays_steady(long_still_clip: Path):
    quiet = ProceduralFoley(ProceduralFoley.Options(accents=False))
    waves = window_rms(quiet.render(request((long_still_clip,), 12 * FPS, sound_cue="waves")), 0.25)
    rain = window_rms(quiet.render(request((long_still_clip,), 12 * FPS, sound_cue="rain")), 0.25)
    assert waves.max() > 1.8 * waves.min()  # the swell is heard
    assert rain.max() < 1.3 * rain.min()  # rain is a steady hiss
    # the swell is slow: a quarter second on, the level has barely moved; across the shot, it has
    step = np.abs(np.diff(waves)).mean()
    assert step < 0.25 * (waves.max() - waves.min())


def test_beds_are_wide_but_an_engine_is_one_source(still_clip: Path):
    def correlation(cue: str) -> float:
        sound = ProceduralFoley(ProceduralFoley.Options(accents=False)).render(request((still_clip,), 24, sound_cue=cue))
        return float(np.corrcoef(sound[:, 0], sound[:, 1])[0, 1])

    assert 0.2 < correlation("rain") < 0.6  # a wide hiss: the channels share part of it, not all
    assert 0.2 < correlation("wind") < 0.6
    assert correlation("an engine idles") > 0.999  # one machine, in the middle


def test_low_beds_leave_the_high_end_empty(still_clip: Path):
    """The low rumbles are made at a lower rate and drawn up to full rate; nothing of that shows up high."""
    quiet = ProceduralFoley(ProceduralFoley.Options(accents=False))
    rate = 48_000
    engine = quiet.render(request((still_clip,), 24, sound_cue="an engine idles", sample_rate=rate))
    assert rms(band_rms(engine, 2500, None, rate)) ** 2 < 1e-4 * rms(engine.mean(axis=1)) ** 2  # 40 dB down
    fire = quiet.render(request((still_clip,), 24, sound_cue="fire", sample_rate=rate))
    # fire: the roar below 300 Hz and crackles above 1.5 kHz, little between them
    assert rms(band_rms(fire, 600, 1000, rate)) ** 2 < 0.05 * rms(band_rms(fire, None, 300, rate)) ** 2
    assert rms(band_rms(fire, 2000, None, rate)) > 0.05 * rms(fire.mean(axis=1))  # the crackles are heard


def test_the_same_request_sounds_the_same_in_every_process(tmp_path: Path, still_then_moving: Path):
    """Beds are added in a fixed order, not in the order of a set of names, which changes with each process's
    string hashing (PYTHONHASHSEED): floats added in another order round differently, so a shot rendered
    again after a restart would not be the same sound."""
    import hashlib
    import os
    import subprocess
    import sys

    script = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from storyflow.backends.base import EffectsRequest\n"
        "from storyflow.backends.registry import load_backend\n"
        "request = EffectsRequest(clips=(Path(sys.argv[1]),), fps=int(sys.argv[2]), num_frames=24, prompt='a storm at sea',\n"
        "                         sound_cue='thunder, waves, rain, wind and footsteps', camera='static shot',\n"
        "                         cut_in=True, seed=3, sample_rate=16000)\n"
        "print(hashlib.sha256(load_backend('effects', 'procedural', {}).render(request).tobytes()).hexdigest())\n"
    )
    sounds = set()
    for hash_seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-W", "ignore", "-c", script, str(still_then_moving), str(FPS)],
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=120, check=True)  # fmt: skip
        sounds.add(done.stdout.strip())
    here = request((still_then_moving,), 24, prompt="a storm at sea", sound_cue="thunder, waves, rain, wind and footsteps",
                   camera="static shot", cut_in=True, seed=3, sample_rate=16000)  # fmt: skip
    assert sounds == {hashlib.sha256(FOLEY.render(here).tobytes()).hexdigest()}
