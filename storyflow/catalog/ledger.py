"""How the paid-jobs ledger words a job's detail: what was asked, how it ended, why it expired.

Shared by the catalog's store (storyflow.catalog.store) and the in-memory door (storyflow.catalog.door).
"""

from __future__ import annotations


def job_detail(asked: str, outcome: str) -> str:
    """A job's detail: what was asked (written when it started), then how it ended."""
    return "; ".join(part for part in (asked, outcome) if part)


def expired_detail(backend: str, age_s: float, lifetime_s: float) -> str:
    """Why a job still running in the ledger was not resumed."""
    return (f"expired: started {duration_words(age_s)} ago, and {backend} keeps a job's result "
            f"{duration_words(lifetime_s)}; not resumed, a new job is made")  # fmt: skip


def duration_words(seconds: float) -> str:
    """'2 days', '5.5 h', '40 min': a span as people say it."""
    if seconds >= 86_400:
        return f"{seconds / 86_400:.3g} day{'s' if seconds != 86_400 else ''}"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.3g} h"
    return f"{seconds / 60:.3g} min"
