"""Issue 3 in the catalog: seams, drift and end parents on clips, narration lines, loudness and stems,
and the shot-by-shot listing behind `storyflow shots FILM`. Real SQLite files, real files on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from storyflow.catalog import Catalog
from storyflow.cli.text import format_provenance, format_shots
from storyflow.core.errors import CatalogError
from storyflow.core.models import (
    SEAM_WARN_RATIO,
    AudioTrack,
    Clip,
    Film,
    NarrationLine,
    SeamScore,
)
from storyflow.media import sha256_file
from tests.catalog.test_catalog import Recorded, make_board, make_story, write_media

SMOOTH = SeamScore(jump=2.4, median=2.0, ratio=1.2)
JUMP = SeamScore(jump=15.0, median=2.5, ratio=6.0)  # a visible jump: over SEAM_WARN_RATIO


def long_board():
    """s01: 6 s (3 segments of 2 s); s02 continues s01; s03 a 4 s loop (2 segments)."""
    story = make_story()
    board = make_board(story)
    shots = (
        board.shots[0].model_copy(update={"duration": 6.0}),
        board.shots[1],
        board.shots[2].model_copy(update={"duration": 4.0, "loop": True}),
    )
    return board.model_copy(update={"shots": shots})


def speak(
    rec: Recorded, shot_id: str, text: str, *, offset: float, voice: str = "en-gb", rate: float = 150
) -> NarrationLine:
    """A narration line with a real WAV-named file under home/narration (not yet recorded)."""
    path, sha = write_media(rec.home / "narration" / f"{shot_id}.wav", f"RIFF speech {text}".encode() * 40)
    words = tuple((round(0.4 * i, 2), round(0.4 * i + 0.35, 2), word) for i, word in enumerate(text.split()))
    return NarrationLine(shot_id=shot_id, text=text, path=path, sha256=sha, cache_key=f"tts-{shot_id}-{voice}",
                         seconds=words[-1][1], offset=offset, rate=rate, voice=voice, backend="espeak-ng 1.52",
                         words=words, wall_s=0.05)  # fmt: skip


@dataclass
class Made:
    """A recorded film with a 3-segment chain, a continuing shot, a loop, narration, stems and loudness."""

    rec: Recorded
    clips: dict[str, Clip]  # "s01/0" -> clip
    lines: dict[str, NarrationLine]  # shot id -> line
    film: Film
    film_id: int
    earlier_run: int

    @property
    def catalog(self) -> Catalog:
        return self.rec.catalog


@pytest.fixture
def made(storyflow_home: Path):
    rec = Recorded(storyflow_home, board=long_board())
    cat = rec.catalog
    earlier_run = cat.start_run(rec.story.source, {})
    clips: dict[str, Clip] = {}

    def generate(shot_id: str, segment: int, strategy: str, parent: Clip | None = None, run_id: int | None = None,
                 **fields) -> Clip:  # fmt: skip
        clip = rec.clip(shot_id, segment, f"{shot_id}/{segment} frames".encode() * 64,
                        parent_sha256=parent.sha256 if parent else None)  # fmt: skip
        clip = clip.model_copy(update={"strategy": strategy, **fields})
        cat.record_clip(clip, prompt_id=rec.prompt_ids[shot_id], run_id=run_id or rec.run_id)
        clips[f"{shot_id}/{segment}"] = clip
        return clip

    # 1. s01: a 3-segment chain, the last seam a visible jump that drift correction could not hide
    first = generate("s01", 0, "text_to_video")
    second = generate("s01", 1, "continue_video", first, seam=SMOOTH)
    third = generate("s01", 2, "continue_video", second, seam=JUMP, drift="brightness +6.1 corrected")
    # 2. s02 starts on s01's last frame; s03 (made by an earlier run) loops back into its first frame
    generate("s02", 0, "image_to_video", third, seam=SeamScore(jump=2.0, median=2.0, ratio=1.0))
    loop_start = generate("s03", 0, "text_to_video", run_id=earlier_run)
    generate("s03", 1, "loop_close", loop_start, run_id=earlier_run, seam=SMOOTH, end_parent_sha256=loop_start.sha256,
             end_seam=SeamScore(jump=3.0, median=2.5, ratio=1.2))  # fmt: skip

    # 3. narration for s01 and s03 (s02 is silent), stems, and the film
    lines = {
        "s01": speak(rec, "s01", "Mara climbs the spiral stairs.", offset=0.4),
        "s03": speak(rec, "s03", "At dawn the sea is calm.", offset=0.8, voice="en-us", rate=132),
    }
    for line in lines.values():
        cat.record_narration(line, storyboard_id=rec.board_id, run_id=rec.run_id)
    folder = storyflow_home / "lighthouse"
    tracks = {}
    for kind in ("narration", "music", "effects", "mix"):
        path, sha = write_media(storyflow_home / "audio" / f"{kind}.wav", f"RIFF {kind}".encode() * 300)
        tracks[kind] = AudioTrack(kind=kind, path=path, sha256=sha, cache_key=f"{kind}-1", seconds=12.0,
                                  sample_rate=48_000, backend="procedural")  # fmt: skip
        cat.record_audio(tracks[kind], storyboard_id=rec.board_id, run_id=rec.run_id)
    # the music stem is the track's own file; the narration stem is a copy beside the film
    narration_stem, _ = write_media(folder / "stems" / "narration.wav", tracks["narration"].path.read_bytes())
    film_path, film_sha = write_media(folder / "lighthouse.mp4", b"the stitched film" * 500)
    for name in ("lighthouse.srt", "poster.png", "contact_sheet.png", "storyboard.json"):
        write_media(folder / name, name.encode() * 10)
    film = Film(slug="lighthouse", path=film_path, sha256=film_sha, subtitles=folder / "lighthouse.srt",
                poster=folder / "poster.png", contact_sheet=folder / "contact_sheet.png",
                storyboard_json=folder / "storyboard.json", num_frames=144, fps=12, width=160, height=90,
                stitch_strategy="smart: 6 copied", wall_s=1.5, loudness_lufs=-16.2,
                stems={"narration": narration_stem, "music": tracks["music"].path})  # fmt: skip
    film_id = cat.record_film(film, storyboard_id=rec.board_id, run_id=rec.run_id,
                              clip_keys=[c.cache_key for c in clips.values()],
                              audio_keys=[t.cache_key for t in tracks.values()],
                              narration_keys=[line.cache_key for line in lines.values()])  # fmt: skip
    yield Made(rec, clips, lines, film, film_id, earlier_run)
    cat.close()


# ---------------------------------------------------------------- clips: the new fields round-trip


def test_seam_drift_and_end_parent_round_trip_and_the_end_parent_is_linked(made: Made) -> None:
    cat = made.catalog
    for clip in made.clips.values():
        found = cat.find_clip(clip.cache_key)
        assert found is not None and found.model_copy(update={"reused": False}) == clip
    assert cat.find_clip(made.clips["s01/2"].cache_key).seam.visible
    assert cat.find_clip(made.clips["s01/0"].cache_key).seam is None  # nothing before the first segment
    with cat.engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT shot_key || '/' || segment, id FROM clips")).tuples().all())
        links = conn.execute(
            text("SELECT parent_clip_id, end_parent_clip_id FROM clips WHERE id = :i"), {"i": ids["s03/1"]}
        ).one()
    assert tuple(links) == (ids["s03/0"], ids["s03/0"])  # the loop continues s03/0's tail into its head


# ---------------------------------------------------------------- narration lines


def test_narration_lines_round_trip_and_are_reused_only_while_their_file_is_intact(made: Made) -> None:
    cat = made.catalog
    line = made.lines["s01"]
    found = cat.find_narration(line.cache_key)
    assert found is not None and found.reused and found.path == line.path
    assert found.model_copy(update={"reused": False}) == line  # words, offset, voice, rate... all kept
    assert found.words[1] == (0.4, 0.75, "climbs")
    assert cat.find_narration("never-spoken") is None
    with cat.engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind, owner_table FROM files WHERE path = 'narration/s01.wav'")).one()
    assert tuple(kinds) == ("narration", "narration_lines")

    # tampered (same size, other bytes) -> not trusted; spoken again under the same key -> found again
    line.path.write_bytes(b"X" + line.path.read_bytes()[1:])
    assert cat.find_narration(line.cache_key) is None
    again = speak(made.rec, "s01", "Mara climbs the spiral stairs, slowly.", offset=0.4)
    cat.record_narration(again.model_copy(update={"cache_key": line.cache_key}), storyboard_id=made.rec.board_id,
                         run_id=made.rec.run_id)  # fmt: skip
    assert cat.find_narration(line.cache_key).sha256 == sha256_file(line.path) != line.sha256
    # deleted -> not trusted
    line.path.unlink()
    assert cat.find_narration(line.cache_key) is None


def test_narration_of_a_shot_the_storyboard_does_not_have_is_refused(made: Made) -> None:
    stray = speak(made.rec, "s09", "Nobody planned this shot.", offset=0.0)
    with pytest.raises(CatalogError) as info:
        made.catalog.record_narration(stray, storyboard_id=made.rec.board_id, run_id=None)
    assert "s09" in info.value.message and "record_storyboard" in info.value.fix
    assert made.catalog.find_narration(stray.cache_key) is None


def test_a_film_with_narration_the_catalog_does_not_have_is_refused(made: Made) -> None:
    with pytest.raises(CatalogError) as info:
        made.catalog.record_film(made.film, storyboard_id=made.rec.board_id, run_id=None, clip_keys=[],
                                 audio_keys=[], narration_keys=["never-spoken"])  # fmt: skip
    assert "record_narration" in info.value.fix


# ---------------------------------------------------------------- storyflow shots FILM


def test_film_shots_lists_every_shot_with_its_chain_seams_and_narration(made: Made) -> None:
    tree = made.catalog.film_shots(made.film.path)
    assert json.loads(json.dumps(tree)) == tree
    assert tree["film"]["id"] == made.film_id and tree["film"]["loudness_lufs"] == -16.2
    shots = {shot["shot_key"]: shot for shot in tree["shots"]}
    assert list(shots) == ["s01", "s02", "s03"]
    assert shots["s02"]["continues_previous"] and shots["s03"]["loop"] and not shots["s01"]["loop"]
    assert [shot["seconds"] for shot in tree["shots"]] == [6.0, 2.0, 4.0]

    # each segment points at the one before it (s02 at s01's last), with path and seam
    played = [seg for shot in tree["shots"] for seg in shot["segments"]]
    expected = list(made.clips.values())
    assert [seg["path"] for seg in played] == [str(c.path) for c in expected]
    assert [seg["sha256"] for seg in played] == [c.sha256 for c in expected]
    assert [seg["parent_sha256"] for seg in played] == [c.parent_sha256 for c in expected]
    by_sha = {c.sha256: str(c.path) for c in expected}
    assert [seg["parent_path"] for seg in played] == [by_sha.get(c.parent_sha256) for c in expected]
    strategies = [seg["strategy"] for seg in shots["s01"]["segments"]]
    assert strategies == ["text_to_video", "continue_video", "continue_video"]
    assert [seg["seam"] and seg["seam"]["ratio"] for seg in shots["s01"]["segments"]] == [None, 1.2, 6.0]
    assert shots["s01"]["segments"][2]["drift"] == "brightness +6.1 corrected"
    assert sum(seg["seconds"] for seg in shots["s01"]["segments"]) == 6.0
    closing = shots["s03"]["segments"][1]
    assert closing["end_parent_sha256"] == made.clips["s03/0"].sha256
    assert closing["end_seam"] == {"jump": 3.0, "median": 2.5, "ratio": 1.2, "visible": False}  # the wrap-around
    assert closing["end_parent_path"] == str(made.clips["s03/0"].path)
    # s03 was made by an earlier run: this film reused it
    assert [seg["reused"] for seg in played] == [False, False, False, False, True, True]

    # narration lines under their shot
    assert shots["s02"]["narration"] == []
    assert shots["s03"]["narration"] == [
        {"text": "At dawn the sea is calm.", "offset": 0.8, "seconds": made.lines["s03"].seconds,
         "voice": "en-us", "rate": 132.0}
    ]  # fmt: skip


def test_film_shots_finds_the_film_from_its_other_files_and_refuses_a_clip(made: Made) -> None:
    assert made.catalog.film_shots(made.film.poster)["film"]["id"] == made.film_id
    assert made.catalog.film_shots(made.film.stems["narration"])["film"]["id"] == made.film_id
    with pytest.raises(CatalogError) as info:
        made.catalog.film_shots(made.clips["s01/0"].path)
    assert "not a film" in info.value.message and "storyflow provenance" in info.value.fix


def test_shots_table_has_a_line_per_segment_and_marks_the_visible_seam(made: Made) -> None:
    table = format_shots(made.catalog.film_shots(made.film.path))
    lines = table.splitlines()
    home = str(made.rec.home)
    assert home not in table  # paths are shown relative to the output folder

    # one line per segment, in playing order, naming its path, parent and strategy
    rows = []
    for clip in made.clips.values():
        relative = clip.path.relative_to(made.rec.home).as_posix()
        [row] = [i for i, line in enumerate(lines) if relative in line]
        rows.append(row)
        assert clip.strategy in lines[row] and f"{clip.seconds:.2f}" in lines[row]
        assert (clip.parent_sha256 or "-")[:12] in lines[row]
        assert (clip.seam is not None and clip.seam.visible) == ("VISIBLE" in lines[row])
        if clip.seam is not None:
            assert f"{clip.seam.ratio:.2f}" in lines[row]
    assert rows == sorted(rows)
    assert sum("VISIBLE" in line for line in lines) == 1
    assert "leads into " + made.clips["s03/0"].sha256[:12] in lines[rows[-1]]

    # narration after its shot's segments, before the next shot; loudness and the seam summary
    s01_line = next(i for i, line in enumerate(lines) if "Mara climbs the spiral stairs." in line)
    assert rows[2] < s01_line < rows[3] and "en-gb" in lines[s01_line] and "+0.40 s" in lines[s01_line]
    assert "-16.2 LUFS" in lines[0]
    assert f"1 visible seam(s): a jump over {SEAM_WARN_RATIO:g}x" in lines[-1]


# ---------------------------------------------------------------- provenance


def test_provenance_text_shows_seams_drift_narration_and_loudness(made: Made) -> None:
    tree = made.catalog.provenance(made.film.path)
    assert tree["loudness_lufs"] == -16.2
    assert [line["text"] for line in tree["shots"][0]["narration_lines"]] == ["Mara climbs the spiral stairs."]
    text_tree = format_provenance(tree)
    lines = text_tree.splitlines()
    shot = {key: next(i for i, line in enumerate(lines) if line.strip().startswith(f"shot {key}"))
            for key in ("s01", "s02", "s03")}  # fmt: skip

    # the visible seam is marked, under its own segment of s01
    jump = next(i for i, line in enumerate(lines) if "seam ratio 6.00 (jump 15.00, median 2.50)" in line)
    assert shot["s01"] < jump < shot["s02"] and "VISIBLE" in lines[jump]
    assert "VISIBLE" not in next(line for line in lines if "seam ratio 1.20" in line)
    assert any("drift: brightness +6.1 corrected" in line for line in lines[shot["s01"] : shot["s02"]])
    # narration (text, voice, rate, offset) under its shot
    spoken = next(i for i, line in enumerate(lines) if "'At dawn the sea is calm.'" in line)
    assert shot["s03"] < spoken
    assert "+0.80 s" in lines[spoken - 1] and "en-us" in lines[spoken - 1] and "132 wpm" in lines[spoken - 1]
    # the loop's closing segment names the clip it leads into; the film its loudness and stems
    assert f"end parent {made.clips['s03/0'].sha256[:12]}" in text_tree
    assert "loudness -16.2 LUFS" in text_tree
    assert f"narration stem {made.film.stems['narration']}" in text_tree


def test_provenance_of_a_loop_segment_shows_what_it_leads_into(made: Made) -> None:
    closing = made.clips["s03/1"]
    tree = made.catalog.provenance(closing.path)
    assert tree["end_parent"]["sha256"] == made.clips["s03/0"].sha256
    lines = format_provenance(tree).splitlines()
    leads = next(i for i, line in enumerate(lines) if line.strip() == "ends leading into")
    assert "segment 0 of s03" in lines[leads + 1]


def test_provenance_of_a_narration_file_and_of_stems(made: Made) -> None:
    tree = made.catalog.provenance(made.lines["s03"].path)
    assert tree["kind"] == "narration" and tree["shot"]["shot_key"] == "s03"
    assert tree["narration"]["voice"] == "en-us" and [f["id"] for f in tree["films"]] == [made.film_id]
    text_tree = format_provenance(tree)
    assert "'At dawn the sea is calm.'" in text_tree and "used by films" in text_tree

    # the copied stem leads to the film; the stem that is a track's own file stays that track's
    copied = made.catalog.provenance(made.film.stems["narration"])
    assert copied["kind"] == "film" and copied["file"]["kind"] == "stem"
    assert copied["stems"] == [{"kind": "narration", "path": str(made.film.stems["narration"]),
                                "sha256": sha256_file(made.film.stems["narration"])}]  # fmt: skip
    music = made.catalog.provenance(made.film.stems["music"])
    assert music["kind"] == "audio" and music["audio"]["kind"] == "music"
