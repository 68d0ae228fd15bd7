"""Deploys: a new build id, emptied caches, the build's prerender, and an optional warm-up.

``POST /api/deploy`` (same secret as revalidation) with an optional JSON body
``{"build_id": "…", "keep_data_cache": false, "warm_routes": 10}``. The full
route cache and the CDN are emptied (a new build's output is never the old
one's); the data cache is kept or emptied as configured. Static and ISR
routes are prerendered at "build" time.

With ``warm_routes``, the most visited routes are warmed *before* the new
build takes traffic, as teams do when they warm a deployment before promoting
it: their data is fetched afresh (rate-limited, each route a warm-up trace
linked to the deploy) while users are still served by the old build, and the
entries filled that way survive the switch. A warm-up that only started after
the switch would race the first users to every entry. Once switched, the same
routes are also requested through the front door, filling the new CDN.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from opentelemetry import trace

from contract import semconv
from instrumented_server.state import ServerState
from instrumented_server.warmup_jobs import RouteWarmer, data_warmup, route_job, submit_all

DEPLOY_PATH = "/api/deploy"
_counter = itertools.count(2)


async def prerender_all(state: ServerState, parent: trace.Span | None = None) -> int:
    """Prerender every static and ISR route into the full route cache; return how many URLs."""
    jobs = []
    for route in state.definition.routes:
        if route.render == "dynamic":
            continue
        for path in state.routes.concrete_paths(route):
            match = state.routes.resolve(path)
            if match is not None and match.route is route:
                jobs.append(state.renderer.prerender(match, path, "build", parent))
    await asyncio.gather(*jobs)
    return len(jobs)


async def deploy(
    state: ServerState,
    *,
    build_id: str | None = None,
    keep_data_cache: bool | None = None,
    warm_routes: int | None = None,
    parent: trace.Span | None = None,
    warmer: RouteWarmer,
) -> dict[str, Any]:
    previous = state.build.id
    new_id = build_id or f"build-{next(_counter)}"
    keep = (
        state.definition.caches.keep_data_cache_on_deploy
        if keep_data_cache is None
        else (keep_data_cache)
    )
    warm = state.definition.warmup.post_deploy_routes if warm_routes is None else warm_routes
    attrs = {semconv.DEPLOY_PREVIOUS_BUILD_ID: previous, semconv.DEPLOY_KEEP_DATA_CACHE: keep}
    with state.telemetry.span("deploy", semconv.PHASE_DEPLOY, parent, attrs) as span:
        popular = [path for path, _ in state.visits.most_common(warm)]
        warm_started = time.monotonic()
        jobs = [data_warmup(state, path, span) for path in popular]
        await asyncio.gather(*(state.warmups.run_now(job) for job in jobs if job is not None))

        state.build.id = new_id  # the switch: from here on, users get the new build
        span.set_attribute(semconv.BUILD_ID, new_id)
        warmed = (
            state.data.entries.remove_where(
                lambda e: not (e.source == "warmup" and e.created >= warm_started), "deploy"
            )
            if not keep
            else 0
        )
        emptied = {
            "full_route": state.full_route.clear("deploy"),
            "cdn": state.cdn.clear("deploy"),
            "data": warmed,
            "use_cache": state.use_caches.forget_build(warm_started),
        }
        prerendered = await prerender_all(state, span)
        outcomes = submit_all(state, (route_job(state, warmer, p, "deploy", span) for p in popular))
        span.set_attribute(semconv.DEPLOY_WARM_ROUTES, len(popular))
    return {
        "build_id": new_id,
        "previous_build_id": previous,
        "emptied": emptied,
        "prerendered": prerendered,
        "warmups": outcomes,
    }
