"""Which tests CI may skip, and why: a CI run (``CI=true``) fails on any other skip (tests/conftest.py)."""

from __future__ import annotations

import fnmatch
import os

#: Tests CI may skip (``fnmatch`` patterns of node ids) and why each may; every other skip fails a CI run.
CI_ALLOWED_SKIPS = {
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unexpected_skips(skips: list[tuple[str, str]], allowed=None) -> list[str]:
    """The skipped ``(node id, reason)`` pairs that no pattern of ``allowed`` names, as lines."""
    allowed = CI_ALLOWED_SKIPS if allowed is None else allowed
    return [f"{node}: {reason}" for node, reason in skips
            if not any(fnmatch.fnmatch(node, pattern) for pattern in allowed)]
