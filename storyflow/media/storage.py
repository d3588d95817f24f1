"""Outputs on object storage: one shared place every home uploads its files to and fetches them back from.

STORYFLOW_STORAGE_URL names it as an fsspec URL: s3://bucket/prefix (s3fs, `pip install -e
'.[storage]'`), or any other protocol fsspec knows (file:///mnt/shared, gcs://..., with its
package). An object is named by the file's path relative to home, under the URL's prefix, so a
file has the same name in every home and in storage; files are content-addressed, so the same
name and size mean the same bytes (an upload of a file already there is skipped), and what is
fetched is checked against the catalog's sha256 before it is used.

Credentials and the endpoint come from the provider's own variables, never from storyflow's:
for S3 AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_PROFILE and
AWS_ENDPOINT_URL (an S3-compatible server: MinIO, Ceph, moto), which botocore reads itself
(measured with s3fs 2026.9 / aiobotocore 3.10). STORYFLOW_STORAGE_OPTIONS adds fsspec options
that are not secret. The URL is shown without any user or password in it.

fsspec and s3fs are imported when a storage is opened, so `storyflow --help` stays fast.
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from storyflow.core.errors import InputError, StoryflowError
from storyflow.core.secrets import guard_secrets, redact
from storyflow.media.files import commit_partial, partial_path, sha256_file

log = logging.getLogger("storyflow.media.storage")
# Objects this process found holding other bytes than the catalog recorded, by (storage, stored path): the
# file made again in their place is uploaded over them even at the same size (the size check would skip it).
_REJECTED: set[tuple[str, str]] = set()

INSTALL = "pip install -c constraints.txt -e '.[storage]'"
CREDENTIALS_FIX = ("check that the bucket exists and that AWS_ENDPOINT_URL (an S3-compatible server), "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) are right for it")  # fmt: skip


class Storage:
    """One fsspec filesystem and the prefix under which home's files are kept, by their stored path."""

    def __init__(self, fs: Any, root: str, url: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.display = shown_url(url)
        netloc = urlsplit(url).netloc if "://" in url else ""
        self._userinfo = netloc.rsplit("@", 1)[0] if "@" in netloc else None  # masked in every message
        self._local = "file" in _protocols(fs)
        self._ready = False
        self._ready_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, options: dict[str, Any] | None = None) -> Storage:
        """The storage at `url` with fsspec `options`; InputError naming the fix for an unknown protocol,
        a missing package or options the filesystem does not take. Nothing is asked of the server yet."""
        shown = shown_url(url)
        options = guard_secrets(dict(options or {}), "STORYFLOW_STORAGE_OPTIONS", into="the storage options",
                                error=InputError)  # fmt: skip
        try:
            from fsspec.core import url_to_fs
        except ImportError:
            raise InputError(f"STORYFLOW_STORAGE_URL is {shown}, and fsspec is not installed", fix=INSTALL) from None
        scheme = url.split("://", 1)[0] if "://" in url else "file"
        if scheme in ("s3", "s3a") and "@" in urlsplit(url).netloc:
            raise InputError(f"STORYFLOW_STORAGE_URL ({shown}) holds credentials",
                             fix="leave them out of the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                             "(or AWS_PROFILE) instead")  # fmt: skip
        try:
            fs, root = url_to_fs(url, **options)
        except ImportError as exc:
            fix = INSTALL if scheme in ("s3", "s3a") else f"install the fsspec package for {scheme}:// ({exc})"
            raise InputError(f"STORYFLOW_STORAGE_URL is {shown}: its filesystem is not installed", fix=fix) from None
        except ValueError as exc:
            if "protocol" not in str(exc).lower():
                raise InputError(f"STORYFLOW_STORAGE_URL is {shown}: {redact(str(exc))}",
                                 fix="give it as s3://bucket/prefix (or another fsspec URL)") from None  # fmt: skip
            raise InputError(f"STORYFLOW_STORAGE_URL is {shown}: fsspec knows no protocol {scheme}://",
                             fix="give it as s3://bucket/prefix, or file:///a/shared/folder") from None  # fmt: skip
        except TypeError as exc:
            fix = f"pass only options the {scheme}:// filesystem takes (see fsspec's docs)"
            raise InputError(f"STORYFLOW_STORAGE_OPTIONS do not suit {scheme}://: {redact(str(exc))}",
                             fix=fix) from None  # fmt: skip
        return cls(fs, root, url)

    def __repr__(self) -> str:
        return f"Storage({self.display!r})"

    # ------------------------------------------------------------ names

    def url(self, stored: str) -> str:
        """Where the object of a stored path is, for people (no credentials in it)."""
        return f"{self.display.rstrip('/')}/{_relative(stored)}"

    def _path(self, stored: str) -> str:
        return posixpath.join(self.root, _relative(stored)) if self.root else _relative(stored)

    # ------------------------------------------------------------ the three operations

    def has(self, stored: str) -> int | None:
        """The size of the object of a stored path, or None if storage has none."""
        self._check()
        with self._errors(f"look up {self.url(stored)}"):
            try:
                info = self.fs.info(self._path(stored))
            except FileNotFoundError:
                return None
        return info.get("size") if info.get("type", "file") == "file" else None

    def put(self, local: Path, stored: str) -> bool:
        """Upload `local` as `stored` unless an object of its size is there (same name and size: same bytes,
        unless this process found that object damaged); True if it was uploaded."""
        size = Path(local).stat().st_size
        if self.has(stored) == size and (self.display, stored) not in _REJECTED:
            return False
        target = self._path(stored)
        with self._errors(f"upload {local} to {self.url(stored)}"):
            if self._local:
                self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
            self.fs.put_file(str(local), target)
        _REJECTED.discard((self.display, stored))
        log.debug("uploaded %s to %s", local, self.url(stored))
        return True

    def fetch(self, stored: str, local: Path, sha256: str | None, *, size: int | None = None) -> bool:
        """Download `stored` to `local` if it holds what was recorded (its sha256; its size where no hash was
        recorded): False, and no file left, when storage has none, or another content. Never blindly: with
        neither a sha256 nor a size to check, nothing is fetched."""
        if sha256 is None and size is None:
            return False
        held = self.has(stored)
        if held is None:
            return False
        if size is not None and held != size:
            return self._refuse(stored, f"{held} bytes", f"{size} bytes")  # refused before any byte is downloaded
        local = Path(local)
        tmp = partial_path(local)  # a temporary beside it: a killed download never shows under the final name
        try:
            with self._errors(f"download {self.url(stored)}"):
                try:
                    self.fs.get_file(self._path(stored), str(tmp))
                except FileNotFoundError:
                    return False  # deleted meanwhile
            got = tmp.stat().st_size
            if size is not None and got != size:
                return self._refuse(stored, f"{got} bytes", f"{size} bytes")
            digest = sha256_file(tmp) if sha256 is not None else None
            if digest != sha256:
                return self._refuse(stored, f"sha256 {digest[:12]}", f"sha256 {sha256[:12]}")
            commit_partial(tmp, local)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _refuse(self, stored: str, found: str, expected: str) -> bool:
        """Warn that an object is not what the catalog recorded (it is made again, and uploaded over it)."""
        log.warning("%s in storage does not hold what the catalog recorded (%s, not %s); not used",
                    self.url(stored), found, expected)  # fmt: skip
        _REJECTED.add((self.display, stored))
        return False

    # ------------------------------------------------------------ first use and errors

    def _check(self) -> None:
        """On first use: is the bucket (or folder) there and reachable? One clear error instead of one per file."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            if self._local:
                with self._errors(f"create {self.display}"):
                    self.fs.makedirs(self.root, exist_ok=True)
            else:
                bucket = self.fs.split_path(self.root)[0] if hasattr(self.fs, "split_path") else self.root.split("/")[0]
                with self._errors("reach its bucket"):
                    try:
                        self.fs.info(bucket)
                    except FileNotFoundError:
                        fix = f"create it, or correct STORYFLOW_STORAGE_URL; {CREDENTIALS_FIX}"
                        raise StoryflowError(f"storage {self.display}: its bucket does not exist", fix=fix) from None
            self._ready = True

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn the filesystem's errors (botocore's included) into a StoryflowError that names the fix;
        FileNotFoundError is the caller's to handle."""
        try:
            yield
        except (FileNotFoundError, StoryflowError):
            raise
        except TypeError as exc:
            fix = "pass only options its filesystem takes in STORYFLOW_STORAGE_OPTIONS"
            raise StoryflowError(f"storage {self.display}: cannot {what}: {self._said(exc)}", fix=fix) from None
        except PermissionError as exc:
            fix = CREDENTIALS_FIX if not self._local else "check that the folder is writable"
            raise StoryflowError(f"storage {self.display}: not allowed to {what}: {self._said(exc)}", fix=fix) from None
        except Exception as exc:  # noqa: BLE001 - whatever the filesystem's client raises, the user gets the fix
            fix = CREDENTIALS_FIX if not self._local else "check that the folder is there and writable"
            raise StoryflowError(f"storage {self.display}: cannot {what}: {self._said(exc)}", fix=fix) from None

    def _said(self, exc: BaseException) -> str:
        """The first line of an error, with no credentials in it."""
        text = redact((str(exc).strip() or type(exc).__name__).splitlines()[0])
        return text.replace(self._userinfo, "***") if self._userinfo else text


# ---------------------------------------------------------------- helpers


def shown_url(url: str) -> str:
    """`url` for people: without a user, password or query (a signed token), and secret values masked."""
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        return redact(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return redact(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def _relative(stored: str) -> str:
    """A stored path as an object name: relative, posix, never above the prefix."""
    path = PurePosixPath(stored)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"{stored!r} is not a path relative to home; only those are kept in storage")
    return path.as_posix()


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
