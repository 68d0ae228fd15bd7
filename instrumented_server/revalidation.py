"""On-demand revalidation: the webhook a CMS calls when content changes.

``POST /api/revalidate`` with the shared secret in ``x-revalidate-secret``
and a JSON body:

- ``{"tag": "products"}`` is ``revalidateTag(tag, 'max')``: tagged entries
  are marked stale and served stale while they refresh;
- ``{"tag": "products", "expire": 0}`` expires them at once, so the next
  request is a blocking miss;
- ``{"path": "/products/1"}`` is ``revalidatePath``: the route's cached
  output and the data it read are purged;
- ``"warm": false`` skips the warm-up jobs that otherwise refill what was
  invalidated (shared data only: private data is never warmed from here).

A request without the right secret gets 401 and changes nothing.
"""

from __future__ import annotations

import hmac
from typing import Any

from opentelemetry import trace

from contract import semconv
from contract.errors import NextraceError
from instrumented_server.fetching import WarmTarget
from instrumented_server.state import ServerState
from instrumented_server.warmup import WarmupJob
from instrumented_server.warmup_jobs import RouteWarmer, data_job, route_job, submit_all

REVALIDATE_PATH = "/api/revalidate"
SECRET_HEADER = "x-revalidate-secret"


class RevalidationError(NextraceError, ValueError):
    """The webhook body is not a valid revalidation request."""


def authorized(state: ServerState, presented: str | None) -> bool:
    """Whether ``presented`` is the secret; any malformed header is simply not it."""
    expected = state.definition.revalidate_secret.encode("utf-8")
    given = (presented or "").encode("utf-8", "surrogateescape")
    return presented is not None and hmac.compare_digest(given, expected)


def parse(payload: Any) -> tuple[str, str, bool, bool]:
    """(kind, target, expire, warm) from a webhook body."""
    if not isinstance(payload, dict):
        raise RevalidationError('send a JSON object such as {"tag": "products"}')
    tag, path = payload.get("tag"), payload.get("path")
    if (tag is None) == (path is None):
        raise RevalidationError('send exactly one of "tag" or "path"')
    target = tag if tag is not None else path
    if not isinstance(target, str) or not target:
        raise RevalidationError('"tag" or "path" must be a non-empty string')
    expire = payload.get("expire", None) == 0 or payload.get("profile") == "expire"
    warm = payload.get("warm", True)
    if not isinstance(warm, bool):
        raise RevalidationError('"warm" must be true or false')
    return ("tag" if tag is not None else "path"), target, expire, warm


def revalidate(
    state: ServerState,
    kind: str,
    target: str,
    expire: bool,
    warm: bool,
    parent: trace.Span,
    warmer: RouteWarmer,
) -> dict[str, Any]:
    name = "revalidateTag" if kind == "tag" else "revalidatePath"
    attrs = {
        semconv.REVALIDATE_KIND: kind,
        semconv.REVALIDATE_TARGET: target,
        semconv.REVALIDATE_TRIGGER: "webhook",
        semconv.REVALIDATE_PROFILE: "expire" if expire or kind == "path" else "max",
    }
    with state.telemetry.span(f"{name} {kind}", semconv.PHASE_REVALIDATE, parent, attrs) as span:
        if kind == "tag":
            data = state.data.revalidate_tag(target, expire=expire)
            routes = state.full_route.revalidate_tag(target, expire=expire)
            cdn = state.cdn.revalidate_tag(target, expire=expire)
            functions = state.use_caches.revalidate_tag(target, expire=expire)
        else:
            data = state.data.revalidate_path(target)
            routes = state.full_route.revalidate_path(target)
            cdn = state.cdn.purge_path(target)
            functions = 0  # 'use cache' entries know their tags, not the paths that read them
        invalidated = len(data) + routes + cdn + functions
        span.set_attribute(semconv.REVALIDATE_INVALIDATED, invalidated)
        span.set_attribute(semconv.REVALIDATE_OUTCOME, "ok")
        outcomes: dict[str, int] = {}
        if warm:
            shared = [e for e in data if e.scope == "shared"]
            jobs: list[WarmupJob | None] = [
                data_job(
                    state,
                    [WarmTarget(e.upstream, e.path, e.path, e.tags, e.revalidate_s)],
                    "webhook",
                    span,
                )
                for e in shared
            ]
            if kind == "path":
                jobs.append(route_job(state, warmer, target, "webhook", span))
            outcomes = submit_all(state, jobs)
        return {
            "revalidated": True,
            kind: target,
            "profile": attrs[semconv.REVALIDATE_PROFILE],
            "invalidated": {
                "data": len(data),
                "full_route": routes,
                "cdn": cdn,
                "use_cache": functions,
            },
            "warmups": outcomes,
        }
