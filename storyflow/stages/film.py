"""Clips + sound -> the film: stitched (or found), its stems beside it, signed, shown under plain names.

The film is a generation like any other: its cache key is the hash of everything its
files are made from (the storyboard, every clip, the mix and its stems, the spoken lines,
how they are joined, whether it is signed), and an identical film made before is reused
when every one of its files is intact. A new one is stitched into its own folder,
out_dir/films/<key12>/, so earlier films stay intact and traceable; the story's folder then
shows the newest under plain names (<slug>.mp4, .srt, poster, contact sheet, stems) as hard
links to those files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from storyflow import media
from storyflow.catalog import FILM, Generations
from storyflow.core.hashing import cache_key
from storyflow.core.models import AudioTrack, ClipChain, Film, NarrationLine, Storyboard
from storyflow.core.timeline import film_timeline
from storyflow.media import publish_text, sha256_bytes
from storyflow.stages import narrate, stitch, subtitles
from storyflow.stages.mix import MixResult
from storyflow.stages.plan import storyboard_json


def film_cache_key(
    board: Storyboard, chains: dict[str, ClipChain], sound: MixResult, lines: Sequence[NarrationLine], *,
    strategy: str, burn_subtitles: bool, signed: bool,
) -> str:  # fmt: skip
    """Everything the film's files are made from: storyboard, clips, sound, speech, and how they are joined."""
    return cache_key(
        "film", board=board.model_dump(mode="json"),
        clips=[[clip.sha256 for clip in chains[shot.id].clips] for shot in board.shots],
        mix=sound.mix.sha256, stems={kind: track.sha256 for kind, track in sound.stems.items()},
        narration=[(line.shot_id, line.sha256, line.offset) for line in lines],
        stitch=strategy, burn_subtitles=burn_subtitles, credentials=signed,
    )  # fmt: skip


def make_film(
    board: Storyboard,
    chains: dict[str, ClipChain],
    lines: Sequence[NarrationLine],
    sound: MixResult,
    tracks: Sequence[AudioTrack],
    out_dir: Path,
    door: Generations,
    *,
    strategy: str = "smart",
    burn_subtitles: bool = False,
    sign: Callable[[Film], Film] | None = None,
) -> tuple[Film, str]:
    """The film (or the identical one made before) and its cache key.

    `tracks` are every audio track it carries (music, effects, the mix and its stems); `sign`
    embeds Content Credentials in a new film and returns it with its new hash.
    """
    key = film_cache_key(board, chains, sound, lines, strategy=strategy, burn_subtitles=burn_subtitles,
                         signed=sign is not None)  # fmt: skip

    def make() -> Film:
        frames = {shot_id: chain.num_frames for shot_id, chain in chains.items()}
        cues = subtitles.speech_cues(narrate.line_times(board, list(lines), frames), film_timeline(board, frames))
        folder = out_dir / "films" / key[:12]
        board_text = storyboard_json(board)  # kept by content, so earlier films keep theirs
        board_path = out_dir / "storyboards" / f"{sha256_bytes(board_text.encode())[:12]}.json"
        film = stitch.stitch_film(board, chains, sound.mix.path, folder, strategy=strategy,
                                  storyboard_json=board_path, cues=cues, burn_subtitles=burn_subtitles)  # fmt: skip
        publish_text(board_path, board_text)  # only now: a run that fails before its film leaves no plan file
        stems = {kind: media.publish(track.path, folder / "stems" / f"{kind}.wav") for kind, track in sound.stems.items()}
        film = film.model_copy(update={"stems": stems, "loudness_lufs": round(sound.lufs, 2)})
        return sign(film) if sign is not None else film

    clips = [clip.cache_key for shot in board.shots for clip in chains[shot.id].clips]
    links = {"clips": clips, "audio": [track.cache_key for track in tracks], "narration": [line.cache_key for line in lines]}
    return door.reuse_or_make(FILM, key, make, links=links), key


def publish_film(film: Film, slug: str, out_dir: Path) -> dict[str, Path]:
    """Show the film under plain names in the story's folder: <slug>.mp4, .srt, poster, sheet, stems.

    They are hard links to the content-addressed copies the catalog records, so earlier
    films stay intact (and traceable) when a new one takes the plain names.
    """
    names = {
        "film": (film.path, out_dir / f"{slug}.mp4"),
        "subtitles": (film.subtitles, out_dir / f"{slug}.srt"),
        "poster": (film.poster, out_dir / f"{slug}.poster.png"),
        "contact_sheet": (film.contact_sheet, out_dir / f"{slug}.contact-sheet.png"),
        "storyboard": (film.storyboard_json, out_dir / "storyboard.json"),
        **{f"stem:{kind}": (path, out_dir / "stems" / f"{kind}.wav") for kind, path in film.stems.items()},
    }
    return {name: media.publish(source, dest) for name, (source, dest) in names.items()}
