"""The full route cache: prerendered HTML and RSC payloads of static and ISR routes.

Static and ISR routes are prerendered at build time (server start and each
deploy). An ISR entry older than its ``revalidate`` is served stale while the
route re-renders in the background. Dynamic routes never enter this cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from instrumented_server.caching import Entry, EntryStore, Lookup, MissReason, Source


def route_key(path: str, variant: str) -> str:
    return f"{variant}:{path}"


@dataclass
class RouteEntry(Entry):
    path: str = ""
    variant: str = "html"  # html or rsc
    revalidate_s: float | None = None
    chunks: list[bytes] = field(default_factory=list)


class FullRouteCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self.entries: EntryStore[RouteEntry] = EntryStore(max_entries)

    def lookup(self, path: str, variant: str) -> Lookup[RouteEntry]:
        key = route_key(path, variant)
        entry = self.entries.get(key)
        if entry is None:
            return Lookup("miss", self.entries.missing_reason(key))
        if entry.stale_reason is not None:
            return Lookup("stale", entry.stale_reason, entry)
        if entry.revalidate_s is not None and entry.age_ms() >= entry.revalidate_s * 1000:
            return Lookup("stale", "expired", entry)
        return Lookup("hit", None, entry)

    def store(
        self,
        path: str,
        variant: str,
        chunks: list[bytes],
        *,
        tags: tuple[str, ...],
        revalidate_s: float | None,
        source: Source,
        source_trace_id: str,
    ) -> RouteEntry:
        entry = RouteEntry(
            key=route_key(path, variant),
            created=time.monotonic(),
            source=source,
            source_trace_id=source_trace_id,
            tags=tags,
            paths={path},
            path=path,
            variant=variant,
            revalidate_s=revalidate_s,
            chunks=chunks,
        )
        self.entries.put(entry)
        return entry

    def revalidate_tag(self, tag: str, *, expire: bool) -> int:
        hit = [e for e in self.entries if tag in e.tags]
        for entry in hit:
            if expire:
                self.entries.remove(entry.key, "tag_invalidated")
            else:
                entry.stale_reason = "tag_invalidated"
        return len(hit)

    def revalidate_path(self, path: str) -> int:
        return self.entries.remove_where(lambda e: e.path == path, "path_invalidated")

    def clear(self, reason: MissReason) -> int:
        return self.entries.clear(reason)
