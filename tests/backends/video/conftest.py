"""Tiny random Wan folders, built once per test session (tests/tiny_wan.py builds them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_wan import build_tiny_wan_i2v, build_tiny_wan_t2v


@pytest.fixture(scope="session")
def tiny_wan_t2v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Wan 2.1 text-to-video folder."""
    return build_tiny_wan_t2v(tmp_path_factory.mktemp("tiny-wan") / "t2v")


@pytest.fixture(scope="session")
def tiny_wan_i2v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Wan 2.2 A14B-layout image-to-video folder: first and last frame."""
    return build_tiny_wan_i2v(tmp_path_factory.mktemp("tiny-wan") / "i2v-a14b")


@pytest.fixture(scope="session")
def tiny_wan_i2v_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Wan 2.1 image-to-video folder with a CLIP image encoder: first frame only."""
    return build_tiny_wan_i2v(tmp_path_factory.mktemp("tiny-wan") / "i2v-clip", layout="wan2.1")


@pytest.fixture(scope="session")
def tiny_wan_flf2v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Wan 2.1 first-last-frame folder: needs both frames, every time."""
    return build_tiny_wan_i2v(tmp_path_factory.mktemp("tiny-wan") / "flf2v", layout="flf2v")
