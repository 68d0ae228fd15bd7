"""``cacheLife`` profiles: how long a ``'use cache'`` entry serves, then serves stale, then is gone.

Next.js's built-in profiles (the ``cacheLife`` reference), in seconds. ``stale`` is the
client router's; the server goes by ``revalidate`` (after it, the next lookup serves the
entry and regenerates it in the background) and ``expire`` (after it, the next lookup misses
and waits). An app adds or overrides profiles in its definition, as ``next.config``'s
``cacheLife`` does.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MINUTE, HOUR, DAY, WEEK = 60.0, 3600.0, 86_400.0, 604_800.0


class CacheLife(BaseModel):
    """One profile: ``stale`` for the client, ``revalidate`` and ``expire`` for the server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stale: float = Field(gt=0)
    revalidate: float = Field(gt=0)
    expire: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> CacheLife:
        if self.expire < self.revalidate:
            raise ValueError("expire must be at least revalidate")
        return self


BUILT_IN: dict[str, CacheLife] = {
    "default": CacheLife(stale=5 * MINUTE, revalidate=15 * MINUTE, expire=365 * DAY),
    "seconds": CacheLife(stale=30, revalidate=1, expire=MINUTE),
    "minutes": CacheLife(stale=5 * MINUTE, revalidate=MINUTE, expire=HOUR),
    "hours": CacheLife(stale=5 * MINUTE, revalidate=HOUR, expire=DAY),
    "days": CacheLife(stale=5 * MINUTE, revalidate=DAY, expire=WEEK),
    "weeks": CacheLife(stale=5 * MINUTE, revalidate=WEEK, expire=30 * DAY),
    "max": CacheLife(stale=5 * MINUTE, revalidate=30 * DAY, expire=365 * DAY),
}
