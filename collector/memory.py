"""One memory budget, in bytes, for everything the collector holds: request bodies being read
and decoded, and spans queued for the store.

As the OpenTelemetry Collector's ``memory_limiter``: past the limit, new data is
refused with a :class:`TransientError` (the receiver's 503 with ``Retry-After``),
so memory stays bounded whatever the senders do. Sizes are measured by the
bodies the spans came from; decoded spans take a few times that (see
``bench/results/trust.json`` for the resident-set ceiling this gives).
"""

from __future__ import annotations

import threading

from collector.errors import TransientError

DEFAULT_MEMORY_BYTES = 64 << 20


class MemoryLimiter:
    """Thread-safe; ``reserve`` raises when the budget would be exceeded, ``release`` gives back."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        return self._used

    def reserve(self, size: int) -> None:
        with self._lock:
            # One item larger than the whole budget still passes when nothing else is held.
            if self._used and self._used + size > self.limit_bytes:
                raise TransientError(
                    f"the collector holds {self._used} bytes of spans, its limit is "
                    f"{self.limit_bytes}; retry later",
                    retry_after_s=1,
                )
            self._used += size

    def release(self, size: int) -> None:
        with self._lock:
            self._used -= size
