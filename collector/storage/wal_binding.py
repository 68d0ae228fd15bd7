"""A write-ahead log bound to its store: it replays only into the store it was written for.

The store lists the logs that write to it (``nextrace_wal_logs``, by the id each log made
when it was created, see :mod:`collector.pipeline.wal`), and a log remembers that a store listed it
(``bound``). On start, right after the log is opened and before it replays,
:func:`bind_log_to_store` looks the log up in the store:

- listed: the log is this store's;
- not listed, and the log was bound before (to another store, or to this one before it was
  emptied) with requests not yet stored: refused, in one line that names both and says what
  to do. Replaying them here would store in this store what was acknowledged for another,
  and leave that one without them;
- not listed, bound before, and nothing left to store: the log takes a new id, bound to this
  store, and lets go of what it held for the other;
- a new log, or one an earlier release wrote (whose requests are adopted by the store it is
  started with, as that release would have done): listed.

It also counts, in the collector's telemetry, what opening the log found damaged or missing
(the log has logged each as an error, naming its segment).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.errors import ConfigError, StoreError
from collector.pipeline.wal import WriteAheadLog
from collector.storage.store import ClickHouseStore
from collector.telemetry import CollectorTelemetry

log = logging.getLogger(__name__)

TABLE = "nextrace_wal_logs"


def bind_log_to_store(
    wal: WriteAheadLog, store: ClickHouseStore, telemetry: CollectorTelemetry
) -> None:
    """Bind the opened ``wal`` to ``store`` (see the module docstring); ConfigError if it holds
    requests for another store. Call it before the log replays."""
    telemetry.wal_damage(wal.records_lost, wal.bytes_damaged)
    if not is_listed(store, wal.id):
        if wal.bound and wal.unstored:
            raise ConfigError(
                f"the write-ahead log in {wal.directory} (log {wal.id}) holds {wal.unstored} "
                f"request(s) not yet stored, acknowledged for another store: the "
                f"{store.config.describe()} does not list it. Start the collector with the "
                f"store the log was written for; or, to store them in this one, delete "
                f"{wal.directory / 'log.json'}; or, to discard them, move {wal.directory} away"
            )
        if wal.bound:
            former = wal.id
            _in_folder(wal, wal.renew)
            log.info(
                "the write-ahead log in %s, stored in full, now writes to the %s as log %s "
                "(it was log %s)",
                wal.directory,
                store.config.describe(),
                wal.id,
                former,
            )
        _list(store, wal)
    if not wal.bound:
        _in_folder(wal, wal.mark_bound)


def _in_folder(wal: WriteAheadLog, change: Callable[[], None]) -> None:
    """Make ``change`` to the log's folder; ConfigError if it cannot be written."""
    try:
        change()
    except OSError as exc:
        raise ConfigError(f"cannot write to the write-ahead log in {wal.directory}: {exc}") from exc


def is_listed(store: ClickHouseStore, log_id: str) -> bool:
    """Whether ``store`` lists the log ``log_id``."""
    try:
        result = store.client.query(
            f"SELECT count() FROM `{store.config.database}`.`{TABLE}` WHERE LogId = {{id:String}}",
            parameters={"id": log_id},
        )
    except ClickHouseError as exc:
        raise StoreError(f"cannot read which write-ahead logs the store lists: {exc}") from exc
    return bool(result.result_rows[0][0])


def _list(store: ClickHouseStore, wal: WriteAheadLog) -> None:
    try:
        store.client.insert(
            TABLE,
            [[wal.id, str(wal.directory), socket.gethostname()]],
            database=store.config.database,
            column_names=["LogId", "Folder", "Host"],
        )
    except ClickHouseError as exc:
        raise StoreError(f"cannot list the write-ahead log in the store: {exc}") from exc
