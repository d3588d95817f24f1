"""Migrations: named and ordered; a catalog made at any revision opens, upgrades and keeps its data.

Every test walks the revisions it finds in storyflow/catalog/migrations/versions, so a new
0002_... is covered without touching this file. Runs on SQLite files and on the session's
real PostgreSQL server (the `postgres_url` fixture; skipped where no server can be started,
except in CI, which requires it); STORYFLOW_TEST_POSTGRES_URL points them at another one.
"""

from __future__ import annotations

import ast
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from storyflow.catalog import Catalog, migrations
from storyflow.catalog.db import make_engine
from storyflow.catalog.schema import Base
from storyflow.core.errors import CatalogError
from storyflow.core.models import Film, SeamScore, Story
from tests.catalog.test_catalog import make_board, make_clip, make_story, write_media

VERSIONS = migrations.MIGRATIONS_DIR / "versions"
POSTGRES_URL = os.environ.get("STORYFLOW_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """An empty database: a new SQLite file, or the wiped PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    url = POSTGRES_URL or request.getfixturevalue("postgres_url")
    _wipe(url)
    yield url
    _wipe(url)


def _wipe(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return migrations.current_revision(engine)
    finally:
        engine.dispose()


def _schema_differences(url: str) -> list:
    """What autogenerate would change to make the database match schema.py (nothing, if they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the files themselves


def test_migration_files_are_named_ordered_and_explicit() -> None:
    files = sorted(VERSIONS.glob("*.py"))
    assert files, "no migrations found"
    previous = None
    for number, file in enumerate(files, start=1):
        assert re.fullmatch(r"\d{4}_[a-z0-9_]+\.py", file.name), f"{file.name}: name it NNNN_what_it_does.py"
        source = file.read_text()
        values = _revision_ids(source)
        assert values == {"revision": f"{number:04d}", "down_revision": previous}, file.name
        # frozen: written out explicitly, never derived from today's models
        assert ".create_all(" not in source and "storyflow.catalog.schema" not in source, file.name
        previous = values["revision"]
    assert migrations.revisions() == [f"{n:04d}" for n in range(1, len(files) + 1)]
    assert migrations.head_revision() == previous


def _revision_ids(source: str) -> dict:
    """The module-level `revision` and `down_revision` of a migration file."""
    found = {}
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            found[target.id] = ast.literal_eval(node.value)
    return found


# ---------------------------------------------------------------- upgrading


@pytest.mark.parametrize("start", migrations.revisions())
def test_a_catalog_at_any_revision_upgrades_to_head_and_matches_the_models(
    db_url: str, start: str, tmp_path: Path
) -> None:
    migrations.upgrade(db_url, start)
    assert _current(db_url) == start
    with Catalog.open(db_url, tmp_path / "home") as catalog:
        assert catalog.record_story(make_story()) == 1  # usable straight away
    assert _current(db_url) == migrations.head_revision()
    assert _schema_differences(db_url) == []  # the migrations build exactly what schema.py describes


def _write_rows_as_0001(db_url: str, home: Path) -> tuple[Story, Path, str]:
    """Rows written as storyflow 0001 wrote them (raw SQL, frozen): a story down to one clip and its file."""
    migrations.upgrade(db_url, "0001")
    story = make_story()
    board = make_board(story)
    clip_path, clip_sha = write_media(home / "clips" / "s01_0.mp4", b"a clip made by version 0001" * 30)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    size = clip_path.stat().st_size
    rows = [  # JSON columns as JSON text, as any client of 0001 would write them
        ("stories", dict(id=1, sha256=story.sha256, title=story.title, slug=story.slug,
                         source="stories/lighthouse.md", text=story.text, front_matter="{}", created_at=now)),
        ("storyboards", dict(id=1, story_id=1, sha256="b" * 64, llm="embedded 1", llm_options="{}", seed=7,
                             data=board.model_dump_json(), wall_s=0.5, created_at=now)),
        ("shots", dict(id=1, storyboard_id=1, shot_key="s01", position=0, sha256="c" * 64,
                       data=board.shots[0].model_dump_json())),
        ("prompts", dict(id=1, shot_id=1, sha256="d" * 64, prompt="a lighthouse at night", negative_prompt="",
                         caption="", template="shot.j2", template_sha256="e" * 64, llm="embedded 1", wall_s=0,
                         created_at=now)),
        ("runs", dict(id=1, story_source="stories/lighthouse.md", status="completed", pid=1, hostname="old-host",
                      params="{}", started_at=now, clips_generated=1, clips_reused=0)),
        ("clips", dict(id=1, cache_key="old-key", prompt_id=1, shot_key="s01", segment=0,
                       prompt="a lighthouse at night", path="clips/s01_0.mp4", sha256=clip_sha, bytes=size,
                       num_frames=24, fps=12, width=160, height=90, strategy="text_to_video", backend="animatic",
                       model="animatic-v1", seed=7, options='{"detail": 1}', conditioning="", run_id=1,
                       started_at=now, finished_at=now, wall_s=0.3)),
        ("files", dict(id=1, path="clips/s01_0.mp4", sha256=clip_sha, bytes=size, kind="clip",
                       owner_table="clips", owner_id=1, created_at=now)),
    ]  # fmt: skip
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for table, row in rows:
            columns = ", ".join(row)
            values = ", ".join(f":{column}" for column in row)
            conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)
            if engine.dialect.name == "postgresql":  # ids were given: move the sequence past them, as a client would
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {row['id']})"))
    engine.dispose()
    return story, clip_path, clip_sha


def test_a_catalog_written_by_version_0001_opens_and_keeps_its_records(db_url: str, tmp_path: Path) -> None:
    """Rows written as storyflow 0001 wrote them (raw SQL, frozen) are still found after upgrading."""
    home = tmp_path / "home"
    story, clip_path, _ = _write_rows_as_0001(db_url, home)

    with Catalog.open(db_url, home) as catalog:
        assert _current(db_url) == migrations.head_revision()
        clip = catalog.find_clip("old-key")
        assert clip is not None and clip.path == clip_path and clip.options == {"detail": 1} and clip.reused
        tree = catalog.provenance(clip_path)
        assert tree["story"]["title"] == story.title and tree["prompt"]["text"] == "a lighthouse at night"
        assert json.loads(json.dumps(tree))["run"]["started_at"].startswith("2026-01-02T03:04:05")
        assert catalog.record_story(story) == 1  # the old row, found by its hash


def test_0002_adds_seams_narration_and_loudness_to_a_catalog_holding_0001_data(db_url: str, tmp_path: Path) -> None:
    """0001 -> 0002 rebuilds `clips` (SQLite batch mode): its rows, keys and constraints survive."""
    home = tmp_path / "home"
    story, clip_path, clip_sha = _write_rows_as_0001(db_url, home)
    migrations.upgrade(db_url, "0002")
    assert _current(db_url) == "0002"

    # 1. the new columns and tables are there
    engine = make_engine(db_url)
    schema = inspect(engine)
    clip_columns = {c["name"] for c in schema.get_columns("clips")}
    new_columns = {"seam_jump", "seam_median", "seam_ratio", "drift", "end_parent_sha256", "end_parent_clip_id"}
    assert new_columns <= clip_columns
    assert "loudness_lufs" in {c["name"] for c in schema.get_columns("films")}
    assert {"narration_lines", "film_narration"} <= set(schema.get_table_names())
    # 2. the old row is intact; its new columns say "nothing measured"
    with engine.connect() as conn:
        old = conn.execute(text("SELECT cache_key, sha256, path, options, drift, seam_ratio, end_parent_clip_id "
                                "FROM clips")).one()  # fmt: skip
        assert conn.execute(text("SELECT count(*) FROM files")).scalar() == 1
    assert old[:3] == ("old-key", clip_sha, "clips/s01_0.mp4") and old[4:] == ("", None, None)
    # 3. the rebuilt table still refuses what 0001 refused: a duplicate key, a dangling parent
    row = dict(cache_key="new-key", prompt_id=1, shot_key="s01", segment=1, prompt="", path="x.mp4", sha256="f" * 64,
               bytes=1, num_frames=1, fps=12, width=16, height=16, strategy="text_to_video", backend="animatic",
               model="m", seed=1, options="{}", conditioning="", started_at=datetime.now(UTC),
               finished_at=datetime.now(UTC), wall_s=0)  # fmt: skip
    for broken in ({"cache_key": "old-key"}, {"parent_clip_id": 999}, {"end_parent_clip_id": 999}):
        values = row | broken
        columns, params = ", ".join(values), ", ".join(f":{column}" for column in values)
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(f"INSERT INTO clips ({columns}) VALUES ({params})"), values)
    engine.dispose()

    # 4. the upgraded catalog records the new fields, pointing at the old clip
    with Catalog.open(db_url, home) as catalog:
        assert catalog.find_clip("old-key").seam is None and catalog.find_clip("old-key").drift == ""
        closing_path, _ = write_media(home / "clips" / "s01_1.mp4", b"the loop's closing segment" * 30)
        closing = make_clip(closing_path, "s01", 1, "loop-key", parent_sha256=clip_sha).model_copy(
            update={
                "strategy": "loop_close",
                "end_parent_sha256": clip_sha,
                "drift": "brightness -2.0 corrected",
                "seam": SeamScore(jump=4.0, median=2.0, ratio=2.0),
            }
        )
        catalog.record_clip(closing, prompt_id=1, run_id=1)
        assert catalog.find_clip("loop-key").model_copy(update={"reused": False}) == closing
        tree = catalog.provenance(closing_path)
        assert tree["end_parent"]["id"] == 1 and tree["parents"][0]["id"] == 1  # both lead to the 0001 clip
        assert tree["clip"]["seam"]["ratio"] == 2.0 and tree["clip"]["drift"] == "brightness -2.0 corrected"


def test_downgrading_step_by_step_keeps_data_and_upgrading_from_base_rebuilds_every_table(
    db_url: str, tmp_path: Path
) -> None:
    with Catalog.open(db_url, tmp_path / "home") as catalog:
        catalog.record_story(make_story())
    engine = make_engine(db_url)

    def stories() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM stories")).scalar()

    # 1. down one revision at a time to the first: what those revisions store survives
    for revision in reversed(migrations.revisions()[:-1]):
        migrations.downgrade(db_url, revision)
        assert _current(db_url) == revision and stories() == 1
    # 2. down to nothing: only Alembic's own table is left
    migrations.downgrade(db_url, "base")
    assert _current(db_url) is None
    assert _tables(db_url) <= {"alembic_version"}
    # 3. and up again: every table of schema.py is back, exactly as described
    migrations.upgrade(db_url)
    assert _tables(db_url) == set(Base.metadata.tables) | {"alembic_version"}
    assert _schema_differences(db_url) == []
    assert stories() == 0
    engine.dispose()


def test_a_catalog_from_a_newer_storyflow_is_refused_with_a_fix(db_url: str, tmp_path: Path) -> None:
    migrations.upgrade(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(CatalogError) as info:
        Catalog.open(db_url, tmp_path / "home")
    assert "9999" in info.value.message and "upgrade storyflow" in info.value.fix
    assert _current(db_url) == "9999"  # left as it was


def _write_film_as_0002(db_url: str, home: Path) -> dict:
    """On top of the 0001 rows: a film as storyflow 0002 wrote it (raw SQL, frozen), with its files on disk."""
    story, clip_path, clip_sha = _write_rows_as_0001(db_url, home)
    migrations.upgrade(db_url, "0002")
    folder = home / "lighthouse"
    files = {kind: write_media(folder / name, f"{kind} of the 0002 film".encode() * 20)
             for kind, name in (("film", "lighthouse.mp4"), ("subtitles", "lighthouse.srt"), ("poster", "poster.png"),
                                ("contact_sheet", "sheet.png"), ("storyboard", "storyboard.json"))}  # fmt: skip
    stored = {kind: path.relative_to(home).as_posix() for kind, (path, _) in files.items()}
    now = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    rows = [
        ("films", dict(id=1, storyboard_id=1, run_id=1, path=stored["film"], sha256=files["film"][1],
                       subtitles_path=stored["subtitles"], subtitles_sha256=files["subtitles"][1],
                       poster_path=stored["poster"], poster_sha256=files["poster"][1],
                       contact_sheet_path=stored["contact_sheet"], contact_sheet_sha256=files["contact_sheet"][1],
                       storyboard_json_path=stored["storyboard"], num_frames=24, fps=12, width=160, height=90,
                       stitch_strategy="smart: 1 copied", loudness_lufs=-15.5, wall_s=0.7, created_at=now)),
        ("film_clips", dict(film_id=1, position=0, clip_id=1)),
        *(("files", dict(id=10 + i, path=stored[kind], sha256=sha, bytes=path.stat().st_size, kind=kind,
                         owner_table="films", owner_id=1, created_at=now))
          for i, (kind, (path, sha)) in enumerate(files.items())),
    ]  # fmt: skip
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for table, row in rows:
            columns, values = ", ".join(row), ", ".join(f":{column}" for column in row)
            conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)
        conn.execute(text("UPDATE runs SET film_id = 1 WHERE id = 1"))
        if engine.dialect.name == "postgresql":
            for table in ("films", "files"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 100)"))
    engine.dispose()
    return {"story": story, "clip": (clip_path, clip_sha), "files": files}


def test_0003_adds_the_film_cache_and_run_generations_to_a_catalog_holding_0002_data(
    db_url: str, tmp_path: Path
) -> None:
    """0002 -> 0003 keeps every film and run as it was; the new columns read as "not recorded"."""
    home = tmp_path / "home"
    old = _write_film_as_0002(db_url, home)
    migrations.upgrade(db_url, "0003")
    assert _current(db_url) == "0003"

    # 1. the new columns are there, empty; the film's own values are untouched
    engine = make_engine(db_url)
    schema = inspect(engine)
    film_columns = {c["name"] for c in schema.get_columns("films")}
    assert {"cache_key", "credentials", "stems", "storyboard_json_sha256"} <= film_columns
    assert "generations" in {c["name"] for c in schema.get_columns("runs")}
    assert "ix_films_cache_key" in {index["name"] for index in schema.get_indexes("films")}
    with engine.connect() as conn:
        film = conn.execute(text("SELECT path, sha256, loudness_lufs, cache_key, credentials, stems, "
                                 "storyboard_json_sha256 FROM films")).one()  # fmt: skip
        generations = conn.execute(text("SELECT generations FROM runs")).scalar()
    engine.dispose()
    assert film == ("lighthouse/lighthouse.mp4", old["files"]["film"][1], -15.5, None, None, None, None)
    assert generations is None

    # 2. the upgraded catalog checks the old film by its files rows, and finds everything intact
    with Catalog.open(db_url, home) as catalog:
        report = catalog.verify()
        assert report["ok"], report
        assert report["checked_files"] == 6  # the 0001 clip and the film's five files
        assert catalog.runs()[0]["generations"] is None
        tree = catalog.provenance(old["files"]["poster"][0])
        assert tree["id"] == 1 and tree["cache_key"] is None and tree["credentials"] is None
        # a film recorded before 0003 has no cache key: never offered for reuse by a key
        assert catalog.find_film("any-key") is None
        # 3. and records the new fields: a film under a key, with credentials, found again intact
        film = Film(slug="lighthouse", path=old["files"]["film"][0], sha256=old["files"]["film"][1],
                    subtitles=old["files"]["subtitles"][0], poster=old["files"]["poster"][0],
                    contact_sheet=old["files"]["contact_sheet"][0], storyboard_json=old["files"]["storyboard"][0],
                    num_frames=24, fps=12, width=160, height=90, stitch_strategy="smart: 1 copied",
                    loudness_lufs=-15.5)  # fmt: skip
        signed = {"signer": "CN=me", "self_made_ca": False}
        film_id = catalog.record_film(film, storyboard_id=1, run_id=1, clip_keys=["old-key"], audio_keys=[],
                                      cache_key="film-key", credentials=signed)  # fmt: skip
        assert film_id > 1 and catalog.film_id("film-key") == film_id
        assert catalog.find_film("film-key").credentials == signed
        catalog.finish_run(1, "completed", generations={"film": {"made": 1, "reused": 0}})
        assert catalog.runs()[0]["generations"] == {"film": {"made": 1, "reused": 0}}

    # 4. down to 0002 again: the films are kept, the new columns dropped
    migrations.downgrade(db_url, "0002")
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM films")).scalar() == 2
    assert "cache_key" not in {c["name"] for c in inspect(engine).get_columns("films")}
    engine.dispose()
