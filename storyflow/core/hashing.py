"""Hashes: the one canonical JSON of a value, content addresses, cache keys, derived seeds.

A cache key is the sha256 of exactly what determines a generation's output: backend,
model and revision, prompt, negative prompt, seed, options, size, length, and the hashes
of the frames or files it was conditioned on. Never a run id, never code text: an
unchanged shot has an unchanged key, so it is never paid for twice.

Every hash of a value in storyflow goes through canonical_json (sorted keys, no spaces,
UTF-8 kept as is), so a record hashes the same wherever it is hashed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Bump when the meaning of a key's parts changes, so old entries stop matching.
KEY_SCHEMA = "storyflow-key-2"


def canonical_json(value: Any) -> str:
    """The one JSON text of a record or value: sorted keys, no spaces, UTF-8 kept as is."""
    from pydantic import BaseModel
    from pydantic_core import to_jsonable_python

    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(to_jsonable_python(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_sha256(value: Any) -> str:
    """sha256 of canonical_json(value): the content address of a record."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def cache_key(kind: str, **parts: Any) -> str:
    """The cache key of a generation of `kind` from `parts` (see the module docstring)."""
    return canonical_sha256({"schema": KEY_SCHEMA, "kind": kind, **parts})


def derive_seed(seed: int, *parts: str) -> int:
    """A 31-bit seed from a film seed and some text: stable across processes and machines."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def short(sha256: str | None) -> str:
    """The first 12 characters of a hash: how people see one (enough to tell files apart)."""
    return (sha256 or "")[:12]
