"""A reference server with an in-memory span exporter and a fast test app."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

from instrumented_server.app import build_app
from instrumented_server.definition import parse_definition
from instrumented_server.state import ServerState

SECRET = "test-secret-123"
# Turns the test app's middleware matcher into one that also runs on prefetches.
RUN_ON_PREFETCHES = {
    ', missing = [\n  { type = "header", key = "next-router-prefetch" },\n'
    '  { type = "header", key = "purpose", value = "prefetch" },\n] }]': " }]"
}

TEST_APP = f"""
name = "test-shop"
revalidate_secret = "{SECRET}"

[[upstreams]]
name = "api"
latency = {{ p50_ms = 5, p95_ms = 8 }}

[[upstreams]]
name = "slow"
latency = {{ p50_ms = 60, p95_ms = 70 }}

[[layouts]]
name = "root"

[[routes]]
path = "/"
render = "static"
fetches = [{{ name = "home", upstream = "api", path = "/home", tags = ["home"] }}]

[[routes]]
path = "/about"
render = "static"

[[routes]]
path = "/news"
render = "isr"
revalidate = 0.3
fetches = [{{ name = "news", upstream = "api", path = "/news", tags = ["news"] }}]

[[routes]]
path = "/products/[id]"
render = "dynamic"
loading = true
boundaries = ["reviews"]
fetches = [
  {{ name = "product", upstream = "api", path = "/products/{{id}}", tags = ["products", "product-{{id}}"] }},
  {{ name = "again", upstream = "api", path = "/products/{{id}}", tags = ["products", "product-{{id}}"] }},
  {{ name = "reviews", upstream = "slow", path = "/reviews/{{id}}", cache = "no-store", boundary = "reviews" }},
]

[[routes]]
path = "/profile"
render = "dynamic"
fetches = [{{ name = "me", upstream = "api", path = "/me", scope = "private" }}]

[[routes]]
path = "/dashboard"
render = "dynamic"
fetches = [
  {{ name = "stats", upstream = "slow", path = "/stats", tags = ["stats"] }},
  {{ name = "details", upstream = "slow", path = "/details", tags = ["stats"], after = "stats" }},
  {{ name = "mine", upstream = "api", path = "/mine", scope = "private" }},
]

[[routes]]
path = "/products/featured"
render = "static"

[[routes]]
path = "/blog/[...slug]"
render = "dynamic"

[[routes]]
path = "/docs/[[...slug]]"
render = "dynamic"

[[routes]]
path = "/(marketing)/pricing"
render = "static"

[[routes]]
path = "/feed"
render = "dynamic"

[[routes]]
path = "/photos/[id]"
render = "dynamic"

[[routes]]
path = "/feed/(..)photos/[id]"
render = "dynamic"

[[routes]]
path = "/cdn/[id]"
render = "isr"
revalidate = 0.3

[middleware]
cost_ms = 1
matcher = [{{ source = "/((?!api|_next/static|favicon.ico).*)", missing = [
  {{ type = "header", key = "next-router-prefetch" }},
  {{ type = "header", key = "purpose", value = "prefetch" }},
] }}]
rules = [
  {{ source = "/old", action = "redirect", destination = "/about" }},
  {{ source = "/home", action = "rewrite", destination = "/" }},
]
warmups = [
  {{ route = "/dashboard", when = [{{ type = "cookie", key = "session" }}], fetches = ["stats", "mine"] }},
]

[warmup]
max_jobs = 50
rate_per_s = 20
post_deploy_routes = 3
"""


class MovableClock:
    """The caches' clock in tests: it stands still until a test moves it, so that entries age
    exactly as the test says, however slow the machine is."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    client: TestClient
    state: ServerState
    exporter: InMemorySpanExporter
    clock: MovableClock

    def spans(self, **attributes: Any) -> list[ReadableSpan]:
        """Finished spans whose attributes include ``attributes`` (dots as ``__``)."""
        wanted = {k.replace("__", "."): v for k, v in attributes.items()}
        return [
            s
            for s in self.exporter.get_finished_spans()
            if all((s.attributes or {}).get(k) == v for k, v in wanted.items())
        ]

    def settle(self) -> None:
        """Wait for background work (stale refreshes, warm-ups) to finish."""
        self.client.portal.call(self.state.warmups.drain)  # type: ignore[union-attr]
        self.client.portal.call(self.state.background.drain)  # type: ignore[union-attr]
        self.client.portal.call(self.state.warmups.drain)  # type: ignore[union-attr]

    def reset_spans(self) -> None:
        self.exporter.clear()

    def get(self, path: str, **headers: str) -> Any:
        return self.client.get(path, headers=headers)


@pytest.fixture
def make_server() -> Iterator[Callable[..., Harness]]:
    opened: list[TestClient] = []

    def make(text: str = TEST_APP, **replacements: str) -> Harness:
        for old, new in replacements.items():
            text = text.replace(old, new)
        exporter = InMemorySpanExporter()
        clock = MovableClock()
        state = ServerState.create(parse_definition(text), exporter=exporter, clock=clock)
        client = TestClient(build_app(state), follow_redirects=False)
        client.__enter__()  # starts up: prerenders static routes, as `next build` would
        opened.append(client)
        exporter.clear()
        return Harness(client, state, exporter, clock)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def server(make_server: Callable[..., Harness]) -> Harness:
    return make_server()
