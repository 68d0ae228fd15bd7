"""Deploys: a new build empties caches, static routes are prebuilt, the rest is cold."""

from __future__ import annotations

from typing import Any

from tests.instrumented_server.conftest import SECRET


def deploy(server: Any, **body: Any) -> Any:
    return server.client.post("/api/deploy", json=body, headers={"x-revalidate-secret": SECRET})


def test_a_deploy_produces_cold_misses_with_reason_deploy(server):
    for path in ("/about", "/products/1", "/products/1", "/dashboard"):
        server.get(path)
    response = deploy(server, build_id="build-2", warm_routes=0)
    assert response.status_code == 200
    result = response.json()
    assert result["previous_build_id"] == "build-1"
    assert result["emptied"]["data"] >= 2
    server.reset_spans()
    server.get("/about")
    server.get("/products/1")
    cdn = server.spans(cache__layer="cdn")
    assert {s.attributes["cache.miss_reason"] for s in cdn} == {"deploy"}
    data = server.spans(cache__layer="data", cache__key="api/products/1")
    assert [(s.attributes["cache.result"], s.attributes["cache.miss_reason"]) for s in data] == [
        ("miss", "deploy")
    ]
    assert all(s.attributes["nextrace.build_id"] == "build-2" for s in server.spans())


def test_static_routes_are_prerendered_by_the_deploy_itself(server):
    server.get("/")
    deploy(server, warm_routes=0)
    server.reset_spans()
    response = server.get("/")
    assert response.headers["x-nextjs-cache"] == "HIT"
    (full_route,) = server.spans(cache__layer="full_route")
    assert full_route.attributes["cache.entry.source"] == "build"
    (deploy_span,) = [
        s
        for s in server.exporter.get_finished_spans()
        if s.attributes.get("nextrace.phase") == "deploy"
    ] or [None]
    assert deploy_span is None  # cleared above; the build's own spans came before


def test_a_post_deploy_warm_up_prevents_the_misses_of_popular_routes(server):
    for _ in range(3):
        server.get("/products/1")
    server.get("/products/2")
    result = deploy(server, warm_routes=1).json()
    assert result["warmups"]["queued"] == 1  # the front-door warm-up of the new CDN
    server.settle()
    warmups = {
        s.attributes["nextrace.warmup.target"]: s for s in server.spans(nextrace__phase="warmup")
    }
    assert set(warmups) == {"data-of:/products/1", "route:/products/1"}
    (deploy_span,) = server.spans(nextrace__phase="deploy")
    before_switch = warmups["data-of:/products/1"]
    assert before_switch.attributes["nextrace.warmup.trigger"] == "deploy"
    assert before_switch.attributes["nextrace.build_id"] == "build-1"  # warmed before the switch
    assert before_switch.links[0].context.span_id == deploy_span.context.span_id
    server.reset_spans()
    server.get("/products/1")  # warmed
    server.get("/products/2")  # not warmed
    by_key = {s.attributes["cache.key"]: s for s in server.spans(cache__layer="data")}
    assert by_key["api/products/1"].attributes["cache.result"] == "hit"
    assert by_key["api/products/1"].attributes["cache.entry.source"] == "warmup"
    assert by_key["api/products/2"].attributes["cache.miss_reason"] == "deploy"


def test_a_deploy_needs_the_secret(server):
    assert server.client.post("/api/deploy", json={}).status_code == 401
    assert server.state.build.id == "build-1"
