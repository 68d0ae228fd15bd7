"""'use cache' lookups of a real Next.js 16 app, read into cache_events: a recorded run of
examples/nextjs-cache-components (tests/data/cache-components-run: two instances, Next.js's
in-memory handler and a Redis one, revalidations, an expiry, a deploy), replayed through the
collector into a real chDB store.

What happened is known without nextrace: each lookup's outcome from the upstream's log and the
page (tests/examples/cache_components.py, ``computed``), each miss's cause from the scenario's
own steps (``Step.expect``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.service import Collector
from investigate import waterfall
from investigate.diagnosis import MS, diagnose
from investigate.reader import StoreReader
from investigate.report import build_report
from investigate.report_html import render_html
from investigate.spans import load_trace
from tests.conftest import collector_holding, stored
from tests.examples.cache_components import (
    LAYERS,
    Lookups,
    load,
    mismatches,
    next_js_disagrees,
    verdict,
)

RUN = Path(__file__).resolve().parents[1] / "data" / "cache-components-run"
COLUMNS = "TraceId, Layer, Result, Reason, Instance, EntrySourceInstance, Function, Route, BuildId"


@pytest.fixture(scope="module")
def replayed(chdb_path: Path) -> Iterator[Collector]:
    """A collector that took the run's exports (replayed once for the module)."""
    with collector_holding(chdb_path, RUN) as collector:
        yield collector


@pytest.fixture(scope="module")
def lookups(replayed: Collector) -> Lookups:
    """The run's cache_events rows, by trace and layer."""
    rows = stored(replayed, f"SELECT {COLUMNS} FROM cache_events WHERE Sign = 1")
    names = [name.strip() for name in COLUMNS.split(",")]
    by_lookup: Lookups = {}
    for row in rows:
        found = dict(zip(names, row, strict=True))
        key = (found["TraceId"], found["Layer"])
        assert key not in by_lookup, f"two rows for one lookup: {key}"
        by_lookup[key] = found
    return by_lookup


def test_every_lookup_has_the_outcome_the_upstream_and_the_page_show_and_its_cause(
    lookups: Lookups,
) -> None:
    requests, calls = load(RUN)
    assert not mismatches(requests, calls, lookups)
    mine = [key for key in lookups if key[1] in LAYERS]
    assert len(mine) == sum(len(r["expect"]) for r in requests)  # none else, none twice


def test_only_the_first_fills_the_collector_saw_have_no_known_cause(lookups: Lookups) -> None:
    reasons = sorted({row["Reason"] for row in lookups.values() if row["Layer"] in LAYERS})
    assert reasons == [
        "",
        "cold",
        "deploy",
        "expired",
        "other_instance",
        "tag_invalidated",
        "unknown",
    ]
    unknown = [r for r in lookups.values() if r["Layer"] in LAYERS and r["Reason"] == "unknown"]
    # Before the collector saw any build start: products 1 and 2 on both 'use cache' layers,
    # product 1's price and the route's shell.
    assert len(unknown) == 6


def test_a_hit_says_which_instance_stored_its_entry(lookups: Lookups) -> None:
    requests, _ = load(RUN)
    by_label: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for request in requests:
        for layer in request["expect"]:
            row = lookups[request["trace_id"], layer]
            route = "/api/price/[id]" if "/api/price/" in request["path"] else "/products/[id]"
            assert row["Route"] == route
            assert bool(row["Function"]) == (layer != "incremental")  # a function's name
            by_label.setdefault(request["label"], []).append((layer, row))
    # b's first page of product 1: the shared (Redis) entry came from a, b's memory had none.
    (_, mine), (_, shared) = sorted(by_label["build 1: GET /products/1 on b"][0:2])
    assert (mine["Result"], mine["Reason"]) == ("miss", "other_instance")
    assert (shared["Result"], shared["EntrySourceInstance"]) == ("hit", "a")
    # A hit of an instance's own memory was stored by that instance.
    own_hits = [
        row
        for row in lookups.values()
        if row["Layer"] == "use_cache" and row["Result"] == "hit" and row["EntrySourceInstance"]
    ]
    assert own_hits
    assert all(row["EntrySourceInstance"] == row["Instance"] for row in own_hits)
    functions = {
        layer: {r["Function"] for r in lookups.values() if r["Layer"] == layer} for layer in LAYERS
    }
    # One function per layer, named alike in both builds (Next.js's ids change with each).
    # (the manifest names files from Turbopack's root, which the example sets above the app)
    assert {layer: {f.split("/app/")[-1] for f in names} for layer, names in functions.items()} == {
        "use_cache": {"lib/data.js#$$RSC_SERVER_CACHE_0"},
        "use_cache_remote": {"lib/data.js#$$RSC_SERVER_CACHE_1"},
        "incremental": {""},
    }


def test_a_slow_page_names_the_use_cache_function_that_ran_and_why(replayed: Collector) -> None:
    requests, calls = load(RUN)
    assert replayed.store is not None
    reader = StoreReader(replayed.store)
    # b's first page of product 1: its memory missed (a held the entry), Redis hit.
    page = next(r for r in requests if r["label"] == "build 1: GET /products/1 on b")
    (call,) = [c for c in calls if c["trace_id"] == page["trace_id"]]
    diagnosis = diagnose(load_trace(reader, page["trace_id"]))
    cause = diagnosis.cause
    # A server's trace has no browser part: a handler's lookup is the cache's time.
    assert "browser" not in diagnosis.parts
    assert diagnosis.parts["cache"] > 0
    found = re.search(
        r"'use cache' (?:\S*/)?lib/data.js#\$\$RSC_SERVER_CACHE_0 ran (\d+) ms "
        r"\(use_cache miss: other_instance\)",
        cause,
    )
    assert found, cause
    upstream_ms = (call["answered_ns"] - call["received_ns"]) / MS
    page_ms = (page["t_end_ns"] - page["t_start_ns"]) / MS
    assert upstream_ms * 0.9 <= int(found.group(1)) <= page_ms  # the run held the upstream call
    assert "CACHE_1" not in cause  # Redis hit: that function did not run
    # The trace view says which instance stored the entry Redis served, and why memory missed.
    text = waterfall.render_text(diagnose(load_trace(reader, page["trace_id"])))
    assert "use_cache miss (other_instance)" in text
    assert "use_cache_remote hit, entry from request on a" in text
    # A page served from both caches names no function.
    warm = next(
        r
        for r in requests
        if r["label"] == "build 1: GET /products/1 on a" and r["expect"]["use_cache"][0] == "hit"
    )
    assert "'use cache'" not in diagnose(load_trace(reader, warm["trace_id"])).cause


def test_the_report_counts_each_function_and_says_what_a_shared_handler_would_save(
    replayed: Collector, lookups: Lookups
) -> None:
    assert replayed.store is not None
    report = build_report(StoreReader(replayed.store))
    by_function = {(f["layer"], f["function"]): f for f in report.as_json()["use_cache_functions"]}
    for (layer, function), row in by_function.items():
        mine = [
            r for r in lookups.values() if r["Layer"] == layer and r["Function"].endswith(function)
        ]
        assert row["lookups"] == len(mine)
        assert row["other_instance"] == sum(r["Reason"] == "other_instance" for r in mine)
        assert row["from_other_instances"] == sum(
            r["EntrySourceInstance"] not in ("", r["Instance"]) for r in mine
        )
    memory = next(f for (layer, _), f in by_function.items() if layer == "use_cache")
    remote = next(f for (layer, _), f in by_function.items() if layer == "use_cache_remote")
    # The run's truth (test_every_lookup…): 3 misses because only the other instance's memory
    # held the entry, and 4 Redis hits on entries the other instance stored.
    assert (memory["other_instance"], remote["from_other_instances"]) == (3, 4)
    assert memory["instances"] == 2
    assert any("'use cache: remote'" in line for line in memory["advice"])
    assert not any("'use cache: remote'" in line for line in remote["advice"])
    text = report.render()
    assert "== 'use cache' functions ==" in text
    # The page draws the functions' names as text, "$$RSC_SERVER_CACHE_0" and all.
    page = render_html(report, StoreReader(replayed.store))
    assert "#$$RSC_SERVER_CACHE_0" in page
    assert re.search(r"3 of its \d+ misses found the entry only in another instance's memory", text)


def test_each_in_memory_lookup_agrees_with_what_next_js_logged_of_it(lookups: Lookups) -> None:
    requests, _ = load(RUN)
    assert not next_js_disagrees(requests, lookups)
    # The run has each verdict that carries a reason.
    said = {verdict(r) for r in requests if "use_cache" in r["expect"]}
    assert {"found", "had stale tag", "expired", "had expired tag", "not found"} <= said
