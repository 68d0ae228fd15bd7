"""Request memoization and sequential-fetch waterfalls."""

from __future__ import annotations


def test_identical_fetches_in_one_render_reach_the_upstream_once(server):
    server.get("/products/5")
    assert server.state.upstreams.count("/products/5") == 1
    memo = [
        s.attributes["cache.result"]
        for s in server.spans(cache__layer="request_memo", cache__key="force-cache|api/products/5")
    ]
    assert sorted(memo) == ["hit", "miss"]
    # Memoization is per render: the next request reads the data cache instead.
    server.get("/products/5")
    assert server.state.upstreams.count("/products/5") == 1
    data = sorted(
        server.spans(cache__layer="data", cache__key="api/products/5"), key=lambda s: s.start_time
    )
    assert [s.attributes["cache.result"] for s in data] == ["miss", "hit"]
    assert data[1].attributes["cache.entry.source"] == "request"


def test_a_sequential_fetch_starts_only_after_the_one_it_waits_for(server):
    server.get("/dashboard")
    (stats,) = server.spans(
        nextrace__phase="fetch",
        nextrace__fetch__upstream="slow",
        next__span_name="fetch GET slow/stats",
    )
    (details,) = server.spans(nextrace__fetch__after="stats")
    assert details.start_time >= stats.end_time


def test_no_store_fetches_bypass_the_data_cache(server):
    server.get("/products/8")
    server.get("/products/8")
    assert server.state.upstreams.count("/reviews/8") == 2
    results = {
        s.attributes["cache.result"]
        for s in server.spans(cache__layer="data", cache__key="slow/reviews/8")
    }
    assert results == {"bypass"}


def test_parallel_slots_fetch_alongside_the_page(make_server):
    profile = 'path = "/profile"\nrender = "dynamic"'
    slot = '[{ name = "@side", fetches = [{ name = "side", upstream = "slow", path = "/side" }] }]'
    server = make_server(**{profile: f"{profile}\nslots = {slot}"})
    server.get("/profile")
    segments = {
        s.attributes["nextrace.fetch.segment"]: s for s in server.spans(nextrace__phase="fetch")
    }
    assert set(segments) == {"page", "@side"}
    page, side = segments["page"], segments["@side"]
    assert side.start_time < page.end_time  # the slot did not wait for the page
