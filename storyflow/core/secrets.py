"""The one secret guard: secrets never reach the catalog, logs, summaries, Prefect or manifests.

API keys and tokens belong in environment variables. Anything named like one (api_key,
OPENAI_API_KEY, hf_token, client_secret, password) is refused where storyflow would
record it, the values of such environment variables are searched for in what it records,
and URLs are kept without their passwords.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from storyflow.core.errors import CatalogError, StoryflowError

# Words that make a key name a secret. "token" is matched as a whole word, so
# "max_tokens" (an ordinary LLM option) passes while "hf_token" and "access_token" do not.
_SECRET_WORDS = {"token", "secret", "password", "passwd", "apikey", "credential", "credentials"}
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("auth", "key")}
MIN_SECRET_LENGTH = 8  # shorter environment values are too common to search for
# A private key pasted into a value (a PEM block): refused wherever it appears.
PRIVATE_KEY_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# The password in a URL such as postgresql://user:password@host/db.
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^:/@\s]*:)([^@\s]+)(@)")


def looks_secret(name: str) -> bool:
    """True for names like api_key, OPENAI_API_KEY, apiKey, hf_token, client_secret, password."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]
    if any(word in _SECRET_WORDS for word in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def secret_values() -> list[str]:
    """Values of environment variables named like secrets (OPENAI_API_KEY, HF_TOKEN, ...)."""
    return [v for k, v in os.environ.items() if looks_secret(k) and len(v) >= MIN_SECRET_LENGTH]


def mask_url_passwords(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***, as SQLAlchemy shows URLs."""
    return _URL_PASSWORD.sub(r"\1***\3", text)


def redact(text: str) -> str:
    """`text` with the value of every secret-named environment variable replaced by ***."""
    for secret in secret_values():
        text = text.replace(secret, "***")
    return mask_url_passwords(text)


def guard_secrets(
    value: Any, where: str, *, into: str = "the catalog", error: type[StoryflowError] = CatalogError
) -> Any:
    """A JSON-able copy of `value` with URL passwords masked; `error` if it holds anything secret.

    Refused: a key named like a secret (unless its value is a switch or unset: "credentials":
    True signs the film), a pydantic SecretStr, a text holding a secret environment
    variable's value, and a PEM private key. `where` and `into` name the place for the message.
    """
    from pydantic import BaseModel, SecretBytes, SecretStr
    from pydantic_core import to_jsonable_python

    secrets = secret_values()

    def refuse(what: str) -> StoryflowError:
        return error(
            f"refusing to store {what} in {into} ({where}): it looks like a secret",
            fix="keep API keys and tokens in environment variables and leave them out of "
            "backend options and run parameters",
        )

    def walk(item: Any, at: str) -> Any:
        if isinstance(item, SecretStr | SecretBytes):
            raise refuse(f"secret value {at or 'value'!r}")
        if isinstance(item, BaseModel):
            item = item.model_dump(mode="python")
        if isinstance(item, dict):
            out = {}
            for key, sub in item.items():
                name = f"{at}.{key}" if at else str(key)
                if looks_secret(str(key)) and not (sub is None or isinstance(sub, bool)):
                    raise refuse(f"option {name!r}")
                out[str(key)] = walk(sub, name)
            return out
        if isinstance(item, list | tuple | set | frozenset):
            return [walk(sub, f"{at}[{i}]") for i, sub in enumerate(item)]
        if isinstance(item, str):
            if any(secret in item for secret in secrets):
                raise refuse(f"the value of {at or 'a value'!r} (it contains a secret environment variable's value)")
            if PRIVATE_KEY_PEM.search(item):
                raise refuse(f"the value of {at or 'a value'!r} (it holds a private key)")
            return mask_url_passwords(item)  # a database URL is worth keeping, its password is not
        return to_jsonable_python(item)

    return walk(value if value is not None else {}, "")
