"""Connections bounded in number and in time, below the ASGI app where uvicorn leaves them open.

uvicorn answers 503 beyond ``limit_concurrency`` only once a request has
arrived, and it has no deadline for a request's headers: a client that opens
connections and sends nothing, or a header a byte at a time, holds a file
descriptor each for as long as it likes, until nobody else can connect.
:class:`BoundedH11Protocol` closes one whose request headers have not all arrived
within ``header_timeout_s`` (the first request, or the next one on a keep-alive
connection), and caps connections apart by what the collector knows of them:

- a connection is *pending* until it has carried a request whose credential was checked
  (:func:`admit`: the bearer token, a Vercel signature, a Logpush token; with no token
  configured, any request). Pending connections are at most ``max_pending``, and at most
  ``max_pending_per_address`` from one address (an IPv6 /64 counts as one): a new one
  beyond either cap closes the *oldest* pending one (of that address, or of all), so
  whoever opens idle connections, from one address or many, only ever displaces its own,
  and a fresh connection always gets in long enough to present its token;
- all connections are at most ``max_connections``: beyond it, the oldest pending one is
  closed, or, when every one is authenticated, the new one.

A browser's beacon does not admit its connection: its key is public. The body's deadline is
the receiver's (:func:`collector.ingest.receiver.read_body`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from typing import Any, ClassVar

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from collector.config import DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_PER_ADDRESS

log = logging.getLogger(__name__)

ADMIT_KEY = "nextrace.admit"
"""Where a request's scope carries its connection's admission (``scope["extensions"]``)."""


def admit(scope: Scope) -> None:
    """Mark the connection that carried ``scope`` as authenticated: call once the request's
    credential has been checked. Outside a :class:`BoundedH11Protocol`, nothing happens."""
    hook = scope.get("extensions", {}).get(ADMIT_KEY)
    if hook is not None:
        hook()


def address_of(client: tuple[str, int] | None) -> str:
    """The address a connection's caps count it under: its IP, or its IPv6 /64."""
    host = client[0] if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


class ConnectionLimits:
    """The caps of one server, and the connections they count (its event loop's only)."""

    def __init__(
        self,
        max_connections: int = 1000,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_pending_per_address: int = DEFAULT_MAX_PENDING_PER_ADDRESS,
        header_timeout_s: float = 10.0,
        admit_every_request: bool = True,
    ) -> None:
        self.max_connections = max_connections
        self.max_pending = min(max_pending, max_connections)
        self.max_pending_per_address = min(max_pending_per_address, self.max_pending)
        self.header_timeout_s = header_timeout_s
        self.admit_every_request = admit_every_request
        # Oldest first (dicts keep insertion order).
        self.pending: dict[BoundedH11Protocol, None] = {}
        self.pending_from: dict[str, dict[BoundedH11Protocol, None]] = {}
        self.authenticated: set[BoundedH11Protocol] = set()
        self.evicted = 0  # pending connections closed to make room, since start

    def take(self, connection: BoundedH11Protocol) -> bool:
        """Count a new connection as pending, closing older pending ones to make room; False
        if there is none to close (every connection is authenticated): refuse it."""
        if len(self.pending) + len(self.authenticated) >= self.max_connections:
            if not self.pending:
                return False
            self._evict(next(iter(self.pending)), "open connections")
        same = self.pending_from.setdefault(connection.address, {})
        if len(same) >= self.max_pending_per_address:
            self._evict(next(iter(same)), f"pending connections from {connection.address}")
        if len(self.pending) >= self.max_pending:
            self._evict(next(iter(self.pending)), "pending connections")
        self.pending[connection] = None
        self.pending_from.setdefault(connection.address, {})[connection] = None
        return True

    def admit(self, connection: BoundedH11Protocol) -> None:
        if connection in self.pending:
            self._forget_pending(connection)
            self.authenticated.add(connection)

    def forget(self, connection: BoundedH11Protocol) -> None:
        self._forget_pending(connection)
        self.authenticated.discard(connection)

    def _forget_pending(self, connection: BoundedH11Protocol) -> None:
        if connection in self.pending:
            del self.pending[connection]
            same = self.pending_from[connection.address]
            del same[connection]
            if not same:
                del self.pending_from[connection.address]

    def _evict(self, connection: BoundedH11Protocol, cap: str) -> None:
        self.forget(connection)
        self.evicted += 1
        _log_rarely(
            f"closed the oldest connection that had not authenticated: too many {cap} "
            f"({self.evicted} closed so far)"
        )
        connection.transport.close()


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with connection caps and a header deadline; use
    :meth:`configured` for a class with caps of its own."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    _last_log = 0.0

    @classmethod
    def configured(cls, **caps: Any) -> type[BoundedH11Protocol]:
        """A subclass whose connections share one :class:`ConnectionLimits` of ``caps``."""
        return type("CollectorH11Protocol", (cls,), {"limits": ConnectionLimits(**caps)})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The caps above decide; uvicorn's limit_concurrency would count idle pending
        # connections and answer a token holder 503.
        self.limit_concurrency = None
        self.address = ""
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_for: object = None  # the cycle that was current when the timer started
        self.app = self._admitting(self.app)

    def _admitting(self, app: ASGIApp) -> ASGIApp:
        """``app``, called with this connection's admission in each request's scope."""
        limits, connection = self.limits, self

        async def with_admission(scope: Scope, receive: Receive, send: Send) -> None:
            if limits.admit_every_request:
                limits.admit(connection)
            else:
                scope.setdefault("extensions", {})[ADMIT_KEY] = lambda: limits.admit(connection)
            await app(scope, receive, send)

        return with_admission

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.address = address_of(self.client)
        if not self.limits.take(self):
            _log_rarely(
                f"refused a connection: {self.limits.max_connections} authenticated ones are open"
            )
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
        self.limits.forget(self)
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self._waiting_for = self.cycle
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout_s, self._headers_too_slow
        )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            _log_rarely(
                "closed a connection whose request headers took over "
                f"{self.limits.header_timeout_s:.0f} s"
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
