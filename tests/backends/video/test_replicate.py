"""The replicate backend through Replicate's real client, against a fake Replicate API (tests/fake_replicate.py)."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import numpy as np
import pytest

from storyflow import media
from storyflow.backends.registry import load_backend
from storyflow.core.errors import (
    BackendOptionError,
    BackendUnavailableError,
    ContentFiltered,
    GenerationError,
    TransientError,
)
from storyflow.core.models import ClipRequest
from tests.fake_replicate import Canceled, Failed, FakeReplicate, Fault, Filtered

TOKEN = "r8_test_token_0123456789abcdef"


class Ledger:
    """A catalog-free PaidJobs: what the backend wrote down, in order, and the server's poll count at each step."""

    def __init__(self, server: FakeReplicate | None = None, pending: str | None = None) -> None:
        self.server, self._pending = server, pending
        self.events: list[tuple[Any, ...]] = []

    def pending(self) -> str | None:
        return self._pending

    def started(self, job_id: str, *, cost_usd: float | None = None, detail: str = "") -> None:
        polls = len(self.server.of_kind("poll", answered=False)) if self.server else None
        self.events.append(("started", job_id, cost_usd, polls))

    def finished(self, job_id: str, status: str, *, detail: str = "") -> None:
        self.events.append(("finished", job_id, status, detail))

    @property
    def statuses(self) -> list[str]:
        return [event[2] for event in self.events if event[0] == "finished"]


@pytest.fixture(autouse=True)
def replicate_token(monkeypatch):
    monkeypatch.delenv("REPLICATE_BASE_URL", raising=False)
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)


@pytest.fixture
def server():
    with FakeReplicate(polls=2, token=TOKEN) as fake:
        yield fake


def backend(server: FakeReplicate, tmp_path, **options: Any):
    options = {"base_url": server.url, "poll_seconds": 0.02, "backoff_seconds": 0.01, "download_dir": str(tmp_path),
               **options}  # fmt: skip
    made = load_backend("video", "replicate", options)
    made.check_available()
    return made


def request(seconds: int = 5, fps: int = 24, **fields: Any) -> ClipRequest:
    return ClipRequest(**{"prompt": "a lighthouse at dusk, waves below", "seed": 7, "width": 64, "height": 36,
                          "fps": fps, "num_frames": seconds * fps, **fields})  # fmt: skip


def frames_of(video) -> np.ndarray:
    return np.stack(list(video.frames))


def test_text_to_video_returns_the_asked_duration_and_size(server, tmp_path):
    made = backend(server, tmp_path)
    jobs = Ledger(server)
    video = made.generate(request(5, negative_prompt="fog"), jobs=jobs)
    assert frames_of(video).shape == (120, 36, 64, 3)  # 5 s at 24 fps, 64x36 as asked
    assert media.probe(video.path).num_frames == 120
    [create] = server.creates
    assert create.path == "/v1/models/kwaivgi/kling-v2.1-master/predictions"
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert create.body["input"] == {"prompt": "a lighthouse at dusk, waves below", "duration": 5,
                                    "aspect_ratio": "16:9", "negative_prompt": "fog"}  # fmt: skip
    assert len(server.polls) == 2 and len(server.downloads) == 1
    assert video.metadata["cost_usd"] == pytest.approx(5 * 0.28) and not video.metadata["resumed"]
    caps = made.capabilities
    assert caps.durations == (5, 10) and caps.fps == (24,) and caps.image_to_video and not caps.extend_from_video
    assert [e[0] for e in jobs.events] == ["started", "finished"] and jobs.statuses == ["done"]
    assert jobs.events[0][1] == create_id(server) and jobs.events[0][2] == pytest.approx(1.4)


def create_id(server: FakeReplicate) -> str:
    [prediction] = server.predictions.values()
    return prediction.id


def test_a_longer_shot_asks_for_the_next_duration_and_keeps_its_frames(server, tmp_path):
    video = backend(server, tmp_path).generate(request(fps=24, num_frames=150))  # 6.25 s -> a 10 s prediction
    assert server.creates[0].body["input"]["duration"] == 10
    assert frames_of(video).shape[0] == 150


def test_started_is_written_before_the_first_poll(server, tmp_path):
    jobs = Ledger(server)
    backend(server, tmp_path).generate(request(), jobs=jobs)
    started = jobs.events[0]
    assert started[0] == "started" and started[3] == 0  # no poll had been sent when the prediction was written down
    assert started[1] in server.predictions and len(server.polls) == 2


def test_image_to_video_sends_the_start_image_as_a_data_uri(server, tmp_path):
    first = np.zeros((36, 64, 3), np.uint8)
    first[:, :32] = (200, 40, 40)
    video = backend(server, tmp_path).generate(request(5, strategy="image_to_video", conditioning=first[None]))
    sent = server.creates[0].body["input"]
    assert sent["start_image"].startswith("data:image/png;base64,") and "aspect_ratio" not in sent
    from PIL import Image

    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(sent["start_image"].split(",", 1)[1]))))
    assert (picture == first).all() and (server.start_image(create_id(server)) == first).all()
    assert frames_of(video).shape[0] == 120 and video.metadata["mode"] == "image"


def test_a_large_start_image_is_uploaded_through_the_files_api(server, tmp_path, monkeypatch):
    from storyflow.backends.video import replicate as module

    monkeypatch.setattr(module, "INLINE_IMAGE_BYTES", 10)
    first = np.full((36, 64, 3), 90, np.uint8)
    backend(server, tmp_path).generate(request(5, strategy="image_to_video", conditioning=first[None]))
    [upload] = server.of_kind("upload")
    url = server.creates[0].body["input"]["start_image"]
    assert url.startswith(f"{server.url}/files/") and (server.start_image(create_id(server)) == first).all()
    assert upload.headers["authorization"] == f"Bearer {TOKEN}"


def test_seedance_takes_a_seed_and_an_end_image(server, tmp_path):
    made = backend(server, tmp_path, model="bytedance/seedance-1-pro", input={"resolution": "720p"})
    caps = made.capabilities
    assert caps.last_frame and caps.seed and caps.durations[0] == 2 and caps.cost_per_second == pytest.approx(0.06)
    first, last = np.zeros((36, 64, 3), np.uint8), np.full((36, 64, 3), 255, np.uint8)
    video = made.generate(request(3, negative_prompt="fog", strategy="loop_close", conditioning=first[None],
                                  end_conditioning=last[None]))  # fmt: skip
    sent = server.creates[0].body["input"]
    assert sent["seed"] == 7 and sent["duration"] == 3 and sent["resolution"] == "720p"
    assert sent["image"].startswith("data:image/png") and sent["last_frame_image"].startswith("data:image/png")
    assert "negative_prompt" not in sent and "negative prompt" in video.metadata["notes"][0]
    assert frames_of(video).shape[0] == 72 and video.metadata["cost_usd"] == pytest.approx(0.18)


def test_a_pinned_version_is_created_through_v1_predictions(server, tmp_path):
    version = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
    made = backend(server, tmp_path, model=f"acme/video-model:{version}", duration_field="seconds")
    assert made.model == "acme/video-model" and made.revision == version and made.price is None
    made.generate(request(5))
    [create] = server.creates
    assert create.path == "/v1/predictions" and create.body["version"] == version
    assert create.body["input"]["seconds"] == 5 and create.body["input"]["seed"] == 7


def test_a_429_with_retry_after_is_waited_out(server, tmp_path):
    server.fault("create", Fault(429, retry_after=0.3))
    server.fault("poll", Fault(503, retry_after=1))  # a GET: the client's RetryTransport waits this out (whole seconds)
    began = time.monotonic()
    video = backend(server, tmp_path).generate(request())
    assert time.monotonic() - began >= 1.3
    assert [r.status for r in server.of_kind("create", answered=False)] == [429, 201]
    assert [r.status for r in server.of_kind("poll", answered=False)] == [503, 200, 200]
    assert frames_of(video).shape[0] == 120


def test_dropped_polls_and_500s_are_retried(server, tmp_path):
    server.fault("poll", Fault(drop=True), Fault(500))
    server.fault("download", Fault(502))
    jobs = Ledger(server)
    backend(server, tmp_path).generate(request(), jobs=jobs)
    assert len(server.creates) == 1 and jobs.statuses == ["done"]


def test_exhausted_retries_name_model_host_and_status(server, tmp_path):
    server.fault("create", *[Fault(500)] * 3)
    with pytest.raises(TransientError) as caught:
        backend(server, tmp_path, max_retries=2).generate(request())
    message = caught.value.message
    assert "kwaivgi/kling-v2.1-master" in message and server.url.split("//")[1] in message and "HTTP 500" in message
    assert server.creates == []


def test_a_create_whose_answer_was_lost_is_not_sent_again(server, tmp_path):
    server.fault("create", Fault(drop=True))
    with pytest.raises(TransientError, match="may have started"):
        backend(server, tmp_path).generate(request())
    assert len(server.of_kind("create", answered=False)) == 1


def test_a_failed_prediction_is_a_generation_error_naming_the_error(server, tmp_path):
    server.outcome(Failed("CUDA out of memory"))
    jobs = Ledger(server)
    with pytest.raises(GenerationError) as caught:
        backend(server, tmp_path).generate(request(), jobs=jobs)
    assert "CUDA out of memory" in caught.value.message and not isinstance(caught.value, TransientError)
    assert jobs.statuses == ["failed"] and server.downloads == []


def test_a_canceled_prediction_is_failed(server, tmp_path):
    server.outcome(Canceled())
    jobs = Ledger(server)
    with pytest.raises(GenerationError, match="canceled"):
        backend(server, tmp_path).generate(request(), jobs=jobs)
    assert jobs.statuses == ["failed"]


def test_a_flagged_prediction_is_filtered_with_its_reasons(server, tmp_path):
    server.outcome(Filtered())
    jobs = Ledger(server)
    with pytest.raises(ContentFiltered) as caught:  # not retried as is: the flow may rephrase it once
        backend(server, tmp_path).generate(request(), jobs=jobs)
    assert "filtered" in caught.value.message and "flagged as sensitive" in caught.value.message
    assert caught.value.reasons == (Filtered.error,)
    assert jobs.statuses == ["filtered"] and "E005" in jobs.events[-1][3]


def test_a_pending_prediction_is_polled_not_created_again(server, tmp_path):
    earlier = server.add_prediction(input={"prompt": "an earlier run", "duration": 5, "aspect_ratio": "16:9"})
    jobs = Ledger(server, pending=earlier)
    video = backend(server, tmp_path).generate(request(), jobs=jobs)
    assert server.creates == [] and len(server.polls) >= 2  # no second paid prediction
    assert [e[0] for e in jobs.events] == ["finished"] and jobs.events[0][1] == earlier
    assert video.metadata["resumed"] and video.metadata["prediction"] == earlier
    assert frames_of(video).shape[0] == 120


def test_a_prediction_that_outlives_max_wait_stays_pending_for_the_next_run(server, tmp_path):
    server.hold()
    jobs = Ledger(server)
    with pytest.raises(TransientError, match="still processing"):
        backend(server, tmp_path, max_wait=0.2).generate(request(), jobs=jobs)
    assert [e[0] for e in jobs.events] == ["started"]  # not finished: the next run resumes it
    server.release()
    again = Ledger(server, pending=jobs.events[0][1])
    backend(server, tmp_path).generate(request(), jobs=again)
    assert len(server.creates) == 1 and again.statuses == ["done"]


def test_a_missing_token_names_the_variable(monkeypatch):
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    with pytest.raises(BackendUnavailableError) as caught:
        load_backend("video", "replicate").check_available()
    assert "REPLICATE_API_TOKEN" in caught.value.fix


def test_a_refused_token_names_the_variable(server, tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_wrong_token_abcdefghijkl")
    with pytest.raises(BackendUnavailableError) as caught:
        backend(server, tmp_path).generate(request())
    assert "HTTP 401" in caught.value.message and "REPLICATE_API_TOKEN" in caught.value.fix
    assert "r8_wrong_token" not in str(caught.value)


def test_a_refused_input_passes_the_servers_message_redacted(server, tmp_path):
    server.fault("create", Fault(422, detail=f"- input.mode: must be one of standard, pro (token {TOKEN})"))
    with pytest.raises(GenerationError) as caught:
        backend(server, tmp_path).generate(request())
    assert "HTTP 422" in caught.value.message and "input.mode" in caught.value.message
    assert TOKEN not in caught.value.message and not isinstance(caught.value, TransientError)


def test_a_text_clip_on_an_image_only_model_is_refused_before_paying(server, tmp_path):
    made = backend(server, tmp_path, model="kwaivgi/kling-v2.1")
    assert not made.capabilities.text_to_video and not made.capabilities.last_frame
    assert backend(server, tmp_path, model="kwaivgi/kling-v2.1", input={"mode": "pro"}).capabilities.last_frame
    with pytest.raises(GenerationError, match="start image only"):
        made.generate(request())
    assert server.of_kind("create", answered=False) == []


def test_option_errors_are_backend_option_errors():
    with pytest.raises(BackendOptionError, match="unknown option 'modle'"):
        load_backend("video", "replicate", {"modle": "kwaivgi/kling-v2.1"})
    with pytest.raises(BackendOptionError, match="poll_seconds"):
        load_backend("video", "replicate", {"poll_seconds": 0.5})
    with pytest.raises(BackendOptionError, match="owner/name"):
        load_backend("video", "replicate", {"model": "kling"})
    with pytest.raises(BackendOptionError, match="prompt"):
        load_backend("video", "replicate", {"input": {"prompt": "x"}})
    with pytest.raises(BackendOptionError, match="looks like a secret"):
        load_backend("video", "replicate", {"api_token": TOKEN})
