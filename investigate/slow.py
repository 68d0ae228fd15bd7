"""``nextrace slow``: the slowest navigations (and API requests), each with one line of cause
and its parts.

The candidates come from one query (``slowest_traces.sql``); their spans from one more
(``trace_spans.sql``); each is then diagnosed on its critical path (:mod:`diagnosis`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from contract.errors import NextraceError
from investigate.diagnosis import MS, Diagnosis, diagnose
from investigate.reader import Reader
from investigate.spans import load_traces
from investigate.waterfall import utc

BUILD_ID = "nextrace.build_id"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


MAX_SINCE_S = 3650 * 86400  # ten years: more reads nothing older, and bounds the arithmetic


class BadFilter(NextraceError):
    """A filter of the slow list that cannot be read."""


def duration_s(text: str) -> float | None:
    """A duration such as 90s, 15m, 2h or 7d, in seconds; None when ``text`` is none."""
    match = _DURATION.fullmatch(text.strip())
    return float(match.group(1)) * _UNIT_S[match.group(2)] if match else None


def since_ns(text: str, now_ns: int | None = None) -> int:
    """A duration back from ``now_ns`` (now by default): 90s, 15m, 2h, 7d, as a Unix time in
    ns."""
    seconds = duration_s(text)
    if seconds is None:
        raise BadFilter(f"since {text!r}: give a duration such as 90s, 15m, 2h or 7d")
    if seconds > MAX_SINCE_S:
        raise BadFilter(f"since {text!r}: give at most {MAX_SINCE_S // 86400:.0f}d")
    return (time.time_ns() if now_ns is None else now_ns) - int(seconds * 1e9)


@dataclass(frozen=True, slots=True)
class Filters:
    """Which navigations to consider; empty strings match all."""

    route: str = ""
    service: str = ""
    build: str = ""
    kind: str = ""  # document, soft, back, forward, traverse, api
    since_ns: int = 0
    until_ns: int = 0  # 0: no end
    limit: int = 10


@dataclass(frozen=True, slots=True)
class SlowNavigation:
    trace_id: str
    name: str
    service: str
    route: str
    kind: str
    build: str
    duration_ns: int
    start_ns: int
    diagnosis: Diagnosis | None  # None when the trace's spans are gone (TTL, a partial write)


def slowest(reader: Reader, filters: Filters) -> list[SlowNavigation]:
    rows = reader.rows(
        "slowest_traces",
        since_ns=filters.since_ns,
        until_ns=filters.until_ns,
        route=filters.route,
        service=filters.service,
        build=filters.build,
        kind=filters.kind,
        limit=filters.limit,
    )
    traces = load_traces(reader, [r["trace_id"] for r in rows])
    found = []
    for row in rows:
        trace = traces.get(row["trace_id"])
        diagnosis = diagnose(trace, reader) if trace else None
        # A browser's navigation: the server and the build are those of its first request.
        served = (trace.request or trace.first_request()) if trace else None
        found.append(
            SlowNavigation(
                trace_id=row["trace_id"],
                name=trace.root.name if trace else row["name"],
                service=served.service if served else row["root_service"],
                route=row["route"]
                or (trace.root.attributes.get("next.route", "") if trace else ""),
                kind=row["kind"],
                build=row["build"] or (served.attributes.get(BUILD_ID, "") if served else ""),
                # The navigation's whole extent (a Next.js 15 request's middleware pass
                # included), which its parts add up to; the row's when its spans are gone.
                duration_ns=trace.duration_ns if trace else row["duration_ns"],
                start_ns=trace.start_ns if trace else row["start_ns"],
                diagnosis=diagnosis,
            )
        )
    found.sort(key=lambda nav: -nav.duration_ns)
    return found


def render_text(found: list[SlowNavigation]) -> str:
    if not found:
        return "no navigation matches\n"
    out = []
    for nav in found:
        out.append(
            f"{nav.duration_ns / MS:>9.1f} ms  {nav.name}  {nav.kind or '-'}  "
            f"{nav.build or '-'}  {utc(nav.start_ns)}  trace {nav.trace_id}"
        )
        if nav.diagnosis is None:
            out.append(f"{'':>14}(its spans are no longer stored)")
            continue
        parts = " + ".join(
            f"{part} {ns / MS:.0f}" for part, ns in nav.diagnosis.parts.items() if ns >= MS / 2
        )
        out.append(f"{'':>14}cause: {nav.diagnosis.cause}")
        out.append(f"{'':>14}parts (ms): {parts}")
    return "\n".join(out) + "\n"


def as_json(found: list[SlowNavigation]) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": nav.trace_id,
            "name": nav.name,
            "service": nav.service,
            "route": nav.route,
            "kind": nav.kind,
            "build": nav.build,
            "start": utc(nav.start_ns),
            "duration_ms": nav.duration_ns / MS,
            "cause": nav.diagnosis.cause if nav.diagnosis else None,
            "parts_ms": {p: ns / MS for p, ns in nav.diagnosis.parts.items()}
            if nav.diagnosis
            else None,
        }
        for nav in found
    ]
