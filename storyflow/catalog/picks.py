"""Which take of each shot a film plays (--candidates): the scorer's choice, or a person's.

A person's pick (`storyflow pick FILM SHOT TAKE`) stands until a person picks again: a
scorer's choice never replaces it. Every take's clips stay in `clips` (with their take
number), so swapping one in is a re-stitch, never a generation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from storyflow.catalog.schema import ClipRow, PickRow, PromptRow, ShotRow, utcnow

if TYPE_CHECKING:
    from storyflow.catalog.store import Store


def picks(store: Store, storyboard_id: int) -> dict[str, dict[str, Any]]:
    """{shot id: {"take", "picked_by", "scorer", "scores"}} for a storyboard's shots that have takes."""
    with store.reading() as s:
        rows = s.scalars(select(PickRow).where(PickRow.storyboard_id == storyboard_id)).all()
        return {row.shot_key: {"take": row.take, "picked_by": row.picked_by, "scorer": row.scorer,
                               "scores": row.scores} for row in rows}  # fmt: skip


def record_pick(store: Store, storyboard_id: int, shot_key: str, take: int, *, picked_by: str, scorer: str = "",
                scores: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
    """Record which take a shot plays; a scorer's choice never replaces a person's pick (its scores are kept)."""
    with store.writing() as s:
        row = s.scalars(select(PickRow).where(PickRow.storyboard_id == storyboard_id,
                                              PickRow.shot_key == shot_key)).first()  # fmt: skip
        if row is None:
            row = PickRow(storyboard_id=storyboard_id, shot_key=shot_key, take=take, picked_by=picked_by)
            s.add(row)
        elif row.picked_by == "person" and picked_by != "person":
            row.scores, row.scorer = scores if scores is not None else row.scores, scorer or row.scorer
            return
        row.take, row.picked_by, row.updated_at = take, picked_by, utcnow()
        if scores is not None:
            row.scores, row.scorer = scores, scorer


def takes_made(store: Store, storyboard_id: int, shot_key: str) -> list[int]:
    """The take numbers the catalog holds clips of, for one shot of a storyboard."""
    with store.reading() as s:
        found = s.scalars(
            select(ClipRow.take).distinct()
            .join(PromptRow, ClipRow.prompt_id == PromptRow.id)
            .join(ShotRow, PromptRow.shot_id == ShotRow.id)
            .where(ShotRow.storyboard_id == storyboard_id, ShotRow.shot_key == shot_key)
        ).all()  # fmt: skip
        return sorted(found)


def film_for_pick(store: Store, ref: str) -> dict[str, Any]:
    """The film `ref` names (its id, a file of it, or its story's folder name: the newest there), with its
    storyboard and the parameters of the run that made it; InputError naming the fix when there is none."""
    from pathlib import Path

    from storyflow.catalog.schema import FilmRow, RunRow, StoryboardRow
    from storyflow.core.errors import InputError
    from storyflow.media import sha256_file

    with store.reading() as s:
        query = select(FilmRow).order_by(FilmRow.id.desc())
        if ref.isdigit():
            film = s.get(FilmRow, int(ref))
        elif Path(ref).is_file():  # the published name is a link to the recorded file: match by content
            film = s.scalars(query.where(FilmRow.sha256 == sha256_file(Path(ref)))).first()
        else:
            film = s.scalars(query.where(FilmRow.slug == ref)).first()
        if film is None:
            folders = sorted({slug for slug in s.scalars(select(FilmRow.slug).distinct()) if slug})
            known = f" (the catalog has films of {', '.join(folders[:8])})" if folders else ""
            raise InputError(f"no film '{ref}' in the catalog{known}",
                             fix="name it by its id, its file, or its story's folder (see `storyflow catalog films`)")  # fmt: skip
        run = s.get(RunRow, film.run_id) if film.run_id is not None else None
        if run is None or not run.params or "story" not in run.params:
            raise InputError(f"film {film.id} does not say which run made it, so it cannot be stitched again",
                             fix="make it again with `storyflow film STORY --candidates N`, then pick")  # fmt: skip
        board = s.get(StoryboardRow, film.storyboard_id)
        return {"id": film.id, "storyboard_id": film.storyboard_id, "params": dict(run.params),
                "storyboard": board.data if board is not None else {"shots": []}}
