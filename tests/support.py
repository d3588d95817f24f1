"""Helpers shared by the end-to-end tests: run the CLI, read a film back."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storyflow import media

REPO = Path(__file__).resolve().parent.parent

# A small story that still exercises the whole path: characters, a written camera
# directive, a shot long enough to need extension, a continuing shot, a crossfade.
TINY_STORY = """---
title: Tiny Harbour
style: flat previz colours
resolution: 160x90
fps: 12
seed: 3
characters:
  Mara: a tall woman in a red raincoat
---
Mara walks along the harbour at dusk while the waves roll in and the gulls circle above the boats. Pan left.

She stops at the lighthouse door. She knocks twice and waits in the rain.

Night falls over the sea.
"""


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        """The JSON object `--json` prints last on stdout."""
        text = self.stdout.strip()
        return json.loads(text[text.index("\n{") + 1 :] if not text.startswith("{") else text)


def cli_env(home: Path, cwd: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a `storyflow` command runs in here: this process's STORYFLOW_ and PREFECT_ variables left
    out, its own STORYFLOW_HOME, and a HOME under `cwd` (made here: anything written to ~ would show up there)."""
    fake_home = cwd / "home"
    fake_home.mkdir(exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STORYFLOW_", "PREFECT_"))},
        "STORYFLOW_HOME": str(home),
        "HOME": str(fake_home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }


def run_cli(args: list[str], *, home: Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> CliResult:
    """Run `storyflow ARGS` in a subprocess with its own STORYFLOW_HOME and HOME (`cli_env`)."""
    done = subprocess.run(
        [sys.executable, "-m", "storyflow.cli", *args],
        cwd=cwd, env=cli_env(home, cwd, env), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return CliResult(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def reporting_to(api_url: str) -> Iterator[None]:
    """Prefect in this process reports to the server at `api_url`, from every thread.

    `temporary_settings` alone reaches only the calling thread's context: a thread a run starts itself (the
    watcher of flows/cancel.py) would find no server and start a temporary one of its own. So the settings
    are this process's global ones too, meanwhile, as in a process started with PREFECT_API_URL set.
    """
    import prefect.context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        saved = prefect.context.GLOBAL_SETTINGS_CONTEXT
        prefect.context.GLOBAL_SETTINGS_CONTEXT = prefect.context.SettingsContext.get()
        try:
            yield
        finally:
            prefect.context.GLOBAL_SETTINGS_CONTEXT = saved


def run_cli_in_process(args: list[str], *, home: Path, cwd: Path, api_url: str, env: dict[str, str] | None = None
                       ) -> CliResult:  # fmt: skip
    """Run `storyflow ARGS` in this process: the same command code as `run_cli`, without a process's start.

    For a command whose process is not what a test checks (a rerun after a crash, say). The environment is
    the one `run_cli` gives a subprocess (`cli_env`, with PREFECT_API_URL), and Prefect in this process reports to
    `api_url` (a server: a command here must not start a temporary one). What the command changes in this
    process (variables, logging switches, the working folder) is put back afterwards. An exception that the
    command line's `main` would have turned into an error line fails with code 1 and its traceback on stderr.
    """
    import logging
    import traceback

    from prefect.logging.handlers import APILogWorker
    from typer.testing import CliRunner

    from storyflow.cli import app

    saved_env = dict(os.environ)
    loggers = {name: logging.getLogger(name).propagate for name in ("prefect.flow_runs", "prefect.task_runs")}
    raise_exceptions, saved_cwd = logging.raiseExceptions, os.getcwd()
    try:
        command_env = cli_env(home, cwd, {"PREFECT_API_URL": api_url, **(env or {})})
        os.environ.clear()
        os.environ.update(command_env)
        os.chdir(cwd)
        with reporting_to(api_url):
            done = CliRunner().invoke(app, [str(arg) for arg in args])
            APILogWorker.drain_all(timeout=30)  # its logs delivered, as a process delivers them when it exits
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for name, propagate in loggers.items():
            logging.getLogger(name).propagate = propagate
        logging.raiseExceptions = raise_exceptions
    stderr = done.stderr
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*done.exc_info))
    return CliResult(done.exit_code, done.stdout, stderr)


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def audio_rms_windows(path: Path, window_s: float = 0.5) -> np.ndarray:
    """RMS of the film's audio in consecutive windows (decoded from the file)."""
    samples = media.decode_audio(path, sample_rate=16_000)
    hop = int(16_000 * window_s)
    usable = samples[: len(samples) // hop * hop].reshape(-1, hop)
    return np.sqrt((usable**2).mean(axis=1))


_buckets = itertools.count(1)


def aws_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables pointing every client (s3fs and boto3 alike) at moto."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


def new_bucket() -> str:
    """A new, empty bucket (the AWS variables must point at moto already)."""
    import boto3

    name = f"storyflow-test-{next(_buckets)}-{time.time_ns() % 10**9}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Stop a server a test started, by its process id: `sig`, then SIGKILL if it has not ended within `timeout`."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
