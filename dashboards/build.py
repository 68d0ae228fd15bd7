"""Build the dashboards as Grafana JSON (``nextrace dashboards build``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import cache_health

DASHBOARDS = {cache_health.NAME: cache_health.build}


def to_json(name: str) -> dict[str, Any]:
    """The dashboard ``name`` as the JSON Grafana stores."""
    document: dict[str, Any] = json.loads(json.dumps(DASHBOARDS[name](), cls=JSONEncoder))
    return document


def write(out: Path) -> list[Path]:
    """Write every dashboard to ``out/<name>.json``; return the files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DASHBOARDS:
        path = out / f"{name}.json"
        path.write_text(json.dumps(to_json(name), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
