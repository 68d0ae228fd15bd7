"""Route resolution, in Next.js's order: static files, then routes by specificity, then 404.

Routes are compared segment by segment: a static segment beats a dynamic
segment ``[id]``, which beats a catch-all ``[...slug]``, which beats an
optional catch-all ``[[...slug]]``. Route groups ``(shop)`` do not appear in
URLs. An intercepting route (``/feed/(..)photos/[id]``) answers a soft
navigation coming from the page it sits under (``Next-Url``), while a
document request for the same URL gets the ordinary route.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from instrumented_server.definition import AppDefinition, Route

STATIC = 0
DYNAMIC = 1
CATCH_ALL = 2
OPTIONAL_CATCH_ALL = 3
STATIC_PREFIX = "/_next/static/"


@dataclass(frozen=True)
class Segment:
    kind: int
    name: str  # the literal for STATIC, else the parameter name


@dataclass(frozen=True)
class RoutePattern:
    route: Route
    segments: tuple[Segment, ...]
    template: str  # next.route: the route as Next.js names it (groups removed)
    intercepts_from: str | None = None  # URL prefix whose soft navigations it intercepts

    @property
    def priority(self) -> tuple[int, ...]:
        return tuple(s.kind for s in self.segments)


@dataclass(frozen=True)
class RouteMatch:
    pattern: RoutePattern
    params: dict[str, str | list[str]] = field(default_factory=dict)
    intercepted: bool = False

    @property
    def route(self) -> Route:
        return self.pattern.route


def _segment(text: str) -> Segment:
    if text.startswith("[[..."):
        return Segment(OPTIONAL_CATCH_ALL, text[5:-2])
    if text.startswith("[..."):
        return Segment(CATCH_ALL, text[4:-1])
    if text.startswith("["):
        return Segment(DYNAMIC, text[1:-1])
    return Segment(STATIC, text)


def compile_route(route: Route) -> RoutePattern:
    parts = [p for p in route.path.split("/") if p and not (p.startswith("(") and p.endswith(")"))]
    intercept_at = next(
        (i for i, p in enumerate(parts) if p.startswith(("(.)", "(..)", "(...)"))), None
    )
    intercepts_from = None
    if intercept_at is not None:
        parent = parts[:intercept_at]
        marker, _, first = parts[intercept_at].partition(")")
        base = {"(.": parent, "(..": parent[:-1], "(...": []}[marker]
        parts = [*base, first, *parts[intercept_at + 1 :]]
        intercepts_from = "/" + "/".join(parent)
    template = "/" + "/".join(p for p in route.path.split("/") if p and not _is_group(p))
    return RoutePattern(route, tuple(_segment(p) for p in parts), template, intercepts_from)


def _is_group(part: str) -> bool:
    return part.startswith("(") and part.endswith(")")


def _match(pattern: RoutePattern, parts: list[str]) -> dict[str, str | list[str]] | None:
    params: dict[str, str | list[str]] = {}
    for index, segment in enumerate(pattern.segments):
        if segment.kind in (CATCH_ALL, OPTIONAL_CATCH_ALL):
            rest = parts[index:]
            if not rest and segment.kind == CATCH_ALL:
                return None
            if rest:
                params[segment.name] = rest
            return params
        if index >= len(parts):
            return None
        if segment.kind == STATIC and parts[index] != segment.name:
            return None
        if segment.kind == DYNAMIC:
            params[segment.name] = parts[index]
    return params if len(parts) == len(pattern.segments) else None


class RouteTable:
    """Resolves URL paths to routes of an app definition."""

    def __init__(self, definition: AppDefinition) -> None:
        self.static_files = frozenset(definition.static_files)
        compiled = [compile_route(r) for r in definition.routes]
        self._routes = sorted(
            (p for p in compiled if p.intercepts_from is None), key=lambda p: p.priority
        )
        self._intercepting = sorted(
            (p for p in compiled if p.intercepts_from is not None), key=lambda p: p.priority
        )
        self.patterns = {p.route.path: p for p in compiled}

    def templates(self) -> list[str]:
        """The templates of the routes a URL path resolves to, in the order they are tried
        (what a browser needs to name a page's route before asking the server)."""
        return [pattern.template for pattern in self._routes]

    def is_static_file(self, path: str) -> bool:
        return path in self.static_files or path.startswith(STATIC_PREFIX)

    def interceptable(self, path: str) -> bool:
        """Whether an intercepting route could answer ``path`` (Next.js then varies on
        ``Next-Url``)."""
        parts = [p for p in path.split("/") if p]
        return any(_match(pattern, parts) is not None for pattern in self._intercepting)

    def resolve(self, path: str, soft_navigation_from: str | None = None) -> RouteMatch | None:
        """The route for ``path``; ``soft_navigation_from`` is the ``Next-Url`` of a client-side
        navigation, which lets an intercepting route answer instead."""
        parts = [p for p in path.split("/") if p]
        if soft_navigation_from is not None:
            for pattern in self._intercepting:
                assert pattern.intercepts_from is not None
                if _within(soft_navigation_from, pattern.intercepts_from):
                    params = _match(pattern, parts)
                    if params is not None:
                        return RouteMatch(pattern, params, intercepted=True)
        for pattern in self._routes:
            params = _match(pattern, parts)
            if params is not None:
                return RouteMatch(pattern, params)
        return None

    def concrete_paths(self, route: Route) -> list[str]:
        """The URLs a static or ISR route is prerendered for at build time."""
        pattern = self.patterns[route.path]
        if pattern.intercepts_from is not None:
            return []
        if not route.param_names():
            return [fill(pattern, {})]
        return [fill(pattern, params) for params in route.static_params]


def _within(url: str, prefix: str) -> bool:
    url = url.split("?", 1)[0].rstrip("/") or "/"
    return prefix == "/" or url == prefix or url.startswith(prefix.rstrip("/") + "/")


def fill(pattern: RoutePattern, params: dict[str, str | list[str]]) -> str:
    """The URL path of ``pattern`` with ``params`` filled in."""
    parts: list[str] = []
    for segment in pattern.segments:
        if segment.kind == STATIC:
            parts.append(segment.name)
        else:
            value = params.get(segment.name)
            if value is None:
                continue
            parts.extend(value if isinstance(value, list) else [value])
    return "/" + "/".join(parts)
