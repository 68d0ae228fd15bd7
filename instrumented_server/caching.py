"""What every cache layer shares: bounded entries that remember why a key is missing.

A miss is only useful to an SRE with its reason: was the key never there
(``cold``), did it expire, was it invalidated by tag or path, emptied by a
deploy, or evicted for space? Each layer keeps its entries in an
:class:`EntryStore`, which records a *tombstone* with the reason whenever an
entry goes away, and reports it on the next miss.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

Result = Literal["hit", "miss", "stale", "bypass", "revalidated"]
MissReason = Literal[
    "cold",
    "expired",
    "tag_invalidated",
    "path_invalidated",
    "deploy",
    "evicted",
    "dynamic",
    "bypass",
    "other_instance",  # a per-instance cache: only another instance's memory held the key
]
Source = Literal["build", "request", "warmup", "prefetch", "revalidation"]
Clock = Callable[[], float]
"""Seconds on a monotonic scale (``time.monotonic``); tests pass one they can move."""


@dataclass
class Entry:
    """Bookkeeping common to entries of every layer."""

    key: str
    created: float  # on the store's clock
    source: Source
    source_trace_id: str
    tags: tuple[str, ...] = ()
    revalidate_s: float | None = None  # stale this long after it was filled; None: never
    stale_reason: MissReason | None = None  # set by revalidateTag(tag, 'max')
    paths: set[str] = field(default_factory=set)

    def age_ms(self, now: float) -> float:
        return (now - self.created) * 1000


E = TypeVar("E", bound=Entry)


@dataclass(frozen=True)
class Lookup(Generic[E]):
    """What a lookup found; ``age_ms`` is the entry's age when it was looked up."""

    result: Result
    reason: MissReason | None = None
    entry: E | None = None
    age_ms: float | None = None


class EntryStore(Generic[E]):
    """An LRU of entries with tombstones that remember why a key went away. Entries age on
    ``clock``: :meth:`now` is the time to give an entry as ``created``."""

    def __init__(self, max_entries: int, clock: Clock = time.monotonic) -> None:
        self._entries: OrderedDict[str, E] = OrderedDict()
        self._tombstones: OrderedDict[str, MissReason] = OrderedDict()
        self._max = max_entries
        self.now = clock

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[E]:
        return iter(list(self._entries.values()))

    def peek(self, key: str) -> E | None:
        """``key``'s entry, without touching its place in the LRU."""
        return self._entries.get(key)

    def get(self, key: str) -> E | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def lookup(self, key: str) -> Lookup[E]:
        """Hit, stale (marked stale, or older than its ``revalidate_s``) or miss with reason."""
        entry = self.get(key)
        if entry is None:
            return Lookup("miss", self.missing_reason(key))
        age_ms = entry.age_ms(self.now())
        if entry.stale_reason is not None:
            return Lookup("stale", entry.stale_reason, entry, age_ms)
        if entry.revalidate_s is not None and age_ms >= entry.revalidate_s * 1000:
            return Lookup("stale", "expired", entry, age_ms)
        return Lookup("hit", None, entry, age_ms)

    def invalidate_tag(self, tag: str, *, expire: bool) -> list[E]:
        """``revalidateTag``: mark tagged entries stale, or remove them when ``expire``."""
        tagged = [e for e in self._entries.values() if tag in e.tags]
        for entry in tagged:
            if expire:
                self.remove(entry.key, "tag_invalidated")
            else:
                entry.stale_reason = "tag_invalidated"
        return tagged

    def missing_reason(self, key: str) -> MissReason:
        return self._tombstones.get(key, "cold")

    def put(self, entry: E) -> None:
        self._entries[entry.key] = entry
        self._entries.move_to_end(entry.key)
        self._tombstones.pop(entry.key, None)
        while len(self._entries) > self._max:
            evicted, _ = self._entries.popitem(last=False)
            self._bury(evicted, "evicted")

    def remove(self, key: str, reason: MissReason) -> bool:
        if self._entries.pop(key, None) is None:
            return False
        self._bury(key, reason)
        return True

    def remove_where(self, predicate: Callable[[E], bool], reason: MissReason) -> int:
        keys = [k for k, e in self._entries.items() if predicate(e)]
        for key in keys:
            self.remove(key, reason)
        return len(keys)

    def clear(self, reason: MissReason) -> int:
        return self.remove_where(lambda _: True, reason)

    def _bury(self, key: str, reason: MissReason) -> None:
        self._tombstones[key] = reason
        self._tombstones.move_to_end(key)
        while len(self._tombstones) > 4 * self._max:
            self._tombstones.popitem(last=False)
