"""The middleware phase: matcher, redirects and rewrites, and predictive warm-up.

The matcher follows Next.js's ``config.matcher``: a ``source`` path pattern
(``/dashboard/:path*`` or a regular expression such as
``/((?!api|_next/static).*)``) with ``has`` and ``missing`` conditions on
headers, cookies and query parameters. The documented way to keep prefetches
out of middleware is ``missing: [{type: header, key: next-router-prefetch},
{type: header, key: purpose, value: prefetch}]``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry import trace

from contract import nextjs, semconv
from instrumented_server.definition import Condition, Matcher, Middleware, WarmupRule
from instrumented_server.fetching import WarmTarget
from instrumented_server.patterns import compile_source
from instrumented_server.routing import RouteMatch
from instrumented_server.state import ServerState
from instrumented_server.warmup_jobs import data_job, submit_all


@dataclass(frozen=True)
class RequestFacts:
    """What middleware can see of a request."""

    path: str
    headers: Mapping[str, str]  # lower-case names
    cookies: Mapping[str, str]
    query: Mapping[str, str]


def condition_holds(condition: Condition, facts: RequestFacts) -> bool:
    source = {"header": facts.headers, "cookie": facts.cookies, "query": facts.query}
    values = source[condition.type]
    key = condition.key.lower() if condition.type == "header" else condition.key
    if key not in values:
        return False
    return condition.value is None or re.fullmatch(condition.value, values[key]) is not None


def matcher_matches(matcher: Matcher, facts: RequestFacts) -> bool:
    if not compile_source(matcher.source).fullmatch(facts.path):
        return False
    if not all(condition_holds(c, facts) for c in matcher.has):
        return False
    return not any(condition_holds(c, facts) for c in matcher.missing)


def runs_on(middleware: Middleware, facts: RequestFacts) -> bool:
    """Whether the middleware runs for this request at all."""
    return any(matcher_matches(m, facts) for m in middleware.matcher)


@dataclass(frozen=True)
class MiddlewareDecision:
    action: Literal["continue", "rewrite", "redirect"]
    destination: str = ""
    warmups: tuple[WarmupRule, ...] = field(default=())


def decide(
    middleware: Middleware, facts: RequestFacts, route_template: str | None
) -> MiddlewareDecision:
    """What the middleware does: the first matching rule, and the warm-ups that it fires.

    Warm-up rules fire only for requests to their route that meet every ``when``
    condition (for example, users with a session cookie), never for everyone.
    """
    warmups = tuple(
        rule
        for rule in middleware.warmups
        if rule.route == route_template and all(condition_holds(c, facts) for c in rule.when)
    )
    for rule in middleware.rules:
        if compile_source(rule.source).fullmatch(facts.path):
            return MiddlewareDecision(rule.action, rule.destination, warmups)
    return MiddlewareDecision("continue", "", warmups)


async def run_middleware(
    state: ServerState, facts: RequestFacts, kind: str, session: str | None, span: trace.Span
) -> MiddlewareDecision:
    """The middleware phase of one request, as a child span of ``span``: its cost, its
    decision, and the warm-ups its rules fire (queued, never awaited)."""
    middleware = state.definition.middleware
    attrs = {
        semconv.REQUEST_KIND: kind,
        semconv.NEXT_PREFETCH: prefetch_mode(facts.headers),
        semconv.MIDDLEWARE_MATCHED: True,
    }
    span.set_attribute(semconv.MIDDLEWARE_MATCHED, True)
    with state.telemetry.span(
        "middleware", semconv.PHASE_MIDDLEWARE, span, attrs, span_type=nextjs.MIDDLEWARE
    ) as mw_span:
        await asyncio.sleep(middleware.cost_ms / 1000)
        match = state.routes.resolve(facts.path)
        decision = decide(middleware, facts, match.route.path if match else None)
        mw_span.set_attribute(semconv.MIDDLEWARE_ACTION, decision.action)
        if decision.warmups and match is not None:
            _fire_warmups(state, decision, match, session, mw_span)
        return decision


def prefetch_mode(headers: Mapping[str, str]) -> str:
    """``next.prefetch``: segment, auto (a prefetch) or none."""
    if "next-router-segment-prefetch" in headers:
        return "segment"
    if "next-router-prefetch" in headers or headers.get("purpose") == "prefetch":
        return "auto"
    return "none"


def _fire_warmups(
    state: ServerState,
    decision: MiddlewareDecision,
    match: RouteMatch,
    session: str | None,
    span: trace.Span,
) -> None:
    """Predictive warm-up: queue the data the route will need, without waiting for it."""
    started = time.perf_counter()
    by_name = {f.name: f for f in match.route.all_fetches()}
    targets = [
        WarmTarget.of_fetch(by_name[name], match.params, session)
        for rule in decision.warmups
        for name in rule.fetches
        if by_name[name].scope == "shared" or session
    ]
    outcomes = submit_all(state, (data_job(state, [t], "middleware", span) for t in targets))
    span.set_attribute(semconv.WARMUP_FIRED, sum(outcomes.values()))
    span.set_attribute(semconv.WARMUP_COST_MS, round((time.perf_counter() - started) * 1000, 3))
