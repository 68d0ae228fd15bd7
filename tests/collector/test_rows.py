"""The derived rows the collector writes fit the tables the migrations create."""

from __future__ import annotations

import dataclasses

import pytest

from collector.nextjs.rows import CacheEventRow, RequestRow
from collector.service import Collector
from tests.support.store_rows import request_row

# What Next.js cannot tell about a cache lookup; this column keeps its default.
NOT_FROM_NEXTJS = {"Tags"}
# A CDN's edge region: only a CDN's log says it (collector/ingest/cdn.py).
CDN_ONLY = {"Region"}


def described(collector: Collector, table: str) -> dict[str, str]:
    assert collector.store is not None
    rows = collector.store.client.query(f"DESCRIBE TABLE {table}").result_rows
    return {name: type_ for name, type_, *_ in rows}


# Sign is 1 for every row written; only a correction's cancellations carry -1.
@pytest.mark.parametrize(
    ("row", "unwritten"),
    [(RequestRow, {"Sign", *CDN_ONLY}), (CacheEventRow, {"Sign", *NOT_FROM_NEXTJS, *CDN_ONLY})],
)
def test_every_column_of_a_derived_row_exists_and_only_defaults_are_left_out(
    collector, row, unwritten
):
    table = described(collector, row.TABLE)
    assert set(row.columns()) <= set(table)
    assert set(table) - set(row.columns()) == unwritten


def test_a_row_is_written_and_read_back_whole(collector):
    request = request_row()
    assert collector.store is not None
    client = collector.store.client
    client.insert(RequestRow.TABLE, [request.values()], column_names=RequestRow.columns())
    (stored,) = client.query(
        f"SELECT {', '.join(RequestRow.columns())} FROM {RequestRow.TABLE}"
    ).result_rows
    assert list(stored[1:]) == request.values()[1:]  # the timestamp comes back as a datetime


def test_a_row_with_changes_is_a_new_row_and_the_old_one_is_untouched():
    row = request_row()
    changed = row.with_changes(route="/about", status=404)
    assert changed == dataclasses.replace(row, route="/about", status=404)
    assert (row.route, row.status) == ("/products/[id]", 200)
    assert changed.values()[RequestRow.columns().index("StatusCode")] == 404
