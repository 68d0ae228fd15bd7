"""Open the ClickHouse store named by a DSN: embedded chDB or a ClickHouse server.

Both go through ``clickhouse-connect``; only the way the client is created
differs. Opening the embedded store turns chDB's terse failures into errors
that say what to do, and :func:`open_store` leaves the schema migrated.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import threading
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from collector.config import StoreConfig
from collector.errors import StoreError, StoreLockedError
from collector.migrations import apply_migrations

log = logging.getLogger(__name__)

_TRANSIENT_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        425,  # SYSTEM_ERROR
    }
)
_CODE = re.compile(r"Code: (\d+)")


def is_transient(exc: BaseException) -> bool:
    """Whether a failed ClickHouse call may succeed if retried unchanged."""
    if isinstance(exc, OperationalError):
        return True
    match = _CODE.search(str(exc))
    return match is not None and int(match.group(1)) in _TRANSIENT_CODES


def store_owner_pid(path: Path) -> int | None:
    """The pid of the process that holds the embedded store ``path``, if one does.

    ClickHouse keeps an exclusive ``flock`` on ``<path>/status`` while it runs,
    and writes its pid into that file.
    """
    status = path / "status"
    try:
        handle = status.open("rb")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            match = re.search(rb"PID: (\d+)", handle.read(200))
            return int(match.group(1)) if match else 0
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def connect(config: StoreConfig) -> Client:
    """A client for the store, without touching the schema."""
    if config.interface == "chdb":
        return _connect_chdb(config)
    try:
        return clickhouse_connect.get_client(
            host=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            secure=config.secure,
        )
    except ClickHouseError as exc:
        raise StoreError(f"cannot reach the {config.describe()}: {exc}") from exc


def _connect_chdb(config: StoreConfig) -> Client:
    assert config.path is not None
    try:
        config.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {config.path}: {exc}") from exc
    try:
        return clickhouse_connect.get_client(interface="chdb", path=str(config.path))
    except ClickHouseError as exc:
        pid = store_owner_pid(config.path)
        if pid is not None:
            raise StoreLockedError(str(config.path), pid or None) from exc
        if "already initialized with path" in str(exc):
            raise StoreError(
                f"this process already has another embedded store open; chDB allows one "
                f"store folder per process, so {config.path} cannot be opened here"
            ) from exc
        raise StoreError(f"cannot open the {config.describe()}: {exc}") from exc


class ClickHouseStore:
    """An open store whose schema is up to date. ``close`` is idempotent."""

    def __init__(self, config: StoreConfig, client: Client) -> None:
        self.config = config
        self.client = client
        self._reader: Client | None = None
        self._reader_lock = threading.Lock()
        self._closed = False

    def query_raw(self, sql: str, fmt: str) -> bytes:
        """Run a reading ``sql`` and return the result in ClickHouse output format ``fmt``.

        Reads use a client of their own: chDB keeps per-query settings for the
        rest of a client's session, and ``readonly`` must never reach the writer.
        """
        with self._reader_lock:
            if self._reader is None:
                self._reader = connect(self.config)
                self._reader.database = self.config.database
            settings: dict[str, Any] = {"readonly": 2}
            result: bytes = self._reader.raw_query(sql, settings=settings, fmt=fmt)
        return result

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in (self._reader, self.client):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()


def open_store(config: StoreConfig, *, migrate: bool = True) -> ClickHouseStore:
    """Connect to the store and, unless ``migrate`` is false, bring its schema up to date."""
    client = connect(config)
    store = ClickHouseStore(config, client)
    if migrate:
        try:
            applied = apply_migrations(client, config)
        except Exception:
            store.close()
            raise
        for name in applied:
            log.info("applied migration %s to %s", name, config.describe())
    exists = client.query(
        "SELECT count() FROM system.databases WHERE name = {db:String}",
        parameters={"db": config.database},
    ).result_rows[0][0]
    if not exists:
        store.close()
        raise StoreError(
            f"the {config.describe()} has no database {config.database!r} yet: "
            "run `nextrace collect` once to create the schema"
        )
    # Unqualified table names in queries resolve to the store's database.
    client.database = config.database
    return store
