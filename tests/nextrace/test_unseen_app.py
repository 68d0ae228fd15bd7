"""`slow`, `compare` and `report --format json` on a Next.js 16 app nextrace's authors never
wrote (tests/data/unseen-next16): a helper built it from a brief, instrumented it as the docs
say, drove it with curl and recorded every export and its upstream's own log of the calls it
got, without reading nextrace's code. Replayed into a real chDB store through the collector.

The truth is the upstream's log alone: a request waited on an upstream call when the call
carried the request's trace id and was answered before the request's last byte. Its data
cache missed when the call was for a cached fetch (every path but ``/ticker``, fetched with
``cache: 'no-store'``). What it waited for, end to end, is the longest chain of calls each
received after the one before was answered.

The app (tests/data/unseen-next16/app): a layout fetching ``/api/nav`` (``force-cache``);
``/shop/[slug]``, whose metadata and page fetch in parallel and then in sequence
(``revalidate`` and tags); ``/deals``, an ``unstable_cache`` around a fetch beside an uncached
one; ``/report``, streamed behind ``loading.js``; an API route ``/api/price/[id]``; a proxy;
revalidations by tag and by path; and a rebuild.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.service import Collector
from investigate import compare, slow
from investigate.diagnosis import MS
from investigate.reader import StoreReader
from investigate.report import build_report
from investigate.spans import load_trace
from tests.conftest import stored
from tests.support.captures import post_capture

RUN = Path(__file__).parents[1] / "data" / "unseen-next16"
UNCACHED = "/ticker"  # the one path the app fetches with cache: 'no-store'
TOLERANCE = 0.10  # the fetch part against the upstream's own time


@dataclass(frozen=True)
class Call:
    path: str
    received_ns: int
    answered_ns: int

    @property
    def ns(self) -> int:
        return self.answered_ns - self.received_ns


@dataclass(frozen=True)
class Waited:
    """A request the upstream's log says waited on calls, and the chain it waited for."""

    trace_id: str
    label: str
    path: str
    calls: list[Call]  # answered before the request's end
    chain: list[Call]  # the longest chain of calls one after another

    @property
    def chain_ns(self) -> int:
        return sum(call.ns for call in self.chain)

    @property
    def missed(self) -> bool:
        """Whether it waited on a data-cache miss (a cached fetch's call)."""
        return any(call.path != UNCACHED for call in self.calls)


def longest_chain(calls: list[Call]) -> list[Call]:
    """The chain of ``calls``, each received after the one before was answered, that took
    longest."""
    ordered = sorted(calls, key=lambda c: c.received_ns)
    best: list[tuple[int, list[Call]]] = []  # the longest chain ending with each call
    for call in ordered:
        before = [
            b for b, e in zip(best, ordered, strict=False) if e.answered_ns <= call.received_ns
        ]
        ns, chain = max(before, key=lambda b: b[0], default=(0, []))
        best.append((ns + call.ns, [*chain, call]))
    return max(best, key=lambda b: b[0], default=(0, []))[1]


def truth() -> list[Waited]:
    requests = [json.loads(line) for line in (RUN / "requests.jsonl").read_text().splitlines()]
    log = [json.loads(line) for line in (RUN / "upstream_calls.jsonl").read_text().splitlines()]
    waited = []
    for request in requests:
        calls = [
            Call(c["path"], int(c["received_ns"]), int(c["answered_ns"]))
            for c in log
            if c["trace_id"] == request["trace_id"] and int(c["answered_ns"]) <= request["end_ns"]
        ]
        if calls:
            waited.append(
                Waited(
                    request["trace_id"],
                    request["label"],
                    request["path"],
                    calls,
                    longest_chain(calls),
                )
            )
    return waited


@pytest.fixture
def replayed(client: TestClient, collector: Collector) -> StoreReader:
    post_capture(client, RUN)
    stored(collector, "SELECT 1")  # every trace normalized and stored
    assert collector.store is not None
    return StoreReader(collector.store)


def test_the_truth_is_what_the_run_was_recorded_for():
    # 14 requests waited on a data-cache miss, by the upstream's log alone.
    assert len([w for w in truth() if w.missed]) == 14


def test_every_request_that_waited_on_a_miss_is_listed_with_its_fetch(replayed):
    listed = {n.trace_id: n for n in slow.slowest(replayed, slow.Filters(limit=100))}
    wrong: list[Any] = []
    misses = [w for w in truth() if w.missed]
    for waited in misses:
        found = listed.get(waited.trace_id)
        if found is None or found.diagnosis is None:
            wrong.append((waited.label, waited.path, "not listed"))
            continue
        cause, parts = found.diagnosis.cause, found.diagnosis.parts
        last = waited.chain[-1]
        # The cause names the call the request waited for last, and how its cache answered.
        named = f"{last.path} " in cause or cause.endswith(last.path)
        how = "not cached" if last.path == UNCACHED else "data-cache miss"
        if not named or how not in cause:
            wrong.append((waited.label, waited.path, cause))
        elif abs(parts.get("fetch", 0) - waited.chain_ns) > TOLERANCE * waited.chain_ns:
            fetch_ms = parts.get("fetch", 0) / MS
            wrong.append(
                (waited.label, waited.path, f"fetch {fetch_ms:.0f} ms", waited.chain_ns / MS)
            )
        elif sum(parts.values()) != found.duration_ns:  # the parts add up, exactly
            wrong.append((waited.label, waited.path, "parts do not add up"))
    assert wrong == [], f"{len(misses) - len(wrong)} of {len(misses)} named right: {wrong}"


def test_a_background_refresh_is_no_cause(replayed):
    # /deals served its unstable_cache entry stale: the refresh's call was answered after the
    # response ended. What the page waited for was its uncached /ticker.
    refreshed = [w for w in truth() if w.path == "/deals" and not w.missed]
    assert refreshed
    listed = {n.trace_id: n for n in slow.slowest(replayed, slow.Filters(limit=100))}
    for waited in refreshed:
        diagnosis = listed[waited.trace_id].diagnosis
        assert diagnosis is not None
        assert f"{UNCACHED} " in diagnosis.cause, diagnosis.cause
        assert "not cached" in diagnosis.cause, diagnosis.cause


def test_no_redirect_is_a_navigation_or_a_peer(replayed, collector):
    # Next.js 16 answers an RSC request without its _rsc query with a 307, in a few ms.
    redirects = {
        trace_id
        for (trace_id,) in stored(collector, "SELECT TraceId FROM requests WHERE StatusCode = 307")
    }
    assert redirects, "the run holds redirects"
    listed = slow.slowest(replayed, slow.Filters(limit=100))
    assert not redirects & {n.trace_id for n in listed}
    for navigation in listed:
        if navigation.kind in ("soft", "document"):
            peer = compare.typical_peer(replayed, load_trace(replayed, navigation.trace_id))
            assert peer not in redirects, navigation.trace_id


def test_the_report_counts_every_request_and_navigation(replayed):
    sent = [json.loads(line) for line in (RUN / "requests.jsonl").read_text().splitlines()]
    report = build_report(replayed).as_json()
    assert report["requests"] == len(sent)
    pages = [
        r
        for r in sent
        if not r["path"].startswith("/api/")
        and "next-router-prefetch" not in {h.lower() for h in r["headers"]}
        and not 300 <= r["status"] < 400  # a redirect: the navigation goes on at its target
    ]
    assert report["navigations"] == len(pages)
    # Each cached fetch's call a request waited for is one data-cache miss.
    misses = sum(1 for waited in truth() for call in waited.calls if call.path != UNCACHED)
    assert report["cache_misses"]["data"] == misses
