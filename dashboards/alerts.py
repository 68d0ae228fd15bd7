"""Grafana-managed alert rules on ClickHouse, built with grafana-foundation-sdk.

Each rule is query A (ClickHouse, no dashboard variables and no frontend
macros: Grafana evaluates rules on the server), B = reduce A to its last
value per series, and C = a threshold on B, the rule's condition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.models import alerting as model

from dashboards.clickhouse import (
    DATASOURCE_UID,
    ClickHouseQuery,
    ClickHouseQueryBuilder,
    load_sql,
)

FOLDER_UID = "nextrace"
RULE_GROUP = "nextrace"
EXPRESSION_DATASOURCE = "__expr__"


@dataclass(frozen=True)
class AlertSpec:
    uid: str
    title: str
    sql_name: str  # dashboards/sql/alerts/<sql_name>.sql
    threshold: float
    range_s: int  # how far back query A looks
    summary: str
    for_val: str = "0s"
    comparison: Literal["gt", "lt"] = "gt"
    windows: dict[str, int] = field(default_factory=dict)  # {name} in the SQL -> seconds

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
    summary="The miss ratio of the {{ $labels.layer }} cache rose far above its recent baseline",
    windows={"recent_s": 120},
)
PREFETCH_AMPLIFICATION = AlertSpec(
    uid="nextrace-prefetch-amplification",
    title="Prefetch amplification",
    sql_name="prefetch_amplification",
    threshold=3.0,
    range_s=3600,
    summary="{{ $labels.service }} serves over 3 times its usual prefetches per navigation",
    windows={"recent_s": 300},
)
WARMUP_FAILURES = AlertSpec(
    uid="nextrace-warmup-failures",
    title="Warm-ups failing or backlogged",
    sql_name="warmup_failures",
    threshold=0.2,
    range_s=600,
    summary="Over 20 % of {{ $labels.trigger }} warm-ups failed or found the queue full",
)
DROPPED_SPANS = AlertSpec(
    uid="nextrace-dropped-spans",
    title="Spans dropped",
    sql_name="dropped_spans",
    threshold=0.0,
    range_s=600,
    summary="The collector {{ $labels.instance }} dropped spans: see Collector health",
)
ALERTS = (COLD_CACHE_SPIKE, PREFETCH_AMPLIFICATION, WARMUP_FAILURES, DROPPED_SPANS)


def build(spec: AlertSpec) -> model.Rule:
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
        .labels({"team": "sre", "source": "nextrace"})
        .annotations({"summary": spec.summary})
        .build()
    )
