"""The Prefect UI, seen in a real headless browser (Debian's chromium), on a port other than 4200.

`storyflow ui start --port N` must give a UI that calls its own API on N; a film reported to
it must show on its flow run page as a run named after the film, with a task run per shot;
its artifacts (storyboard, progress, pictures, summary, link) must be listed and readable.
The screenshots are kept under .test-output/ui/ (or $STORYFLOW_TEST_OUTPUT/ui/).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support import REPO, run_cli

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

STORY = "---\ntitle: Window Test\nresolution: 128x72\nfps: 8\ntitle_card: false\n---\n" \
        "The boats rest at the pier at dawn.\n\nA fox runs between the pines.\n"  # fmt: skip


def browser() -> str:
    """Debian's chromium; the test fails where CI requires it (STORYFLOW_REQUIRE_BROWSER=1), else it skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("STORYFLOW_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium is required (STORYFLOW_REQUIRE_BROWSER=1) but not installed; fix: apt-get install "
                    "chromium (.ci/run does)", pytrace=False)  # fmt: skip
    pytest.skip("no chromium: apt-get install chromium")


def test_the_ui_on_any_port_shows_the_films_run_its_shots_and_artifacts(tmp_path):
    chromium = browser()
    shots = Path(os.environ.get("STORYFLOW_TEST_OUTPUT", REPO / ".test-output")) / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home, story = tmp_path / "outputs", tmp_path / "window.md"
    story.write_text(STORY)

    def storyflow(*args: str):
        return run_cli(list(args), home=home, cwd=tmp_path)

    def page(path: str, screenshot: str | None = None) -> str:
        """The page's DOM once its scripts have run (and a screenshot of it, when named, from the same load)."""
        flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000", "--window-size=1400,1000"]  # fmt: skip
        url = f"http://127.0.0.1:{port}{path}"
        env = {**os.environ, "HOME": str(tmp_path)}
        also = [f"--screenshot={shots / screenshot}"] if screenshot else []
        return subprocess.run([*flags, *also, "--dump-dom", url], env=env, capture_output=True, text=True,
                              timeout=120, check=True).stdout  # fmt: skip

    started = storyflow("ui", "start", "--port", str(port))
    assert started.code == 0, started.stderr
    try:
        # 1. the UI is told to call the API on this port, not on 4200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=10) as answer:
            assert json.load(answer)["api_url"] == f"http://127.0.0.1:{port}/api"

        # 2. a film reported to it (the CLI finds the server `ui start` left running)
        made = storyflow("film", str(story), "--json")
        assert made.code == 0, made.stderr
        assert f"reporting to the Prefect UI at http://127.0.0.1:{port}" in made.stderr
        run_id = made.json["prefect_flow_run_id"]

        # 3. its flow run page: named after the film, a task run per shot
        dom = page(f"/runs/flow-run/{run_id}", "flow-run.png")
        assert "window-test" in dom
        for shot in made.json["shots"]:
            for stage in ("rewrite", "generate", "effects"):
                assert f"{stage}-{shot['id']}" in dom, f"{stage}-{shot['id']} is not on the flow run page"

        # 4. its artifacts, each under a key of the film's own, and the summary and pictures readable
        listed = page("/artifacts", "artifacts.png")
        for what in ("storyboard", "progress", "pictures", "summary", "film"):
            assert f"window-test-{what}" in listed
        ids = {}
        for what in ("summary", "pictures"):
            query = json.dumps({"artifacts": {"key": {"any_": [f"window-test-{what}"]}}}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/artifacts/filter", data=query,
                                             headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(request, timeout=10) as answer:
                ids[what] = json.load(answer)[0]["id"]
        summary = page(f"/artifacts/artifact/{ids['summary']}", "summary.png")
        assert "Window Test" in summary and ">s01<" in summary and ">s02<" in summary
        pictures = page(f"/artifacts/artifact/{ids['pictures']}", "pictures.png")
        assert pictures.count('src="data:image/jpeg;base64,') == 2
        assert all((shots / name).stat().st_size > 10_000 for name in ("flow-run.png", "artifacts.png"))

        # 5. a schedule made with no PREFECT_API_URL set lands on this server too (found as the film's run was)
        scheduled = storyflow("schedule", str(tmp_path), "--cron", "0 2 * * *", "--timezone", "UTC", "--json")
        assert scheduled.code == 0, scheduled.stderr
        assert "temporary" not in scheduled.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/deployments/name/storyflow-nightly/"
                                    f"{scheduled.json['name']}", timeout=10) as answer:  # fmt: skip
            assert json.load(answer)["parameters"]["stories"] == str(tmp_path.resolve())
    finally:
        storyflow("ui", "stop")
    with pytest.raises(OSError):  # stopped: nothing answers there any more
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
