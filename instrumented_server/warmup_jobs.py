"""What a warm-up does: fill data-cache entries, or render a whole route ahead of users."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from opentelemetry import trace

from instrumented_server.background import RateLimiter
from instrumented_server.fetching import RenderContext, WarmTarget, warmup_target
from instrumented_server.state import ServerState
from instrumented_server.warmup import WarmupJob


def data_job(
    state: ServerState, targets: Iterable[WarmTarget], trigger: str, link: trace.Span | None
) -> WarmupJob:
    """A job that fills the given data-cache entries (one upstream call each)."""
    targets = tuple(targets)

    async def body(span: trace.Span, limiter: RateLimiter) -> None:
        for target in targets:
            await state.fetcher.warm(target, limiter, span)

    name = (
        warmup_target(targets[0].key)
        if len(targets) == 1
        else ("data:" + ",".join(sorted(t.key for t in targets)))
    )
    return WarmupJob(name, trigger, body, link.get_span_context() if link else None)


RouteWarmer = Callable[[str, trace.Span, RateLimiter], Awaitable[None]]
"""Requests a route through the server's front door (``NextServer.warm_route``)."""


def route_job(
    state: ServerState, warmer: RouteWarmer, path: str, trigger: str, link: trace.Span | None
) -> WarmupJob | None:
    """A job that requests ``path`` in the background through ``warmer``, filling every cache
    on its way."""
    if state.routes.resolve(path) is None:
        return None

    async def body(span: trace.Span, limiter: RateLimiter) -> None:
        await warmer(path, span, limiter)

    return WarmupJob(f"route:{path}", trigger, body, link.get_span_context() if link else None)


def data_warmup(state: ServerState, path: str, link: trace.Span | None) -> WarmupJob | None:
    """A job that renders ``path`` without answering anyone, to fill the data cache afresh:
    its fetches store new entries, of source ``warmup``, even where an entry exists."""
    match = state.routes.resolve(path)
    if match is None:
        return None

    async def body(span: trace.Span, limiter: RateLimiter) -> None:
        ctx = RenderContext(origin="warmup", route_path=path, limiter=limiter, refill=True)
        rendered = await state.renderer.render(match, "html", ctx, span)
        async for _ in rendered.chunks:
            pass

    return WarmupJob(f"data-of:{path}", "deploy", body, link.get_span_context() if link else None)


def submit_all(state: ServerState, jobs: Iterable[WarmupJob | None]) -> dict[str, int]:
    outcomes: dict[str, int] = {"queued": 0, "deduplicated": 0, "queue_full": 0}
    for job in jobs:
        if job is not None:
            outcomes[state.warmups.submit(job)] += 1
    return outcomes
