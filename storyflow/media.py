"""Frames in and out of files: encode, decode, probe, hash, write atomically.

Every video storyflow writes goes through one encoder (the ffmpeg that imageio-ffmpeg
ships, the same binary moviepy drives) with one set of H.264 settings, so any two clips
of the same size and fps can be joined by stream copy. Decoding and probing use PyAV,
in-process. numpy and PyAV are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storyflow.errors import MediaError

if TYPE_CHECKING:
    import numpy as np

AUDIO_SAMPLE_RATE = 48_000

# mkstemp makes owner-only files; finished files get the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def h264_args(fps: int) -> list[str]:
    """The one set of encoder settings every clip and film piece shares.

    A keyframe every half second (and never elsewhere) lets the stitcher cut clips at
    keyframes and re-encode only the frames a transition touches.
    """
    gop = max(1, round(fps / 2))
    return [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
        "-pix_fmt", "yuv420p", "-profile:v", "high",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-video_track_timescale", str(fps * 1000),
    ]  # fmt: skip


def run_ffmpeg(args: list[str], what: str) -> None:
    """Run the bundled ffmpeg; on failure raise MediaError with the end of its log."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise MediaError(f"ffmpeg failed while {what}: {tail}", fix="rerun with --debug")


# ---------------------------------------------------------------- atomic files


def partial_path(final: Path) -> Path:
    """A fresh temporary file beside `final`: hidden, ending in '.partial<suffix>'."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=final.parent, prefix=f".{final.stem}.", suffix=f".partial{final.suffix}"
    )
    os.close(fd)
    os.chmod(name, FILE_MODE)
    return Path(name)


def commit_partial(tmp: Path, final: Path) -> None:
    """fsync a finished temporary file and rename it over `final` in one step."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success fsync it and rename it into place.

    A crash at any point leaves either the old file or the new one under the final name,
    never a partial one.
    """
    tmp = partial_path(final)
    try:
        yield tmp
        commit_partial(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final: Path, text: str) -> None:
    atomic_write_bytes(final, text.encode("utf-8"))


def publish(source: Path, dest: Path) -> Path:
    """Make `dest` show `source`'s bytes, atomically: a hard link (no copy), or a copy where links fail."""
    import shutil

    tmp = partial_path(dest)
    try:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def publish_text(path: Path, text: str) -> Path:
    """Write text atomically unless the file already holds exactly it; return the path."""
    data = text.encode("utf-8")
    if not path.exists() or path.read_bytes() != data:
        atomic_write_bytes(path, data)
    return path


def remove_partials(folder: Path) -> list[Path]:
    """Delete the temporaries (".*.partial*") a killed process left in `folder`, recursively.

    Only safe while nothing else writes there (the caller holds the folder's lock).
    """
    removed = []
    for path in folder.rglob(".*.partial*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- video


class VideoWriter:
    """Stream RGB frames into an H.264 mp4 through ffmpeg; the file appears only on close.

    with VideoWriter(path, 640, 360, 24) as out:
        for frame in frames:
            out.write(frame)
    """

    def __init__(self, path: Path, width: int, height: int, fps: int) -> None:
        if width % 2 or height % 2:
            raise MediaError(
                f"frame size {width}x{height} has an odd side",
                fix="use even widths and heights (H.264 with yuv420p needs them)",
            )
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, fps
        self.frames_written = 0
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> VideoWriter:
        self._tmp = partial_path(self.path)
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
            "-r", str(self.fps), "-i", "-", "-an", *h264_args(self.fps),
            "-movflags", "+faststart", "-f", "mp4", str(self._tmp),
        ]  # fmt: skip
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3):
            raise MediaError(
                f"frame of shape {frame.shape} does not fit a {self.width}x{self.height} video",
                fix="the backend must return frames of the requested size",
            )
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(frame.astype("uint8", copy=False).tobytes())
        except BrokenPipeError:
            raise MediaError(self._failure(), fix="rerun with --debug") from None
        self.frames_written += 1

    def write_all(self, frames: Iterable[np.ndarray]) -> None:
        for frame in frames:
            self.write(frame)

    def _failure(self) -> str:
        assert self._proc is not None and self._proc.stderr is not None
        self._proc.wait()
        log = self._proc.stderr.read().decode(errors="replace").strip().splitlines()
        return f"ffmpeg could not encode {self.path.name}: {' '.join(log[-3:])}"

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._proc is not None and self._proc.stdin is not None and self._tmp
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        code = self._proc.wait()
        try:
            if exc_type is not None:
                return  # the caller's error wins; the partial file is removed below
            if code != 0:
                raise MediaError(self._failure(), fix="rerun with --debug")
            if self.frames_written == 0:
                raise MediaError(f"no frames were given for {self.path.name}",
                                 fix="the backend returned an empty clip; rerun with --debug")
            commit_partial(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


def write_video(path: Path, frames: Iterable[np.ndarray], width: int, height: int, fps: int) -> int:
    """Encode frames to `path`; returns the number of frames written."""
    with VideoWriter(path, width, height, fps) as out:
        out.write_all(frames)
    return out.frames_written


def read_frames(path: Path, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
    """Decode RGB frames [start, start+count) of a video file."""
    import av

    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < start:
                continue
            if count is not None and index >= start + count:
                break
            yield frame.to_ndarray(format="rgb24")


def last_frames(path: Path, count: int = 1) -> np.ndarray:
    """The last `count` frames of a video, as an array (count, H, W, 3)."""
    import collections

    import numpy as np

    tail: collections.deque[np.ndarray] = collections.deque(maxlen=count)
    tail.extend(read_frames(path))
    if not tail:
        raise MediaError(f"{path} has no video frames", fix="delete it and rerun")
    return np.stack(list(tail))


def first_frames(path: Path, count: int = 1) -> np.ndarray:
    import numpy as np

    frames = list(read_frames(path, 0, count))
    if not frames:
        raise MediaError(f"{path} has no video frames", fix="delete it and rerun")
    return np.stack(frames)


@dataclass(frozen=True)
class MediaInfo:
    width: int
    height: int
    fps: float
    num_frames: int  # counted by decoding
    video_codec: str
    audio_codec: str | None
    audio_seconds: float | None
    keyframes: tuple[int, ...]

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0


def probe(path: Path) -> MediaInfo:
    """Decode-level facts about a video file: size, fps, exact frame count, keyframes."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot open {path}: {exc}", fix="delete the file and rerun") from None
    with container:
        if not container.streams.video:
            raise MediaError(f"{path} has no video stream", fix="delete the file and rerun")
        video = container.streams.video[0]
        width, height = video.codec_context.width, video.codec_context.height
        fps = float(video.average_rate or video.guessed_rate or 0)
        codec = video.codec_context.name
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_codec = audio.codec_context.name if audio else None
        audio_seconds = (
            float(audio.duration * audio.time_base) if audio and audio.duration else None
        )
        keyframes = []
        count = 0
        for packet in container.demux(video):
            if packet.size == 0:
                continue
            if packet.is_keyframe:
                keyframes.append(packet.pts)
            count += 1
    # keyframe pts -> frame indices (packets arrive in decode order; pts are presentation times)
    start_pts = min(keyframes) if keyframes else 0
    frame_ticks = (1 / fps) / float(video.time_base) if fps else 1
    indices = tuple(sorted(round((pts - start_pts) / frame_ticks) for pts in keyframes))
    return MediaInfo(width, height, fps, count, codec, audio_codec, audio_seconds, indices)


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale a frame to cover width x height, then crop the centre (no stretching)."""
    import numpy as np
    from PIL import Image

    src_h, src_w = frame.shape[:2]
    scale = max(width / src_w, height / src_h)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    image = Image.fromarray(frame).resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return np.asarray(image.crop((left, top, left + width, top + height)))


def save_png(frame: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(frame).save(tmp, format="PNG")


# ---------------------------------------------------------------- audio


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = AUDIO_SAMPLE_RATE) -> None:
    """Write float samples in [-1, 1], shape (n,) or (n, channels), as 16-bit PCM WAV."""
    import numpy as np

    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Samples as float32 (n, channels) in [-1, 1], and the sample rate."""
    import numpy as np

    with wave.open(str(path), "rb") as wav:
        channels, rate, n = wav.getnchannels(), wav.getframerate(), wav.getnframes()
        raw = wav.readframes(n)
    data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32767.0
    return data.reshape(-1, channels), rate


def decode_audio(path: Path, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """Decode a file's first audio stream to float32 mono at `sample_rate`."""
    import av
    import numpy as np

    chunks = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.float32)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
