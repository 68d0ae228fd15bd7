"""``report.html``: the report as one self-contained page of plots.

The plots are drawn with Matplotlib and inlined as SVG. Matplotlib because the page must open
anywhere without a network connection and without JavaScript (nothing to fail in the
browser's console, nothing to fetch, it prints), because it is the best-kept plotting library
in Python, and because static SVG stays sharp at any zoom. Every plot has a caption that
defines what it shows; the text report follows, for the figures the plots round off.
"""

from __future__ import annotations

import html
import io
from collections import defaultdict
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from collector.config import StoreConfig
from investigate.diagnosis import MS, Diagnosis
from investigate.reader import Reader, open_reader
from investigate.report import SERVER_SPIKE_WINDOW_S, Report, Spike, Window, build_report, run_query

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller, searchable
        "text.parse_math": False,  # names are text: "$$RSC_SERVER_CACHE_0" is no formula
        "svg.hashsalt": "nextrace",  # the same data gives the same file
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
MIN_BUCKET_MS = 1000
BUCKETS = 30  # points per time series: fewer is coarse, more is noise
CRITICAL = "#c0392b"
WEBHOOK = "#8e44ad"
SPAN = "#b8c7d9"
LAYER_COLORS = {
    "cdn": "#1f77b4",
    "full_route": "#9467bd",
    "data": "#d62728",
    "request_memo": "#7f7f7f",
    "router": "#2ca02c",
}


def report_and_page(
    config: StoreConfig,
    scenario: str = "",
    server_spans_dropped: dict[str, int | None] | None = None,
    window: Window | None = None,
    slowest: int = 5,
) -> tuple[Report, str]:
    """The report of the store ``config`` names in ``window`` (all of it by default), with its
    ``slowest`` navigations, and its page, read in one go; ``server_spans_dropped`` is what the
    reference server's ``/healthz`` said, if one ran."""
    with open_reader(config) as reader:
        report = build_report(reader, slowest=slowest, scenario=scenario, window=window)
        report.server_spans_dropped = server_spans_dropped
        return report, render_html(report, reader)


def render_html(report: Report, reader: Reader) -> str:
    """The page for ``report``, with the time series it plots read from ``reader``."""
    stored = report.summary["spans_stored"]
    window_ms = (
        (report.summary["last_span"] - report.summary["first_span"]).total_seconds() * 1e3
        if stored
        else 0.0
    )
    bucket_ms = max(MIN_BUCKET_MS, round(window_ms / BUCKETS / 1000) * 1000)
    sections = (
        _server_sections(report, reader, bucket_ms)
        if report.source == "server"
        else _browser_sections(report, reader, bucket_ms)
    )
    waterfalls = [
        (
            f"{nav.duration_ns / MS:.0f} ms {nav.name} (trace {nav.trace_id})",
            waterfall_svg(nav.diagnosis),
            f"Cause: {nav.diagnosis.cause or '-'}. Red: the critical path.",
        )
        for nav in report.slowest
        if nav.diagnosis is not None
    ]
    return _page(report, sections, waterfalls)


def _server_sections(report: Report, reader: Reader, bucket_ms: int) -> list[tuple[str, str, str]]:
    """The plots of a store without the reference server's browser spans: its own rows."""
    window = report.window
    hit_rows = run_query(reader, "server_hit_ratio_timeline", window, bucket_ms=bucket_ms)
    traffic = run_query(reader, "server_traffic_timeline", window, bucket_ms=bucket_ms)
    deploys = [(d["at_ns"] / 1e6, d["build"]) for d in report.server.deploys]
    return [
        (
            "Cache hit ratio per layer",
            _hit_ratio(hit_rows, deploys),
            f"Share of cache lookups (cache_events) served from the cache (fresh or stale) per "
            f"{bucket_ms / 1000:g} s and layer; bypassed lookups are left out. Dashed lines: "
            "deploys.",
        ),
        (
            "Cold-miss spikes after deploys",
            _spikes(report.server.spikes),
            f"Data-cache miss ratio in the {SERVER_SPIKE_WINDOW_S:.0f} s before each deploy (its "
            f"baseline), in the {SERVER_SPIKE_WINDOW_S:.0f} s after it, and later; the label "
            "gives the misses on entries the new build lacked.",
        ),
        (
            "Prefetch and navigation requests",
            _traffic(
                traffic, deploys, bucket_ms, "seconds since the first request", report.webhooks_ms
            ),
            f"The server's prefetch requests and navigation requests (documents and RSC "
            f"navigations) per {bucket_ms / 1000:g} s; the line is the amplification so far: "
            "prefetch requests per navigation request. Dashed lines: deploys; dotted: "
            "revalidation webhooks.",
        ),
        (
            "Request latency per route",
            _request_latency(report),
            "p95 of the server's requests per route and kind (bars), with the median (dots).",
        ),
        *_use_cache_section(report),
    ]


def _browser_sections(report: Report, reader: Reader, bucket_ms: int) -> list[tuple[str, str, str]]:
    """The plots of user traffic, from the spans of the reference server's browsers."""
    window = report.window
    hit_rows = run_query(reader, "hit_ratio_timeline", window, bucket_ms=bucket_ms)
    traffic = run_query(reader, "traffic_timeline", window, bucket_ms=bucket_ms)
    deploys = [(float(d["at_ms"]), d["build_id"]) for d in report.deploys]
    return [
        (
            "Cache hit ratio per layer",
            _hit_ratio(hit_rows, deploys),
            f"Share of user-traffic cache lookups served from the cache (fresh or stale) per "
            f"{bucket_ms / 1000:g} s and layer; bypassed lookups are left out. Dashed lines: "
            "deploys.",
        ),
        (
            "Cold-miss spikes after deploys",
            _spikes(report.spikes),
            "Data-cache miss ratio before each deploy (its baseline), in the spike window after "
            "it, and later; the label gives the cold misses (entries the deploy emptied).",
        ),
        (
            "Prefetches and navigations",
            _traffic(
                traffic,
                deploys,
                bucket_ms,
                "seconds since the first browser span",
                report.webhooks_ms,
            ),
            f"Prefetches and navigations the browsers started per {bucket_ms / 1000:g} s; the line "
            "is the amplification so far: prefetches per navigation. Dashed lines: deploys; "
            "dotted: revalidation webhooks.",
        ),
        (
            "Navigation latency per route, before and after deploys",
            _latency(report),
            "p95 of browser navigations per route and period (bars), with the median (dots); "
            "navigations the router cache served in the browser are left out.",
        ),
        *_use_cache_section(report),
    ]


USE_CACHE_PARTS = (
    ("served, stored here", "#2e86c1", lambda r: r["served"] - r["from_other_instances"]),
    ("served, from another instance", "#85c1e9", lambda r: r["from_other_instances"]),
    ("miss: other_instance", CRITICAL, lambda r: r["other_instance"]),
    ("miss: deploy", "#e67e22", lambda r: r["deploy"]),
    ("miss: expired", "#f4d03f", lambda r: r["expired"]),
    ("miss: tag_invalidated", "#a569bd", lambda r: r["tag_invalidated"]),
    ("miss: cold, evicted or unknown", "#7f8c8d", lambda r: _other_misses(r)),
    ("ran, private (nothing kept)", "#d5d8dc", lambda r: r["bypassed"]),
)


def _other_misses(row: dict[str, Any]) -> int:
    named = ("other_instance", "deploy", "expired", "tag_invalidated")
    return int(row["misses"] - sum(row[cause] for cause in named))


def _use_cache_section(report: Report) -> list[tuple[str, str, str]]:
    """The ``'use cache'`` functions' plot, where the window has any."""
    rows = report.server.functions
    if not rows:
        return []
    figure = Figure(figsize=(9, max(2.4, 0.8 + 0.45 * len(rows))))
    axes = figure.subplots()
    labels = [f"{r['function']}\n{r['layer']}" for r in rows]
    left = [0] * len(rows)
    for label, color, count in USE_CACHE_PARTS:
        widths = [count(r) for r in rows]
        if any(widths):
            axes.barh(range(len(rows)), widths, 0.6, left=left, color=color, label=label)
            left = [a + b for a, b in zip(left, widths, strict=True)]
    axes.set_yticks(range(len(rows)), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("lookups")
    axes.legend(fontsize=7, ncols=2, loc="lower right")
    return [
        (
            "'use cache' functions",
            _svg(figure),
            "Each function's lookups per handler: served from an entry this instance stored or "
            "another instance stored, or run again, by why. A per-instance handler's "
            "other_instance misses are what a shared one ('use cache: remote') would serve.",
        )
    ]


def _seconds_axis(times_ms: list[float], origin: float) -> list[float]:
    return [(t - origin) / 1000 for t in times_ms]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    # No metadata: no date, so the same data gives the same page.
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata=NO_METADATA)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _mark_deploys(axes: Any, deploys: list[tuple[float, str]], origin: float) -> None:
    for at, build in deploys:
        x = (at - origin) / 1000
        axes.axvline(x, color="black", linestyle="--", linewidth=0.8)
        axes.annotate(build, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=8)


def _hit_ratio(rows: list[dict[str, Any]], deploys: list[tuple[float, str]]) -> str:
    figure = Figure(figsize=(9, 3.2))
    axes = figure.subplots()
    origin = min((r["bucket_ms"] for r in rows), default=0)
    by_layer: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        if row["lookups"]:
            by_layer[row["layer"]].append((row["bucket_ms"], row["served"] / row["lookups"]))
    for layer, points in sorted(by_layer.items()):
        xs = _seconds_axis([p[0] for p in points], origin)
        axes.plot(xs, [p[1] * 100 for p in points], label=layer, color=LAYER_COLORS.get(layer))
    _mark_deploys(axes, deploys, origin)
    axes.set_ylabel("hit ratio (%)")
    axes.set_xlabel("seconds since the first lookup")
    axes.set_ylim(0, 105)
    if by_layer:
        axes.legend(loc="lower left", ncols=5, fontsize=8)
    else:
        axes.text(0.5, 0.5, "no cache lookup in this window", ha="center", transform=axes.transAxes)
    return _svg(figure)


def _spike_label(spike: Spike) -> str:
    if spike.warm_routes is None:  # a real app's deploy: nothing says whether it warmed
        return spike.build_id
    return f"{spike.build_id} ({'warmed' if spike.warm_routes else 'no warm-up'})"


def _spikes(spikes: list[Spike]) -> str:
    figure = Figure(figsize=(9, 2.8))
    axes = figure.subplots()
    labels = [_spike_label(s) for s in spikes]
    phases = [
        ("before", [s.baseline_miss_ratio for s in spikes], "#95a5a6"),
        ("spike window", [s.window_miss_ratio for s in spikes], CRITICAL),
        ("later", [s.settled_miss_ratio for s in spikes], "#2980b9"),
    ]
    width = 0.25
    for index, (name, values, color) in enumerate(phases):
        xs = [i + (index - 1) * width for i in range(len(labels))]
        axes.bar(xs, [v * 100 for v in values], width, label=name, color=color)
    for i, spike in enumerate(spikes):
        axes.annotate(
            f"{spike.cold_misses} cold / {spike.lookups}",
            (i, spike.window_miss_ratio * 100),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylabel("data-cache miss ratio (%)")
    axes.legend(fontsize=8)
    if not labels:
        axes.text(0.5, 0.5, "no deploy in this window", ha="center", transform=axes.transAxes)
    return _svg(figure)


def _traffic(
    rows: list[dict[str, Any]],
    deploys: list[tuple[float, str]],
    bucket_ms: int,
    since: str,
    webhooks_ms: list[int],
) -> str:
    figure = Figure(figsize=(9, 3.2))
    axes = figure.subplots()
    origin = min((r["bucket_ms"] for r in rows), default=0)
    xs = _seconds_axis([r["bucket_ms"] for r in rows], origin)
    prefetches = [r["prefetches"] for r in rows]
    navigations = [r["navigations"] for r in rows]
    width = bucket_ms / 1000 * 0.9
    axes.bar(xs, prefetches, width=width, label="prefetches", color="#f39c12")
    axes.bar(xs, navigations, width=width, bottom=prefetches, label="navigations", color="#2c3e50")
    axes.set_ylabel("started")
    axes.set_xlabel(since)
    _mark_deploys(axes, deploys, origin)
    for index, at_ms in enumerate(webhooks_ms):
        axes.axvline(
            (at_ms - origin) / 1000,
            color=WEBHOOK,
            linestyle=":",
            linewidth=1,
            label="webhook" if index == 0 else None,
        )
    ratio = axes.twinx()
    total_p = total_n = 0
    amplification = []
    for p, n in zip(prefetches, navigations, strict=True):
        total_p, total_n = total_p + p, total_n + n
        amplification.append(total_p / total_n if total_n else 0)
    ratio.plot(xs, amplification, color=CRITICAL, label="prefetches per navigation")
    ratio.set_ylabel("prefetches per navigation")
    handles = axes.get_legend_handles_labels()
    more = ratio.get_legend_handles_labels()
    axes.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8)
    return _svg(figure)


def _latency(report: Report, routes: int = 6) -> str:
    figure = Figure(figsize=(9, 3.4))
    axes = figure.subplots()
    by_route: dict[str, int] = defaultdict(int)
    for row in report.latency:
        if row["route"]:
            by_route[row["route"]] += row["navigations"]
    shown = sorted(by_route, key=lambda r: -by_route[r])[:routes]
    periods = report.period_labels
    width = 0.8 / max(len(periods), 1)
    cells = {(r["period"], r["route"]): r for r in report.latency if r["navigations"]}
    colors = ["#95a5a6", CRITICAL, "#2980b9", "#e67e22", "#16a085", "#8e44ad", "#34495e"]
    for index, label in enumerate(periods):
        xs, p95, p50 = [], [], []
        for i, route in enumerate(shown):
            cell = cells.get((index, route))
            if cell is not None:
                xs.append(i + (index - (len(periods) - 1) / 2) * width)
                p95.append(cell["p95_ms"])
                p50.append(cell["p50_ms"])
        color = colors[index % len(colors)]
        axes.bar(xs, p95, width, label=label, color=color)
        axes.plot(xs, p50, "o", color="black", markersize=3)
    axes.set_xticks(range(len(shown)), shown, rotation=15)
    axes.set_ylabel("navigation p95 (ms)")
    axes.legend(fontsize=7, ncols=2)
    return _svg(figure)


def _request_latency(report: Report, shown: int = 10) -> str:
    """p95 bars and median dots of the routes and kinds with the most requests."""
    figure = Figure(figsize=(9, 3.4))
    axes = figure.subplots()
    rows = sorted(report.server.latency, key=lambda r: -r["requests"])[:shown]
    labels = [f"{r['route'] or '-'}\n{r['kind'] or '-'}" for r in rows]
    axes.bar(range(len(rows)), [r["p95_ms"] for r in rows], 0.6, color=CRITICAL, label="p95")
    axes.plot(range(len(rows)), [r["p50_ms"] for r in rows], "o", color="black", markersize=3)
    axes.set_xticks(range(len(rows)), labels, rotation=15, fontsize=7)
    axes.set_ylabel("request p95 (ms)")
    if not rows:
        axes.text(0.5, 0.5, "no request in this window", ha="center", transform=axes.transAxes)
    return _svg(figure)


def waterfall_svg(diagnosis: Diagnosis, max_spans: int = 40) -> str:
    """The spans that last at least 1% of the trace (requests and fetches always), bars in
    grey and the critical path over them in red."""
    trace = diagnosis.trace
    start = trace.root.start_ns
    shown_ns = trace.root.duration_ns // 100
    spans = [
        (span, depth)
        for span, depth in trace.walk()
        if span.duration_ns >= shown_ns or span.phase in ("request", "fetch")
    ][:max_spans]
    on_path = {
        span_id: [
            ((s.segment.start_ns - start) / MS, s.segment.duration_ns / MS) for s in stretches
        ]
        for span_id, stretches in diagnosis.stretches_by_span().items()
    }
    figure = Figure(figsize=(9, 0.6 + 0.2 * len(spans)))
    axes = figure.subplots()
    for row, (span, _depth) in enumerate(spans):
        y = len(spans) - row
        axes.broken_barh(
            [((span.start_ns - start) / MS, max(span.duration_ns / MS, 0.05))],
            (y - 0.35, 0.7),
            color=SPAN,
        )
        if on_path.get(span.span_id):
            axes.broken_barh(on_path[span.span_id], (y - 0.35, 0.7), color=CRITICAL)
    axes.set_yticks(
        [len(spans) - row for row in range(len(spans))],
        [("  " * depth + span.name)[:48] for span, depth in spans],
        fontsize=7,
        fontfamily="monospace",
    )
    axes.set_xlabel("ms since the navigation started")
    axes.set_xlim(0, trace.root.duration_ns / MS * 1.01)
    return _svg(figure)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
figure { margin: 0 0 1.5em 0; } figcaption { color: #555; font-size: 0.9em; }
svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
.header { color: #444; }
"""


def _page(
    report: Report,
    sections: list[tuple[str, str, str]],
    waterfalls: list[tuple[str, str, str]],
) -> str:
    title, *lines = report.header_lines() or ["nextrace report"]
    header = "".join(f"<p class='header'>{html.escape(line)}</p>" for line in lines)
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<title>nextrace report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        header,
    ]
    for title, svg, caption in sections:
        parts.append(
            f"<section class='plot'><h2>{html.escape(title)}</h2><figure>{svg}"
            f"<figcaption>{html.escape(caption)}</figcaption></figure></section>"
        )
    parts.append("<h2>Slowest navigations, as waterfalls</h2>")
    for title, svg, caption in waterfalls:
        parts.append(
            f"<section class='waterfall'><h3>{html.escape(title)}</h3><figure>{svg}"
            f"<figcaption>{html.escape(caption)}</figcaption></figure></section>"
        )
    parts.append(f"<h2>The report as text</h2><pre>{html.escape(report.render())}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
