"""The CDN edge cache: HIT, MISS, BYPASS, and STALE served while it revalidates."""

from __future__ import annotations


def cdn_results(server) -> list[tuple[str, str | None]]:
    spans = sorted(server.spans(cache__layer="cdn"), key=lambda s: s.start_time)
    return [(s.attributes["cache.result"], s.attributes.get("cache.miss_reason")) for s in spans]


def test_static_pages_are_cached_and_dynamic_ones_bypass(server):
    assert server.get("/about").headers["x-nextrace-cdn"] == "MISS"
    assert server.get("/about").headers["x-nextrace-cdn"] == "HIT"
    server.get("/profile")
    assert server.get("/profile").headers["x-nextrace-cdn"] == "BYPASS"
    assert cdn_results(server) == [
        ("miss", "cold"),
        ("hit", None),
        ("miss", "cold"),
        ("bypass", "dynamic"),
    ]


def test_the_cdn_key_varies_on_the_rsc_and_prefetch_headers(server):
    server.get("/about")
    assert server.get("/about", rsc="1").headers["x-nextrace-cdn"] == "MISS"
    assert (
        server.get("/about", rsc="1", **{"next-router-prefetch": "1"}).headers["x-nextrace-cdn"]
        == "MISS"
    )
    assert server.get("/about", rsc="1").headers["x-nextrace-cdn"] == "HIT"


def test_a_stale_entry_is_served_at_once_and_revalidated_in_the_background(server):
    first = server.get("/cdn/1")  # ISR, revalidate 0.3 s: s-maxage=0.3, stale-while-revalidate
    assert first.headers["x-nextrace-cdn"] == "MISS"
    assert "s-maxage=0.3" in first.headers["cache-control"]
    server.clock.advance(0.35)
    stale = server.get("/cdn/1")
    assert stale.headers["x-nextrace-cdn"] == "STALE"
    assert stale.content == first.content  # the old body, without waiting for the origin
    server.settle()
    (refresh,) = server.spans(nextrace__revalidate__trigger="cdn_stale")
    (stale_request,) = [
        s for s in server.spans(nextrace__phase="request") if s.start_time > first_end(server)
    ][:1]
    assert refresh.links[0].context.span_id == stale_request.context.span_id
    server.get("/cdn/1")  # now served from the entry the background refresh stored
    hit = sorted(server.spans(cache__layer="cdn"), key=lambda s: s.start_time)[-1]
    assert hit.attributes["cache.result"] in ("hit", "stale")  # ISR: fresh for 0.3 s only
    assert hit.attributes["cache.entry.source"] == "revalidation"
    assert hit.attributes["cache.entry.source_trace_id"] == format(refresh.context.trace_id, "032x")
    assert cdn_results(server)[:2] == [("miss", "cold"), ("stale", "expired")]


def first_end(server) -> int:
    requests = sorted(server.spans(nextrace__phase="request"), key=lambda s: s.start_time)
    end: int = requests[0].end_time
    return end
