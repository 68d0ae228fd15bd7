"""What a CDN's logged request becomes: its kind, its cache result, and its spans."""

from __future__ import annotations

import pytest

from collector.errors import TransientError
from collector.ingest.cdn import CdnRequest, RecentLines, as_export
from collector.pipeline.translator import translate


def logged(path: str, cache_status: str = "HIT", **fields) -> CdnRequest:
    return CdnRequest(
        **{"vendor": "test", "log_id": "line-1", **fields},
        service="shop",
        timestamp_ns=1_764_153_000_000_000_000,
        method="GET",
        host="shop.example.com",
        path=path,
        status=200,
        cache_status=cache_status,
    )


@pytest.mark.parametrize(
    ("path", "headers", "kind"),
    [
        ("/products/3", {}, ("document", "none")),
        ("/products/3?_rsc=abc", {}, ("rsc_navigation", "none")),
        ("/products/3", {"rsc": "1"}, ("rsc_navigation", "none")),
        ("/products/3", {"rsc": "1", "next-router-prefetch": "1"}, ("rsc_prefetch", "auto")),
        ("/products/3", {"purpose": "prefetch"}, ("rsc_prefetch", "auto")),
        ("/products/3.prefetch.rsc", {}, ("rsc_prefetch", "auto")),
        ("/products/3.segments/__PAGE__.segment.rsc", {}, ("rsc_prefetch", "segment")),
        ("/products/3", {"next-router-segment-prefetch": "/__PAGE__"}, ("rsc_prefetch", "segment")),
        ("/_next/static/chunks/main.js", {}, ("static_asset", "none")),
        ("/favicon.ico", {}, ("static_asset", "none")),
        ("/api/cart", {}, ("api", "none")),
    ],
)
def test_the_kind_of_a_logged_request(path, headers, kind):
    assert logged(path, headers=headers).kind() == kind


@pytest.mark.parametrize(
    ("status", "result", "reached_app"),
    [
        ("HIT", "hit", False),
        ("PRERENDER", "hit", False),
        ("STALE", "stale", False),
        ("UPDATING", "stale", False),
        ("MISS", "miss", True),
        ("EXPIRED", "miss", True),
        ("BYPASS", "bypass", True),
        ("DYNAMIC", "bypass", True),
        ("REVALIDATED", "revalidated", True),
        ("something new", "bypass", True),  # an unknown status is not taken for a hit
    ],
)
def test_a_vendors_cache_status_says_the_result_and_whether_the_app_was_reached(
    status, result, reached_app
):
    request = logged("/", status)
    assert (request.result, request.reached_app) == (result, reached_app)


def test_a_request_served_at_the_edge_is_a_request_span_over_its_lookup():
    spans = translate(as_export([logged("/a", "HIT")])).spans.columns
    assert spans.span_name == ["GET /a", "cdn"]
    assert spans.parent_span_id[1] == spans.span_id[0]
    assert spans.span_attributes[1]["nextrace.cdn.cache_status"] == "HIT"
    # The same line always makes the same spans; another line, others.
    again = translate(as_export([logged("/a", "HIT")])).spans.columns
    assert again.span_id == spans.span_id
    other = translate(as_export([logged("/a", "HIT", log_id="line-2")])).spans.columns
    assert other.trace_id != spans.trace_id


def test_a_delivery_sent_again_while_the_first_is_stored_is_asked_to_wait():
    # The vendor sent it again before the first copy was answered: the second gets a 503, and
    # comes again once the first's fate is known.
    recent = RecentLines(10)
    recent.claim(["a", "b"])
    with pytest.raises(TransientError):
        recent.claim(["b", "c"])
    recent.release(["a", "b"])
    recent.claim(["b", "c"])


def test_a_copy_looked_up_before_the_first_was_answered_is_asked_to_wait():
    # The copy was looked up (not stored yet), then the first was acknowledged and let go:
    # the copy's claim finds its lines remembered.
    recent = RecentLines(10)
    recent.claim(["a"])
    recent.remember(["a"])
    recent.release(["a"])
    with pytest.raises(TransientError):
        recent.claim(["a"])
