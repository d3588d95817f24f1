"""The command line, end to end: a sample story becomes a film that we decode and check.

These run `storyflow` in a subprocess against a real Prefect server on loopback (one per
session), with STORYFLOW_HOME and HOME pointing into the test's own folder.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storyflow import media
from storyflow.core.timeline import film_timeline
from storyflow.stages.plan import load_storyboard
from storyflow.stages.subtitles import parse_srt
from tests.support import REPO, TINY_STORY, audio_rms_windows, files_under, run_cli

SAMPLE = REPO / "stories" / "lighthouse.md"


@pytest.fixture(scope="module")
def sample_film(prefect_server, tmp_path_factory):
    """The 8+-shot sample story made into a film once, shared by the checks below."""
    cwd = tmp_path_factory.mktemp("film-run")
    home = cwd / "outputs"
    result = run_cli(["film", str(SAMPLE), "--json"], home=home, cwd=cwd, env={"PREFECT_API_URL": prefect_server})
    assert result.code == 0, result.stderr
    return cwd, home, result


@pytest.mark.slow
def test_sample_story_becomes_a_film_of_the_planned_length(sample_film):
    cwd, home, result = sample_film
    summary = result.json
    board = load_storyboard(Path(summary["storyboard"]))
    timeline = film_timeline(board)
    info = media.probe(Path(summary["film"]))

    # the picture: size, fps, length within one frame of what the storyboard implies
    assert (info.width, info.height) == (board.width, board.height)
    assert round(info.fps) == board.fps
    assert abs(info.num_frames - timeline.total_frames) <= 1
    assert abs(summary["duration_s"] - timeline.seconds) <= 1 / board.fps

    # the sound: an AAC track that is not silent anywhere for long
    assert info.audio_codec == "aac"
    rms = audio_rms_windows(Path(summary["film"]))
    assert len(rms) >= int(timeline.seconds / 0.5) - 1
    assert (rms > 0.003).mean() > 0.95

    # the summary lists every shot, and every path is absolute and exists
    assert [s["id"] for s in summary["shots"]] == [s.id for s in board.shots]
    assert len(board.shots) >= 8
    for key in ("film", "subtitles", "poster", "contact_sheet", "catalog"):
        assert Path(summary[key]).is_absolute() and Path(summary[key]).exists(), key
    assert summary["clips_generated"] == sum(len(s["segments"]) for s in summary["shots"])
    assert summary["clips_reused"] == 0
    assert {"film_id", "wall_s", "duration_s"} <= set(summary)


@pytest.mark.slow
def test_subtitles_carry_every_narration_line(sample_film):
    _, _, result = sample_film
    summary = result.json
    cues = parse_srt(Path(summary["subtitles"]))
    text = " ".join(c[2] for c in cues)
    narrated = [s for s in summary["shots"] if s["narration"]]
    assert narrated
    for shot in narrated:
        first_words = " ".join(shot["narration"].split()[:3])
        assert first_words in " ".join(text.split()), shot["id"]
    assert all(end > start for start, end, _ in cues)
    assert cues[-1][1] <= summary["duration_s"] + 1e-3


@pytest.mark.slow
def test_catalog_rows_match_the_files(sample_film, request):
    _, home, result = sample_film
    summary = result.json
    db = sqlite3.connect(summary["catalog"])
    request.addfinalizer(db.close)
    rows = db.execute("SELECT shot_key, path, sha256 FROM clips").fetchall()
    assert {r[0] for r in rows} == {s["id"] for s in summary["shots"]}
    for _, path, sha in rows:
        file = Path(path) if Path(path).is_absolute() else home / path
        assert media.sha256_file(file) == sha
    film_sha = db.execute("SELECT sha256 FROM films WHERE id = ?", (summary["film_id"],)).fetchone()[0]
    assert film_sha == media.sha256_file(Path(summary["film"]))
    status = db.execute("SELECT status, clips_generated FROM runs WHERE id = ?", (summary["run_id"],)).fetchone()
    assert status == ("completed", summary["clips_generated"])


@pytest.mark.slow
def test_nothing_is_written_outside_the_output_folder(sample_film):
    cwd, home, _ = sample_film
    assert home == cwd / "outputs"
    outside = {path for path in files_under(cwd) if not path.startswith("outputs/")}
    assert outside == set(), outside
    assert not list((home).rglob("*.partial*")), "no temporary file may survive a finished run"


@pytest.mark.slow
def test_provenance_of_the_film_and_of_a_clip(sample_film):
    cwd, home, result = sample_film
    summary = result.json
    shown = run_cli(["provenance", summary["film"]], home=home, cwd=cwd)
    assert shown.code == 0, shown.stderr
    assert summary["title"] in shown.stdout
    for shot in summary["shots"]:
        assert shot["id"] in shown.stdout
    clip = summary["shots"][0]["segments"][0]["path"]
    as_json = run_cli(["provenance", clip, "--json"], home=home, cwd=cwd)
    tree = json.loads(as_json.stdout)
    assert as_json.code == 0 and "animatic" in as_json.stdout and summary["title"] in as_json.stdout
    assert tree["kind"] == "clip"


@pytest.mark.slow
def test_film_works_without_a_server_and_reports_to_the_ui_server_when_running(tmp_path, write_story):
    """No server: Prefect starts a temporary one. After `storyflow ui start`: runs show up there."""
    import socket
    import urllib.request

    story = write_story(TINY_STORY)
    home = tmp_path / "outputs"
    alone = run_cli(["film", str(story), "--json"], home=home, cwd=tmp_path)
    assert alone.code == 0, alone.stderr
    assert Path(alone.json["film"]).exists()
    # a short cached run shuts its temporary server down quickly: the user sees no server noise
    again = run_cli(["film", str(story), "--json"], home=home, cwd=tmp_path)
    assert again.code == 0 and again.json["clips_generated"] == 0
    assert "Traceback" not in alone.stderr + again.stderr and "ERROR" not in alone.stderr + again.stderr

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = run_cli(["ui", "start", "--port", str(port)], home=home, cwd=tmp_path)
    assert started.code == 0, started.stderr
    try:
        assert f"http://127.0.0.1:{port}" in started.stdout
        assert run_cli(["ui", "status"], home=home, cwd=tmp_path).code == 0
        # an unchanged rerun needs no flow; one with work to do (a new loudness: a new mix) shows up there
        watched = run_cli(["film", str(story), "--json", "--loudness", "-18"], home=home, cwd=tmp_path)
        assert watched.code == 0, watched.stderr
        flow_run_id = watched.json["prefect_flow_run_id"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/flow_runs/{flow_run_id}", timeout=10) as reply:
            run = json.loads(reply.read())
        assert run["state"]["type"] == "COMPLETED"
    finally:
        stopped = run_cli(["ui", "stop"], home=home, cwd=tmp_path)
    assert stopped.code == 0 and "stopped" in stopped.stdout
    assert run_cli(["ui", "status"], home=home, cwd=tmp_path).code == 1


BAD_STORIES = {
    "empty.md": (b"", "is empty"),
    "binary.md": (bytes(range(256)) * 4, "binary file"),
    "front.md": (b"---\ntitle: [oops\n---\nA story.\n", "malformed front matter at line 2"),
}


@pytest.mark.parametrize("name", sorted(BAD_STORIES))
def test_bad_story_files_fail_cleanly(name, tmp_path, write_story):
    data, message = BAD_STORIES[name]
    home = tmp_path / "outputs"
    result = run_cli(["film", str(write_story(data, name=name))], home=home, cwd=tmp_path)
    assert result.code == 2
    assert message in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not home.exists() or files_under(home) == set(), "nothing half-written"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--video-backend", "sora-9000"], 2, "unknown video backend 'sora-9000'"),
        (["--llm", "gpt-99"], 2, "unknown llm backend 'gpt-99'"),
        (["--video-option", "frobnicate=1"], 2, "unknown option 'frobnicate'"),
        (["--video-option", "novalue"], 2, "expects KEY=VALUE"),
        (["--frobnicate"], 2, "No such option"),
        (["--stitch", "fast"], 2, "stitch must be 'smart' or 'moviepy'"),
    ],
)
def test_bad_options_fail_cleanly(args, code, message, tmp_path, write_story):
    home = tmp_path / "outputs"
    result = run_cli(["film", str(write_story(TINY_STORY)), *args], home=home, cwd=tmp_path)
    assert result.code == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not home.exists() or files_under(home) == set()


def test_debug_flag_shows_the_traceback(tmp_path, write_story):
    result = run_cli(["--debug", "film", str(write_story(b"", name="e.md"))], home=tmp_path / "o", cwd=tmp_path)
    assert result.code != 0 and "Traceback" in result.stderr


def test_plan_prints_the_storyboard(tmp_path):
    result = run_cli(["plan", str(SAMPLE), "--json"], home=tmp_path / "outputs", cwd=tmp_path)
    assert result.code == 0, result.stderr
    board = json.loads(result.stdout)
    assert len(board["shots"]) >= 8
    text = run_cli(["plan", str(SAMPLE)], home=tmp_path / "outputs", cwd=tmp_path)
    assert all(shot["id"] in text.stdout for shot in board["shots"])
    assert board["coverage"] == 1.0 and "covers 100% of the story" in text.stdout
    # the plan is kept in the catalog (so `film` renders this plan), and nothing else is written
    assert files_under(tmp_path / "outputs") <= {"catalog.db", "catalog.db-wal", "catalog.db-shm"}


def test_backends_lists_capabilities(tmp_path):
    result = run_cli(["backends", "--json"], home=tmp_path / "outputs", cwd=tmp_path)
    listing = json.loads(result.stdout)
    animatic = next(b for b in listing["video"] if b["name"] == "animatic")
    assert animatic["capabilities"]["max_clip_seconds"] == 4.0
    assert {b["name"] for b in listing["llm"]} >= {"embedded"}
    assert "animatic" in run_cli(["backends"], home=tmp_path / "outputs", cwd=tmp_path).stdout


def test_provenance_of_an_unknown_file_says_what_to_do(tmp_path):
    stray = tmp_path / "stray.mp4"
    stray.write_bytes(b"not a film")
    result = run_cli(["provenance", str(stray)], home=tmp_path / "outputs", cwd=tmp_path)
    assert result.code != 0 and "fix:" in result.stderr and "Traceback" not in result.stderr


def test_help_imports_no_heavy_module():
    """`storyflow --help` must answer at once: no Prefect, numpy, SQLAlchemy or PyAV behind it."""
    import subprocess
    import sys

    code = (
        "import sys; sys.argv = ['storyflow', '--help']\n"
        "from storyflow.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('prefect', 'numpy', 'sqlalchemy', 'av', 'moviepy', 'PIL', 'torch', 'yaml')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "Make a film" in done.stdout
    assert "HEAVY []" in done.stdout, done.stdout[-200:]


# A story whose target length makes a line be spoken again, faster, to fit its shot.
PACED = """---
title: Quick Tide
resolution: 160x90
fps: 12
seed: 4
duration: 9
title_card: false
---
The tide rolls in over the flat grey sand while the gulls wheel and cry above the empty harbour wall.

A small boat knocks against the pier.
"""


@pytest.mark.slow
def test_each_line_is_reported_once_and_a_failed_run_says_only_error_and_fix(prefect_server, tmp_path, write_story):
    story = write_story(PACED)
    home, env = tmp_path / "outputs", {"PREFECT_API_URL": prefect_server}
    made = run_cli(["film", str(story)], home=home, cwd=tmp_path, env=env)
    assert made.code == 0, made.stderr
    spoken = [line.split()[0] for line in made.stderr.splitlines() if " narration " in line]
    assert spoken == ["s01", "s02"]  # each line once, however often the pace was fitted
    assert "re-paced to 1.15x to fit its shot" in made.stderr

    # a run that fails inside the flow: storyflow's two lines, nothing of Prefect's
    failed = run_cli(["film", str(story), "--force-shot", "9"], home=home, cwd=tmp_path, env=env)
    assert failed.code == 2
    assert failed.stderr.splitlines()[-2:] == [
        "error: --force-shot s09: the storyboard has no such shot",
        "  fix: pick among s01..s02 (see `storyflow plan STORY`)",
    ]
    assert "Traceback" not in failed.stderr and "ERROR" not in failed.stderr and "Failed" not in failed.stderr
    shown = run_cli(["--debug", "film", str(story), "--force-shot", "9"], home=home, cwd=tmp_path, env=env)
    assert shown.code != 0 and "Traceback" in shown.stderr  # --debug shows everything
