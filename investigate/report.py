"""The report: the questions an SRE asks of a store, answered from what it holds.

Every figure comes from SQL (the queries are in ``investigate/sql/``), never from in-memory
counters, so the same answers can be had from any store the collector wrote, with
``nextrace sql``. The one exception is what the demo's reference server says its SDK dropped
(its ``/healthz``): those spans never reached the store.

Where the reference server's browsers (virtual ones, or real ones on its pages) sent spans, the
text and the page read user traffic from them: the traces browsers started, cache outcomes on
their spans, navigation latency from click to last byte. A store of a real app has none of
those (most apps trace the server only), so the report then reads the server's own rows:
``requests``, ``cache_events``, ``builds`` and the lifecycle spans, which the collector fills
from either source and which the dashboards count (:class:`ServerRows`). ``--format json``
(:meth:`Report.as_json`) always gives the server's rows, so its counts mean the same on any
store.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from contract.errors import NextraceError
from instrumented_server.payloads import BROWSER_SERVICE
from investigate import advice, use_cache_report
from investigate.reader import Reader
from investigate.slow import Filters, SlowNavigation, duration_s
from investigate.slow import as_json as slow_as_json
from investigate.slow import render_text as render_slow
from investigate.slow import slowest as find_slowest
from investigate.waterfall import utc

SPIKE_WINDOW_S = 6.0  # how long after a deploy counts as "during" the spike
BUCKET_MS = 500
# A real app's deploys are not compressed into a demo's minute: its spike is the minute after a
# deploy, against the minute before.
SERVER_SPIKE_WINDOW_S = 60.0
SERVER_LATENCY_ROWS = 20  # routes and kinds in the text; the JSON has them all
FAR_AHEAD_NS = 9_000_000_000_000_000_000  # 2255: a window's open end (DateTime64(9) ends in 2262)
NAVIGATION_KINDS = ("document", "rsc_navigation")
PREFETCH_KIND = "rsc_prefetch"
SUFFERED_RATIO, SUFFERED_MIN_MS = 1.2, 50.0  # a route suffered: its p95 rose this much, or more
# The spike is measured where warm-ups act: the data cache. (A new build's CDN and full
# route cache start empty or prerendered whatever is warmed; the table shows them per layer.)
SPIKE_LAYERS = ("data",)


class ReportError(NextraceError):
    """The report cannot be made as asked; the message says what to give instead."""


@dataclass(frozen=True)
class Window:
    """The time the report covers, as Unix nanoseconds; 0 leaves that end open."""

    since_ns: int = 0
    until_ns: int = 0

    def parameters(self) -> dict[str, int]:
        """The ``{since_ns}`` and ``{until_ns}`` of ``investigate/sql/window.sql``."""
        return {"since_ns": self.since_ns, "until_ns": self.until_ns or FAR_AHEAD_NS}


def parse_moment(text: str, option: str, now_ns: int | None = None) -> int:
    """``--since`` or ``--until`` as Unix nanoseconds: an ISO 8601 time (UTC unless it gives
    its offset) or a duration back from ``now_ns`` (``90s``, ``15m``, ``2h``, ``7d``)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    given = text.strip()
    ago = duration_s(given)
    if ago is not None:
        return now_ns - int(ago * 1e9)
    try:
        moment = dt.datetime.fromisoformat(given)
    except ValueError:
        raise ReportError(
            f"{option} {text!r}: give an ISO time such as 2026-05-01T12:00:00Z (UTC unless it "
            "gives its offset) or a duration back from now such as 90s, 15m, 2h or 7d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (moment - epoch) // dt.timedelta(microseconds=1) * 1000


def window(since: str = "", until: str = "", now_ns: int | None = None) -> Window:
    """The window ``--since`` and ``--until`` give (each may be empty: that end is open)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    found = Window(
        parse_moment(since, "--since", now_ns) if since else 0,
        parse_moment(until, "--until", now_ns) if until else 0,
    )
    if found.until_ns and found.since_ns >= found.until_ns:
        raise ReportError(
            f"--since {since!r} is not before --until {until!r}: give a window that ends after "
            "it starts"
        )
    return found


def run_query(
    reader: Reader, name: str, window: Window | None = None, **parameters: Any
) -> list[dict[str, Any]]:
    """The rows of ``investigate/sql/<name>.sql`` in ``window`` (all the store by default)."""
    parameters.setdefault("browser_service", BROWSER_SERVICE)
    return reader.rows(name, **(window or Window()).parameters(), **parameters)


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


@dataclass
class Spike:
    deploy_at: dt.datetime
    build_id: str
    warm_routes: int | None  # None: not known (a real app's deploy)
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
class ServerRows:
    """What the server's own rows say, as the dashboards count them: ``requests`` (one per
    request, any source), ``cache_events`` (one per cache lookup), deploys (the reference
    server's deploy spans, and each Next.js build's first request after the service's first),
    and the navigations and prefetches of a browser client that traces them."""

    kinds: list[dict[str, Any]] = field(default_factory=list)  # server_requests.sql
    cache: list[dict[str, Any]] = field(default_factory=list)  # server_cache.sql
    misses: list[dict[str, Any]] = field(default_factory=list)  # server_misses.sql
    deploys: list[dict[str, Any]] = field(default_factory=list)  # server_deploys.sql
    spikes: list[Spike] = field(default_factory=list)  # one per deploy, data-cache lookups
    latency: list[dict[str, Any]] = field(default_factory=list)  # server_latency.sql
    browser: dict[str, int] = field(default_factory=dict)  # server_browser.sql
    cold_by_deploy: list[int] = field(default_factory=list)  # server_deploy_misses.sql, given out
    functions: list[dict[str, Any]] = field(default_factory=list)  # use_cache_functions.sql

    def count(self, *kinds: str) -> int:
        """Requests of these kinds (all of them without one)."""
        return sum(k["requests"] for k in self.kinds if not kinds or k["kind"] in kinds)

    @property
    def requests(self) -> int:
        return self.count()

    @property
    def navigations(self) -> int:
        """Navigation requests: documents and RSC navigations, but not redirects (the
        navigation goes on at the target)."""
        redirects = sum(k["redirects"] for k in self.kinds if k["kind"] in NAVIGATION_KINDS)
        return self.count(*NAVIGATION_KINDS) - int(redirects)

    @property
    def prefetches(self) -> int:
        return self.count(PREFETCH_KIND)

    def layers(self) -> dict[str, dict[str, int]]:
        """Lookups, hits, stale hits, misses, deploy misses and bypassed lookups per layer."""
        totals: dict[str, dict[str, int]] = {}
        for row in self.cache:
            into = totals.setdefault(row["layer"], dict.fromkeys(CACHE_COUNTS, 0))
            for name in CACHE_COUNTS:
                into[name] += row[name]
        return dict(sorted(totals.items()))

    def deploy_misses(self, index: int) -> int:
        """Misses on entries the new build of deploy ``index`` (0-based) lacked, in every
        layer (see ``server_deploy_misses.sql``)."""
        return self.cold_by_deploy[index]

    def period_labels(self) -> list[str]:
        labels = ["before the first deploy" if self.deploys else "whole window"]
        for index, deploy in enumerate(self.deploys, 1):
            labels.append(f"after deploy {index} ({deploy['build'] or '?'})")
        return labels

    def load(self) -> dict[str, float]:
        """The load prefetches put on the server (the Prefetch dashboard's load panel)."""
        prefetch = [k for k in self.kinds if k["kind"] == PREFETCH_KIND]
        request_ns = sum(k["request_ns"] for k in self.kinds)
        runs = sum(k["middleware_runs"] for k in self.kinds)
        middleware_ns = sum(k["middleware_ns"] for k in self.kinds)
        return {
            "request_share": ratio(self.prefetches, self.requests),
            "request_time_share": ratio(sum(k["request_ns"] for k in prefetch), request_ns),
            "middleware_runs": runs,
            "middleware_share": ratio(sum(k["middleware_runs"] for k in prefetch), runs),
            "middleware_time_share": ratio(
                sum(k["middleware_ns"] for k in prefetch), middleware_ns
            ),
            "prefetches_per_navigation": ratio(self.prefetches, self.navigations),
        }


CACHE_COUNTS = ("lookups", "hits", "stale", "misses", "deploy_misses", "bypassed")


@dataclass
class Report:
    scenario: str = ""
    window: Window = field(default_factory=Window)
    # "browser": the reference server's browsers sent spans, and the text reads them; "server":
    # none did, and the text reads the server's rows.
    source: str = "browser"
    server: ServerRows = field(default_factory=ServerRows)
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
    warmup_rate_limit: float = 0.0  # what the warm-ups said they keep to; 0: unknown
    webhooks: int = 0  # how many revalidation webhooks arrived
    webhooks_ms: list[int] = field(default_factory=list)  # when (the first 500, webhooks.sql)
    slowest: list[SlowNavigation] = field(default_factory=list)
    # The reference server's /healthz "spans_dropped", when a demo ran one.
    server_spans_dropped: dict[str, int | None] | None = None
    advice: list[str] = field(default_factory=list)  # investigate/advice.py

    def warm_comparison(self) -> tuple[Spike, Spike] | None:
        """The deploys the prevented-misses estimate compares: the first without warm-up and
        the first with one, if the window has both."""
        without = next((s for s in self.spikes if not s.warm_routes), None)
        with_warmup = next((s for s in self.spikes if s.warm_routes), None)
        return (without, with_warmup) if without and with_warmup else None

    def render(self) -> str:
        out = self.header_lines() + advice.render(self.advice)
        if self.source == "server":
            return "\n".join(out + self._render_server()) + "\n"
        out += [
            "",
            "== Cache hit ratio per layer (user traffic) ==",
            "(lookups served from the cache, fresh or stale, out of all lookups that were not "
            "bypassed; user traffic: the traces browsers started, not warm-ups or builds)",
        ]
        layers = sorted({layer for _, ratios in self.periods for layer in ratios})
        out.append(f"{'period':<34}" + "".join(f"{layer:>{_column(layer)}}" for layer in layers))
        for label, ratios in self.periods:
            cells = "".join(
                f"{ratios[layer]:>{_column(layer) - 1}.0%} "
                if layer in ratios
                else f"{'-':>{_column(layer)}}"
                for layer in layers
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
                    compared = self.warm_comparison()
                    assert compared is not None  # the estimate was made from it
                    without, with_warmup = compared
                    out.append(
                        f"Warming before the switch prevented about {self.prevented_misses} "
                        f"cold misses: the deploy without warm-up missed "
                        f"{ratio(without.cold_misses, without.lookups):.0%} of its "
                        f"{without.lookups} lookups cold; at that rate the warmed deploy's "
                        f"{with_warmup.lookups} lookups would have missed "
                        f"{self.prevented_misses + with_warmup.cold_misses}, and missed "
                        f"{with_warmup.cold_misses}."
                    )
                else:
                    out.append(
                        "Warming before the switch prevented no cold misses in this run: the "
                        "deploy with warm-up had as many cold misses per lookup or more."
                    )
        out.append("")
        out.append("== Data-cache misses and warm-ups ==")
        misses, raced = self.race.get("misses", 0), self.race.get("raced", 0)
        never = self.race.get("never_warmed", 0)
        out.append(
            f"{misses} misses or stale hits: {raced} on entries a warm-up had queued but not yet "
            f"filled, {never} on entries no warm-up touched, {misses - raced - never} on entries "
            "a warm-up filled at another time (before they expired or were revalidated again, "
            "or after the miss)."
        )
        if self.webhooks_ms:
            out.append(
                f"  {self.webhooks} revalidation webhooks arrived, from "
                f"{utc(self.webhooks_ms[0] * 10**6)} to {utc(self.webhooks_ms[-1] * 10**6)} "
                "(marked on the report's timelines)"
            )
        for row in self.warmups:
            out.append(
                f"  warm-ups {row['trigger']:<10} {row['outcome']:<13} {row['jobs']:>5} jobs, "
                f"{row['avg_wait_ms']:>8.1f} ms average queue wait"
            )
        if self.warmups:
            limit = (
                f", against the limit of {self.warmup_rate_limit:g} a second the warm-ups keep to"
                if self.warmup_rate_limit
                else ""
            )
            out.append(
                "  busiest second of warm-up upstream calls: "
                f"{self.warmup_busiest_second} calls left for upstream APIs{limit}"
            )
        out += self._misses()
        out += use_cache_report.render(self.server.functions)
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

    def _render_server(self) -> list[str]:
        """The report from the server's own rows (no browser spans of the reference server)."""
        s = self.server
        out = [
            "(no spans of the reference server's browsers in this window: every figure below "
            "comes from the server's own rows, requests, cache_events and builds, counted as the "
            "dashboards count them)",
            "",
            "== Server requests ==",
        ]
        kinds = ", ".join(f"{k['requests']} {k['kind'] or 'unknown'}" for k in s.kinds)
        out.append(f"{s.requests} requests{f': {kinds}' if kinds else ''}")
        out += self._server_cache()
        out += _misses_by_layer(
            s.misses,
            "Every cache miss and stale hit, by layer and cause",
            "the cause is the one the collector derived: deploy = the new build lacked the "
            "entry, cold = never stored, expired, tag_invalidated or path_invalidated by a "
            "revalidation; unknown = nothing it saw says why",
        )
        out += use_cache_report.render(s.functions)
        out += self._server_deploys()
        out += self._server_prefetch()
        out += self._server_latency()
        out += [
            "",
            "== Slowest navigations ==",
            "(browser navigation spans where a client traced them, else the server's document "
            "and RSC navigation requests; the cause and the parts come from each one's critical "
            "path: `nextrace trace ID` shows it as a waterfall)",
            render_slow(self.slowest).rstrip("\n"),
        ]
        return out

    def _server_cache(self) -> list[str]:
        s = self.server
        out = [
            "",
            "== Cache hit ratio per layer ==",
            "(lookups served from the cache, fresh or stale, out of all lookups that were not "
            "bypassed; periods split at deploys)",
        ]
        layers = s.layers()
        if not layers:
            return [*out, "no cache lookup in this window"]
        labels = s.period_labels()
        width = max(34, *(len(label) + 2 for label in labels))
        out.append(
            f"{'period':<{width}}" + "".join(f"{layer:>{_column(layer)}}" for layer in layers)
        )
        for period, label in enumerate(labels):
            cells = {
                r["layer"]: ratio(r["hits"] + r["stale"], r["lookups"])
                for r in s.cache
                if r["period"] == period and r["lookups"]
            }
            out.append(
                f"{label:<{width}}"
                + "".join(
                    f"{cells[layer]:>{_column(layer) - 1}.0%} "
                    if layer in cells
                    else f"{'-':>{_column(layer)}}"
                    for layer in layers
                )
            )
        for layer, n in layers.items():
            out.append(
                f"  {layer:<13} {n['lookups']:>6} lookups: {n['hits']} hits, {n['stale']} stale, "
                f"{n['misses']} misses ({n['deploy_misses']} caused by a deploy), "
                f"{n['bypassed']} bypassed"
            )
        return out

    def _server_deploys(self) -> list[str]:
        s = self.server
        out = ["", "== Deploys and their cold-miss spikes (data cache) =="]
        if not s.deploys:
            return [
                *out,
                "no deploy in this window (a deploy: a deploy span, or a Next.js service's "
                "first request on a new build after its first build; the build comes from "
                "@nextrace/next, or the resource's deployment.id or service.version)",
            ]
        window = f"{SERVER_SPIKE_WINDOW_S:.0f} s"
        for index, (deploy, spike) in enumerate(zip(s.deploys, s.spikes, strict=True)):
            out.append(
                f"{deploy['at']:%H:%M:%S} deploy {deploy['build'] or '?'} ({deploy['service']}): "
                f"{s.deploy_misses(index)} misses on entries the new build lacked; data-cache "
                f"miss ratio {spike.baseline_miss_ratio:.0%} in the {window} before, "
                f"{spike.window_miss_ratio:.0%} in the {window} after ({spike.cold_misses} cold "
                f"misses in {spike.lookups} lookups), {spike.settled_miss_ratio:.0%} later; "
                + ("a spike" if spike.spiked else "no spike")
            )
        out.append(
            "(misses on entries the new build lacked: in every layer, each given to the deploy "
            "of the build it names, or to the last deploy before it; a spike: the ratio after "
            "rose by half and 5 points over the ratio before)"
        )
        return out

    def _server_prefetch(self) -> list[str]:
        s = self.server
        load = s.load()
        out = [
            "",
            "== Prefetch load ==",
            f"{s.prefetches} of {s.requests} server requests ({load['request_share']:.0%}) and "
            f"{load['request_time_share']:.0%} of server time were prefetches; middleware ran "
            f"{load['middleware_runs']:.0f} times, {load['middleware_share']:.0%} of them for "
            f"prefetches ({load['middleware_time_share']:.0%} of middleware time).",
            f"{s.prefetches} prefetch requests for {s.navigations} navigation requests "
            f"(documents and RSC navigations): {load['prefetches_per_navigation']:.1f} per "
            "navigation.",
        ]
        b = s.browser
        if b.get("navigations") or b.get("prefetches"):
            out.append(
                f"A browser client traced {b['prefetches']} prefetches for {b['navigations']} "
                f"navigations; router cache: {b['router_hits']} hits, {b['router_partial']} "
                f"partial (loading state first), {b['router_misses']} misses."
            )
        return out

    def _server_latency(self) -> list[str]:
        rows = self.server.latency
        if not rows:
            return []
        out = [
            "",
            "== Request latency per route and kind ==",
            "(the server's requests, start to the end of the response, in ms: p50 = median, "
            "p95 and p99 = the slowest 5% and 1% start above these; the slowest p95 first)",
            f"{'route':<32}{'kind':<16}{'requests':>9}{'p50':>9}{'p95':>9}{'p99':>9}",
        ]
        for row in rows[:SERVER_LATENCY_ROWS]:
            out.append(
                f"{row['route'] or '-':<32}{row['kind'] or '-':<16}{row['requests']:>9}"
                f"{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{row['p99_ms']:>9.1f}"
            )
        if len(rows) > SERVER_LATENCY_ROWS:
            out.append(f"(and {len(rows) - SERVER_LATENCY_ROWS} more: --format json lists all)")
        return out

    def as_json(self) -> dict[str, Any]:
        """The report as one object, from the server's rows whichever the text reads (see the
        module's docstring), with the slowest navigations as ``nextrace slow --format json``
        lists them."""
        s, summary = self.server, self.summary
        stored = bool(summary.get("spans_stored"))
        layers = s.layers()

        def by_cause(*results: str) -> dict[str, dict[str, int]]:
            found: dict[str, dict[str, int]] = {}
            for row in s.misses:
                if row["result"] in results:
                    causes = found.setdefault(row["layer"], {})
                    causes[row["reason"]] = causes.get(row["reason"], 0) + row["lookups"]
            return found

        return {
            "scenario": self.scenario,
            "text_reads": "browser spans" if self.source == "browser" else "server rows",
            "window": {
                "since": utc(self.window.since_ns) if self.window.since_ns else None,
                "until": utc(self.window.until_ns) if self.window.until_ns else None,
                "first_span": summary["first_span"].isoformat() if stored else None,
                "last_span": summary["last_span"].isoformat() if stored else None,
                "time_zone": summary.get("time_zone"),
            },
            "spans_stored": summary.get("spans_stored", 0),
            "spans_dropped": summary.get("spans_dropped") or 0,
            "requests": s.requests,
            "requests_by_kind": {k["kind"] or "unknown": k["requests"] for k in s.kinds},
            "navigations": s.navigations,
            "prefetches": s.prefetches,
            "browser": s.browser,
            "prefetch_load": s.load(),
            "cache": {
                layer: {**n, "hit_ratio": ratio(n["hits"] + n["stale"], n["lookups"])}
                for layer, n in layers.items()
            },
            "cache_misses": {layer: n["misses"] for layer, n in layers.items()},
            "misses_by_cause": by_cause("miss", "revalidated"),
            "stale_by_cause": by_cause("stale"),
            "deploys": [
                {
                    "build": deploy["build"],
                    "service": deploy["service"],
                    "time": utc(deploy["at_ns"]),
                    "deploy_misses": s.deploy_misses(index),
                    "lookups_after": spike.lookups,
                    "cold_misses_after": spike.cold_misses,
                    "miss_ratio_before": spike.baseline_miss_ratio,
                    "miss_ratio_after": spike.window_miss_ratio,
                    "miss_ratio_later": spike.settled_miss_ratio,
                    "spiked": spike.spiked,
                }
                for index, (deploy, spike) in enumerate(zip(s.deploys, s.spikes, strict=True))
            ],
            "latency": s.latency,
            "advice": self.advice,
            "use_cache_functions": [
                {**row, "advice": use_cache_report.advice(row)} for row in s.functions
            ],
            "slowest": slow_as_json(self.slowest),
        }

    def header_lines(self) -> list[str]:
        s = self.summary
        if not s:
            return []
        first, last = s["first_span"], s["last_span"]
        if s["spans_stored"]:
            span = (
                f"window: {first:%Y-%m-%d %H:%M:%S} to {last:%H:%M:%S} {s['time_zone']} "
                f"({(last - first).total_seconds():.0f} s)"
            )
        else:
            span = "window: no span stored in it"
        if self.window.since_ns or self.window.until_ns:
            since = utc(self.window.since_ns) if self.window.since_ns else "the first span"
            until = utc(self.window.until_ns) if self.window.until_ns else "the last span"
            span += f" (asked: {since} to {until})"
        return [
            f"nextrace report{f': scenario {self.scenario!r}' if self.scenario else ''}",
            f"{span}; spans stored: {s['spans_stored']}, "
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
        return _misses_by_layer(
            self.misses,
            "Every cache miss of user traffic, by layer and cause",
            "the cause is the lookup's cache.miss_reason: deploy = emptied by a new build, cold "
            "= never stored, expired, invalidated by a revalidation, evicted; unknown = the "
            "producer did not say",
        )

    def _latency(self) -> list[str]:
        if not self.latency:
            return []
        out = [
            "",
            "== Navigation latency per period ==",
            "(browser navigation spans that went to the server, in ms: p50 = median, p95 and "
            "p99 = the slowest 5% and 1% start above these; the router cache's hits, served in "
            "the browser at once, are counted apart)",
            f"{'period':<34}{'navigations':>12}{'p50':>9}{'p95':>9}{'p99':>9}{'router hits':>13}",
        ]
        overall = [r for r in self.latency if r["route"] == ""]
        for row in overall:
            label = self.period_labels[row["period"]]
            out.append(
                f"{label:<34}{row['navigations']:>12}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}"
                f"{row['p99_ms']:>9.0f}{row['router_hits']:>13}"
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
        p95 = {
            (r["period"], r["route"]): r["p95_ms"]
            for r in self.latency
            if r["route"] and r["navigations"]  # not only router-cache hits
        }
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


def build_report(
    reader: Reader, slowest: int = 5, scenario: str = "", window: Window | None = None
) -> Report:
    """The report of the store ``reader`` reads, in ``window`` (all of it by default), with
    its ``slowest`` navigations."""
    window = window or Window()
    report = Report(scenario=scenario, window=window)
    report.summary = run_query(reader, "run_summary", window)[0]
    report.server = server_rows(reader, window)
    report.advice = advice.advice(reader, window.parameters())
    browsers = run_query(reader, "browser_spans", window)[0]["spans"]
    report.source = "browser" if browsers else "server"
    if browsers:
        _read_browser_traffic(report, reader, window)
    report.slowest = find_slowest(
        reader,
        Filters(limit=slowest, since_ns=window.since_ns, until_ns=window.until_ns),
    )
    return report


def server_rows(reader: Reader, window: Window) -> ServerRows:
    """The server's own rows in ``window``, with each deploy's cold-miss spike."""
    rows = ServerRows(
        kinds=run_query(reader, "server_requests", window),
        misses=run_query(reader, "server_misses", window),
        deploys=run_query(reader, "server_deploys", window),
        latency=run_query(reader, "server_latency", window),
        browser=run_query(reader, "server_browser", window)[0],
        functions=run_query(reader, "use_cache_functions", window),
    )
    bounds = [d["at_ns"] for d in rows.deploys]
    rows.cache = run_query(reader, "server_cache", window, bounds_ns=bounds)
    around = run_query(
        reader,
        "server_deploy_windows",
        window,
        bounds_ns=bounds,
        window_s=SERVER_SPIKE_WINDOW_S,
        layers=list(SPIKE_LAYERS),
    )
    rows.spikes = [
        _server_spike(deploy, index, around) for index, deploy in enumerate(rows.deploys)
    ]
    rows.cold_by_deploy = _by_deploy(
        rows.deploys, run_query(reader, "server_deploy_misses", window, bounds_ns=bounds)
    )
    return rows


def _by_deploy(deploys: list[dict[str, Any]], misses: list[dict[str, Any]]) -> list[int]:
    """Misses on entries a new build lacked, given to their deploys: the deploy of the build
    the lookup names, else the last deploy before it, else the first after it."""
    given = [0] * len(deploys)
    if not deploys:
        return given
    of_build = {d["build"]: index for index, d in enumerate(deploys) if d["build"]}
    for row in misses:
        index = of_build.get(row["build"], max(row["period"] - 1, 0))
        given[index] += row["misses"]
    return given


def _server_spike(deploy: dict[str, Any], index: int, around: list[dict[str, Any]]) -> Spike:
    """Deploy ``index``'s spike from exact counts (``server_deploy_windows.sql``): its miss
    ratio in the window before it (the baseline), in the window after it, and from then to
    the next deploy. A real app's traffic is too thin for a finer peak: the peak is the
    window's ratio."""

    def counted(rows: list[dict[str, Any]]) -> tuple[int, int, int]:
        return (
            sum(r["lookups"] for r in rows),
            sum(r["misses"] for r in rows),
            sum(r["cold"] for r in rows),
        )

    period = index + 1
    before = counted([r for r in around if r["period"] == index and r["before_next"]])
    after = counted([r for r in around if r["period"] == period and r["in_spike"]])
    later = counted([r for r in around if r["period"] == period and not r["in_spike"]])
    baseline, in_window = ratio(before[1], before[0]), ratio(after[1], after[0])
    return Spike(
        deploy_at=deploy["at"],
        build_id=deploy["build"],
        warm_routes=None,
        baseline_miss_ratio=baseline,
        window_miss_ratio=in_window,
        settled_miss_ratio=ratio(later[1], later[0]),
        peak_miss_ratio=in_window,
        peak_at_s=0.0,
        recovered_after_s=None,
        cold_misses=after[2],
        lookups=after[0],
        spiked=in_window > max(baseline * 1.5, baseline + 0.05),
    )


def _read_browser_traffic(report: Report, reader: Reader, window: Window) -> None:
    """The figures of user traffic, from the spans of the reference server's browsers."""
    deploys = run_query(reader, "deploys", window)
    report.deploys = deploys
    bounds: list[dt.datetime] = []
    labels = ["before the first deploy" if deploys else "whole run"]
    spike_window = dt.timedelta(seconds=SPIKE_WINDOW_S)
    for index, deploy in enumerate(deploys, 1):
        warm = "with" if deploy["warm_routes"] else "without"
        bounds += [deploy["at"], deploy["at"] + spike_window]
        labels += [f"deploy {index} ({warm} warm-up): spike", f"deploy {index}: after"]
    report.period_labels = labels
    report.misses = run_query(reader, "misses_by_reason", window)
    report.latency = run_query(reader, "latency_by_period", window, bounds=bounds)
    rows = run_query(reader, "hit_ratio_by_period", window, bounds=bounds)
    for period, label in enumerate(labels):
        ratios = {
            r["layer"]: ratio(r["served"], r["served"] + r["misses"])
            for r in rows
            if r["period"] == period
        }
        if ratios:
            report.periods.append((label, ratios))

    timeline = run_query(
        reader, "miss_timeline", window, bucket_ms=BUCKET_MS, layers=list(SPIKE_LAYERS)
    )
    for index, deploy in enumerate(deploys):
        start = deploy["at"]
        end = deploys[index + 1]["at"] if index + 1 < len(deploys) else None
        report.spikes.append(
            _spike(deploy, timeline, end, min(spike_window, (end - start) if end else spike_window))
        )
    compared = report.warm_comparison()
    if compared is not None:
        a, b = compared
        report.prevented_misses = round(ratio(a.cold_misses, a.lookups) * b.lookups - b.cold_misses)

    report.race = run_query(reader, "warmup_race", window)[0]
    load = run_query(reader, "prefetch_load", window)[0]
    use = run_query(reader, "prefetch_use", window)[0]
    report.prefetch = {
        **{k: float(v) for k, v in load.items()},
        **{k: float(v) for k, v in use.items()},
        "request_share": ratio(load["prefetch_requests"], load["requests"]),
        "request_time_share": ratio(load["prefetch_request_ns"], load["request_ns"]),
        "middleware_share": ratio(load["prefetch_middleware_runs"], load["middleware_runs"]),
        "middleware_time_share": ratio(load["prefetch_middleware_ns"], load["middleware_ns"]),
        "prefetch_per_navigation": ratio(use["prefetches"], use["navigations"]),
    }
    report.warmups = run_query(reader, "warmups", window)
    webhooks = run_query(reader, "webhooks", window)
    report.webhooks_ms = [r["at_ms"] for r in webhooks]
    report.webhooks = webhooks[0]["total"] if webhooks else 0
    rate = run_query(reader, "warmup_upstream_rate", window)[0]
    report.warmup_busiest_second = int(rate["busiest_second"] or 0)
    report.warmup_rate_limit = float(rate["rate_limit"] or 0)


def _column(layer: str) -> int:
    """The width of a layer's column in a table of layers."""
    return max(13, len(layer) + 2)


def _misses_by_layer(rows: list[dict[str, Any]], title: str, causes: str) -> list[str]:
    """Misses and stale hits (rows of ``misses_by_reason.sql`` or ``server_misses.sql``) per
    layer, by cause."""
    if not rows:
        return ["", f"== {title} ==", "no miss and no stale hit in this window"]
    total = sum(m["lookups"] for m in rows)
    out = ["", f"== {title} ==", f"({total} misses and stale hits; {causes})"]
    by_layer: dict[str, list[dict[str, Any]]] = {}
    for m in rows:
        by_layer.setdefault(m["layer"], []).append(m)
    for layer, in_layer in by_layer.items():
        listed = ", ".join(
            f"{r['lookups']} {r['reason']}"
            + (f" ({r['result']})" if r["result"] != "miss" else "")
            + (
                f" ({r['warmup_pending']} with a warm-up still queued)"
                if r["warmup_pending"]
                else ""
            )
            for r in in_layer
        )
        out.append(f"  {layer:<17} {sum(r['lookups'] for r in in_layer):>5}: {listed}")
    return out


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
