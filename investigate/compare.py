"""``nextrace compare``: two traces of the same route, aligned span by span.

Spans are matched by their *path*: the phases and names from the root down to them, and
their rank among siblings of the same phase and name (the second ``fetch GET reviews`` of a
render is matched with the other trace's second one), never by position in time, so a
trace with an extra request or fetch still lines up. Names have their numbers and hex ids
taken out, so ``/products/2`` and ``/products/7`` match. The roots are always matched.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from contract.errors import NextraceError
from investigate.diagnosis import MS, Diagnosis
from investigate.reader import Reader
from investigate.spans import CacheOutcome, Span, Trace

_NUMBERS = re.compile(r"(?<=/)(?:\d+|[0-9a-f]{8,})(?=/|$|\?)")
SHOWN_DELTA_NS = MS  # smaller differences are summed, not listed

Key = tuple[tuple[str, str, int], ...]


@dataclass(frozen=True, slots=True)
class Pair:
    """A span of the slow trace and its match in the fast one (either may be missing)."""

    key: Key
    slow: Span | None
    fast: Span | None

    @property
    def span(self) -> Span:
        span = self.slow or self.fast
        assert span is not None, "a pair holds at least one span"
        return span

    @property
    def delta_ns(self) -> int:
        return (self.slow.duration_ns if self.slow else 0) - (
            self.fast.duration_ns if self.fast else 0
        )

    @property
    def cache_differs(self) -> bool:
        return _cache(self.slow) != _cache(self.fast) and bool(self.slow and self.fast)


@dataclass
class Comparison:
    slow: Diagnosis
    fast: Diagnosis
    pairs: list[Pair]


def align(slow: Trace, fast: Trace) -> list[Pair]:
    """Every span of both traces, paired by path, in the slow trace's order (then the fast's)."""
    slow_keys, fast_keys = _keys(slow), _keys(fast)
    fast_by_key = {key: span for span, key in fast_keys}
    pairs = [Pair(key, span, fast_by_key.get(key)) for span, key in slow_keys]
    seen = {key for _, key in slow_keys}
    pairs += [Pair(key, None, span) for span, key in fast_keys if key not in seen]
    return pairs


def compare(slow: Diagnosis, fast: Diagnosis) -> Comparison:
    return Comparison(slow, fast, align(slow.trace, fast.trace))


KIND_NAMES = {"document": "document", "rsc_navigation": "navigation", "rsc_prefetch": "prefetch"}


@dataclass(frozen=True, slots=True)
class PeerKey:
    """What a peer must share with a trace: the server's service, the route, the request kind
    (``requests.Kind``), and for a browser's navigation, its navigation type."""

    service: str
    route: str
    kind: str
    browser: bool
    navigation_type: str

    def describe(self) -> str:
        where = f"{self.route or 'its route'} ({self.service})"
        if self.browser and not self.kind:
            return f"browser navigation the router cache answered, of {where}"
        kind = KIND_NAMES.get(self.kind, self.kind or "request")
        return f"{'browser navigation with a ' if self.browser else ''}{kind} of {where}"


def peer_key(trace: Trace) -> PeerKey:
    """The :class:`PeerKey` of ``trace``: of its request (a browser's navigation: its first)."""
    root = trace.root
    browser = root.phase == "navigation"
    request, holder = trace.request, root
    if browser:
        request = next(
            (s for s in trace.spans if s.phase == "request" and not trace.is_pass(s)), None
        )
        holder = request or root
    if request is None:
        return PeerKey(root.service, root.attributes.get("next.route", ""), "", browser, "")
    kinds = (s.request_kind for s, _depth in trace.subtree(holder) if s.request_kind)
    return PeerKey(
        service=request.service,
        route=trace.route_of(holder) or root.attributes.get("next.route", ""),
        kind=next(kinds, ""),
        browser=browser,
        navigation_type=root.attributes.get("nextrace.navigation.type", "") if browser else "",
    )


def typical_peer(reader: Reader, trace: Trace) -> str:
    """A typical fast trace of the same route, request kind and service as ``trace``
    (``typical_trace.sql``); a one-line error when the store holds none."""
    key = peer_key(trace)
    rows = []
    if key.route and (key.kind or key.browser):
        rows = reader.rows(
            "typical_trace",
            trace_id=trace.trace_id,
            service=key.service,
            route=key.route,
            kind=key.kind,
            browser=key.browser,
            navigation_type=key.navigation_type,
        )
    if not rows or not rows[0]["peers"]:
        raise NextraceError(
            f"no other {key.describe()} is stored to compare with: pass a second trace id"
        )
    return str(rows[0]["trace_id"])


def _keys(trace: Trace) -> list[tuple[Span, Key]]:
    """Each span's path. The walk visits a parent's children in order of start, so a count per
    parent path and label is each span's rank among its like siblings."""
    out: list[tuple[Span, Key]] = []
    keys: dict[str, Key] = {}
    seen: Counter[tuple[Key, tuple[str, str]]] = Counter()
    for span, _depth in trace.walk():
        if span is trace.root:
            key: Key = (("root", "", 0),)
        else:
            parent = keys.get(span.parent_id, (("orphan", "", 0),))
            label = (span.phase, _NUMBERS.sub("{n}", span.name))
            key = (*parent, (*label, seen[parent, label]))
            seen[parent, label] += 1
        keys[span.span_id] = key
        out.append((span, key))
    return out


def _cache(span: Span | None) -> tuple[str, str] | None:
    cache: CacheOutcome | None = span.cache if span else None
    return (cache.result, cache.reason) if cache else None


def _describe_cache(span: Span | None) -> str:
    outcome = _cache(span)
    if outcome is None:
        return "none"
    result, reason = outcome
    return f"{result} ({reason})" if reason and result != "hit" else result


def render_text(comparison: Comparison) -> str:
    slow, fast = comparison.slow.trace, comparison.fast.trace
    total = slow.root.duration_ns - fast.root.duration_ns
    out = [
        f"slow {slow.trace_id}  {slow.root.name}  {slow.root.duration_ns / MS:.1f} ms",
        f"fast {fast.trace_id}  {fast.root.name}  {fast.root.duration_ns / MS:.1f} ms",
        f"difference: {total / MS:+.1f} ms",
        f"slow cause: {comparison.slow.cause or '-'}",
        f"fast cause: {comparison.fast.cause or '-'}",
        "",
        "critical path by part (ms):  slow    fast   delta",
    ]
    parts = dict.fromkeys([*comparison.slow.parts, *comparison.fast.parts])
    for part in parts:
        a, b = comparison.slow.parts.get(part, 0), comparison.fast.parts.get(part, 0)
        if max(a, b) >= MS / 2:
            out.append(f"  {part:<24}{a / MS:>8.1f}{b / MS:>8.1f}{(a - b) / MS:>+8.1f}")
    out += ["", f"{'slow ms':>9} {'fast ms':>9} {'delta':>9}  span"]
    hidden = 0
    for pair in comparison.pairs:
        span = pair.span
        alone = pair.slow is None or pair.fast is None
        if abs(pair.delta_ns) < SHOWN_DELTA_NS and not alone and not pair.cache_differs:
            hidden += 1
            continue
        note = ""
        if pair.slow is None:
            note = "  (only in the fast trace)"
        elif pair.fast is None:
            note = "  (only in the slow trace)"
        elif pair.cache_differs:
            note = f"  (cache: {_describe_cache(pair.slow)} vs {_describe_cache(pair.fast)})"
        out.append(
            f"{_ms(pair.slow):>9} {_ms(pair.fast):>9} {pair.delta_ns / MS:>+9.1f}  "
            f"{'  ' * (len(pair.key) - 1)}{span.name}{note}"
        )
    if hidden:
        out.append(f"({hidden} matched spans differ by less than 1 ms and the same cache outcome)")
    return "\n".join(out) + "\n"


def _ms(span: Span | None) -> str:
    return f"{span.duration_ns / MS:.1f}" if span else "-"


def as_json(comparison: Comparison) -> dict[str, Any]:
    def side(span: Span | None) -> dict[str, Any] | None:
        if span is None:
            return None
        return {
            "span_id": span.span_id,
            "duration_ms": span.duration_ns / MS,
            "cache": _describe_cache(span) if span.cache else None,
        }

    return {
        "slow": {"trace_id": comparison.slow.trace.trace_id, "cause": comparison.slow.cause},
        "fast": {"trace_id": comparison.fast.trace.trace_id, "cause": comparison.fast.cause},
        "difference_ms": (
            comparison.slow.trace.root.duration_ns - comparison.fast.trace.root.duration_ns
        )
        / MS,
        "parts_ms": {
            part: {
                "slow": comparison.slow.parts.get(part, 0) / MS,
                "fast": comparison.fast.parts.get(part, 0) / MS,
            }
            for part in dict.fromkeys([*comparison.slow.parts, *comparison.fast.parts])
        },
        "spans": [
            {
                "path": [f"{phase}:{name}#{rank}" for phase, name, rank in pair.key[1:]],
                "name": pair.span.name,
                "slow": side(pair.slow),
                "fast": side(pair.fast),
                "delta_ms": pair.delta_ns / MS,
                "cache_differs": pair.cache_differs,
            }
            for pair in comparison.pairs
        ],
    }
