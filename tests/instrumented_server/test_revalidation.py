"""On-demand revalidation: the secret, revalidateTag with 'max' versus immediate expiry."""

from __future__ import annotations

from tests.instrumented_server.conftest import SECRET


def revalidate(server, body: dict[str, object], secret: str | None = SECRET):
    headers = {"x-revalidate-secret": secret} if secret else {}
    return server.client.post("/api/revalidate", json=body, headers=headers)


def data_lookups(server, key: str) -> list[tuple[str, str | None]]:
    spans = sorted(server.spans(cache__layer="data", cache__key=key), key=lambda s: s.start_time)
    return [(s.attributes["cache.result"], s.attributes.get("cache.miss_reason")) for s in spans]


def test_without_the_secret_nothing_changes(server):
    server.get("/products/1")
    entries = len(server.state.data.entries)
    for secret in (None, "wrong-secret"):
        response = revalidate(server, {"tag": "products"}, secret)
        assert response.status_code == 401
    # A secret header that is not ASCII is just a wrong secret, not a server error.
    odd = server.client.post(
        "/api/revalidate",
        json={"tag": "products"},
        headers=[(b"x-revalidate-secret", "geheim-\u00e9\u00e9\u00e9".encode("latin-1"))],
    )
    assert odd.status_code == 401
    assert len(server.state.data.entries) == entries
    assert all(e.stale_reason is None for e in server.state.data.entries)
    assert not server.spans(nextrace__phase="revalidate")


def test_bad_bodies_get_400(server):
    assert revalidate(server, {"tag": "a", "path": "/b"}).status_code == 400
    assert revalidate(server, {}).status_code == 400
    bad_json = server.client.post(
        "/api/revalidate", content=b"{", headers={"x-revalidate-secret": SECRET}
    )
    assert bad_json.status_code == 400


def test_max_profile_serves_stale_and_refreshes_in_the_background(server):
    server.get("/products/1")
    calls = server.state.upstreams.count("/products/1")
    response = revalidate(server, {"tag": "product-1", "warm": False})
    assert response.json()["invalidated"]["data"] == 1
    server.get("/products/1")  # stale: answered from the old entry, no waiting
    server.settle()
    assert data_lookups(server, "api/products/1")[-1] == ("stale", "tag_invalidated")
    assert server.state.upstreams.count("/products/1") == calls + 1  # the background refresh
    server.get("/products/1")
    assert data_lookups(server, "api/products/1")[-1] == ("hit", None)
    hit = sorted(
        server.spans(cache__layer="data", cache__key="api/products/1"), key=lambda s: s.start_time
    )[-1]
    assert hit.attributes["cache.entry.source"] == "revalidation"


def test_immediate_expiry_makes_the_next_request_a_blocking_miss(server):
    server.get("/products/1")
    response = revalidate(server, {"tag": "product-1", "expire": 0, "warm": False})
    assert response.json()["profile"] == "expire"
    server.get("/products/1")
    assert data_lookups(server, "api/products/1")[-1] == ("miss", "tag_invalidated")
    (fetch,) = [
        s
        for s in server.spans(nextrace__phase="fetch", next__fetch__cache_status="miss")
        if s.attributes.get("next.fetch.cache_reason") == "tag_invalidated"
    ]
    request = max(
        (s for s in server.spans(nextrace__phase="request") if s.start_time < fetch.start_time),
        key=lambda s: s.start_time,
    )
    assert fetch.end_time <= request.end_time  # the request waited for the upstream


def test_the_blast_radius_counts_every_layer(server):
    server.get("/products/1")
    server.get("/products/2")
    server.get("/")
    response = revalidate(server, {"tag": "products", "expire": 0, "warm": False}).json()
    assert response["invalidated"]["data"] == 2
    (span,) = server.spans(nextrace__phase="revalidate")
    assert span.attributes["nextrace.revalidate.invalidated"] == 2
    assert span.attributes["nextrace.revalidate.target"] == "products"


def test_revalidate_path_purges_the_route_and_the_cdn(server):
    server.get("/")
    assert server.get("/").headers["x-nextrace-cdn"] == "HIT"
    response = revalidate(server, {"path": "/", "warm": False}).json()
    assert response["invalidated"]["cdn"] == 1
    assert response["invalidated"]["full_route"] == 2  # html and rsc
    again = server.get("/")
    assert again.headers["x-nextrace-cdn"] == "REVALIDATED"
    assert again.headers["x-nextjs-cache"] == "MISS"
    full_route = sorted(server.spans(cache__layer="full_route"), key=lambda s: s.start_time)[-1]
    assert full_route.attributes["cache.miss_reason"] == "path_invalidated"
