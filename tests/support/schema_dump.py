"""``collector/sql/schema.sql`` as the migrations leave a store: every table and view, in the
form ``SHOW CREATE`` gives, with the store's names and engines as placeholders.

``python -m tests.support.schema_dump`` writes it again after a migration is added;
``tests/collector/test_schema.py`` fails, showing the difference, until it is."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from clickhouse_connect.driver.client import Client

from collector.config import StoreConfig
from collector.storage.migrations import apply_migrations
from collector.storage.store import connect

SCHEMA = Path(__file__).resolve().parents[2] / "collector" / "sql" / "schema.sql"
HEADER = """\
-- Every table and view of a nextrace store, as it is now. A new store is made from this file;
-- a store made by an earlier release (or by the OpenTelemetry Collector's exporter) is brought
-- here by the migrations, NNNN_*.sql, which say why each thing is as it is.
-- tests/collector/test_schema.py holds both ways to the same SHOW CREATE of every object;
-- `python -m tests.support.schema_dump` writes this file again after a migration is added.
"""
TTL_DAYS = 7  # any number: the TTL clauses become placeholders
_TTLS = {
    f"TTL toDateTime(Timestamp) + toIntervalDay({TTL_DAYS})": "${ttl_timestamp}",
    f"TTL toDateTime(Start) + toIntervalDay({TTL_DAYS})": "${ttl_start}",
    f"TTL Minute + toIntervalDay({TTL_DAYS})": "${ttl_minute}",
}


def created(client: Client, database: str) -> dict[str, str]:
    """``SHOW CREATE`` of every table and view of ``database`` but the migrations' own table,
    by name: tables first, then views, each in name order (the order they can be made in)."""
    rows = client.query(
        "SELECT name, engine LIKE '%View' FROM system.tables WHERE database = {d:String} "
        "AND name != 'nextrace_schema_migrations' ORDER BY 2, name",
        parameters={"d": database},
    ).result_rows
    return {
        name: client.query(f"SHOW CREATE TABLE `{database}`.`{name}`").result_rows[0][0]
        for name, _ in rows
    }


def as_template(statement: str, database: str, table: str) -> str:
    """A ``SHOW CREATE`` statement with the store's names, engines and TTLs as placeholders."""
    for clause, placeholder in _TTLS.items():
        statement = statement.replace(clause, placeholder)
    # Every name SHOW CREATE writes is qualified by its database; each is quoted.
    statement = re.sub(rf"\b{database}\.(\w+)", r"`${database}`.`\1`", statement)
    statement = statement.replace(f"`{table}", "`${table}")
    statement = statement.replace("ENGINE = SummingMergeTree", "ENGINE = ${summing_engine}")
    return statement.replace("ENGINE = MergeTree", "ENGINE = ${engine}")


def migrated_schema(config: StoreConfig) -> str:
    """The text of ``schema.sql`` for the schema the migrations make in the new database of
    ``config`` (whose ``ttl_days`` must be :data:`TTL_DAYS`)."""
    assert config.ttl_days == TTL_DAYS
    client = connect(config)
    apply_migrations(client, config, from_schema=False)
    statements = created(client, config.database).values()
    return HEADER + "".join(
        as_template(s, config.database, config.traces_table) + ";\n" for s in statements
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        store = StoreConfig.from_dsn(f"chdb://{folder}/store", ttl_days=TTL_DAYS)
        SCHEMA.write_text(migrated_schema(store), encoding="utf-8")
    print(f"wrote {SCHEMA}")
