"""The middleware phase: matcher, redirects and rewrites, and predictive warm-up.

The matcher follows Next.js's ``config.matcher``: a ``source`` path pattern
(``/dashboard/:path*`` or a regular expression such as
``/((?!api|_next/static).*)``) with ``has`` and ``missing`` conditions on
headers, cookies and query parameters. The documented way to keep prefetches
out of middleware is ``missing: [{type: header, key: next-router-prefetch},
{type: header, key: purpose, value: prefetch}]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from instrumented_server.definition import Condition, Matcher, Middleware, WarmupRule
from instrumented_server.patterns import compile_source


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
