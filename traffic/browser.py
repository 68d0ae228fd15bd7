"""Virtual browsers that behave like the Next.js client router.

A browser lands on a page with a document request, then navigates
client-side. Links that enter the viewport are prefetched as ``<Link>``
does (``auto``: the server decides between the full payload and the loading
state; ``full``: the whole page; ``off``: nothing), hovering a link whose
prefetch went stale prefetches it again, and navigations reuse what the
router cache holds. Each navigation and each prefetch is a trace of its own
(service ``browser``), and W3C trace context goes into the requests, so the
server's spans join the browser's trace: one navigation is one trace from
click to last streamed chunk.

Browsers only send requests to the base URL they are given (loopback in
every scenario), and stop at a shared request budget or deadline.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Literal

import httpx
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from contract import semconv
from instrumented_server.definition import AppDefinition, Link
from instrumented_server.routing import RouteTable
from traffic.router_cache import Payload, RouterCache, RouterEntry


@dataclass
class TrafficBudget:
    """Shared by every browser of a run: at most ``max_requests`` until ``deadline``."""

    max_requests: int
    deadline: float  # time.monotonic()
    requests: int = 0
    navigations: int = 0
    prefetches: int = 0
    errors: int = 0
    router: dict[str, int] = field(default_factory=lambda: {"hit": 0, "partial": 0, "miss": 0})

    def take(self) -> bool:
        if self.requests >= self.max_requests or time.monotonic() >= self.deadline:
            return False
        self.requests += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.requests >= self.max_requests or time.monotonic() >= self.deadline


def payload_of(body: str) -> tuple[Payload, str]:
    """What an RSC response holds, and the build id it came from."""
    first = body.split("\n", 1)[0]
    try:
        tree = json.loads(first.split(":", 1)[1])
    except (IndexError, ValueError):
        return "empty", ""
    build = str(tree.get("b", ""))
    if tree.get("S") is False:
        return "empty", build
    loading = tree.get("loading")
    if loading and loading is not True and "\n1:" not in body:
        return "loading", build
    return "full", build


class VirtualBrowser:
    def __init__(
        self,
        browser_id: str,
        client: httpx.AsyncClient,
        definition: AppDefinition,
        tracer: trace.Tracer,
        router: RouterCache,
        budget: TrafficBudget,
        rng: random.Random,
        *,
        session: str | None = None,
        back_probability: float = 0.15,
        think_time_s: float = 2.0,
    ) -> None:
        self.id = browser_id
        self._client = client
        self._definition = definition
        self._routes = RouteTable(definition)
        self._tracer = tracer
        self.router = router
        self._budget = budget
        self._rng = rng
        self._session = session
        self._back_probability = back_probability
        self._think_time_s = think_time_s
        self._history: list[str] = []
        self._forward: list[str] = []
        self._build = ""
        self._in_flight: dict[str, asyncio.Task[None]] = {}

    def release(self, definition: AppDefinition) -> None:
        """From now on, pages show what ``definition`` declares (a new release's links)."""
        self._definition = definition
        self._routes = RouteTable(definition)

    async def browse(self, landing: str) -> None:
        """Land on ``landing``, then keep navigating until the budget runs out."""
        await self.land(landing)
        while not self._budget.exhausted:
            await asyncio.sleep(self._rng.expovariate(1 / self._think_time_s))
            if self._budget.exhausted:
                break
            if self._forward and self._rng.random() < self._back_probability:
                await self.forward()
                continue
            if len(self._history) > 1 and self._rng.random() < self._back_probability:
                await self.back()
                continue
            link = self.choose_link(self._history[-1])
            if link is None:
                await self.land(self._history[0])
                continue
            await self.hover(link)
            await self.navigate(link.href)
        for task in self._in_flight.values():
            task.cancel()

    def links_on(self, path: str) -> tuple[Link, ...]:
        match = self._routes.resolve(path)
        return match.route.links if match is not None else ()

    def choose_link(self, path: str) -> Link | None:
        """The next click: a Markov step weighted by how popular each target route is."""
        links = self.links_on(path)
        if not links:
            return None
        weights = []
        for link in links:
            match = self._routes.resolve(link.href)
            weights.append(match.route.weight if match is not None else 0.0)
        if not any(weights):
            return None
        return self._rng.choices(links, weights)[0]

    def _headers(self, span: trace.Span, extra: dict[str, str]) -> dict[str, str]:
        headers = dict(extra)
        if self._session:
            headers["cookie"] = f"session={self._session}"
        inject(headers, context=trace.set_span_in_context(span))
        return headers

    def _template(self, href: str) -> str:
        match = self._routes.resolve(href)
        return match.pattern.template if match is not None else "/_not-found"

    async def _get(self, span: trace.Span, href: str, headers: dict[str, str]) -> httpx.Response:
        response = await self._client.get(href, headers=self._headers(span, headers))
        await response.aread()
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            self._budget.errors += 1
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"HTTP {response.status_code}"))
        return response

    async def land(self, href: str, navigation_type: str = "document") -> None:
        if not self._budget.take():
            return
        self._budget.navigations += 1
        with self._tracer.start_as_current_span(
            f"navigation {self._template(href)}",
            context=Context(),
            kind=SpanKind.CLIENT,
            attributes=self._navigation_attributes(href, navigation_type, "miss"),
        ) as span:
            response = await self._get(span, href, {})
            build = _document_build(response.text)
            if build and build != self._build:
                self.router.clear()  # a new deployment: nothing cached belongs to it
                self._build = build
            if response.status_code == 200:  # the page a browser lands on is in the cache too
                self.router.store(
                    href,
                    "full",
                    dynamic=_is_dynamic(response),
                    source="navigation",
                    source_trace_id=format(span.get_span_context().trace_id, "032x"),
                    build_id=self._build,
                )
        self._budget.router["miss"] += 1
        self._history.append(href)
        self._prefetch_viewport(href)

    async def navigate(self, href: str, navigation_type: str = "soft") -> None:
        result, entry = self.router.lookup(href, history=navigation_type in ("back", "forward"))
        if entry is not None and entry.build_id and entry.build_id != self._build:
            result, entry = "miss", None
        if result != "hit" and not self._budget.take():
            return
        self._budget.navigations += 1
        self._budget.router[result] += 1
        template = self._template(href)
        with self._tracer.start_as_current_span(
            f"navigation {template}",
            context=Context(),
            kind=SpanKind.CLIENT,
            attributes=self._navigation_attributes(href, navigation_type, result),
        ) as span:
            self._record_router_lookup(span, href, result, entry)
            if result != "hit":
                headers = {"rsc": "1"}
                if self._history:
                    headers["next-url"] = self._history[-1]
                response = await self._get(span, href, headers)
                payload, build = payload_of(response.text)
                if build and self._build and build != self._build:
                    # The server runs a new build: Next.js falls back to a full page load.
                    span.set_attribute(semconv.NAVIGATION_TYPE, "document")
                    self.router.clear()
                    self._build = build
                    await self._get(span, href, {})
                elif response.status_code == 200:
                    self.router.store(
                        href,
                        payload,
                        dynamic=_is_dynamic(response),
                        source="navigation",
                        source_trace_id=format(span.get_span_context().trace_id, "032x"),
                        build_id=build or self._build,
                    )
        if navigation_type == "soft":
            self._forward.clear()
        if navigation_type != "back":
            self._history.append(href)
        self._prefetch_viewport(href)

    async def back(self) -> None:
        self._forward.append(self._history.pop())
        await self.navigate(self._history[-1], "back")

    async def forward(self) -> None:
        await self.navigate(self._forward.pop(), "forward")

    async def hover(self, link: Link) -> None:
        """Hovering a link prefetches it again if what was prefetched went stale."""
        if link.prefetch != "off" and not self.router.has_fresh(link.href):
            await self.prefetch(link, "hover")

    def _prefetch_viewport(self, path: str) -> None:
        for link in self.links_on(path):
            if link.prefetch == "off" or self.router.has_fresh(link.href):
                continue
            if link.href not in self._in_flight:
                task = asyncio.ensure_future(self.prefetch(link, "viewport"))
                self._in_flight[link.href] = task
                task.add_done_callback(self._prefetch_done)

    def _prefetch_done(self, task: asyncio.Task[None]) -> None:
        for href, running in list(self._in_flight.items()):
            if running is task:
                del self._in_flight[href]

    async def prefetch(self, link: Link, trigger: Literal["viewport", "hover"]) -> None:
        if not self._budget.take():
            return
        self._budget.prefetches += 1
        template = self._template(link.href)
        attributes = {
            semconv.PHASE: semconv.PHASE_PREFETCH,
            semconv.BROWSER_ID: self.id,
            semconv.NAVIGATION_HREF: link.href,
            semconv.NEXT_ROUTE: template,
            semconv.PREFETCH_MODE: link.prefetch,
            semconv.PREFETCH_TRIGGER: trigger,
        }
        with self._tracer.start_as_current_span(
            f"prefetch {template}",
            context=Context(),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        ) as span:
            # `auto` lets the server pick the payload; `full` asks for the whole page, which
            # Next.js sends without the prefetch header, like a navigation.
            headers = {"rsc": "1"}
            if link.prefetch == "auto":
                headers["next-router-prefetch"] = "1"
            if self._history:
                headers["next-url"] = self._history[-1]
            try:
                response = await self._get(span, link.href, headers)
            except httpx.HTTPError as exc:
                self._budget.errors += 1
                span.record_exception(exc)
                return
            payload, build = payload_of(response.text)
            span.set_attribute(semconv.PREFETCH_PAYLOAD, payload)
            if response.headers.get("x-middleware-cache") == "no-cache":
                # Next.js keeps nothing of such a prefetch: every hover prefetches again.
                span.set_attribute(semconv.PREFETCH_CACHED, False)
            elif response.status_code == 200:
                self.router.store(
                    link.href,
                    payload,
                    dynamic=_is_dynamic(response),
                    source="prefetch",
                    source_trace_id=format(span.get_span_context().trace_id, "032x"),
                    build_id=build or self._build,
                )

    def _navigation_attributes(
        self, href: str, kind: str, result: str
    ) -> dict[str, AttributeValue]:
        return {
            semconv.PHASE: semconv.PHASE_NAVIGATION,
            semconv.BROWSER_ID: self.id,
            semconv.NAVIGATION_HREF: href,
            semconv.NEXT_ROUTE: self._template(href),
            semconv.NAVIGATION_TYPE: kind,
            semconv.NAVIGATION_ROUTER_CACHE: result,
        }

    def _record_router_lookup(
        self, parent: trace.Span, href: str, result: str, entry: RouterEntry | None
    ) -> None:
        reason = None
        if result == "miss":
            reason = (
                "cold" if entry is None else ("dynamic" if entry.payload == "empty" else "expired")
            )
        attributes = semconv.cache_lookup_attributes(
            layer="router",
            result="hit" if result == "hit" else "miss",
            key=href,
            scope="private",
            reason=reason,
            age_ms=entry.age_ms(time.monotonic()) if entry else None,
            source=entry.source if entry else None,
            source_trace_id=entry.source_trace_id if entry else None,
        )
        attributes[semconv.PHASE] = semconv.PHASE_CACHE
        attributes[semconv.ROUTER_RESULT_DETAIL] = result
        if entry is not None:
            attributes[semconv.ROUTER_PAYLOAD] = entry.payload
        with self._tracer.start_as_current_span(
            "router cache lookup",
            context=trace.set_span_in_context(parent),
            attributes=attributes,
        ):
            pass


def _is_dynamic(response: httpx.Response) -> bool:
    return "no-store" in response.headers.get("cache-control", "")


def _document_build(html: str) -> str:
    marker = 'name="next-build" content="'
    start = html.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    return html[start : html.find('"', start)]
