"""The Catalog API on real SQLite files: opening, idempotent records, reuse checks, secrets, concurrency."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from storyflow.catalog import Catalog, migrations
from storyflow.core.errors import CatalogError
from storyflow.core.hashing import canonical_sha256
from storyflow.core.models import (
    AudioTrack,
    CameraMove,
    Clip,
    Shot,
    ShotPrompt,
    Story,
    Storyboard,
    StyleBible,
)
from storyflow.media import atomic_write_bytes, sha256_file
from storyflow.stages.story import parse_story

REPO = Path(__file__).resolve().parents[2]

STORY_TEXT = """---
title: The Lighthouse Keeper
seed: 7
characters:
  Mara: a tall woman in a red raincoat with a grey braid
---
Mara climbs the spiral stairs. Pan left.

The lamp flickers in the storm.

At dawn the sea is calm.
"""


# ---------------------------------------------------------------- builders shared with the other catalog tests


def make_story(text: str = STORY_TEXT, source: str = "stories/lighthouse.md") -> Story:
    """A real Story, parsed from story text by storyflow's own parser."""
    return parse_story(text.encode("utf-8"), source=source)


def make_board(story: Story, shots: int = 3, seed: int = 7) -> Storyboard:
    """A storyboard of `shots` shots of 2 s at 12 fps; the second shot continues the first."""
    cameras = [CameraMove.PAN_LEFT, CameraMove.ZOOM_IN, CameraMove.STATIC, CameraMove.ARC_SHOT]
    return Storyboard(
        title=story.title,
        slug=story.slug,
        story_sha256=story.sha256,
        style=StyleBible(style=story.style, negative="blurry"),
        characters=story.characters,
        shots=tuple(
            Shot(
                id=f"s{i + 1:02d}",
                index=i,
                beat=i,
                story_text=f"beat {i}",
                action=f"action of shot {i + 1}",
                camera=cameras[i % len(cameras)],
                duration=2.0,
                characters=("Mara",),
                narration=f"Narration line {i + 1}.",
                mood="tense" if i == 1 else "calm",
                continues_previous=(i == 1),
            )
            for i in range(shots)
        ),
        width=160,
        height=90,
        fps=12,
        seed=seed,
        planner="embedded 1",
    )


def make_prompt(shot: Shot, version: str = "") -> ShotPrompt:
    return ShotPrompt(
        shot_id=shot.id,
        prompt=f"Mara, a tall woman in a red raincoat, {shot.action}, {shot.camera.value}{version}",
        negative_prompt="blurry, watermark",
        caption=shot.narration,
        template="shot.j2",
        template_sha256="ab" * 32,
        llm="embedded 1",
    )


def write_media(path: Path, content: bytes) -> tuple[Path, str]:
    """A real file on disk (written atomically, as the pipeline does) and its sha256."""
    atomic_write_bytes(path, content)
    return path, sha256_file(path)


def make_clip(
    path: Path,
    shot_id: str,
    segment: int,
    cache_key: str,
    *,
    parent_sha256: str | None = None,
    options: dict | None = None,
    backend: str = "animatic",
) -> Clip:
    """A Clip record for a file already on disk."""
    return Clip(
        shot_id=shot_id,
        segment=segment,
        path=path,
        sha256=sha256_file(path),
        cache_key=cache_key,
        num_frames=24,
        fps=12,
        width=160,
        height=90,
        strategy="continue_video" if parent_sha256 else "text_to_video",
        backend=backend,
        model=f"{backend}-v1",
        seed=7 + segment,
        options=options if options is not None else {"detail": 2},
        prompt=f"prompt of {shot_id} segment {segment}",
        parent_sha256=parent_sha256,
        conditioning="last 1 frame" if parent_sha256 else "",
        wall_s=0.25,
    )


def catalog_url(home: Path) -> str:
    return f"sqlite:///{home / 'catalog.db'}"


class Recorded:
    """A catalog holding one story, its storyboard, shots, one prompt per shot, and a run."""

    def __init__(self, home: Path, board: Storyboard | None = None) -> None:
        self.home = home
        self.catalog = Catalog.open(catalog_url(home), home)
        self.story = make_story()
        self.board = board or make_board(self.story)
        self.run_id = self.catalog.start_run(self.story.source, {"seed": 7, "video_backend": "animatic"})
        self.story_id = self.catalog.record_story(self.story)
        self.board_id = self.catalog.record_storyboard(
            self.story_id, self.board, llm="embedded 1", options={"words_per_second": 2.5}, wall_s=0.01
        )
        self.shot_ids = self.catalog.record_shots(self.board_id, self.board)
        self.prompts = {shot.id: make_prompt(shot) for shot in self.board.shots}
        self.prompt_ids = {
            shot_id: self.catalog.record_prompt(self.shot_ids[shot_id], prompt, wall_s=0.001)
            for shot_id, prompt in self.prompts.items()
        }

    def clip(self, shot_id: str, segment: int, content: bytes, **kwargs) -> Clip:
        """Write a clip file under home/clips and return its Clip record (not yet recorded)."""
        path, _ = write_media(self.home / "clips" / f"{shot_id}_{segment}.mp4", content)
        return make_clip(path, shot_id, segment, f"key-{shot_id}-{segment}-{len(content)}", **kwargs)


@pytest.fixture
def recorded(storyflow_home: Path):
    rec = Recorded(storyflow_home)
    yield rec
    rec.catalog.close()


# ---------------------------------------------------------------- opening


def test_open_creates_catalog_in_wal_mode_with_foreign_keys_and_at_head(tmp_path: Path) -> None:
    home = tmp_path / "not" / "yet" / "there"
    with Catalog.open(catalog_url(home), home) as catalog:
        assert (home / "catalog.db").is_file()
        with catalog.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        # a row pointing at a missing row is refused by the database itself
        with pytest.raises(Exception, match="FOREIGN KEY"), catalog.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO shots (storyboard_id, shot_key, position, sha256, data) "
                    "VALUES (999, 's01', 0, 'x', '{}')"
                )
            )
    newest_file = sorted((REPO / "storyflow/catalog/migrations/versions").glob("[0-9][0-9][0-9][0-9]_*.py"))[-1]
    assert version == newest_file.name[:4]


def test_reopening_changes_nothing_and_keeps_data(tmp_path: Path) -> None:
    home = tmp_path / "out"
    with Catalog.open(catalog_url(home), home) as catalog:
        story_id = catalog.record_story(make_story())
        with catalog.engine.connect() as conn:
            schema_version = conn.exec_driver_sql("PRAGMA schema_version").scalar()
    with Catalog.open(catalog_url(home), home) as again:
        with again.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA schema_version").scalar() == schema_version  # no DDL ran
        assert again.record_story(make_story()) == story_id


def test_open_refuses_a_file_that_is_not_a_catalog(tmp_path: Path) -> None:
    home = tmp_path / "out"
    home.mkdir()
    (home / "catalog.db").write_bytes(b"this is not a database, just some text" * 100)
    with pytest.raises(CatalogError) as info:
        Catalog.open(catalog_url(home), home)
    assert info.value.fix and "STORYFLOW_CATALOG_URL" in info.value.fix


def test_open_catalog_uses_storyflow_home(storyflow_home: Path) -> None:
    from storyflow.catalog import open_catalog

    with open_catalog() as catalog:
        assert catalog.home == storyflow_home
    assert (storyflow_home / "catalog.db").is_file()


# ---------------------------------------------------------------- idempotent records


def test_story_storyboard_shots_and_prompts_are_recorded_once(recorded: Recorded) -> None:
    cat = recorded.catalog
    assert cat.record_story(recorded.story) == recorded.story_id
    assert (
        cat.record_storyboard(recorded.story_id, recorded.board, llm="embedded 1", options={}, wall_s=9.0)
        == recorded.board_id
    )
    assert cat.record_shots(recorded.board_id, recorded.board) == recorded.shot_ids
    assert list(recorded.shot_ids) == ["s01", "s02", "s03"]
    assert len(set(recorded.shot_ids.values())) == 3
    for shot_id, prompt in recorded.prompts.items():
        assert cat.record_prompt(recorded.shot_ids[shot_id], prompt, wall_s=5.0) == recorded.prompt_ids[shot_id]

    # a different story, board or prompt is a new row
    other = make_story(STORY_TEXT.replace("calm", "grey"))
    other_id = cat.record_story(other)
    assert other_id != recorded.story_id
    reseeded = make_board(recorded.story, seed=8)
    reseeded_id = cat.record_storyboard(recorded.story_id, reseeded, llm="embedded 1", options={}, wall_s=0)
    assert reseeded_id != recorded.board_id
    s01 = recorded.board.shots[0]
    new_prompt = cat.record_prompt(recorded.shot_ids["s01"], make_prompt(s01, " v2"), wall_s=0)
    assert new_prompt != recorded.prompt_ids["s01"]

    with cat.engine.connect() as conn:
        tables = ("stories", "storyboards", "shots", "prompts")
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}
    assert counts == {"stories": 2, "storyboards": 2, "shots": 3, "prompts": 4}


def test_storyboard_must_come_from_the_story_it_is_recorded_under(recorded: Recorded) -> None:
    other_id = recorded.catalog.record_story(make_story(STORY_TEXT + "\nThe end.\n"))
    with pytest.raises(CatalogError) as info:
        recorded.catalog.record_storyboard(other_id, make_board(recorded.story, seed=99), llm="x", options={}, wall_s=0)
    assert "record_story" in info.value.fix


def test_storyboard_and_prompt_cache_keys_find_earlier_results(recorded: Recorded) -> None:
    cat = recorded.catalog
    board = make_board(recorded.story, seed=2**32 - 1)  # the largest seed a story may set
    assert cat.find_storyboard("plan-key") is None
    board_id = cat.record_storyboard(
        recorded.story_id, board, llm="embedded 1", options={}, wall_s=0, cache_key="plan-key"
    )
    assert cat.find_storyboard("plan-key") == board
    shot_ids = cat.record_shots(board_id, board)
    prompt = make_prompt(board.shots[2])
    cat.record_prompt(shot_ids["s03"], prompt, wall_s=0, cache_key="rewrite-key")
    assert cat.find_prompt("rewrite-key") == prompt
    assert cat.find_prompt("other-key") is None


# ---------------------------------------------------------------- clips: reuse only what is intact


def test_find_clip_returns_recorded_clip_only_while_its_file_is_intact(recorded: Recorded) -> None:
    cat = recorded.catalog
    clip = recorded.clip("s01", 0, b"frames of shot one" * 50)
    assert cat.find_clip(clip.cache_key) is None  # unknown key

    cat.record_clip(clip, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    found = cat.find_clip(clip.cache_key)
    assert found is not None and found.reused
    assert found.path.is_absolute() and found.path == clip.path
    assert found.model_copy(update={"reused": False}) == clip  # every field round-trips

    # tampered: same size, different bytes -> not trusted
    clip.path.write_bytes(b"X" + clip.path.read_bytes()[1:])
    assert cat.find_clip(clip.cache_key) is None
    # regenerated under the same key -> found again, with the new hash
    regenerated = make_clip(write_media(clip.path, b"new frames of shot one" * 40)[0], "s01", 0, clip.cache_key)
    cat.record_clip(regenerated, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    assert cat.find_clip(clip.cache_key).sha256 == sha256_file(clip.path) != clip.sha256
    # deleted -> not trusted
    clip.path.unlink()
    assert cat.find_clip(clip.cache_key) is None


def test_find_audio_follows_the_same_rules(recorded: Recorded) -> None:
    cat = recorded.catalog
    path, sha = write_media(recorded.home / "audio" / "music.wav", b"RIFF....WAVE" * 100)
    track = AudioTrack(kind="music", path=path, sha256=sha, cache_key="music-key", seconds=6.0,
                       sample_rate=48_000, backend="procedural", options={"tempo": 90})  # fmt: skip
    assert cat.find_audio("music-key") is None
    cat.record_audio(track, storyboard_id=recorded.board_id, run_id=recorded.run_id)
    found = cat.find_audio("music-key")
    assert found is not None and found.reused and found.path == path and found.options == {"tempo": 90}
    path.write_bytes(path.read_bytes() + b"appended")
    assert cat.find_audio("music-key") is None


def test_paths_inside_home_are_stored_relative_so_the_folder_can_move(recorded: Recorded, tmp_path: Path) -> None:
    cat = recorded.catalog
    inside = recorded.clip("s01", 0, b"inside" * 100)
    outside_path, _ = write_media(tmp_path / "elsewhere" / "clip.mp4", b"outside" * 100)
    outside = make_clip(outside_path, "s02", 0, "outside-key")
    cat.record_clip(inside, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    cat.record_clip(outside, prompt_id=recorded.prompt_ids["s02"], run_id=recorded.run_id)
    with cat.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT cache_key, path FROM clips")).tuples().all())
    assert stored[inside.cache_key] == "clips/s01_0.mp4"
    assert stored["outside-key"] == outside_path.as_posix()
    cat.close()

    # move the whole output folder: the catalog inside it still finds its clips
    moved = tmp_path / "moved-home"
    shutil.move(recorded.home, moved)
    with Catalog.open(catalog_url(moved), moved) as again:
        found = again.find_clip(inside.cache_key)
        assert found is not None and found.path == moved / "clips" / "s01_0.mp4"
        assert again.find_clip("outside-key").path == outside_path


def test_a_row_is_never_written_for_a_file_that_is_not_there(recorded: Recorded) -> None:
    cat = recorded.catalog
    clip = recorded.clip("s01", 0, b"soon gone" * 10)
    clip.path.unlink()
    with pytest.raises(CatalogError) as info:
        cat.record_clip(clip, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    assert "write the file" in info.value.fix
    with cat.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM clips")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM files")).scalar() == 0


def test_clip_of_another_shots_prompt_is_refused(recorded: Recorded) -> None:
    clip = recorded.clip("s01", 0, b"frames" * 10)
    with pytest.raises(CatalogError) as info:
        recorded.catalog.record_clip(clip, prompt_id=recorded.prompt_ids["s02"], run_id=recorded.run_id)
    assert "s02" in str(info.value)


def test_record_clip_links_the_parent_clip_and_writes_one_files_row(recorded: Recorded) -> None:
    cat = recorded.catalog
    first = recorded.clip("s01", 0, b"first segment" * 30)
    second = recorded.clip("s01", 1, b"second segment" * 30, parent_sha256=first.sha256)
    first_id = cat.record_clip(first, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    second_id = cat.record_clip(second, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    with cat.engine.connect() as conn:
        parent = conn.execute(text("SELECT parent_clip_id FROM clips WHERE id = :i"), {"i": second_id}).scalar()
        files = conn.execute(text("SELECT path, sha256, kind, owner_table, owner_id FROM files ORDER BY id")).all()
    assert parent == first_id
    assert [tuple(f) for f in files] == [
        ("clips/s01_0.mp4", first.sha256, "clip", "clips", first_id),
        ("clips/s01_1.mp4", second.sha256, "clip", "clips", second_id),
    ]


# ---------------------------------------------------------------- runs


def test_runs_record_status_counts_and_timings(recorded: Recorded) -> None:
    cat = recorded.catalog
    cat.finish_run(recorded.run_id, "completed", story_id=recorded.story_id, storyboard_id=recorded.board_id,
                   clips_generated=3, clips_reused=1, timings={"plan": 0.5, "generate": 2.0})  # fmt: skip
    failed = cat.start_run("stories/other.md", {})
    cat.finish_run(failed, "failed", error="the backend fell over")
    runs = cat.runs()
    assert [r["id"] for r in runs] == [failed, recorded.run_id]  # newest first
    assert runs[1]["status"] == "completed" and runs[1]["clips_generated"] == 3 and runs[1]["clips_reused"] == 1
    assert runs[1]["timings"] == {"plan": 0.5, "generate": 2.0} and runs[1]["wall_s"] >= 0
    assert runs[0]["status"] == "failed" and runs[0]["error"] == "the backend fell over"
    assert len(cat.runs(limit=1)) == 1
    with pytest.raises(CatalogError):
        cat.finish_run(failed, "done")
    with pytest.raises(CatalogError):
        cat.finish_run(12345, "completed")


def test_a_run_left_running_by_a_killed_process_is_marked_crashed(storyflow_home: Path) -> None:
    url = catalog_url(storyflow_home)
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from storyflow.catalog import Catalog\n"
         f"c = Catalog.open({url!r}, Path({str(storyflow_home)!r}))\n"
         "print(c.start_run('stories/x.md', {}), flush=True); time.sleep(60)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    killed_run = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Catalog.open(url, storyflow_home) as catalog:
        assert catalog.runs()[0]["status"] == "running"  # nobody has looked yet
        mine = catalog.start_run("stories/y.md", {})
        by_id = {r["id"]: r for r in catalog.runs()}
    assert by_id[killed_run]["status"] == "crashed"
    assert str(child.pid) in by_id[killed_run]["error"]
    assert by_id[mine]["status"] == "running"  # this process is alive


# ---------------------------------------------------------------- secrets


SECRET = "sk-planted-secret-0123456789"


@pytest.mark.parametrize(
    "options",
    [
        {"api_key": SECRET},
        {"auth": {"hf_token": SECRET}},
        {"clientSecret": SECRET},
        {"headers": [{"password": SECRET}]},
    ],
)
def test_options_named_like_secrets_are_refused_and_never_stored(recorded: Recorded, options: dict) -> None:
    cat = recorded.catalog
    clip = recorded.clip("s01", 0, b"frames" * 20, options=options)
    with pytest.raises(CatalogError) as info:
        cat.record_clip(clip, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    assert "environment variables" in info.value.fix
    with pytest.raises(CatalogError):
        cat.start_run("stories/x.md", {"video_options": options})
    cat.close()
    for file in recorded.home.glob("catalog.db*"):  # the database, its WAL and shared memory
        assert SECRET.encode() not in file.read_bytes()


def test_secret_environment_values_are_refused_anywhere_and_redacted_from_errors(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    cat = recorded.catalog
    # an ordinary option that happens to carry the key's value
    clip = recorded.clip("s01", 0, b"frames" * 20, options={"headers": f"Authorization: Bearer {SECRET}"})
    with pytest.raises(CatalogError):
        cat.record_clip(clip, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    # a switch or an unset value under a secret-sounding name holds no secret: kept
    switches = cat.start_run("stories/x.md", {"credentials": True, "api_key": None})
    assert cat.runs()[0]["id"] == switches and cat.runs()[0]["params"] == {"credentials": True, "api_key": None}
    with pytest.raises(CatalogError):
        cat.start_run("stories/x.md", {"credentials": "a-signing-password"})
    # ordinary options whose names merely contain a secret-ish word are fine
    fine = recorded.clip("s01", 1, b"frames" * 21, options={"max_tokens": 300, "tokenizer": "bpe", "key_frames": 2})
    cat.record_clip(fine, prompt_id=recorded.prompt_ids["s01"], run_id=recorded.run_id)
    assert cat.find_clip(fine.cache_key).options == {"max_tokens": 300, "tokenizer": "bpe", "key_frames": 2}
    # a database URL in the run's parameters is kept, without its password
    run_id = cat.start_run("stories/x.md", {"catalog_url": "postgresql+psycopg://film:hunter2-db-pass@db.local/catalog"})
    assert cat.runs()[0]["id"] == run_id
    assert cat.runs()[0]["params"] == {"catalog_url": "postgresql+psycopg://film:***@db.local/catalog"}
    # an error message quoting the key is stored redacted
    cat.finish_run(recorded.run_id, "failed", error=f"401 Unauthorized for key {SECRET}")
    assert {r["id"]: r for r in cat.runs()}[recorded.run_id]["error"] == "401 Unauthorized for key ***"
    cat.close()
    for file in recorded.home.glob("catalog.db*"):
        assert SECRET.encode() not in file.read_bytes() and b"hunter2-db-pass" not in file.read_bytes()


# ---------------------------------------------------------------- concurrency


def test_two_writers_record_clips_into_one_sqlite_file_at_once(recorded: Recorded) -> None:
    """Two catalogs (own engines and connections, as two processes would have) write at the same time."""
    url, home = catalog_url(recorded.home), recorded.home
    per_writer = 15
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    ids: dict[str, list[int]] = {}

    def writer(name: str, shot_id: str) -> None:
        try:
            with Catalog.open(url, home) as catalog:
                run_id = catalog.start_run(f"stories/{name}.md", {})
                barrier.wait()
                ids[name] = []
                for segment in range(per_writer):
                    clip = recorded.clip(shot_id, segment, f"{name} segment {segment}".encode() * 40)
                    ids[name].append(catalog.record_clip(clip, prompt_id=recorded.prompt_ids[shot_id], run_id=run_id))
                    catalog.record_story(recorded.story)  # reads then maybe writes: must wait, not fail
                catalog.finish_run(run_id, "completed", clips_generated=per_writer)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n, s)) for n, s in (("a", "s01"), ("b", "s03"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(set(ids["a"]) | set(ids["b"])) == 2 * per_writer
    with recorded.catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM clips")).scalar() == 2 * per_writer
        assert conn.execute(text("SELECT count(*) FROM files WHERE kind = 'clip'")).scalar() == 2 * per_writer
    assert sum(r["status"] == "completed" for r in recorded.catalog.runs()) == 2


def test_two_processes_creating_the_same_catalog_at_once_both_succeed(tmp_path: Path) -> None:
    home = tmp_path / "out"
    script = (
        "import sys; from pathlib import Path\n"
        "from storyflow.catalog import Catalog; from storyflow.stages.story import parse_story\n"
        "catalog = Catalog.open(sys.argv[1], Path(sys.argv[2]))\n"
        "print(catalog.record_story(parse_story(b'Mara waits.', 'x.md')))"
    )
    command = [sys.executable, "-c", script, catalog_url(home), str(home)]
    children = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], [err for _, err in results]
    assert {out.strip() for out, _ in results} == {"1"}  # both found (or made) the same story row
    with Catalog.open(catalog_url(home), home) as catalog, catalog.engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [migrations.head_revision()]


def test_canonical_sha256_ignores_key_order_but_not_content() -> None:
    assert canonical_sha256({"a": 1, "b": [1, 2]}) == canonical_sha256({"b": [1, 2], "a": 1})
    assert canonical_sha256({"a": 1}) != canonical_sha256({"a": 2})
    board = make_board(make_story())
    assert canonical_sha256(board) == canonical_sha256(Storyboard.model_validate_json(board.model_dump_json()))


def test_a_reused_prompt_keeps_its_timed_changes(storyflow_home):
    """Without them a reused evolving prompt would give every later segment a new cache key."""
    from storyflow.core.models import TimedPrompt

    rec = Recorded(storyflow_home)
    shot_id = rec.board.shots[0].id
    evolving = ShotPrompt(shot_id=shot_id, prompt="a figure of water", template="shot_prompt.j2",
                          changes=(TimedPrompt(at=4.0, prompt="a figure of water, lightning"),))  # fmt: skip
    rec.catalog.record_prompt(rec.shot_ids[shot_id], evolving, wall_s=0.1, cache_key="rewrite-evolving")
    found = rec.catalog.find_prompt("rewrite-evolving")
    assert found == evolving and found.prompt_at(5.0) == "a figure of water, lightning"
