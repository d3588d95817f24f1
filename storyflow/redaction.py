"""Recognising secrets, so they never reach the catalog, logs, summaries or manifests.

API keys and tokens belong in environment variables. Anything named like one (api_key,
OPENAI_API_KEY, hf_token, client_secret, password) is refused where storyflow would
record it, the values of such environment variables are searched for in what it records,
and URLs are kept without their passwords.
"""

from __future__ import annotations

import itertools
import os
import re

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
