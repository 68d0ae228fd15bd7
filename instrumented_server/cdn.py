"""The CDN edge cache in front of the server.

Keyed by method, path and query plus the request headers that the origin's
``Vary`` names, as a real CDN does: Next.js varies on ``RSC``,
``Next-Router-Prefetch``, ``Next-Router-State-Tree`` and
``Next-Router-Segment-Prefetch``, and on ``Next-Url`` only for paths that an
intercepting route may answer. Until a path has answered once, the CDN
assumes Next's usual ``Vary``. Responses are stored as
their ``Cache-Control`` allows: fresh for ``s-maxage``, then servable stale
for ``stale-while-revalidate`` while the CDN refreshes the entry in the
background. A response that must not be shared (``private``/``no-store``)
leaves a pass marker, as real CDNs do, so later requests for the same key
bypass the cache (``BYPASS``, reason ``dynamic``). Purges by path, tag or
deploy are remembered and reported as the reason of the next miss; the first
request after an on-demand revalidation purge is reported ``revalidated``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from instrumented_server.caching import Clock, Entry, EntryStore, Lookup, MissReason, Source

NEXT_VARY = (
    "rsc",
    "next-router-state-tree",
    "next-router-prefetch",
    "next-router-segment-prefetch",
)


def parse_vary(header: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in header.split(",") if h.strip())


@dataclass(frozen=True)
class CacheControl:
    shared: bool
    s_maxage: float = 0.0
    stale_while_revalidate: float = 0.0

    @classmethod
    def parse(cls, header: str) -> CacheControl:
        directives = {d.strip().split("=")[0]: d.strip() for d in header.lower().split(",")}
        if {"private", "no-store"} & set(directives) or "s-maxage" not in directives:
            return cls(shared=False)

        def seconds(name: str) -> float:
            match = re.search(rf"{name}=(\d+(?:\.\d+)?)", header.lower())
            return float(match.group(1)) if match else 0.0

        return cls(True, seconds("s-maxage"), seconds("stale-while-revalidate"))


@dataclass
class CdnEntry(Entry):
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    control: CacheControl = CacheControl(shared=False)
    route_path: str = ""

    @property
    def is_pass_marker(self) -> bool:
        return not self.control.shared


class CdnEdgeCache:
    def __init__(self, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        self.entries: EntryStore[CdnEntry] = EntryStore(max_entries, clock)
        self._vary: dict[str, tuple[str, ...]] = {}  # learned from responses, per path and query

    def key(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> str:
        """The cache key of a request: its URL and the request headers the origin varies on."""
        varying = self._vary.get(f"{path}?{query}", NEXT_VARY)
        values = "|".join(f"{h}={headers.get(h, '')}" for h in varying)
        return f"{method} {path}?{query}|{values}"

    def lookup(self, key: str, method: str) -> Lookup[CdnEntry]:
        if method not in ("GET", "HEAD"):
            return Lookup("bypass", "bypass")
        entry = self.entries.get(key)
        if entry is None:
            reason = self.entries.missing_reason(key)
            if reason in ("path_invalidated", "tag_invalidated"):
                return Lookup("revalidated", reason)  # refilled from origin after a purge
            return Lookup("miss", reason)
        age_ms = entry.age_ms(self.entries.now())
        if entry.is_pass_marker:
            return Lookup("bypass", "dynamic", entry, age_ms)
        age_s = age_ms / 1000
        if entry.stale_reason is None and age_s < entry.control.s_maxage:
            return Lookup("hit", None, entry, age_ms)
        if age_s < entry.control.s_maxage + entry.control.stale_while_revalidate:
            return Lookup("stale", entry.stale_reason or "expired", entry, age_ms)
        self.entries.remove(key, "expired")
        return Lookup("miss", "expired")

    def store(
        self,
        key: str,
        *,
        status: int,
        headers: dict[str, str],
        body: bytes,
        control: CacheControl,
        route_path: str,
        query: str,
        tags: tuple[str, ...],
        source: Source,
        source_trace_id: str,
    ) -> None:
        """Store a response, or a pass marker for one that must not be shared."""
        self._vary[f"{route_path}?{query}"] = parse_vary(headers.get("vary", ""))
        if not control.shared:
            tags = ()  # a pass marker holds no content that a tag could invalidate
        self.entries.put(
            CdnEntry(
                key=key,
                created=self.entries.now(),
                source=source,
                source_trace_id=source_trace_id,
                tags=tags,
                status=status,
                headers=headers,
                body=body,
                control=control,
                route_path=route_path,
            )
        )

    def purge_path(self, path: str, reason: MissReason = "path_invalidated") -> int:
        keys = [e.key for e in self.entries if e.route_path == path and not e.is_pass_marker]
        for key in keys:
            self.entries.remove(key, reason)
        return len(keys)

    def revalidate_tag(self, tag: str, *, expire: bool) -> int:
        """Purge tagged responses, or mark them stale (served while the CDN refreshes them)."""
        return len(self.entries.invalidate_tag(tag, expire=expire))

    def clear(self, reason: MissReason) -> int:
        return self.entries.clear(reason)
