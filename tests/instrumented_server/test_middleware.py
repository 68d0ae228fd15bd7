"""Middleware: matchers that skip prefetches, redirects and rewrites, and the load it adds."""

from __future__ import annotations

from tests.instrumented_server.conftest import RUN_ON_PREFETCHES

PREFETCH = {"rsc": "1", "next-router-prefetch": "1"}


def test_the_documented_matcher_keeps_prefetches_out_of_middleware(server):
    server.get("/about", **PREFETCH)
    server.get("/about", rsc="1", purpose="prefetch")
    assert not server.spans(nextrace__phase="middleware")
    prefetches = server.spans(nextrace__request__kind="rsc_prefetch")
    assert len(prefetches) == 2
    assert all(s.attributes["nextrace.middleware.matched"] is False for s in prefetches)
    server.get("/pricing", rsc="1")
    (middleware,) = server.spans(nextrace__phase="middleware")
    assert middleware.attributes["nextrace.request.kind"] == "rsc_navigation"


def test_without_the_missing_clause_prefetches_add_middleware_load(make_server):
    server = make_server(**RUN_ON_PREFETCHES)
    for product in range(3):  # dynamic routes: the CDN cannot absorb these
        server.get(f"/products/{product}", **PREFETCH)
    server.get("/about")
    spans = server.spans(nextrace__phase="middleware")
    kinds = sorted(s.attributes["nextrace.request.kind"] for s in spans)
    assert kinds == ["document", "rsc_prefetch", "rsc_prefetch", "rsc_prefetch"]
    prefetch_time = sum(
        s.end_time - s.start_time
        for s in spans
        if s.attributes["nextrace.request.kind"] == "rsc_prefetch"
    )
    assert prefetch_time > 0


def test_redirects_answer_307_and_rewrites_render_the_destination(server):
    redirect = server.get("/old")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "/about"
    rewrite = server.get("/home")
    assert rewrite.status_code == 200
    (request,) = [s for s in server.spans(nextrace__phase="request") if s.name == "GET /"]
    assert request.attributes["next.route"] == "/"


def test_the_api_path_is_outside_the_matcher(server):
    server.get("/api/anything")
    assert not server.spans(nextrace__phase="middleware")
