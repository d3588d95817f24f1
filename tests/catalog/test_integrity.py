"""Issue 4 in the catalog: the film cache (find_film), what a run generated versus reused
(run_detail), and the integrity check behind `storyflow catalog verify [--repair]`.

Real catalogs (SQLite files; PostgreSQL too where the server binaries are installed), real
files laid out as the film flow lays them out: clips and tracks under content-addressed
names, each film in films/<key>/, shown under plain names in the story's folder through
hard links, a summary.json beside them, lock files and Prefect's folder around them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

import tests.catalog.test_catalog as catalog_builders
from storyflow.cli.text import format_provenance, format_run_detail, format_verify
from storyflow.core.errors import CatalogError
from storyflow.core.models import AudioTrack, Clip, Film, NarrationLine
from storyflow.media import sha256_file
from tests.catalog.test_catalog import Recorded, make_clip, write_media

SHOTS = (("s01", 0), ("s01", 1), ("s02", 0), ("s03", 0))  # s01 in two segments; s02 continues it
CREDENTIALS = {"signer": "storyflow local signer", "issuer": "storyflow local CA (this machine)",
               "self_made_ca": True, "manifest_label": "urn:c2pa:0c5e-film"}  # fmt: skip


# ---------------------------------------------------------------- a studio that runs "films" as the flow does


@dataclass
class Made:
    """What one run did: its id, the film's cache key, row id and record, and what it made versus reused."""

    run_id: int
    key: str
    film: Film
    film_id: int
    clips: dict[str, Clip]  # "s01/0" -> clip
    tracks: dict[str, AudioTrack]
    line: NarrationLine
    generations: dict[str, dict[str, int]] = field(default_factory=dict)


class Studio:
    """A catalog and an output folder; `run()` makes (or reuses) everything a film needs, like flows/film.py."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.rec = Recorded(home)
        self.catalog = self.rec.catalog
        self.folder = home / self.rec.story.slug
        # storyflow's own metadata around the outputs
        write_media(home / ".prefect" / "prefect.db", b"prefect's own database")
        write_media(home / "c2pa" / "ca.key", b"the local CA's key, never a catalog row")
        for folder in (home, self.folder):
            write_media(folder / ".lock", b"pid 1 since 10:00:00\n")
        write_media(home / ".gitkeep", b"")

    def run(self, versions: dict[str, str] | None = None, *, credentials: dict | None = None) -> Made:
        """One run: clips (s03 in `versions[...]`'s variant), narration, sound, the film; reuse what is intact."""
        versions = versions or {}
        cat, rec = self.catalog, self.rec
        run_id = cat.start_run(rec.story.source, {"seed": 7})
        tally: dict[str, dict[str, int]] = {}

        def count(kind: str, reused: bool) -> None:
            tally.setdefault(kind, {"made": 0, "reused": 0})["reused" if reused else "made"] += 1

        # 1. clips: each keyed by what makes it (its shot's version, its parent's content)
        clips: dict[str, Clip] = {}
        parent: Clip | None = None
        for shot_id, segment in SHOTS:
            version = versions.get(shot_id, "")
            parent_sha = parent.sha256 if parent is not None and shot_id != "s03" else None
            key = hashlib.sha256(f"clip {shot_id} {segment} {version} {parent_sha}".encode()).hexdigest()
            clip = cat.find_clip(key)
            if clip is None:
                path, _ = write_media(self.folder / "clips" / shot_id / f"{segment:02d}-{key[:12]}.mp4",
                                      f"{shot_id}/{segment}{version} frames".encode() * 64)  # fmt: skip
                clip = make_clip(path, shot_id, segment, key, parent_sha256=parent_sha)
                cat.record_clip(clip, prompt_id=rec.prompt_ids[shot_id], run_id=run_id)
            count("clip", clip.reused)
            clips[f"{shot_id}/{segment}"] = parent = clip

        # 2. narration of s01, then the sound: a music bed, effects of s03, the mix and its stems
        line = cat.find_narration("tts-s01")
        if line is None:
            path, sha = write_media(self.folder / "audio" / "narration" / "s01-tts.wav", b"RIFF speech" * 80)
            line = NarrationLine(shot_id="s01", text="Mara climbs.", path=path, sha256=sha, cache_key="tts-s01",
                                 seconds=1.0, offset=0.4, rate=150, voice="en-gb", backend="espeak-ng 1.52",
                                 words=((0.0, 0.4, "Mara"), (0.45, 0.9, "climbs.")))  # fmt: skip
            cat.record_narration(line, storyboard_id=rec.board_id, run_id=run_id)
        count("narration", line.reused)
        picture = hashlib.sha256("".join(c.sha256 for c in clips.values()).encode()).hexdigest()[:12]
        tracks: dict[str, AudioTrack] = {}
        for name, kind, key in (("music", "music", "music-bed"), ("effects", "effects", f"effects-{picture}"),
                                ("mix", "mix", f"mix-{picture}"), ("narration-stem", "narration", f"stem-n-{picture}"),
                                ("music-stem", "music", f"stem-m-{picture}")):  # fmt: skip
            track = cat.find_audio(key)
            if track is None:
                path, sha = write_media(self.folder / "audio" / f"{name}-{key[-12:]}.wav", f"RIFF {key}".encode() * 90)
                track = AudioTrack(kind=kind, path=path, sha256=sha, cache_key=key, seconds=6.0, sample_rate=48_000,
                                   backend="procedural")  # fmt: skip
                cat.record_audio(track, storyboard_id=rec.board_id, run_id=run_id)
            count(kind, track.reused)
            tracks[name] = track

        # 3. the film, in films/<key>/ (or the identical one found intact), shown under plain names
        key = hashlib.sha256(f"film {picture} {sorted(versions.items())} {credentials}".encode()).hexdigest()
        film = cat.find_film(key)
        if film is None:
            film = self.stitch(key, tracks, credentials)
        count("film", film.reused)
        film_id = cat.record_film(film, storyboard_id=rec.board_id, run_id=run_id,
                                  clip_keys=[c.cache_key for c in clips.values()],
                                  audio_keys=[t.cache_key for t in tracks.values()], narration_keys=[line.cache_key],
                                  cache_key=key, credentials=credentials)  # fmt: skip
        self.publish(film)
        cat.finish_run(run_id, "completed", story_id=rec.story_id, storyboard_id=rec.board_id, film_id=film_id,
                       clips_generated=tally["clip"]["made"], clips_reused=tally["clip"]["reused"],
                       generations=tally)  # fmt: skip
        return Made(run_id, key, film, film_id, clips, tracks, line, tally)

    def stitch(self, key: str, tracks: dict[str, AudioTrack], credentials: dict | None) -> Film:
        """The film's files in films/<key12>/; its stems hard links to the stem tracks; the storyboard by content."""
        where = self.folder / "films" / key[:12]
        slug = self.rec.story.slug
        film_path, film_sha = write_media(where / f"{slug}.mp4", f"the film {key}".encode() * 300)
        write_media(where / f"{slug}.srt", f"1\n00:00:00,000 --> 00:00:01,000\nMara climbs. {key[:6]}\n".encode())
        write_media(where / f"{slug}.poster.png", f"\x89PNG poster {key}".encode())
        write_media(where / f"{slug}.contact-sheet.png", f"\x89PNG sheet {key}".encode())
        board_json = self.rec.board.model_dump_json().encode()
        storyboard, _ = write_media(self.folder / "storyboards" / f"{hashlib.sha256(board_json).hexdigest()[:12]}.json",
                                    board_json)  # fmt: skip
        stems = {}
        for kind, track in (("narration", tracks["narration-stem"]), ("music", tracks["music-stem"])):
            stems[kind] = where / "stems" / f"{kind}.wav"
            stems[kind].parent.mkdir(parents=True, exist_ok=True)
            stems[kind].unlink(missing_ok=True)
            os.link(track.path, stems[kind])
        return Film(slug=slug, path=film_path, sha256=film_sha, subtitles=where / f"{slug}.srt",
                    poster=where / f"{slug}.poster.png", contact_sheet=where / f"{slug}.contact-sheet.png",
                    storyboard_json=storyboard, num_frames=72, fps=12, width=160, height=90,
                    stitch_strategy="smart: 4 copied", wall_s=1.5, stems=stems, loudness_lufs=-16.1,
                    credentials=credentials or {})  # fmt: skip

    def publish(self, film: Film) -> None:
        """Plain names in the story's folder, hard links to the film's files (as flows/film.py does), and a summary."""
        slug = self.rec.story.slug
        names = {film.path: f"{slug}.mp4", film.subtitles: f"{slug}.srt", film.poster: f"{slug}.poster.png",
                 film.contact_sheet: f"{slug}.contact-sheet.png", film.storyboard_json: "storyboard.json",
                 **{path: f"stems/{kind}.wav" for kind, path in film.stems.items()}}  # fmt: skip
        for source, name in names.items():
            plain = self.folder / name
            plain.parent.mkdir(parents=True, exist_ok=True)
            plain.unlink(missing_ok=True)
            os.link(source, plain)
        write_media(self.folder / "summary.json", json.dumps({"film": str(film.path)}).encode())

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.catalog.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]


@pytest.fixture(params=["sqlite", "postgresql"])
def studio(request: pytest.FixtureRequest, storyflow_home: Path, monkeypatch: pytest.MonkeyPatch):
    """A Studio on a SQLite file, or on a new database of the session's PostgreSQL server (tests/conftest.py)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database")
        monkeypatch.setattr(catalog_builders, "catalog_url", lambda home: url)
    made = Studio(storyflow_home)
    yield made
    made.catalog.close()


def stored(studio: Studio, path: Path) -> str:
    return path.relative_to(studio.home).as_posix()


# ---------------------------------------------------------------- find_film: reuse a film only if every file is intact


def test_find_film_returns_the_recorded_film_with_absolute_paths_stems_and_loudness(studio: Studio) -> None:
    first = studio.run(credentials=CREDENTIALS)
    assert not first.film.reused and first.generations["film"] == {"made": 1, "reused": 0}

    found = studio.catalog.find_film(first.key)
    assert found is not None and found.reused
    assert found == first.film.model_copy(update={"reused": True})  # every field, stems and credentials included
    assert found.path.is_absolute()
    assert found.stems["music"] == studio.folder / "films" / first.key[:12] / "stems" / "music.wav"
    assert studio.catalog.film_id(first.key) == first.film_id
    assert studio.catalog.find_film("no-such-key") is None and studio.catalog.film_id("no-such-key") is None

    # a second run of the same story finds it: no new film row, the run points at the first one
    again = studio.run(credentials=CREDENTIALS)
    assert again.film_id == first.film_id and again.generations["film"] == {"made": 0, "reused": 1}
    assert again.generations["clip"] == {"made": 0, "reused": 4}
    assert studio.rows("SELECT count(*) FROM films") == [(1,)]
    assert studio.rows("SELECT film_id FROM runs WHERE id = :r", r=again.run_id) == [(first.film_id,)]


FILM_FILES = ["path", "subtitles", "poster", "contact_sheet", "storyboard_json", "stem"]


@pytest.mark.parametrize("damage", ["missing", "changed"])
@pytest.mark.parametrize("which", FILM_FILES)
def test_find_film_refuses_a_film_with_any_file_missing_or_changed(
    storyflow_home: Path, which: str, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    studio = Studio(storyflow_home)
    made = studio.run()
    path = made.film.stems["music"] if which == "stem" else getattr(made.film, which)
    if damage == "missing":
        path.unlink()
    else:  # same size, one byte different: only the hash can tell
        data = path.read_bytes()
        path.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    assert studio.catalog.find_film(made.key) is None
    assert studio.catalog.film_id(made.key) is None
    assert str(path) in caplog.text and ("missing" if damage == "missing" else "changed") in caplog.text

    # the next run stitches it again (a new row under the same key), and that one is found
    again = studio.run()
    assert again.generations["film"] == {"made": 1, "reused": 0} and again.film_id != made.film_id
    assert studio.catalog.find_film(made.key).sha256 == sha256_file(again.film.path)
    studio.catalog.close()


def test_credentials_are_recorded_shown_and_guarded_against_keys(studio: Studio) -> None:
    made = studio.run(credentials=CREDENTIALS)
    tree = studio.catalog.provenance(made.film.path)
    assert tree["credentials"] == CREDENTIALS and tree["cache_key"] == made.key
    text_tree = format_provenance(tree)
    assert "signed by storyflow local signer" in text_tree and "untrusted outside this machine" in text_tree
    assert f"cache key {made.key[:12]}" in text_tree
    assert studio.catalog.films()[0]["credentials"] == CREDENTIALS

    # a key, by its name or by its content, is refused before anything is written
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKey0123456789\n-----END EC PRIVATE KEY-----"
    for bad in ({**CREDENTIALS, "private_key": "0123456789abcdef"}, {**CREDENTIALS, "signer": pem}):
        with pytest.raises(CatalogError) as info:
            studio.catalog.record_film(made.film.model_copy(update={"reused": False}),
                                       storyboard_id=studio.rec.board_id, run_id=None, clip_keys=[], audio_keys=[],
                                       credentials=bad)  # fmt: skip
        assert "environment variables" in info.value.fix
    assert studio.rows("SELECT count(*) FROM films") == [(1,)]
    studio.catalog.close()
    for file in studio.home.glob("catalog.db*"):
        assert b"MHcCAQEEIKey0123456789" not in file.read_bytes() and b"0123456789abcdef" not in file.read_bytes()


# ---------------------------------------------------------------- what a run generated versus reused


def test_run_detail_separates_what_a_run_made_from_what_it_reused(studio: Studio) -> None:
    first = studio.run()
    edited = studio.run({"s03": " v2"})  # s03 rewritten: its clip, the sound that follows the picture, a new film
    whole = studio.run({"s03": " v2"})  # nothing changed: the whole film is found again

    # 1. the first run made everything, reused nothing
    detail = studio.catalog.run_detail(first.run_id)
    assert json.loads(json.dumps(detail)) == detail
    assert detail["run"]["id"] == first.run_id and detail["reused"] == []
    made = {(i["kind"], i.get("shot_key"), i.get("segment")) for i in detail["generated"]}
    assert {(k, s, g) for k, s, g in made if k == "clip"} == {("clip", s, g) for s, g in SHOTS}
    assert detail["counts"]["generated"] == {"clip": 4, "narration": 1, "music": 2, "effects": 1, "mix": 1,
                                             "narration stem": 1, "film": 1}  # fmt: skip
    assert all(i["made_by_run"] == first.run_id for i in detail["generated"])

    # 2. the edit made s03's clip, the picture-dependent sound and a film; it reused the rest from run 1
    detail = studio.catalog.run_detail(edited.run_id)
    generated = {(i["kind"], i.get("shot_key")) for i in detail["generated"]}
    assert generated == {("clip", "s03"), ("effects", None), ("mix", None), ("narration stem", None),
                         ("music", None), ("film", None)}  # fmt: skip
    reused = detail["reused"]
    assert sorted((i["shot_key"], i["segment"]) for i in reused if i["kind"] == "clip") == [
        ("s01", 0), ("s01", 1), ("s02", 0)]  # fmt: skip
    assert {i["kind"] for i in reused} == {"clip", "narration", "music"}  # the line and the music bed
    assert all(i["made_by_run"] == first.run_id for i in reused)
    clip = next(i for i in detail["generated"] if i["kind"] == "clip")
    assert clip["path"] == stored(studio, edited.clips["s03/0"].path)
    assert clip["sha256"] == edited.clips["s03/0"].sha256[:12]
    assert detail["generations"] == edited.generations and detail["generations"]["clip"] == {"made": 1, "reused": 3}

    # 3. the unchanged rerun made nothing: its film, and all the film plays, came from the runs before
    detail = studio.catalog.run_detail(whole.run_id)
    assert detail["generated"] == []
    assert [i["id"] for i in detail["reused"] if i["kind"] == "film"] == [edited.film_id]
    assert {i["made_by_run"] for i in detail["reused"]} == {first.run_id, edited.run_id}
    assert detail["counts"]["reused"]["clip"] == 4
    text_detail = format_run_detail(detail)
    assert "generated: 0" in text_detail and f"made by run #{edited.run_id}" in text_detail

    # runs() and provenance show the tally too
    assert studio.catalog.runs()[0]["generations"] == whole.generations
    tree = studio.catalog.provenance(whole.film.path)  # the film's own run: the one that made it
    assert tree["run"]["id"] == edited.run_id and "film 1 made / 0 reused" in format_provenance(tree)


def test_run_detail_of_an_unknown_run_says_where_to_find_run_ids(studio: Studio) -> None:
    studio.run()
    with pytest.raises(CatalogError) as info:
        studio.catalog.run_detail(999)
    assert "#999" in info.value.message and "storyflow catalog runs" in info.value.fix


def test_a_malformed_generations_tally_is_refused(studio: Studio) -> None:
    run_id = studio.catalog.start_run("stories/x.md", {})
    for bad in ({"clip": 3}, {"clip": {"made": 1}}, {"clip": {"made": -1, "reused": 0}},
                {"clip": {"made": 1.5, "reused": 0}}):
        with pytest.raises(CatalogError) as info:
            studio.catalog.finish_run(run_id, "completed", generations=bad)
        assert "made" in info.value.fix
    assert studio.catalog.runs()[0]["status"] == "running"  # nothing was written


# ---------------------------------------------------------------- verify: rows against files, files against rows


def test_verify_finds_a_fresh_output_folder_clean(studio: Studio) -> None:
    first = studio.run()
    studio.run({"s03": " v2"})  # a second film in the same story folder takes over the plain names
    report = studio.catalog.verify()
    assert json.loads(json.dumps(report)) == report
    assert report["ok"], format_verify(report)
    for key in ("rows_without_files", "hash_mismatches", "file_rows_without_owner", "files_without_rows",
                "partial_files"):  # fmt: skip
        assert report[key] == []
    # every file the runs wrote was checked, and the plain names are known as copies of recorded files
    metadata = {*studio.home.glob("catalog.db*"), *studio.home.rglob(".lock"), studio.home / ".gitkeep",
                studio.home / ".prefect" / "prefect.db", studio.home / "c2pa" / "ca.key",
                studio.folder / "summary.json"}
    plain = {studio.folder / name for name in ("the-lighthouse-keeper.mp4", "the-lighthouse-keeper.srt",
             "the-lighthouse-keeper.poster.png", "the-lighthouse-keeper.contact-sheet.png", "storyboard.json",
             "stems/narration.wav", "stems/music.wav")}  # fmt: skip
    recorded = {p for p in studio.home.rglob("*") if p.is_file()} - metadata - plain
    # clips 4 + 1, two films of 4 files, one storyboard, tracks 5 + 4, one narration line, two films' 2 stems
    assert len(recorded) == (4 + 1) + 2 * 4 + 1 + (5 + 4) + 1 + 2 * 2
    assert report["checked_files"] == len(recorded)
    assert report["published_copies"] == len(plain)
    assert "ok:" in format_verify(report)
    assert studio.catalog.find_film(first.key) is not None  # the first film is still intact in its own folder


def test_verify_lists_exactly_the_four_problems_and_repair_fixes_them(studio: Studio) -> None:
    made = studio.run()
    cat = studio.catalog
    lost = made.clips["s03/0"]
    corrupt = made.tracks["effects"].path
    stray = studio.folder / "clips" / "s02" / "notes.txt"
    partial = studio.folder / "clips" / "s01" / ".00-0123abcd.x7k2q.partial.mp4"

    # 1. a clip file deleted, an audio file changed, a file nobody recorded, a killed run's temporary
    lost.path.unlink()
    corrupt_bytes = b"X" + corrupt.read_bytes()[1:]
    corrupt.write_bytes(corrupt_bytes)
    write_media(stray, b"a note the user dropped here")
    write_media(partial, b"half a clip")
    report = cat.verify()
    assert not report["ok"]
    [row] = report["rows_without_files"]
    [(clip_id,)] = studio.rows("SELECT id FROM clips WHERE cache_key = :k", k=lost.cache_key)
    assert row["path"] == stored(studio, lost.path) and row["kind"] == "clip"
    assert row["rows"] == sorted([f"clips #{clip_id}", *(f"files #{i}" for (i,) in studio.rows(
        "SELECT id FROM files WHERE path = :p", p=stored(studio, lost.path)))])  # fmt: skip
    [mismatch] = report["hash_mismatches"]
    assert mismatch["path"] == stored(studio, corrupt) and mismatch["actual_sha256"] == sha256_file(corrupt)
    assert mismatch["expected_sha256"] == made.tracks["effects"].sha256
    assert mismatch["actual_bytes"] == len(corrupt_bytes)
    assert report["files_without_rows"] == [{"path": stored(studio, stray), "bytes": stray.stat().st_size}]
    assert [p["path"] for p in report["partial_files"]] == [stored(studio, partial)]
    assert report["file_rows_without_owner"] == []
    assert stray.exists() and partial.exists() and corrupt.exists()  # looking changes nothing
    assert "fix: run `storyflow catalog verify --repair`" in format_verify(report)

    # 2. repair: the two rows go, corrupt and stray files are moved aside, the temporary is deleted
    repaired = cat.verify(repair=True)
    assert [a["action"] for a in repaired["repaired"]].count("moved") == 2
    assert cat.find_clip(lost.cache_key) is None and cat.find_audio(made.tracks["effects"].cache_key) is None
    assert studio.rows("SELECT count(*) FROM clips WHERE cache_key = :k", k=lost.cache_key) == [(0,)]
    assert studio.rows("SELECT count(*) FROM audio_tracks WHERE kind = 'effects'") == [(0,)]
    assert studio.rows("SELECT count(*) FROM files WHERE path IN (:a, :b)", a=stored(studio, lost.path),
                       b=stored(studio, corrupt)) == [(0,)]  # fmt: skip
    [orphans] = list((studio.home / ".orphans").iterdir())
    assert (orphans / stored(studio, corrupt)).read_bytes() == corrupt_bytes and not corrupt.exists()
    assert (orphans / stored(studio, stray)).read_bytes() == b"a note the user dropped here" and not stray.exists()
    assert not partial.exists()
    # the film stays (its files are intact) but is never offered for reuse: it plays a removed clip
    assert studio.rows("SELECT cache_key FROM films WHERE id = :f", f=made.film_id) == [(None,)]
    assert cat.find_film(made.key) is None and made.film.path.exists()
    assert studio.rows("SELECT count(*) FROM film_clips WHERE film_id = :f", f=made.film_id) == [(3,)]

    # 3. all is well now; the next run makes the lost clip and the effects again, and a new film
    assert cat.verify()["ok"]
    again = studio.run()
    assert again.generations["clip"] == {"made": 1, "reused": 3} and again.generations["effects"]["made"] == 1
    assert again.generations["film"] == {"made": 1, "reused": 0}
    assert cat.verify()["ok"]


def test_a_changed_film_file_removes_the_film_and_moves_all_its_files_aside(studio: Studio) -> None:
    made = studio.run()
    made.film.poster.write_bytes(b"not the poster any more")  # also what the plain-named hard link shows

    report = studio.catalog.verify()
    assert [m["path"] for m in report["hash_mismatches"]] == [stored(studio, made.film.poster)]
    plain_poster = studio.folder / "the-lighthouse-keeper.poster.png"  # a hard link: it changed too
    assert [f["path"] for f in report["files_without_rows"]] == [stored(studio, plain_poster)]
    studio.catalog.verify(repair=True)

    # the film row, its links and files rows are gone; its run names no film; its files are kept aside
    assert studio.rows("SELECT count(*) FROM films") == [(0,)]
    assert studio.rows("SELECT count(*) FROM files WHERE owner_table = 'films'") == [(0,)]
    assert studio.rows("SELECT count(*) FROM film_clips") == [(0,)]
    assert studio.rows("SELECT film_id FROM runs WHERE id = :r", r=made.run_id) == [(None,)]
    [orphans] = list((studio.home / ".orphans").iterdir())
    for path in (made.film.path, made.film.subtitles, made.film.contact_sheet, made.film.storyboard_json,
                 made.film.stems["music"], studio.folder / "the-lighthouse-keeper.mp4"):  # fmt: skip
        assert not path.exists() and (orphans / stored(studio, path)).is_file()
    # what it was made of is untouched: clips, narration and tracks are still reusable
    assert all(studio.catalog.find_clip(c.cache_key) is not None for c in made.clips.values())
    assert studio.catalog.find_audio(made.tracks["narration-stem"].cache_key) is not None
    assert studio.catalog.verify()["ok"]
    # the next run makes the film again and nothing else
    tally = studio.run().generations
    assert tally.pop("film") == {"made": 1, "reused": 0}
    assert {kind: n["made"] for kind, n in tally.items()} == dict.fromkeys(tally, 0)
    assert studio.catalog.verify()["ok"]


def test_a_files_row_whose_owner_is_gone_is_reported_and_dropped(studio: Studio) -> None:
    studio.run()
    leftover, _ = write_media(studio.folder / "clips" / "s09" / "00-abc.mp4", b"a clip whose row was lost")
    with studio.catalog.engine.begin() as conn:
        conn.execute(text("INSERT INTO files (path, sha256, bytes, kind, owner_table, owner_id, created_at) "
                          "VALUES (:p, :s, 25, 'clip', 'clips', 9999, :t)"),
                     {"p": stored(studio, leftover), "s": sha256_file(leftover), "t": datetime.now(UTC)})  # fmt: skip
    [(row_id,)] = studio.rows("SELECT id FROM files WHERE owner_id = 9999")
    report = studio.catalog.verify()
    assert report["file_rows_without_owner"] == [
        {"path": stored(studio, leftover), "row": f"files #{row_id}", "owner": "clips #9999"}]
    # the file itself: no live row claims it
    assert [f["path"] for f in report["files_without_rows"]] == [stored(studio, leftover)]
    studio.catalog.verify(repair=True)
    assert studio.rows("SELECT count(*) FROM files WHERE owner_id = 9999") == [(0,)]
    assert not leftover.exists() and studio.catalog.verify()["ok"]
