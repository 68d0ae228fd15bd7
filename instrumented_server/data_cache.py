"""The data cache: fetch results shared across requests, with tags and revalidation.

Semantics follow Next.js:

- ``force-cache`` entries live until invalidated; ``revalidate: N`` entries
  turn stale after N seconds and are then served stale while a background
  fetch refreshes them; ``no-store`` fetches bypass the cache;
- ``revalidateTag(tag, 'max')`` marks tagged entries stale (served stale and
  refreshed in the background); an immediate expiry removes them, so the next
  request is a blocking miss;
- user-specific (``private``) data is kept per session, under keys that can
  never be read by another session or written into the shared namespace.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from contract.errors import NextraceError
from instrumented_server.caching import Clock, Entry, EntryStore, Lookup, MissReason, Source

PRIVATE_PREFIX = "private:"


class PrivateScopeError(NextraceError, ValueError):
    """Private (user-specific) data was about to enter the shared cache."""


def data_key(upstream: str, path: str, scope: str, session: str | None) -> str:
    """The cache key of a fetch. Private fetches need the user's session."""
    if scope == "private":
        if not session:
            raise PrivateScopeError(
                f"{upstream}{path} is user-specific: it can only be cached for a session"
            )
        return f"{PRIVATE_PREFIX}{session}:{upstream}{path}"
    return f"{upstream}{path}"


@dataclass
class DataEntry(Entry):
    upstream: str = ""
    path: str = ""
    scope: str = "shared"
    value: object = None


class DataCache:
    def __init__(self, max_entries: int, clock: Clock = time.monotonic) -> None:
        self.entries: EntryStore[DataEntry] = EntryStore(max_entries, clock)

    def lookup(self, key: str) -> Lookup[DataEntry]:
        return self.entries.lookup(key)

    def store(
        self,
        key: str,
        *,
        upstream: str,
        path: str,
        scope: str,
        value: object,
        tags: tuple[str, ...],
        revalidate_s: float | None,
        source: Source,
        source_trace_id: str,
        route_path: str | None = None,
    ) -> DataEntry:
        if (scope == "private") != key.startswith(PRIVATE_PREFIX):
            raise PrivateScopeError(f"scope {scope!r} does not match the key {key!r}")
        previous = self.entries.get(key)
        entry = DataEntry(
            key=key,
            created=self.entries.now(),
            source=source,
            source_trace_id=source_trace_id,
            tags=tags,
            paths=set(previous.paths) if previous else set(),
            upstream=upstream,
            path=path,
            scope=scope,
            revalidate_s=revalidate_s,
            value=value,
        )
        if route_path:
            entry.paths.add(route_path)
        self.entries.put(entry)
        return entry

    def revalidate_tag(self, tag: str, *, expire: bool) -> list[DataEntry]:
        """Invalidate every entry tagged ``tag``; return them (the blast radius)."""
        return self.entries.invalidate_tag(tag, expire=expire)

    def revalidate_path(self, path: str) -> list[DataEntry]:
        hit = [e for e in self.entries if path in e.paths]
        for entry in hit:
            self.entries.remove(entry.key, "path_invalidated")
        return hit

    def clear(self, reason: MissReason) -> int:
        return self.entries.clear(reason)
