"""The plugin's macros, expanded as its v4.20.0 backend does, and run on real ClickHouse."""

from __future__ import annotations

import datetime as dt

import pytest

from collector.storage.store import open_store
from dashboards.macros import (
    MacroError,
    QueryContext,
    UnknownMacroError,
    expand,
    format_duration,
    parse_duration,
    strip_comments,
)
from tests.builders import insert_spans, make_span

T0 = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=1)
CTX = QueryContext(T0, T1, dt.timedelta(seconds=30), table="otel_traces", column="Duration")
FROM, TO = int(T0.timestamp()), int(T1.timestamp())


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "$__timeFilter(Timestamp)",
            f"Timestamp >= toDateTime({FROM}) AND Timestamp <= toDateTime({TO})",
        ),
        (
            "$__timeFilter_ms(ts)",
            f"ts >= fromUnixTimestamp64Milli({FROM}000) AND "
            f"ts <= fromUnixTimestamp64Milli({TO}000)",
        ),
        ("$__dateFilter(d)", "d >= toDate('2026-11-23') AND d <= toDate('2026-11-23')"),
        (
            "$__dt(d, t)",
            "(d >= toDate('2026-11-23') AND d <= toDate('2026-11-23')) AND "
            f"(t >= toDateTime({FROM}) AND t <= toDateTime({TO}))",
        ),
        ("$__fromTime, $__toTime", f"toDateTime({FROM}), toDateTime({TO})"),
        ("$__fromTime_ms", f"fromUnixTimestamp64Milli({FROM}000)"),
        ("$__interval_s", "30"),
        (
            "$__timeInterval(Timestamp)",
            "toStartOfInterval(toDateTime(Timestamp), INTERVAL 30 second)",
        ),
        (
            "$__timeInterval_ms(Timestamp)",
            "toStartOfInterval(toDateTime64(Timestamp, 3), INTERVAL 30000 millisecond)",
        ),
        ("$__timeFrom(t) AND $__timeTo(t)", f"t >= toDateTime({FROM}) AND t <= toDateTime({TO})"),
        (
            "$__timeGroup(Timestamp, 5m)",
            "toStartOfInterval(toDateTime(Timestamp), INTERVAL 300 second)",
        ),
        (
            "$__timeGroup(Timestamp, '1h')",
            "toStartOfInterval(toDateTime(Timestamp), INTERVAL 3600 second)",
        ),
        ("$__interval / $__interval_ms", "30s / 30000"),  # longest name first
        ("SELECT $__column FROM $__table", "SELECT Duration FROM otel_traces"),
        (
            "$__timeFilter(toDateTime(coalesce(a, b)))",
            f"toDateTime(coalesce(a, b)) >= toDateTime({FROM}) AND toDateTime(coalesce(a, b)) <= "
            f"toDateTime({TO})",
        ),
    ],
)
def test_macros_expand_as_the_plugin_does(sql, expected):
    assert expand(sql, CTX) == expected


def test_macros_in_comments_never_expand_and_strings_are_kept():
    sql = "SELECT '-- not a comment' -- $__nope(x)\n/* $__alsoNope */ , $__interval_s"
    expanded = expand(sql, CTX)
    assert "'-- not a comment'" in expanded
    assert expanded.endswith(", 30")
    assert len(strip_comments(sql)) == len(sql)  # comments are blanked, not removed


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__timeFilterX(t)", "unknown"),
        ("WHERE $__conditionalAll(route IN ($route), $route)", "frontend-only"),
        ("WHERE $__adHocFilters('otel_traces')", "frontend-only"),
        ("WHERE route = '${route}'", "dashboard variable"),
        ("$__timeFilter()", "exactly 1 argument"),
        ("$__timeGroup(t, 0s)", "positive"),
        ("$__timeGroup(t, soon)", "invalid duration"),
        ("SELECT $__table", "no table name"),
    ],
)
def test_unknown_frontend_or_malformed_macros_fail_loudly(sql, message):
    context = QueryContext(T0, T1) if "$__table" in sql else CTX
    with pytest.raises((UnknownMacroError, MacroError), match=message):
        expand(sql, context)


def test_durations_follow_grafana_notation():
    assert [
        format_duration(dt.timedelta(seconds=s)) for s in (0.0001, 0.25, 59, 90 * 60, 86_400 * 400)
    ] == ["1ms", "250ms", "59s", "1h", "1y"]
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172_800
    assert parse_duration("1w") == 604_800


def test_expanded_queries_select_exactly_the_time_range_on_clickhouse(store_config):
    store = open_store(store_config)
    try:
        inside = T0 + dt.timedelta(minutes=10)
        outside = T1 + dt.timedelta(minutes=10)
        spans = [
            make_span("in", start_ns=int(inside.timestamp() * 1e9)),
            make_span("in", start_ns=int(inside.timestamp() * 1e9) + 1),
            make_span("out", start_ns=int(outside.timestamp() * 1e9)),
        ]
        insert_spans(store.client, spans)
        sql = (
            "SELECT $__timeInterval(Timestamp) AS time, count() AS spans FROM $__table "
            "WHERE $__timeFilter(Timestamp) AND $__dateFilter(toDate(Timestamp)) "
            "GROUP BY time ORDER BY time"
        )
        rows = store.client.query(expand(sql, CTX)).result_rows
        bucket = inside.replace(tzinfo=None) - dt.timedelta(seconds=inside.second % 30)
        assert rows == [(bucket, 2)]
    finally:
        store.close()
