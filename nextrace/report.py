"""The demo's report: the questions an SRE asks, answered from the stored spans.

Every figure comes from SQL on ``otel_traces`` (the queries are in
``nextrace/sql/``), never from in-memory counters, so the same answers can be
had from any store the collector wrote, with ``nextrace sql``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from clickhouse_connect.driver.client import Client

BROWSER_SERVICE = "browser"
SPIKE_WINDOW_S = 6.0  # how long after a deploy counts as "during" the spike
BUCKET_MS = 500
# The spike is measured where warm-ups act: the data cache. (A new build's CDN and full
# route cache start empty or prerendered whatever is warmed; the table shows them per layer.)
SPIKE_LAYERS = ("data",)


def load_query(name: str) -> str:
    sql = (resources.files("nextrace") / "sql" / f"{name}.sql").read_text("utf-8")
    users = (resources.files("nextrace") / "sql" / "user_traces.sql").read_text("utf-8")
    users = "\n".join(line for line in users.splitlines() if not line.startswith("--"))
    return sql.replace("__USER_TRACES__", users)


def run_query(client: Client, name: str, **parameters: Any) -> list[dict[str, Any]]:
    parameters.setdefault("browser_service", BROWSER_SERVICE)
    result = client.query(load_query(name), parameters=parameters)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


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
    periods: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    spikes: list[Spike] = field(default_factory=list)
    prevented_misses: int | None = None
    race: dict[str, int] = field(default_factory=dict)
    prefetch: dict[str, float] = field(default_factory=dict)
    warmups: list[dict[str, Any]] = field(default_factory=list)
    warmup_busiest_second: int = 0
    slowest: list[dict[str, Any]] = field(default_factory=list)

    def render(self) -> str:
        out = ["", "== Cache hit ratio per layer (user traffic) =="]
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
            if self.prevented_misses is not None:
                out.append(
                    f"Warming before the switch prevented about {self.prevented_misses} cold "
                    "misses (cold misses per lookup, without against with warm-up)."
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
        out.append("")
        out.append("== Slowest navigations ==")
        for row in self.slowest:
            out.append(
                f"{row['total_ms']:>8.1f} ms  {row['navigation']:<32} trace {row['trace_id']}  "
                f"router {row['router_cache'] or '-'}; TTFB {row['ttfb_ms']:.0f} ms, render "
                f"{row['render_ms']:.0f} ms, middleware {row['middleware_ms']:.0f} ms, slowest "
                f"fetch {row['slowest_fetch_ms']:.0f} ms ({row['slowest_fetch'] or '-'}), "
                f"{row['sequential_fetches']} sequential fetch(es), {row['data_misses']} data "
                "miss(es)"
            )
        return "\n".join(out) + "\n"


def build_report(client: Client, slowest: int = 5) -> Report:
    report = Report()
    deploys = run_query(client, "deploys")
    bounds: list[dt.datetime] = []
    labels = ["before the first deploy" if deploys else "whole run"]
    window = dt.timedelta(seconds=SPIKE_WINDOW_S)
    for index, deploy in enumerate(deploys, 1):
        warm = "with" if deploy["warm_routes"] else "without"
        bounds += [deploy["at"], deploy["at"] + window]
        labels += [f"deploy {index} ({warm} warm-up): spike", f"deploy {index}: after"]
    rows = run_query(client, "hit_ratio_by_period", bounds=bounds)
    for period, label in enumerate(labels):
        ratios = {
            r["layer"]: ratio(r["served"], r["served"] + r["misses"])
            for r in rows
            if r["period"] == period
        }
        if ratios:
            report.periods.append((label, ratios))

    timeline = run_query(client, "miss_timeline", bucket_ms=BUCKET_MS, layers=list(SPIKE_LAYERS))
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

    report.race = run_query(client, "warmup_race")[0]
    load = run_query(client, "prefetch_load")[0]
    use = run_query(client, "prefetch_use")[0]
    report.prefetch = {
        **{k: float(v) for k, v in load.items()},
        **{k: float(v) for k, v in use.items()},
        "request_share": ratio(load["prefetch_requests"], load["requests"]),
        "request_time_share": ratio(load["prefetch_request_ns"], load["request_ns"]),
        "middleware_share": ratio(load["prefetch_middleware_runs"], load["middleware_runs"]),
        "middleware_time_share": ratio(load["prefetch_middleware_ns"], load["middleware_ns"]),
        "prefetch_per_navigation": ratio(use["prefetches"], use["navigations"]),
    }
    report.warmups = run_query(client, "warmups")
    report.warmup_busiest_second = int(
        run_query(client, "warmup_upstream_rate")[0]["busiest_second"] or 0
    )
    report.slowest = run_query(client, "slowest_navigations", limit=slowest)
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
