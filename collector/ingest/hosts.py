"""The ``Host`` check of every request, on every path, against DNS rebinding.

A page of another site can have its own name resolve to this collector's address (DNS
rebinding); the browser then sends the collector requests as if to that site, with
``Host: <that site>``, and reads the answers. So, before anything else:

- ``Host`` may always be ``localhost`` or a loopback address (any port);
- listening beyond loopback, it may also be any IP address: a rebound page always sends
  the name it was loaded from, never an address;
- and it may be a name listed with ``--allowed-host`` (repeat it; ``*`` lists every name).
  Listed none, the name listened on is listed (``--host collector.internal``); listening
  on every address (``0.0.0.0``, ``::``), every name is, if a token guards the collector
  (a rebound page does not know it, and the browser endpoint checks ``Origin``, which it
  cannot forge), and none is without one.

Any other request, or one without ``Host``, is answered 403 in one line that says what to do.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from collector.config import is_loopback_host
from collector.telemetry import CollectorTelemetry

ANY_NAME = "*"
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]", ""})


def host_name(header: str) -> str:
    """The name or address of a ``Host`` header, without its port, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    name = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    return name.rstrip(".")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` a collector listening on ``listen_host`` answers (module docstring)."""

    def __init__(self, listen_host: str, allowed: tuple[str, ...] = (), *, token: bool) -> None:
        self.loopback = is_loopback_host(listen_host)
        names = {host_name(name) for name in allowed}
        if not names and not self.loopback:
            if listen_host.strip("[]") in _WILDCARD_HOSTS:
                names = {ANY_NAME} if token else set()
            else:
                names = {host_name(listen_host)}
        self.names = frozenset(names)

    def accepts(self, header: str) -> bool:
        name = host_name(header)
        if not name:
            return False
        if ANY_NAME in self.names or name in self.names or is_loopback_host(name):
            return True
        return not self.loopback and _is_address(name)

    def refusal(self, header: str) -> str:
        """The one line that says why ``header`` is refused and what to do."""
        addressed = f"Host {header!r}" if header else "no Host"
        where = "localhost or 127.0.0.1" if self.loopback else "its IP address"
        return (
            f"this collector does not answer requests for {addressed} (a guard against DNS "
            f"rebinding): address it as {where}, or start it with --allowed-host "
            f"{host_name(header) or 'NAME'}\n"
        )


class HostCheckMiddleware:
    """Answers 403 to every HTTP request whose ``Host`` its :class:`HostPolicy` refuses."""

    def __init__(self, app: ASGIApp, policy: HostPolicy, telemetry: CollectorTelemetry) -> None:
        self._app = app
        self._policy = policy
        self._telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = next((v for k, v in scope["headers"] if k == b"host"), b"")
            host = header.decode("latin-1")
            if not self._policy.accepts(host):
                text = self._policy.refusal(host)
                self._telemetry.reject_request("wrong_host", 403, text.strip())
                await _misdirected(send, text.encode())
                return
        await self._app(scope, receive, send)


async def _misdirected(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
