"""Upstream APIs, simulated in-process with their declared latency.

Each call is logged with its time and origin (request, warmup, build,
revalidation), so tests can prove which requests really reached an upstream
and how fast warm-ups hit it.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass

from contract.errors import NextraceError
from instrumented_server.definition import AppDefinition, Upstream


class UpstreamError(NextraceError):
    """The upstream answered with an error."""


@dataclass(frozen=True)
class UpstreamCall:
    upstream: str
    path: str
    origin: str
    at: float  # time.monotonic() when the call started


class UpstreamAPI:
    def __init__(self, upstream: Upstream, rng: random.Random, log: list[UpstreamCall]) -> None:
        self.definition = upstream
        self._rng = rng
        self._log = log
        median = upstream.latency.p50_ms / 1000
        # Log-normal with the declared median and 95th percentile (z = 1.645).
        self._mu = math.log(median)
        self._sigma = math.log(upstream.latency.p95_ms / upstream.latency.p50_ms) / 1.645

    def latency_s(self) -> float:
        return self._rng.lognormvariate(self._mu, self._sigma)

    async def get(self, path: str, origin: str) -> dict[str, object]:
        self._log.append(UpstreamCall(self.definition.name, path, origin, time.monotonic()))
        await asyncio.sleep(self.latency_s())
        if self._rng.random() < self.definition.error_rate:
            raise UpstreamError(f"{self.definition.name}{path} answered 503")
        return {"upstream": self.definition.name, "path": path, "at": time.time()}


class Upstreams:
    """All upstream APIs of an app, and the log of every call they received."""

    def __init__(self, definition: AppDefinition, seed: int = 1) -> None:
        self.calls: list[UpstreamCall] = []
        rng = random.Random(seed)
        self._apis = {u.name: UpstreamAPI(u, rng, self.calls) for u in definition.upstreams}

    def __getitem__(self, name: str) -> UpstreamAPI:
        return self._apis[name]

    def count(self, path: str | None = None, origin: str | None = None) -> int:
        return sum(
            1
            for call in self.calls
            if (path is None or call.path == path) and (origin is None or call.origin == origin)
        )
