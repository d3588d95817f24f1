"""An unchanged rerun hashes only the files whose stat changed since the flow or an earlier rerun recorded them
intact (storyflow.stages.unchanged).

A real film, made once per module by the CLI (the flow, against the session's Prefect server;
the tests that do not need the flow's own record work on copies of it), then
`unchanged.answer` in this process, as `storyflow film` calls it, on the real files. Which
files a rerun reads is told by a spy on storyflow.media.sha256_file: the answer is the same
whether a part was hashed or trusted by its stat, and timings would make a flaky test, so the
count of hashes is the only thing that shows the stat check at work. The spy calls the real
function and returns its result, so nothing the rerun decides is faked.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from storyflow import media
from storyflow.catalog.listing import CHECKED_MARGIN_NS
from storyflow.core.config import load_settings
from storyflow.stages import unchanged
from tests.support import TINY_STORY, run_cli

pytestmark = pytest.mark.prefect

# The tiny story and three shots more. The flow records the stat of what it made, but not of the files written
# within CHECKED_MARGIN_NS (2 s) of its end: the tiny story's clips now all come within its last 2 s (no clip was
# recorded in 3 runs of 3 here, and the first test failed); after the shots added, 5 to 7 of 9 clips are recorded.
STORY = TINY_STORY + "\nThe lamps come on along the pier.\n\nA boat sails out past the lighthouse.\n\n" \
                     "Rain falls on the empty quay.\n"  # fmt: skip


@pytest.fixture(scope="module")
def made(prefect_server, tmp_path_factory) -> tuple[Path, dict]:
    """(folder, the first run's summary): the story made once for the module, as `storyflow film` makes it,
    into folder/outputs from folder/stories/story.md."""
    folder = tmp_path_factory.mktemp("made")
    story = folder / "stories" / "story.md"
    story.parent.mkdir()
    story.write_text(STORY)
    made = run_cli(["film", str(story), "--json"], home=folder / "outputs", cwd=folder,
                   env={"PREFECT_API_URL": prefect_server})  # fmt: skip
    assert made.code == 0, made.stderr
    return folder, made.json


@pytest.fixture
def film(made, monkeypatch) -> tuple[Path, dict]:
    """(story file, the first run's summary): that film where the flow left it (STORYFLOW_HOME set to its folder).
    Only the test that needs the flow's own record uses it; the others work on copies."""
    folder, summary = made
    monkeypatch.setenv("STORYFLOW_HOME", str(folder / "outputs"))
    return folder / "stories" / "story.md", summary


@pytest.fixture
def film_copy(made, storyflow_home, tmp_path) -> tuple[Path, dict]:
    """(story file, the first run's summary, its paths moved): a copy of that film in this test's own output
    folder. Its files are new inodes, so the first rerun here hashes them all and records them anew."""
    folder, summary = made
    shutil.copytree(folder / "outputs", storyflow_home, dirs_exist_ok=True)
    story = tmp_path / "stories" / "story.md"
    story.parent.mkdir()
    shutil.copy2(folder / "stories" / "story.md", story)
    moved = json.loads(json.dumps(summary).replace(json.dumps(str(folder / "outputs"))[1:-1],
                                                   json.dumps(str(storyflow_home))[1:-1]))  # fmt: skip
    return story, moved


@pytest.fixture
def hashed(monkeypatch) -> list[Path]:
    """Every file storyflow.media.sha256_file reads from now on (a spy: it hashes for real)."""
    real = media.sha256_file
    calls: list[Path] = []

    def counting(path: Path) -> str:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(media, "sha256_file", counting)
    return calls


def rerun(story: Path) -> dict | None:
    settings = load_settings()
    return unchanged.answer(story, settings.choices(), settings)


def parts_of(summary: dict) -> set[Path]:
    """The clips the film plays (the parts a rerun checks besides its tracks and lines)."""
    return {Path(segment["path"]) for shot in summary["shots"] for segment in shot["segments"]}


def summary_file(summary: dict) -> Path:
    return Path(summary["film"]).parent / "summary.json"


def settle() -> None:
    """Wait until every file of the film is older than the margin a check leaves for a file modified just now
    (rarely any wait: the CLI's process has ended by then)."""
    newest = max(p.stat().st_mtime_ns for p in load_settings().home.rglob("*") if p.is_file())
    time.sleep(max(0.0, (newest + CHECKED_MARGIN_NS - time.time_ns()) / 1e9))


def test_a_second_unchanged_rerun_hashes_no_part_whose_stat_is_unchanged(film, hashed):
    story, first = film
    clips = parts_of(first)
    settle()
    # 1. the flow recorded the stat of what it made, but for the files written within the margin of its end (the
    #    film itself; on a tiny film, maybe its last clip too)
    made = json.loads(summary_file(first).read_text())[unchanged.CHECKED]
    recorded = {load_settings().home / stored for stored in made}  # stored paths, relative to home
    assert recorded & clips, "clips made before the margin are recorded"
    assert unchanged.CHECKED not in first  # what --json prints: not the record
    # 2. so the first rerun reads only the clips the flow could not record, and keeps what it checked
    again = rerun(story)
    assert again is not None and again["answered_from_catalog"] and again["clips_reused"] == first["clips_generated"]
    assert hashed and clips & set(hashed) == clips - recorded, hashed
    assert unchanged.CHECKED not in again
    kept = json.loads(summary_file(first).read_text())[unchanged.CHECKED]
    assert {load_settings().home / stored for stored in kept} >= clips and set(kept) > set(made)
    # 3. the next one reads none of them, nor the film's own files (mp4, stems, poster...)
    hashed.clear()
    third = rerun(story)
    assert third is not None and third["answered_from_catalog"] and third["film"] == first["film"]
    assert hashed == []


def test_a_clip_changed_in_place_with_its_size_and_a_new_mtime_goes_to_the_flow(film_copy, hashed):
    story, first = film_copy
    clips = parts_of(first)
    settle()
    assert rerun(story) is not None  # records every part as checked
    # 1. one clip's bytes changed in place: same size, same inode, a later mtime
    clip = sorted(clips)[0]
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    before = clip.stat()
    with open(clip, "r+b") as handle:
        handle.write(data)
    os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))  # a coarse clock may not have moved
    after = clip.stat()
    assert (after.st_size, after.st_ino) == (before.st_size, before.st_ino) and after.st_mtime_ns != before.st_mtime_ns
    # 2. the rerun hashes it, finds it changed, and leaves the film to the flow
    hashed.clear()
    assert rerun(story) is None
    assert clip in hashed


def test_a_damaged_record_of_checked_parts_only_means_hashing_them_all(film_copy, hashed):
    story, first = film_copy
    clips = parts_of(first)
    settle()
    assert rerun(story) is not None
    path = summary_file(first)
    for damage in ("not a record", ["a", "list"], "garbage entries", "wrong sha256"):
        summary = json.loads(path.read_text())
        kept = summary[unchanged.CHECKED]
        assert {load_settings().home / stored for stored in kept} >= clips  # whole again after each rerun
        if damage == "garbage entries":
            summary[unchanged.CHECKED] = {stored: [1, 2, None] if i % 2 else "x y z" for i, stored in enumerate(kept)}
        elif damage == "wrong sha256":  # every stat still right, but not the bytes the catalog recorded now
            summary[unchanged.CHECKED] = {stored: entry[:-64] + "0" * 64 for stored, entry in kept.items()}
        else:
            summary[unchanged.CHECKED] = damage
        path.write_text(json.dumps(summary))
        hashed.clear()
        again = rerun(story)
        assert again is not None and again["answered_from_catalog"], damage
        assert clips <= set(hashed), damage
    # ...and once whole again, the next rerun hashes none
    hashed.clear()
    assert rerun(story) is not None and not clips & set(hashed)
