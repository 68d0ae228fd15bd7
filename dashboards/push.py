"""Push the datasource, folder, dashboards and alerting to a running Grafana, idempotently.

``nextrace dashboards provision --grafana-url … --token …`` uses grafana-client.
Every resource has a fixed uid (or name), so a second run updates what the first
created instead of adding copies. Grafana may be shared: with a webhook, nextrace adds its
contact point and one child route to the organisation's policy tree (``dashboards/policy.py``),
and touches no other contact point or route; without one, it adds neither, and its alerts
follow the organisation's own policies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from contract.errors import NextraceError
from dashboards import alerts, files, policy
from dashboards.build import DASHBOARDS, to_json
from dashboards.clickhouse import DATASOURCE_UID
from dashboards.datasource import ClickHouseAccess, datasource


class PushError(NextraceError):
    """Grafana cannot be reached or refused a resource; the message says which."""


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


def _upsert_rule(api: GrafanaApi, spec: alerts.AlertSpec, runbook_url: str, pages_url: str) -> str:
    built = alerts.build(spec, runbook_url, pages_url)
    rule: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
    rules = api.alertingprovisioning
    return _upsert(
        lambda: rules.get_alertrule(spec.uid),
        lambda: rules.update_alertrule(spec.uid, rule),
        lambda: rules.create_alertrule(rule),
    )


def _upsert_contact_point(api: GrafanaApi, webhook: str) -> str:
    (receiver,) = files.contact_point(webhook)["receivers"]
    point = {
        "uid": receiver["uid"],
        "name": files.CONTACT_POINT,
        "type": receiver["type"],
        "settings": receiver["settings"],
    }
    if api.alertingprovisioning.get_contactpoints(name=files.CONTACT_POINT):
        api.alertingprovisioning.update_contactpoint(receiver["uid"], point)
        return "updated"
    api.alertingprovisioning.create_contactpoint(point)
    return "created"


def provision(
    grafana_url: str,
    token: str | None,
    access: ClickHouseAccess,
    alert_webhook: str = "",
    runbook_url: str = "",
    say: Callable[[str], None] = print,
    pages_url: str = "",
) -> dict[str, str]:
    """Create or update every nextrace resource in the Grafana at ``grafana_url``: with
    ``alert_webhook``, its contact point and route too; with ``runbook_url`` (where
    docs/runbook.md is published), rules link to their sections there; with ``pages_url``
    (where nextrace collect's pages answer), dashboards and rules link to them.

    Raises :class:`PushError` with one line when Grafana is unreachable or refuses.
    """
    if not grafana_url.startswith(("http://", "https://")):
        raise PushError(f"the Grafana URL {grafana_url!r} needs a scheme: http://… or https://…")
    try:
        api = GrafanaApi.from_url(grafana_url, credential=token)
        return _push(api, access, alert_webhook, runbook_url, pages_url, say)
    except OSError as exc:  # requests' errors are OSErrors; their text is a page of repr
        reason = type(exc).__name__
        raise PushError(f"cannot reach Grafana at {grafana_url} ({reason})") from exc
    except GrafanaException as exc:
        raise PushError(f"Grafana at {grafana_url} refused: {exc}") from exc


def _push(
    api: GrafanaApi,
    access: ClickHouseAccess,
    alert_webhook: str,
    runbook_url: str,
    pages_url: str,
    say: Callable[[str], None],
) -> dict[str, str]:
    done: dict[str, str] = {}
    done["folder"] = _upsert(
        lambda: api.folder.get_folder(alerts.FOLDER_UID),
        lambda: api.folder.update_folder(
            alerts.FOLDER_UID, title=files.FOLDER_TITLE, overwrite=True
        ),
        lambda: api.folder.create_folder(files.FOLDER_TITLE, uid=alerts.FOLDER_UID),
    )
    source = datasource(access)
    done["datasource"] = _upsert(
        lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID),
        lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, source),
        lambda: api.datasource.create_datasource(source),
    )
    for name in DASHBOARDS:
        api.dashboard.update_dashboard(
            {
                "dashboard": to_json(name, pages_url),
                "folderUid": alerts.FOLDER_UID,
                "overwrite": True,
                "message": "provisioned by nextrace",
            }
        )
        done[f"dashboard {name}"] = "written"
    for spec in alerts.ALERTS:
        done[f"rule {spec.uid}"] = _upsert_rule(api, spec, runbook_url, pages_url)
    if alert_webhook:
        done["contact point"] = _upsert_contact_point(api, alert_webhook)
        tree = api.alertingprovisioning.get_notification_policy_tree()
        # Not locked as provisioned: the tree is the organisation's, still theirs to edit.
        api.alertingprovisioning.set_notification_policy_tree(
            policy.with_route(tree, files.CONTACT_POINT), disable_provenance=True
        )
        done["notification route"] = "set (source=nextrace, first child of the root)"
    else:
        done["contact point and route"] = (
            "skipped, no --alert-webhook: alerts follow the organisation's policies"
        )
    for what, outcome in done.items():
        say(f"{what}: {outcome}")
    return done
