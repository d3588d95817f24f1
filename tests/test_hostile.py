"""Hostile conditions met the way a user meets them, through the command line: each ends in an `error:` line
with its `fix:`, no traceback, and a catalog that `catalog verify` finds clean (issue 13)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import TINY_STORY, run_cli


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
    rerun = run_cli(["film", str(story), "--json"], home=home, cwd=tmp_path, env=env)
    assert rerun.code == 0, rerun.stderr
    segments = [segment for shot in rerun.json["shots"] for segment in shot["segments"]]
    reused = {Path(segment["path"]).resolve() for segment in segments if segment["reused"]}
    assert clips_before and clips_before <= reused, "every clip made before the disk filled is played again"
