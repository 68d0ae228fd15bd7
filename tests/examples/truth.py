"""What the example app's data cache did, known without nextrace: from the driver's record of
its requests and the upstream's log of the calls it received.

Each request is sent with a traceparent of the driver's own, and the app passes the trace on
to the upstream (``propagateContextUrls``), so every upstream call names its trace: a call of a
driver's request filled the entry it fetched for that request (a miss, or the background
refresh of a stale read when it was answered after the request), a call of any other trace is
a warm-up's. Product pages fetch ``/api/product/<id>`` (tagged ``product-<id>``); the profile
page fetches uncached, so its every fetch is a call.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tests.examples.nextjs_app import Call

PRODUCT = "/products/"


@dataclass
class Sent:
    """A request the driver sent, and what it got."""

    target: str  # as sent, with its query
    path: str
    kind: str
    data_cache: str | None  # what the upstream's log says, for pages that fetch
    nextjs_cache: str | None  # x-nextjs-cache
    body_bytes: int  # as received, before content decoding
    warmup: tuple[str, str] | None  # the (trigger, outcome) of a warm-up the request queued
    at: float  # when it was sent (time.time())
    received: float  # when its answer was
    trace_id: str  # of the traceparent it was sent with
    shown_call: int | None = None  # the upstream call whose data a product page showed

    @property
    def product(self) -> str:
        """The product a page or prefetch shows; "" for other paths."""
        return self.path.removeprefix(PRODUCT) if self.path.startswith(PRODUCT) else ""

    @property
    def revalidated_tag(self) -> str:
        """The tag a revalidation request revalidated; "" for other requests."""
        return parse_qs(urlsplit(self.target).query).get("tag", [""])[0]


def product_key(product: str) -> str:
    """The upstream path of ``product``'s data: its entry in the data cache."""
    return f"/api/product/{product}"


@dataclass
class PassTruth:
    """One pass of the driver (``sent``) and the upstream calls received during it."""

    sent: list[Sent]
    calls: list[Call]
    upstream_url: str
    helper: bool  # whether the app ran @nextrace/next's span processor

    def _fill(self, page: Sent) -> Call | None:
        """The call that filled the entry ``page`` read, if it was made during the pass."""
        key = product_key(page.product)
        fills = [c for c in self.calls if c.path == key and c.answered and c.answered < page.at]
        return max(fills, key=lambda c: c.answered or 0.0, default=None)

    def _pages(self, *results: str) -> list[Sent]:
        return [s for s in self.sent if s.product and s.data_cache in results]

    def entry_sources(self) -> Counter[str]:
        """What filled the entries the product pages' hits and stale reads were served from:
        ``unknown`` when it was filled before the pass. (The driver never reads an entry that
        a warm-up refreshed in the background, so a warm-up's call is its own miss.)"""
        requests = {s.trace_id: s for s in self.sent}
        sources: Counter[str] = Counter()
        for page in self._pages("hit", "stale"):
            fill = self._fill(page)
            by = requests.get(fill.trace_id) if fill else None
            if fill is None:
                sources["unknown"] += 1
            elif by is None:
                sources["warmup"] += 1
            elif fill.answered and fill.answered > by.received:
                sources["revalidation"] += 1
            else:
                sources["prefetch" if by.kind == "rsc_prefetch" else "request"] += 1
        return sources

    def reason(self, page: Sent) -> str:
        """Why ``page`` missed or read a stale entry, as far as the collector can know: a
        revalidation of its product's tag since the entry was filled, if the helper told the
        collector the fetch's tags; else nothing it saw."""
        fill = self._fill(page)
        since = fill.answered if fill and fill.answered else self.sent[0].at
        revalidated = any(
            s.revalidated_tag == f"product-{page.product}" and since < s.at < page.at
            for s in self.sent
        )
        return "tag_invalidated" if revalidated and self.helper else "unknown"

    def miss_reasons(self) -> Counter[str]:
        """The product pages' data-cache misses, by reason."""
        return Counter(self.reason(page) for page in self._pages("miss"))

    def raced(self, page: Sent) -> bool:
        """Whether ``page`` missed while a warm-up the proxy had queued for its entry had not
        filled it yet (the proxy warms product N+1 on a request for product N)."""
        if page.data_cache != "miss":
            return False
        key = product_key(page.product)
        queued = [
            s.at
            for s in self.sent
            if s.at < page.at
            and s.warmup == ("middleware", "queued")
            and s.product
            and int(s.product) + 1 == int(page.product)
        ]
        if not queued:
            return False
        own = next(c for c in self.calls if c.path == key and c.trace_id == page.trace_id)
        requests = {s.trace_id for s in self.sent}
        warmup = next(
            (
                c
                for c in self.calls
                if c.path == key and c.trace_id not in requests and c.received >= queued[-1]
            ),
            None,
        )
        return warmup is None or warmup.answered is None or warmup.answered > own.received

    def misses_despite_warmups(self) -> tuple[int, int, int]:
        """The panel's row for the product pages: misses that raced a queued warm-up (which
        only the helper marks), misses and stale reads after a revalidation that no warm-up
        raced, and all misses and stale reads."""
        pages = self._pages("miss", "stale")
        raced = sum(self.raced(p) for p in pages) if self.helper else 0
        revalidated = sum(
            self.reason(p) == "tag_invalidated" and not (self.helper and self.raced(p))
            for p in pages
        )
        return raced, revalidated, len(pages)

    def waterfalls(self) -> Counter[tuple[str, str]]:
        """Each call that waited for another call of its trace (received after it was
        answered), with the one answered last before it: (fetch, waited for) span names."""
        pairs: Counter[tuple[str, str]] = Counter()
        for call in self.calls:
            before = [
                c
                for c in self.calls
                if c.trace_id == call.trace_id and c.answered and c.answered <= call.received
            ]
            if call.trace_id and before:
                waited_for = max(before, key=lambda c: c.answered or 0.0)
                pairs[self._fetch_name(call), self._fetch_name(waited_for)] += 1
        return pairs

    def _fetch_name(self, call: Call) -> str:
        return f"fetch GET {self.upstream_url}{call.path}"

    def waited_ms(self) -> float:
        """How long the driver's requests waited for the upstream, in all: each call of their
        trace answered before they were."""
        requests = {s.trace_id: s for s in self.sent}
        waited = [
            c.answered - c.received
            for c in self.calls
            if c.trace_id in requests and c.answered and c.answered <= requests[c.trace_id].received
        ]
        return sum(waited) * 1000

    def slowest_waterfall_ms(self) -> float:
        """From the first call of the trace with most calls to its last answer, in ms."""
        traces = Counter(c.trace_id for c in self.calls if c.trace_id)
        trace_id, _ = traces.most_common(1)[0]
        calls = [c for c in self.calls if c.trace_id == trace_id]
        return (max(c.answered or 0.0 for c in calls) - min(c.received for c in calls)) * 1000
