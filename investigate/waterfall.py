"""A diagnosed trace as a terminal waterfall (``nextrace trace``) or as JSON for tools.

The waterfall is the span tree with each span's offset from the navigation's start, its
duration and a bar on a shared time axis; the bar is solid (``█``) where the span was on the
critical path and light (``─``) elsewhere. Its first line is the navigation (a synthetic span
when no stored span's window is the navigation's, see :mod:`investigate.spans`). Each line ends
with what a Next.js engineer asks of a span: its phase, its cache lookup's result and why it
missed, the entry's origin (with the trace id of the warm-up or revalidation that stored it,
to paste into ``nextrace trace``), and the trace a span joined from another came from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, replace
from typing import Any

from investigate.diagnosis import MS, Diagnosis, Stretch
from investigate.spans import Span

BAR_WIDTH = 32
NAME_WIDTH = 44


def span_notes(span: Span, trace_id: str = "") -> str:
    """What the trace view says of a span beyond its name and times (``trace_id``: the trace
    shown, to name a span joined from another)."""
    if span.synthetic:
        return (
            f"{span.phase}, {span.request_kind or '-'}: the navigation, its spans together "
            "(no span of its own)"
        )
    notes = [span.phase or "-"]
    if span.bubbles:
        notes.append("middleware pass")
    if span.request_kind:
        notes.append(span.request_kind)
    router = span.attributes.get("nextrace.navigation.router_cache")
    if router:
        notes.append(f"router cache {router}")
    cache = span.cache
    if cache is not None:
        outcome = f"{cache.layer} {cache.result}"
        if cache.result in ("miss", "stale") and cache.reason:
            outcome += f" ({cache.reason})"
        notes.append(outcome)
        if cache.entry_source:
            stored_on = cache.entry_source_instance
            notes.append(
                f"entry from {cache.entry_source}" + (f" on {stored_on}" if stored_on else "")
            )
    notes.extend(f"→ trace {trace_id}" for trace_id in span.linked_trace_ids)
    if span.error:
        notes.append("ERROR")
    if trace_id and span.trace_id != trace_id:
        notes.append(f"joined from trace {span.trace_id}")
    return ", ".join(notes)


def merged_path(diagnosis: Diagnosis) -> list[Stretch]:
    """The critical path with adjacent stretches of the same span and name joined."""
    merged: list[Stretch] = []
    for stretch in diagnosis.path:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.segment.span is stretch.segment.span
            and last.uncovered == stretch.uncovered
        ):
            merged[-1] = replace(last, segment=replace(last.segment, end_ns=stretch.segment.end_ns))
        else:
            merged.append(stretch)
    return merged


def render_text(diagnosis: Diagnosis, *, min_path_ms: float = 1.0) -> str:
    trace = diagnosis.trace
    root = trace.root
    start, total = root.start_ns, max(root.duration_ns, 1)
    services = " → ".join(dict.fromkeys(s.service for s in trace.spans))
    out = [
        f"trace {trace.trace_id}  {root.name}  {root.duration_ns / MS:.1f} ms  "
        f"at {utc(start)}  ({services}, {len(trace.spans)} spans)",
        f"cause: {diagnosis.cause or '-'}",
        "parts: "
        + " + ".join(f"{part} {ns / MS:.1f}" for part, ns in diagnosis.parts.items())
        + f" = {sum(diagnosis.parts.values()) / MS:.1f} ms (the critical path, by part)",
        "",
        f"{'offset ms':>9} {'duration':>9}  {'span':<{NAME_WIDTH}} {'':<{BAR_WIDTH}}  notes",
    ]
    on_path = diagnosis.stretches_by_span()  # a span is on it wherever a descendant is
    for span, depth in trace.walk():
        name = ("  " * depth + span.name)[:NAME_WIDTH]
        bar = _bar(span, on_path.get(span.span_id, []), start, total)
        out.append(
            f"{(span.start_ns - start) / MS:>9.1f} {span.duration_ns / MS:>9.1f}  "
            f"{name:<{NAME_WIDTH}} {bar}  {span_notes(span, trace.trace_id)}"
        )
    out += ["", "critical path (█), in time order:"]
    hidden = 0
    for stretch in merged_path(diagnosis):
        ms = stretch.segment.duration_ns / MS
        if ms < min_path_ms:
            hidden += stretch.segment.duration_ns
            continue
        span = stretch.segment.span
        what = stretch.uncovered or span.name
        where = f"  [{span.name}]" if stretch.uncovered and not span.synthetic else ""
        out.append(
            f"{(stretch.segment.start_ns - start) / MS:>9.1f} {ms:>9.1f}  {stretch.part:<11}"
            f"{what}{where}"
        )
    if hidden:
        out.append(f"{'':>9} {hidden / MS:>9.1f}  (stretches under {min_path_ms:g} ms each)")
    return "\n".join(out) + "\n"


def _bar(span: Span, stretches: list[Stretch], start: int, total: int) -> str:
    def cell(ns: int) -> int:
        return max(0, min(BAR_WIDTH - 1, (ns - start) * BAR_WIDTH // total))

    cells = [" "] * BAR_WIDTH
    for i in range(cell(span.start_ns), cell(max(span.end_ns - 1, span.start_ns)) + 1):
        cells[i] = "─"
    for stretch in stretches:
        segment = stretch.segment
        for i in range(cell(segment.start_ns), cell(segment.end_ns - 1) + 1):
            cells[i] = "█"
    return "".join(cells)


def as_json(diagnosis: Diagnosis) -> dict[str, Any]:
    """The diagnosis as plain data: times in milliseconds from the root span's start."""
    trace = diagnosis.trace
    start = trace.root.start_ns
    critical = diagnosis.on_path_ns
    return {
        "trace_id": trace.trace_id,
        "root": trace.root.name,
        "start": utc(start),
        "duration_ms": trace.root.duration_ns / MS,
        "cause": diagnosis.cause,
        "parts_ms": {part: ns / MS for part, ns in diagnosis.parts.items()},
        "context": {
            "prefetches_in_flight": diagnosis.context.prefetches_in_flight,
            "deploy_build": diagnosis.context.deploy_build,
        },
        "spans": [
            {
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "trace_id": span.trace_id,  # another trace's for a span joined to this one
                "synthetic": span.synthetic,  # the navigation's extent, no stored span
                "depth": depth,
                "name": span.name,
                "service": span.service,
                "phase": span.phase,
                "offset_ms": (span.start_ns - start) / MS,
                "duration_ms": span.duration_ns / MS,
                "critical_path_ms": critical.get(span.span_id, 0) / MS,
                "request_kind": span.request_kind,
                "cache": None if span.cache is None else asdict(span.cache),
                "linked_trace_ids": list(span.linked_trace_ids),
                "error": span.error,
            }
            for span, depth in trace.walk()
        ],
        "critical_path": [
            {
                "span_id": stretch.segment.span.span_id,
                "name": stretch.segment.span.name,
                "start_ms": (stretch.segment.start_ns - start) / MS,
                "end_ms": (stretch.segment.end_ns - start) / MS,
                "part": stretch.part,
                "uncovered": stretch.uncovered,
                "gap": stretch.segment.gap,  # no span was running
            }
            for stretch in merged_path(diagnosis)
        ],
    }


def utc(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
