"""A request as the lifecycle sees it, and what its headers say it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace

from contract import semconv
from instrumented_server.deploy import DEPLOY_PATH
from instrumented_server.middleware import RequestFacts
from instrumented_server.revalidation import REVALIDATE_PATH

SESSION_COOKIE = "session"


@dataclass(frozen=True)
class Incoming:
    """A request as the lifecycle sees it, independent of the web framework; ``started`` is
    its ``time.monotonic()`` on arrival."""

    method: str
    path: str
    query: str
    facts: RequestFacts
    kind: str
    started: float

    @property
    def rsc(self) -> bool:
        return self.facts.headers.get("rsc") == "1"

    @property
    def session(self) -> str | None:
        return self.facts.cookies.get(SESSION_COOKIE)

    def name_span(self, span: trace.Span, route: str) -> None:
        """Name the server span as Next.js does: ``GET /route`` or ``RSC GET /route``."""
        prefix = "RSC " if self.rsc else ""
        span.update_name(f"{prefix}{self.method} {route}")
        span.set_attribute(semconv.NEXT_ROUTE, route)
        span.set_attribute(semconv.HTTP_ROUTE, route)


def request_kind(path: str, headers: Mapping[str, str], is_static: bool) -> str:
    if is_static:
        return semconv.KIND_STATIC_ASSET
    if path in (REVALIDATE_PATH, DEPLOY_PATH):
        return semconv.KIND_WEBHOOK
    if path.startswith("/api/"):
        return semconv.KIND_API
    if headers.get("rsc") == "1":
        prefetching = "next-router-prefetch" in headers or headers.get("purpose") == "prefetch"
        return semconv.KIND_RSC_PREFETCH if prefetching else semconv.KIND_RSC_NAVIGATION
    return semconv.KIND_DOCUMENT
