"""The report's ``'use cache'`` section: each function's lookups per handler, and what to do.

The advice is computed from the counts alone (``investigate/sql/use_cache_functions.sql``),
each line naming the figure it rests on:

- misses of a per-instance handler (``'use cache'``, the default) that another instance's
  memory held: a shared handler (``'use cache: remote'``) would have served them;
- misses after the entry's ``cacheLife`` expired, after a deploy, or after a tag revalidation;
- a private function runs on every request: nothing is kept on the server;
- hits of a shared handler that served an entry another instance stored.
"""

from __future__ import annotations

from typing import Any

TITLE = "'use cache' functions"
CAUSES = ("cold", "other_instance", "expired", "deploy", "tag_invalidated", "evicted")
"""The miss reasons the section counts apart; others (a first fill nothing explains) are
``unknown``."""


def advice(row: dict[str, Any]) -> list[str]:
    """What the counts of one function in one handler say to do, one line each."""
    out = []
    misses, name = row["misses"], row["function"]
    if row["other_instance"]:
        out.append(
            f"{row['other_instance']} of its {misses} misses found the entry only in another "
            f"instance's memory: each of the {row['instances']} instances runs {name} once per "
            "entry. 'use cache: remote' (a handler every instance shares) would have served "
            "them."
        )
    if row["expired"] and row["layer"] == "use_cache":
        out.append(
            f"{row['expired']} misses came after the entry's cacheLife revalidate, when Next.js's "
            "in-memory handler drops it: a longer revalidate would have served them."
        )
    elif row["expired"]:
        out.append(
            f"{row['expired']} misses came after the entry's cacheLife expire: a longer expire "
            "would have served them, stale while it ran again, if the data may be that old."
        )
    if row["deploy"]:
        out.append(
            f"{row['deploy']} misses followed a deploy, whose build reads none of the old "
            "entries: warm the routes that call it before the switch."
        )
    if row["tag_invalidated"]:
        out.append(
            f"{row['tag_invalidated']} misses followed a tag revalidation that expired the "
            "entry: revalidateTag(tag, 'max') serves it stale while it runs again."
        )
    if row["evicted"]:
        out.append(f"{row['evicted']} misses found the entry evicted: the handler is too small.")
    if row["layer"] == "use_cache_private" and row["bypassed"] and not row["served"]:
        out.append(
            f"ran on all {row['bypassed']} requests: 'use cache: private' keeps results only "
            "in the browser, never on the server."
        )
    if row["from_other_instances"]:
        out.append(
            f"{row['from_other_instances']} of its {row['served']} hits served an entry "
            "another instance stored."
        )
    return out


def render(rows: list[dict[str, Any]]) -> list[str]:
    """The section, or nothing when the window has no ``'use cache'`` lookup."""
    if not rows:
        return []
    out = [
        "",
        f"== {TITLE} ==",
        "(per function and handler: lookups, served from the cache (fresh or stale), misses by "
        "cause, and what to do; use_cache keeps entries in one instance's memory, "
        "use_cache_remote in a store every instance shares, use_cache_private on no server)",
    ]
    for row in rows:
        causes = ", ".join(f"{row[cause]} {cause}" for cause in CAUSES if row[cause])
        unknown = row["misses"] - sum(row[cause] for cause in CAUSES)
        if unknown:
            causes += f"{', ' if causes else ''}{unknown} unknown"
        out.append(
            f"  {row['layer']:<18} {row['function']}: {row['lookups']} lookups, "
            f"{row['served']} served, {row['misses']} misses"
            + (f" ({causes})" if causes else "")
            + (f", {row['bypassed']} bypassed" if row["bypassed"] else "")
        )
        out += [f"      → {line}" for line in advice(row)]
    return out
