"""Grafana's file provisioning for nextrace: the datasource, the dashboards, the alert rules.

``nextrace dashboards build --out DIR`` writes ``DIR/dashboards/*.json`` and
``DIR/provisioning/{datasources,dashboards,alerting}/nextrace.yaml``: point
Grafana's ``paths.provisioning`` at ``DIR/provisioning`` and mount
``DIR/dashboards`` at :data:`DASHBOARDS_PATH`. Values that differ per
installation are Grafana environment variables (``$CLICKHOUSE_HOST``…), which
Grafana expands in provisioning files. All three files use one datasource uid
and one folder uid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import alerts
from dashboards.build import DASHBOARDS, to_json
from dashboards.clickhouse import DATASOURCE_TYPE, DATASOURCE_UID

DASHBOARDS_PATH = "/var/lib/grafana/dashboards/nextrace"
FOLDER_TITLE = "nextrace"
CONTACT_POINT = "nextrace on-call"


def datasource() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "nextrace ClickHouse",
                "type": DATASOURCE_TYPE,
                "uid": DATASOURCE_UID,
                "access": "proxy",
                "editable": False,
                "jsonData": {
                    "host": "$CLICKHOUSE_HOST",
                    "port": "$CLICKHOUSE_PORT",
                    "protocol": "http",
                    "username": "$CLICKHOUSE_USER",
                    "defaultDatabase": "otel",
                    "traces": {
                        "defaultDatabase": "otel",
                        "defaultTable": "otel_traces",
                        "otelEnabled": True,
                        "otelVersion": "latest",
                        "durationUnit": "nanoseconds",
                    },
                },
                "secureJsonData": {"password": "$CLICKHOUSE_PASSWORD"},
            }
        ],
    }


def dashboard_provider() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "nextrace",
                "type": "file",
                "folder": FOLDER_TITLE,
                "folderUid": alerts.FOLDER_UID,
                "disableDeletion": False,
                "updateIntervalSeconds": 30,
                "allowUiUpdates": False,
                "options": {"path": DASHBOARDS_PATH},
            }
        ],
    }


def _file_rule(spec: alerts.AlertSpec) -> dict[str, Any]:
    """A rule in the file-provisioning shape: the group, not the rule, names folder and org."""
    api: dict[str, Any] = json.loads(json.dumps(alerts.build(spec), cls=JSONEncoder))
    return {
        "uid": api["uid"],
        "title": api["title"],
        "condition": api["condition"],
        "data": api["data"],
        "noDataState": api["noDataState"],
        "execErrState": api["execErrState"],
        "for": api["for"],
        "labels": api["labels"],
        "annotations": api["annotations"],
        "isPaused": False,
    }


def alerting() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": alerts.RULE_GROUP,
                "folder": FOLDER_TITLE,
                "interval": "1m",
                "rules": [_file_rule(spec) for spec in alerts.ALERTS],
            }
        ],
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": [
                    {
                        "uid": "nextrace-oncall",
                        "type": "webhook",
                        "settings": {"url": "$NEXTRACE_ALERT_WEBHOOK"},
                        "disableResolveMessage": False,
                    }
                ],
            }
        ],
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname"],
            }
        ],
    }


def write(out: Path) -> list[Path]:
    """Write the dashboards and the provisioning files under ``out``; return the files."""
    written = []
    dashboards_dir = out / "dashboards"
    dashboards_dir.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        path = dashboards_dir / f"{name}.json"
        path.write_text(json.dumps(to_json(name), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    for kind, document in (
        ("datasources", datasource()),
        ("dashboards", dashboard_provider()),
        ("alerting", alerting()),
    ):
        path = out / "provisioning" / kind / "nextrace.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
