"""Push the datasource, folder, dashboards and alerting to a running Grafana, idempotently.

``nextrace dashboards provision --grafana-url … --token …`` uses grafana-client.
Every resource has a fixed uid (or name), so a second run updates what the first
created instead of adding copies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import alerts, files
from dashboards.build import DASHBOARDS, to_json
from dashboards.clickhouse import DATASOURCE_UID
from nextrace.errors import NextraceError


class PushError(NextraceError):
    """Grafana cannot be reached or refused a resource; the message says which."""


@dataclass(frozen=True)
class ClickHouseAccess:
    """How Grafana reaches ClickHouse (its HTTP interface)."""

    host: str
    port: int = 8123
    username: str = "default"
    password: str = ""


def _missing(exc: GrafanaClientError) -> bool:
    return bool(exc.status_code == 404)


def _upsert(
    exists: Callable[[], object], update: Callable[[], object], create: Callable[[], object]
) -> str:
    try:
        exists()
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        create()
        return "created"
    update()
    return "updated"


def _upsert_rule(api: GrafanaApi, spec: alerts.AlertSpec) -> str:
    rule: dict[str, Any] = json.loads(json.dumps(alerts.build(spec), cls=JSONEncoder))
    rules = api.alertingprovisioning
    return _upsert(
        lambda: rules.get_alertrule(spec.uid),
        lambda: rules.update_alertrule(spec.uid, rule),
        lambda: rules.create_alertrule(rule),
    )


def datasource_payload(access: ClickHouseAccess) -> dict[str, Any]:
    (source,) = files.datasource()["datasources"]
    payload: dict[str, Any] = json.loads(json.dumps(source))
    payload["jsonData"].update(host=access.host, port=access.port, username=access.username)
    payload["secureJsonData"] = {"password": access.password}
    return payload


def provision(
    grafana_url: str,
    token: str | None,
    access: ClickHouseAccess,
    alert_webhook: str,
    say: Callable[[str], None] = print,
) -> dict[str, str]:
    """Create or update every nextrace resource in the Grafana at ``grafana_url``.

    Raises :class:`PushError` with one line when Grafana is unreachable or refuses.
    """
    if not grafana_url.startswith(("http://", "https://")):
        raise PushError(f"the Grafana URL {grafana_url!r} needs a scheme: http://… or https://…")
    try:
        return _push(GrafanaApi.from_url(grafana_url, credential=token), access, alert_webhook, say)
    except OSError as exc:  # requests' errors are OSErrors; their text is a page of repr
        reason = type(exc).__name__
        raise PushError(f"cannot reach Grafana at {grafana_url} ({reason})") from exc
    except GrafanaException as exc:
        raise PushError(f"Grafana at {grafana_url} refused: {exc}") from exc


def _push(
    api: GrafanaApi, access: ClickHouseAccess, alert_webhook: str, say: Callable[[str], None]
) -> dict[str, str]:
    done: dict[str, str] = {}
    done["folder"] = _upsert(
        lambda: api.folder.get_folder(alerts.FOLDER_UID),
        lambda: api.folder.update_folder(
            alerts.FOLDER_UID, title=files.FOLDER_TITLE, overwrite=True
        ),
        lambda: api.folder.create_folder(files.FOLDER_TITLE, uid=alerts.FOLDER_UID),
    )
    source = datasource_payload(access)
    done["datasource"] = _upsert(
        lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID),
        lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, source),
        lambda: api.datasource.create_datasource(source),
    )
    for name in DASHBOARDS:
        api.dashboard.update_dashboard(
            {
                "dashboard": to_json(name),
                "folderUid": alerts.FOLDER_UID,
                "overwrite": True,
                "message": "provisioned by nextrace",
            }
        )
        done[f"dashboard {name}"] = "written"
    for spec in alerts.ALERTS:
        done[f"rule {spec.uid}"] = _upsert_rule(api, spec)
    (contact,) = files.alerting()["contactPoints"]
    (receiver,) = contact["receivers"]
    point = {
        "uid": receiver["uid"],
        "name": contact["name"],
        "type": receiver["type"],
        "settings": {"url": alert_webhook},
    }
    existing = api.alertingprovisioning.get_contactpoints(name=contact["name"])
    if existing:
        api.alertingprovisioning.update_contactpoint(receiver["uid"], point)
        done["contact point"] = "updated"
    else:
        api.alertingprovisioning.create_contactpoint(point)
        done["contact point"] = "created"
    (policy,) = files.alerting()["policies"]
    api.alertingprovisioning.set_notification_policy_tree(
        {"receiver": policy["receiver"], "group_by": policy["group_by"]}
    )
    done["notification policy"] = "set"
    for what, outcome in done.items():
        say(f"{what}: {outcome}")
    return done
