"""What a <Link> prefetch gets back, by kind of route (as the prefetching article shows)."""

from __future__ import annotations

import json

PREFETCH = {"rsc": "1", "next-router-prefetch": "1"}


def test_a_static_route_prefetch_gets_the_full_prerendered_payload(server):
    response = server.get("/", **PREFETCH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/x-component"
    assert response.headers["x-nextjs-cache"] == "HIT"
    navigation = server.get("/", rsc="1")
    assert response.text == navigation.text  # the same payload a navigation would get
    (span,) = server.spans(nextrace__phase="prefetch")
    assert span.attributes["nextrace.prefetch.payload"] == "full"
    (request,) = server.spans(nextrace__request__kind="rsc_prefetch")
    assert request.attributes["next.prefetch"] == "auto"


def test_a_dynamic_route_with_loading_prefetches_only_the_loading_state(server):
    before = len(server.state.upstreams.calls)
    response = server.get("/products/9", **PREFETCH)
    assert response.status_code == 200
    tree = json.loads(response.text.split(":", 1)[1])
    assert tree["loading"]  # the loading UI, and nothing of the page
    assert "boundary" not in response.text
    server.settle()
    assert len(server.state.upstreams.calls) == before  # no page data was fetched
    (span,) = server.spans(nextrace__phase="prefetch")
    assert span.attributes["nextrace.prefetch.payload"] == "loading"
    assert not server.spans(nextrace__phase="fetch")


def test_a_dynamic_route_without_loading_prefetches_an_essentially_empty_payload(server):
    before = len(server.state.upstreams.calls)
    response = server.get("/dashboard", **PREFETCH)
    assert response.status_code == 200
    assert len(response.content) < 200
    tree = json.loads(response.text.split(":", 1)[1])
    assert tree["S"] is False
    assert "loading" not in tree
    server.settle()
    assert len(server.state.upstreams.calls) == before
    (span,) = server.spans(nextrace__phase="prefetch")
    assert span.attributes["nextrace.prefetch.payload"] == "empty"


def test_purpose_prefetch_counts_as_a_prefetch(server):
    server.get("/about", rsc="1", purpose="prefetch")
    assert server.spans(nextrace__request__kind="rsc_prefetch")
