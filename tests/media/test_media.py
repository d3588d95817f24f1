"""The one encoder path, decoding, probing, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

from storyflow import media
from storyflow.media.files import FILE_MODE
from storyflow.core.errors import MediaError


def frames(n, w=64, h=36):
    """A smooth gradient with a bright bar that moves one pixel per frame."""
    x = np.linspace(0, 200, w, dtype=np.float32)
    base = np.zeros((h, w, 3), np.uint8)
    base[..., 0] = x[None, :]
    base[..., 2] = np.linspace(40, 160, h, dtype=np.float32)[:, None]
    out = []
    for i in range(n):
        frame = base.copy()
        frame[:, (10 + i) % w] = 255
        out.append(frame)
    return out


def test_encode_decode_round_trip_is_frame_exact(tmp_path):
    path = tmp_path / "clip.mp4"
    assert media.write_video(path, frames(30), 64, 36, 12) == 30
    info = media.probe(path)
    assert (info.width, info.height, info.num_frames, info.fps) == (64, 36, 30, 12)
    assert info.video_codec == "h264" and info.audio_codec is None
    assert info.keyframes == (0, 6, 12, 18, 24)  # every half second, so cuts land on keyframes
    decoded = list(media.read_frames(path))
    assert len(decoded) == 30 and decoded[0].shape == (36, 64, 3)
    # lossy, but close to what went in
    assert np.abs(decoded[5].astype(int) - frames(30)[5].astype(int)).mean() < 8
    assert media.last_frames(path, 2).shape == (2, 36, 64, 3)
    assert media.first_frames(path, 1).shape == (1, 36, 64, 3)


def test_failed_encode_leaves_no_file(tmp_path):
    path = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError), media.VideoWriter(path, 64, 36, 12) as out:
        out.write(frames(1)[0])
        raise RuntimeError("backend crashed mid-clip")
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_size_and_odd_sizes_are_refused(tmp_path):
    with pytest.raises(MediaError, match="does not fit"), media.VideoWriter(tmp_path / "a.mp4", 64, 36, 12) as out:
        out.write(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(MediaError, match="odd side"):
        media.VideoWriter(tmp_path / "b.mp4", 63, 36, 12)
    with pytest.raises(MediaError, match="no frames"), media.VideoWriter(tmp_path / "c.mp4", 64, 36, 12):
        pass
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_files_only(tmp_path):
    target = tmp_path / "note.txt"
    media.atomic_write_text(target, "first")
    assert target.stat().st_mode & 0o777 == FILE_MODE  # readable like any file, not owner-only
    with pytest.raises(ValueError), media.atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise ValueError("crash")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["note.txt"]


def test_wav_round_trip_and_audio_decode(tmp_path):
    t = np.arange(48_000) / 48_000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "tone.wav"
    media.write_wav(path, np.stack([tone, tone], axis=1))
    samples, rate = media.read_wav(path)
    assert rate == 48_000 and samples.shape == (48_000, 2)
    assert abs(np.sqrt((samples**2).mean()) - 0.5 / np.sqrt(2)) < 0.01


def test_fit_frame_covers_and_crops_without_stretching():
    wide = np.zeros((100, 400, 3), np.uint8)
    wide[:, 190:210] = 255  # a bar in the middle
    out = media.fit_frame(wide, 100, 100)
    assert out.shape == (100, 100, 3)
    assert out[:, 45:55].mean() > 200 and out[:, :30].mean() < 10


def test_luma_is_the_pictures_brightness_small(tmp_path):
    path = tmp_path / "clip.mp4"
    media.write_video(path, frames(12), 64, 36, 12)
    luma = list(media.read_luma(path, width=16))
    assert len(luma) == 12 and luma[0].shape == (9, 16) and luma[0].dtype == np.float32
    for decoded, small in zip(media.read_frames(path), luma):  # Rec. 601 luminance of the RGB, box-averaged
        grey = (decoded.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255
        assert np.abs(grey.reshape(9, 4, 16, 4).mean(axis=(1, 3)) - small).max() < 0.03
    assert luma[3].max() > luma[3].min() + 0.2  # not flat: the gradient and the bar are there


def test_wav_written_in_windows_reads_back_whole_and_in_windows(tmp_path):
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal((10_000, 2)) * 0.2).astype(np.float32)
    with media.wav_writer(tmp_path / "a.wav", 2, 8_000) as out:
        for start in range(0, len(samples), 3_001):
            out.write(samples[start : start + 3_001])
        assert not (tmp_path / "a.wav").exists()  # the final name appears only when every window is in
    whole, rate = media.read_wav(tmp_path / "a.wav")
    assert rate == 8_000 and np.abs(whole - samples).max() <= 0.5 / 32767 + 1e-6
    with media.open_wav(tmp_path / "a.wav") as wav:
        assert (wav.frames, wav.channels) == (10_000, 2)
        assert np.array_equal(wav.read(9_000, 5_000), whole[9_000:])  # cut short at the end


@pytest.mark.parametrize("frames", [10_000, 0, 10_001], ids=["told the length", "not told", "told wrong"])
def test_a_wav_written_in_windows_knows_its_sha256_and_it_is_the_files(tmp_path, monkeypatch, frames):
    """Told how long it will be, a WAV writer hashes the file as it writes it, so nothing reads it back to hash
    it; otherwise (the header is set on close) the finished file is hashed. Either way the same bytes."""
    from storyflow.media import sound

    samples = (np.random.default_rng(1).standard_normal((10_000, 2)) * 0.2).astype(np.float32)
    with media.wav_writer(tmp_path / "a.wav", 2, 8_000, frames=frames) as out:
        for start in range(0, len(samples), 3_001):
            out.write(samples[start : start + 3_001])
    read_back = []
    monkeypatch.setattr("storyflow.media.files.sha256_file", lambda path: read_back.append(path) or "read back")
    digest = out.sha256
    monkeypatch.undo()
    assert (digest == media.sha256_file(tmp_path / "a.wav")) == (frames == 10_000)
    assert read_back == ([] if frames == 10_000 else [tmp_path / "a.wav"])
    assert media.read_wav(tmp_path / "a.wav")[0].shape == (10_000, 2)
    assert sound.write_wav(tmp_path / "b.wav", samples, 8_000) == media.sha256_file(tmp_path / "b.wav")
