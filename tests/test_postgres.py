"""The catalog on a real PostgreSQL server (started for the session by the `postgres_url` fixture).

STORYFLOW_CATALOG_URL may name any SQLAlchemy URL; these tests run the same code that runs
on SQLite against PostgreSQL: migrations, records and reuse, provenance, two writers at once,
and a whole `storyflow film` run. Each test gets its own empty database on the shared server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import tests.catalog.test_catalog as catalog_builders
from storyflow import media
from storyflow.catalog import Catalog, migrations
from storyflow.catalog.schema import Base
from tests.catalog.test_catalog import make_board, make_story
from tests.catalog.test_provenance import Made, made  # noqa: F401 - `made` is a fixture used below
from tests.support import REPO, TINY_STORY, run_cli

@pytest.fixture
def storyflow_home(storyflow_home: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The usual output folder; the shared catalog builders (Recorded, `made`) record into PostgreSQL."""
    monkeypatch.setattr(catalog_builders, "catalog_url", lambda home: pg_database)
    return storyflow_home


def _rows(url: str, sql: str, **params) -> list[tuple]:
    """Rows of a query, read through a separate SQLAlchemy engine (as any other client would)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


# ---------------------------------------------------------------- opening and migrations


def test_catalog_opens_on_postgresql_at_the_newest_migration_with_every_table(pg_database: str, tmp_path: Path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    home = tmp_path / "outputs"
    with Catalog.open(pg_database, home) as catalog:
        assert catalog.engine.dialect.name == "postgresql"
        assert catalog.display_url == pg_database  # shown as its URL (without a password, were there one)
        with catalog.engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            tables = set(inspect(conn).get_table_names())
            # the migrations built exactly what schema.py describes, on this dialect too
            differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                           Base.metadata)  # fmt: skip
    newest_file = sorted((migrations.MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))[-1]
    assert version == migrations.head_revision() == newest_file.name[:4]
    assert set(Base.metadata.tables) <= tables
    assert differences == []
    # opening again finds it at head and keeps what it holds
    with Catalog.open(pg_database, home) as catalog:
        story_id = catalog.record_story(make_story())
    with Catalog.open(pg_database, home) as again:
        assert again.record_story(make_story()) == story_id
    assert not home.exists() or not list(home.rglob("catalog.db*")), "no SQLite file beside a PostgreSQL catalog"


# ---------------------------------------------------------------- records, reuse, provenance


def test_record_find_and_provenance_round_trip_on_postgresql(made: Made, storyflow_home: Path) -> None:
    cat = made.catalog
    assert cat.engine.dialect.name == "postgresql"

    # 1. every clip and track comes back exactly as recorded (JSON options, seeds, floats, paths)
    for clip in made.clips.values():
        found = cat.find_clip(clip.cache_key)
        assert found is not None and found.reused
        assert found.model_copy(update={"reused": False}) == clip
    music = cat.find_audio(made.music.cache_key)
    assert music is not None and music.path == made.music.path and music.options == {"tempo": 80}

    # 2. records are idempotent; the largest seed a story may set fits (a 32-bit INTEGER would not)
    assert cat.record_story(made.rec.story) == made.rec.story_id
    board = make_board(made.rec.story, seed=2**32 - 1)
    cat.record_storyboard(made.rec.story_id, board, llm="embedded 1", options={}, wall_s=0, cache_key="plan-key")
    assert cat.find_storyboard("plan-key") == board

    # 3. provenance walks from the film, and from a clip, back to the story
    tree = cat.provenance(made.film.path)
    assert tree["kind"] == "film" and tree["id"] == made.film_id and tree["sha256"] == made.film.sha256
    assert tree["story"]["title"] == "The Lighthouse Keeper" and tree["story"]["sha256"] == made.rec.story.sha256
    assert [shot["shot_key"] for shot in tree["shots"]] == ["s01", "s02", "s03"]
    assert [c["sha256"] for c in tree["shots"][0]["clips"]] == [made.clips["s01/0"].sha256, made.clips["s01/1"].sha256]
    assert tree["run"]["status"] == "completed" and tree["cost_usd"] == pytest.approx(0.01)
    clip_tree = cat.provenance(made.clips["s02/0"].path)
    assert [p["sha256"] for p in clip_tree["parents"]] == [made.clips["s01/1"].sha256, made.clips["s01/0"].sha256]
    assert [f["id"] for f in clip_tree["films"]] == [made.film_id]
    [film] = cat.films()
    assert film["id"] == made.film_id and film["duration_s"] == 6.0
    [run] = cat.runs()
    assert run["timings"] == {"plan": 0.01, "generate": 1.0, "stitch": 1.5} and run["clips_generated"] == 4

    # 4. a tampered file is not trusted
    tampered = made.clips["s03/0"]
    tampered.path.write_bytes(b"X" + tampered.path.read_bytes()[1:])
    assert cat.find_clip(tampered.cache_key) is None

    assert not list(storyflow_home.rglob("catalog.db*")), "nothing was written to a SQLite catalog"


# ---------------------------------------------------------------- two writers


WRITER = """
import json, sys, time
from pathlib import Path
import tests.catalog.test_catalog as builders

url, home, sync, shot_id, count = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
builders.catalog_url = lambda _home: url

def together(step):  # wait until the other writer is at the same step (or has failed): each write is a race
    (sync / f"{shot_id}-{step}").touch()
    while len(list(sync.glob(f"*-{step}"))) < 2 and not (sync / "failed").exists():
        time.sleep(0.001)

try:
    together("open")
    rec = builders.Recorded(home)  # migrate, then record the same story, storyboard, shots and prompts
    for seed in range(100, 110):  # ten more plans of the same story, recorded by both writers at once
        board = builders.make_board(rec.story, seed=seed)
        together(f"board-{seed}")
        board_id = rec.catalog.record_storyboard(rec.story_id, board, llm="embedded 1", options={}, wall_s=0)
        together(f"shots-{seed}")
        shot_rows = rec.catalog.record_shots(board_id, board)
        for shot in board.shots:
            rec.catalog.record_prompt(shot_rows[shot.id], builders.make_prompt(shot), wall_s=0)
    clip_ids = [
        rec.catalog.record_clip(rec.clip(shot_id, segment, f"{shot_id} segment {segment}".encode() * 40),
                                prompt_id=rec.prompt_ids[shot_id], run_id=rec.run_id)
        for segment in range(count)
    ]
    together("same-clip")  # both made the same clip of the shot they share (same file, same cache key)
    shared = rec.catalog.record_clip(rec.clip("s02", 0, b"the clip both writers made" * 40),
                                     prompt_id=rec.prompt_ids["s02"], run_id=rec.run_id)
    rec.catalog.finish_run(rec.run_id, "completed", clips_generated=count)
except BaseException:
    (sync / "failed").touch()  # let the other writer go on alone
    raise
print(json.dumps({"story": rec.story_id, "board": rec.board_id, "shots": rec.shot_ids, "clips": clip_ids,
                  "shared": shared}))
"""


def test_two_processes_record_into_one_postgresql_catalog_at_once(pg_database: str, tmp_path: Path) -> None:
    """Two runs of the same story on two machines: both create the schema, story, shots and prompts at once."""
    home, sync, per_writer = tmp_path / "outputs", tmp_path / "sync", 10
    sync.mkdir()
    children = [
        subprocess.Popen([sys.executable, "-c", WRITER, pg_database, str(home), str(sync), shot_id, str(per_writer)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for shot_id in ("s01", "s03")
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], "\n---\n".join(err[-1500:] for _, err in results)

    first, second = (json.loads(out) for out, _ in results)
    assert (first["story"], first["board"], first["shots"]) == (second["story"], second["board"], second["shots"])
    assert len(set(first["clips"]) | set(second["clips"])) == 2 * per_writer
    assert first["shared"] == second["shared"]  # one row for the clip both made
    counts = _rows(pg_database, "SELECT (SELECT count(*) FROM stories), (SELECT count(*) FROM storyboards), "
                                "(SELECT count(*) FROM shots), "
                                "(SELECT count(*) FROM prompts), (SELECT count(*) FROM clips), "
                                "(SELECT count(*) FROM files WHERE kind = 'clip')")  # fmt: skip
    assert counts == [(1, 11, 33, 33, 2 * per_writer + 1, 2 * per_writer + 1)]  # every row once
    assert _rows(pg_database, "SELECT status, clips_generated FROM runs") == [("completed", per_writer)] * 2
    assert _rows(pg_database, "SELECT version_num FROM alembic_version") == [(migrations.head_revision(),)]


# ---------------------------------------------------------------- end to end


PASSWORD = "pg-pass-4711-never-shown"  # the test server trusts loopback, so any password is accepted


@pytest.mark.slow
def test_film_with_a_postgresql_catalog_end_to_end(prefect_server, pg_database: str, tmp_path: Path, write_story):
    """`storyflow film` with STORYFLOW_CATALOG_URL: made, then fully reused; every row is in PostgreSQL."""
    story = write_story(TINY_STORY)
    home = tmp_path / "outputs"
    url = make_url(pg_database).set(password=PASSWORD).render_as_string(hide_password=False)
    env = {"PREFECT_API_URL": prefect_server, "STORYFLOW_CATALOG_URL": url}

    # 1. the first run makes every clip, the second reuses every one
    first = run_cli(["film", str(story), "--json"], home=home, cwd=tmp_path, env=env)
    assert first.code == 0, first.stderr
    second = run_cli(["film", str(story), "--json"], home=home, cwd=tmp_path, env=env)
    assert second.code == 0, second.stderr
    before, again = first.json, second.json
    assert before["clips_generated"] > 0
    assert again["clips_generated"] == 0 and again["clips_reused"] == before["clips_generated"]
    film = Path(again["film"])
    assert film.is_file() and media.probe(film).num_frames > 0

    # 2. the rows are in PostgreSQL, and no SQLite catalog was made beside the films
    assert again["catalog"] == make_url(url).render_as_string(hide_password=True)  # shown without its password
    assert not list(home.rglob("catalog.db*"))
    runs = _rows(url, "SELECT id, status, clips_generated, clips_reused FROM runs ORDER BY id")
    assert runs == [(before["run_id"], "completed", before["clips_generated"], 0),
                    (again["run_id"], "completed", 0, before["clips_generated"])]  # fmt: skip
    clips = _rows(url, "SELECT shot_key, path, sha256 FROM clips")
    assert len(clips) == before["clips_generated"]
    assert {shot_key for shot_key, _, _ in clips} == {shot["id"] for shot in before["shots"]}
    for _, path, sha256 in clips:
        assert media.sha256_file(path if Path(path).is_absolute() else home / path) == sha256
    [(film_sha,)] = _rows(url, "SELECT sha256 FROM films WHERE id = :id", id=again["film_id"])
    assert film_sha == media.sha256_file(film)

    # 3. provenance reads the film's history back from PostgreSQL
    shown = run_cli(["provenance", str(film)], home=home, cwd=tmp_path, env={"STORYFLOW_CATALOG_URL": url})
    assert shown.code == 0, shown.stderr
    assert "Tiny Harbour" in shown.stdout and all(shot["id"] in shown.stdout for shot in before["shots"])
    as_json = run_cli(["provenance", str(film), "--json"], home=home, cwd=tmp_path, env={"STORYFLOW_CATALOG_URL": url})
    tree = json.loads(as_json.stdout)
    assert tree["kind"] == "film" and tree["sha256"] == film_sha
    # and so do the listings and the integrity check (which exits 0 only when every row and file agree)
    shots = run_cli(["shots", str(film)], home=home, cwd=tmp_path, env={"STORYFLOW_CATALOG_URL": url})
    assert shots.code == 0 and all(shot["id"] in shots.stdout for shot in before["shots"]), shots.stderr
    verify = run_cli(["catalog", "verify"], home=home, cwd=tmp_path, env={"STORYFLOW_CATALOG_URL": url})
    assert verify.code == 0, verify.stdout + verify.stderr

    # 4. the URL's password is nowhere: not in the output, the files, or any row of the catalog
    for result in (first, second, shown, as_json, shots, verify):
        assert PASSWORD not in result.stdout + result.stderr
    for file in home.rglob("*"):
        assert not file.is_file() or PASSWORD.encode() not in file.read_bytes(), file
    for table in Base.metadata.tables:
        assert not [row for row in _rows(url, f"SELECT CAST(t AS text) FROM {table} t") if PASSWORD in row[0]], table


def test_a_second_home_on_a_shared_catalog_never_repairs_away_the_first_homes_film(prefect_server, pg_database: str,
                                                                                  tmp_path: Path, write_story):  # fmt: skip
    """Two machines (two homes) sharing one PostgreSQL catalog: `catalog verify --repair` run from the second,
    which holds none of the first's files, deletes none of its rows, and the first home's rerun makes nothing."""
    story = write_story(TINY_STORY)
    first, second = tmp_path / "first" / "outputs", tmp_path / "second" / "outputs"
    for home in (first, second):
        home.parent.mkdir()
    url = make_url(pg_database).set(password=PASSWORD).render_as_string(hide_password=False)
    env = {"STORYFLOW_CATALOG_URL": url, "PREFECT_API_URL": prefect_server}
    made_first = run_cli(["film", str(story), "--json"], home=first, cwd=first.parent, env=env)
    assert made_first.code == 0, made_first.stderr

    repaired = run_cli(["catalog", "verify", "--repair", "--json"], home=second, cwd=second.parent, env=env)
    assert repaired.code == 0, repaired.stdout + repaired.stderr
    report = json.loads(repaired.stdout)
    assert report["other_homes"] and report["not_here"] > 0 and report["rows_without_files"] == []
    assert not [action for action in report["repaired"] if action["action"].startswith("deleted row")]

    again = run_cli(["film", str(story), "--json"], home=first, cwd=first.parent, env=env)
    assert again.code == 0, again.stderr
    assert again.json["clips_generated"] == 0 and again.json["film_reused"]
    assert run_cli(["catalog", "verify"], home=first, cwd=first.parent, env=env).code == 0


def test_a_film_lock_in_the_server_holds_across_machines(pg_database):
    """Two homes sharing a PostgreSQL catalog (two machines) never run the same film at once: the second waits."""
    import threading

    from storyflow.catalog.db import server_lock

    events: list[str] = []
    held = threading.Event()

    def first() -> None:
        with server_lock(pg_database, "film:tiny-harbour") as holding:
            assert holding
            events.append("first holds")
            held.set()
            time.sleep(1.0)
            events.append("first lets go")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    with server_lock(pg_database, "film:tiny-harbour", on_wait=lambda who: events.append(f"second waits for {who}")):
        events.append("second holds")
    with server_lock(pg_database, "film:another-film", on_wait=lambda who: events.append("never")):
        pass  # another film's lock is free
    thread.join()
    assert events == ["first holds", "second waits for a run on a machine sharing the catalog", "first lets go",
                      "second holds"]
    with server_lock("sqlite:///unused.db", "film:tiny-harbour") as holding:
        assert holding is False  # a SQLite catalog is one machine's: its file locks do the work
