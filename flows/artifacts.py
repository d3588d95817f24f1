"""What the Prefect UI shows of a film: artifacts of its own, under keys named after it.

Every key starts with the film's slug, so each film keeps its own history on the UI's
Artifacts page (one key shared by every film would show only the latest film):

    <slug>-storyboard   a table: every shot, its camera, length, mood, who is in it, its narration
    <slug>-progress     how much of the film's picture is made or found, updated as shots finish
    <slug>-pictures     the poster and the contact sheet, inline (they are local files: a
                        browser showing the UI could not load them from the disk)
    <slug>-summary      what was made and reused, what it cost, seams, sound, where the files are
    <slug>-film         a link to the film file

The artifacts are made by the flow run (and so shown on its page); they never hold a secret.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from storyflow.core.models import Storyboard

PICTURE_WIDTH = 480  # pixels: the inline copies of the poster and contact sheet


def key(slug: str, what: str) -> str:
    """An artifact key of the film's own: lowercase letters, digits and dashes."""
    return f"{slug[:48].strip('-') or 'film'}-{what}"


def storyboard_table(board: Storyboard) -> None:
    """The storyboard as a table, as soon as it is planned."""
    rows = [{"shot": shot.id, "camera": ", ".join(shot.directives) or shot.camera.value,
             "seconds": round(shot.duration, 2), "mood": shot.mood, "who": ", ".join(shot.characters),
             "continues": "yes" if shot.continues_previous else "", "narration": shot.narration or shot.action}
            for shot in board.shots]  # fmt: skip
    create_table_artifact(rows, key=key(board.slug, "storyboard"),
                          description=f"{board.title}: {len(board.shots)} shots, {board.width}x{board.height} "
                          f"@ {board.fps} fps")  # fmt: skip


class Progress:
    """How much of the film's picture is made or found (frames, every take counted); moved as each shot finishes."""

    def __init__(self, board: Storyboard, frames: dict[str, int]) -> None:
        self.frames = frames  # shot id -> the frames its takes need
        self.total = max(1, sum(frames.values()))
        self.done = 0
        self.id = create_progress_artifact(0.0, key=key(board.slug, "progress"),
                                           description=f"{board.title}: picture made or found")  # fmt: skip

    def shot_finished(self, shot_id: str) -> None:
        self.done += self.frames.get(shot_id, 0)
        update_progress_artifact(self.id, round(100 * min(self.done, self.total) / self.total, 1))


def film(summary: dict[str, Any], slug: str) -> None:
    """The finished film: its pictures, its summary, a link to it."""
    title = summary["title"]
    pictures = [f"![{name}]({_inline(Path(summary[field]))})" for name, field in
                (("poster", "poster"), ("contact sheet", "contact_sheet")) if Path(summary[field]).is_file()]  # fmt: skip
    create_markdown_artifact("\n\n".join([f"# {title}", *pictures]), key=key(slug, "pictures"),
                             description=f"{title}: poster and contact sheet")  # fmt: skip
    create_markdown_artifact(summary_markdown(summary), key=key(slug, "summary"),
                             description=f"{title}: what was made, reused and paid")  # fmt: skip
    create_link_artifact(Path(summary["film"]).resolve().as_uri(), link_text=Path(summary["film"]).name,
                         key=key(slug, "film"), description=f"{title}: the film")  # fmt: skip


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run's summary for people: the film, then one line per shot, then cost, cache, seams and sound."""
    rows = "\n".join(
        f"| {s['id']} | {s['camera']} | {s['seconds']:.1f} | {len(s['segments'])} | {s['clips_generated']} | "
        f"{s['clips_reused']} | {_takes(s)} | {_seams(s)} | {s['narration'][:60].replace('|', '/')} |"
        for s in summary["shots"]
    )
    cost = summary.get("cost_usd")
    paid = (f"cost: ${cost:.2f} this run (estimated ${summary.get('estimate_usd') or 0:.2f}), "
            f"${summary.get('film_cost_usd') or 0:.2f} for what the film plays" if cost is not None
            else "cost: nothing billed")  # fmt: skip
    files = "\n".join(f"- {name}: `{summary[name]}`" for name in ("film", "subtitles", "poster", "contact_sheet",
                                                                   "storyboard"))  # fmt: skip
    return (f"# {summary['title']}\n\n{summary['duration_s']:.1f} s, {summary['width']}x{summary['height']} "
            f"@ {summary['fps']} fps; {summary['clips_generated']} clips generated, {summary['clips_reused']} "
            f"reused{'; the film itself reused' if summary.get('film_reused') else ''}; {paid}; sound "
            f"{summary['sound']['loudness_lufs']:.1f} LUFS.\n\n"
            "| shot | camera | s | segments | generated | reused | take | seams | narration |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + rows + f"\n\n{files}\n")


def _takes(shot: dict[str, Any]) -> str:
    takes = shot.get("takes") or []
    return f"{shot['take']} of {len(takes)} ({shot['picked_by']})" if len(takes) > 1 else "-"


def _seams(shot: dict[str, Any]) -> str:
    return ", ".join(f"{seg['seam']['ratio']:.2f}" for seg in shot["segments"] if seg["seam"]) or "-"


def _inline(path: Path) -> str:
    """A picture as a data URI, scaled down to PICTURE_WIDTH."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.width > PICTURE_WIDTH:
            image = image.resize((PICTURE_WIDTH, round(image.height * PICTURE_WIDTH / image.width)))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
