"""The ClickHouse datasource Grafana reads nextrace's tables through, for the provisioning file
and for the HTTP API alike.

The dashboards' queries name tables without a database, so the datasource's default database
is the one they read: a store in another database than ``otel`` needs only
``database=...`` here. The plugin speaks HTTP or ClickHouse's native protocol, each with or
without TLS (``secure``); ClickHouse Cloud is HTTPS on 8443.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from contract.errors import NextraceError
from dashboards.clickhouse import DATASOURCE_TYPE, DATASOURCE_UID

Protocol = Literal["http", "native"]
DATASOURCE_NAME = "nextrace ClickHouse"
DEFAULT_DATABASE = "otel"
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class DatasourceError(NextraceError):
    """A datasource option that Grafana could not use; the message says which."""


def protocol_named(name: str) -> Protocol:
    """The protocol called ``name``, or :class:`DatasourceError`."""
    if name == "http":
        return "http"
    if name == "native":
        return "native"
    raise DatasourceError(f"the protocol {name!r} is not http or native")


def default_port(protocol: Protocol, tls: bool) -> int:
    """ClickHouse's own port for ``protocol``: 8123 or 8443 (HTTPS), 9000 or 9440 (native)."""
    if protocol == "http":
        return 8443 if tls else 8123
    return 9440 if tls else 9000


@dataclass(frozen=True)
class ClickHouseAccess:
    """How Grafana reaches ClickHouse. In a provisioning file, ``host``, ``port``,
    ``username`` and ``password`` are Grafana environment variables (``$CLICKHOUSE_HOST``…),
    which Grafana expands; ``ca_cert`` is a PEM certificate (or such a variable) that signed
    the server's, for a private CA."""

    host: str
    port: int | str
    username: str = "default"
    password: str = ""
    database: str = DEFAULT_DATABASE
    protocol: Protocol = "http"
    tls: bool = False
    ca_cert: str = ""

    def __post_init__(self) -> None:
        if not _DATABASE.match(self.database):
            raise DatasourceError(
                f"the database name {self.database!r} is not a ClickHouse identifier "
                "(letters, digits and _, not starting with a digit)"
            )
        protocol_named(self.protocol)


def datasource(access: ClickHouseAccess) -> dict[str, Any]:
    """The datasource as Grafana's API takes it and as its provisioning file lists it."""
    json_data: dict[str, Any] = {
        "host": access.host,
        "port": access.port,
        "protocol": access.protocol,
        "secure": access.tls,
        "username": access.username,
        "defaultDatabase": access.database,
        # On a cluster, a subquery on a Distributed table inside a query on another runs once
        # and is sent to every shard (ClickHouse refuses it otherwise); no effect on one server.
        "customSettings": [{"setting": "distributed_product_mode", "value": "global"}],
        "traces": {
            "defaultDatabase": access.database,
            "defaultTable": "otel_traces",
            "otelEnabled": True,
            "otelVersion": "latest",
            "durationUnit": "nanoseconds",
        },
    }
    secure: dict[str, str] = {"password": access.password}
    if access.ca_cert:
        json_data["tlsAuthWithCACert"] = True
        secure["tlsCACert"] = access.ca_cert
    return {
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "uid": DATASOURCE_UID,
        "access": "proxy",
        "editable": False,
        "jsonData": json_data,
        "secureJsonData": secure,
    }
