"""Errors, sorted by what the caller should do about them.

As in the OpenTelemetry Collector, a *permanent* error means the data can
never be accepted (answer 400 or drop it, and count it), while a *transient*
error means the same data may succeed later (answer 503 or retry).
"""

from __future__ import annotations

from contract.errors import NextraceError

__all__ = [
    "ConfigError",
    "NextraceError",
    "PermanentError",
    "QueryFailed",
    "ReadOnlyViolation",
    "RowsRejected",
    "StoreError",
    "StoreLockedError",
    "TransientError",
]


class ConfigError(NextraceError):
    """A setting or DSN is invalid; the message says which and how to fix it."""


class PermanentError(NextraceError):
    """The data can never be accepted; retrying the same data cannot help."""

    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.http_status = http_status


class RowsRejected(PermanentError):
    """Some rows of a batch could never be stored; the others were. ``rejected`` counts them."""

    def __init__(self, message: str, rejected: int) -> None:
        super().__init__(message)
        self.rejected = rejected


class TransientError(NextraceError):
    """The data could be accepted later; the caller should retry after a pause."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PartsDetached(TransientError):
    """A statement failed on broken parts of the store, which are now detached: retry."""


class StoreError(NextraceError):
    """The ClickHouse store cannot be opened or used."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store folder."""

    def __init__(self, path: str, pid: int | None) -> None:
        owner = f"process {pid}" if pid else "another process"
        super().__init__(
            f"the embedded store {path} is in use by {owner} (a running `nextrace collect`?). "
            "chDB lets only one process open a store folder: stop that process, query through it "
            "with `nextrace sql`, or use another folder."
        )
        self.path = path
        self.pid = pid


class ReadOnlyViolation(PermanentError):
    """A statement that would change the store was sent where only reads are allowed."""


class QueryFailed(PermanentError):
    """ClickHouse could not run a reading statement (syntax, unknown column…); the message is
    ClickHouse's, about the text the user wrote."""
