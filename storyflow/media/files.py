"""Files written so a crash never leaves half of one: temporary name, fsync, rename; and their hashes.

Every file storyflow makes is written to a hidden ".<stem>.<random>.partial<suffix>" beside
its final name, fsynced and renamed into place in one step, so a process killed at any
moment (SIGKILL included) leaves the old file or the new one, never a partial one; the
next run sweeps the temporaries (remove_partials). `publish` shows a file under a second
name as a hard link (no copy). Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# mkstemp makes owner-only files; finished files get the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


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
