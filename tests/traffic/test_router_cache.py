from __future__ import annotations

import pytest

from tests.instrumented_server.conftest import MovableClock
from traffic.browser import payload_of
from traffic.router_cache import STALE_TIMES, RouterCache, StaleTimes


def store(cache: RouterCache, href: str, payload, *, dynamic: bool) -> None:
    cache.store(
        href, payload, dynamic=dynamic, source="prefetch", source_trace_id="t" * 32, build_id="b1"
    )


def test_next_versions_have_their_documented_stale_times():
    assert STALE_TIMES["14"] == StaleTimes(dynamic_s=30, static_s=300)
    assert STALE_TIMES["15"] == STALE_TIMES["16"] == StaleTimes(dynamic_s=0, static_s=300)


def test_full_payloads_hit_loading_states_hit_partially_and_empty_ones_miss():
    cache = RouterCache(STALE_TIMES["15"])
    store(cache, "/about", "full", dynamic=False)
    store(cache, "/products/1", "loading", dynamic=True)
    store(cache, "/profile", "empty", dynamic=True)
    assert cache.lookup("/about")[0] == "hit"
    assert cache.lookup("/products/1")[0] == "partial"
    assert cache.lookup("/profile")[0] == "miss"
    assert cache.lookup("/never")[0] == "miss"


def test_a_navigated_dynamic_page_is_not_reused_in_next_15_but_is_in_14_and_on_back():
    for version, expected in (("15", "miss"), ("14", "hit")):
        clock = MovableClock()
        cache = RouterCache(STALE_TIMES[version], clock=clock)
        store(cache, "/dashboard", "full", dynamic=True)
        clock.advance(0.01)
        assert cache.lookup("/dashboard")[0] == expected, version
        assert cache.lookup("/dashboard", history=True)[0] == "hit"  # back/forward reuse


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('0:{"b": "b1", "f": [], "loading": false}\n', ("full", "b1")),
        ('0:{"b": "b2", "f": [], "loading": [["$", "div", "l"]]}\n', ("loading", "b2")),
        ('0:{"b": "b3", "f": [], "S": false}\n', ("empty", "b3")),
        ('0:{"b": "b4", "f": [], "loading": true}\n1:{"boundary": "page"}\n', ("full", "b4")),
        ("<html>", ("empty", "")),
    ],
)
def test_the_browser_reads_what_an_rsc_response_holds(body, expected):
    assert payload_of(body) == expected
