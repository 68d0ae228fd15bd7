"""Why a real Next.js app missed its cache, from the lookups the collector saw before."""

from __future__ import annotations

import dataclasses

from collector.nextjs.miss_reasons import CacheHistory, LookupFacts, revalidate_s, tags
from collector.nextjs.rows import CacheEventRow

S = 1_000_000_000


def lookup(
    at_s: float, result: str, key: str = "/api/product/1", build: str = "a", layer: str = "data"
):
    return CacheEventRow(
        timestamp_ns=int(at_s * S),
        trace_id="t",
        span_id=f"{key}@{at_s}",
        service="shop",
        route="/products/[id]",
        layer=layer,
        result=result,
        reason="" if result == "hit" else "unknown",
        key=key,
        build_id=build,
    )


def reasons(
    history: CacheHistory, *events: CacheEventRow, tagged: tuple[str, ...] = ()
) -> list[str]:
    """The reasons given to ``events``, whose entries revalidate after 60 s, with ``tagged``."""
    facts = {e.span_id: LookupFacts(60, tagged) for e in events}
    return [e.reason for e in history.explain(list(events), facts)]


def test_a_miss_after_the_revalidate_time_is_an_expiry_and_a_young_entry_gone_is_unknown():
    history = CacheHistory()
    # The collector did not see this build start: the first miss cannot be told.
    assert reasons(history, lookup(0, "miss"), lookup(10, "hit")) == ["unknown", ""]
    assert reasons(history, lookup(70, "miss")) == ["expired"]  # stored at 0, revalidate 60
    assert reasons(history, lookup(75, "miss")) == ["unknown"]  # stored at 70: revalidated?
    assert reasons(history, lookup(140, "stale")) == ["expired"]


def test_only_hits_seen_still_date_the_entry():
    history = CacheHistory()
    reasons(history, lookup(5, "hit"))
    assert reasons(history, lookup(30, "miss")) == ["unknown"]
    assert reasons(history, lookup(100, "miss")) == ["expired"]  # stored at 30
    history = CacheHistory()
    reasons(history, lookup(5, "hit"))
    assert reasons(history, lookup(65, "stale")) == ["expired"]  # stored before 5


def test_after_a_deploy_a_key_the_old_build_had_misses_for_the_deploy_and_a_new_one_is_cold():
    history = CacheHistory()
    reasons(history, lookup(0, "miss"), lookup(1, "hit"))
    new_build = [
        lookup(100, "miss", build="b"),
        lookup(101, "miss", key="/api/new", build="b"),
        lookup(102, "hit", build="b"),
    ]
    assert reasons(history, *new_build) == ["deploy", "cold", ""]


def test_a_build_that_started_earlier_does_not_blame_a_newer_one():
    history = CacheHistory()
    reasons(history, lookup(0, "hit", key="/api/other"))  # build a serves first
    reasons(history, lookup(50, "miss", build="b"))  # b arrives: cold for b
    # a, still serving, misses a key only b had: not a deploy of a.
    assert reasons(history, lookup(60, "miss")) == ["unknown"]


def test_explaining_the_same_lookups_again_gives_the_same_reasons():
    history = CacheHistory()
    events = [lookup(0, "miss"), lookup(70, "miss"), lookup(100, "miss", build="b")]
    first = reasons(history, *events)
    assert first == ["unknown", "expired", "deploy"]
    assert reasons(history, *events) == first  # as a correction derives a trace again


def test_the_history_is_bounded():
    history = CacheHistory(max_keys=1)
    reasons(history, lookup(0, "miss"))
    reasons(history, lookup(1, "miss", key="/api/other"))  # pushes the first key out
    assert reasons(history, lookup(70, "miss")) == ["unknown"]


def test_the_revalidate_time_is_read_from_next_fetch_cache_reason():
    assert revalidate_s("revalidate: 60") == 60
    assert revalidate_s("revalidate: 0.5") == 0.5
    assert revalidate_s("cache: no-store") is None
    assert revalidate_s("") is None


def test_a_young_entry_gone_after_its_tag_or_its_page_was_revalidated_says_so():
    history = CacheHistory()
    reasons(history, lookup(0, "miss"), tagged=("product-1",))
    history.revalidated("shop", "tag", "product-1", 10 * S)
    assert reasons(history, lookup(20, "stale"), tagged=("product-1",)) == ["tag_invalidated"]
    # Refilled at 20: the revalidation at 10 explains nothing after it; another tag neither.
    history.revalidated("shop", "tag", "other", 25 * S)
    assert reasons(history, lookup(30, "miss"), tagged=("product-1",)) == ["unknown"]
    page = "/products/1"
    reasons(history, lookup(0, "miss", key=page, layer="full_route"))
    history.revalidated("shop", "path", page, 5 * S)
    assert reasons(history, lookup(8, "stale", key=page, layer="full_route")) == [
        "path_invalidated"
    ]


def test_tags_are_read_as_stored():
    assert tags('["product-1","products"]') == ("product-1", "products")
    assert tags("product-1") == ("product-1",)
    assert tags("") == ()
    assert tags("[not json") == ()


def test_a_hit_says_which_lookup_stored_its_entry_and_how_long_before():
    history = CacheHistory()
    warmed = dataclasses.replace(lookup(10, "miss"), trace_id="warmup-trace")
    hit = lookup(12.5, "hit")
    explained = history.explain([warmed, hit], {warmed.span_id: LookupFacts(origin="warmup")})
    assert [(e.entry_source, e.entry_source_trace_id, e.entry_age_ms) for e in explained] == [
        ("", "", 0.0),  # a miss is served no entry
        ("warmup", "warmup-trace", 2500.0),
    ]
    # A stale hit is served the warm-up's entry; its background refresh stores the next one.
    stale, after = lookup(80, "stale"), lookup(81, "hit")
    served = history.explain([stale, after], {})
    assert [(e.entry_source, e.entry_age_ms) for e in served] == [
        ("warmup", 70_000.0),
        ("revalidation", 1000.0),
    ]
    # Another build's entries are not this build's; an entry stored unseen stays unknown.
    assert history.explain([lookup(90, "hit", build="b")], {})[0].entry_source == ""


def test_a_corrected_trace_replaces_what_its_lookups_said():
    history = CacheHistory()
    miss = lookup(10, "miss")
    history.explain([miss], {})  # before the warm-up's root span arrived: a request's
    history.explain([miss], {miss.span_id: LookupFacts(origin="warmup")})  # the correction
    (hit,) = history.explain([lookup(11, "hit")], {})
    assert hit.entry_source == "warmup"
