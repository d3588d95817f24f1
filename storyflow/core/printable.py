"""Text made safe to show: no character that drives a terminal or reorders what a reader sees.

A story, a storyboard file, an LLM's answer or a hosted API's error message may hold ESC
sequences, BEL or right-to-left overrides; echoed raw they can rewrite a terminal's title, hide
lines or make a file name read backwards. Everything storyflow prints or writes into subtitles
goes through strip_controls. Standard library only.
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # embeddings, overrides, isolates


def strip_controls(text: str) -> str:
    """`text` without control characters (ESC, BEL, C1 codes) and bidirectional overrides, tabs and newlines
    kept (joiners stay too: emoji and several scripts need them)."""
    if text.isprintable():  # the common case, in C
        return text
    return "".join(c for c in text if c in "\t\n" or (unicodedata.category(c) != "Cc" and c not in BIDI_CONTROLS))
