"""The root of every error nextrace raises on purpose.

Each package sorts its own errors under :class:`NextraceError` (the collector's
``collector.errors`` adds permanent and transient ones), so that the command
line catches one type and prints its message as one line: the message of a
``NextraceError`` is written for the user and says what to do.
"""

from __future__ import annotations


class NextraceError(Exception):
    """Base of every error that nextrace raises on purpose; its message is for the user."""
