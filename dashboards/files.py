"""Grafana's file provisioning for nextrace: the datasource, the dashboards, the alert rules.

``nextrace dashboards build --out DIR`` writes ``DIR/dashboards/*.json`` and
``DIR/provisioning/{datasources,dashboards,alerting}/nextrace.yaml``: point
Grafana's ``paths.provisioning`` at ``DIR/provisioning`` and mount
``DIR/dashboards`` at :data:`DASHBOARDS_PATH`. The ClickHouse host, port, user and
password are Grafana environment variables (``$CLICKHOUSE_HOST``…), which Grafana
expands in provisioning files. All three files use one datasource uid and one folder
uid. The alerting file holds no notification policy tree (it would replace the
organisation's), and a contact point only when given a webhook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import alerts
from dashboards.build import DASHBOARDS, to_json
from dashboards.datasource import DEFAULT_DATABASE, ClickHouseAccess, Protocol, datasource

DASHBOARDS_PATH = "/var/lib/grafana/dashboards/nextrace"
FOLDER_TITLE = "nextrace"
CONTACT_POINT = "nextrace on-call"
CONTACT_POINT_UID = "nextrace-oncall"


def file_access(
    database: str = DEFAULT_DATABASE, protocol: Protocol = "http", tls: bool = False
) -> ClickHouseAccess:
    """The datasource of the provisioning file: where and as whom are Grafana's environment
    variables, so that no password is written to a file."""
    return ClickHouseAccess(
        host="$CLICKHOUSE_HOST",
        port="$CLICKHOUSE_PORT",
        username="$CLICKHOUSE_USER",
        password="$CLICKHOUSE_PASSWORD",
        database=database,
        protocol=protocol,
        tls=tls,
    )


def datasources(access: ClickHouseAccess) -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [datasource(access)]}


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


def _file_rule(spec: alerts.AlertSpec, runbook_url: str, pages_url: str) -> dict[str, Any]:
    """A rule in the file-provisioning shape: the group, not the rule, names folder and org."""
    api: dict[str, Any] = json.loads(
        json.dumps(alerts.build(spec, runbook_url, pages_url), cls=JSONEncoder)
    )
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


def contact_point(webhook: str) -> dict[str, Any]:
    """nextrace's contact point, posting to ``webhook``."""
    return {
        "orgId": 1,
        "name": CONTACT_POINT,
        "receivers": [
            {
                "uid": CONTACT_POINT_UID,
                "type": "webhook",
                "settings": {"url": webhook},
                "disableResolveMessage": False,
            }
        ],
    }


def alerting(webhook: str = "", runbook_url: str = "", pages_url: str = "") -> dict[str, Any]:
    """The rules; with ``webhook``, nextrace's contact point too. Never a policy tree, which
    would replace the organisation's (``dashboards/policy.py``)."""
    document: dict[str, Any] = {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": alerts.RULE_GROUP,
                "folder": FOLDER_TITLE,
                "interval": "1m",
                "rules": [_file_rule(spec, runbook_url, pages_url) for spec in alerts.ALERTS],
            }
        ],
    }
    if webhook:
        document["contactPoints"] = [contact_point(webhook)]
    return document


def write(
    out: Path,
    access: ClickHouseAccess | None = None,
    webhook: str = "",
    runbook_url: str = "",
    pages_url: str = "",
) -> list[Path]:
    """Write the dashboards and the provisioning files under ``out``; return the files.
    ``pages_url``: where nextrace collect's pages answer, for the links of the dashboards
    and of the alerts."""
    written = []
    dashboards_dir = out / "dashboards"
    dashboards_dir.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        path = dashboards_dir / f"{name}.json"
        path.write_text(json.dumps(to_json(name, pages_url), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    for kind, document in (
        ("datasources", datasources(access or file_access())),
        ("dashboards", dashboard_provider()),
        ("alerting", alerting(webhook, runbook_url, pages_url)),
    ):
        path = out / "provisioning" / kind / "nextrace.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
