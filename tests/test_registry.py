"""Backend lookup by name, option validation, third-party entry points."""

from __future__ import annotations

import pytest

from storyflow.backends import registry
from storyflow.core.errors import BackendOptionError, InputError, UnknownBackendError


def test_unknown_backend_names_the_choices_and_the_flag():
    with pytest.raises(UnknownBackendError) as info:
        registry.load_backend("video", "sora-9000")
    assert "unknown video backend 'sora-9000'" in str(info.value)
    assert "--video-backend" in info.value.fix and "animatic" in info.value.fix


def test_unknown_kind_is_refused():
    with pytest.raises(UnknownBackendError, match="unknown backend kind"):
        registry.backend_names("smell")


def test_option_errors_name_the_option():
    with pytest.raises(BackendOptionError) as info:
        registry.load_backend("music", "procedural", {"level_db": "loud"})
    assert "option 'level_db'" in str(info.value) and "level_db" in info.value.fix


def test_option_pairs_are_parsed_as_yaml_values():
    assert registry.parse_option_pairs(["level_db=-20", "name=noir", "flag=true"], "--x") == {
        "level_db": -20, "name": "noir", "flag": True,
    }  # fmt: skip
    with pytest.raises(InputError, match="expects KEY=VALUE"):
        registry.parse_option_pairs(["novalue"], "--video-option")


def test_third_party_backends_register_through_entry_points(monkeypatch):
    fake = {kind: {} for kind in registry.BACKEND_KINDS}
    fake["video"] = {"plugin-cam": "storyflow.backends.video.animatic:AnimaticBackend"}
    monkeypatch.setattr(registry, "_entry_points", lambda: fake)
    assert "plugin-cam" in registry.backend_names("video")
    assert registry.backend_class("video", "plugin-cam").__name__ == "AnimaticBackend"


def test_secret_looking_options_are_refused_before_anything_is_recorded():
    with pytest.raises(BackendOptionError) as info:
        registry.load_backend("video", "animatic", {"api_key": "sk-live-123456789"})
    assert "looks like a secret" in str(info.value) and "sk-live" not in str(info.value)
    assert "environment" in info.value.fix
