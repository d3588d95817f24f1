"""What a backend needs, as data: packages and keys checked before any work starts, with the fix said.

Every cache key names the backend, its model and the model's revision, so a new model (or a new
revision of one) never reuses another's output.
"""

from __future__ import annotations

import pytest

from storyflow.backends.base import GeneratedVideo, VideoBackend, VideoCapabilities
from storyflow.core.errors import BackendUnavailableError
from storyflow.core.models import CameraMove, ClipRequest
from storyflow.stages.generate import clip_cache_key


class HostedModel(VideoBackend):
    """A backend that imports a package this machine lacks and reads its key from the environment."""

    name = "hosted"
    requires = ("storyflow_surely_missing_package",)
    install = 'pip install "storyflow-hosted"'
    key_env = ("STORYFLOW_TEST_HOSTED_KEY", "HOSTED_API_KEY")

    @property
    def capabilities(self) -> VideoCapabilities:
        return VideoCapabilities(max_clip_seconds=4)

    def generate(self, request: ClipRequest) -> GeneratedVideo:
        raise AssertionError("never called: the checks come first")


class KeyOnly(HostedModel):
    requires = ("json",)  # a package every Python has


def test_a_missing_package_is_named_with_the_command_that_installs_it():
    with pytest.raises(BackendUnavailableError) as caught:
        HostedModel().check_available()
    assert "storyflow_surely_missing_package" in caught.value.message and "video backend 'hosted'" in caught.value.message
    assert caught.value.fix == 'pip install "storyflow-hosted"'


def test_a_missing_key_names_the_variables_that_hold_it(monkeypatch):
    for name in KeyOnly.key_env:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BackendUnavailableError) as caught:
        KeyOnly().check_available()
    assert "needs an API key" in caught.value.message
    assert "STORYFLOW_TEST_HOSTED_KEY or HOSTED_API_KEY" in caught.value.fix and "--video-backend" in caught.value.fix
    monkeypatch.setenv("HOSTED_API_KEY", "k-123456789")
    KeyOnly().check_available()  # any one of them will do


class Revisioned(KeyOnly):
    name = "revisioned"

    def __init__(self, model: str, revision: str) -> None:
        super().__init__()
        self._model, self._revision = model, revision

    @property
    def model(self) -> str:
        return self._model

    @property
    def revision(self) -> str:
        return self._revision


def test_every_clip_key_names_the_model_and_its_revision():
    request = ClipRequest(prompt="a lighthouse", seed=1, width=64, height=36, fps=12, num_frames=12,
                          camera=CameraMove.STATIC)  # fmt: skip

    def key(backend: VideoBackend) -> str:
        return clip_cache_key(backend, request, parent_sha256=None, context=0)

    base = Revisioned("acme/video-1", "a1b2c3")
    assert key(base) == key(Revisioned("acme/video-1", "a1b2c3"))
    assert key(base) != key(Revisioned("acme/video-2", "a1b2c3"))  # another model
    assert key(base) != key(Revisioned("acme/video-1", "d4e5f6"))  # another revision of it
    assert base.model_ref == "acme/video-1@a1b2c3"
