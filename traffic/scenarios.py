"""Named, seeded traffic scenarios: short timelines of browsing, deploys and webhooks.

- ``steady``: warm caches, normal browsing;
- ``deploy``: steady traffic, then a deploy without warm-up (a cold-cache spike), and later a
  deploy that warms the most visited routes before it takes traffic, so the two can be compared;
- ``webhook-flood``: a CMS publishes many updates at once; revalidations and warm-ups queue up
  and are rate-limited;
- ``prefetch-storm``: pages with many links in view and middleware that does not skip
  prefetches, so prefetch requests multiply the server load;
- ``prefetch-release``: the same middleware, calm at first; then a release puts the product
  grid on the shop pages and the prefetch storm starts (what the amplification alert is for);
- ``instances``: Cache Components on two instances behind the CDN: the product page's product
  in ``'use cache'`` (each instance's memory) against its price in ``'use cache: remote'``
  (shared), the dashboard's activity in ``'use cache: private'``; a deploy halfway.

A scenario runs against a server URL (loopback), bounded by its duration and a request
budget. ``speed`` compresses the timeline (and think times) for tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from opentelemetry import trace

from instrumented_server.definition import AppDefinition, Fetch, Link, Matcher, UseCache
from instrumented_server.deploy import DEPLOY_PATH
from instrumented_server.revalidation import REVALIDATE_PATH, SECRET_HEADER
from instrumented_server.routing import RouteTable
from traffic.browser import TrafficBudget, VirtualBrowser
from traffic.router_cache import STALE_TIMES, RouterCache


@dataclass(frozen=True)
class Deploy:
    warm_routes: int
    keep_data_cache: bool = False


@dataclass(frozen=True)
class WebhookFlood:
    """Revalidation webhooks sent all at once, as a CMS does when it publishes in bulk."""

    bodies: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Release:
    """A release that changes what pages show: the browsers follow its links from then on."""

    adapt_app: Callable[[AppDefinition], AppDefinition]


Event = Deploy | WebhookFlood | Release


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    browsers: int
    events: tuple[tuple[float, Event], ...] = ()
    think_time_s: float = 1.5
    signed_in_share: float = 0.5
    max_requests: int = 20_000
    adapt_app: Callable[[AppDefinition], AppDefinition] | None = None
    next_version: str = "15"

    def app(self, definition: AppDefinition) -> AppDefinition:
        return self.adapt_app(definition) if self.adapt_app else definition


def _product_grid(definition: AppDefinition) -> AppDefinition:
    """Many product links in view on every shop page."""
    grid = tuple(Link(href=f"/products/{n}") for n in range(1, 25))
    routes = []
    for route in definition.routes:
        if route.path in ("/(shop)/products", "/(shop)/products/[id]"):
            route = route.model_copy(update={"links": grid + route.links, "weight": 4.0})
        routes.append(route)
    return definition.model_copy(update={"routes": tuple(routes)})


def _prefetching_middleware(definition: AppDefinition) -> AppDefinition:
    """A matcher that runs on prefetches, and a middleware that marks responses
    ``x-middleware-cache: no-cache`` (Next.js issue #38413: the client router then keeps no
    prefetch, so every page view prefetches again)."""
    middleware = definition.middleware.model_copy(
        update={
            "matcher": (Matcher(source="/((?!api|_next/static|_next/image|favicon.ico).*)"),),
            "response_headers": {"x-middleware-cache": "no-cache"},
        }
    )
    return definition.model_copy(update={"middleware": middleware})


def _storm_app(definition: AppDefinition) -> AppDefinition:
    return _product_grid(_prefetching_middleware(definition))


CACHE_COMPONENTS: dict[str, UseCache] = {
    "product": "use cache",
    "price": "use cache: remote",
    "activity": "use cache: private",
}
"""The fetches that the ``instances`` scenario moves into ``'use cache'`` functions."""


def _cache_components(definition: AppDefinition) -> AppDefinition:
    """Two instances; the fetches of :data:`CACHE_COMPONENTS` become ``'use cache'`` functions
    of the ``minutes`` cacheLife (private ones keep no life: nothing is kept)."""

    def moved(fetch: Fetch) -> Fetch:
        directive = CACHE_COMPONENTS.get(fetch.name)
        if directive is None:
            return fetch
        life = None if directive == "use cache: private" else "minutes"
        return fetch.model_copy(update={"cache": directive, "revalidate": None, "life": life})

    routes = []
    for route in definition.routes:
        slots = [
            s.model_copy(update={"fetches": tuple(map(moved, s.fetches))}) for s in route.slots
        ]
        routes.append(
            route.model_copy(
                update={"fetches": tuple(map(moved, route.fetches)), "slots": tuple(slots)}
            )
        )
    return AppDefinition.model_validate(
        {**definition.model_dump(), "routes": [r.model_dump() for r in routes], "instances": 2}
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "warm caches, normal browsing", duration_s=30, browsers=6),
        Scenario(
            "deploy",
            "steady traffic; a deploy without warm-up at 20 s, one with warm-up at 40 s",
            duration_s=60,
            browsers=8,
            events=((20, Deploy(warm_routes=0)), (40, Deploy(warm_routes=10))),
        ),
        Scenario(
            "webhook-flood",
            "a CMS publishes 40 products at once; warm-ups queue up under the rate limit",
            duration_s=30,
            browsers=6,
            events=(
                (
                    10,
                    WebhookFlood(
                        (
                            {"tag": "products"},
                            *({"path": f"/products/{n}"} for n in range(1, 41)),
                        )
                    ),
                ),
            ),
        ),
        Scenario(
            "prefetch-storm",
            "24 links in view, middleware that runs on prefetches and disables their reuse",
            duration_s=30,
            browsers=8,
            adapt_app=_storm_app,
        ),
        Scenario(
            "prefetch-release",
            "middleware that runs on prefetches; at 20 s a release puts 24 links in view",
            duration_s=40,
            browsers=8,
            adapt_app=_prefetching_middleware,
            events=((20, Release(_product_grid)),),
        ),
        Scenario(
            "instances",
            "two instances behind the CDN: 'use cache' in each one's memory against "
            "'use cache: remote', shared; a deploy at 20 s",
            duration_s=40,
            browsers=8,
            adapt_app=_cache_components,
            events=((20, Deploy(warm_routes=0)),),
        ),
    )
}


@dataclass
class ScenarioRun:
    scenario: Scenario
    budget: TrafficBudget
    events: list[dict[str, object]] = field(default_factory=list)


def landing_pages(definition: AppDefinition) -> list[tuple[str, float]]:
    """Pages users land on, weighted by their route's popularity."""
    table = RouteTable(definition)
    hrefs = {"/"} | {link.href for route in definition.routes for link in route.links}
    pages = []
    for href in sorted(hrefs):
        match = table.resolve(href)
        if match is not None and match.route.weight > 0:
            pages.append((href, match.route.weight))
    return pages


async def run_scenario(
    scenario: Scenario,
    base_url: str,
    definition: AppDefinition,
    tracer: trace.Tracer,
    *,
    speed: float = 1.0,
    seed: int = 7,
    progress: Callable[[float, ScenarioRun], None] | None = None,
) -> ScenarioRun:
    """Browse ``base_url`` with the scenario's browsers and fire its events on time.

    Only a loopback ``base_url`` is accepted: scenarios are load tests of a local server.
    """
    host = httpx.URL(base_url).host
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"scenarios only send traffic to loopback addresses, not {host!r}")
    rng = random.Random(seed)
    started = time.monotonic()
    duration = scenario.duration_s / speed
    budget = TrafficBudget(max_requests=scenario.max_requests, deadline=started + duration)
    run = ScenarioRun(scenario, budget)
    pages = landing_pages(definition)
    # Idle connections go after 2 s, before the server closes them (uvicorn and Node close
    # after 5 s, as httpx would): a request on a connection the server is closing fails with
    # "Server disconnected", which no browser shows its user.
    limits = httpx.Limits(max_connections=64, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        browsers = [
            VirtualBrowser(
                f"b{i}",
                client,
                definition,
                tracer,
                RouterCache(STALE_TIMES[scenario.next_version]),
                budget,
                random.Random(rng.random()),
                session=f"user-{i}" if rng.random() < scenario.signed_in_share else None,
                think_time_s=scenario.think_time_s / speed,
            )
            for i in range(scenario.browsers)
        ]

        async def start(browser: VirtualBrowser, delay: float) -> None:
            await asyncio.sleep(delay)
            landing = rng.choices([p for p, _ in pages], [w for _, w in pages])[0]
            await browser.browse(landing)

        tasks = [asyncio.ensure_future(start(b, i * 0.2 / speed)) for i, b in enumerate(browsers)]
        tasks.append(
            asyncio.ensure_future(
                _events(scenario, client, definition, browsers, started, speed, run)
            )
        )
        if progress is not None:
            tasks.append(asyncio.ensure_future(_report_progress(progress, started, run, duration)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
    return run


async def _events(
    scenario: Scenario,
    client: httpx.AsyncClient,
    definition: AppDefinition,
    browsers: list[VirtualBrowser],
    started: float,
    speed: float,
    run: ScenarioRun,
) -> None:
    headers = {SECRET_HEADER: definition.revalidate_secret}
    for at, event in scenario.events:
        await asyncio.sleep(max(0.0, started + at / speed - time.monotonic()))
        if isinstance(event, Release):
            released = event.adapt_app(definition)
            for browser in browsers:
                browser.release(released)
            run.events.append({"at_s": at, "event": "release", "at_unix_s": time.time()})
        elif isinstance(event, Deploy):
            response = await client.post(
                DEPLOY_PATH,
                json={"warm_routes": event.warm_routes, "keep_data_cache": event.keep_data_cache},
                headers=headers,
            )
            run.events.append({"at_s": at, "event": "deploy", **response.json()})
        else:
            replies = await asyncio.gather(
                *(client.post(REVALIDATE_PATH, json=body, headers=headers) for body in event.bodies)
            )
            run.events.append({"at_s": at, "event": "webhooks", "sent": len(replies)})


async def _report_progress(
    progress: Callable[[float, ScenarioRun], None],
    started: float,
    run: ScenarioRun,
    duration: float,
) -> None:
    while time.monotonic() - started < duration:
        await asyncio.sleep(1.0)
        progress(time.monotonic() - started, run)
