"""Spans of a Next.js request, built for a test: a whole request, and a fetch-only trace as
Vercel's runtime exports it."""

from __future__ import annotations

import os
import time

from tests.builders import make_request, make_span


def request_spans(path: str = "/products/1", *, trace_id: bytes | None = None):
    """A Next.js request as two exports would carry it: its render first, the request after."""
    trace_id = trace_id or os.urandom(16)
    request_id, render_id = os.urandom(8), os.urandom(8)
    start = time.time_ns()
    request = make_span(
        "GET /products/[id]",
        trace_id=trace_id,
        span_id=request_id,
        start_ns=start,
        duration_ns=50_000_000,
        attrs={
            "next.span_type": "BaseServer.handleRequest",
            "http.method": "GET",
            "http.target": path,
            "http.status_code": 200,
            "next.rsc": False,
            "next.route": "/products/[id]",
        },
    )
    render = make_span(
        "render route (app) /products/[id]",
        trace_id=trace_id,
        span_id=render_id,
        parent=request_id,
        start_ns=start + 1_000_000,
        duration_ns=40_000_000,
        kind=1,
        attrs={"next.span_type": "AppRender.getBodyResult", "next.route": "/products/[id]"},
    )
    fetch = make_span(
        "fetch GET http://upstream/product/1",
        trace_id=trace_id,
        parent=render_id,
        start_ns=start + 2_000_000,
        duration_ns=30_000_000,
        kind=3,
        attrs={
            "next.span_type": "AppRender.fetch",
            "http.url": "http://upstream/product/1",
            "next.fetch.cache_status": "miss",
            "next.fetch.cache_reason": "revalidate: 60",
        },
    )
    return [render, fetch], [request]


NEXT = "next.js"


def vercel_fetch_only(service: str) -> list[bytes]:
    """A Next.js request whose fetch only @vercel/otel traced (its default): two exports."""
    (render, fetch), (request,) = request_spans()
    fetch.attributes.clear()  # @vercel/otel's fetch span carries no next.* attribute
    return [
        make_request([request, render], service, scope=NEXT).SerializeToString(),
        make_request([fetch], service, scope="@vercel/otel/fetch").SerializeToString(),
    ]
