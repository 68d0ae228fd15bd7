"""`nextrace dashboards provision` against a loopback stand-in for Grafana's HTTP API.

No Grafana server can run here; the stand-in keeps resources by uid and answers 404 for
missing ones, as Grafana does, so the test proves what grafana-client sends and that a
second run updates instead of duplicating.
"""

from __future__ import annotations

import socket
import threading
import time
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
from dashboards.push import ClickHouseAccess, provision


class FakeGrafana:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.store: dict[str, dict[str, Any]] = {
            "folders": {},
            "datasources": {},
            "dashboards": {},
            "rules": {},
            "contacts": {},
        }
        self.policy: dict[str, Any] = {}
        self.auth: set[str] = set()

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            self.calls.append((request.method, request.url.path))
            self.auth.add(request.headers.get("authorization", ""))
            body = await request.json() if request.method in ("POST", "PUT") else {}
            return self.route(request.method, request.url.path, dict(request.query_params), body)

        return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "PUT"])])

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        parts = path.strip("/").split("/")[1:]  # without "api"
        kind, key = self.kind_of(parts, body)
        table = self.store.get(kind, {})
        if kind == "policies":
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
    while not server.started:
        time.sleep(0.05)
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_provisioning_creates_everything_once_and_updates_it_after(grafana):
    fake, url = grafana
    access = ClickHouseAccess("clickhouse.internal", 8123, "reader", "s3cret")
    first = provision(url, "glsa_token", access, "https://hooks.example/alerts", say=lambda _: None)
    assert first["folder"] == first["datasource"] == "created"
    assert all(first[f"rule {spec.uid}"] == "created" for spec in alerts.ALERTS)
    assert first["contact point"] == "created"

    second = provision(
        url, "glsa_token", access, "https://hooks.example/alerts", say=lambda _: None
    )
    assert second["folder"] == second["datasource"] == second["contact point"] == "updated"
    assert all(second[f"rule {spec.uid}"] == "updated" for spec in alerts.ALERTS)

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
    assert len(store["contacts"]) == 1
    assert fake.policy["receiver"] == "nextrace on-call"
    assert fake.auth == {"Bearer glsa_token"}
    posts = [path for method, path in fake.calls if method == "POST" and "dashboards" not in path]
    assert len(posts) == 3 + len(
        alerts.ALERTS
    )  # folder, datasource, rules, contact: first run only
