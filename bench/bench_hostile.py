"""Hostile input and faults, met the way a user meets them: through the real command line (issue 13).

Every class of bad input or fault is tried by running `python -m storyflow.cli ...` as a subprocess, in its
own fresh STORYFLOW_HOME under one temporary folder (nothing is written outside it; HOME points inside it
too), against one Prefect server started for the whole bench (stopped at the end by its process id). What
the user sees is recorded: the exit code, the first `error:` line (or "film made"), whether a `fix:` line
follows, whether a traceback or a raw control character (ESC, BEL, C1, a bidi override) reached the
terminal, the wall time, the peak memory, and whether `storyflow catalog verify` finds the home clean
afterwards. A class passes when it ends in an `error:`/`fix:` pair (or a film, or the stop message of a
signal) with none of those faults, under 1 GB and under its time bound. Failures are printed in the table,
never hidden: the "verdict" column names each one, and the bench exits 1 when any class fails. Where a class
runs storyflow again afterwards (a full disk freed, a stopped or killed run), "nothing lost" says what that
rerun reused, and "wall s" and "peak MB" cover both runs.

Films are made from tests/support.py's TINY_STORY (a few seconds each). The full-disk and read-only classes
mount small tmpfs filesystems (the machine must let us mount; otherwise they are skipped with a note).

Usage: python -m bench hostile      (make bench ARGS=hostile); BENCH_HOSTILE_ONLY=3,14,31 runs those classes
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO, free_port, print_table, save_results

sys.path.insert(0, str(REPO))
from tests.support import TINY_STORY  # noqa: E402 - the repository's own tiny story, used by the tests too

MEMORY_LIMIT_MB = 1024
ERROR_S = 20.0  # an input refused before any work: bounded by the command's start-up, not the input's size
FILM_S = 240.0  # a tiny film on a slow 2-core machine, with room
FRONT, _, BODY = TINY_STORY.partition("---\n")[2].partition("---\n")  # the tiny story's front matter and text
ENV_BASE = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(REPO)}
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def story_with(front: str = FRONT, body: str = BODY) -> bytes:
    return f"---\n{front}---\n{body}".encode()


# ---------------------------------------------------------------------------------------------- running


@dataclass
class Run:
    code: int | None  # None: it did not end within its timeout (it was killed)
    stdout: str
    stderr: str
    wall_s: float
    peak_mb: float
    signalled: bool = False  # the trigger line was seen and the signal sent

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    def summary(self) -> dict:
        """The JSON object `--json` prints last on stdout (empty when there is none)."""
        text = self.stdout.strip()
        start = 0 if text.startswith("{") else text.find("\n{") + 1
        try:
            return json.loads(text[start:]) if text and start >= 0 else {}
        except json.JSONDecodeError:
            return {}


def _tree_rss_mb(root: int) -> float:
    """The resident memory of `root` and every live descendant, summed (one snapshot of /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    total_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += parents.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as status:
                total_kb += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError):
            continue
    return total_kb / 1024


def run_storyflow(args: list[str], home: Path, cwd: Path, env: dict[str, str] | None = None, *, timeout: float,
                  trigger: tuple[str, int] | None = None) -> Run:  # fmt: skip
    """`storyflow ARGS` as a subprocess in its own session, with STORYFLOW_HOME=home (and HOME inside cwd).

    Peak memory is the larger of two measures, because neither alone sees everything:
    - os.wait4's rusage of the storyflow process: on Linux its ru_maxrss is the largest resident set of the
      process itself and of every descendant it waited for (the kernel's RUSAGE_BOTH: exact, but one process
      at a time, and blind to a descendant that outlives it);
    - the sum of VmRSS over the live process tree (storyflow and all its children at once: a temporary Prefect
      server, ffmpeg, workers), sampled every 0.1 s from /proc (may miss a spike shorter than that).
    With `trigger=(text, signal)`, the signal is sent to the storyflow process (by its id) the moment `text`
    appears on its stderr. Whatever the run leaves behind in its own process group is killed by that group's id.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "home").mkdir(exist_ok=True)
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
                **ENV_BASE, "STORYFLOW_HOME": str(home), "HOME": str(cwd / "home"), **(env or {})}  # fmt: skip
    full_env = {k: v for k, v in full_env.items() if v is not None}
    out_path, err_path = cwd / f".out-{time.time_ns()}", cwd / f".err-{time.time_ns()}"
    signalled = False
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "storyflow.cli", *args], cwd=cwd, env=full_env,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)  # fmt: skip
        code, peak_mb = None, 0.0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                process.returncode = code
                peak_mb = max(peak_mb, usage.ru_maxrss / 1024)  # KB on Linux
                break
            peak_mb = max(peak_mb, _tree_rss_mb(process.pid))
            if trigger and not signalled and trigger[0] in err_path.read_text(errors="replace"):
                os.kill(process.pid, trigger[1])
                signalled = True
            if time.perf_counter() - started > timeout:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: the group id is its process id
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.1)
        wall = time.perf_counter() - started
    _kill_leftovers(process.pid)
    run = Run(code, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"), wall, peak_mb,
              signalled)  # fmt: skip
    out_path.unlink()
    err_path.unlink()
    return run


def _kill_leftovers(group: int) -> None:
    """Kill, each by its id, what is left of the process group this bench started for one run (a kill -9
    orphans its children: a Prefect server, ffmpeg)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) == group and int(fields[3]) == group:  # its process group and its session
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


def first_error_line(text: str) -> str:
    """storyflow's first `error:` line, else click's usage error (the line inside its box), else ''."""
    for line in text.splitlines():
        if line.lstrip().startswith("error:"):
            return line.strip()
    for index, line in enumerate(text.splitlines()):
        if "Error" in line and ("╭" in line or line.startswith("Error:")):
            inside = text.splitlines()[index + 1 : index + 2] if "╭" in line else [line]
            return "(click usage box) " + " ".join(part.strip("│ ") for part in inside).strip()
    return ""


def raw_controls(text: str) -> list[str]:
    """Characters a terminal would obey (tab and newline apart), as escapes: ['\\x1b', '\\u202e']."""
    found = {c for c in text if c not in "\t\n" and (unicodedata.category(c) == "Cc" or c in BIDI)}
    return sorted(c.encode("unicode_escape").decode() for c in found)


def verify(home: Path, cwd: Path) -> tuple[bool, str]:
    """(clean, what it says): `storyflow catalog verify`, exit 0; a home with no catalog.db at all is clean
    too ("nothing was made"), and is not created by asking."""
    if not (home / "catalog.db").exists():
        return True, "yes (no catalog)"
    result = run_storyflow(["catalog", "verify"], home, cwd, timeout=120)
    if result.code == 0:
        return True, "yes (exit 0)"
    said = first_error_line(result.text) or result.text.strip().splitlines()[-1:] or ["?"]
    said = said if isinstance(said, str) else said[0]
    unfixed = "" if re.search(r"^\s*fix:", result.text, re.MULTILINE) else ", and no fix: line"
    return False, f"NO (exit {result.code}: {said[:70]}{unfixed})"


# ---------------------------------------------------------------------------------------------- the classes


@dataclass
class Case:
    """One class. `story` (bytes) is written to story.md; '{story}' in args is its path. `prepare(dir, home)`
    may set up anything else and return extra args. `expect`: error, film, usage (click's own refusal of a
    malformed option, exit 2) or a signal's exit code."""

    name: str
    args: list[str] = field(default_factory=lambda: ["film", "{story}"])
    story: bytes | None = story_with()
    env: dict[str, str | None] = field(default_factory=dict)
    expect: str = "error"
    max_s: float = ERROR_S
    server: bool = True  # pass the bench's PREFECT_API_URL
    check_verify: bool = True
    timeout: float | None = None  # killed after this (default: three times max_s, at least 30 s)
    prepare: Callable[[Path, Path], None] | None = None
    special: Callable[[Path, Path, dict], dict] | None = None  # runs the whole class itself: returns a row


def _mkfifo(case_dir: Path, home: Path) -> None:
    os.mkfifo(case_dir / "fifo.md")


def _symlink_loop(case_dir: Path, home: Path) -> None:
    (case_dir / "loop.md").symlink_to(case_dir / "loop.md")


def _folder(case_dir: Path, home: Path) -> None:
    (case_dir / "a-folder.md").mkdir()


def _bad_storyboards(case_dir: Path, home: Path) -> None:
    (case_dir / "board.json").write_text('{"shots": [ {"id": "s01", "duration_s": ')  # cut off
    (case_dir / "board-shape.json").write_text(json.dumps({"shots": [{"id": "s01", "duration_s": -3}]}))


def _home_is_a_file(case_dir: Path, home: Path) -> None:
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("not a folder\n")


def _damaged_catalog(damage: bytes) -> Callable[[Path, Path], None]:
    def prepare(case_dir: Path, home: Path) -> None:
        home.mkdir(parents=True)
        (home / "catalog.db").write_bytes(damage)

    return prepare


def _damaged_prefect_db(case_dir: Path, home: Path) -> None:
    (home / ".prefect").mkdir(parents=True)
    (home / ".prefect" / "prefect.db").write_bytes(b"not a database, whatever happened to it " * 500)


def cases() -> list[Case]:
    paragraphs_1200 = "\n\n".join(f"Mara takes step {i}." for i in range(1, 1201)) + "\n"
    paragraph_200k = ("Mara walks along the harbour while the gulls circle above the boats. " * 3000)[:200_000] + "\n"
    repeated = "Night falls over the sea.\n\nMara waits at the lighthouse door.\n\n" * 3
    alias_bomb = ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "title: [*b, *b, *b, *b, *b]\n")  # fmt: skip
    controls_title = 'title: "Red\\e[31m Sea\\a \u202eevil"\nresolution: 160x90\nfps: 12\nseed: 3\n'
    controls_body = "Mara\u202e walks.\x1b]0;pwned\x07 Then\tshe stops at the \x1b[2Jdoor.\n"
    return [
        Case("/dev/zero as the story", args=["film", "/dev/zero"], story=None),
        Case("story over the size limit (1.08 MB)", story=b"Mara walks. " * 90_000),
        Case("story over a lowered limit (STORYFLOW_MAX_STORY_BYTES=100)", env={"STORYFLOW_MAX_STORY_BYTES": "100"}),
        Case("empty story", story=b""),
        Case("blank story (whitespace only)", story=b"   \n\n\t\n"),
        Case("binary story (PNG header, NUL)", story=b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 40),
        Case("non-UTF-8 story (Latin-1)", story=b"caf\xe9 au lait\n"),
        Case("YAML alias bomb in front matter", story=story_with(alias_bomb)),
        Case("front matter nested too deep", story=story_with("characters:\n  Mara: [[[[[[[[[x]]]]]]]]]\n")),
        Case("duplicate front matter key", story=story_with("title: One\nfps: 12\ntitle: Two\n")),
        Case("malformed front matter YAML", story=story_with("title: [unclosed\n")),
        Case("front matter never closed", story=b"---\ntitle: x\nno closing line\n"),
        Case("front matter but no story text", story=b"---\ntitle: Only front matter\n---\n\n"),
        Case("unknown front matter field", story=story_with(FRONT + "stlye: noir\n")),
        Case("lone surrogate in title (\\ud800x)", story=story_with('title: "Bad \\ud800x half"\n')),
        Case("5,000-digit number in front matter", story=story_with("fps: " + "9" * 5000 + "\n")),
        Case("5,000-item list value", story=story_with("fps: [" + ", ".join(["1"] * 5000) + "]\n")),
        Case("title of 201 chars", story=story_with("title: " + "T" * 201 + "\n")),
        Case("title of 10,000 chars (must be fast)", story=story_with("title: " + "T" * 10_000 + "\n"), max_s=5.0),
        Case("heading title of 10,000 chars", story=("# " + "T" * 10_000 + "\n\nMara walks.\n").encode(), max_s=5.0),
        Case("ESC/BEL/RLO in title and text (film)", story=story_with(controls_title, controls_body), expect="film",
             max_s=FILM_S),
        Case("ESC/BEL/RLO in an unknown field's name", story=story_with("st\x1b[31mly\x07e\u202e: noir\n")),
        Case("ESC/BEL/RLO in a missing story's name", args=["film", "no\x1b]0;pwned\x07such\u202e.md"], story=None),
        Case("too many shots (1,200 short paragraphs)", story=story_with(FRONT, paragraphs_1200), max_s=60),
        Case("too many shots (tiny story, STORYFLOW_MAX_SHOTS=2)", env={"STORYFLOW_MAX_SHOTS": "2"}, max_s=60),
        Case("one 200 KB paragraph", story=story_with(FRONT, paragraph_200k), max_s=60),
        Case("[99999s] timing marker", story=story_with(FRONT, "Mara waits by the sea. [99999s]\n"), max_s=60),
        Case("too many segments (--candidates 1000)", args=["film", "{story}", "--candidates", "1000"], max_s=60),
        Case("too many segments (STORYFLOW_MAX_SEGMENTS=2)", env={"STORYFLOW_MAX_SEGMENTS": "2"}, max_s=60),
        Case("--seed 2**70", args=["film", "{story}", "--seed", str(2**70)], expect="usage"),
        Case("--seed -1", args=["film", "{story}", "--seed", "-1"], expect="usage"),
        Case("--force-shot 99", args=["film", "{story}", "--force-shot", "99"], max_s=60),
        Case("--force-shot 0", args=["film", "{story}", "--force-shot", "0"]),
        Case("unknown video backend", args=["film", "{story}", "--video-backend", "nope"]),
        Case("unknown video backend option", args=["film", "{story}", "--video-option", "frobnicate=1"]),
        Case("backend option without =", args=["film", "{story}", "--music-option", "novalue"]),
        Case("backend option of the wrong type", args=["film", "{story}", "--music-option", "level_db=loud"]),
        Case("missing story file", args=["film", "no-such-story.md"], story=None),
        Case("story is a folder", args=["film", "a-folder.md"], story=None, prepare=_folder),
        Case("story is a symlink loop", args=["film", "loop.md"], story=None, prepare=_symlink_loop),
        Case("story is a FIFO nobody writes", args=["film", "fifo.md"], story=None, prepare=_mkfifo, timeout=10),
        Case("damaged catalog.db (garbage)", prepare=_damaged_catalog(b"garbage " * 4000), check_verify=False),
        Case("damaged catalog.db (zeros)", prepare=_damaged_catalog(b"\x00" * 100), check_verify=False),
        Case("damaged .prefect/prefect.db (own temporary server)", args=["film", "{story}", "--json"],
             prepare=_damaged_prefect_db, expect="film", server=False, max_s=FILM_S),
        Case("read-only output folder (tmpfs remounted ro)", special=read_only_case),
        Case("full disk (3 MB tmpfs), then space freed and rerun", special=full_disk_case),
        Case("SIGTERM during generation", special=lambda d, h, e: signal_case(d, h, e, signal.SIGTERM)),
        Case("SIGINT during generation", special=lambda d, h, e: signal_case(d, h, e, signal.SIGINT)),
        Case("kill -9 during generation, then rerun", special=lambda d, h, e: signal_case(d, h, e, signal.SIGKILL)),
        Case("story repeating its paragraphs (film)", story=story_with(FRONT, repeated), expect="film", max_s=FILM_S),
        Case("missing model folder (--video-backend wan)",
             args=["film", "{story}", "--video-backend", "wan", "--video-option", "model=./no-such-wan"]),
        Case("missing model folder (--speech-backend vits)",
             args=["film", "{story}", "--speech-backend", "vits", "--speech-option", "model=./no-such-vits"]),
        Case("--storyboard file cut off (bad JSON)", args=["film", "{story}", "--storyboard", "board.json"],
             prepare=_bad_storyboards),
        Case("--storyboard file of the wrong shape", args=["film", "{story}", "--storyboard", "board-shape.json"],
             prepare=_bad_storyboards),
        Case("--storyboard file missing", args=["film", "{story}", "--storyboard", "no-such-board.json"]),
        Case("bad --stitch value", args=["film", "{story}", "--stitch", "sideways"]),
        Case("bad --narration-fit value", args=["film", "{story}", "--narration-fit", "squeeze"]),
        Case("bad --task-runner value", args=["film", "{story}", "--task-runner", "ray"]),
        Case("--candidates 0", args=["film", "{story}", "--candidates", "0"]),
        Case("--concurrency 0", args=["film", "{story}", "--concurrency", "0"]),
        Case("--budget -1", args=["film", "{story}", "--budget", "-1"]),
        Case("--budget nan", args=["film", "{story}", "--budget", "nan"]),
        Case("--loudness nan", args=["film", "{story}", "--loudness", "nan"]),
        Case("STORYFLOW_MAX_SHOTS=0", env={"STORYFLOW_MAX_SHOTS": "0"}),
        Case("STORYFLOW_MAX_SHOTS=abc", env={"STORYFLOW_MAX_SHOTS": "abc"}),
        Case("STORYFLOW_MAX_FILM_SECONDS=-5", env={"STORYFLOW_MAX_FILM_SECONDS": "-5"}),
        Case("STORYFLOW_HOME is a file", prepare=_home_is_a_file),
        Case("catalog run of an unknown id", args=["catalog", "run", "999999"], story=None),
        Case("pick in an unknown film", args=["pick", "no-such-film", "3", "0"], story=None),
    ]


# ---------------------------------------------------------------------------------------------- special classes


@contextmanager
def _small_disk(folder: Path, size: str = "3m") -> Iterator[str]:
    """A tmpfs of `size` mounted at `folder` while the block runs (unmounted after it): yields '' when it is
    mounted, else why it could not be."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode != 0:
        yield done.stderr.strip() or f"mount exited {done.returncode}"
        return
    try:
        yield ""
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def _clips(home: Path) -> set[Path]:
    """The finished clips in a home (a half-written `.NAME.partial.mp4` is not one)."""
    return {path.resolve() for path in home.rglob("clips/**/*.mp4") if ".partial" not in path.name}


CLIP_LINE = re.compile(r"^\s+(s\d+)(?: \[(\d+)/\d+\])?\s+\S+\s+[\d.]+ s\s+(generated|reused)", re.M)


def _clip_events(stderr: str) -> dict[tuple[str, int], str]:
    """(shot, segment) -> 'generated' or 'reused', from the progress lines a run printed (as the tests read them)."""
    return {(shot, int(seg or 1) - 1): what for shot, seg, what in CLIP_LINE.findall(stderr)}


def _reused(run: Run) -> set[Path]:
    segments = [segment for shot in run.summary().get("shots", []) for segment in shot.get("segments", [])]
    return {Path(segment["path"]).resolve() for segment in segments if segment.get("reused")}


def read_only_case(case_dir: Path, home: Path, env: dict) -> dict:
    disk = case_dir / "ro-disk"
    with _small_disk(disk) as why:
        if why:
            return {"skipped": f"cannot mount a tmpfs here: {why}"}
        home = disk / "outputs"
        home.mkdir()
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
        if remounted.returncode != 0:
            return {"skipped": f"cannot remount read-only: {remounted.stderr.strip()}"}
        (case_dir / "story.md").write_bytes(story_with())
        run = run_storyflow(["film", str(case_dir / "story.md")], home, case_dir, env, timeout=ERROR_S * 3)
        return {"run": run, "verify": verify(home, case_dir), "expect": "error"}


def full_disk_case(case_dir: Path, home: Path, env: dict) -> dict:
    disk = case_dir / "small-disk"
    with _small_disk(disk) as why:
        if why:
            return {"skipped": f"cannot mount a tmpfs here: {why}"}
        home = disk / "outputs"
        story = case_dir / "story.md"
        story.write_bytes(story_with(FRONT.replace("Tiny Harbour", "Full Disk")))
        run = run_storyflow(["film", str(story)], home, case_dir, env, timeout=FILM_S)
        partials = sorted(str(p.relative_to(home)) for p in home.rglob("*.partial*"))
        before = _clips(home)
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # the user frees space
        checked = verify(home, case_dir)
        rerun = run_storyflow(["film", str(story), "--json"], home, case_dir, env, timeout=FILM_S)
        reused = _reused(rerun)
        lost = before - reused
        notes = [f"{len(partials)} half-written files left: {partials[:3]}"] if partials else []
        if rerun.code != 0:
            notes.append(f"the rerun after freeing space failed (exit {rerun.code}): "
                         f"{first_error_line(rerun.text) or rerun.text[-200:]}")  # fmt: skip
        if lost:
            notes.append(f"{len(lost)} of {len(before)} clips made before the disk filled were not reused")
        if not before:
            notes.append("no clip was made before the disk filled (nothing to reuse: the 3 MB filled too early)")
        kept = f"rerun: film {'made' if rerun.code == 0 else 'NOT made'}, {len(before) - len(lost)}/{len(before)} " \
               f"clips made before reused"  # fmt: skip
        return {"run": run, "verify": checked, "expect": "error", "kept": kept, "problems": notes,
                "wall_s": run.wall_s + rerun.wall_s, "peak_mb": max(run.peak_mb, rerun.peak_mb),
                "also": [rerun]}  # fmt: skip


def signal_case(case_dir: Path, home: Path, env: dict, signum: int) -> dict:
    """Stopped while it generates (narration spoken, the first clip made): what the user sees, a clean catalog,
    and a rerun that reuses every clip finished before the stop (nothing lost, nothing paid twice)."""
    story = case_dir / "story.md"
    story.write_bytes(story_with())
    run = run_storyflow(["film", str(story)], home, case_dir, env, timeout=FILM_S, trigger=("generated in", signum))
    notes = [] if run.signalled else ["the run ended before it generated a clip: no signal was sent"]
    expected = {signal.SIGTERM: (143, "error: terminated (SIGTERM) before it finished"),
                signal.SIGINT: (130, "error: interrupted (Ctrl-C) before it finished"), signal.SIGKILL: (-9, "")}[signum]
    if run.code != expected[0]:
        notes.append(f"exit {run.code}, not {expected[0]}")
    if expected[1] and expected[1] not in run.text:
        notes.append(f"no '{expected[1]}' line")
    on_disk = _clips(home)
    checked = verify(home, case_dir)
    # finished clips, counted two ways: as tests/test_crash_safety.py counts them (a progress line said "generated"
    # before the stop) and as files under their final names (a half-written `.partial` one is not): every one
    # must be played again by the rerun, not made again
    finished = {key for key, what in _clip_events(run.stderr).items() if what == "generated"}
    rerun = run_storyflow(["film", str(story), "--json"], home, case_dir, env, timeout=FILM_S)
    reused = {(shot.get("id"), n) for shot in rerun.summary().get("shots", [])
              for n, segment in enumerate(shot.get("segments", [])) if segment.get("reused")}  # fmt: skip
    lost, remade = finished - reused, on_disk - _reused(rerun)
    if rerun.code != 0:
        notes.append(f"the rerun failed (exit {rerun.code}): {first_error_line(rerun.text) or rerun.text[-200:]}")
    if lost:
        notes.append(f"{len(lost)} of {len(finished)} clips reported finished before the stop were made again "
                     f"(paid twice): {sorted(lost)}")  # fmt: skip
    if remade:
        notes.append(f"{len(remade)} of {len(on_disk)} clip files on disk before the rerun were made again: "
                     f"{sorted(path.name for path in remade)}")  # fmt: skip
    after = verify(home, case_dir)
    if signum == signal.SIGKILL:
        # nothing can clean up after kill -9: right after it, verify may name the killed run's leftovers (with
        # their fix, --repair); the rerun clears them, and the home must verify clean after it
        right_after = "clean" if checked[0] else "names the killed run's leftovers"
        shown = (after[0], f"after the rerun {after[1]} (right after the kill: {right_after})")
    else:  # a stop the run sees cleans up after itself: clean at once, and after the rerun
        shown = (checked[0] and after[0], f"{checked[1]}; after the rerun {after[1]}")
    kept = f"rerun: film {'made' if rerun.code == 0 else 'NOT made'}; of the clips finished before the stop, " \
           f"{len(finished) - len(lost)}/{len(finished)} reported and {len(on_disk) - len(remade)}/{len(on_disk)} " \
           f"on disk reused"  # fmt: skip
    first = next((line for line in run.stderr.splitlines() if line.startswith("error:")),
                 "(killed: no output possible)" if signum == signal.SIGKILL else "")  # fmt: skip
    return {"run": run, "verify": shown, "expect": "stopped", "problems": notes, "first": first, "kept": kept,
            "wall_s": run.wall_s + rerun.wall_s, "peak_mb": max(run.peak_mb, rerun.peak_mb), "also": [rerun]}


# ---------------------------------------------------------------------------------------------- judging


def judge(case: Case, case_dir: Path, home: Path, env: dict) -> dict:
    """Run one class and return its table row (and the details kept in the JSON file)."""
    extra: dict = {}
    if case.special is not None:
        extra = case.special(case_dir, home, env)
        if "skipped" in extra:
            return {"first error line (or film made)": f"SKIPPED: {extra['skipped']}", "verdict": "skipped"}
        run, expect = extra["run"], extra["expect"]
        checked = extra["verify"]
    else:
        if case.story is not None:
            (case_dir / "story.md").write_bytes(case.story)
        if case.prepare is not None:
            case.prepare(case_dir, home)
        args = [str(case_dir / "story.md") if arg == "{story}" else arg for arg in case.args]
        run_env = {**env, **case.env} if case.server else {**case.env}
        before = {p: p.read_bytes() for p in home.rglob("catalog.db")} if home.is_dir() else {}
        run = run_storyflow(args, home, case_dir, run_env, timeout=case.timeout or max(case.max_s * 3, 30))
        expect = case.expect
        if case.check_verify:
            checked = verify(home, case_dir)
        else:
            changed = [p for p, data in before.items() if not p.exists() or p.read_bytes() != data]
            checked = (not changed, "n/a (damaged by the class); " + ("CHANGED by storyflow" if changed else
                                                                     "left as it was"))  # fmt: skip
            extra["kept"] = "catalog.db left byte for byte" if before and not changed else ""
    problems = list(extra.get("problems", []))
    wall_s, peak_mb = extra.get("wall_s", run.wall_s), extra.get("peak_mb", run.peak_mb)
    runs = [run, *extra.get("also", [])]
    error_line = first_error_line(run.text)
    film = run.summary().get("film") or next((str(p) for p in home.rglob("*.mp4") if "clips" not in p.parts and
                                              p.parent.parent == home), "")  # fmt: skip
    if expect == "film":
        first = "film made" if run.code == 0 and film and Path(film).is_file() else error_line or "(no film)"
        if first != "film made":
            problems.append("no film")
    elif expect == "stopped":
        first = extra.get("first", "")
    else:
        first = error_line or "(no error line)"
        if run.code is None:
            problems.append(f"hung: still running after {case.timeout or max(case.max_s * 3, 30):.0f} s (killed)")
        elif run.code == 0:
            problems.append("exit 0 where an error is due")
        if expect == "error" and not error_line.startswith("error:"):
            problems.append("no `error:` line")
        if expect == "usage" and not error_line:
            problems.append("no error shown")
        if "failed unexpectedly" in error_line:
            problems.append("not foreseen: the catch-all 'failed unexpectedly' message, its fix 'report it'")
    fix = any(re.search(r"^\s*fix:", r.stderr, re.MULTILINE) for r in runs)
    if expect == "error" and not fix:
        problems.append("no `fix:` line")
    if expect == "usage" and not (error_line.startswith("error:") and fix):
        problems.append("click's usage box instead of an `error:`/`fix:` pair")
    traceback = any("Traceback" in r.text for r in runs)
    if traceback:
        problems.append("traceback shown")
    controls = sorted({c for r in runs for c in raw_controls(r.text)})
    if controls:
        problems.append(f"raw control characters in the output: {' '.join(controls)}")
    if peak_mb > MEMORY_LIMIT_MB:
        problems.append(f"peak memory {peak_mb:.0f} MB over {MEMORY_LIMIT_MB} MB")
    bound = case.max_s if case.special is None else FILM_S * 2
    if wall_s > bound:
        problems.append(f"took {wall_s:.1f} s, over its {bound:.0f} s bound")
    if not checked[0]:
        problems.append("catalog verify not clean")
    return {
        "exit code": "killed (timeout)" if run.code is None else run.code,
        "first error line (or film made)": first,
        "fix: present": "yes" if fix else "no" if expect in ("error", "usage") else "n/a",
        "traceback?": "YES" if traceback else "no",
        "raw ctrl chars": " ".join(controls) if controls else "none",
        "wall s": round(wall_s, 1),
        "peak MB": round(peak_mb),
        "verify clean": checked[1],
        "nothing lost": extra.get("kept", ""),
        "verdict": "ok" if not problems else "PROBLEM: " + "; ".join(problems),
        "_stderr_tail": "\n".join(r.stderr[-1500:] for r in runs),
    }


def _cell(value: object) -> object:
    if not isinstance(value, str):
        return value
    value = value.replace("|", "\\|").replace("\n", " ")
    return value if len(value) <= 130 else value[:127] + "…"


def main() -> None:
    only = {int(n) for n in os.environ.get("BENCH_HOSTILE_ONLY", "").replace(" ", "").split(",") if n}
    env = {**ENV_BASE}
    rows: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="storyflow-bench-hostile-") as tmp:
        tmp_path = Path(tmp)
        tmp = str(tmp_path)
        from flows.server import start_server, stop_server

        server = start_server(tmp_path / "prefect", port=free_port(), wait_s=120)
        env["PREFECT_API_URL"] = server["api_url"]
        try:
            for number, case in enumerate(cases(), start=1):
                if only and number not in only:
                    continue
                case_dir = tmp_path / f"case-{number:02d}"
                case_dir.mkdir()
                judged = judge(case, case_dir, case_dir / "outputs", env)
                row = {"#": number, "class": case.name, **{key: value.replace(tmp, "$TMP") if isinstance(value, str)
                                                            else value for key, value in judged.items()}}  # fmt: skip
                rows.append(row)
                print(f"{number:2d} {case.name}: {row['verdict']} ({row.get('wall s', 0)} s)", file=sys.stderr,
                      flush=True)  # fmt: skip
                shutil.rmtree(case_dir, ignore_errors=True)
        finally:
            stop_server(tmp_path / "prefect")
    total = time.perf_counter() - started
    columns = ["#", "class", "exit code", "first error line (or film made)", "fix: present", "traceback?",
               "raw ctrl chars", "wall s", "peak MB", "verify clean", "nothing lost", "verdict"]  # fmt: skip
    print_table(f"hostile input and faults through the command line ({len(rows)} classes, {total:.0f} s in all; "
                f"peak MB = the larger of wait4's max RSS and the sampled RSS sum of the process tree)",
                [{column: _cell(row.get(column, "")) for column in columns} for row in rows])  # fmt: skip
    failed = [row for row in rows if row["verdict"].startswith("PROBLEM")]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} classes ok" + (f"; problems in: "
          f"{', '.join(str(row['#']) for row in failed)}" if failed else ""))  # fmt: skip
    save_results("hostile", rows, {"cores": os.cpu_count(), "total_s": round(total, 1)})
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
