"""Why a real Next.js app missed its cache, told from what the collector has seen before.

Next.js says whether a lookup hit, not why it missed. Every lookup says something about the
entry, though: a hit found it, a miss or a stale hit stored it anew. So the collector keeps,
per service, layer and key, the lookups each build made, and explains a miss (or a stale hit)
at time ``t`` from the lookups before ``t``:

- ``expired``: this build had the entry for at least its revalidate time (Next.js's
  ``next.fetch.cache_reason``, ``revalidate: N``) before ``t``;
- ``tag_invalidated`` / ``path_invalidated``: this build had the entry, and since it was stored
  the app revalidated one of its tags (``next.fetch.tags``, recorded by ``@nextrace/next``) or,
  for a page, its path (revalidation spans of ``traceRevalidations``);
- ``deploy``: only builds that started earlier had the key; this build started without it;
- ``other_instance``: for a cache each instance keeps to itself (``LookupFacts.shared`` False:
  Next.js's in-memory ``'use cache'`` handler), this build had the entry, but only on other
  instances (``service.instance.id``); on a shared cache the instances' lookups are one history;
- ``cold``: no build had the key, and the collector saw this build start (it saw an earlier
  build of the service first), so nothing was missed;
- ``unknown``: anything else. A young entry gone without a traced revalidation was revalidated
  untraced, evicted, or lives in another instance's cache; and a collector that started after
  the build did cannot know what came before.

The same history tells a hit where its entry came from: the latest lookup of this build
before it that stored the entry (a miss, by a warm-up, a prefetch or a request, as its
``LookupFacts.origin`` says; or a stale hit, whose background refresh is a ``revalidation``)
gives the hit's ``EntrySource``, ``EntrySourceTraceId`` and ``EntryAgeMs``. A hit whose entry
was stored before the collector saw it (by the build itself, say) keeps them empty; the
instance that stored it is ``EntrySourceInstance``. In a cache of each instance's own, only
that instance's lookups count.

Only lookups before ``t`` count, so deriving a trace again (a correction) explains it the same
way. The history is per collector process and bounded: ``max_keys`` keys (the least recently
seen go first), ``_LOOKUPS_KEPT`` lookups per key and build, ``_REVALIDATIONS_KEPT``
revalidations per service. Traces are explained in the order they are normalized, which a late
trace can break: its misses are explained by what was seen before them, lookups normalized
later included.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import operator
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from collector.nextjs.rows import CacheEventRow

_LOOKUPS_KEPT = 16
_REVALIDATIONS_KEPT = 10_000
_REVALIDATE = re.compile(r"^revalidate: (\d+(?:\.\d+)?)$")
_REFILLS = ("miss", "stale")  # results after which the build holds a fresh entry

Key = tuple[str, str, str]  # service, layer, cache key
_SERVED = ("hit", "stale")  # results served from a stored entry


class _Lookup(NamedTuple):
    at_ns: int
    result: str
    stored_by: str  # what a refill stored the entry for (warmup, request…); "" otherwise
    trace_id: str
    instance: str  # service.instance.id of the lookup's app; "" when not said


_AT = operator.attrgetter("at_ns")


def _before(lookups: list[_Lookup], t: int) -> int:
    """How many of ``lookups`` (oldest first) were made before ``t``."""
    if not lookups or lookups[-1].at_ns < t:  # lookups mostly come in time order
        return len(lookups)
    return bisect.bisect_left(lookups, t, key=_AT)


def revalidate_s(cache_reason: str) -> float | None:
    """The revalidate time in ``next.fetch.cache_reason`` (``revalidate: 60``), if any."""
    found = _REVALIDATE.match(cache_reason)
    return float(found.group(1)) if found else None


def tags(stored: str) -> tuple[str, ...]:
    """The tags of an attribute as stored: a JSON array (``["a","b"]``) or one string."""
    if not stored.startswith("["):
        return (stored,) if stored else ()
    try:
        return tuple(str(tag) for tag in json.loads(stored))
    except ValueError:
        return ()


@dataclasses.dataclass(frozen=True)
class LookupFacts:
    """What a lookup's span says of its entry: its revalidate time and its tags, who
    stores the entry if the lookup misses (``origin``: ``warmup``, ``prefetch``, ``request``),
    and whether every instance of the app reads the same store (``shared``)."""

    revalidate_s: float | None = None
    tags: tuple[str, ...] = ()
    origin: str = "request"
    shared: bool = True


def _kept_by(lookups: list[_Lookup], event: CacheEventRow, facts: LookupFacts) -> list[_Lookup]:
    """Those of ``lookups`` that reached the store ``event`` read: all of them for a shared
    cache; in a cache of each instance's own, those of ``event``'s instance."""
    if facts.shared:
        return lookups
    return [lookup for lookup in lookups if lookup.instance == event.instance]


class CacheHistory:
    """The lookups seen so far (see the module docstring). Not thread-safe: the normalizer's
    worker calls it under its write lock."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._max_keys = max_keys
        # key -> build -> its latest lookups, oldest first
        self._lookups: OrderedDict[Key, dict[str, list[_Lookup]]] = OrderedDict()
        self._builds: dict[str, dict[str, int]] = {}  # service -> build -> first seen (ns)
        # service -> (nanoseconds, kind, target) of its revalidations, oldest first (a dict
        # for its order and a constant-time check: a webhook flood brings thousands)
        self._revalidations: dict[str, dict[tuple[int, str, str], None]] = {}

    def revalidated(self, service: str, kind: str, target: str, at_ns: int) -> None:
        """Remember that ``service`` revalidated tag or path (``kind``) ``target``."""
        kept = self._revalidations.setdefault(service, {})
        kept[at_ns, kind, target] = None  # seen again (a replay, a correction): kept once
        if len(kept) > _REVALIDATIONS_KEPT:
            del kept[next(iter(kept))]

    def explain(
        self, events: Sequence[CacheEventRow], facts: Mapping[str, LookupFacts]
    ) -> list[CacheEventRow]:
        """``events`` with a reason for each miss and stale hit that had none (``unknown``), and
        the entry's source and age for each hit and stale hit, oldest first; ``facts`` maps a
        lookup's span id to what its span says of the entry. Every event is remembered, for
        the events after it."""
        ordered = sorted(events, key=lambda event: event.timestamp_ns)
        for event in ordered:
            builds = self._builds.setdefault(event.service, {})
            if builds.get(event.build_id, event.timestamp_ns) >= event.timestamp_ns:
                builds[event.build_id] = event.timestamp_ns
        explained = []
        unsaid = LookupFacts()
        for event in ordered:
            said = facts.get(event.span_id, unsaid)
            changes: dict[str, object] = {}
            if event.result in _REFILLS and event.reason == "unknown":
                changes["reason"] = self._reason(event, said)
            if event.result in _SERVED and not event.entry_source:
                changes.update(self._source(event, said))
            if changes:
                event = event.with_changes(**changes)
            explained.append(event)
            self._remember(event, said.origin)
        return explained

    def _source(self, event: CacheEventRow, facts: LookupFacts) -> dict[str, object]:
        """The source, trace, instance and age of the entry ``event`` (a hit) was served
        from: the latest refill of its build before it (on its instance, in a cache of each
        instance's own), if one was seen (else nothing)."""
        for last in reversed(_kept_by(self._build_lookups_before(event), event, facts)):
            if last.stored_by:
                return {
                    "entry_source": last.stored_by,
                    "entry_source_trace_id": last.trace_id,
                    "entry_source_instance": last.instance,
                    "entry_age_ms": round((event.timestamp_ns - last.at_ns) / 1e6, 3),
                }
        return {}

    def _build_lookups_before(self, event: CacheEventRow) -> list[_Lookup]:
        """The lookups of the entry of ``event`` by its build, on any instance, before it."""
        by_build = self._lookups.get((event.service, event.layer, event.key), {})
        lookups = by_build.get(event.build_id, [])
        return lookups[: _before(lookups, event.timestamp_ns)]

    def _reason(self, event: CacheEventRow, facts: LookupFacts) -> str:
        t = event.timestamp_ns
        anywhere = self._build_lookups_before(event)
        before = _kept_by(anywhere, event, facts)
        if anywhere and not before:  # only other instances held it, each in a cache of its own
            return "other_instance"
        if before:
            # Stored at the last refill, or, if none was seen, before the first hit.
            since = next(
                (lookup.at_ns for lookup in reversed(before) if lookup.result in _REFILLS),
                before[0].at_ns,
            )
            if facts.revalidate_s is not None and t - since >= facts.revalidate_s * 1e9:
                return "expired"
            return self._revalidation(event, facts, since)

        by_build = self._lookups.get((event.service, event.layer, event.key), {})
        builds = self._builds.get(event.service, {})
        started = builds.get(event.build_id, t)
        earlier = {build for build, first in builds.items() if first < started}
        if any(lookup.at_ns < t for build in earlier for lookup in by_build.get(build, [])):
            return "deploy"
        if earlier:
            return "cold"
        return "unknown"

    def _revalidation(self, event: CacheEventRow, facts: LookupFacts, since: int) -> str:
        """What revalidated the entry of ``event`` after ``since``: ``tag_invalidated``,
        ``path_invalidated`` (a page's path), or ``unknown``."""
        path = event.key if event.layer == "full_route" else None
        for at, kind, target in reversed(self._revalidations.get(event.service, ())):
            if not since < at < event.timestamp_ns:
                continue
            if kind == "tag" and target in facts.tags:
                return "tag_invalidated"
            if kind == "path" and target == path:
                return "path_invalidated"
        return "unknown"

    def _remember(self, event: CacheEventRow, origin: str) -> None:
        key = (event.service, event.layer, event.key)
        by_build = self._lookups.setdefault(key, {})
        self._lookups.move_to_end(key)
        seen = by_build.setdefault(event.build_id, [])
        # A miss stores the entry for whoever looked it up; a stale hit's background refresh
        # stores it anew.
        result = event.result
        stored_by = origin if result == "miss" else "revalidation" if result == "stale" else ""
        lookup = _Lookup(event.timestamp_ns, result, stored_by, event.trace_id, event.instance)
        at = _before(seen, lookup.at_ns)
        # The same lookup again (a replay, a correction) replaces what was known of it.
        for i in range(at, len(seen)):
            old = seen[i]
            if old.at_ns != lookup.at_ns:
                break
            if old.result == result and old.trace_id == lookup.trace_id:
                del seen[i]
                break
        bisect.insort(seen, lookup, lo=at)
        if len(seen) > _LOOKUPS_KEPT:
            del seen[0]
        if len(self._lookups) > self._max_keys:
            self._lookups.popitem(last=False)
