"""Path patterns of Next.js's middleware ``matcher`` and rules, as regular expressions."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=256)
def compile_source(source: str) -> re.Pattern[str]:
    """A full-match regular expression for a matcher ``source``.

    ``:name`` matches one segment, ``:name*`` zero or more, ``:name+`` one or
    more; anything else is a regular expression, as in path-to-regexp.
    """
    if not source.startswith("/"):
        raise ValueError(f"matcher source {source!r} must start with /")

    def segment(match: re.Match[str]) -> str:
        modifier = match.group(2)
        if modifier == "*":
            return "(?:/.*)?"
        if modifier == "+":
            return "/.+"
        return "/[^/]+"

    pattern = re.sub(r"/:([A-Za-z_][A-Za-z0-9_]*)([*+]?)", segment, source)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"matcher source {source!r} is not a valid pattern: {exc}") from exc
