"""What a CDN's log receivers ask the store (:mod:`collector.ingest.cdn`): which of a
delivery's lines it holds already, and the app's own requests near a moment, which a line that
logged no trace id is joined to."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.errors import TransientError
from collector.storage.migrations import load_sql, render
from collector.storage.store import ClickHouseStore

log = logging.getLogger(__name__)

# How many ids, or paths, one query asks about: its parameters stay far below a server's
# size limits (16-character ids: about 40 KB; paths are longer).
LINES_PER_QUERY = 2_000
PATHS_PER_QUERY = 500


@dataclass(frozen=True, slots=True)
class AppRequest:
    """A request the app's own trace holds: its request span, and that span's parent."""

    trace_id: str
    span_id: str
    parent_span_id: str
    service: str
    path: str
    start_ns: int
    route: str  # the route's template, as the app named it


class CdnLookups:
    """The store's answers to the CDN receivers."""

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store
        self._stored_sql = render(load_sql("stored_cdn_lines.sql"), store.config)
        self._near_sql = render(load_sql("app_requests_near.sql"), store.config)

    def stored_lines(self, span_ids: Sequence[str], first_ns: int, last_ns: int) -> set[str]:
        """Which of the spans ``span_ids`` of CDN lines, started from ``first_ns`` to
        ``last_ns``, the traces table holds. Raises TransientError if the store cannot say."""
        ids = sorted(set(span_ids))
        stored: set[str] = set()
        # In parts, so that a server's query parameters stay far below its size limits.
        for start in range(0, len(ids), LINES_PER_QUERY):
            try:
                result = self._store.client.query(
                    self._stored_sql,
                    parameters={
                        "first_ns": first_ns,
                        "last_ns": last_ns,
                        "span_ids": ids[start : start + LINES_PER_QUERY],
                    },
                )
            except ClickHouseError as exc:
                raise TransientError(f"ClickHouse is unavailable: {exc}") from exc
            stored.update(span_id for (span_id,) in result.result_rows)
        return stored

    def app_requests(
        self, services: Sequence[str], paths: Sequence[str], first_ns: int, last_ns: int
    ) -> list[AppRequest]:
        """The app's requests of ``services`` and ``paths`` that started from ``first_ns`` to
        ``last_ns``; none if the store cannot be asked (a join is worth a try, not a retry)."""
        wanted = sorted(set(paths))
        found: list[AppRequest] = []
        for start in range(0, len(wanted), PATHS_PER_QUERY):
            try:
                result = self._store.client.query(
                    self._near_sql,
                    parameters={
                        "first_ns": first_ns,
                        "last_ns": last_ns,
                        "services": sorted(set(services)),
                        "paths": wanted[start : start + PATHS_PER_QUERY],
                    },
                )
            except ClickHouseError as exc:
                log.warning("CDN lines not joined to the app's requests: %s", exc)
                return []
            found.extend(AppRequest(*row) for row in result.result_rows)
        return found
