"""Read-only SQL against the store, for people and tools other than the collector.

chDB lets one process open a store folder at a time, so while a collector
owns an embedded store, reads must go through it: the collector writes its
address to ``<store>/nextrace-collector.json`` and serves ``POST /sql``
(loopback clients only). :func:`run_read_query` picks the route.

Which statements run is decided by :mod:`collector.storage.read_guard` on ClickHouse's
own AST, and each runs read-only under fixed limits (:meth:`ClickHouseStore.read`).
A collector started with a token wants it here too: ``NEXTRACE_TOKEN`` or
``NEXTRACE_TOKEN_FILE`` (:mod:`collector.ingest.auth`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import httpx

from collector.config import StoreConfig
from collector.errors import QueryFailed, ReadOnlyViolation, StoreError, StoreLockedError
from collector.ingest.auth import auth_headers, load_token
from collector.storage.store import open_store, store_owner_pid

ENDPOINT_FILE = "nextrace-collector.json"
_FORMAT = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_PARAMETER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
QueryValue = str | int | float | bool | list[str] | list[int] | list[float]


def check_format(fmt: str) -> str:
    if not _FORMAT.match(fmt):
        raise ReadOnlyViolation(f"invalid output format {fmt!r}")
    return fmt


def check_parameters(parameters: object) -> dict[str, QueryValue]:
    """``parameters`` as the driver takes them: names of placeholders to a string, a number, a
    boolean, or a list of them (for ``Array`` placeholders); anything else is refused."""
    if not isinstance(parameters, dict):
        raise ReadOnlyViolation("query parameters must be an object of names to values")
    for name, value in parameters.items():
        if not (isinstance(name, str) and _PARAMETER.match(name)):
            raise ReadOnlyViolation(f"invalid query parameter name {name!r}")
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise ReadOnlyViolation(f"query parameter {name!r} is not a string, number or list")
    return parameters


def announce(config: StoreConfig, url: str) -> None:
    """Say, beside the embedded store ``config`` names, that this process holds it and answers
    its reads at ``url`` (:func:`owning_collector` reads it); nothing for a server."""
    if config.interface == "chdb" and config.path is not None:
        info = {"url": url, "pid": os.getpid()}
        (config.path / ENDPOINT_FILE).write_text(json.dumps(info), encoding="utf-8")


def withdraw(config: StoreConfig) -> None:
    """Take back what :func:`announce` said, once this process no longer answers."""
    if config.interface == "chdb" and config.path is not None:
        with contextlib.suppress(OSError):
            (config.path / ENDPOINT_FILE).unlink()


def read_endpoint(store_path: Path, owner_pid: int) -> str | None:
    """The URL of the collector ``owner_pid`` that holds ``store_path``, if it serves one."""
    try:
        info = json.loads((store_path / ENDPOINT_FILE).read_text(encoding="utf-8"))
        if int(info["pid"]) != owner_pid:
            return None  # left behind by a collector that did not stop cleanly
        return str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_read_query(
    config: StoreConfig,
    sql: str,
    fmt: str = "PrettyCompact",
    parameters: Mapping[str, QueryValue] | None = None,
) -> bytes:
    """Run one read-only statement on the store, through its collector if one owns it.
    ``parameters`` fill its ``{name:Type}`` placeholders."""
    check_format(fmt)
    parameters = check_parameters(parameters or {})
    url = owning_collector(config)
    if url is not None:
        return query_collector(url, sql, fmt, parameters)
    store = open_store(config, migrate=False)
    try:
        return store.read(sql, fmt, parameters=parameters)
    finally:
        store.close()


def owning_collector(config: StoreConfig) -> str | None:
    """The URL of the running collector that holds the embedded store ``config`` names, whose
    reads must go through it; None when no other process holds it, or it is a server."""
    if config.interface != "chdb":
        return None
    assert config.path is not None
    owner = store_owner_pid(config.path)
    if owner is None or owner == os.getpid():
        return None
    url = read_endpoint(config.path, owner)
    if url is None:
        raise StoreLockedError(str(config.path), owner or None)
    return url


def query_collector(url: str, sql: str, fmt: str, parameters: Mapping[str, QueryValue]) -> bytes:
    """Run one read-only statement through the collector at ``url`` (its ``POST /sql``)."""
    try:
        response = httpx.post(
            f"{url}/sql",
            json={"query": sql, "format": fmt, "parameters": dict(parameters)},
            headers=auth_headers(load_token()),
            timeout=120,
        )
    except httpx.HTTPError as exc:
        raise StoreError(
            f"the collector at {url} owns the store but did not answer: {exc}"
        ) from exc
    if response.status_code == 400:
        raise QueryFailed(response.text.strip())
    if response.status_code != 200:
        raise StoreError(f"query failed ({response.status_code}): {response.text.strip()}")
    return response.content
