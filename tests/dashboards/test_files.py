"""Grafana's provisioning files agree with each other, the dashboards, the rules and deploy/."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dashboards import alerts
from dashboards.clickhouse import DATASOURCE_TYPE, DATASOURCE_UID
from dashboards.files import DASHBOARDS_PATH, write

ROOT = Path(__file__).resolve().parents[2]


def test_the_files_name_one_datasource_one_folder_and_every_rule(tmp_path):
    write(tmp_path)
    provisioning = tmp_path / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources/nextrace.yaml").read_text())[
        "datasources"
    ]
    assert (source["type"], source["uid"]) == (DATASOURCE_TYPE, DATASOURCE_UID)
    assert source["jsonData"]["traces"]["defaultTable"] == "otel_traces"
    assert source["jsonData"]["traces"]["otelEnabled"] is True

    (provider,) = yaml.safe_load((provisioning / "dashboards/nextrace.yaml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == DASHBOARDS_PATH
    assert provider["folderUid"] == alerts.FOLDER_UID

    alerting = yaml.safe_load((provisioning / "alerting/nextrace.yaml").read_text())
    (group,) = alerting["groups"]
    assert group["folder"] == provider["folder"]
    assert [r["uid"] for r in group["rules"]] == [spec.uid for spec in alerts.ALERTS]
    for rule in group["rules"]:
        assert rule["data"][0]["datasourceUid"] == DATASOURCE_UID
        assert "for" in rule
    assert alerting["policies"][0]["receiver"] == alerting["contactPoints"][0]["name"]

    for dashboard in (tmp_path / "dashboards").glob("*.json"):
        document = json.loads(dashboard.read_text())
        for panel in document["panels"]:
            assert panel["datasource"]["uid"] == DATASOURCE_UID


def test_the_compose_grafana_reads_the_built_files():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    assert mounts[DASHBOARDS_PATH] == "../grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "../grafana/provisioning"
    clickhouse_user = compose["services"]["clickhouse"]["environment"]["CLICKHOUSE_USER"]
    assert grafana["environment"]["CLICKHOUSE_USER"] == clickhouse_user
