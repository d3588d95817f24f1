"""Provenance: from any output file back to its story, by path or by content, as JSON and as text."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from storyflow.catalog import Catalog
from storyflow.cli.text import format_provenance
from storyflow.core.errors import CatalogError
from storyflow.core.models import AudioTrack, Clip, Film
from tests.catalog.test_catalog import Recorded, write_media


@dataclass
class Made:
    """A recorded film and everything it was made of."""

    rec: Recorded
    clips: dict[str, Clip]  # "s01/0" -> clip
    music: AudioTrack
    film: Film
    film_id: int

    @property
    def catalog(self) -> Catalog:
        return self.rec.catalog


@pytest.fixture
def made(storyflow_home: Path):
    """Story -> 3 shots -> s01 in two segments, s02 continuing s01, s03 alone -> music -> film."""
    rec = Recorded(storyflow_home)
    cat = rec.catalog
    clips: dict[str, Clip] = {}

    def generate(shot_id: str, segment: int, parent: Clip | None = None, backend: str = "animatic") -> Clip:
        clip = rec.clip(shot_id, segment, f"{shot_id}/{segment} frames".encode() * 64,
                        parent_sha256=parent.sha256 if parent else None, backend=backend)  # fmt: skip
        cost = 0.01 if backend == "veo" else None  # a hosted backend reports what the call cost, with the clip
        clip = clip.model_copy(update={"cost_usd": cost})
        cat.record_clip(clip, prompt_id=rec.prompt_ids[shot_id], run_id=rec.run_id)
        clips[f"{shot_id}/{segment}"] = clip
        return clip

    first = generate("s01", 0)
    second = generate("s01", 1, parent=first)
    generate("s02", 0, parent=second)  # a continuing shot starts from s01's last frame
    generate("s03", 0, backend="veo")

    path, sha = write_media(storyflow_home / "lighthouse" / "audio" / "music.wav", b"RIFF music bed" * 200)
    music = AudioTrack(kind="music", path=path, sha256=sha, cache_key="music-1", seconds=6.0,
                       sample_rate=48_000, backend="procedural", options={"tempo": 80})  # fmt: skip
    cat.record_audio(music, storyboard_id=rec.board_id, run_id=rec.run_id)

    folder = storyflow_home / "lighthouse"
    film_path, film_sha = write_media(folder / "lighthouse.mp4", b"the stitched film" * 500)
    for name, content in [("lighthouse.srt", b"1\n00:00:00,000 --> 00:00:02,000\nNarration line 1.\n"),
                          ("poster.png", b"\x89PNG poster"), ("contact_sheet.png", b"\x89PNG sheet"),
                          ("storyboard.json", rec.board.model_dump_json().encode())]:  # fmt: skip
        write_media(folder / name, content)
    film = Film(slug="lighthouse", path=film_path, sha256=film_sha, subtitles=folder / "lighthouse.srt",
                poster=folder / "poster.png", contact_sheet=folder / "contact_sheet.png",
                storyboard_json=folder / "storyboard.json", num_frames=72, fps=12, width=160, height=90,
                stitch_strategy="smart: 3 copied, 1 re-encoded", wall_s=1.5)  # fmt: skip
    film_id = cat.record_film(film, storyboard_id=rec.board_id, run_id=rec.run_id,
                              clip_keys=[c.cache_key for c in clips.values()], audio_keys=["music-1"])  # fmt: skip
    cat.finish_run(rec.run_id, "completed", story_id=rec.story_id, storyboard_id=rec.board_id, film_id=film_id,
                   clips_generated=4, timings={"plan": 0.01, "generate": 1.0, "stitch": 1.5})  # fmt: skip
    yield Made(rec, clips, music, film, film_id)
    cat.close()


def test_film_provenance_names_every_shot_its_prompt_and_clips(made: Made) -> None:
    tree = made.catalog.provenance(made.film.path)
    assert json.loads(json.dumps(tree)) == tree  # JSON-able as it is
    assert tree["kind"] == "film" and tree["path"] == str(made.film.path) and tree["sha256"] == made.film.sha256
    assert tree["duration"] == 6.0 and tree["size"] == "160x90"
    assert tree["story"]["title"] == "The Lighthouse Keeper" and tree["story"]["sha256"] == made.rec.story.sha256
    assert tree["storyboard"]["seed"] == 7 and tree["storyboard"]["shots"] == 3
    assert [shot["shot_key"] for shot in tree["shots"]] == ["s01", "s02", "s03"]
    for shot in tree["shots"]:
        expected = made.rec.prompts[shot["shot_key"]]
        assert shot["prompt"]["text"] == expected.prompt
        assert shot["prompt"]["template_sha256"] == expected.template_sha256
        recorded = [c for key, c in made.clips.items() if key.startswith(shot["shot_key"])]
        assert [c["sha256"] for c in shot["clips"]] == [c.sha256 for c in recorded]
        assert [c["path"] for c in shot["clips"]] == [str(c.path) for c in recorded]
    s02 = tree["shots"][1]
    assert s02["continues_previous"] and s02["clips"][0]["parent_sha256"] == made.clips["s01/1"].sha256
    assert tree["shots"][0]["camera"] == "pan left"
    assert [a["backend"] for a in tree["audio"]] == ["procedural"]
    assert tree["cost_usd"] == pytest.approx(0.01)
    assert tree["run"]["status"] == "completed" and tree["run"]["clips_generated"] == 4
    assert tree["file"] == {
        "kind": "film", "path": str(made.film.path), "recorded_path": str(made.film.path), "sha256": made.film.sha256,
        "bytes": made.film.path.stat().st_size, "matched_by": "path", "on_disk": "ok",
    }  # fmt: skip


@pytest.mark.parametrize(
    "attr, kind",
    [
        ("poster", "poster"),
        ("subtitles", "subtitles"),
        ("contact_sheet", "contact_sheet"),
        ("storyboard_json", "storyboard"),
    ],
)
def test_files_beside_the_film_lead_to_the_film(made: Made, attr: str, kind: str) -> None:
    tree = made.catalog.provenance(getattr(made.film, attr))
    assert tree["kind"] == "film" and tree["id"] == made.film_id
    assert tree["file"]["kind"] == kind and tree["file"]["path"] == str(getattr(made.film, attr))


def test_relative_paths_resolve_from_the_working_folder_or_home(made: Made, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(made.rec.home.parent)
    assert made.catalog.provenance(Path("outputs/lighthouse/lighthouse.mp4"))["id"] == made.film_id
    assert made.catalog.provenance("lighthouse/lighthouse.mp4")["id"] == made.film_id  # relative to home


def test_clip_provenance_walks_up_its_parents_to_the_story_and_names_its_films(made: Made) -> None:
    tree = made.catalog.provenance(made.clips["s02/0"].path)
    assert tree["kind"] == "clip" and tree["clip"]["sha256"] == made.clips["s02/0"].sha256
    assert [p["sha256"] for p in tree["parents"]] == [made.clips["s01/1"].sha256, made.clips["s01/0"].sha256]
    assert tree["parents"][-1]["parent_sha256"] is None  # the chain starts from text
    assert tree["prompt"]["text"] == made.rec.prompts["s02"].prompt
    assert tree["shot"]["shot_key"] == "s02" and tree["story"]["title"] == "The Lighthouse Keeper"
    assert [f["id"] for f in tree["films"]] == [made.film_id]
    assert tree["clip"]["backend"] == "animatic" and tree["clip"]["options"] == {"detail": 2}


def test_audio_provenance_names_storyboard_story_and_films(made: Made) -> None:
    tree = made.catalog.provenance(made.music.path)
    assert tree["kind"] == "audio" and tree["audio"]["backend"] == "procedural"
    assert tree["storyboard"]["id"] == made.rec.board_id and tree["story"]["title"] == "The Lighthouse Keeper"
    assert [f["path"] for f in tree["films"]] == [str(made.film.path)]


def test_a_moved_or_copied_file_is_found_by_its_content(made: Made, tmp_path: Path) -> None:
    moved = tmp_path / "downloads" / "renamed.mp4"
    moved.parent.mkdir()
    shutil.move(made.clips["s01/1"].path, moved)
    tree = made.catalog.provenance(moved)
    assert tree["kind"] == "clip" and tree["clip"]["segment"] == 1 and tree["clip"]["shot_key"] == "s01"
    assert tree["file"]["matched_by"] == "sha256" and tree["file"]["path"] == str(moved)
    assert tree["file"]["recorded_path"] == str(made.clips["s01/1"].path)

    copy = shutil.copy(made.film.path, tmp_path / "share.mp4")
    assert made.catalog.provenance(copy)["id"] == made.film_id


def test_a_changed_file_is_reported_as_changed(made: Made) -> None:
    made.film.path.write_bytes(b"re-encoded by someone else")
    tree = made.catalog.provenance(made.film.path)
    assert tree["file"]["on_disk"] == "changed" and tree["file"]["matched_by"] == "path"
    assert "file changed" in format_provenance(tree)


def test_unknown_files_raise_an_error_with_a_fix(made: Made, tmp_path: Path) -> None:
    stranger = tmp_path / "holiday.mp4"
    stranger.write_bytes(b"not made by storyflow")
    with pytest.raises(CatalogError) as info:
        made.catalog.provenance(stranger)
    assert "no record" in info.value.message and "STORYFLOW_HOME" in info.value.fix
    with pytest.raises(CatalogError) as info:
        made.catalog.provenance(tmp_path / "missing.mp4")
    assert "does not exist" in info.value.message and info.value.fix


def test_record_film_refuses_clips_the_catalog_does_not_have(made: Made) -> None:
    with pytest.raises(CatalogError) as info:
        made.catalog.record_film(made.film, storyboard_id=made.rec.board_id, run_id=None,
                                 clip_keys=["never-recorded"], audio_keys=[])  # fmt: skip
    assert "record_clip" in info.value.fix
    assert [f["id"] for f in made.catalog.films()] == [made.film_id]


def test_films_listing(made: Made) -> None:
    [film] = made.catalog.films()
    assert film["title"] == "The Lighthouse Keeper" and film["path"] == str(made.film.path)
    assert film["duration_s"] == 6.0 and film["run_id"] == made.rec.run_id


def test_text_tree_reads_from_story_to_film(made: Made) -> None:
    text = format_provenance(made.catalog.provenance(made.film.path))
    clip_hashes = [clip.sha256 for clip in made.clips.values()]
    for needle in ["The Lighthouse Keeper", "s01", "s02", "s03", "animatic", "veo", "procedural",
                   *(sha[:12] for sha in clip_hashes), made.rec.story.sha256[:12], made.film.sha256[:12],
                   "seed 7", '"detail":2', "smart: 3 copied", "run #"]:  # fmt: skip
        assert needle in text, needle
    assert not any(sha in text for sha in clip_hashes)  # hashes are shortened
    body = text.split("\n", 1)[1]  # after the header line naming the file asked about
    order = [body.index(s) for s in ("story 'The Lighthouse Keeper'", "storyboard #", "shot s01", "prompt ",
                                     "segment 0 of s01", "shot s02", "audio", "film ", "run #")]  # fmt: skip
    assert order == sorted(order)
    # every shot's prompt text is in there, indented under its shot
    for prompt in made.rec.prompts.values():
        assert prompt.prompt in text


def test_text_tree_of_a_clip_shows_its_parent_chain(made: Made) -> None:
    text = format_provenance(made.catalog.provenance(made.clips["s02/0"].path))
    lines = text.splitlines()
    s02 = next(i for i, line in enumerate(lines) if "segment 0 of s02" in line)
    s01_1 = next(i for i, line in enumerate(lines) if "segment 1 of s01" in line)
    s01_0 = next(i for i, line in enumerate(lines) if "segment 0 of s01" in line)
    assert s02 < s01_1 < s01_0
    assert "conditioned on, nearest first" in lines[s02 + 1 : s01_1][-1]
    indent = [len(lines[i]) - len(lines[i].lstrip()) for i in (s02, s01_1, s01_0)]
    assert indent[0] < indent[1] == indent[2]  # the parents, nearest first, under the clip
    assert "used by films" in text and str(made.film.path) in text
