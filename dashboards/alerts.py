"""Grafana-managed alert rules on ClickHouse, built with grafana-foundation-sdk.

Each rule is query A (ClickHouse, no dashboard variables and no frontend
macros: Grafana evaluates rules on the server), B = reduce A to its last
value per series, and C = a threshold on B, the rule's condition.

Every rule is labelled ``source=nextrace`` (what nextrace's notification route matches,
``dashboards/policy.py``) and with its severity, and annotated with a summary, a description
holding the value that fired it, a link to its section of ``docs/runbook.md``, one to the
dashboard panel that shows it, and, for a rule about an app, one to nextrace's slow list of
what fired (the service, and the build of a cold cache: the routes that suffered are there,
each trace a link to its critical path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.models import alerting as model

from dashboards.build import to_json
from dashboards.clickhouse import (
    DATASOURCE_UID,
    ClickHouseQuery,
    ClickHouseQueryBuilder,
    load_sql,
)

FOLDER_UID = "nextrace"
RULE_GROUP = "nextrace"
EXPRESSION_DATASOURCE = "__expr__"


Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class AlertSpec:
    """One rule. Its query's string columns are the alert's labels, its number the value;
    ``description`` may use Grafana's template data (``$labels``, ``$values.B.Value``)."""

    uid: str
    title: str
    sql_name: str  # dashboards/sql/alerts/<sql_name>.sql
    threshold: float
    range_s: int  # how far back query A looks
    summary: str
    description: str
    severity: Severity
    for_val: str  # how long the condition holds before the alert fires
    runbook: str  # the section of docs/runbook.md, by its anchor
    dashboard: str  # the dashboard whose panel shows what fired, by name
    panel: str  # that panel, by title
    comparison: Literal["gt", "lt"] = "gt"
    windows: dict[str, int] = field(default_factory=dict)  # {name} in the SQL -> seconds
    slow_list: tuple[str, ...] = ()  # the labels that filter the slow list of what fired

    def sql(self) -> str:
        """Query A, with its windows filled in (integers from this module, never user input)."""
        text = load_sql("alerts", self.sql_name)
        for name, seconds in self.windows.items():
            text = text.replace("{" + name + "}", str(int(seconds)))
        unfilled = re.search(r"\{\w+\}", text)
        if unfilled:
            raise ValueError(f"alert {self.uid}: no value for {unfilled.group(0)}")
        return text


COLD_CACHE_SPIKE = AlertSpec(
    uid="nextrace-cold-cache-spike",
    title="Cold-cache spike",
    sql_name="cold_cache_spike",
    threshold=0.25,
    range_s=1800,
    summary="The {{ $labels.layer }} cache of {{ $labels.service }} went cold",
    description=(
        "The miss ratio of the {{ $labels.layer }} cache of {{ $labels.service }} (build "
        "{{ $labels.build }}) over the last 2 minutes is twice that of the half hour before, "
        "plus {{ humanizePercentage $values.B.Value }} of all lookups: a deploy without "
        "warm-ups, a revalidation of a wide tag, or an evicted cache."
    ),
    severity="warning",
    for_val="2m",
    runbook="cold-cache-spike",
    dashboard="cold_cache",
    panel="Cold misses and warm-ups",
    windows={"recent_s": 120},
    slow_list=("service", "build"),
)
PREFETCH_AMPLIFICATION = AlertSpec(
    uid="nextrace-prefetch-amplification",
    title="Prefetch amplification",
    sql_name="prefetch_amplification",
    threshold=3.0,
    range_s=3600,
    summary="{{ $labels.service }} serves over 3 times its usual prefetches per navigation",
    description=(
        "In the last 5 minutes {{ $labels.service }} served "
        "{{ humanize $values.B.Value }} times as many prefetches per navigation as in the "
        "hour before: a page that puts many links in view, a prefetch loop, or a client "
        "router cache that stopped holding."
    ),
    severity="warning",
    for_val="5m",
    runbook="prefetch-amplification",
    dashboard="prefetch",
    panel="Prefetches per navigation",
    windows={"recent_s": 300},
    slow_list=("service",),
)
WARMUP_FAILURES = AlertSpec(
    uid="nextrace-warmup-failures",
    title="Warm-ups failing or backlogged",
    sql_name="warmup_failures",
    threshold=0.2,
    range_s=600,
    summary="Over 20 % of {{ $labels.trigger }} warm-ups of {{ $labels.service }} failed",
    description=(
        "In the last 10 minutes {{ humanizePercentage $values.B.Value }} of the warm-ups "
        "{{ $labels.trigger }} started in {{ $labels.service }} failed or found the queue "
        "full, so the pages they should have warmed will be served cold."
    ),
    severity="warning",
    for_val="5m",
    runbook="warm-ups-failing-or-backlogged",
    dashboard="cold_cache",
    panel="Warm-up queue",
    slow_list=("service",),
)
DROPPED_SPANS = AlertSpec(
    uid="nextrace-dropped-spans",
    title="Spans dropped",
    sql_name="dropped_spans",
    threshold=0.0,
    range_s=600,
    summary="The collector {{ $labels.instance }} dropped spans",
    description=(
        "The collector {{ $labels.instance }} counted {{ $values.B.Value }} spans dropped in "
        "the last 10 minutes: they are not stored, and the dashboards undercount. The panel "
        "says why (the queue full, the store refusing, spans too old)."
    ),
    severity="critical",
    for_val="1m",
    runbook="spans-dropped",
    dashboard="collector_health",
    panel="Drops and refusals by reason",
)
ALERTS = (COLD_CACHE_SPIKE, PREFETCH_AMPLIFICATION, WARMUP_FAILURES, DROPPED_SPANS)
# What a notification groups by: one per rule and service, and per build for a cold cache.
GROUP_BY = ["grafana_folder", "alertname", "service", "build"]


def _panel_link(spec: AlertSpec) -> dict[str, str]:
    """Grafana's annotations that link a rule to the dashboard panel showing it."""
    dashboard = to_json(spec.dashboard)
    (panel_id,) = [p["id"] for p in dashboard["panels"] if p.get("title") == spec.panel]
    return {"__dashboardUid__": dashboard["uid"], "__panelId__": str(panel_id)}


def slow_list_path(spec: AlertSpec) -> str:
    """The path of nextrace's slow list of what fired ``spec``: a Grafana template of its
    labels (``urlquery``, Go's, escapes them); "" for a rule about no app. No time bound: the
    link is opened when someone reads it, which may be long after the alert fired."""
    if not spec.slow_list:
        return ""
    return "/slow?" + "&".join(
        f"{label}={{{{ urlquery $labels.{label} }}}}" for label in spec.slow_list
    )


def build(spec: AlertSpec, runbook_url: str = "", pages_url: str = "") -> model.Rule:
    """The rule of ``spec``; with ``runbook_url`` (where docs/runbook.md is published), its
    annotations link to the rule's section there, and otherwise name it; with ``pages_url``
    (where nextrace collect's pages answer), to the slow list of what fired, and otherwise
    name its path."""
    annotations = {"summary": spec.summary, "description": spec.description}
    if runbook_url:
        annotations["runbook_url"] = f"{runbook_url}#{spec.runbook}"
    else:  # Grafana shows it with the alert; nothing links nowhere
        annotations["runbook"] = f"docs/runbook.md#{spec.runbook} in nextrace's documentation"
    if path := slow_list_path(spec):
        if pages_url:
            annotations["slow_list_url"] = pages_url.rstrip("/") + path
        else:
            annotations["slow_list"] = f"{path} on the collector that holds the store"
    annotations.update(_panel_link(spec))
    source = (
        alerting.Query("A")
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(model.RelativeTimeRange(from_val=spec.range_s, to=0))
        .model(ClickHouseQueryBuilder(ClickHouseQuery(spec.sql(), "table")))
    )
    reduce = (
        alerting.Query("B")
        .datasource_uid(EXPRESSION_DATASOURCE)
        .model(expr.TypeReduce().ref_id("B").expression("A").reducer("last"))
    )
    threshold = (
        alerting.Query("C")
        .datasource_uid(EXPRESSION_DATASOURCE)
        .model(
            expr.TypeThreshold()
            .ref_id("C")
            .expression("B")
            .conditions(
                [
                    expr.ExprTypeThresholdConditions().evaluator(
                        expr.ExprTypeThresholdConditionsEvaluator()
                        .type(spec.comparison)
                        .params([spec.threshold])
                    )
                ]
            )
        )
    )
    return (
        alerting.Rule(spec.title)
        .uid(spec.uid)
        .folder_uid(FOLDER_UID)
        .rule_group(RULE_GROUP)
        .org_id(1)
        .condition("C")
        .queries([source, reduce, threshold])
        .for_val(spec.for_val)
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels({"source": "nextrace", "severity": spec.severity})
        .annotations(annotations)
        .build()
    )
