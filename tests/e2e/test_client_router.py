"""Debian's headless Chromium drives the reference pages with their client router (slow):
scroll, hover, click, back. Chromium's own network log and the stored spans agree on every
prefetch and navigation, and each navigation that asks the server is one trace, from the
browser's navigation span to the server's last streamed chunk. A virtual browser doing the
same makes the same spans, but for the differences docs/semantic-conventions.md lists."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from instrumented_server.definition import load_definition
from tests.support.processes import free_port, start_collector
from tests.support.waiting import answers, wait_until
from traffic.browser import TrafficBudget, VirtualBrowser
from traffic.chromium import Chromium, logged_requests
from traffic.router_cache import STALE_TIMES, RouterCache

pytestmark = pytest.mark.slow


def rows(collector_port: int, query: str) -> list[list[str]]:
    answer = httpx.post(
        f"http://127.0.0.1:{collector_port}/sql", json={"query": query, "format": "TSV"}
    )
    assert answer.status_code == 200, answer.text
    return [line.split("\t") for line in answer.text.splitlines() if line]


def serve(tmp_path: Path, port: int, collector_port: int) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nextrace.cli",
            "serve",
            *("--port", str(port), "--collector", f"http://127.0.0.1:{collector_port}"),
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100"},  # spans leave at once
    )
    wait_until(
        lambda: server.poll() is not None or answers(f"http://127.0.0.1:{port}/favicon.ico"),
        "the server answers",
    )
    assert server.poll() is None, "the server exited"
    return server


def drive(page: Chromium, origin: str) -> None:
    """Land on a product page, scroll, hover a link, click it, and go back."""
    for domain in ("Network", "Runtime", "Log"):
        page.send(f"{domain}.enable")
    page.goto(f"{origin}/products/1")
    page.wait_for_network_idle()  # the links in view are prefetched
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.hover('nav a[href="/products/2"]')
    page.click('nav a[href="/products/2"]')
    page.wait_until(
        "location.pathname === '/products/2' && !!document.querySelector("
        "'section[data-boundary=reviews]')",
        "the product page rendered from its RSC payload",
    )
    page.wait_for_network_idle()
    page.evaluate("history.back()")
    page.wait_until("location.pathname === '/products/1'", "back on the first page")
    page.wait_for_network_idle()
    # Leaving sends what the browser still holds (the instrumentation's pagehide flush).
    page.send("Page.navigate", url="about:blank")
    page.wait_until("location.href === 'about:blank'", "the page left")


def stored_browser_spans(collector_port: int, expected: int) -> list[dict[str, Any]]:
    query = (
        "SELECT SpanName, TraceId, SpanAttributes['url.path'], "
        "SpanAttributes['nextrace.phase'] FROM otel_traces WHERE ServiceName = 'browser' "
        "ORDER BY Timestamp"
    )
    found: list[Any] = []

    def arrived() -> bool:
        found[:] = rows(collector_port, query)
        return len(found) >= expected

    wait_until(arrived, f"{expected} browser spans are stored", detail=lambda: str(found))
    keys = ("name", "trace", "path", "phase")
    return [dict(zip(keys, row, strict=True)) for row in found]


def test_chromium_and_the_stored_spans_agree_on_every_prefetch_and_navigation(tmp_path):
    collector_port, server_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{server_port}"
    collector = start_collector(
        tmp_path, collector_port, "--browser-origin", origin, "--batch-timeout", "0.2"
    )
    try:
        server = serve(tmp_path, server_port, collector_port)
        try:
            with Chromium(tmp_path) as page:
                drive(page, origin)
                assert page.console_errors == []
        finally:
            server.send_signal(signal.SIGINT)
            server.communicate(timeout=60)
        logged = [r for r in logged_requests(tmp_path / "net-log.json") if r.url.startswith(origin)]
        rsc = [r for r in logged if r.headers.get("rsc") == "1"]
        prefetches = [r for r in rsc if "next-router-prefetch" in r.headers]
        assert prefetches, "the links in view were prefetched"
        assert len(rsc) > len(prefetches), "the click asked the server for its page"
        # Each RSC request carried a traceparent; the browser's span for it is in that trace.
        requested_traces = {r.headers["traceparent"].split("-")[1] for r in rsc}
        spans = stored_browser_spans(collector_port, expected=2 * len(rsc))
        request_spans = [s for s in spans if s["name"].startswith("GET ")]
        assert {s["trace"] for s in request_spans} == requested_traces
        stored_prefetches = [s for s in spans if s["phase"] == "prefetch"]
        assert len(stored_prefetches) == len(prefetches)
        navigations = [s for s in spans if s["phase"] == "navigation"]
        # The click and the back, each named by its route, as Next.js names it.
        assert [s["name"] for s in navigations] == ["navigation /products/[id]"] * 2
        assert "/products/2" in {s["path"] for s in request_spans}  # requests keep their URL
        # A navigation that asked the server is one trace down to the server's last chunk.
        for navigation in navigations:
            if navigation["trace"] not in requested_traces:
                continue  # a router cache hit: no request, nothing on the server
            server_side = rows(
                collector_port,
                "SELECT SpanAttributes['nextrace.phase'] FROM otel_traces "
                f"WHERE TraceId = '{navigation['trace']}' AND ServiceName != 'browser'",
            )
            phases = {phase for (phase,) in server_side}
            assert {"request", "render", "stream"} <= phases, (navigation, phases)
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.communicate(timeout=60)


# What only one kind of browser records (docs/semantic-conventions.md, "Virtual browsers"):
# the virtual one knows the payload it got and the age of the entry it used, and traces the
# document it lands on; the real one measures bytes, and has a `GET <route>` child span per
# RSC request, which carries the status.
VIRTUAL_ONLY = {
    "navigation": {"http.response.status_code"},
    "prefetch": {"nextrace.prefetch.payload"},
    "cache": {"nextrace.router.payload", "cache.entry.age_ms", "cache.scope"},
}
REAL_ONLY = {"prefetch": {"http.response.body.size"}}


def shape(spans: list[tuple[str, dict[str, str]]]) -> Counter[tuple[str, str, str, str]]:
    """What a browser did, span by span: name, router cache result, prefetch trigger and the
    attribute keys both kinds of browser record."""
    done: Counter[tuple[str, str, str, str]] = Counter()
    for name, attributes in spans:
        phase = attributes.get("nextrace.phase", "")
        if name.startswith("GET ") or attributes.get("nextrace.navigation.type") == "document":
            continue
        shared = set(attributes) - VIRTUAL_ONLY.get(phase, set()) - REAL_ONLY.get(phase, set())
        done[
            (
                name,
                attributes.get("nextrace.navigation.router_cache", ""),
                attributes.get("nextrace.prefetch.trigger", ""),
                ",".join(sorted(shared)),
            )
        ] += 1
    return done


async def browse_virtually(origin: str, tracer_provider: TracerProvider) -> None:
    """What drive() does, by a virtual browser: land, let the prefetches finish, click, back."""
    async with httpx.AsyncClient(base_url=origin) as client:
        browser = VirtualBrowser(
            "v1",
            client,
            load_definition(),
            tracer_provider.get_tracer("nextrace.browser"),
            RouterCache(STALE_TIMES["15"]),
            TrafficBudget(max_requests=100, deadline=time.monotonic() + 60),
            random.Random(1),
        )

        async def settle() -> None:
            while browser._in_flight:  # the viewport's prefetches
                await asyncio.sleep(0.05)

        await browser.land("/products/1")
        await settle()
        await browser.navigate("/products/2")
        await settle()
        await browser.back()
        await settle()


def test_a_virtual_browser_makes_the_spans_chromium_makes(tmp_path):
    collector_port, server_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{server_port}"
    collector = start_collector(
        tmp_path, collector_port, "--browser-origin", origin, "--batch-timeout", "0.2"
    )
    kept = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    try:
        server = serve(tmp_path, server_port, collector_port)
        try:
            with Chromium(tmp_path) as page:
                drive(page, origin)
            asyncio.run(browse_virtually(origin, provider))
        finally:
            server.send_signal(signal.SIGINT)
            server.communicate(timeout=60)
        virtual = [
            (s.name, {k: str(v) for k, v in (s.attributes or {}).items()})
            for s in kept.get_finished_spans()
        ]
        expected = sum(1 for name, _ in virtual if not name.startswith("navigation"))
        real_rows: list[Any] = []

        def stored_all() -> bool:
            real_rows[:] = rows(
                collector_port,
                "SELECT SpanName, toJSONString(SpanAttributes) FROM otel_traces "
                "WHERE ServiceName = 'browser' ORDER BY Timestamp",
            )
            return len(real_rows) >= expected

        wait_until(stored_all, f"{expected} spans of the real browser are stored")
        real = [(name, json.loads(attributes)) for name, attributes in real_rows]
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.communicate(timeout=60)
    assert shape(virtual) == shape(real)
