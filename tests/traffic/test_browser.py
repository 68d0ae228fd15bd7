"""A virtual browser against the reference server: one navigation is one trace."""

from __future__ import annotations

import random
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from traffic.browser import TrafficBudget, VirtualBrowser
from traffic.router_cache import STALE_TIMES, RouterCache

LINKS = (
    'path = "/"\nrender = "static"\n'
    'links = [{ href = "/about" }, { href = "/products/1" }, '
    '{ href = "/profile", prefetch = "off" }]'
)


def browse(server, steps) -> tuple[TrafficBudget, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    budget = TrafficBudget(max_requests=100, deadline=float("inf"))

    async def run() -> None:
        transport = httpx.ASGITransport(app=server.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            browser = VirtualBrowser(
                "b0",
                client,
                server.state.definition,
                provider.get_tracer("browser"),
                RouterCache(STALE_TIMES["15"]),
                budget,
                random.Random(1),
            )
            await steps(browser)

    server.client.portal.call(run)
    return budget, exporter


def test_prefetched_pages_are_reused_and_the_server_joins_the_browser_trace(make_server):
    server = make_server(**{'path = "/"\nrender = "static"': LINKS})

    async def steps(browser) -> None:
        await browser.land("/")
        for task in list(browser._in_flight.values()):  # the viewport prefetches
            await task
        await browser.navigate("/about")  # full payload prefetched: no request
        await browser.navigate("/products/1")  # loading state prefetched: partial
        await browser.navigate("/profile")  # prefetch="off": a miss

    budget, exporter = browse(server, steps)
    assert budget.router == {"hit": 1, "partial": 1, "miss": 2}  # the landing counts as a miss
    assert budget.prefetches == 2
    spans: list[Any] = list(exporter.get_finished_spans())
    navigations = [s for s in spans if s.attributes.get("nextrace.phase") == "navigation"]
    results = {
        s.attributes["nextrace.navigation.href"]: s.attributes["nextrace.navigation.router_cache"]
        for s in navigations
    }
    assert results == {"/": "miss", "/about": "hit", "/products/1": "partial", "/profile": "miss"}
    lookup = next(
        s
        for s in spans
        if s.name == "router cache lookup" and s.attributes["cache.key"] == "/products/1"
    )
    prefetch = next(
        s
        for s in spans
        if s.attributes.get("nextrace.phase") == "prefetch"
        and s.attributes["nextrace.navigation.href"] == "/products/1"
    )
    assert lookup.attributes["cache.entry.source"] == "prefetch"
    assert lookup.attributes["cache.entry.source_trace_id"] == format(
        prefetch.context.trace_id, "032x"
    )
    # The server's request span is a child of the browser's navigation span.
    nav = next(s for s in navigations if s.attributes["nextrace.navigation.href"] == "/products/1")
    (request,) = [
        s
        for s in server.spans(nextrace__phase="request")
        if s.context.trace_id == nav.context.trace_id
    ]
    assert request.parent.span_id == nav.context.span_id
    assert request.attributes["nextrace.request.kind"] == "rsc_navigation"
    assert not any(
        s.attributes.get("nextrace.navigation.href") == "/profile"
        and s.attributes.get("nextrace.phase") == "prefetch"
        for s in spans
    )


def test_the_budget_bounds_the_traffic(make_server):
    server = make_server(**{'path = "/"\nrender = "static"': LINKS})

    async def steps(browser) -> None:
        browser._budget.max_requests = 2
        await browser.land("/")
        await browser.navigate("/profile")
        await browser.navigate("/products/1")

    budget, _ = browse(server, steps)
    assert budget.requests == 2


def test_back_and_forward_reuse_the_router_cache(make_server):
    server = make_server(**{'path = "/"\nrender = "static"': LINKS})

    async def steps(browser) -> None:
        await browser.land("/")
        await browser.navigate("/profile")  # a dynamic page: Next 15 does not reuse it…
        await browser.back()  # …except on back and forward
        await browser.forward()

    budget, exporter = browse(server, steps)
    spans: list[Any] = list(exporter.get_finished_spans())
    types = [
        s.attributes["nextrace.navigation.type"]
        for s in spans
        if s.attributes.get("nextrace.phase") == "navigation"
    ]
    assert types == ["document", "soft", "back", "forward"]
    assert budget.router["hit"] == 2


def test_scenarios_only_browse_loopback(server):
    import asyncio

    import pytest
    from opentelemetry import trace

    from traffic.scenarios import SCENARIOS, run_scenario

    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(
            run_scenario(
                SCENARIOS["steady"],
                "http://198.51.100.7:3000",
                server.state.definition,
                trace.get_tracer("t"),
            )
        )
