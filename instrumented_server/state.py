"""Everything the server keeps between requests, in one place.

The caches, the upstream simulators, the warm-up queue, the current build id
and the visit counts that a post-deploy warm-up uses. Phases receive what
they need from here; nothing else is global.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from opentelemetry.sdk.trace.export import SpanExporter

from instrumented_server.background import BackgroundTasks
from instrumented_server.caching import Clock
from instrumented_server.cdn import CdnEdgeCache
from instrumented_server.data_cache import DataCache
from instrumented_server.definition import AppDefinition
from instrumented_server.fetching import FetchRunner
from instrumented_server.full_route_cache import FullRouteCache
from instrumented_server.payloads import Payloads
from instrumented_server.render import Renderer
from instrumented_server.routing import RouteTable
from instrumented_server.stale_times import DEFAULT_NEXT_VERSION, STALE_TIMES
from instrumented_server.telemetry import DEFAULT_COLLECTOR_URL, ServerTelemetry
from instrumented_server.upstreams import Upstreams
from instrumented_server.warmup import WarmupQueue


@dataclass
class Build:
    """The build being served; a deploy replaces its id."""

    id: str


@dataclass
class ServerState:
    definition: AppDefinition
    build: Build
    telemetry: ServerTelemetry
    routes: RouteTable
    upstreams: Upstreams
    cdn: CdnEdgeCache
    full_route: FullRouteCache
    data: DataCache
    background: BackgroundTasks
    warmups: WarmupQueue
    fetcher: FetchRunner
    renderer: Renderer
    visits: Counter[str] = field(default_factory=Counter)

    @classmethod
    def create(
        cls,
        definition: AppDefinition,
        *,
        collector_url: str = DEFAULT_COLLECTOR_URL,
        browser_endpoint: str | None = None,
        next_version: str = DEFAULT_NEXT_VERSION,
        exporter: SpanExporter | None = None,
        clock: Clock = time.monotonic,
    ) -> ServerState:
        """The state of a fresh server; its caches age on ``clock``; its pages' client router
        sends spans to ``browser_endpoint``, if any, and keeps payloads for ``next_version``'s
        stale times."""
        build = Build(definition.build_id)
        telemetry = ServerTelemetry(
            definition.name, lambda: build.id, collector_url=collector_url, exporter=exporter
        )
        background = BackgroundTasks()
        upstreams = Upstreams(definition)
        data = DataCache(definition.caches.data_cache_max_entries, clock)
        full_route = FullRouteCache(clock=clock)
        warmups = WarmupQueue(
            telemetry,
            max_jobs=definition.warmup.max_jobs,
            rate_per_s=definition.warmup.rate_per_s,
            workers=definition.warmup.workers,
        )
        fetcher = FetchRunner(upstreams, data, telemetry, background, warmups.is_pending)
        renderer = Renderer(
            definition,
            fetcher,
            full_route,
            telemetry,
            background,
            Payloads(
                lambda: build.id,
                browser_endpoint,
                RouteTable(definition).templates(),
                STALE_TIMES[next_version],
            ),
        )
        return cls(
            definition=definition,
            build=build,
            telemetry=telemetry,
            routes=RouteTable(definition),
            upstreams=upstreams,
            cdn=CdnEdgeCache(definition.cdn.max_entries, clock),
            full_route=full_route,
            data=data,
            background=background,
            warmups=warmups,
            fetcher=fetcher,
            renderer=renderer,
        )
