"""Bearer-token authentication for every endpoint of the collector.

The token comes from a file (``--token-file`` or ``NEXTRACE_TOKEN_FILE``) or
from the environment (``NEXTRACE_TOKEN``), never from a command-line flag,
which other users can read in the process list. It is compared in constant
time and never logged. Senders put it in ``Authorization: Bearer <token>``;
OpenTelemetry SDKs do that with
``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>``. A token file open to others
than its owner and its group (any of the mode bits ``0o007``, as 0644) is refused: ``chmod
600`` it. Its group may read it: a Kubernetes pod with ``fsGroup`` reads its secrets so.

The token is checked from the request's head, before any of its body is read; a request
without it is answered 401, and the rest of its body is discarded. A request with it admits
its connection (:func:`collector.ingest.connections.admit`), which from then on is no longer capped
with the connections that have not shown a credential.
"""

from __future__ import annotations

import hmac
import os
import stat
import string
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from collector.errors import ConfigError
from collector.ingest.connections import admit

TOKEN_ENV = "NEXTRACE_TOKEN"
TOKEN_FILE_ENV = "NEXTRACE_TOKEN_FILE"
MIN_TOKEN_CHARS = 16
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/=")


def load_token(token_file: Path | None = None) -> str | None:
    """The configured token, or None when there is none; ConfigError for an unusable one."""
    source = token_file or (
        Path(os.environ[TOKEN_FILE_ENV]) if os.environ.get(TOKEN_FILE_ENV) else None
    )
    if source is not None:
        try:
            mode = source.stat().st_mode
            token = source.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the token file {source}: {exc}") from exc
        if mode & 0o007:
            raise ConfigError(
                f"the token file {source} is open to users outside its owner and group (mode "
                f"{stat.S_IMODE(mode):04o}): run chmod 600 {source}"
            )
        where = f"the token file {source}"
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        where = f"${TOKEN_ENV}"
        if not token:
            return None
    if len(token) < MIN_TOKEN_CHARS or not set(token) <= _TOKEN_CHARS:
        raise ConfigError(
            f"{where} must hold a token of at least {MIN_TOKEN_CHARS} characters from "
            "A-Z a-z 0-9 - . _ ~ + / = (for example: openssl rand -hex 24)"
        )
    return token


def auth_headers(token: str | None) -> dict[str, str]:
    """The request headers that carry ``token``, if there is one."""
    return {"Authorization": f"Bearer {token}"} if token else {}


class BearerTokenMiddleware:
    """Answers 401 to every HTTP request without ``Authorization: Bearer <token>``, before
    its body is read, but for ``open_paths`` (exact paths), which check their senders
    themselves; admits the connection of a request with it."""

    def __init__(self, app: ASGIApp, token: str, open_paths: frozenset[str] = frozenset()) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode("ascii")
        self._open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self._open_paths:
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, self._expected):
                await _unauthorized(send)
                return
            admit(scope)
        await self._app(scope, receive, send)


async def _unauthorized(send: Send) -> None:
    body = b"missing or wrong bearer token: send Authorization: Bearer <token>\n"
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="nextrace"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
