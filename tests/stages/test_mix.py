"""The film's mix, judged from the WAVs it writes: loudness on target, music ducked under
(and just before) speech, narration only where it is spoken, stems that add up to the
mix, no clipping, and a rerun that writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from storyflow import media
from storyflow.media import loudness
from storyflow.backends.base import EffectsRequest, MusicCue
from storyflow.backends.effects.procedural import ProceduralFoley
from storyflow.backends.music.procedural import ProceduralScore
from storyflow.core.errors import InputError
from storyflow.catalog import Generations
from storyflow.core.models import AudioTrack
from storyflow.stages.mix import STEM_KINDS, mix_film

RATE = 48_000
SECONDS = 8.0
LINES = (2.0, 5.0)  # where the two narration lines start in the film
LINE_SECONDS = 1.6


def spoken_line(seconds: float, rate: int, pitch: float) -> np.ndarray:
    """Voice-like sound: a buzzy 'vowel' per word, words of 0.25 s with short pauses between."""
    t = np.arange(round(seconds * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 12))
    words = np.sqrt(np.clip(np.sin(np.pi * (t % 0.32) / 0.25), 0, None)) * ((t % 0.32) < 0.25)
    return (0.3 * buzz * words / 3).astype(np.float32)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    """Real inputs: two spoken lines (22.05 kHz mono), the procedural score, effects from a clip."""
    folder = tmp_path_factory.mktemp("sources")
    lines = []
    for i, start in enumerate(LINES):
        path = folder / f"line{i}.wav"
        media.write_wav(path, spoken_line(LINE_SECONDS, 22_050, 120 + 40 * i), 22_050)
        lines.append((start, path))
    music = folder / "score.wav"
    cues = [MusicCue(0, 4, "calm", "s01"), MusicCue(4, SECONDS, "tense", "s02")]
    media.write_wav(music, ProceduralScore().compose(cues, SECONDS, 1, RATE), RATE)
    fps = 12
    rng = np.random.default_rng(0)
    scene = np.repeat(rng.integers(40, 200, (54, 96, 1), dtype=np.uint8), 3, axis=2)
    frames = []
    for i in range(round(SECONDS * fps)):
        frame = scene.copy()
        frame[20:34, (4 * i) % 80 : (4 * i) % 80 + 14] = 255  # something moves all the way through
        frames.append(frame)
    clip = folder / "shot.mp4"
    media.write_video(clip, frames, 96, 54, fps)
    request = EffectsRequest(
        clips=(clip,), fps=fps, num_frames=len(frames), prompt="gulls over the harbour",
        sound_cue="waves", camera="static shot", cut_in=True, seed=2, sample_rate=RATE,
    )  # fmt: skip
    effects = folder / "effects.wav"
    media.write_wav(effects, ProceduralFoley().render(request), RATE)
    return {"narration": lines, "music": music, "effects": effects}


@pytest.fixture(scope="module")
def mixed(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("film")
    store = Generations.in_memory()
    result = mix_film(seconds=SECONDS, sample_rate=RATE, out_dir=out, door=store, **sources)
    return result, store, out


def read(track: AudioTrack) -> np.ndarray:
    samples, rate = media.read_wav(track.path)
    assert rate == RATE
    return samples


def window_db(x: np.ndarray, start: float, end: float) -> float:
    part = x[round(start * RATE) : round(end * RATE)].astype(np.float64)
    level = np.sqrt(np.mean(part**2))
    return float(20 * np.log10(level)) if level > 0 else float("-inf")


def test_the_mix_is_film_length_on_target_loudness_and_never_clips(mixed):
    result, _, out = mixed
    mix = read(result.mix)
    assert result.mix.kind == "mix" and result.mix.path.parent == (out / "audio").resolve()
    assert mix.shape == (round(SECONDS * RATE), 2)
    measured = pyloudnorm.Meter(RATE).integrated_loudness(mix.astype(np.float64))
    assert abs(measured - -16.0) < 0.5
    assert result.lufs == pytest.approx(measured, abs=0.1) and result.target_lufs == -16.0
    assert np.abs(mix).max() <= 10 ** (-1 / 20) + 1 / 32767  # under the -1 dB ceiling


def test_music_ducks_under_speech_and_starts_before_the_first_word(mixed, sources):
    result, _, _ = mixed
    stem = read(result.stems["music"])
    original, _ = media.read_wav(sources["music"])

    def gain_db(start: float, end: float) -> float:  # the music stem against the score it came from
        return window_db(stem, start, end) - window_db(original, start, end)

    away = np.mean([gain_db(0.3, 1.5), gain_db(4.2, 4.7), gain_db(7.2, 7.9)])
    under = np.mean([gain_db(2.2, 3.5), gain_db(5.2, 6.5)])
    assert under - away == pytest.approx(-12.0, abs=1.5)  # duck_db
    assert gain_db(1.95, 2.0) < away - 3.0  # already dipping in the 50 ms before the first word
    assert gain_db(1.5, 1.8) > away - 1.0  # but not long before it
    assert result.ducking.music_db == -12.0 and result.ducking.lead_s > 0
    spans = result.ducking.speech_spans
    assert len(spans) == 2 and spans[0][0] == pytest.approx(2.0, abs=0.02)

    effects = read(result.stems["effects"])
    effects_source, _ = media.read_wav(sources["effects"])
    effects_drop = (window_db(effects, 2.2, 3.5) - window_db(effects_source, 2.2, 3.5)) - (
        window_db(effects, 4.2, 4.7) - window_db(effects_source, 4.2, 4.7)
    )
    assert -6.0 < effects_drop < -2.0  # effects dip too, but less than the music


def test_narration_is_heard_only_where_it_is_spoken(mixed):
    result, _, _ = mixed
    voice = read(result.stems["narration"])
    for start in LINES:
        assert window_db(voice, start + 0.1, start + LINE_SECONDS - 0.1) > -30
    ends = [start + LINE_SECONDS + 0.01 for start in LINES]
    for start, end in [(0, LINES[0]), (ends[0], LINES[1]), (ends[1], SECONDS)]:
        assert window_db(voice, start, end) < -60
    first_sound = np.flatnonzero(np.abs(voice[:, 0]) > 1e-3)[0] / RATE
    assert first_sound == pytest.approx(LINES[0], abs=0.01)  # placed where it was asked, after resampling
    # and narration sits on top: during speech it is louder than music and effects together
    beds = read(result.stems["music"]) + read(result.stems["effects"])
    assert window_db(voice, 2.2, 3.5) > window_db(beds, 2.2, 3.5) + 6


def test_the_stems_add_up_to_the_mix(mixed):
    result, _, _ = mixed
    stems = {kind: read(track) for kind, track in result.stems.items()}
    assert set(stems) == {"narration", "music", "effects"}
    assert all(s.shape == (round(SECONDS * RATE), 2) for s in stems.values())
    total = stems["narration"] + stems["music"] + stems["effects"]
    assert np.abs(total - read(result.mix)).max() <= 2.5 / 32767  # equal up to 16-bit rounding
    assert all(track.seconds == SECONDS for track in result.stems.values())


def test_a_rerun_reuses_every_file_and_a_changed_setting_does_not(mixed, sources):
    result, store, out = mixed
    files = [result.mix.path, *(t.path for t in result.stems.values())]
    stamps = [p.stat().st_mtime_ns for p in files]
    saved = dict(store.tally["mix"])

    again = mix_film(seconds=SECONDS, sample_rate=RATE, out_dir=out, door=store, **sources)
    assert again.reused and again.mix.reused
    assert [again.mix.path, *(t.path for t in again.stems.values())] == files
    assert [p.stat().st_mtime_ns for p in files] == stamps and store.tally["mix"]["made"] == saved["made"]  # nothing written
    assert again.lufs == pytest.approx(result.lufs, abs=1e-3)
    assert again.ducking.speech_spans == result.ducking.speech_spans

    gentler = mix_film(seconds=SECONDS, sample_rate=RATE, out_dir=out, door=store, duck_db=-6.0, **sources)
    assert not gentler.reused and gentler.mix.path != result.mix.path


def test_the_balance_does_not_depend_on_how_loud_the_sources_came(sources, tmp_path: Path):
    quiet_music = tmp_path / "quiet.wav"
    samples, _ = media.read_wav(sources["music"])
    media.write_wav(quiet_music, samples * 0.1, RATE)  # 20 dB quieter
    loud = mix_film(seconds=SECONDS, sample_rate=RATE, out_dir=tmp_path / "a", door=Generations.in_memory(), **sources)
    quiet = mix_film(seconds=SECONDS, sample_rate=RATE, out_dir=tmp_path / "b", door=Generations.in_memory(),
                     **{**sources, "music": quiet_music})  # fmt: skip

    def music_under_voice(result) -> float:
        return window_db(read(result.stems["music"]), 0.3, 1.8) - window_db(read(result.stems["narration"]), 2.2, 3.5)

    assert music_under_voice(quiet) == pytest.approx(music_under_voice(loud), abs=1.0)


def test_a_mix_without_narration_or_music_still_reaches_the_target(sources, tmp_path: Path):
    result = mix_film(seconds=SECONDS, sample_rate=RATE, narration=[], music=None, effects=sources["effects"],
                      out_dir=tmp_path, door=Generations.in_memory())  # fmt: skip
    mix = read(result.mix)
    assert abs(pyloudnorm.Meter(RATE).integrated_loudness(mix.astype(np.float64)) - -16.0) < 0.5
    assert not read(result.stems["narration"]).any() and not read(result.stems["music"]).any()
    assert result.ducking.speech_spans == () and result.ducking.lead_s == 0.0


def test_bad_inputs_are_refused_with_a_fix(sources, tmp_path: Path):
    long_line = tmp_path / "long.wav"
    media.write_wav(long_line, spoken_line(3.0, RATE, 120), RATE)
    with pytest.raises(InputError, match="runs .* past the film's end") as error:
        mix_film(seconds=SECONDS, sample_rate=RATE, narration=[(6.5, long_line)], music=None, effects=None,
                 out_dir=tmp_path, door=Generations.in_memory())  # fmt: skip
    assert "shorten the line" in error.value.fix

    short_music = tmp_path / "short.wav"
    media.write_wav(short_music, np.zeros((RATE * 5, 2), np.float32), RATE)
    with pytest.raises(InputError, match="music file short.wav is 5.00 s long, the film 8.00 s"):
        mix_film(seconds=SECONDS, sample_rate=RATE, narration=[], music=short_music, effects=None,
                 out_dir=tmp_path, door=Generations.in_memory())  # fmt: skip
    assert not (tmp_path / "audio").exists()  # refused before anything was written


def test_when_the_limiter_acts_every_stem_takes_its_dips_and_nothing_clips(sources, tmp_path: Path):
    # sharp hits among the effects and a hot target: plain gain would push peaks past full scale
    hits = np.zeros((round(SECONDS * RATE), 2), np.float32)
    hits[:: RATE // 2] = 0.9
    hits += np.random.default_rng(1).standard_normal(hits.shape).astype(np.float32) * 0.002
    hot = tmp_path / "hits.wav"
    media.write_wav(hot, hits, RATE)
    result = mix_film(seconds=SECONDS, sample_rate=RATE, out_dir=tmp_path, door=Generations.in_memory(), target_lufs=-10.0,
                      effects_db=6.0, **{**sources, "effects": hot})  # fmt: skip
    mix = read(result.mix)
    assert result.limited_db < -3.0  # the limiter really worked
    assert np.abs(mix).max() <= 10 ** (-1 / 20) + 1 / 32767
    assert abs(pyloudnorm.Meter(RATE).integrated_loudness(mix.astype(np.float64)) - -10.0) < 0.5
    stems = [read(track) for track in result.stems.values()]
    assert np.abs(sum(stems) - mix).max() <= 2.5 / 32767


def long_sources(folder: Path, seconds: float) -> dict:
    """Film-length inputs for the window tests: narration every 7 s (22.05 kHz mono, some lines across window
    seams), music at 44.1 kHz mono (resampled on the way in), effects with hits the limiter must catch."""
    lines = []
    for i, start in enumerate(np.arange(0.5, seconds - 3.0, 7.0)):
        path = folder / f"line{i}.wav"
        if not path.exists():
            media.write_wav(path, spoken_line(2.4, 22_050, 110 + 10 * i), 22_050)
        lines.append((float(start), path))
    music, effects = folder / "music.wav", folder / "effects.wav"
    if not music.exists():
        t = np.arange(round(seconds * 44_100)) / 44_100
        media.write_wav(music, (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * t / 5))).astype(np.float32),
                        44_100)  # fmt: skip
        hits = np.random.default_rng(2).standard_normal((round(seconds * RATE), 2)).astype(np.float32) * 0.01
        hits[RATE // 3 :: round(1.3 * RATE)] = 0.9
        media.write_wav(effects, hits, RATE)
    return {"narration": lines, "music": music, "effects": effects}


def test_windows_do_not_change_the_sound(tmp_path: Path, monkeypatch):
    """The mix made in windows of 0.2 s (and true peaks oversampled 0.1 s at a time) is, sample for sample,
    the mix made in one window holding the whole film: the windows change the memory, not the sound."""
    from storyflow.media import loudness
    from storyflow.stages import mix

    seconds = 60.0
    sources = long_sources(tmp_path, seconds)
    results = {}
    for name, window, peak_window in (("whole", 1 << 30, 1 << 30), ("windows", 10_007, 5_000)):
        monkeypatch.setattr(mix, "WINDOW", window)
        monkeypatch.setattr(loudness, "PEAK_WINDOW", peak_window)
        results[name] = mix_film(seconds=seconds, sample_rate=RATE, out_dir=tmp_path / name,
                                 door=Generations.in_memory(), **sources)  # fmt: skip
    whole, windows = results["whole"], results["windows"]
    assert whole.limited_db < -1.0 and len(whole.ducking.speech_spans) > 5  # the limiter and the sidechain at work
    for kind in ("mix", *STEM_KINDS):
        a = read(whole.mix if kind == "mix" else whole.stems[kind])
        b = read(windows.mix if kind == "mix" else windows.stems[kind])
        assert a.shape == b.shape == (round(seconds * RATE), 2)
        assert np.abs(a - b).max() <= 1.01 / 32767, kind
    assert windows.lufs == pytest.approx(whole.lufs, abs=1e-6)
    assert windows.gain_db == pytest.approx(whole.gain_db, abs=1e-6)
    assert windows.true_peak_dbtp == pytest.approx(whole.true_peak_dbtp, abs=1e-6)
    assert windows.limited_db == pytest.approx(whole.limited_db, abs=1e-6)
    assert windows.ducking == whole.ducking


def test_a_long_film_is_mixed_in_memory_that_does_not_grow_with_it(tmp_path: Path):
    """Four minutes of 48 kHz stereo float32 are 92 MB per film-length array (the mix used to hold five, and
    float64 copies); the windowed mix allocates a few windows' worth, whatever the film's length."""
    import tracemalloc

    seconds = 240.0
    total = round(seconds * RATE)
    t = np.arange(RATE) / RATE
    second = {"music": np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1) * 0.2,
              "effects": np.random.default_rng(3).standard_normal((RATE, 2)) * 0.02}  # fmt: skip
    for name, pattern in second.items():
        with media.wav_writer(tmp_path / f"{name}.wav", 2, RATE) as out:
            for start in range(0, total, RATE):
                block = pattern[: total - start].astype(np.float32)
                if name == "effects" and start % (60 * RATE) == 0:
                    block[RATE // 2] = 0.95  # a hit a minute: the limiter acts now and then
                out.write(block)
    line = tmp_path / "line.wav"
    media.write_wav(line, spoken_line(3.0, 22_050, 130), 22_050)
    narration = [(float(start), line) for start in np.arange(1.0, seconds - 4.0, 8.0)]

    tracemalloc.start()
    try:
        result = mix_film(seconds=seconds, sample_rate=RATE, narration=narration, music=tmp_path / "music.wav",
                          effects=tmp_path / "effects.wav", out_dir=tmp_path / "film", door=Generations.in_memory())  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    film_length_array = total * 2 * 4
    # not even one film-length array, with the true peaks a plan keeps for its next rounds (a short film's)
    assert peak < 30e6 + loudness.RECALL_BYTES < film_length_array / 1.5, f"peak {peak / 1e6:.0f} MB"
    assert result.mix.seconds == seconds and abs(result.lufs - -16.0) < 0.5


def test_sources_measured_ahead_make_the_same_mix_and_are_not_measured_again(sources, mixed, tmp_path, monkeypatch):
    """What the flow measures ahead (the narration and the score while the clips are made, the effects bed as it
    is written) gives the mix it would have made itself, byte for byte, without its first pass reading them; a
    measurement of something else (the same lines in a longer film) is not used."""
    from storyflow.stages import mix

    result, _, _ = mixed
    samples, _ = media.read_wav(sources["effects"])
    with mix.BedMeter(SECONDS, RATE) as metering:
        with media.wav_writer(tmp_path / "bed.wav", 2, RATE, frames=len(samples), tap=metering.feed) as out:
            for start in range(0, len(samples), 100_000):  # in windows of another size than the mix reads
                out.write(samples[start : start + 100_000])
        bed = AudioTrack(kind="effects", path=tmp_path / "bed.wav", sha256=out.sha256, cache_key="bed",
                         seconds=SECONDS, sample_rate=RATE, backend="test")  # fmt: skip
        heard = [mix.hear_narration(sources["narration"], SECONDS, RATE),
                 mix.hear_bed(sources["music"], SECONDS, RATE), metering.heard(bed)]  # fmt: skip
    assert all(heard) and bed.sha256 == media.sha256_file(sources["effects"])  # the same file, written again
    assert heard[2].lufs == mix.hear_bed(bed, SECONDS, RATE, "effects").lufs  # to the last bit

    measured = []
    bed_lufs, voice = mix._bed_lufs, mix._Narration.measure
    monkeypatch.setattr(mix, "_bed_lufs", lambda *args: measured.append("bed") or bed_lufs(*args))
    monkeypatch.setattr(mix._Narration, "measure", lambda self, *args: measured.append("voice") or voice(self, *args))
    again = mix_film(seconds=SECONDS, sample_rate=RATE, narration=sources["narration"], music=sources["music"],
                     effects=bed, out_dir=tmp_path / "again", door=Generations.in_memory(), heard=heard)  # fmt: skip
    assert measured == []
    assert again.mix.sha256 == result.mix.sha256
    assert {k: t.sha256 for k, t in again.stems.items()} == {k: t.sha256 for k, t in result.stems.items()}

    longer = mix.hear_narration(sources["narration"], SECONDS + 1, RATE)
    measured.clear()
    mix_film(seconds=SECONDS, sample_rate=RATE, narration=sources["narration"], music=sources["music"], effects=bed,
             out_dir=tmp_path / "stale", door=Generations.in_memory(), heard=[longer, *heard[1:]])  # fmt: skip
    assert measured == ["voice"]
