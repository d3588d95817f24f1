"""Limits that hold across processes: two runs at once share a provider's jobs in flight (and a GPU slot).

Each run is its own process, as two `storyflow film` commands (or two workers) would be; what
they share is the Prefect server's global concurrency limits, which the flow creates from what
the backend declares (storyflow.backends.base.SharedLimit) and holds around every call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from storyflow.backends.registry import load_backend
from tests.fake_gemini import FakeGemini
from tests.support import REPO, reporting_to

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

KEY = "gemini-test-key-not-real"


def story(title: str) -> str:
    """A shot of its own, then a shot both stories share (the same clip: made once, by whichever run gets there)."""
    return f"---\ntitle: {title}\nresolution: 160x90\nfps: 24\ntitle_card: false\n---\nA gull glides over the " \
           f"{title}.\n\nThe boats rest at the pier.\n"  # fmt: skip


def test_two_runs_at_once_keep_the_providers_limit_and_never_pay_twice_for_a_clip_they_share(tmp_path, prefect_server):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
           "STORYFLOW_HOME": str(tmp_path / "outputs"), "PREFECT_API_URL": prefect_server, "GEMINI_API_KEY": KEY,
           "PYTHONPATH": str(REPO), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "HOME": str(tmp_path)}  # fmt: skip
    for name in ("north", "south"):
        (tmp_path / f"{name}.md").write_text(story(f"{name.title()} Harbour"))
    with FakeGemini(polls=2, key=KEY) as server:
        veo = ["--video-backend", "veo", "--video-option", f"base_url={server.url}", "--video-option",
               "poll_seconds=0.05", "--video-option", "concurrency=1"]  # fmt: skip
        server.hold()  # the first job stays in flight...
        runs = [subprocess.Popen([sys.executable, "-m", "storyflow.cli", "film", str(tmp_path / f"{name}.md"),
                                  "--json", *veo], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
                for name in ("north", "south")]
        said: list[list[str]] = [[], []]
        readers = [threading.Thread(target=lambda i=i: said[i].extend(runs[i].stderr), daemon=True) for i in (0, 1)]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + 180
        while not (all(any(line.startswith("planned '") for line in lines) for lines in said) and server.creates):
            assert time.monotonic() < deadline, f"the runs never both reached generation: {said}"
            assert all(run.poll() is None for run in runs), f"a run ended early: {said}"
            time.sleep(0.2)
        time.sleep(4)  # ...while both runs want to start jobs: the second waits for the first's slot
        assert len(server.creates) == 1, "two runs had jobs in flight at once past the limit of 1"
        server.release()
        for run in runs:
            run.wait(timeout=300)
        for reader in readers:
            reader.join(timeout=10)
        assert [run.returncode for run in runs] == [0, 0], said
        assert server.most_in_flight() == 1
        # three clips, each paid for once: the shot both stories share was made by one run, found by the other
        assert len(server.creates) == 3


def test_an_open_model_holds_its_device_and_a_hosted_one_its_endpoints_limits():
    wan = load_backend("video", "wan", {"model": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "device": "cpu"})
    [slot] = wan.shared_limits()
    assert slot.name.startswith("storyflow-device-") and slot.name.endswith("-cpu") and slot.limit == 1
    veo = load_backend("video", "veo", {"concurrency": 3, "jobs_per_minute": 12})
    jobs, starts = veo.shared_limits()
    assert (jobs.name, jobs.limit, jobs.per_minute) == ("storyflow-veo-jobs", 3, False)
    assert (starts.name, starts.limit, starts.per_minute) == ("storyflow-veo-starts", 12, True)
    proxied = load_backend("video", "veo", {"base_url": "http://127.0.0.1:8123"}).shared_limits()
    assert [limit.name for limit in proxied] == ["storyflow-veo-127-0-0-1-8123-jobs", "storyflow-veo-127-0-0-1-8123-starts"]


def test_an_open_voice_or_music_model_takes_its_devices_slot_as_a_video_model_does(prefect_server):
    """Narration and music on an open model hold the device's one slot too: two runs never load two pipelines
    onto one GPU, whichever stage each is in."""
    from flows import limits

    music = load_backend("music", "musicgen", {"model": "facebook/musicgen-small", "device": "cpu"})
    voice = load_backend("speech", "vits", {"model": "facebook/mms-tts-eng", "device": "cpu"})
    video = load_backend("video", "wan", {"model": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "device": "cpu"})
    assert music.shared_limits() == voice.shared_limits() == video.shared_limits()  # one device: one slot
    events: list[str] = []
    with reporting_to(prefect_server):  # the voice's thread reports there too
        def speak() -> None:
            with limits.holding(voice):
                events.append("voice holds the device")

        with limits.holding(music):
            events.append("music holds the device")
            other = threading.Thread(target=speak)
            other.start()
            time.sleep(2.0)  # the voice waits for the music's slot
            events.append("music lets go")
        other.join(timeout=180)  # generous: a loaded machine polls the slot slowly
        with limits.holding(load_backend("effects", "procedural", {})):
            events.append("procedural effects hold nothing")
    assert events == ["music holds the device", "music lets go", "voice holds the device",
                      "procedural effects hold nothing"]
