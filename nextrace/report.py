"""The demo's report: the questions an SRE asks, answered from the stored spans.

Every figure comes from SQL on ``otel_traces`` (the queries are in
``nextrace/sql/``), never from in-memory counters, so the same answers can be
had from any store the collector wrote, with ``nextrace sql``. The one exception
is what the demo's reference server says its SDK dropped (its ``/healthz``):
those spans never reached the store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from instrumented_server.payloads import BROWSER_SERVICE
from nextrace.reader import Reader
from nextrace.slow import Filters, SlowNavigation
from nextrace.slow import render_text as render_slow
from nextrace.slow import slowest as find_slowest

SPIKE_WINDOW_S = 6.0  # how long after a deploy counts as "during" the spike
BUCKET_MS = 500
SUFFERED_RATIO, SUFFERED_MIN_MS = 1.2, 50.0  # a route suffered: its p95 rose this much, or more
# The spike is measured where warm-ups act: the data cache. (A new build's CDN and full
# route cache start empty or prerendered whatever is warmed; the table shows them per layer.)
SPIKE_LAYERS = ("data",)


def run_query(reader: Reader, name: str, **parameters: Any) -> list[dict[str, Any]]:
    parameters.setdefault("browser_service", BROWSER_SERVICE)
    return reader.rows(name, **parameters)


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


@dataclass
class Spike:
    deploy_at: dt.datetime
    build_id: str
    warm_routes: int
    baseline_miss_ratio: float  # in the window before the deploy
    window_miss_ratio: float  # in the window after it
    settled_miss_ratio: float  # from the end of that window to the next deploy or the end
    peak_miss_ratio: float
    peak_at_s: float  # after the deploy
    recovered_after_s: float | None
    cold_misses: int
    lookups: int
    spiked: bool  # the peak rose clearly above the baseline


@dataclass
class Report:
    scenario: str = ""
    summary: dict[str, Any] = field(default_factory=dict)  # run_summary.sql
    period_labels: list[str] = field(default_factory=list)
    deploys: list[dict[str, Any]] = field(default_factory=list)
    misses: list[dict[str, Any]] = field(default_factory=list)  # misses_by_reason.sql
    latency: list[dict[str, Any]] = field(default_factory=list)  # latency_by_period.sql
    periods: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    spikes: list[Spike] = field(default_factory=list)
    prevented_misses: int | None = None
    race: dict[str, int] = field(default_factory=dict)
    prefetch: dict[str, float] = field(default_factory=dict)
    warmups: list[dict[str, Any]] = field(default_factory=list)
    warmup_busiest_second: int = 0
    slowest: list[SlowNavigation] = field(default_factory=list)
    # The reference server's /healthz "spans_dropped", when a demo ran one.
    server_spans_dropped: dict[str, int | None] | None = None

    def render(self) -> str:
        out = self.header_lines()
        out += [
            "",
            "== Cache hit ratio per layer (user traffic) ==",
            "(lookups served from the cache, fresh or stale, out of all lookups that were not "
            "bypassed; user traffic: the traces browsers started, not warm-ups or builds)",
        ]
        layers = sorted({layer for _, ratios in self.periods for layer in ratios})
        out.append(f"{'period':<34}" + "".join(f"{layer:>13}" for layer in layers))
        for label, ratios in self.periods:
            cells = "".join(
                f"{ratios[layer]:>12.0%} " if layer in ratios else f"{'-':>13}" for layer in layers
            )
            out.append(f"{label:<34}{cells}")
        if self.spikes:
            out.append("")
            out.append("== Cold-cache spikes after deploys (data-cache lookups of user traffic) ==")
            for spike in self.spikes:
                if not spike.spiked:
                    shape = f"no spike (peak {spike.peak_miss_ratio:.0%})"
                else:
                    recovered = (
                        f"recovered {spike.recovered_after_s:.0f} s after the deploy"
                        if spike.recovered_after_s is not None
                        else "not recovered before the next event"
                    )
                    shape = (
                        f"peak {spike.peak_miss_ratio:.0%} {spike.peak_at_s:.0f} s after, "
                        f"{recovered}"
                    )
                out.append(
                    f"{spike.deploy_at:%H:%M:%S} deploy {spike.build_id} "
                    f"(warming {spike.warm_routes} routes before the switch): miss ratio "
                    f"{spike.baseline_miss_ratio:.0%} before, {spike.window_miss_ratio:.0%} in "
                    f"the {SPIKE_WINDOW_S:.0f} s after, {spike.settled_miss_ratio:.0%} later; "
                    f"{shape}; {spike.cold_misses} cold misses in {spike.lookups} lookups"
                )
            out.append(
                "(miss ratio: data-cache misses out of lookups; cold misses: entries a deploy "
                "emptied; peak: the worst 0.5 s bucket with at least 3 lookups)"
            )
            if self.prevented_misses is not None:
                if self.prevented_misses > 0:
                    out.append(
                        f"Warming before the switch prevented about {self.prevented_misses} "
                        "cold misses (cold misses per lookup, without against with warm-up)."
                    )
                else:
                    out.append(
                        "Warming before the switch prevented no cold misses in this run: the "
                        "deploy with warm-up had as many cold misses per lookup or more."
                    )
        out.append("")
        out.append("== Data-cache misses and warm-ups ==")
        out.append(
            f"{self.race.get('misses', 0)} misses or stale hits: {self.race.get('raced', 0)} on "
            f"entries a warm-up had queued but not yet filled, {self.race.get('never_warmed', 0)} "
            "on entries no warm-up touched."
        )
        for row in self.warmups:
            out.append(
                f"  warm-ups {row['trigger']:<10} {row['outcome']:<13} {row['jobs']:>5} jobs, "
                f"{row['avg_wait_ms']:>8.1f} ms average queue wait"
            )
        if self.warmups:
            out.append(f"  busiest second of warm-up upstream calls: {self.warmup_busiest_second}")
        out += self._misses()
        p = self.prefetch
        out.append("")
        out.append("== Prefetch load ==")
        out.append(
            f"{p.get('prefetch_requests', 0):.0f} of {p.get('requests', 0):.0f} server requests "
            f"({p.get('request_share', 0):.0%}) and {p.get('request_time_share', 0):.0%} of server "
            f"time came from prefetches; middleware ran {p.get('middleware_runs', 0):.0f} times, "
            f"{p.get('middleware_share', 0):.0%} of them for prefetches "
            f"({p.get('middleware_time_share', 0):.0%} of middleware time)."
        )
        out.append(
            f"{p.get('prefetches', 0):.0f} prefetches for {p.get('navigations', 0):.0f} "
            f"navigations ({p.get('prefetch_per_navigation', 0):.1f} per navigation); "
            f"{p.get('unused_prefetches', 0):.0f} prefetched payloads were never used. Router "
            f"cache: {p.get('router_hits', 0):.0f} hits, {p.get('router_partial', 0):.0f} partial "
            f"(loading state first), {p.get('router_misses', 0):.0f} misses."
        )
        out += self._latency()
        out.append("")
        out.append("== Slowest navigations ==")
        out.append(
            "(browser navigation spans, start to last byte; the cause and the parts come from "
            "each one's critical path: `nextrace trace ID` shows it as a waterfall)"
        )
        out.append(render_slow(self.slowest).rstrip("\n"))
        return "\n".join(out) + "\n"

    def header_lines(self) -> list[str]:
        s = self.summary
        if not s:
            return []
        first, last = s["first_span"], s["last_span"]
        return [
            f"nextrace report{f': scenario {self.scenario!r}' if self.scenario else ''}",
            f"window: {first:%Y-%m-%d %H:%M:%S} to {last:%H:%M:%S} {s['time_zone']} "
            f"({(last - first).total_seconds():.0f} s); spans stored: {s['spans_stored']}, "
            f"spans dropped by the collector: {s['spans_dropped'] or 0}",
            *self._server_drops(),
        ]

    def _server_drops(self) -> list[str]:
        dropped = self.server_spans_dropped
        if dropped is None:
            return []
        failed, queue_full = dropped["export_failed"] or 0, dropped["queue_full"]
        what = "spans dropped by the reference server's OpenTelemetry SDK"
        if queue_full is None:
            return [
                f"{what}: {failed} in failed exports; those dropped with its queue full are "
                "not counted (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=false)"
            ]
        return [
            f"{what}: {queue_full + failed} ({queue_full} with its queue full, {failed} in "
            "failed exports)"
        ]

    def _misses(self) -> list[str]:
        if not self.misses:
            return []
        total = sum(m["lookups"] for m in self.misses)
        out = [
            "",
            "== Every cache miss of user traffic, by layer and cause ==",
            f"({total} misses and stale hits; the cause is the lookup's cache.miss_reason: "
            "deploy = emptied by a new build, cold = never stored, expired, invalidated by a "
            "revalidation, evicted; unknown = the producer did not say)",
        ]
        by_layer: dict[str, list[dict[str, Any]]] = {}
        for m in self.misses:
            by_layer.setdefault(m["layer"], []).append(m)
        for layer, rows in by_layer.items():
            causes = ", ".join(
                f"{r['lookups']} {r['reason']}"
                + (f" ({r['result']})" if r["result"] != "miss" else "")
                + (
                    f" ({r['warmup_pending']} with a warm-up still queued)"
                    if r["warmup_pending"]
                    else ""
                )
                for r in rows
            )
            out.append(f"  {layer:<13} {sum(r['lookups'] for r in rows):>5}: {causes}")
        return out

    def _latency(self) -> list[str]:
        if not self.latency:
            return []
        out = [
            "",
            "== Navigation latency per period ==",
            "(browser navigation spans, in ms: p50 = median, p95 and p99 = the slowest 5% and "
            "1% start above these)",
            f"{'period':<34}{'navigations':>12}{'p50':>9}{'p95':>9}{'p99':>9}",
        ]
        overall = [r for r in self.latency if r["route"] == ""]
        for row in overall:
            label = self.period_labels[row["period"]]
            out.append(
                f"{label:<34}{row['navigations']:>12}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}"
                f"{row['p99_ms']:>9.0f}"
            )
        suffered = self.routes_that_suffered()
        if suffered:
            out.append("Routes that suffered most (p95 in a deploy's spike against before it):")
            for route, before, during, label in suffered:
                out.append(f"  {route:<28} {before:>7.0f} ms -> {during:>7.0f} ms  ({label})")
        elif self.spikes:
            out.append(
                "No route's p95 rose by a fifth and 50 ms in a deploy's spike against before it."
            )
        return out

    def routes_that_suffered(self, top: int = 3) -> list[tuple[str, float, float, str]]:
        """Routes whose navigation p95 rose most from the period before a deploy to its spike
        (by a fifth and 50 ms at least)."""
        p95 = {(r["period"], r["route"]): r["p95_ms"] for r in self.latency if r["route"]}
        rises = []
        for (period, route), during in p95.items():
            label = self.period_labels[period] if period < len(self.period_labels) else ""
            before = p95.get((period - 1, route))
            if (
                label.endswith(": spike")
                and before is not None
                and during >= before * SUFFERED_RATIO
                and during - before >= SUFFERED_MIN_MS
            ):
                rises.append((route, before, during, label))
        return sorted(rises, key=lambda r: r[1] - r[2])[:top]


def build_report(reader: Reader, slowest: int = 5, scenario: str = "") -> Report:
    report = Report(scenario=scenario)
    report.summary = run_query(reader, "run_summary")[0]
    deploys = run_query(reader, "deploys")
    report.deploys = deploys
    bounds: list[dt.datetime] = []
    labels = ["before the first deploy" if deploys else "whole run"]
    window = dt.timedelta(seconds=SPIKE_WINDOW_S)
    for index, deploy in enumerate(deploys, 1):
        warm = "with" if deploy["warm_routes"] else "without"
        bounds += [deploy["at"], deploy["at"] + window]
        labels += [f"deploy {index} ({warm} warm-up): spike", f"deploy {index}: after"]
    report.period_labels = labels
    report.misses = run_query(reader, "misses_by_reason")
    report.latency = run_query(reader, "latency_by_period", bounds=bounds)
    rows = run_query(reader, "hit_ratio_by_period", bounds=bounds)
    for period, label in enumerate(labels):
        ratios = {
            r["layer"]: ratio(r["served"], r["served"] + r["misses"])
            for r in rows
            if r["period"] == period
        }
        if ratios:
            report.periods.append((label, ratios))

    timeline = run_query(reader, "miss_timeline", bucket_ms=BUCKET_MS, layers=list(SPIKE_LAYERS))
    for index, deploy in enumerate(deploys):
        start = deploy["at"]
        end = deploys[index + 1]["at"] if index + 1 < len(deploys) else None
        spike_window = min(window, (end - start) if end else window)
        report.spikes.append(_spike(deploy, timeline, end, spike_window))
    without = [s for s in report.spikes if not s.warm_routes]
    with_warmup = [s for s in report.spikes if s.warm_routes]
    if without and with_warmup:
        a, b = without[0], with_warmup[0]
        report.prevented_misses = round(ratio(a.cold_misses, a.lookups) * b.lookups - b.cold_misses)

    report.race = run_query(reader, "warmup_race")[0]
    load = run_query(reader, "prefetch_load")[0]
    use = run_query(reader, "prefetch_use")[0]
    report.prefetch = {
        **{k: float(v) for k, v in load.items()},
        **{k: float(v) for k, v in use.items()},
        "request_share": ratio(load["prefetch_requests"], load["requests"]),
        "request_time_share": ratio(load["prefetch_request_ns"], load["request_ns"]),
        "middleware_share": ratio(load["prefetch_middleware_runs"], load["middleware_runs"]),
        "middleware_time_share": ratio(load["prefetch_middleware_ns"], load["middleware_ns"]),
        "prefetch_per_navigation": ratio(use["prefetches"], use["navigations"]),
    }
    report.warmups = run_query(reader, "warmups")
    report.warmup_busiest_second = int(
        run_query(reader, "warmup_upstream_rate")[0]["busiest_second"] or 0
    )
    report.slowest = find_slowest(reader, Filters(limit=slowest))
    return report


MIN_BUCKET_LOOKUPS = 3  # a bucket with fewer lookups says nothing about a ratio


def _miss_ratio(buckets: list[dict[str, Any]]) -> float:
    return ratio(sum(b["misses"] for b in buckets), sum(b["lookups"] for b in buckets))


def _spike(
    deploy: dict[str, Any],
    timeline: list[dict[str, Any]],
    end: dt.datetime | None,
    window: dt.timedelta,
) -> Spike:
    """The spike after one deploy, against the miss ratio of the ``window`` before it: its
    peak within ``window``, and the first bucket after the peak back near that baseline."""
    start = deploy["at"]
    before = [b for b in timeline if start - window <= b["bucket"] < start]
    after = [b for b in timeline if b["bucket"] >= start and (end is None or b["bucket"] < end)]
    baseline = _miss_ratio(before)
    ratios = [
        (b["bucket"], ratio(b["misses"], b["lookups"]))
        for b in after
        if b["lookups"] >= MIN_BUCKET_LOOKUPS
    ]
    in_spike = [(t, r) for t, r in ratios if t < start + window]
    peak_at, peak = max(in_spike, key=lambda r: r[1]) if in_spike else (start, 0.0)
    threshold = max(baseline * 1.5, baseline + 0.05)
    recovered = next((t for t, r in ratios if t > peak_at and r <= threshold), None)
    in_window = [b for b in after if b["bucket"] < start + window]
    return Spike(
        deploy_at=start,
        build_id=deploy["build_id"],
        warm_routes=deploy["warm_routes"],
        baseline_miss_ratio=baseline,
        window_miss_ratio=_miss_ratio(in_window),
        settled_miss_ratio=_miss_ratio([b for b in after if b["bucket"] >= start + window]),
        peak_miss_ratio=peak,
        peak_at_s=max(0.0, (peak_at - start).total_seconds()),
        recovered_after_s=(recovered - start).total_seconds() if recovered else None,
        cold_misses=sum(b["cold"] for b in in_window),
        lookups=sum(b["lookups"] for b in in_window),
        spiked=peak > threshold,
    )
