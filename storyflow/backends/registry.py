"""Backend names -> classes: storyflow's own, found by their place, plus any third-party package's.

storyflow's own backends live one per module (or package) in storyflow/backends/<kind>/,
named after it: storyflow/backends/video/animatic/ is the video backend "animatic",
storyflow/backends/effects/procedural.py the effects backend "procedural". Adding a
backend is adding that one file: nothing else names it.

A third-party package registers a backend with an entry point in the group
"storyflow.backends", named "<kind>.<name>", pointing at its Backend subclass:

    [project.entry-points."storyflow.backends"]
    "video.my-model" = "my_package.backend:MyModelBackend"

Names are listed without importing anything; a class is imported only when its backend is
used, so `storyflow --help` and `storyflow backends` stay cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

from storyflow.backends.base import BACKEND_KINDS, FLAGS, Backend
from storyflow.core.errors import BackendOptionError, UnknownBackendError

PACKAGE = "storyflow.backends"

@cache
def _builtin() -> dict[str, dict[str, str]]:
    """{kind: {name: module}} for every module or package in storyflow/backends/<kind>/."""
    found: dict[str, dict[str, str]] = {}
    for kind in BACKEND_KINDS:
        folder = importlib.import_module(f"{PACKAGE}.{kind}")
        found[kind] = {
            info.name.replace("_", "-"): f"{PACKAGE}.{kind}.{info.name}"
            for info in sorted(pkgutil.iter_modules(folder.__path__), key=lambda info: info.name)
            if not info.name.startswith("_")
        }
    return found


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
    """Every registered backend of a kind, storyflow's own first."""
    _check_kind(kind)
    names = list(_builtin()[kind])
    names += [n for n in sorted(_entry_points()[kind]) if n not in names]
    return names


def backend_class(kind: str, name: str) -> type[Backend]:
    """The Backend subclass registered as `name` for `kind`; UnknownBackendError naming the choices."""
    _check_kind(kind)
    module_name = _builtin()[kind].get(name)
    if module_name is not None:
        return _backend_in(importlib.import_module(module_name), kind, name)
    target = _entry_points()[kind].get(name)
    if target is None:
        known = ", ".join(backend_names(kind))
        raise UnknownBackendError(
            f"unknown {kind} backend '{name}'",
            fix=f"pass {FLAGS[kind]} with one of: {known} (see `storyflow backends`)",
        )
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _backend_in(module: Any, kind: str, name: str) -> type[Backend]:
    """The one Backend subclass of `kind` named `name` that `module` defines."""
    found = [
        value for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Backend) and value.__module__ == module.__name__
        and getattr(value, "kind", None) == kind and getattr(value, "name", None) == name
    ]  # fmt: skip
    if len(found) != 1:
        raise UnknownBackendError(
            f"{module.__name__} should define one {kind} backend class named '{name}', found {len(found)}",
            fix=f"give the backend class in {module.__name__} `kind = '{kind}'` and `name = '{name}'`",
        )
    return found[0]


def load_backend(kind: str, name: str, options: dict[str, Any] | None = None) -> Backend:
    """Build a backend from its name and raw options; option errors name the option."""
    from pydantic import ValidationError

    from storyflow.core.secrets import looks_secret

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

    from storyflow.core.errors import InputError

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
