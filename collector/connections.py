"""Connections bounded in number and in time, below the ASGI app where uvicorn leaves them open.

uvicorn answers 503 beyond ``limit_concurrency`` only once a request has
arrived, and it has no deadline for a request's headers: a client that opens
connections and sends nothing, or a header a byte at a time, holds a file
descriptor each for as long as it likes, until nobody else can connect.
:class:`BoundedH11Protocol` closes a connection beyond ``max_connections`` at
once, and one whose request headers have not all arrived within
``header_timeout_s`` (the first request, or the next one on a keep-alive
connection). The body's deadline is the receiver's (:func:`collector.receiver.read_body`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a header deadline (class settings)."""

    max_connections = 1000
    header_timeout_s = 10.0
    _last_log = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_for: object = None  # the cycle that was current when the timer started

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            _log_rarely(f"refused a connection: {self.max_connections} are open already")
            transport.close()
            return
        self._start_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_for:  # a whole request head arrived
            self._stop_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_header_timer()  # for the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self._waiting_for = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            _log_rarely(
                f"closed a connection whose request headers took over {self.header_timeout_s:.0f} s"
            )
            self.transport.close()


def _log_rarely(message: str) -> None:
    """One line per 10 s at most: a flood of bad connections must not flood the log."""
    now = time.monotonic()
    if now - BoundedH11Protocol._last_log >= 10:
        BoundedH11Protocol._last_log = now
        log.warning("%s (logged once per 10 s)", message)


def connection_cap(wanted: int, reserve: int = 256) -> int:
    """Raise this process's open-files limit so that ``wanted`` connections fit beside
    ``reserve`` descriptors for the store; the cap that fits under the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + reserve
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    cap = min(wanted, max(16, soft - reserve))
    if cap < wanted:
        log.warning("the open-files limit is %d: at most %d connections, not %d", soft, cap, wanted)
    return cap


class RareAcceptErrors(logging.Filter):
    """Lets asyncio's "socket.accept() out of system resource" through once per 10 s: out of
    descriptors, it would log a traceback for every attempt."""

    def __init__(self) -> None:
        super().__init__()
        self._last = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        if "socket.accept() out of system resource" not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self._last < 10:
            return False
        self._last = now
        return True
