"""The one retry policy of the pipeline, shared by every stage that writes to the store.

As the OpenTelemetry Collector's ``retry_on_failure`` (its settings:
:class:`collector.config.RetryPolicy`): a transient failure is
retried with exponential backoff until ``max_elapsed_s`` has passed; a permanent
one is not retried. A shutdown interrupts the backoff at once. An unexpected
exception (a bug) is treated as permanent and logged with its traceback, so
that it can never kill a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from collector.config import RetryPolicy
from collector.errors import PermanentError, TransientError

log = logging.getLogger(__name__)


class Outcome(Enum):
    DONE = "done"
    REJECTED = "rejected"  # a permanent error: the data can never be stored
    GAVE_UP = "gave_up"  # transient errors until max_elapsed_s ran out
    STOPPED = "stopped"  # a shutdown interrupted the retries


@dataclass(frozen=True)
class Attempt:
    """How a call ended, and the last error if it failed."""

    outcome: Outcome
    error: Exception | None = None

    @property
    def reason(self) -> str:
        return f"{self.outcome.value}: {self.error}" if self.error else self.outcome.value


def call_with_retry(
    call: Callable[[], None],
    policy: RetryPolicy,
    stop: threading.Event,
    *,
    what: str,
    on_failing: Callable[[Exception | None], None] = lambda _error: None,
) -> Attempt:
    """Run ``call`` until it succeeds, fails permanently, runs out of time or ``stop`` is set.

    ``on_failing`` is told of each transient failure, and with None whenever the store
    answered (the call succeeded or was refused for good), so that health says the store is
    failing exactly while retries go on.
    """
    started = time.monotonic()
    delay = policy.initial_backoff_s
    attempt = 0
    while True:
        attempt += 1
        try:
            call()
        except TransientError as exc:
            on_failing(exc)
            elapsed = time.monotonic() - started
            if elapsed + delay > policy.max_elapsed_s:
                return Attempt(Outcome.GAVE_UP, exc)
            log.warning("%s failed (%s); retry %d in %.1fs", what, exc, attempt, delay)
            if stop.wait(delay):
                return Attempt(Outcome.STOPPED, exc)
            delay = min(delay * 2, policy.max_backoff_s)
            continue
        except PermanentError as exc:
            on_failing(None)  # the store answered: it refused these rows, not all rows
            return Attempt(Outcome.REJECTED, exc)
        except Exception as exc:  # a bug downstream must not kill the worker
            log.exception("unexpected failure in %s", what)
            return Attempt(Outcome.REJECTED, exc)
        # Also after a first attempt: an earlier call may have given up while failing.
        on_failing(None)
        return Attempt(Outcome.DONE)
