"""Hostile conditions met the way a user meets them, through the command line: each ends in an `error:` line
with its `fix:`, no traceback, and a catalog that `catalog verify` finds clean (issue 13)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import REPO, TINY_STORY, run_cli, run_cli_in_process


@pytest.fixture
def small_disk(tmp_path):
    """A real 3 MB filesystem (tmpfs), mounted for the test and unmounted after it. A full disk cannot be
    made any other way without faking the operating system; where mounting is not allowed the test is skipped."""
    folder = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_ends_in_an_error_line_and_a_clean_catalog(small_disk, tmp_path, write_story, prefect_server):
    home = small_disk / "outputs"
    story = write_story(TINY_STORY.replace("Tiny Harbour", "Full Disk"))
    env = {"PREFECT_API_URL": prefect_server}  # Prefect's own database is elsewhere: storyflow fills the disk
    result = run_cli(["film", str(story)], home=home, cwd=tmp_path, env=env)
    assert result.code == 1, result.stderr
    assert f"error: the disk holding the output folder ({home}) is full" in result.stderr
    assert "fix: free some space or set STORYFLOW_HOME to a larger disk" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(home.rglob("*.partial*")), "no half-written file is left behind"
    clips_before = {path.resolve() for path in home.rglob("clips/**/*.mp4")}

    # the user frees space: the catalog is clean, and the rerun finishes reusing every clip made before
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    verify = run_cli(["catalog", "verify"], home=home, cwd=tmp_path)
    assert verify.code == 0, verify.stdout + verify.stderr
    # the rerun runs the same command in this process (the failed run was a process of its own)
    rerun = run_cli_in_process(["film", str(story), "--json"], home=home, cwd=tmp_path, api_url=prefect_server)
    assert rerun.code == 0, rerun.stderr
    segments = [segment for shot in rerun.json["shots"] for segment in shot["segments"]]
    reused = {Path(segment["path"]).resolve() for segment in segments if segment["reused"]}
    assert clips_before and clips_before <= reused, "every clip made before the disk filled is played again"


def test_a_damaged_prefect_database_is_set_aside_and_the_film_made(tmp_path, write_story):
    home = tmp_path / "outputs"
    (home / ".prefect").mkdir(parents=True)
    (home / ".prefect" / "prefect.db").write_bytes(b"not a database, whatever happened to it " * 500)
    result = run_cli(["film", str(write_story(TINY_STORY)), "--json"], home=home, cwd=tmp_path)  # no server running
    assert result.code == 0, result.stderr
    assert "Prefect's own database was damaged: set aside as" in result.stderr and "Traceback" not in result.stderr
    assert [p.name[:19] for p in (home / ".prefect").glob("prefect.db.damaged-*")] == ["prefect.db.damaged-"]
    assert Path(result.json["film"]).is_file()


@pytest.mark.parametrize("damage", [b"garbage " * 4000, b"\x00" * 100], ids=["garbage", "zeros"])
def test_a_damaged_catalog_is_refused_with_its_fix_and_left_as_it_is(damage, tmp_path, write_story):
    home = tmp_path / "outputs"
    home.mkdir()
    catalog = home / "catalog.db"
    catalog.write_bytes(damage)
    result = run_cli(["film", str(write_story(TINY_STORY))], home=home, cwd=tmp_path)
    assert result.code == 1 and "error: cannot open the catalog" in result.stderr, result.stderr
    assert "move this file aside to start a new one" in result.stderr and "Traceback" not in result.stderr
    assert catalog.read_bytes() == damage  # never "repaired" behind the user's back


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_stopped_by_a_signal_leaves_a_clean_catalog(signum, tmp_path, write_story, prefect_server):
    home = tmp_path / "outputs"
    env = {**os.environ, "STORYFLOW_HOME": str(home), "PREFECT_API_URL": prefect_server, "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(REPO)}  # fmt: skip
    run = subprocess.Popen([sys.executable, "-m", "storyflow.cli", "film", str(write_story(TINY_STORY))], cwd=tmp_path,
                           env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen = ""
    for line in run.stderr:  # stopped while it generates: narration spoken, clips being made
        seen += line
        if "generated in" in line:
            run.send_signal(signum)
            break
    seen += run.stderr.read()
    assert run.wait(timeout=120) == (143 if signum == signal.SIGTERM else 130), seen
    how = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted (Ctrl-C)"
    assert f"error: {how} before it finished" in seen and "fix: run the same command again: what it finished" in seen
    assert "Traceback" not in seen
    verify = run_cli(["catalog", "verify"], home=home, cwd=tmp_path)
    assert verify.code == 0, verify.stdout + verify.stderr


def test_cancel_in_the_prefect_ui_stops_a_command_line_run(tmp_path, write_story, prefect_server):
    """The UI's Cancel button on a run `storyflow film` started (no worker or `serve` to deliver it): the run
    stops with an error line, the catalog and Prefect both call it cancelled, and a rerun reuses what it made."""
    home = tmp_path / "outputs"
    env = {**os.environ, "STORYFLOW_HOME": str(home), "PREFECT_API_URL": prefect_server, "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(REPO)}  # fmt: skip
    story = write_story(TINY_STORY.replace("Tiny Harbour", "Cancelled Harbour"))
    run = subprocess.Popen([sys.executable, "-m", "storyflow.cli", "film", str(story)], cwd=tmp_path, env=env,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen = ""
    for line in run.stderr:
        seen += line
        if "generated in" in line:  # what the UI's button sends: the run's state set to Cancelling
            running = _api(prefect_server, "flow_runs/filter", {"flow_runs": {  # the film's run is named after it
                "state": {"type": {"any_": ["RUNNING"]}}, "name": {"any_": ["cancelled-harbour"]}}})
            assert len(running) == 1, running
            flow_run_id = running[0]["id"]
            _api(prefect_server, f"flow_runs/{flow_run_id}/set_state", {"state": {"type": "CANCELLING"}})
            break
    seen += run.stderr.read()
    assert run.wait(timeout=120) == 1, seen
    assert "error: the run was cancelled in the Prefect UI" in seen and "fix: run the same command again" in seen
    assert "Traceback" not in seen
    assert _api(prefect_server, f"flow_runs/{flow_run_id}", method="GET")["state"]["type"] == "CANCELLED"
    [last] = json.loads(run_cli(["catalog", "runs", "--json"], home=home, cwd=tmp_path).stdout)
    assert last["status"] == "cancelled" and last["error"] == "cancelled in the Prefect UI", last
    assert last["clips_generated"] >= 1, "what it made before the cancel is counted"
    verify = run_cli(["catalog", "verify"], home=home, cwd=tmp_path)
    assert verify.code == 0, verify.stdout + verify.stderr
    clips_before = {path.resolve() for path in home.rglob("clips/**/*.mp4")}
    # the rerun runs the same command in this process (the cancelled run was a process of its own)
    rerun = run_cli_in_process(["film", str(story), "--json"], home=home, cwd=tmp_path, api_url=prefect_server)
    assert rerun.code == 0, rerun.stderr
    reused = {Path(segment["path"]).resolve() for shot in rerun.json["shots"] for segment in shot["segments"]
              if segment["reused"]}  # fmt: skip
    assert clips_before and clips_before <= reused, "every clip made before the cancel is played again"


def _api(api_url: str, path: str, body: dict | None = None, method: str = "POST"):
    """One call to the Prefect server's REST API, as its UI makes it."""
    import urllib.request

    request = urllib.request.Request(f"{api_url}/{path}", method=method, headers={"Content-Type": "application/json"},
                                     data=json.dumps(body).encode() if body is not None else None)  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def test_a_terminal_that_cannot_show_the_title_gets_escapes_not_an_encoding_error(tmp_path, write_story):
    story = write_story(TINY_STORY.replace("Tiny Harbour", "Caf\u00e9 \u2605"))
    result = run_cli(["plan", str(story)], home=tmp_path / "outputs", cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert result.code == 0, result.stderr
    assert "Caf\\xe9 \\u2605" in result.stdout and "UnicodeEncodeError" not in result.stderr


def test_an_output_folder_that_is_a_file_is_named_with_its_fix(tmp_path, write_story):
    home = tmp_path / "outputs"
    home.write_text("a file where the output folder should be")
    result = run_cli(["film", str(write_story(TINY_STORY))], home=home, cwd=tmp_path)
    assert result.code == 1 and f"error: cannot write {home}/.prefect: Not a directory" in result.stderr, result.stderr
    assert "fix: make STORYFLOW_HOME a folder you may write to (not a file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_read_only_output_folder_is_named_with_its_fix(small_disk, tmp_path, write_story):
    home = small_disk / "outputs"
    home.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = run_cli(["film", str(write_story(TINY_STORY))], home=home, cwd=tmp_path)
    assert result.code == 1 and f"error: cannot write {home}" in result.stderr, result.stderr
    assert "Read-only file system" in result.stderr and "fix: make STORYFLOW_HOME a folder you may write to" \
        in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_forced_shot_is_refused_before_anything_is_spoken(tmp_path, write_story, prefect_server):
    home = tmp_path / "outputs"
    result = run_cli(["film", str(write_story(TINY_STORY)), "--force-shot", "99"], home=home, cwd=tmp_path,
                     env={"PREFECT_API_URL": prefect_server})  # fmt: skip
    assert result.code == 2 and "error: --force-shot s99: the storyboard has no such shot" in result.stderr
    assert " narration " not in result.stderr and not list(home.rglob("*.wav")), "checked right after planning"
    assert not list(home.rglob("storyboards/*.json")), "no plan file without its film"
    verify = run_cli(["catalog", "verify"], home=home, cwd=tmp_path)
    assert verify.code == 0, verify.stdout + verify.stderr


def test_a_story_that_repeats_its_paragraphs_is_made_whole(tmp_path, write_story, prefect_server):
    """Shots written alike share one prompt (found by its content); each must still find it as its own
    (a 15-minute story of repeated paragraphs once lost shots to 'a task's door left generations unrecorded')."""
    paragraphs = "Night falls over the sea.\n\nMara waits at the lighthouse door.\n\n"
    story = write_story(TINY_STORY.split("---\n", 2)[0] + "---\n" + TINY_STORY.split("---\n", 2)[1] + "---\n"
                        + paragraphs * 3)  # fmt: skip
    result = run_cli(["film", str(story), "--json"], home=tmp_path / "outputs", cwd=tmp_path,
                     env={"PREFECT_API_URL": prefect_server})  # fmt: skip
    assert result.code == 0, result.stderr[-3000:]
    assert len(result.json["shots"]) == 6 and all(shot["segments"] for shot in result.json["shots"])
