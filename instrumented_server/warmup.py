"""Background warm-ups: a bounded, deduplicating, rate-limited queue of jobs.

A job fills cache entries before users ask for them: triggered by middleware
(predictive), by a webhook after revalidation, or after a deploy. Each job
runs as its own trace, linked to the span that triggered it, and reports its
outcome (``ok``, ``error``) and how long it waited in the queue. A job
identical to one already waiting is ``deduplicated``; a job that finds the
queue full is refused as ``queue_full``. Warm-up calls to upstream APIs go
through one :class:`RateLimiter`, so a webhook flood cannot overwhelm them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry import trace
from opentelemetry.trace import Link, Status, StatusCode

from contract import semconv
from instrumented_server.background import RateLimiter
from instrumented_server.telemetry import ServerTelemetry

Outcome = Literal["queued", "deduplicated", "queue_full"]
JobBody = Callable[[trace.Span, RateLimiter], Awaitable[None]]


@dataclass(frozen=True)
class WarmupJob:
    target: str  # what it warms; identical targets are deduplicated while waiting
    trigger: str  # middleware, webhook, deploy
    body: JobBody
    link: trace.SpanContext | None = None
    enqueued: float = field(default_factory=time.monotonic)


class WarmupQueue:
    """Lifecycle: jobs are accepted with ``submit`` once an event loop runs; ``drain`` waits
    until all are done; ``shutdown`` stops the workers and is idempotent."""

    def __init__(
        self,
        telemetry: ServerTelemetry,
        *,
        max_jobs: int,
        rate_per_s: float,
        workers: int = 4,
    ) -> None:
        self._telemetry = telemetry
        self.limiter = RateLimiter(rate_per_s)
        self._rate_per_s = rate_per_s
        self._max_jobs = max_jobs
        self._workers = workers
        self._queue: asyncio.Queue[WarmupJob] | None = None
        self._waiting: set[str] = set()
        self._running = 0
        self._in_progress: set[str] = set()
        self._worker_tasks: list[asyncio.Task[None]] = []
        self.counts: dict[str, int] = {"ok": 0, "error": 0, "deduplicated": 0, "queue_full": 0}

    def is_pending(self, target: str) -> bool:
        """Whether a job for ``target`` is queued or running: its entries are not filled yet."""
        return target in self._waiting or target in self._in_progress

    def submit(self, job: WarmupJob) -> Outcome:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker_tasks = [
                asyncio.get_running_loop().create_task(self._work()) for _ in range(self._workers)
            ]
        if job.target in self._waiting:
            self._refused(job, "deduplicated")
            return "deduplicated"
        if len(self._waiting) >= self._max_jobs:
            self._refused(job, "queue_full")
            return "queue_full"
        self._waiting.add(job.target)
        self._queue.put_nowait(job)
        return "queued"

    async def run_now(self, job: WarmupJob) -> None:
        """Run ``job`` at once, under the queue's rate limit; the workers run queued jobs
        through here too."""
        self._running += 1
        self._in_progress.add(job.target)
        try:
            await self._run(job)
        finally:
            self._running -= 1
            self._in_progress.discard(job.target)

    async def drain(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self._waiting or self._running:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._waiting)} warm-up job(s) still waiting")
            await asyncio.sleep(0.01)

    async def shutdown(self) -> None:
        for task in self._worker_tasks:
            task.cancel()
        if self._worker_tasks:
            await asyncio.wait(self._worker_tasks, timeout=5)
        self._worker_tasks = []

    def _attributes(self, job: WarmupJob, outcome: str) -> dict[str, object]:
        return {
            semconv.WARMUP_TRIGGER: job.trigger,
            semconv.WARMUP_TARGET: job.target,
            semconv.WARMUP_OUTCOME: outcome,
            semconv.REQUEST_KIND: semconv.KIND_WARMUP,
            semconv.WARMUP_RATE_PER_S: self._rate_per_s,
        }

    def _links(self, job: WarmupJob) -> list[Link]:
        return [Link(job.link)] if job.link is not None and job.link.is_valid else []

    def _refused(self, job: WarmupJob, outcome: str) -> None:
        self.counts[outcome] += 1
        with self._telemetry.span(
            f"warmup {job.trigger}",
            semconv.PHASE_WARMUP,
            None,
            {**self._attributes(job, outcome), semconv.WARMUP_QUEUE_WAIT_MS: 0.0},
            links=self._links(job),
        ):
            pass

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            self._waiting.discard(job.target)  # no await before run_now marks it in progress
            await self.run_now(job)

    async def _run(self, job: WarmupJob) -> None:
        wait_ms = (time.monotonic() - job.enqueued) * 1000
        with self._telemetry.span(
            f"warmup {job.trigger}",
            semconv.PHASE_WARMUP,
            None,
            {**self._attributes(job, "ok"), semconv.WARMUP_QUEUE_WAIT_MS: round(wait_ms, 3)},
            links=self._links(job),
        ) as span:
            try:
                await job.body(span, self.limiter)
            except Exception as exc:
                self.counts["error"] += 1
                span.set_attribute(semconv.WARMUP_OUTCOME, "error")
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                return
            self.counts["ok"] += 1
