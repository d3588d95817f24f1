"""Backend names -> classes: storyflow's own, plus any third-party package's.

A third-party package registers a backend with an entry point in the group
"storyflow.backends", named "<kind>.<name>", pointing at its Backend subclass:

    [project.entry-points."storyflow.backends"]
    "video.my-model" = "my_package.backend:MyModelBackend"

Classes are imported only when a backend is used, so listing names stays cheap.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from storyflow.backends.base import BACKEND_KINDS, Backend
from storyflow.errors import BackendOptionError, UnknownBackendError

BUILTIN: dict[str, dict[str, str]] = {
    "llm": {"embedded": "storyflow.backends.llm.embedded:EmbeddedLLM"},
    "video": {"animatic": "storyflow.backends.video.animatic:AnimaticBackend"},
    "music": {"procedural": "storyflow.backends.audio.procedural:ProceduralScore"},
    "speech": {"espeak": "storyflow.backends.audio.espeak:EspeakSpeech"},
    "effects": {"procedural": "storyflow.backends.audio.foley:ProceduralFoley"},
}

_FLAG = {
    "llm": "--llm",
    "video": "--video-backend",
    "music": "--music-backend",
    "speech": "--speech-backend",
    "effects": "--effects-backend",
}


@cache
def _entry_points() -> dict[str, dict[str, str]]:
    from importlib.metadata import entry_points

    found: dict[str, dict[str, str]] = {kind: {} for kind in BACKEND_KINDS}
    for point in entry_points(group="storyflow.backends"):
        kind, _, name = point.name.partition(".")
        if kind in found and name:
            found[kind][name] = point.value
    return found


def backend_names(kind: str) -> list[str]:
    """Every registered backend of a kind, built-in first."""
    _check_kind(kind)
    names = list(BUILTIN[kind])
    names += [n for n in sorted(_entry_points()[kind]) if n not in BUILTIN[kind]]
    return names


def backend_class(kind: str, name: str) -> type[Backend]:
    _check_kind(kind)
    target = BUILTIN[kind].get(name) or _entry_points()[kind].get(name)
    if target is None:
        known = ", ".join(backend_names(kind))
        raise UnknownBackendError(
            f"unknown {kind} backend '{name}'",
            fix=f"pass {_FLAG[kind]} with one of: {known} (see `storyflow backends`)",
        )
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def load_backend(kind: str, name: str, options: dict[str, Any] | None = None) -> Backend:
    """Build a backend from its name and raw options; option errors name the option."""
    from pydantic import ValidationError

    from storyflow.redaction import looks_secret

    cls = backend_class(kind, name)
    secret = next((k for k, v in (options or {}).items() if looks_secret(k) and not isinstance(v, bool | None)), None)
    if secret is not None:
        raise BackendOptionError(
            f"{kind} backend '{name}': option '{secret}' looks like a secret; storyflow never takes secrets as "
            "options (options are recorded in the catalog and shown in the Prefect UI)",
            fix="set the key in the environment variable the backend documents (e.g. GOOGLE_API_KEY)",
        )
    try:
        parsed = cls.Options(**(options or {}))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            option = ".".join(str(p) for p in err["loc"]) or "?"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown option '{option}'")
            else:
                problems.append(f"option '{option}': {err['msg']}")
        known = ", ".join(f"{k} ({_type_name(f.annotation)})" for k, f in cls.Options.model_fields.items())
        raise BackendOptionError(
            f"{kind} backend '{name}': " + "; ".join(problems),
            fix=f"its options are: {known}" if known else f"'{name}' takes no options",
        ) from None
    return cls(parsed)


def parse_option_pairs(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """['width=640', 'style=noir'] -> {'width': 640, 'style': 'noir'} (values read as YAML)."""
    import yaml

    from storyflow.errors import InputError

    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{flag} expects KEY=VALUE, got '{pair}'", fix=f"write it as {flag} name=value")
        try:
            options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            options[key.strip()] = value
    return options


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _check_kind(kind: str) -> None:
    if kind not in BACKEND_KINDS:
        raise UnknownBackendError(f"unknown backend kind '{kind}'", fix=f"use one of: {', '.join(BACKEND_KINDS)}")
