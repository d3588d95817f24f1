"""Every line storyflow prints for people: one formatter per kind of output, next to the CLI.

The stages, flows and the catalog hand back plain data (summaries, provenance trees,
listings, reports); turning that into text for a terminal happens here and nowhere else,
so the same thing is always said the same way.
"""

from __future__ import annotations

from pathlib import Path

from storyflow.core.hashing import canonical_json, short
from storyflow.core.printable import strip_controls


# ---------------------------------------------------------------- provenance (storyflow provenance FILE)


def format_provenance(tree: dict) -> str:
    """The tree as indented text: story -> storyboard -> shots -> prompt -> clips -> audio -> film -> run."""
    out = _Lines()
    kind = tree["kind"]
    file = tree.get("file")
    if file:
        how = "found by path" if file["matched_by"] == "path" else "found by content (sha256)"
        out.add(0, f"provenance of {file['kind']} {file['path']}  ({how}, file {file['on_disk']})")
        if file["recorded_path"] != file["path"]:
            out.add(1, f"recorded at {file['recorded_path']}")
    _story(out, tree["story"])
    _storyboard(out, tree["storyboard"])
    if kind == "film":
        for shot in tree["shots"]:
            _shot(out, shot, 2)
            _prompt(out, shot["prompt"], 3)
            if shot["clips"]:
                out.add(3, "clips")
            for clip in shot["clips"]:
                _clip(out, clip, 4)
            for line in shot.get("narration_lines", []):
                _narration(out, line, 3)
        _audio_list(out, tree["audio"], 1)
        _film(out, tree)
    elif kind == "clip":
        _shot(out, tree["shot"], 2)
        _prompt(out, tree["prompt"], 3)
        out.add(3, "clip")
        _clip(out, tree["clip"], 4)
        if tree.get("end_parent"):
            out.add(4, "ends leading into")
            _clip(out, tree["end_parent"], 5)
        if tree["parents"]:
            out.add(4, "conditioned on, nearest first")
        for parent in tree["parents"]:
            if parent.get("recorded", True):
                _clip(out, parent, 5)
            else:
                out.add(5, f"sha256 {short(parent['sha256'])} (frames the catalog has no clip for)")
        _used_by(out, tree["films"])
    elif kind == "narration":
        if tree["shot"] is not None:
            _shot(out, tree["shot"], 2)
        _narration(out, tree["narration"], 3)
        out.add(4, f"path {tree['narration']['path']}")
        _used_by(out, tree["films"])
    else:
        _audio_list(out, [tree["audio"]], 1)
        _used_by(out, tree["films"])
    _run(out, tree.get("run"))
    return out.text()


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "? s"


def _options(value: dict | None) -> str:
    return canonical_json(value) if value else "{}"


def _story(out: _Lines, story: dict) -> None:
    out.add(0, f"story {story['title']!r}  sha256 {short(story['sha256'])}  from {story['source']}")


def _storyboard(out: _Lines, board: dict) -> None:
    model = board.get("planner_model") or ""
    planner = (board["planner"] or board["llm"]) + (f" ({model})" if model and model != board["planner"] else "")
    origin = "" if board.get("origin", "planned") == "planned" else f"  {board['origin']}"
    covered = f"  covers {board['coverage']:.0%}" if board.get("coverage") is not None else ""
    out.add(
        1,
        f"storyboard #{board['id']}  planned by {planner}{origin}  seed {board['seed']}  {board['shots']} shots  "
        f"{board['size']} @ {board['fps']} fps{covered}  sha256 {short(board['sha256'])}  {_seconds(board['wall_s'])}",
    )
    if board["llm_options"]:
        out.add(2, f"llm options {_options(board['llm_options'])}")
    if board.get("usage"):
        out.add(2, f"llm usage {_usage(board['usage'])}")


def _usage(usage: dict) -> str:
    """'2 calls (1 repair), 1,234 + 567 tokens, 3.2 s, $0.0012'."""
    parts = [f"{usage['calls']} call{'s' if usage['calls'] != 1 else ''}"
             + (f" ({usage['repairs']} repair{'s' if usage['repairs'] != 1 else ''})" if usage.get("repairs") else "")]  # fmt: skip
    if usage.get("prompt_tokens") is not None:
        parts.append(f"{usage['prompt_tokens']:,} + {usage.get('completion_tokens') or 0:,} tokens")
    parts.append(f"{usage.get('latency_s', 0):.1f} s")
    if usage.get("cost_usd") is not None:
        parts.append(f"${usage['cost_usd']:.4f}")
    return ", ".join(parts)


def _shot(out: _Lines, shot: dict, depth: int) -> None:
    extra = "  continues previous" if shot["continues_previous"] else ""
    extra += "  loops" if shot.get("loop") else ""
    out.add(
        depth,
        f"shot {shot['shot_key']}  {', '.join(shot.get('directives') or [shot['camera']])}  "
        f"{_seconds(shot['duration'])}  mood {shot['mood']}  "
        f"-> {shot['transition']}{extra}  sha256 {short(shot['sha256'])}",
    )
    if shot["narration"]:
        out.add(depth + 1, f"narration: {shot['narration']!r}")


def _prompt(out: _Lines, prompt: dict | None, depth: int) -> None:
    if prompt is None:
        out.add(depth, "prompt: none recorded")
        return
    template = "no template"
    if prompt["template"]:
        template = f"template {prompt['template']} (sha256 {short(prompt['template_sha256'])})"
    by = prompt["llm"] or "?"
    by += f" ({prompt['model']})" if prompt.get("model") and prompt["model"] != prompt["llm"] else ""
    out.add(depth, f"prompt  by {by}  {template}  sha256 {short(prompt['sha256'])}  {_seconds(prompt['wall_s'])}")
    if prompt.get("usage"):
        out.add(depth + 1, f"llm usage {_usage(prompt['usage'])}")
    out.add(depth + 1, f"text: {prompt['text']!r}")
    if prompt["negative"]:
        out.add(depth + 1, f"negative: {prompt['negative']!r}")


def _clip(out: _Lines, clip: dict, depth: int) -> None:
    cost = f"  ${clip['cost_usd']:.4f}" if clip.get("cost_usd") is not None else ""
    out.add(
        depth,
        f"segment {clip['segment']} of {clip['shot_key']}  {clip['strategy']}  backend {clip['backend']}  "
        f"model {clip['model']}  seed {clip['seed']}  {clip['num_frames']} frames {clip['size']} @ {clip['fps']} fps  "
        f"sha256 {short(clip['sha256'])}  made in {_seconds(clip['wall_s'])}{cost}",
    )
    if clip["parent_sha256"]:
        out.add(depth + 1, f"parent {short(clip['parent_sha256'])}  conditioned on {clip['conditioning'] or '?'}")
    if clip.get("end_parent_sha256"):
        out.add(depth + 1, f"end parent {short(clip['end_parent_sha256'])}  (ends leading into its first frames)")
    if clip.get("seam"):
        out.add(depth + 1, f"seam {format_seam(clip['seam'])}")
    if clip.get("end_seam"):
        out.add(depth + 1, f"end seam (into its end parent) {format_seam(clip['end_seam'])}")
    if clip.get("drift"):
        out.add(depth + 1, f"drift: {clip['drift']}")
    for correction in clip.get("corrections") or ():
        out.add(depth + 1, f"corrected: {correction}")
    out.add(depth + 1, f"options {_options(clip['options'])}")
    out.add(depth + 1, f"path {clip['path']}")


def _model(item: dict) -> str:
    """'  model X' where the row recorded one (rows made before 0004 did not)."""
    return f"  model {item['model']}" if item.get("model") else ""


def format_seam(seam: dict) -> str:
    """'ratio 1.12 (jump 3.40, median 3.04)', with VISIBLE when the jump shows."""
    from storyflow.core.models import SEAM_WARN_RATIO

    mark = f"  VISIBLE (over {SEAM_WARN_RATIO:g}x ordinary change)" if seam["ratio"] > SEAM_WARN_RATIO else ""
    return f"ratio {seam['ratio']:.2f} (jump {seam['jump']:.2f}, median {seam['median']:.2f}){mark}"


def _narration(out: _Lines, line: dict, depth: int) -> None:
    out.add(
        depth,
        f"narration line  +{line['offset']:.2f} s into the shot  {_seconds(line['seconds'])} of speech  "
        f"voice {line['voice']}  {line['rate']:g} wpm  backend {line['backend']}{_model(line)}  sha256 {short(line['sha256'])}",
    )
    out.add(depth + 1, f"text: {line['text']!r}")


def _audio_list(out: _Lines, tracks: list[dict], depth: int) -> None:
    out.add(depth, "audio" if tracks else "audio: none recorded")
    for track in tracks:
        out.add(
            depth + 1,
            f"{track['kind']}  backend {track['backend']}{_model(track)}  {_seconds(track['seconds'])}  {track['sample_rate']} Hz  "
            f"sha256 {short(track['sha256'])}  made in {_seconds(track['wall_s'])}",
        )
        out.add(depth + 2, f"options {_options(track['options'])}")
        out.add(depth + 2, f"path {track['path']}")


def _film(out: _Lines, film: dict) -> None:
    cost = f"  clips cost ${film['cost_usd']:.4f}" if film.get("cost_usd") is not None else ""
    loudness = f"  loudness {film['loudness_lufs']:.1f} LUFS" if film.get("loudness_lufs") is not None else ""
    out.add(
        0,
        f"film {film['path']}  sha256 {short(film['sha256'])}  {_seconds(film['duration'])}  {film['size']} @ "
        f"{film['fps']} fps{loudness}  stitch: {film['stitch']}  made {film['created']} in "
        f"{_seconds(film['wall_s'])}{cost}",
    )
    for name, item in film["outputs"].items():
        sha = f"  sha256 {short(item['sha256'])}" if item.get("sha256") else ""
        out.add(1, f"{name.replace('_', ' ')} {item['path']}{sha}")
    for stem in film.get("stems", []):
        out.add(1, f"{stem['kind']} stem {stem['path']}  sha256 {short(stem['sha256'])}")
    if film.get("cache_key"):
        out.add(1, f"cache key {short(film['cache_key'])}")
    out.add(1, format_credentials(film.get("credentials")))


def format_credentials(credentials: dict | None) -> str:
    """'content credentials (C2PA): signed by X, issued by Y, manifest Z', saying when only this machine trusts them."""
    if not credentials:
        return "content credentials (C2PA): none recorded"
    parts = [f"signed by {credentials.get('signer') or '?'}"]
    if credentials.get("issuer"):
        parts.append(f"issued by {credentials['issuer']}")
    if credentials.get("manifest_label"):
        parts.append(f"manifest {credentials['manifest_label']}")
    if credentials.get("trusted_note"):
        parts.append(credentials["trusted_note"])
    elif credentials.get("self_made_ca"):
        parts.append("by storyflow's own local CA: untrusted outside this machine")
    return "content credentials (C2PA): " + ", ".join(parts)


def _used_by(out: _Lines, films: list[dict]) -> None:
    out.add(0, "used by films" if films else "used by no film yet")
    for film in films:
        out.add(1, f"film #{film['id']} {film['path']}  sha256 {short(film['sha256'])}  made {film['created']}")


def _run(out: _Lines, run: dict | None) -> None:
    if run is None:
        return
    timings = ", ".join(f"{k} {_seconds(v)}" for k, v in (run["timings"] or {}).items() if isinstance(v, int | float))
    out.add(
        0,
        f"run #{run['id']}  {run['status']}  on {run['hostname']} (pid {run['pid']})  started {run['started_at']}  "
        f"{run['clips_generated']} clips generated, {run['clips_reused']} reused",
    )
    if run.get("generations"):
        tally = ", ".join(f"{kind} {n['made']} made / {n['reused']} reused" for kind, n in run["generations"].items())
        out.add(1, f"generations: {tally}")
    if timings:
        out.add(1, f"timings: {timings}")
    if run["error"]:
        out.add(1, f"error: {run['error']}")


# ---------------------------------------------------------------- a film shot by shot (storyflow shots FILM)

COLUMNS = ("shot", "seg", "path", "parent", "strategy", "seconds", "seam")


def format_shots(tree: dict) -> str:
    """The film's segments as a table: one line per segment, narration under its shot, VISIBLE seams marked."""
    home = Path(tree["home"])
    from storyflow.core.models import SEAM_WARN_RATIO

    warn = tree.get("seam_warn_ratio", SEAM_WARN_RATIO)
    film = tree["film"]

    # 1. the rows: a segment, or a shot's narration line (printed across the columns)
    rows: list[tuple[str, ...] | str] = []
    visible = 0
    for shot in tree["shots"]:
        for number, seg in enumerate(shot["segments"]):
            seam = seg["seam"]
            ratio = "-"
            if seam is not None:
                ratio = f"{seam['ratio']:.2f}"
                if seam["ratio"] > warn:
                    ratio += " VISIBLE"
                    visible += 1
            notes = []
            if seg["end_parent_sha256"]:
                end_seam = seg.get("end_seam")
                wrap = f" (seam {end_seam['ratio']:.2f}{' VISIBLE' if end_seam['ratio'] > warn else ''})" if end_seam else ""
                visible += bool(end_seam and end_seam["ratio"] > warn)
                notes.append(f"leads into {short(seg['end_parent_sha256'])}{wrap}")
            if seg["drift"]:
                notes.append(f"drift: {seg['drift']}")
            if seg.get("reused"):
                notes.append("reused")
            label = ""
            if number == 0:  # "↳" as in `storyflow plan`: the shot starts on the previous shot's last frame
                label = ("↳ " if shot["continues_previous"] else "") + shot["shot_key"]
            rows.append((
                label,
                str(seg["segment"]),
                _relative(seg["path"], home),
                short(seg["parent_sha256"]) or "-",
                seg["strategy"],
                f"{seg['seconds']:.2f}",
                ratio + ("  " + "; ".join(notes) if notes else ""),
            ))  # fmt: skip
        if not shot["segments"]:
            rows.append((shot["shot_key"], "-", "(no segments recorded)", "-", "-", "-", "-"))
        for line in shot["narration"]:
            rows.append(
                f"narration +{line['offset']:.2f} s, {line['seconds']:.2f} s, {line['voice']} at "
                f"{line['rate']:g} wpm: {line['text']!r}"
            )

    # 2. column widths from the segment rows; the last column runs free
    table = [COLUMNS, *(r for r in rows if isinstance(r, tuple))]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS) - 1)]
    right = {1, 5}  # numbers line up on the right

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells[:-1], widths, strict=True))
        ]
        return "  ".join([*parts, cells[-1]]).rstrip()

    # 3. header, rows, and a summary of the seams
    segments = sum(len(shot["segments"]) for shot in tree["shots"])
    loudness = f"  loudness {film['loudness_lufs']:.1f} LUFS" if film.get("loudness_lufs") is not None else ""
    out = [
        f"film {_relative(film['path'], home)}  {film['duration']:.2f} s  "
        f"{len(tree['shots'])} shots, {segments} segments{loudness}",
        line(COLUMNS),
    ]
    indent = " " * (widths[0] + 2)
    out += [indent + row if isinstance(row, str) else line(row) for row in rows]
    if visible:
        out.append(f"{visible} visible seam(s): a jump over {warn:g}x the ordinary frame-to-frame change")
    else:
        out.append(f"no visible seams (none over {warn:g}x the ordinary frame-to-frame change)")
    return "\n".join(out) + "\n"


def _relative(path: str, home: Path) -> str:
    """`path` relative to the output folder when inside it, else as it is."""
    try:
        return Path(path).relative_to(home).as_posix()
    except ValueError:
        return path


# ---------------------------------------------------------------- a run (storyflow catalog run ID)


def format_run_detail(detail: dict) -> str:
    """What a run generated and reused, one line per row, paths relative to the output folder."""
    run = detail["run"]
    out = [f"run #{run['id']}  {run['status']}  {run['story_source']}  started {run['started_at']}"]
    tally = detail.get("generations") or {}
    if tally:
        out.append("generations: " + ", ".join(f"{kind} {n['made']} made / {n['reused']} reused"
                                              for kind, n in tally.items()))  # fmt: skip
    for what in ("generated", "reused"):
        items = detail[what]
        counts = ", ".join(f"{n} {kind}" for kind, n in detail["counts"][what].items())
        out.append(f"{what}: {len(items)}" + (f" ({counts})" if counts else ""))
        for item in items:
            where = f"{item.get('shot_key', '')} {item.get('segment', '')}".strip()
            by = f"  made by run #{item['made_by_run']}" if what == "reused" and item["made_by_run"] else ""
            out.append(f"  {item['kind']:<15} {where:<7} {item['sha256']}  {item['path']}{by}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- integrity (storyflow catalog verify)

LABELS = {
    "rows_without_files": "rows whose file is gone",
    "hash_mismatches": "files changed since they were recorded",
    "file_rows_without_owner": "files rows whose owner row is gone",
    "files_without_rows": "files no row claims",
    "partial_files": "unfinished temporaries left by a killed run",
}


def format_verify(report: dict, after: dict | None = None) -> str:
    """The report as text: each problem with its path, then what a repair did (and, given the check
    after it, whether all is well now)."""
    out = []
    if report["ok"]:
        out.append(f"ok: {report['checked_files']} recorded files all there and unchanged, no stray files")
    for key, label in LABELS.items():
        items = report[key]
        if items:
            out.append(f"{label}: {len(items)}")
        for item in items:
            rows = f"  ({', '.join(item['rows'])})" if item.get("rows") else ""
            out.append(f"  {item['path']}{rows}")
    if report.get("other_homes"):
        out.append(f"the catalog is shared with {len(report['other_homes'])} other home(s) "
                   f"({', '.join(report['other_homes'][:3])}): {report['not_here']} recorded file(s) are not in this "
                   "one, and a repair here never deletes a row")  # fmt: skip
    if report.get("in_storage"):
        out.append(f"{report['in_storage']} recorded file(s) are not here but in storage ({report['storage']}): "
                   "a run that needs one fetches it, and a repair never deletes their rows")  # fmt: skip
    if report.get("running_runs"):
        out.append(f"runs still marked running: {', '.join(f'#{i}' for i in report['running_runs'])}")
    for action in report.get("repaired", []):
        where = action.get("path") or action.get("row")
        to = f" -> {action['to']}" if action.get("to") else ""
        out.append(f"repaired: {action['action']} {where}{to}  ({action['reason']})")
    if not report["ok"] and "repaired" not in report:
        out.append("fix: run `storyflow catalog verify --repair` "
                   "(it moves stray files to .orphans/, never deletes them)")
    if after is not None:
        out.append("all is well now" if after["ok"] else "some problems remain: run `storyflow catalog verify`")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- a film run (storyflow film)


class TerminalProgress:
    """Prints one line per progress event (storyflow.core.progress) on a stream; stdout stays clean for --json."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __call__(self, event: str, fields: dict) -> None:
        line = strip_controls(format_progress(event, fields))
        if line:
            # write, not print: inside a flow run Prefect may capture print() as log records
            self.stream.write(line + "\n")
            self.stream.flush()


def format_progress(event: str, f: dict) -> str:
    """One progress event as a line ("" for events not worth a line)."""
    if event == "plan":
        return (f"planned '{f['title']}': {f['shots']} shots, {f['seconds']:.1f} s, "
                f"{f['width']}x{f['height']} @ {f['fps']} fps")  # fmt: skip
    if event == "clip":
        what = "reused   " if f["reused"] else f"generated in {f['wall_s']:.1f} s"
        part = f" [{f['segment'] + 1}/{f['segments']}]" if f["segments"] > 1 else ""
        seam = f"  seam {f['seam']:.2f}" if f.get("seam") is not None else ""
        drift = "  drift corrected" if f.get("drift") else ""
        return f"  {f['shot']}{part:<7} {f['strategy']:<15} {f['seconds']:4.1f} s  {what}{seam}{drift}"
    if event == "narration":
        pace = f", re-paced to {f['pace']:g}x to fit its shot" if f.get("pace", 1.0) > 1.0 else ""
        return f"  {f['shot']:<14} narration {f['seconds']:.1f} s {'reused' if f['reused'] else 'spoken'}{pace}"
    if event == "audio":
        return f"  {f['kind']:<14} {'reused' if f['reused'] else 'composed'}"
    if event == "stitch":
        return f"stitching ({f['strategy']})"
    if event == "waiting":
        return f"waiting for {f['what']} to finish ({f['holder']}); it then reuses everything that run made"
    return ""


def format_film_summary(summary: dict) -> str:
    """The end of `storyflow film`: the film, its shots, clips made and reused, seams, sound, files."""
    out = ["", f"{summary['title']}: {summary['duration_s']:.1f} s, {summary['width']}x{summary['height']} "
               f"@ {summary['fps']} fps, {len(summary['shots'])} shots"]  # fmt: skip
    for shot in summary["shots"]:
        link = "↳" if shot["continues_previous"] else " "
        state = f"{shot['clips_generated']} generated" if shot["clips_generated"] else "reused"
        out.append(f" {link}{shot['id']}  {shot['camera']:<15} {shot['seconds']:5.1f} s  "
                   f"{len(shot['segments'])} seg  {state:<12} {clipped(shot['narration'], 50)}")  # fmt: skip
        if len(shot.get("takes") or ()) > 1:
            rated = ", ".join(f"{t['take']}: {t['score']:.2f}" if t["score"] is not None else str(t["take"])
                              for t in shot["takes"])  # fmt: skip
            out.append(f"      take {shot['take']} of {len(shot['takes'])} plays ({shot['picked_by']}; {rated})")
        if shot.get("prompt_origin"):
            out.append(f"      prompt {clipped(shot['prompt_origin'], 90)}")
    seams, sound = summary["seams"], summary["sound"]
    out += ["", f"clips: {summary['clips_generated']} generated, {summary['clips_reused']} reused; "
                f"{summary['stitch']}; {summary['wall_s']:.1f} s"]  # fmt: skip
    if summary.get("film_cost_usd") is not None:
        out.append(f"cost: ${summary.get('cost_usd') or 0:.2f} this run (estimated "
                   f"${summary.get('estimate_usd') or 0:.2f}), ${summary['film_cost_usd']:.2f} for the film's clips")
    if seams["count"]:
        out.append(f"seams: {seams['count']}, median ratio {seams['median_ratio']:.2f}, max {seams['max_ratio']:.2f}"
                   + (f"; {len(seams['visible'])} VISIBLE" if seams["visible"] else "; none visible"))  # fmt: skip
    out.append(f"sound: {sound['loudness_lufs']:.1f} LUFS (target {sound['target_lufs']:g}), "
               f"{sound['narration_lines']} narration lines, music ducked {sound['music_ducked_db']:g} dB under speech")
    out += [f"  {key:<14} {summary[key]}" for key in ("film", "subtitles", "poster", "contact_sheet", "catalog")]
    if summary["stems"]:
        out.append(f"  {'stems':<14} {Path(next(iter(summary['stems'].values()))).parent}/")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- a plan (storyflow plan)


def wrote_storyboard(path, story) -> str:
    """What `plan --out` says after writing the file."""
    return f"wrote {path}: edit it, then render it as it is with: storyflow film {story} --storyboard {path}"


def format_plan(board) -> str:
    """A storyboard as a table: one line per shot, with its camera, length, mood, transition, who, what."""
    from storyflow.core.timeline import film_timeline

    timeline = film_timeline(board)
    model = f" ({board.planner_model})" if board.planner_model and board.planner_model != board.planner else ""
    planned = f"planned by {board.planner or 'an unknown planner'}{model}"
    covered = f", covers {board.coverage:.0%} of the story" if board.coverage is not None else ""
    out = [f"{board.title}: {len(board.shots)} shots, {timeline.seconds:.1f} s, "
           f"{board.width}x{board.height} @ {board.fps} fps, seed {board.seed}; {planned}{covered}"]  # fmt: skip
    for shot in board.shots:
        link = "↳ " if shot.continues_previous else "  "
        who = ", ".join(shot.characters) or "-"
        notes = ([f"{len(shot.prompt_changes)} change(s) at " + ", ".join(f"{c.at:g}s" for c in shot.prompt_changes)]
                 if shot.prompt_changes else []) + (["loop"] if shot.loop else [])  # fmt: skip
        extra = f"  [{'; '.join(notes)}]" if notes else ""
        out.append(f"{link}{shot.id}  {clipped(', '.join(shot.directives), 34):<34} {shot.duration:5.1f} s  {shot.mood:<11} "
                   f"{shot.transition.value:<9} {who:<16} {clipped(shot.narration or shot.action, 60)}{extra}")  # fmt: skip
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- backends (storyflow backends)


def format_backends(listing: dict[str, list[dict]]) -> str:
    """Every backend by kind: what it is, what it needs, what it can do, its options."""
    out = []
    for kind, entries in listing.items():
        out.append(f"{kind}:")
        for entry in entries:
            out.append(f"  {entry['name']:<12} {entry.get('description') or entry.get('error', '')}")
            needs = [*(f"package {p}" for p in entry.get("requires", ())), *(f"${v}" for v in entry.get("key_env", ()))]
            if needs:
                out.append(f"  {'':<12} needs {', '.join(needs)}")
            caps = entry.get("capabilities")
            if caps:
                can = [k for k in ("text_to_video", "image_to_video", "extend_from_video", "extend_backward",
                                   "last_frame", "native_audio") if caps[k]]  # fmt: skip
                rules = [f"frames {caps['frame_rule']}"] if caps["frame_rule"] != "any" else []
                rules += [f"sides multiples of {caps['size_multiple']}"] if caps["size_multiple"] > 2 else []
                rules += [f"at {'/'.join(map(str, caps['fps']))} fps"] if caps["fps"] else []
                lengths = f"{'/'.join(f'{d:g}' for d in caps['durations'])} s" if caps["durations"] else (
                    f"up to {caps['max_clip_seconds']:g} s")
                price = f"; ${caps['cost_per_second']:.2f} per second" if caps.get("cost_per_second") else ""
                out.append(f"  {'':<12} clips {lengths}; {', '.join(can + rules)}{price}")
            for key, opt in entry.get("options", {}).items():
                given = "required" if opt.get("required") else f"default {opt['default']!r}"
                out.append(f"  {'':<12} option {key} ({opt['type']}, {given}) {opt['help']}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the catalog's films and runs


def format_films(films: list[dict]) -> str:
    """storyflow catalog films: one line per film, newest first."""
    if not films:
        return "no films yet: make one with `make film STORY=stories/lighthouse.md`\n"
    return "".join(f"#{film['id']:<4} {film.get('created', '')!s:<26} {film.get('duration', 0) or 0:6.1f} s  "
                   f"{film.get('title', '')}  {film.get('path', '')}"
                   + (f"  ${film['cost_usd']:.2f}" if film.get("cost_usd") is not None else "") + "\n"
                   for film in films)  # fmt: skip


def format_runs(runs: list[dict]) -> str:
    """storyflow catalog runs: one line per run, with what it made versus reused per kind."""
    out = []
    for run in runs:
        made = run.get("generations") or {}
        tally = ", ".join(f"{kind} {n['made']}+{n['reused']}r" for kind, n in made.items()) or (
            f"clips {run.get('clips_generated', 0)} made, {run.get('clips_reused', 0)} reused")
        if run.get("made_before_it_ended"):  # killed before its tally: counted from the rows it made
            tally = "made before it ended: " + ", ".join(f"{kind} {n}" for kind, n in run["made_before_it_ended"].items())
        cost = f"  ${run['cost_usd']:.2f}" if run.get("cost_usd") is not None else ""
        out.append(f"#{run['id']:<4} {run.get('status', ''):<9} {run.get('started_at', '')!s:<26} "
                   f"{run.get('story_source') or ''}  {tally}{cost}")  # fmt: skip
    return "".join(line + "\n" for line in out)


def format_schedule_made(made: dict) -> str:
    """storyflow schedule: what was scheduled, when it runs next (in its zone), and how to run it."""
    return (f"scheduled {made['name']}: every story in {made['folder']}, cron \"{made['cron']}\" in "
            f"{made['timezone']}\n  next runs: {', '.join(made['next_runs'])}\n"
            f"  runs are taken by a worker of the pool '{made['pool']}': start one with `storyflow serve"
            f"{'' if made['pool'] == 'storyflow' else ' --pool ' + made['pool']}` (or `make nightly`)\n")


def format_schedules(found: list[dict]) -> str:
    """storyflow schedules: one line per schedule."""
    if not found:
        return "no schedules yet: make one with `storyflow schedule STORIES_DIR --cron \"0 2 * * *\"`\n"
    return "".join(f"{entry['name']:<24} {'paused' if entry['paused'] else 'active':<7} \"{entry['cron']}\" "
                   f"{entry['timezone']:<16} next {entry['next_run'] or '-':<26} pool {entry['pool']}  "
                   f"{entry['folder']}\n" for entry in found)  # fmt: skip


def clipped(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
