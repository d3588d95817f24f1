"""The veo backend through the real google-genai client, against a fake Gemini API server (tests/fake_gemini.py)."""

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
from tests.fake_gemini import Failed, Fault, FakeGemini, Filtered

KEY = "test-gemini-key-123456"


class Ledger:
    """A catalog-free PaidJobs: what the backend wrote down, in order, and the server's request count at each step."""

    def __init__(self, server: FakeGemini | None = None, pending: str | None = None) -> None:
        self.server, self._pending = server, pending
        self.events: list[tuple[Any, ...]] = []

    def pending(self) -> str | None:
        return self._pending

    def started(self, job_id: str, *, cost_usd: float | None = None, detail: str = "") -> None:
        polls = len(self.server.of_kind("poll", answered=False)) if self.server else None
        self.events.append(("started", job_id, cost_usd, polls, detail))

    def finished(self, job_id: str, status: str, *, detail: str = "") -> None:
        self.events.append(("finished", job_id, status, detail))

    @property
    def statuses(self) -> list[str]:
        return [event[2] for event in self.events if event[0] == "finished"]


@pytest.fixture(autouse=True)
def gemini_key(monkeypatch):
    for name in ("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_CLOUD_PROJECT",
                 "GOOGLE_CLOUD_LOCATION", "GOOGLE_GEMINI_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)


@pytest.fixture
def server():
    with FakeGemini(polls=2, key=KEY) as fake:
        yield fake


def veo(server: FakeGemini, tmp_path, **options: Any):
    options = {"base_url": server.url, "poll_seconds": 0.02, "backoff_seconds": 0.01, "download_dir": str(tmp_path),
               **options}  # fmt: skip
    backend = load_backend("video", "veo", options)
    backend.check_available()
    return backend


def request(seconds: int = 4, **fields: Any) -> ClipRequest:
    return ClipRequest(**{"prompt": "a lighthouse at dusk, waves below", "seed": 7, "width": 1280, "height": 720,
                          "fps": 24, "num_frames": seconds * 24, **fields})  # fmt: skip


def frames_of(video) -> np.ndarray:
    return np.stack(list(video.frames))


def test_text_to_video_returns_the_asked_duration_and_size(server, tmp_path):
    backend = veo(server, tmp_path)
    jobs = Ledger(server)
    video = veo(server, tmp_path).generate(request(4, negative_prompt="fog"), jobs=jobs)
    frames = frames_of(video)
    assert frames.shape == (96, 36, 64, 3)  # 4 s at 24 fps, the server's 16:9 size
    assert media.probe(video.path).num_frames == 96 and video.path.exists()
    [create] = server.creates
    assert create.path == "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    assert create.headers["x-goog-api-key"] == KEY
    assert create.body["instances"][0]["prompt"].startswith("a lighthouse")
    assert create.body["parameters"] == {"sampleCount": 1, "durationSeconds": 4, "aspectRatio": "16:9",
                                         "resolution": "720p", "negativePrompt": "fog"}  # fmt: skip
    assert len(server.polls) == 2 and len(server.downloads) == 1
    assert video.metadata["cost_usd"] == pytest.approx(4 * 0.40) and backend.capabilities.durations == (4, 6, 8)
    assert [e[0] for e in jobs.events] == ["started", "finished"] and jobs.statuses == ["done"]
    assert jobs.events[0][2] == pytest.approx(1.6)


def test_started_is_written_before_the_first_poll(server, tmp_path):
    jobs = Ledger(server)
    veo(server, tmp_path).generate(request(4), jobs=jobs)
    started = jobs.events[0]
    assert started[0] == "started" and started[3] == 0  # no poll had been sent when the job was written down
    assert started[1] in server.operations and len(server.polls) == 2


def test_image_to_video_sends_the_image(server, tmp_path):
    first = np.zeros((720, 1280, 3), np.uint8)
    first[:, :640] = (200, 40, 40)
    video = veo(server, tmp_path).generate(request(6, strategy="image_to_video", conditioning=first[None]))
    image = server.creates[0].body["instances"][0]["image"]
    assert image["mimeType"] == "image/png"
    from PIL import Image

    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(image["bytesBase64Encoded"]))))
    assert sent.shape == (720, 1280, 3) and (sent == first).all()
    assert frames_of(video).shape[0] == 144


def test_a_429_with_retry_after_is_waited_out(server, tmp_path):
    server.fault("create", Fault(429, retry_after=0.3))
    began = time.monotonic()
    video = veo(server, tmp_path).generate(request(4))
    assert time.monotonic() - began >= 0.3
    assert [r.status for r in server.of_kind("create", answered=False)] == [429, 200]
    assert frames_of(video).shape[0] == 96


def test_thirty_percent_transient_faults_still_finish(tmp_path):
    with FakeGemini(polls=2, key=KEY, fault_rate=0.3, seed=3) as server:
        backend = veo(server, tmp_path, max_retries=10)
        for seconds in (4, 6):
            jobs = Ledger(server)
            assert frames_of(backend.generate(request(seconds), jobs=jobs)).shape[0] == seconds * 24
            assert jobs.statuses == ["done"]
        assert len(server.creates) == 2  # faulted creates never made a job
        assert any(r.status != 200 for r in server.requests)


def test_faults_past_max_retries_are_a_transient_error_naming_model_host_and_status(server, tmp_path):
    server.fault("create", *[Fault(503)] * 3)
    with pytest.raises(TransientError) as caught:
        veo(server, tmp_path, max_retries=2).generate(request(4))
    assert "veo-3.1-generate-preview" in caught.value.message and "127.0.0.1" in caught.value.message
    assert "HTTP 503" in caught.value.message and not server.creates


def test_a_failed_job_is_a_generation_error_naming_the_error(server, tmp_path):
    server.outcome(Failed(message="Video generation failed: backend overloaded"))
    jobs = Ledger(server)
    with pytest.raises(GenerationError) as caught:
        veo(server, tmp_path).generate(request(4), jobs=jobs)
    assert "backend overloaded" in caught.value.message and "veo-3.1-generate-preview" in caught.value.message
    assert jobs.statuses == ["failed"]


def test_a_filtered_job_names_the_reasons_and_is_recorded_filtered(server, tmp_path):
    server.outcome(Filtered(("Person generation is not allowed for this prompt.",)))
    jobs = Ledger(server)
    with pytest.raises(ContentFiltered) as caught:  # not retried as is: the flow may rephrase it once
        veo(server, tmp_path).generate(request(4), jobs=jobs)
    assert "filtered" in caught.value.message and "Person generation is not allowed" in caught.value.message
    assert caught.value.reasons == ("Person generation is not allowed for this prompt.",)
    assert jobs.statuses == ["filtered"] and "Person generation" in jobs.events[-1][3]
    assert not server.downloads


def test_a_pending_job_is_polled_not_created_again_no_second_paid_job(server, tmp_path):
    earlier = server.add_operation(parameters={"durationSeconds": 4, "aspectRatio": "16:9"})
    jobs = Ledger(server, pending=earlier)
    video = veo(server, tmp_path).generate(request(4), jobs=jobs)
    assert not server.of_kind("create", answered=False)  # no create request at all
    assert server.polls and all(r.path == f"/v1beta/{earlier}" for r in server.polls)
    assert [e[0] for e in jobs.events] == ["finished"] and jobs.statuses == ["done"]
    assert video.metadata["resumed"] and frames_of(video).shape[0] == 96


def test_a_continuation_of_its_own_clip_extends_the_veo_video_natively(server, tmp_path):
    backend = veo(server, tmp_path)
    first = frames_of(backend.generate(request(8)))
    tail = first[-1:]
    # the pipeline re-encodes the clip at the film's size; the last frame comes back resized and lossy
    seen = media.fit_frame(media.fit_frame(tail[0], 1280, 720), 1280, 720)[None]
    second = backend.generate(request(6, strategy="continue_video", conditioning=seen))
    instance = server.creates[1].body["instances"][0]
    assert instance["video"]["uri"].startswith("https://generativelanguage.googleapis.com/v1beta/files/")
    assert "image" not in instance and server.creates[1].body["parameters"]["durationSeconds"] == 8
    assert second.metadata["mode"] == "extend" and second.metadata["cost_usd"] == pytest.approx(7 * 0.40)
    new = frames_of(second)
    assert new.shape[0] == 144
    # Veo answers the input video and the new 7 s as one video: only the new seconds are returned
    assert media.probe(second.path).num_frames == 192 + 168
    assert (new[0] == next(media.read_frames(second.path, 192, 1))).all()


def test_an_extension_resumed_by_a_new_process_keeps_the_new_seconds(server, tmp_path):
    from storyflow.backends.video import veo as veo_module

    backend = veo(server, tmp_path)
    seen = media.fit_frame(frames_of(backend.generate(request(8)))[-1], 1280, 720)[None]
    jobs = Ledger(server)
    extension = request(6, strategy="continue_video", conditioning=seen)
    made = frames_of(backend.generate(extension, jobs=jobs))
    # a new process: it knows no video handle, only the ledger's job, which it resumes
    veo_module._RECENT.clear()
    resumed = veo(server, tmp_path).generate(extension, jobs=Ledger(server, pending=jobs.events[0][1]))
    assert resumed.metadata["resumed"] and len(server.creates) == 2  # no third job
    again = frames_of(resumed)
    assert again.shape == made.shape and np.abs(again.astype(int) - made.astype(int)).mean() < 1


def test_a_job_bills_the_seconds_it_asks_for_and_an_extension_the_seven_it_adds(server, tmp_path):
    backend = veo(server, tmp_path, price_per_second=0.5)  # the user's price replaces the list price ($0.40)
    jobs = Ledger(server)
    three = backend.generate(request(3), jobs=jobs)  # Veo makes 4, 6 or 8 s: 4 s asked, and billed
    five = backend.generate(request(5), jobs=jobs)  # 6 s asked and billed, 5 s kept
    seen = media.fit_frame(frames_of(three)[-1], 1280, 720)[None]
    two_more = backend.generate(request(2, strategy="continue_video", conditioning=seen), jobs=jobs)
    assert [r.body["parameters"]["durationSeconds"] for r in server.creates] == [4, 6, 8]  # Veo extends at 8
    assert two_more.metadata["mode"] == "extend" and frames_of(two_more).shape[0] == 48
    # what each job costs, in the clip and in the ledger, whose detail says what was billed
    assert [v.metadata["cost_usd"] for v in (three, five, two_more)] == pytest.approx([4 * 0.5, 6 * 0.5, 7 * 0.5])
    started = [e for e in jobs.events if e[0] == "started"]
    assert [e[2] for e in started] == pytest.approx([2.0, 3.0, 3.5])
    assert [e[4] for e in started] == [f"veo-3.1-generate-preview {mode} {s} s billed at 720p"
                                       for mode, s in (("text", 4), ("text", 6), ("extend", 7))]  # fmt: skip
    assert [v.metadata["resolution"] for v in (three, two_more)] == ["720p", "720p"]
    # each of number_of_videos is billed; without a price of one's own, the model's list price
    fast = veo(server, tmp_path, model="veo-3.1-fast-generate-preview", number_of_videos=2)
    assert fast.generate(request(4)).metadata["cost_usd"] == pytest.approx(2 * 4 * 0.15)


def test_storyflow_backends_shows_how_veo_bills(tmp_path):
    from storyflow.backends.video.veo import BILLING
    from tests.support import run_cli

    listed = run_cli(["backends"], home=tmp_path / "outputs", cwd=tmp_path).stdout
    [line] = [line for line in listed.splitlines() if line.strip().startswith("veo ")]
    assert BILLING in line and "an extension the 7 s it adds" in BILLING
    assert "veo-3.1-generate-preview $0.40" in listed  # the list prices, beside the option that overrides them


def test_a_continuation_of_a_foreign_clip_falls_back_to_image_to_video(server, tmp_path):
    foreign = np.full((1, 720, 1280, 3), 90, np.uint8)
    video = veo(server, tmp_path).generate(request(4, strategy="continue_video", conditioning=foreign))
    instance = server.creates[0].body["instances"][0]
    assert "image" in instance and "video" not in instance
    assert video.metadata["mode"] == "image" and "native extension not used" in video.metadata["notes"][0]


def test_a_loop_closing_clip_sends_first_and_last_frames(server, tmp_path):
    tail, head = np.full((1, 720, 1280, 3), 30, np.uint8), np.full((1, 720, 1280, 3), 220, np.uint8)
    video = veo(server, tmp_path).generate(request(4, strategy="loop_close", conditioning=tail, end_conditioning=head))
    body = server.creates[0].body
    assert "image" in body["instances"][0] and "lastFrame" in body["instances"][0]
    assert body["parameters"]["durationSeconds"] == 8  # Veo 3.1 interpolates 8 s clips only
    assert frames_of(video).shape[0] == 96


def test_reference_images_must_exist_and_are_sent(server, tmp_path):
    with pytest.raises(BackendOptionError, match="no such image file"):
        load_backend("video", "veo", {"reference_images": [str(tmp_path / "nope.png")]})
    picture = tmp_path / "hero.png"
    from PIL import Image

    Image.new("RGB", (64, 36), (120, 80, 40)).save(picture)
    backend = veo(server, tmp_path, reference_images=[str(picture)])
    assert backend.capabilities.durations == (8,)
    backend.generate(request(8))
    [reference] = server.creates[0].body["instances"][0]["referenceImages"]
    assert reference["referenceType"] == "ASSET" and reference["image"]["bytesBase64Encoded"]


@pytest.mark.parametrize("option", [{"seed": True}, {"fps": 30}, {"generate_audio": True}])
def test_vertex_only_options_are_refused_up_front_on_the_gemini_api(server, tmp_path, option):
    with pytest.raises(BackendOptionError) as caught:
        veo(server, tmp_path, **option)
    assert "Vertex AI only" in caught.value.message and not server.requests
    with pytest.raises(BackendOptionError, match="Vertex AI only"):  # an explicit endpoint: at option validation
        load_backend("video", "veo", {"endpoint": "gemini", **option})


def test_a_missing_key_names_gemini_api_key(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(BackendUnavailableError) as caught:
        load_backend("video", "veo").check_available()
    assert "GEMINI_API_KEY" in caught.value.fix


def test_a_refused_key_is_unavailable_naming_the_variable(server, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "wrong-key-1234567")
    with pytest.raises(BackendUnavailableError) as caught:
        veo(server, tmp_path).generate(request(4))
    assert "GEMINI_API_KEY" in caught.value.fix and "wrong-key-1234567" not in str(caught.value)


def test_unknown_options_and_fast_polls_against_google_are_refused():
    with pytest.raises(BackendOptionError, match="unknown option 'colour'"):
        load_backend("video", "veo", {"colour": "red"})
    with pytest.raises(BackendOptionError, match="poll_seconds"):
        load_backend("video", "veo", {"poll_seconds": 1})
    with pytest.raises(BackendOptionError, match="looks like a secret"):
        load_backend("video", "veo", {"api_key": "AIza-not-here-123"})
