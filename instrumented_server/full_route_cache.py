"""The full route cache: prerendered HTML and RSC payloads of static and ISR routes.

Static and ISR routes are prerendered at build time (server start and each
deploy). An ISR entry older than its ``revalidate`` is served stale while the
route re-renders in the background. Dynamic routes never enter this cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from instrumented_server.caching import Clock, Entry, EntryStore, Lookup, MissReason, Source


def route_key(path: str, variant: str) -> str:
    return f"{variant}:{path}"


@dataclass
class RouteEntry(Entry):
    path: str = ""
    variant: str = "html"  # html or rsc
    chunks: list[bytes] = field(default_factory=list)


class FullRouteCache:
    def __init__(self, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        self.entries: EntryStore[RouteEntry] = EntryStore(max_entries, clock)

    def lookup(self, path: str, variant: str) -> Lookup[RouteEntry]:
        return self.entries.lookup(route_key(path, variant))

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
            created=self.entries.now(),
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
        return len(self.entries.invalidate_tag(tag, expire=expire))

    def revalidate_path(self, path: str) -> int:
        return self.entries.remove_where(lambda e: e.path == path, "path_invalidated")

    def clear(self, reason: MissReason) -> int:
        return self.entries.clear(reason)
