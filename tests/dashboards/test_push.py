"""`nextrace dashboards provision` against a loopback stand-in for Grafana's HTTP API.

No Grafana server can run here; the stand-in keeps resources by uid and answers 404 for
missing ones, as Grafana does, so the test proves what grafana-client sends and that a
second run updates instead of duplicating. It starts as a shared Grafana does: another
team's contact points and policy tree are already there, and must stay as they were.
"""

from __future__ import annotations

import copy
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboards import alerts
from dashboards.build import DASHBOARDS
from dashboards.clickhouse import DATASOURCE_UID
from dashboards.datasource import ClickHouseAccess
from dashboards.push import provision
from tests.support.waiting import wait_until

PAYMENTS_PAGER = {"uid": "payments-pager", "name": "payments pager", "type": "pagerduty"}
ORG_TREE: dict[str, Any] = {
    "receiver": "grafana-default-email",
    "group_by": ["grafana_folder", "alertname"],
    "routes": [
        {
            "receiver": "payments pager",
            "object_matchers": [["team", "=", "payments"]],
            "group_wait": "10s",
        },
        {"receiver": "grafana-default-email", "object_matchers": [["severity", "=", "info"]]},
    ],
    "group_interval": "5m",
}


class FakeGrafana:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.store: dict[str, dict[str, Any]] = {
            "folders": {},
            "datasources": {},
            "dashboards": {},
            "rules": {},
            "contacts": {PAYMENTS_PAGER["uid"]: dict(PAYMENTS_PAGER)},
        }
        self.policy: dict[str, Any] = copy.deepcopy(ORG_TREE)
        self.policy_headers: list[str] = []
        self.auth: set[str] = set()

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            self.calls.append((request.method, request.url.path))
            self.auth.add(request.headers.get("authorization", ""))
            body = await request.json() if request.method in ("POST", "PUT") else {}
            if request.url.path.endswith("/provisioning/policies") and request.method == "PUT":
                self.policy_headers.append(request.headers.get("x-disable-provenance", ""))
            return self.route(request.method, request.url.path, dict(request.query_params), body)

        return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "PUT"])])

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        parts = path.strip("/").split("/")[1:]  # without "api"
        kind, key = self.kind_of(parts, body)
        table = self.store.get(kind, {})
        if kind == "policies":
            if method == "GET":
                return JSONResponse(self.policy)
            self.policy = body
            return JSONResponse({})
        if kind == "contacts" and method == "GET":
            return JSONResponse([c for c in table.values() if c["name"] == query.get("name")])
        if method == "GET":
            if key not in table:
                return JSONResponse({"message": "not found"}, 404)
            return JSONResponse(table[key])
        table[key] = body
        return JSONResponse({"uid": key, "status": "success"})

    @staticmethod
    def kind_of(parts: list[str], body: Any) -> tuple[str, str]:
        if parts[0] == "folders":
            return "folders", parts[1] if len(parts) > 1 else body["uid"]
        if parts[0] == "datasources":
            return "datasources", parts[2] if len(parts) > 2 else body["uid"]
        if parts[0] == "dashboards":
            return "dashboards", body["dashboard"]["uid"]
        resource = parts[2]
        if resource == "alert-rules":
            return "rules", parts[3] if len(parts) > 3 else body["uid"]
        if resource == "contact-points":
            return "contacts", parts[3] if len(parts) > 3 else body.get("uid", "")
        return "policies", ""


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the fake Grafana serves")
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_provisioning_creates_everything_once_and_updates_it_after(grafana):
    fake, url = grafana
    access = ClickHouseAccess("clickhouse.internal", 8123, "reader", "s3cret")
    hook = "https://hooks.example/alerts"
    first = provision(url, "glsa_token", access, hook, say=lambda _: None)
    assert first["folder"] == first["datasource"] == "created"
    assert all(first[f"rule {spec.uid}"] == "created" for spec in alerts.ALERTS)
    assert first["contact point"] == "created"
    uids = {kind: sorted(table) for kind, table in fake.store.items()}
    after_first = copy.deepcopy(fake.store["contacts"]), copy.deepcopy(fake.policy)

    second = provision(url, "glsa_token", access, hook, say=lambda _: None)
    assert second["folder"] == second["datasource"] == second["contact point"] == "updated"
    assert all(second[f"rule {spec.uid}"] == "updated" for spec in alerts.ALERTS)
    # A second run adds nothing, and leaves contact points and the tree as the first did.
    assert {kind: sorted(table) for kind, table in fake.store.items()} == uids
    assert (fake.store["contacts"], fake.policy) == after_first

    store = fake.store
    assert list(store["folders"]) == [alerts.FOLDER_UID]
    assert list(store["datasources"]) == [DATASOURCE_UID]
    source = store["datasources"][DATASOURCE_UID]
    assert source["jsonData"]["host"] == "clickhouse.internal"
    assert source["secureJsonData"] == {"password": "s3cret"}
    assert len(store["dashboards"]) == len(DASHBOARDS)
    assert sorted(store["rules"]) == sorted(spec.uid for spec in alerts.ALERTS)
    rule = store["rules"][alerts.COLD_CACHE_SPIKE.uid]
    assert rule["folderUID"] == alerts.FOLDER_UID
    assert rule["data"][0]["datasourceUid"] == DATASOURCE_UID
    assert fake.auth == {"Bearer glsa_token"}
    posts = [path for method, path in fake.calls if method == "POST" and "dashboards" not in path]
    assert len(posts) == 3 + len(alerts.ALERTS)  # folder, datasource, rules, contact: once


def test_a_shared_grafanas_policy_tree_and_contact_points_keep_everything_but_one_route(grafana):
    fake, url = grafana
    access = ClickHouseAccess("clickhouse.internal", 8123)
    provision(url, "glsa_token", access, "https://hooks.example/alerts", say=lambda _: None)

    # The other team's contact point is as it was; nextrace's posts to the webhook given.
    contacts = fake.store["contacts"]
    assert contacts[PAYMENTS_PAGER["uid"]] == PAYMENTS_PAGER
    (ours,) = [c for uid, c in contacts.items() if uid != PAYMENTS_PAGER["uid"]]
    assert ours["settings"] == {"url": "https://hooks.example/alerts"}
    # The tree: the organisation's root and routes untouched, nextrace's route first.
    nextrace, *others = fake.policy["routes"]
    assert others == ORG_TREE["routes"]
    assert {k: v for k, v in fake.policy.items() if k != "routes"} == {
        k: v for k, v in ORG_TREE.items() if k != "routes"
    }
    assert nextrace["receiver"] == ours["name"]
    assert nextrace["object_matchers"] == [["source", "=", "nextrace"]]
    assert {"service", "build"} <= set(nextrace["group_by"])
    # Every nextrace rule carries the label the route matches.
    assert all(r["labels"]["source"] == "nextrace" for r in fake.store["rules"].values())
    # The tree stays the organisation's to edit in Grafana's UI.
    assert fake.policy_headers == ["true"]


def test_without_a_webhook_no_contact_point_and_no_route_are_made(grafana):
    fake, url = grafana
    done = provision(url, "glsa_token", ClickHouseAccess("ch", 8123), say=lambda _: None)
    assert "organisation's policies" in done["contact point and route"]
    # Without a published runbook, each rule still names its section, and links nowhere.
    rule = fake.store["rules"][alerts.COLD_CACHE_SPIKE.uid]
    assert rule["annotations"]["runbook"].startswith("docs/runbook.md#cold-cache-spike")
    assert "runbook_url" not in rule["annotations"]
    assert fake.store["contacts"] == {PAYMENTS_PAGER["uid"]: PAYMENTS_PAGER}
    assert fake.policy == ORG_TREE
    assert not any(path.endswith("/policies") for _, path in fake.calls)
    assert len(fake.store["rules"]) == len(alerts.ALERTS)


def test_the_datasource_reaches_clickhouse_cloud_in_another_database(grafana, tmp_path):
    fake, url = grafana
    access = ClickHouseAccess(
        "abc.clickhouse.cloud",
        8443,
        "grafana",
        "s3cret",
        database="traces",
        tls=True,
        ca_cert="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    provision(url, "glsa_token", access, say=lambda _: None)
    source = fake.store["datasources"][DATASOURCE_UID]
    data = source["jsonData"]
    assert (data["host"], data["port"], data["protocol"], data["secure"]) == (
        "abc.clickhouse.cloud",
        8443,
        "http",
        True,
    )
    # The dashboards' queries name no database: the datasource's default is the one they read.
    assert data["defaultDatabase"] == data["traces"]["defaultDatabase"] == "traces"
    assert data["tlsAuthWithCACert"] is True
    assert source["secureJsonData"]["tlsCACert"].startswith("-----BEGIN CERTIFICATE-----")


def test_rules_link_their_runbook_section_and_their_panel(grafana):
    fake, url = grafana
    runbook = "https://docs.example/nextrace/runbook.html"
    provision(url, "t", ClickHouseAccess("ch", 8123), runbook_url=runbook, say=lambda _: None)
    rule = fake.store["rules"][alerts.DROPPED_SPANS.uid]
    assert rule["annotations"]["runbook_url"] == f"{runbook}#spans-dropped"
    assert "runbook" not in rule["annotations"]
    assert rule["annotations"]["__dashboardUid__"] == "nextrace-collector-health"
    assert rule["labels"]["severity"] == "critical"
