"""Hand-built traces stored through a real collector, whose causes, parts and differences
the trace-view tests know; each test module that asks for ``traces`` stores them once."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.service import Collector
from investigate.diagnosis import MS
from investigate.reader import StoreReader
from tests.builders import make_request, make_span
from tests.conftest import loopback_client, running_collector, stored

ROUTE = "/products/[id]"


@dataclass
class Stored:
    reader: StoreReader
    queued: str  # waited 505 ms behind 3 prefetches, then a 95 ms request
    missed: str  # a 400 ms fetch that missed the data cache 2.5 s after a deploy
    fast: str  # 80 ms, every lookup a hit, one entry from a warm-up
    server_only: str  # a document request no browser span started
    warmup: str


def post(client: TestClient, service: str, spans: list[Any]) -> None:
    body = make_request(spans, service=service).SerializeToString()
    response = client.post(
        "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
    )
    assert response.status_code == 200, response.text


def navigation(
    client: TestClient,
    start: int,
    *,
    wait_ms: float,
    fetch_ms: float,
    lookup: dict[str, str],
    kind: str = "soft",
) -> str:
    """A browser navigation whose server request starts ``wait_ms`` in and renders one fetch
    of ``fetch_ms``; returns its trace id."""
    trace, nav_id, request_id, render_id, fetch_id = (
        os.urandom(16),
        os.urandom(8),
        os.urandom(8),
        os.urandom(8),
        os.urandom(8),
    )
    server_start = start + int(wait_ms * MS)
    render_ns = int((fetch_ms + 4) * MS)
    request_ns = render_ns + int(6 * MS)
    nav_ns = int(wait_ms * MS) + request_ns + int(2 * MS)
    browser = make_span(
        f"navigation {ROUTE}",
        trace_id=trace,
        span_id=nav_id,
        start_ns=start,
        duration_ns=nav_ns,
        attrs={
            "nextrace.phase": "navigation",
            "next.route": ROUTE,
            "nextrace.navigation.type": kind,
            "nextrace.browser.id": "b1",
        },
    )
    post(client, "browser", [browser])

    def child(name: str, span_id: bytes, parent: bytes, at: int, ns: int, **attrs: str) -> Any:
        return make_span(
            name,
            trace_id=trace,
            span_id=span_id,
            parent=parent,
            start_ns=at,
            duration_ns=ns,
            attrs=attrs,
        )

    post(
        client,
        "shop",
        [
            child(
                f"RSC GET {ROUTE}",
                request_id,
                nav_id,
                server_start,
                request_ns,
                **{
                    "nextrace.phase": "request",
                    "nextrace.request.kind": "rsc_navigation",
                    "next.route": ROUTE,
                    "nextrace.build_id": "build-2",
                },
            ),
            child(
                "middleware",
                os.urandom(8),
                request_id,
                server_start + MS // 2,
                MS,
                **{"nextrace.phase": "middleware"},
            ),
            child(
                f"render route (app) {ROUTE}",
                render_id,
                request_id,
                server_start + 2 * MS,
                render_ns,
                **{"nextrace.phase": "render"},
            ),
            child(
                "stream",
                os.urandom(8),
                request_id,
                server_start + 3 * MS,
                render_ns + MS,
                **{"nextrace.phase": "stream"},
            ),
            child(
                "fetch GET reviews/{id}",
                fetch_id,
                render_id,
                server_start + 3 * MS,
                int(fetch_ms * MS),
                **{"nextrace.phase": "fetch"},
            ),
            child(
                "data cache lookup",
                os.urandom(8),
                fetch_id,
                server_start + 3 * MS + 10_000,
                10_000,
                **{"nextrace.phase": "cache", "cache.layer": "data", **lookup},
            ),
        ],
    )
    return trace.hex()


@pytest.fixture(scope="module")
def traces(chdb_path: Path) -> Iterator[Stored]:
    """The traces, stored once for the module's tests (which only read them)."""
    store_config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=t_{uuid.uuid4().hex[:12]}")
    with running_collector(store_config) as collector, loopback_client(collector) as client:
        yield store(collector, client)


def store(collector: Collector, client: TestClient) -> Stored:
    t0 = time.time_ns() - 600 * 10**9
    deploy = make_span(
        "deploy",
        start_ns=t0,
        attrs={"nextrace.phase": "deploy", "nextrace.build_id": "build-2"},
    )
    warmup = make_span("warm-up /products/[id]", start_ns=t0, attrs={"nextrace.phase": "warmup"})
    post(client, "shop", [deploy, warmup])
    queued_at = t0 + 10 * 10**9
    prefetches = [
        make_span(
            f"RSC GET {ROUTE}",
            start_ns=queued_at + 100 * MS + i * 20 * MS,
            duration_ns=450 * MS,
            attrs={
                "nextrace.phase": "request",
                "nextrace.request.kind": "rsc_prefetch",
                "next.route": ROUTE,
            },
        )
        for i in range(3)
    ]
    post(client, "shop", prefetches)
    hit = {"cache.result": "hit"}
    fast = navigation(
        client,
        t0 + 20 * 10**9,
        wait_ms=2,
        fetch_ms=60,
        lookup={
            **hit,
            "cache.entry.source": "warmup",
            "cache.entry.source_trace_id": warmup.trace_id.hex(),
        },
    )
    for offset in (21, 22, 23):  # peers, so that the typical fast one is well defined
        navigation(client, t0 + offset * 10**9, wait_ms=2, fetch_ms=100, lookup=hit)
    queued = navigation(client, queued_at, wait_ms=505, fetch_ms=80, lookup=hit)
    missed = navigation(
        client,
        t0 + int(2.5 * 10**9),
        wait_ms=3,
        fetch_ms=400,
        lookup={"cache.result": "miss", "cache.miss_reason": "deploy"},
    )
    document = make_span(
        f"GET {ROUTE}",
        start_ns=t0 + 30 * 10**9,
        duration_ns=700 * MS,
        attrs={
            "nextrace.phase": "request",
            "nextrace.request.kind": "document",
            "next.route": ROUTE,
            "nextrace.build_id": "build-2",
        },
    )
    post(client, "shop", [document])
    stored(collector, "SELECT 1")
    assert collector.store is not None
    return Stored(
        reader=StoreReader(collector.store),
        queued=queued,
        missed=missed,
        fast=fast,
        server_only=document.trace_id.hex(),
        warmup=warmup.trace_id.hex(),
    )
