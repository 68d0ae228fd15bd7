"""Memory budgets, in bytes: one for everything the collector holds for senders it trusts
(request bodies being read and decoded, and spans queued for the store), and a small one for
the bodies of requests whose sender is not yet known (a Vercel delivery before its signature
is checked, a browser's beacon).

As the OpenTelemetry Collector's ``memory_limiter``: past the limit, new data is
refused with a :class:`TransientError` (the receiver's 503 with ``Retry-After``),
so memory stays bounded whatever the senders do. Sizes are measured by the
bodies the spans came from; decoded spans take a few times that (see
``bench/results/trust.json`` for the resident-set ceiling this gives). A request's bytes
are counted as they arrive (:class:`Hold`), whether it declared a ``Content-Length`` or
sent its body in chunks.
"""

from __future__ import annotations

import threading

from collector.errors import TransientError

DEFAULT_MEMORY_BYTES = 64 << 20
DEFAULT_UNAUTHENTICATED_MEMORY_BYTES = 4 << 20


class MemoryLimiter:
    """Thread-safe; ``reserve`` raises when the budget would be exceeded, ``release`` gives back.
    ``holding`` names what it counts, for the 503's message."""

    def __init__(self, limit_bytes: int, holding: str = "spans") -> None:
        self.limit_bytes = limit_bytes
        self.holding = holding
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        return self._used

    def reserve(self, size: int, *, held: int = 0) -> None:
        """Count ``size`` more bytes of an item that holds ``held`` bytes already."""
        with self._lock:
            # One item larger than the whole budget still passes when nothing else is held.
            if self._used > held and self._used + size > self.limit_bytes:
                raise TransientError(
                    f"the collector holds {self._used} bytes of {self.holding}, its limit is "
                    f"{self.limit_bytes}; retry later",
                    retry_after_s=1,
                )
            self._used += size

    def release(self, size: int) -> None:
        with self._lock:
            self._used -= size


class Hold:
    """The bytes one request holds against a :class:`MemoryLimiter`, grown as they arrive;
    ``release`` once the request is done (idempotent)."""

    def __init__(self, limiter: MemoryLimiter) -> None:
        self.limiter = limiter
        self.bytes = 0

    def grow_to(self, total: int) -> None:
        """Hold ``total`` bytes in all; TransientError (nothing more held) past the budget."""
        if total > self.bytes:
            self.limiter.reserve(total - self.bytes, held=self.bytes)
            self.bytes = total

    def move_to(self, limiter: MemoryLimiter) -> None:
        """Count what is held against ``limiter`` instead; TransientError (and nothing moved)
        if it has no room."""
        if limiter is self.limiter:
            return
        limiter.reserve(self.bytes)
        self.limiter.release(self.bytes)
        self.limiter = limiter

    def release(self) -> None:
        self.limiter.release(self.bytes)
        self.bytes = 0
