"""The dashboards, by name, as the JSON Grafana stores."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import cache_health, cold_cache, collector_health, prefetch, slow_navigations
from dashboards.common import BASE_URL

DASHBOARDS = {
    cache_health.NAME: cache_health.build,
    cold_cache.NAME: cold_cache.build,
    collector_health.NAME: collector_health.build,
    prefetch.NAME: prefetch.build,
    slow_navigations.NAME: slow_navigations.build,
}


def to_json(name: str, pages_url: str = "") -> dict[str, Any]:
    """The dashboard ``name`` as the JSON Grafana stores; with ``pages_url``, its links open
    nextrace's pages there (the value of its :data:`dashboards.common.BASE_URL` variable)."""
    document: dict[str, Any] = json.loads(json.dumps(DASHBOARDS[name](), cls=JSONEncoder))
    if pages_url:
        for variable in document["templating"]["list"]:
            if variable["name"] == BASE_URL:
                variable["query"] = pages_url.rstrip("/")
    return document
