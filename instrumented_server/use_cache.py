"""``'use cache'`` functions' entries (Cache Components), where Next.js's handlers keep them.

- ``'use cache'`` (the ``default`` handler) keeps entries in the memory of the instance that
  ran the function: another instance behind the same CDN misses them (``other_instance``);
- ``'use cache: remote'`` keeps them in one store every instance reads (Redis, say), so a hit
  may serve an entry another instance stored;
- ``'use cache: private'`` keeps nothing on the server: every request runs the function.

An entry serves until its ``cacheLife`` ``revalidate``. Then Next.js's in-memory handler
drops it in production (``DefaultCacheHandler.get``, Next.js 16: "production drops them once
past the revalidate time"), so the next lookup waits (``expired``); a remote handler that keeps
it until ``expire`` has it served stale while the function runs again in the background, and
after ``expire`` the next lookup waits (``expired``). ``revalidateTag(tag, 'max')`` marks
tagged entries stale, an immediate expiry removes them (``tag_invalidated``); a deploy empties
every handler (``deploy``), since Next.js keys entries by build, but for what a warm-up of the
new build stored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from instrumented_server.cache_life import CacheLife
from instrumented_server.caching import Clock, Entry, EntryStore, Lookup, Source
from instrumented_server.definition import UseCache

LAYERS: dict[str, str] = {
    "use cache": "use_cache",
    "use cache: remote": "use_cache_remote",
    "use cache: private": "use_cache_private",
}
"""The cache layer of each directive, as ``@nextrace/next/cache-handler`` names its handler."""


def use_cache_key(function: str, upstream: str, path: str) -> str:
    """An entry's key: the function and its argument (the build is left out, as the package
    leaves it out of its digests, so that a deploy's misses are of the same key)."""
    return f"{function}({upstream}{path})"


@dataclass
class UseCacheEntry(Entry):
    value: object = None
    function: str = ""
    instance: str = ""  # the instance that ran the function and stored it
    expire_s: float = math.inf
    shared: bool = False  # in the remote store

    def kept_ms(self) -> float:
        """How long its handler keeps it: Next.js's in-memory handler until its revalidate
        time, a remote one until it expires."""
        kept_s = self.expire_s if self.shared else self.revalidate_s
        return math.inf if kept_s is None else kept_s * 1000


class UseCacheStores:
    """The handlers' stores of an app with ``instances`` (their ``service.instance.id``): one
    in-memory store per instance, one remote store for all."""

    def __init__(
        self, instances: Sequence[str], max_entries: int, clock: Clock = time.monotonic
    ) -> None:
        self.instances = tuple(instances)
        self._memory = [EntryStore[UseCacheEntry](max_entries, clock) for _ in self.instances]
        self._remote = EntryStore[UseCacheEntry](max_entries, clock)

    def lookup(self, directive: UseCache, instance: int, key: str) -> Lookup[UseCacheEntry]:
        """What ``instance``'s handler for ``directive`` holds for ``key``."""
        if directive == "use cache: private":
            return Lookup("bypass", "bypass")
        store = self._store(directive, instance)
        entry = store.get(key)
        if entry is not None and entry.age_ms(store.now()) >= entry.kept_ms():
            store.remove(key, "expired")
        found = store.lookup(key)
        if (
            directive == "use cache"
            and found.reason == "cold"
            and self._held_elsewhere(instance, key)
        ):
            return Lookup("miss", "other_instance")
        return found

    def _held_elsewhere(self, instance: int, key: str) -> bool:
        """Whether another instance's memory holds ``key``, not yet past its revalidate."""
        for i, other in enumerate(self._memory):
            entry = other.peek(key) if i != instance else None
            if entry is not None and entry.age_ms(other.now()) < entry.kept_ms():
                return True
        return False

    def store(
        self,
        directive: UseCache,
        instance: int,
        key: str,
        *,
        function: str,
        value: object,
        tags: tuple[str, ...],
        life: CacheLife,
        source: Source,
        source_trace_id: str,
    ) -> UseCacheEntry | None:
        """Keep what the function returned, in the handler for ``directive``; None: private
        results are not kept on the server."""
        if directive == "use cache: private":
            return None
        store = self._store(directive, instance)
        entry = UseCacheEntry(
            key=key,
            created=store.now(),
            source=source,
            source_trace_id=source_trace_id,
            tags=tags,
            revalidate_s=life.revalidate,
            value=value,
            function=function,
            instance=self.instances[instance],
            expire_s=life.expire,
            shared=directive == "use cache: remote",
        )
        store.put(entry)
        return entry

    def revalidate_tag(self, tag: str, *, expire: bool) -> int:
        """``revalidateTag`` (or ``updateTag``) on every handler; how many entries it touched."""
        return sum(len(s.invalidate_tag(tag, expire=expire)) for s in self._stores())

    def forget_build(self, keep_from: float) -> int:
        """A deploy: the new build reads none of the old one's entries. Those a warm-up filled
        for the new build since ``keep_from`` stay."""

        def old(entry: UseCacheEntry) -> bool:
            return not (entry.source == "warmup" and entry.created >= keep_from)

        return sum(s.remove_where(old, "deploy") for s in self._stores())

    def _store(self, directive: UseCache, instance: int) -> EntryStore[UseCacheEntry]:
        return self._remote if directive == "use cache: remote" else self._memory[instance]

    def _stores(self) -> list[EntryStore[UseCacheEntry]]:
        return [*self._memory, self._remote]
