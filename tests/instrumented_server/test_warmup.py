"""Warm-ups: attributed hits, predictive triggers, private data, and a flood under the limit."""

from __future__ import annotations

import time

import pytest

from instrumented_server.data_cache import PrivateScopeError, data_key
from tests.instrumented_server.conftest import SECRET


def revalidate(server, body: dict[str, object]):
    return server.client.post("/api/revalidate", json=body, headers={"x-revalidate-secret": SECRET})


def trace_id(span) -> str:
    return format(span.context.trace_id, "032x")


def test_a_webhook_warm_up_makes_the_next_request_a_hit_attributed_to_it(server):
    server.get("/products/1")
    response = revalidate(server, {"tag": "product-1", "expire": 0}).json()
    assert response["warmups"]["queued"] == 1
    server.settle()
    (warmup,) = server.spans(nextrace__phase="warmup")
    (revalidation,) = server.spans(nextrace__phase="revalidate")
    assert warmup.attributes["nextrace.warmup.trigger"] == "webhook"
    assert warmup.attributes["nextrace.warmup.outcome"] == "ok"
    # It waited in the queue at most from the webhook's start to its own start.
    waited_at_most_ms = (warmup.start_time - revalidation.start_time) / 1e6
    assert 0 <= warmup.attributes["nextrace.warmup.queue_wait_ms"] <= waited_at_most_ms
    assert warmup.parent is None  # a trace of its own…
    assert warmup.links[0].context.span_id == revalidation.context.span_id  # …linked to its cause
    server.get("/products/1")
    hit = sorted(
        server.spans(cache__layer="data", cache__key="api/products/1"), key=lambda s: s.start_time
    )[-1]
    assert hit.attributes["cache.result"] == "hit"
    assert hit.attributes["cache.entry.source"] == "warmup"
    assert hit.attributes["cache.entry.source_trace_id"] == trace_id(warmup)


def test_predictive_warm_up_fires_only_for_signed_in_users_and_its_cost_is_visible(server):
    server.get("/dashboard")  # anonymous: the rule's condition is not met
    (anonymous,) = server.spans(nextrace__phase="middleware")
    assert "nextrace.warmup.fired" not in anonymous.attributes
    server.settle()
    assert not server.spans(nextrace__phase="warmup")
    server.reset_spans()

    server.client.cookies.set("session", "alice")
    server.get("/about")  # signed in, but not the route the rule names
    server.get("/dashboard")
    middleware = sorted(server.spans(nextrace__phase="middleware"), key=lambda s: s.start_time)
    assert "nextrace.warmup.fired" not in middleware[0].attributes
    assert middleware[1].attributes["nextrace.warmup.fired"] == 2
    middleware_ms = (middleware[1].end_time - middleware[1].start_time) / 1e6
    assert 0 < middleware[1].attributes["nextrace.warmup.cost_ms"] <= middleware_ms
    server.settle()
    warmups = server.spans(nextrace__phase="warmup")
    assert {w.attributes["nextrace.warmup.trigger"] for w in warmups} == {"middleware"}
    assert len(warmups) == 2


def test_private_data_is_warmed_per_session_and_never_shared(server):
    server.client.cookies.set("session", "alice")
    server.get("/dashboard")
    server.settle()
    private_keys = [e.key for e in server.state.data.entries if e.scope == "private"]
    assert private_keys == [data_key("api", "/mine", "private", "alice")]
    assert all(
        e.key.startswith("private:alice:")
        for e in server.state.data.entries
        if e.scope == "private"
    )
    assert "api/mine" not in {e.key for e in server.state.data.entries}

    server.client.cookies.set("session", "bob")  # another user does not get alice's data
    server.reset_spans()
    server.get("/dashboard")
    (bob,) = [s for s in server.spans(cache__layer="data") if "/mine" in s.attributes["cache.key"]]
    assert bob.attributes["cache.key"] == "private:bob:api/mine"
    assert bob.attributes["cache.scope"] == "private"
    assert bob.attributes["cache.result"] == "miss"


def test_warming_private_data_into_the_shared_cache_is_impossible(server):
    with pytest.raises(PrivateScopeError):
        data_key("api", "/mine", "private", None)
    with pytest.raises(PrivateScopeError):
        server.state.data.store(
            "api/mine",
            upstream="api",
            path="/mine",
            scope="private",
            value={},
            tags=(),
            revalidate_s=None,
            source="warmup",
            source_trace_id="0" * 32,
        )


def test_a_webhook_flood_never_exceeds_the_upstream_rate_limit(make_server):
    server = make_server(**{"rate_per_s = 20": "rate_per_s = 10"})
    for product in range(40):
        server.get(f"/products/{product}")
    started = len(server.state.upstreams.calls)
    outcomes = [
        revalidate(server, {"tag": f"product-{p}", "expire": 0}).json()["warmups"]
        for p in range(40)
    ]
    outcomes += [revalidate(server, {"tag": "product-3", "expire": 0}).json()["warmups"]]
    server.settle()
    warm_calls = [c.at for c in server.state.upstreams.calls[started:] if c.origin == "warmup"]
    assert len(warm_calls) >= 39
    # Every warm-up went through the limiter: 39 calls at 10/s span at least 3.8 s (unlimited,
    # they would leave within a few milliseconds). The per-second bound itself is proven
    # exactly, on a virtual clock, in test_rate_limiter.py; here the upstream's receipt
    # times also carry the event loop's scheduling, which a busy machine shifts.
    assert warm_calls[-1] - warm_calls[0] >= 3.0
    assert sum(o.get("queued", 0) for o in outcomes) >= 40


def test_identical_waiting_jobs_are_deduplicated_and_a_full_queue_refuses(make_server):
    server = make_server(**{"max_jobs = 50": "max_jobs = 3\nworkers = 1"})
    for product in range(5):
        server.get(f"/products/{product}")
    # Hold the upstream's warm-up slot for 3 s: the first job then stays running while the
    # others are submitted, however slowly this machine sends them.
    server.state.warmups.limiter._next = time.monotonic() + 3
    outcomes = [  # 'max' keeps the entries, so repeating a tag finds them again
        revalidate(server, {"tag": f"product-{p}"}).json()["warmups"]
        for p in (0, 1, 1, 2, 3, 4)  # 0 runs; 1, 2, 3 wait; the second 1 and then 4 do not
    ]
    assert [next(k for k, v in o.items() if v) for o in outcomes] == [
        "queued",
        "queued",
        "deduplicated",
        "queued",
        "queued",
        "queue_full",
    ]
    server.settle()
    spans = server.spans(nextrace__phase="warmup")
    outcome_counts = {
        o: sum(1 for s in spans if s.attributes["nextrace.warmup.outcome"] == o)
        for o in ("ok", "deduplicated", "queue_full")
    }
    assert outcome_counts == {"ok": 4, "deduplicated": 1, "queue_full": 1}


def test_a_miss_on_an_entry_a_queued_warm_up_targets_is_flagged_as_the_race(make_server):
    server = make_server(
        **{"max_jobs = 50": "max_jobs = 50\nworkers = 1", "rate_per_s = 20": "rate_per_s = 2"}
    )
    server.get("/products/2")
    server.get("/products/1")
    server.get("/products/1")
    server.client.post(
        "/api/deploy", json={"warm_routes": 2}, headers={"x-revalidate-secret": SECRET}
    )
    server.reset_spans()
    server.get("/products/2")  # its warm-up waits behind /products/1's, at 2 calls a second
    lookup = next(s for s in server.spans(cache__layer="data", cache__key="api/products/2"))
    assert lookup.attributes["cache.result"] == "miss"
    assert lookup.attributes["nextrace.warmup.pending"] is True
    server.settle()
