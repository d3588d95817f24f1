"""The media helpers every stage and backend shares: pictures and sound in and out of files.

    files.py        atomic writes (temporary name, fsync, rename), publishing, file hashes
    video.py        encode (one H.264 recipe for every clip), decode, probe, resize frames
    sound.py        16-bit WAV in and out, any file's audio decoded, resampling
    loudness.py     loudness to ITU-R BS.1770 (integrated LUFS), true peak, the limiter
    credentials.py  C2PA Content Credentials: sign a file, read and validate its manifest
    storage.py      object storage (STORYFLOW_STORAGE_URL) several homes share: upload, fetch and check

It may import storyflow.core only: never a stage, a backend, the catalog or Prefect. The
names below are the ones most callers want, so `from storyflow import media` then
`media.probe(path)` reads as what it does; loudness, credentials and storage are imported by name.
"""

from storyflow.media.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    commit_partial,
    partial_path,
    publish,
    publish_text,
    remove_partials,
    sha256_bytes,
    sha256_file,
)
from storyflow.media.sound import (
    AUDIO_SAMPLE_RATE,
    WavIn,
    WavOut,
    decode_audio,
    open_wav,
    pcm_samples,
    read_wav,
    resample,
    wav_writer,
    write_wav,
)
from storyflow.media.video import (
    MediaInfo,
    VideoWriter,
    decode_range,
    ffmpeg_exe,
    first_frames,
    fit_frame,
    h264_args,
    last_frames,
    probe,
    read_frames,
    read_luma,
    run_ffmpeg,
    save_png,
    write_video,
)

__all__ = [
    "AUDIO_SAMPLE_RATE",
    "MediaInfo",
    "VideoWriter",
    "WavIn",
    "WavOut",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "commit_partial",
    "decode_audio",
    "decode_range",
    "ffmpeg_exe",
    "first_frames",
    "fit_frame",
    "h264_args",
    "last_frames",
    "open_wav",
    "partial_path",
    "pcm_samples",
    "probe",
    "publish",
    "publish_text",
    "read_frames",
    "read_luma",
    "read_wav",
    "remove_partials",
    "resample",
    "run_ffmpeg",
    "save_png",
    "wav_writer",
    "sha256_bytes",
    "sha256_file",
    "write_video",
    "write_wav",
]
