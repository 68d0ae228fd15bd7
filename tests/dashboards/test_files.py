"""Grafana's provisioning files agree with each other, the dashboards, the rules and deploy/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import alerts, policy
from dashboards.build import to_json
from dashboards.clickhouse import DATASOURCE_TYPE, DATASOURCE_UID
from dashboards.files import CONTACT_POINT, DASHBOARDS_PATH, file_access, write

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
        assert rule["for"] != "0s"
    # No tree, which would replace the organisation's; no contact point without a webhook.
    assert set(alerting) == {"apiVersion", "groups"}

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
    # No webhook that points nowhere: alerts follow Grafana's own policy unless one is given.
    assert "example.invalid" not in json.dumps(grafana["environment"])


def test_a_webhook_makes_a_contact_point_and_options_reach_the_datasource(tmp_path):
    write(tmp_path, file_access("traces", "native", tls=True), "$NEXTRACE_ALERT_WEBHOOK")
    provisioning = tmp_path / "provisioning"
    alerting = yaml.safe_load((provisioning / "alerting/nextrace.yaml").read_text())
    (point,) = alerting["contactPoints"]
    assert point["name"] == CONTACT_POINT
    # Written as given: Grafana expands its own environment variables in provisioning files.
    assert point["receivers"][0]["settings"]["url"] == "$NEXTRACE_ALERT_WEBHOOK"
    assert "policies" not in alerting
    (source,) = yaml.safe_load((provisioning / "datasources/nextrace.yaml").read_text())[
        "datasources"
    ]
    data = source["jsonData"]
    assert (data["protocol"], data["secure"], data["defaultDatabase"]) == ("native", True, "traces")
    assert data["traces"]["defaultDatabase"] == "traces"
    assert source["secureJsonData"] == {"password": "$CLICKHOUSE_PASSWORD"}  # never a secret


def test_every_rule_links_a_runbook_section_and_a_panel_that_exist():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("## ")
    }
    for spec in alerts.ALERTS:
        assert spec.runbook in headings, spec.uid
        rule = json.loads(json.dumps(alerts.build(spec, "https://x/runbook"), cls=JSONEncoder))
        annotations = rule["annotations"]
        assert annotations["runbook_url"] == f"https://x/runbook#{spec.runbook}"
        dashboard = to_json(spec.dashboard)
        assert annotations["__dashboardUid__"] == dashboard["uid"]
        (panel,) = [p for p in dashboard["panels"] if str(p["id"]) == annotations["__panelId__"]]
        assert panel["title"] == spec.panel
        assert "$values.B.Value" in annotations["description"], spec.uid


def test_the_route_the_runbook_tells_to_paste_is_the_one_provisioning_adds():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    snippet = runbook.split("Add this route", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(snippet) == [policy.route(CONTACT_POINT)]
