"""Everything the server keeps between requests, in one place.

The caches, the upstream simulators, the warm-up queue, the current build id
and the visit counts that a post-deploy warm-up uses. Phases receive what
they need from here; nothing else is global.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
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
from instrumented_server.use_cache import UseCacheStores
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
    use_caches: UseCacheStores
    visits: Counter[str] = field(default_factory=Counter)
    _turns: Iterator[int] = field(default_factory=lambda: itertools.repeat(0))

    def next_instance(self) -> int:
        """The instance the CDN sends its next origin request to: each in turn (round-robin)."""
        return next(self._turns)

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
            definition.name,
            lambda: build.id,
            collector_url=collector_url,
            exporter=exporter,
            # Spans of no one instance (the CDN's, the request's) name none when there are
            # several; the instances' own spans name theirs.
            instance_id="" if definition.instances > 1 else None,
        )
        background = BackgroundTasks()
        upstreams = Upstreams(definition)
        data = DataCache(definition.caches.data_cache_max_entries, clock)
        use_caches = UseCacheStores(
            instance_ids(definition, telemetry.instance_id),
            definition.caches.data_cache_max_entries,
            clock,
        )
        full_route = FullRouteCache(clock=clock)
        warmups = WarmupQueue(
            telemetry,
            max_jobs=definition.warmup.max_jobs,
            rate_per_s=definition.warmup.rate_per_s,
            workers=definition.warmup.workers,
        )
        fetcher = FetchRunner(
            upstreams,
            data,
            telemetry,
            background,
            use_caches,
            definition.life_of,
            warmups.is_pending,
        )
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
            use_caches=use_caches,
            _turns=itertools.cycle(range(definition.instances)),
        )


def instance_ids(definition: AppDefinition, single: str) -> list[str]:
    """The ``service.instance.id`` of each instance of the app: ``single`` (the one the
    OpenTelemetry SDK made up) for an app that runs as one."""
    if definition.instances == 1:
        return [single]
    return [f"{definition.name}-{n}" for n in range(1, definition.instances + 1)]
