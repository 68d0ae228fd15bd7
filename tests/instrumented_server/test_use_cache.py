"""The reference server's 'use cache' layer: per-instance memory against a shared remote
handler, cacheLife, tags, deploys and 'use cache: private', told by the upstream's own calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contract import semconv
from instrumented_server.cache_life import BUILT_IN
from instrumented_server.definition import DefinitionError, parse_definition
from tests.instrumented_server.conftest import SECRET, Harness

APP = f"""
name = "cc-shop"
revalidate_secret = "{SECRET}"
instances = 2

[cache_life.product]
stale = 30
revalidate = 60
expire = 600

[[upstreams]]
name = "api"
latency = {{ p50_ms = 2, p95_ms = 3 }}

[[layouts]]
name = "root"

[[routes]]
path = "/deals/[id]"
render = "dynamic"

[[routes.fetches]]
name = "getDeal"
upstream = "api"
path = "/deals/{{id}}"
cache = "use cache"
life = "product"
tags = ["deals", "deal-{{id}}"]

[[routes.fetches]]
name = "getStock"
upstream = "api"
path = "/stock/{{id}}"
cache = "use cache: remote"
life = "product"
tags = ["deals"]

[[routes.fetches]]
name = "getCart"
upstream = "api"
path = "/cart"
cache = "use cache: private"
"""


def lookups(server: Harness) -> list[tuple[str, str, str, str, str]]:
    """(layer, result, reason, instance, entry's instance) of each 'use cache' lookup, in
    order; the instance is the span's resource's service.instance.id."""
    found = []
    for span in server.exporter.get_finished_spans():
        attributes: dict[str, Any] = dict(span.attributes or {})
        layer = attributes.get(semconv.CACHE_LAYER, "")
        if layer.startswith("use_cache"):
            found.append(
                (
                    layer,
                    attributes[semconv.CACHE_RESULT],
                    attributes.get(semconv.CACHE_MISS_REASON, ""),
                    str(span.resource.attributes.get(semconv.SERVICE_INSTANCE_ID, "")),
                    attributes.get(semconv.CACHE_ENTRY_SOURCE_INSTANCE, ""),
                )
            )
    return found


def visit(server: Harness, path: str = "/deals/1") -> list[tuple[str, str, str, str, str]]:
    server.reset_spans()
    assert server.get(path).status_code == 200
    server.settle()
    return lookups(server)


@pytest.fixture
def shop(make_server: Callable[..., Harness]) -> Harness:
    return make_server(APP)


def test_memory_misses_on_the_other_instance_and_remote_serves_it(shop):
    calls = shop.state.upstreams.count
    first = visit(shop)  # instance 1
    assert first == [
        ("use_cache", "miss", "cold", "cc-shop-1", ""),
        ("use_cache_remote", "miss", "cold", "cc-shop-1", ""),
        ("use_cache_private", "bypass", "bypass", "cc-shop-1", ""),
    ]
    assert (calls("/deals/1"), calls("/stock/1"), calls("/cart")) == (1, 1, 1)
    second = visit(shop)  # instance 2: its memory never held the deal; Redis holds the stock
    assert second == [
        ("use_cache", "miss", "other_instance", "cc-shop-2", ""),
        ("use_cache_remote", "hit", "", "cc-shop-2", "cc-shop-1"),
        ("use_cache_private", "bypass", "bypass", "cc-shop-2", ""),
    ]
    assert (calls("/deals/1"), calls("/stock/1"), calls("/cart")) == (2, 1, 2)
    third = visit(shop)  # instance 1 again: both hold it now
    assert [(layer, result, source) for layer, result, _, _, source in third] == [
        ("use_cache", "hit", "cc-shop-1"),
        ("use_cache_remote", "hit", "cc-shop-1"),
        ("use_cache_private", "bypass", ""),
    ]
    assert (calls("/deals/1"), calls("/stock/1"), calls("/cart")) == (2, 1, 3)


def test_a_miss_is_followed_by_the_function_and_the_handler_fill(shop):
    visit(shop)
    spans = shop.exporter.get_finished_spans()
    fills = [
        dict(s.attributes or {})
        for s in spans
        if (s.attributes or {}).get(semconv.CACHE_OPERATION) == "set"
    ]
    assert {f[semconv.CACHE_FUNCTION] for f in fills} == {"getDeal", "getStock"}  # not private
    deal = next(f for f in fills if f[semconv.CACHE_FUNCTION] == "getDeal")
    assert deal[semconv.CACHE_KIND] == "use_cache"
    assert deal[semconv.CACHE_SHARED] is False
    assert deal[semconv.CACHE_LIFE_REVALIDATE_S] == 60
    assert deal[semconv.CACHE_LIFE_EXPIRE_S] == 600
    assert list(deal[semconv.CACHE_TAGS]) == ["deals", "deal-1"]
    assert semconv.CACHE_LAYER not in deal  # a fill is not a lookup: no cache_events row
    functions = [s for s in spans if (s.attributes or {}).get(semconv.FETCH_CACHE_OPTION)]
    assert {str((s.attributes or {})[semconv.CACHE_FUNCTION]) for s in functions} == {
        "getDeal",
        "getStock",
        "getCart",
    }


def test_cache_life_in_memory_ends_at_revalidate_and_in_redis_at_expire(shop):
    visit(shop)  # instance 1 fills
    visit(shop)  # instance 2 fills its memory
    shop.clock.advance(61)
    # Instance 1: Next's in-memory handler drops an entry past its revalidate (production);
    # Redis keeps it until it expires, served stale and refreshed in the background.
    stale = visit(shop)
    assert [(r[0], r[1], r[2]) for r in stale[:2]] == [
        ("use_cache", "miss", "expired"),
        ("use_cache_remote", "stale", "expired"),
    ]
    assert shop.state.upstreams.count("/stock/1", origin="revalidation") == 1
    refreshed = visit(shop)  # instance 2: its memory dropped it too; Redis was refreshed
    assert [(r[0], r[1], r[2]) for r in refreshed[:2]] == [
        ("use_cache", "miss", "expired"),
        ("use_cache_remote", "hit", ""),
    ]
    shop.clock.advance(601)
    gone = visit(shop)
    assert [(r[0], r[1], r[2]) for r in gone[:2]] == [
        ("use_cache", "miss", "expired"),
        ("use_cache_remote", "miss", "expired"),
    ]


@pytest.mark.parametrize(
    ("body", "result"),
    [({"tag": "deals"}, "stale"), ({"tag": "deals", "expire": 0}, "miss")],
)
def test_a_tag_revalidation_reaches_every_instance_and_the_remote_handler(shop, body, result):
    visit(shop)
    visit(shop)
    answer = shop.client.post("/api/revalidate", json=body, headers={"x-revalidate-secret": SECRET})
    assert answer.json()["invalidated"]["use_cache"] == 3  # two memories and Redis
    for _ in range(2):
        after = visit(shop)
        assert [(r[0], r[1], r[2]) for r in after[:2]] in (
            [
                ("use_cache", result, "tag_invalidated"),
                ("use_cache_remote", result, "tag_invalidated"),
            ],
            # Redis holds one entry for both instances: the first refilled it (a miss) or
            # refreshes it (stale, in the background)
            [("use_cache", result, "tag_invalidated"), ("use_cache_remote", "hit", "")],
        )


def test_a_deploy_empties_every_handler(shop):
    visit(shop)
    visit(shop)
    answer = shop.client.post(
        "/api/deploy", json={"warm_routes": 0}, headers={"x-revalidate-secret": SECRET}
    )
    assert answer.json()["emptied"]["use_cache"] == 3
    assert [(r[0], r[1], r[2]) for r in visit(shop)[:2]] == [
        ("use_cache", "miss", "deploy"),
        ("use_cache_remote", "miss", "deploy"),
    ]


def test_one_instance_is_the_one_the_sdk_names(make_server):
    server = make_server(APP.replace("instances = 2", "instances = 1"))
    itself = server.state.telemetry.instance_id
    assert itself  # the OpenTelemetry SDK's made-up id
    assert {r[3] for r in visit(server)} == {itself}
    assert visit(server) == [
        ("use_cache", "hit", "", itself, itself),
        ("use_cache_remote", "hit", "", itself, itself),
        ("use_cache_private", "bypass", "bypass", itself, ""),
    ]


def test_definitions_name_known_cache_life_profiles():
    assert BUILT_IN["seconds"].expire == 60
    with pytest.raises(DefinitionError, match="unknown cacheLife profile 'product'"):
        parse_definition(APP.replace("[cache_life.product]", "[cache_life.other]"))
    with pytest.raises(DefinitionError, match="only allowed with 'use cache'"):
        parse_definition(APP.replace('cache = "use cache: private"', 'life = "max"'))
    with pytest.raises(DefinitionError, match="scope = 'private' cannot be cached with"):
        parse_definition(
            APP.replace('path = "/cart"', 'path = "/cart"\nscope = "private"', 1).replace(
                'cache = "use cache: private"', 'cache = "use cache"'
            )
        )
    with pytest.raises(DefinitionError, match="expire must be at least revalidate"):
        parse_definition(APP.replace("expire = 600", "expire = 6"))
