"""Grafana's evaluation of an alert rule, run on the store: the rule as Grafana receives it,
its query after Grafana's expansion, and the series that fire."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.alerts import (
    AlertSpec,
    build,
)
from dashboards.macros import QueryContext, expand
from tests.conftest import stored


def evaluate(collector, spec: AlertSpec, at: dt.datetime) -> dict[Any, float]:
    return evaluate_with(lambda sql: stored(collector, sql), spec, at)


def evaluate_with(
    run: Callable[[str], list[Any]], spec: AlertSpec, at: dt.datetime
) -> dict[Any, float]:
    """Grafana's evaluation of a rule at ``at``: A, then B = last(A), then C = B > threshold.

    Returns the firing series with the value that fired them: a series is its label's value,
    or the tuple of its labels' values when it has several.
    """
    rule = rule_json(spec)
    source = rule["data"][0]
    window = dt.timedelta(seconds=source["relativeTimeRange"]["from"])
    rows = run(expand(source["model"]["rawSql"], QueryContext(at - window, at)))
    # One row per series, so last() is its value; string columns are labels, as in Grafana.
    reduced = {(row[0] if len(row) == 2 else tuple(row[:-1])): row[-1] for row in rows}
    threshold = rule["data"][2]["model"]["conditions"][0]["evaluator"]
    assert threshold["type"] == "gt"
    return {label: value for label, value in reduced.items() if value > threshold["params"][0]}


def rule_json(spec: AlertSpec, pages_url: str = "") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        json.dumps(build(spec, pages_url=pages_url), cls=JSONEncoder)
    )
    return document


def render_annotation(text: str, labels: dict[str, str]) -> str:
    """An annotation as Grafana renders it for a series with ``labels``: its ``{{ $labels.X }}``
    and ``{{ urlquery $labels.X }}`` (Go's url.QueryEscape) filled in."""

    def fill(match: re.Match[str]) -> str:
        value = labels[match.group(2)]
        return quote_plus(value) if match.group(1) else value

    return re.sub(r"\{\{\s*(urlquery\s+)?\$labels\.(\w+)\s*\}\}", fill, text)
