"""The collector's own counters: what came in, what was stored, what was lost and why.

Every span or request that does not reach the store is counted here under a
reason, so nothing is lost silently. ``/metrics`` exposes these in the
Prometheus text format and ``/healthz`` as a JSON summary.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger(__name__)

DROP_REASONS = (
    "invalid_span",  # rejected by the receiver: unusable ids or times (partial_success)
    "export_failed",  # the store kept failing until the retry deadline
    "export_rejected",  # the store refused these rows as invalid (the rest of the batch stored)
    "shutdown",  # without a write-ahead log: not stored when a shutdown stopped the retries
    # a browser sent spans under a server's scope (collector.ingest.browser)
    "server_scope_from_browser",
    # a CDN log line that could not be read, one per line (collector.ingest.cdn)
    "malformed_log_line",
)
REFUSAL_REASONS = (
    "queue_full",  # 503: the batch queue holds max_queue_spans
    "memory_limit",  # 503: the memory budget (collector.memory) is spent
    "wal_full",  # 503: the write-ahead log is full or cannot be written
    "replaying",  # 503: the write-ahead log is being replayed (collector.pipeline.replay)
    "shutting_down",  # 503: the collector is stopping
)
REQUEST_REJECT_REASONS = (
    "malformed",  # 400
    "timeout",  # 408: the body did not arrive in time
    "too_large",  # 413
    "unsupported_media_type",  # 415
    "throttled",  # 503
    # 403: a browser request from an origin not listed (collector.ingest.browser)
    "forbidden_origin",
    "wrong_key",  # 401: a browser request without the browser key
    "rate_limited",  # 429: an origin sent more than its rate
    "wrong_signature",  # 401: a CDN log delivery without its vendor's signature
    "wrong_host",  # 403: a Host the collector does not answer to (collector.ingest.hosts)
)


class CollectorTelemetry:
    """Counters of one collector instance, in a registry of its own."""

    def __init__(self, progress_interval_s: float = 30.0, log_interval_s: float = 10.0) -> None:
        self._progress_interval_s = progress_interval_s
        self._log_interval_s = log_interval_s
        self._quiet_log: dict[str, tuple[float, int]] = {}  # key: (last line, lines held back)
        self._last_progress = time.monotonic()
        self._last_exported = 0
        self._without_fetch_spans: set[str] = set()  # only the normalizer's worker writes it
        self.registry = CollectorRegistry(auto_describe=True)
        self.spans_received = Counter(
            "nextrace_collector_spans_received",
            "Spans decoded from OTLP requests.",
            registry=self.registry,
        )
        self.spans_accepted = Counter(
            "nextrace_collector_spans_accepted",
            "Spans accepted into the batch queue.",
            registry=self.registry,
        )
        self.spans_exported = Counter(
            "nextrace_collector_spans_exported",
            "Spans committed to ClickHouse.",
            registry=self.registry,
        )
        self.spans_written = Counter(
            "nextrace_collector_spans_written",
            "Spans stored, by how their rows were made: staged (ClickHouse read the OTLP body) "
            "or columns (Python made the row: a value only it writes exactly, or no body).",
            ["path"],
            registry=self.registry,
        )
        for path in ("staged", "columns"):  # both shown from the start
            self.spans_written.labels(path)
        self.cdn_lines_redelivered = Counter(
            "nextrace_collector_cdn_lines_redelivered",
            "CDN log lines a vendor sent again after they were acknowledged: stored once, "
            "not again. Not a loss.",
            registry=self.registry,
        )
        self.spans_dropped = Counter(
            "nextrace_collector_spans_dropped",
            "Spans that were not stored, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.spans_refused = Counter(
            "nextrace_collector_spans_refused",
            "Spans answered with 503: the sender still has them and retries. Not a loss.",
            ["reason"],
            registry=self.registry,
        )
        self.spans_left_in_wal = Counter(
            "nextrace_collector_spans_left_in_wal",
            "Spans a shutdown could not store: the write-ahead log keeps them for the next start.",
            registry=self.registry,
        )
        self.wal_records_lost = Counter(
            "nextrace_collector_wal_records_lost",
            "Write-ahead log records not yet stored that were found damaged or missing when the "
            "log was opened: acknowledged requests whose spans no replay can store.",
            registry=self.registry,
        )
        self.wal_bytes_damaged = Counter(
            "nextrace_collector_wal_bytes_damaged",
            "Bytes of the write-ahead log found damaged when it was opened, and skipped.",
            registry=self.registry,
        )
        self.requests = Counter(
            "nextrace_collector_requests",
            "OTLP export requests, by HTTP status.",
            ["status"],
            registry=self.registry,
        )
        self.requests_rejected = Counter(
            "nextrace_collector_requests_rejected",
            "OTLP export requests refused as a whole, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.queue_spans = Gauge(
            "nextrace_collector_queue_spans",
            "Spans accepted but not yet committed.",
            registry=self.registry,
        )
        self.export_seconds = Histogram(
            "nextrace_collector_export_duration_seconds",
            "Time to insert one batch into ClickHouse.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.export_batch_spans = Histogram(
            "nextrace_collector_export_batch_spans",
            "Spans per ClickHouse insert.",
            buckets=(10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000),
            registry=self.registry,
        )
        self.nextjs_traces = Counter(
            "nextrace_collector_nextjs_traces",
            "Next.js traces normalized into request and cache rows.",
            registry=self.registry,
        )
        self.nextjs_late_spans = Counter(
            "nextrace_collector_nextjs_late_spans",
            "Spans of a Next.js trace that arrived after the trace was normalized.",
            registry=self.registry,
        )
        self.nextjs_traces_corrected = Counter(
            "nextrace_collector_nextjs_traces_corrected",
            "Next.js traces whose rows were replaced because more of their spans arrived late.",
            registry=self.registry,
        )
        self.nextjs_released_early = Counter(
            "nextrace_collector_nextjs_released_early",
            "Next.js traces normalized before their wait ended, to keep the buffer bounded.",
            registry=self.registry,
        )
        self.nextjs_released_busy = Counter(
            "nextrace_collector_nextjs_released_busy",
            "Next.js traces normalized while their spans still arrived, to hold the write-ahead "
            "log for a bounded time; their later spans correct the rows.",
            registry=self.registry,
        )
        self.nextjs_traces_dropped = Counter(
            "nextrace_collector_nextjs_traces_dropped",
            "Next.js traces not normalized because too many were waiting for a slow store.",
            registry=self.registry,
        )
        self.nextjs_fetch_spans_missing = Gauge(
            "nextrace_collector_nextjs_fetch_spans_missing",
            "1 for a Next.js service that fetches without Next.js's own fetch span: its data "
            "cache is invisible until that span is turned on.",
            ["service"],
            registry=self.registry,
        )
        self.rows_dropped = Counter(
            "nextrace_collector_derived_rows_dropped",
            "Rows derived from spans (requests, cache_events) that could not be stored.",
            ["table"],
            registry=self.registry,
        )
        for reason in DROP_REASONS:
            self.spans_dropped.labels(reason)
        for reason in REFUSAL_REASONS:
            self.spans_refused.labels(reason)
        for reason in REQUEST_REJECT_REASONS:
            self.requests_rejected.labels(reason)

    def drop(self, reason: str, count: int, detail: str = "") -> None:
        """Count ``count`` spans that will never be stored, and say so in the log (rarely)."""
        if count <= 0:
            return
        self.spans_dropped.labels(reason).inc(count)
        self._warn_rarely(
            f"drop:{reason}",
            "dropped %d span(s): %s%s",
            count,
            reason,
            f" ({detail})" if detail else "",
        )

    def refuse(self, reason: str, count: int) -> None:
        """Count spans answered with 503 (the receiver logs the request)."""
        self.spans_refused.labels(reason).inc(count)

    def left_in_wal(self, count: int) -> None:
        self.spans_left_in_wal.inc(count)
        log.warning(
            "%d span(s) not yet stored at shutdown stay in the write-ahead log; "
            "the next start stores them",
            count,
        )

    def wal_damage(self, records_lost: int, bytes_damaged: int) -> None:
        """Count what opening the write-ahead log found damaged or missing (the log has logged
        each as an error, naming its segment)."""
        self.wal_records_lost.inc(records_lost)
        self.wal_bytes_damaged.inc(bytes_damaged)

    def drop_nextjs_trace(self, trace_id: str, why: str) -> None:
        """Count a Next.js trace whose rows will never be derived (its raw spans are stored),
        and say so in the log, rarely: a slow store drops them by the thousand."""
        self.nextjs_traces_dropped.inc()
        self._warn_rarely("drop:nextjs_trace", "dropped Next.js trace %s: %s", trace_id, why)

    def drop_rows(self, table: str, count: int, detail: str) -> None:
        """Count derived rows that will never be stored (their raw spans are stored)."""
        self.rows_dropped.labels(table).inc(count)
        log.warning("dropped %d derived %s row(s): %s", count, table, detail)

    def fetch_spans_missing(self, service: str, fix: str) -> None:
        """A Next.js service fetches without Next.js's own fetch span: say so once, with
        ``fix``, in the log, ``/healthz`` and ``/metrics``."""
        if service in self._without_fetch_spans:
            return
        self._without_fetch_spans.add(service)
        self.nextjs_fetch_spans_missing.labels(service).set(1)
        log.warning("Next.js service %r: %s", service, fix)

    def log_progress(self) -> None:
        """Log a line of progress at most once per interval, while spans are arriving."""
        now = time.monotonic()
        if now - self._last_progress < self._progress_interval_s:
            return
        snapshot = self.snapshot()
        stored = snapshot["spans_exported"]
        rate = (stored - self._last_exported) / (now - self._last_progress)
        self._last_progress, self._last_exported = now, stored
        dropped = sum(snapshot["spans_dropped"].values())
        log.info(
            "stored %d spans (%.0f/s), %d waiting, %d dropped",
            stored,
            rate,
            snapshot["queue_spans"],
            dropped,
        )

    def reject_request(self, reason: str, status: int, detail: str) -> None:
        """Count a request refused as a whole, and log it (rarely, see _warn_rarely)."""
        self.requests_rejected.labels(reason).inc()
        self.requests.labels(str(status)).inc()
        self._warn_rarely(
            f"refuse:{reason}", "refused an OTLP request with %d (%s): %s", status, reason, detail
        )

    def _warn_rarely(self, key: str, message: str, *args: object) -> None:
        """Log a warning at most once per interval per ``key``, saying how many were held back:
        a flood of bad requests must not flood the log."""
        now = time.monotonic()
        last, quiet = self._quiet_log.get(key, (float("-inf"), 0))
        if now - last < self._log_interval_s:
            self._quiet_log[key] = (last, quiet + 1)
            return
        self._quiet_log[key] = (now, 0)
        more = f" (and {quiet} more like it since the last line)" if quiet else ""
        log.warning(message + "%s", *args, more)

    def export_totals(self) -> tuple[float, int]:
        """Seconds spent in inserts, and the number of inserts, since start."""
        samples = {s.name: s.value for m in self.export_seconds.collect() for s in m.samples}
        return float(samples.get("nextrace_collector_export_duration_seconds_sum", 0.0)), int(
            samples.get("nextrace_collector_export_duration_seconds_count", 0)
        )

    def snapshot(self) -> dict[str, Any]:
        """Current values, for ``/healthz`` and tests."""

        def total(counter: Counter) -> int:
            return int(
                sum(
                    s.value
                    for m in counter.collect()
                    for s in m.samples
                    if s.name.endswith("_total")
                )
            )

        def by_label(counter: Counter, label: str) -> dict[str, int]:
            return {
                s.labels[label]: int(s.value)
                for m in counter.collect()
                for s in m.samples
                if s.name.endswith("_total")
            }

        return {
            "spans_received": total(self.spans_received),
            "spans_accepted": total(self.spans_accepted),
            "spans_exported": total(self.spans_exported),
            "spans_written": by_label(self.spans_written, "path"),
            "spans_dropped": by_label(self.spans_dropped, "reason"),
            "cdn_lines_redelivered": total(self.cdn_lines_redelivered),
            "spans_refused": by_label(self.spans_refused, "reason"),
            "spans_left_in_wal": total(self.spans_left_in_wal),
            "wal_records_lost": total(self.wal_records_lost),
            "wal_bytes_damaged": total(self.wal_bytes_damaged),
            "requests_rejected": by_label(self.requests_rejected, "reason"),
            "requests_by_status": by_label(self.requests, "status"),
            "queue_spans": int(next(iter(self.queue_spans.collect())).samples[0].value),
            "nextjs_traces": total(self.nextjs_traces),
            "nextjs_late_spans": total(self.nextjs_late_spans),
            "nextjs_traces_corrected": total(self.nextjs_traces_corrected),
            "nextjs_released_early": total(self.nextjs_released_early),
            "nextjs_released_busy": total(self.nextjs_released_busy),
            "nextjs_traces_dropped": total(self.nextjs_traces_dropped),
            "derived_rows_dropped": by_label(self.rows_dropped, "table"),
            "nextjs_services_without_fetch_spans": sorted(
                s.labels["service"]
                for m in self.nextjs_fetch_spans_missing.collect()
                for s in m.samples
            ),
        }
