"""The app the reference server serves, declared in a TOML file and validated.

An app lists upstream APIs, layouts and routes in the App Router's
file-system style (``/products/[id]``, ``/blog/[...slug]``,
``/docs/[[...slug]]``, route groups ``(shop)``, parallel slots ``@analytics``,
intercepting routes ``/feed/(..)photos/[id]``), each route with its
rendering mode, ``loading`` fallback, data fetches and Suspense boundaries,
plus the middleware, CDN and warm-up settings. ``load_definition`` reports
every mistake with its location in the file.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract.errors import NextraceError
from instrumented_server.cache_life import BUILT_IN, CacheLife
from instrumented_server.patterns import compile_source

_SEGMENT = re.compile(
    r"^(?:[A-Za-z0-9_.~-]+|\[[A-Za-z_][A-Za-z0-9_]*\]|\[\.\.\.[A-Za-z_][A-Za-z0-9_]*\]"
    r"|\[\[\.\.\.[A-Za-z_][A-Za-z0-9_]*\]\]|\([A-Za-z0-9_-]+\)|\((?:\.|\.\.|\.\.\.)\)[A-Za-z0-9_.~-]+)$"
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class DefinitionError(NextraceError, ValueError):
    """The app definition is invalid; the message lists every mistake and where it is."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(_Strict):
    """Upstream latency: a log-normal distribution with this median and 95th percentile."""

    p50_ms: float = Field(gt=0)
    p95_ms: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if self.p95_ms < self.p50_ms:
            raise ValueError("p95_ms must be at least p50_ms")
        return self


class Upstream(_Strict):
    name: str
    latency: Latency
    error_rate: float = Field(default=0.0, ge=0, le=1)


UseCache = Literal["use cache", "use cache: remote", "use cache: private"]
USE_CACHE: tuple[str, ...] = get_args(UseCache)


class Fetch(_Strict):
    """One ``fetch`` in a layout, page or slot, or one call of a ``'use cache'`` function
    (Cache Components): ``cache = "use cache"`` (or ``": remote"``, ``": private"``) names the
    directive; ``name`` is then the function's, and ``life`` its ``cacheLife`` profile."""

    name: str
    upstream: str
    path: str = Field(description="Upstream path; {param} takes a route parameter")
    cache: Literal["force-cache", "no-store", "revalidate"] | UseCache = "force-cache"
    revalidate: float | None = Field(default=None, gt=0)
    life: str | None = Field(default=None, description="A 'use cache' function's cacheLife")
    tags: tuple[str, ...] = ()
    boundary: str | None = None
    after: str | None = None
    scope: Literal["shared", "private"] = "shared"

    @model_validator(mode="after")
    def _revalidate_matches_cache(self) -> Fetch:
        if self.cache == "revalidate" and self.revalidate is None:
            raise ValueError("cache = 'revalidate' needs revalidate = SECONDS")
        if self.cache != "revalidate" and self.revalidate is not None:
            raise ValueError("revalidate is only allowed with cache = 'revalidate'")
        if self.life is not None and self.directive is None:
            raise ValueError("life (a cacheLife profile) is only allowed with 'use cache'")
        if self.scope == "private" and self.directive in ("use cache", "use cache: remote"):
            # Their entries are shared by every user: a user's data needs 'use cache: private'.
            raise ValueError(f"scope = 'private' cannot be cached with {self.cache!r}")
        for tag in self.tags:
            if not tag or len(tag) > 256:
                raise ValueError(f"tag {tag!r} must be 1 to 256 characters")
        return self

    @property
    def directive(self) -> UseCache | None:
        """The ``'use cache'`` directive of a function's call; None for a plain fetch."""
        return cast(UseCache, self.cache) if self.cache in USE_CACHE else None


class Layout(_Strict):
    name: str
    fetches: tuple[Fetch, ...] = ()


class Slot(_Strict):
    """A parallel route slot (``@name``) rendered beside the page."""

    name: str = Field(pattern=r"^@[A-Za-z0-9_-]+$")
    fetches: tuple[Fetch, ...] = ()


class Link(_Strict):
    """A ``<Link>`` on the page, for the virtual browsers."""

    href: str
    prefetch: Literal["auto", "full", "off"] = "auto"


class Route(_Strict):
    path: str
    render: Literal["static", "isr", "dynamic"]
    revalidate: float | None = Field(default=None, gt=0)
    loading: bool = False
    layouts: tuple[str, ...] = ("root",)
    fetches: tuple[Fetch, ...] = ()
    boundaries: tuple[str, ...] = ()
    slots: tuple[Slot, ...] = ()
    static_params: tuple[dict[str, str | list[str]], ...] = ()
    links: tuple[Link, ...] = ()
    weight: float = Field(default=1.0, ge=0, description="How often users visit it")

    @model_validator(mode="after")
    def _shape(self) -> Route:
        if not self.path.startswith("/"):
            raise ValueError(f"route path {self.path!r} must start with /")
        for segment in [s for s in self.path.split("/") if s]:
            if not _SEGMENT.match(segment):
                raise ValueError(f"route path {self.path!r}: invalid segment {segment!r}")
        if self.render == "isr" and self.revalidate is None:
            raise ValueError("render = 'isr' needs revalidate = SECONDS")
        if self.render != "isr" and self.revalidate is not None:
            raise ValueError("revalidate is only allowed with render = 'isr'")
        names = [f.name for f in self.all_fetches()]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"fetch names must be unique within a route: {sorted(duplicates)}")
        params = set(self.param_names())
        for fetch in self.fetches:
            if fetch.boundary is not None and fetch.boundary not in self.boundaries:
                raise ValueError(
                    f"fetch {fetch.name!r} streams in boundary {fetch.boundary!r}, "
                    f"which is not in boundaries {list(self.boundaries)}"
                )
        for fetch in self.all_fetches():
            missing = set(_PLACEHOLDER.findall(fetch.path)) - params
            if missing:
                raise ValueError(
                    f"fetch {fetch.name!r} uses {sorted(missing)}, which the route "
                    f"{self.path!r} does not have"
                )
            if fetch.after is not None:
                if fetch.after not in names:
                    raise ValueError(f"fetch {fetch.name!r} is after unknown fetch {fetch.after!r}")
                self._check_no_cycle(fetch)
        return self

    def _check_no_cycle(self, fetch: Fetch) -> None:
        by_name = {f.name: f for f in self.all_fetches()}
        seen = {fetch.name}
        current = fetch
        while current.after is not None:
            if current.after in seen:
                raise ValueError(f"fetches {sorted(seen)} wait for each other in a cycle")
            seen.add(current.after)
            current = by_name[current.after]

    def all_fetches(self) -> list[Fetch]:
        return [*self.fetches, *(f for slot in self.slots for f in slot.fetches)]

    def param_names(self) -> list[str]:
        return [
            s.strip("[]").removeprefix("...") for s in self.path.split("/") if s.startswith("[")
        ]


class Condition(_Strict):
    """A ``has``/``missing`` condition, as in Next.js's middleware matcher."""

    type: Literal["header", "cookie", "query"]
    key: str
    value: str | None = Field(default=None, description="A regular expression; None: any value")


class Matcher(_Strict):
    source: str
    has: tuple[Condition, ...] = ()
    missing: tuple[Condition, ...] = ()

    @model_validator(mode="after")
    def _compiles(self) -> Matcher:
        compile_source(self.source)
        return self


class MiddlewareRule(_Strict):
    source: str
    action: Literal["rewrite", "redirect"]
    destination: str

    @model_validator(mode="after")
    def _compiles(self) -> MiddlewareRule:
        compile_source(self.source)
        return self


class WarmupRule(_Strict):
    """Predictive warm-up: on a request to ``route`` that meets ``when``, warm ``fetches``."""

    route: str
    when: tuple[Condition, ...] = ()
    fetches: tuple[str, ...] = ()


class Middleware(_Strict):
    matcher: tuple[Matcher, ...] = (
        Matcher(source="/((?!_next/static|_next/image|favicon.ico).*)"),
    )
    cost_ms: float = Field(default=2.0, ge=0)
    rules: tuple[MiddlewareRule, ...] = ()
    warmups: tuple[WarmupRule, ...] = ()
    response_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers the middleware adds (NextResponse.next({headers})), for example "
        "x-middleware-cache: no-cache, which stops the client router from reusing prefetches",
    )


class Cdn(_Strict):
    enabled: bool = True
    max_entries: int = Field(default=10_000, gt=0)


class Caches(_Strict):
    data_cache_max_entries: int = Field(default=10_000, gt=0)
    keep_data_cache_on_deploy: bool = False


class WarmupSettings(_Strict):
    max_jobs: int = Field(default=200, gt=0)
    rate_per_s: float = Field(default=20.0, gt=0)
    workers: int = Field(default=4, gt=0)
    post_deploy_routes: int = Field(default=10, ge=0)


PUBLISHED_SECRET = "change-me-please"
"""The shipped app's revalidation secret: printed in the README, so never used beyond loopback."""


class AppDefinition(_Strict):
    name: str
    build_id: str = "build-1"
    revalidate_secret: str = Field(min_length=8)
    upstreams: tuple[Upstream, ...]
    layouts: tuple[Layout, ...] = (Layout(name="root"),)
    routes: tuple[Route, ...]
    static_files: tuple[str, ...] = ("/favicon.ico", "/robots.txt")
    middleware: Middleware = Middleware()
    cdn: Cdn = Cdn()
    caches: Caches = Caches()
    warmup: WarmupSettings = WarmupSettings()
    cache_life: dict[str, CacheLife] = Field(
        default_factory=dict,
        description="cacheLife profiles beside (or over) Next.js's built-in ones",
    )
    instances: int = Field(
        default=1,
        ge=1,
        le=16,
        description="`next start` instances behind the CDN, taking its requests in turn: "
        "each keeps its own in-memory 'use cache' entries; a remote handler's are shared",
    )

    @model_validator(mode="after")
    def _references(self) -> AppDefinition:
        problems: list[str] = []
        upstreams = {u.name for u in self.upstreams}
        layouts = {layout.name for layout in self.layouts}
        paths = [r.path for r in self.routes]
        for path in {p for p in paths if paths.count(p) > 1}:
            problems.append(f"route {path!r} is declared more than once")
        for route in self.routes:
            for layout in route.layouts:
                if layout not in layouts:
                    problems.append(f"route {route.path!r} uses unknown layout {layout!r}")
            for fetch in route.all_fetches():
                if fetch.upstream not in upstreams:
                    problems.append(
                        f"route {route.path!r}, fetch {fetch.name!r}: unknown upstream "
                        f"{fetch.upstream!r} (declared: {sorted(upstreams)})"
                    )
        for declared in self.layouts:
            for fetch in declared.fetches:
                if fetch.upstream not in upstreams:
                    problems.append(
                        f"layout {declared.name!r}, fetch {fetch.name!r}: unknown upstream "
                        f"{fetch.upstream!r}"
                    )
                if _PLACEHOLDER.search(fetch.path):
                    problems.append(f"layout {declared.name!r}: fetch paths cannot use parameters")
        fetches = [f for r in self.routes for f in r.all_fetches()]
        fetches += [f for layout in self.layouts for f in layout.fetches]
        for fetch in fetches:
            if (
                fetch.directive is not None
                and (fetch.life or "default") not in self.life_profiles()
            ):
                problems.append(
                    f"fetch {fetch.name!r}: unknown cacheLife profile {fetch.life!r} "
                    f"(known: {sorted(self.life_profiles())})"
                )
        by_path = {r.path: r for r in self.routes}
        for rule in self.middleware.warmups:
            target = by_path.get(rule.route)
            if target is None:
                problems.append(f"middleware warm-up for unknown route {rule.route!r}")
                continue
            known = {f.name for f in target.all_fetches()}
            for name in rule.fetches:
                if name not in known:
                    problems.append(
                        f"middleware warm-up for {rule.route!r}: unknown fetch {name!r}"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def life_profiles(self) -> dict[str, CacheLife]:
        """The ``cacheLife`` profiles its ``'use cache'`` functions may name."""
        return {**BUILT_IN, **self.cache_life}

    def life_of(self, fetch: Fetch) -> CacheLife:
        return self.life_profiles()[fetch.life or "default"]

    def route(self, path: str) -> Route:
        for route in self.routes:
            if route.path == path:
                return route
        raise KeyError(path)

    def layout(self, name: str) -> Layout:
        for layout in self.layouts:
            if layout.name == name:
                return layout
        raise KeyError(name)

    def upstream(self, name: str) -> Upstream:
        for upstream in self.upstreams:
            if upstream.name == name:
                return upstream
        raise KeyError(name)


def parse_definition(text: str, source: str = "<app definition>") -> AppDefinition:
    """Parse and validate a TOML app definition; raise :class:`DefinitionError` on mistakes."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return AppDefinition.model_validate(document)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"  {where}: {message}")
        raise DefinitionError(
            f"{source}: {exc.error_count()} mistake(s):\n" + "\n".join(lines)
        ) from exc


def load_definition(path: Path | None = None) -> AppDefinition:
    """Load ``path`` (TOML, or JSON as written by :func:`dump_definition`), or the default
    shop-and-dashboard app that ships with the package."""
    if path is None:
        text = (resources.files("instrumented_server") / "default_app.toml").read_text("utf-8")
        return parse_definition(text, "default_app.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(f"cannot read the app definition {path}: {exc}") from exc
    if path.suffix == ".json":
        try:
            return AppDefinition.model_validate_json(text)
        except ValidationError as exc:
            raise DefinitionError(f"{path}: {exc}") from exc
    return parse_definition(text, str(path))


def dump_definition(definition: AppDefinition, path: Path) -> None:
    """Write a (possibly modified) definition where ``nextrace serve --app`` can read it."""
    path.write_text(definition.model_dump_json(indent=2), encoding="utf-8")
