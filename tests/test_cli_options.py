"""Backend options on the command line (--music-option, --effects-option, and the open models' options)
reach their backend and are checked before any work: a bad one exits non-zero, naming the fix."""

from __future__ import annotations

import pytest

from tests.support import TINY_STORY, files_under, run_cli


@pytest.mark.parametrize(
    ("args", "code", "message", "valid"),
    [
        (["--music-option", "frobnicate=1"], 2, "music backend 'procedural': unknown option 'frobnicate'",
         "crossfade_s"),
        (["--music-option", "level_db=loud"], 2, "music backend 'procedural': option 'level_db'", "level_db"),
        (["--effects-option", "frobnicate=1"], 2, "effects backend 'procedural': unknown option 'frobnicate'",
         "motion_gain"),
        (["--music-option", "novalue"], 2, "--music-option expects KEY=VALUE", ""),
        (["--effects-option", "novalue"], 2, "--effects-option expects KEY=VALUE", ""),
        (["--music-backend", "musicgen"], 2, "music backend 'musicgen': option 'model'", "max_seconds_per_cue"),
        (["--music-backend", "musicgen", "--music-option", "model=./no-such-musicgen"], 1,
         "cannot find the model folder no-such-musicgen", ""),
        (["--video-backend", "wan", "--video-option", "model=./no-such-wan"], 1,
         "cannot find the model folder no-such-wan", ""),
        (["--video-backend", "ltx", "--video-option", "model=./no-such-ltx", "--video-option", "shift=3"], 2,
         "video backend 'ltx': unknown option 'shift'", "context_frames"),
        (["--video-backend", "skyreels", "--video-option", "model=./no-such-sky", "--video-option", "offload=always"],
         2, "video backend 'skyreels': option 'offload'", "overlap_history"),
        (["--speech-backend", "vits", "--speech-option", "model=./no-such-vits"], 1,
         "cannot find the model folder no-such-vits", ""),
    ],
)  # fmt: skip
def test_a_bad_music_or_effects_option_is_refused_before_any_work(args, code, message, valid, tmp_path, write_story):
    home = tmp_path / "outputs"
    result = run_cli(["film", str(write_story(TINY_STORY)), *args], home=home, cwd=tmp_path)
    assert result.code == code, result.stderr
    assert message in result.stderr and "fix:" in result.stderr
    if valid:
        assert "its options are: " in result.stderr and valid in result.stderr
    assert "Traceback" not in result.stderr
    assert not home.exists() or files_under(home) == set(), "nothing written"


def test_a_shot_pool_without_a_server_and_an_unknown_task_runner_are_refused_before_any_work(tmp_path, write_story):
    home = tmp_path / "outputs"
    story = str(write_story(TINY_STORY))
    pool = run_cli(["film", story, "--shot-pool", "gpus"], home=home, cwd=tmp_path)  # no server running
    assert pool.code != 0 and "a shot pool's workers take shots from a Prefect server, and none is running" \
        in pool.stderr and "storyflow ui start" in pool.stderr, pool.stderr
    runner = run_cli(["film", story, "--task-runner", "ray"], home=home, cwd=tmp_path)
    assert runner.code != 0 and "task_runner must be 'threads' or 'dask'" in runner.stderr, runner.stderr
    for result in (pool, runner):
        assert "Traceback" not in result.stderr
    assert not list(home.rglob("*.mp4")), "no clip made"


@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1", "4294967296"])
def test_a_seed_out_of_range_is_refused_before_any_work(seed, tmp_path, write_story):
    home = tmp_path / "outputs"
    result = run_cli(["film", str(write_story(TINY_STORY)), "--seed", seed], home=home, cwd=tmp_path)
    assert result.code == 2 and f"error: --seed {seed}: a seed is a whole number from 0 to 4,294,967,295" \
        in result.stderr and "fix: pass a smaller seed" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not home.exists()
