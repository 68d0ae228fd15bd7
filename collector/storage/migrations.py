"""Versioned schema migrations, kept as ``.sql`` files in ``collector/sql/``.

A migration file is named ``NNNN_description.sql`` and holds one statement, or
several, each ending with ``;`` at the end of a line.
Applied versions are recorded in ``<database>.nextrace_schema_migrations``,
so a later release adds a file and existing data is kept. Statements use
``CREATE … IF NOT EXISTS``, so a store first created by the official
OpenTelemetry Collector exporter is adopted as it is.

Only validated identifiers are filled into the SQL text (see
:mod:`collector.config`); the placeholders are ``${database}``, ``${table}``,
``${on_cluster}``, ``${engine}`` (and ``${summing_engine}``, its SummingMergeTree
counterpart), ``${ttl_timestamp}``, ``${ttl_start}`` and ``${ttl_minute}``; one more,
``${next_phase_branches}``, is the span-type → phase map of :mod:`contract.nextjs`.

A backfill, which fills a new table from rows stored before its materialized view
existed, runs the view's own query: ``${select_of_NNNN}`` is the ``SELECT`` of the
view created by migration ``NNNN``, so the two can never disagree.

On a cluster, each statement is rewritten by :class:`collector.storage.cluster.ClusterSchema`:
local ``Replicated*`` tables with ``Distributed`` tables over them. A migration whose first
line is ``-- nextrace: single node`` rewrites stored rows by copying them where it runs; on a
cluster it runs, without the copy, while the cluster stores no span, and is otherwise recorded
but skipped, with a warning, since a copy on one node would keep only that node's shard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from string import Template

from clickhouse_connect.driver.client import Client

from collector.config import StoreConfig, validate_identifier
from collector.errors import StoreError
from collector.storage.cluster import ClusterSchema
from contract import nextjs

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_SELECT_OF = re.compile(r"\$\{select_of_(\d{4})\}")
_VIEW_QUERY = re.compile(r"^AS (SELECT\b.*)", re.MULTILINE | re.DOTALL)
_SINGLE_NODE = "-- nextrace: single node\n"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    template: str

    @property
    def single_node(self) -> bool:
        """Whether this migration rewrites stored rows by copying them on the node it runs on,
        so that it must not run on a cluster (marked by its first line)."""
        return self.template.startswith(_SINGLE_NODE)


def load_sql(name: str) -> str:
    """The text of ``collector/sql/<name>``."""
    return (resources.files("collector") / "sql" / name).read_text(encoding="utf-8")


def migrations() -> list[Migration]:
    """Every migration shipped with this release, oldest first."""
    found = []
    for entry in (resources.files("collector") / "sql").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"duplicate migration versions in {[m.name for m in found]}")
    return found


def render(template: str, config: StoreConfig, names: Mapping[str, str] | None = None) -> str:
    """Fill the placeholders of a SQL template with the store's validated identifiers, and
    with ``names`` (placeholder: identifier), validated too."""
    extra = {key: validate_identifier(name, key) for key, name in (names or {}).items()}
    database = validate_identifier(config.database, "database name")
    table = validate_identifier(config.traces_table, "traces table name")
    on_cluster = ""
    if config.cluster:
        on_cluster = f"ON CLUSTER `{validate_identifier(config.cluster, 'cluster name')}`"
    ttl_days = int(config.ttl_days)
    ttl_timestamp = f"TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})" if ttl_days else ""
    ttl_start = f"TTL toDateTime(Start) + toIntervalDay({ttl_days})" if ttl_days else ""
    ttl_minute = f"TTL Minute + toIntervalDay({ttl_days})" if ttl_days else ""
    views = {
        f"select_of_{version}": _view_query(int(version), config)
        for version in _SELECT_OF.findall(template)
    }
    return Template(template).substitute(
        views,
        **extra,
        database=database,
        table=table,
        on_cluster=on_cluster,
        engine=config.engine,
        summing_engine=config.engine.replace("MergeTree(", "SummingMergeTree(", 1),
        ttl_timestamp=ttl_timestamp,
        ttl_start=ttl_start,
        ttl_minute=ttl_minute,
        next_phase_branches=nextjs.phase_sql("SpanAttributes['next.span_type']"),
    )


def _view_query(version: int, config: StoreConfig) -> str:
    """The ``SELECT`` of the materialized view that migration ``version`` creates, rendered."""
    (view,) = [m for m in migrations() if m.version == version]
    found = _VIEW_QUERY.search(view.template)
    if found is None:
        raise StoreError(f"migration {view.name} creates no materialized view to backfill from")
    return render(found.group(1).strip(), config)


def applied_versions(client: Client, config: StoreConfig) -> set[int]:
    result = client.query(f"SELECT Version FROM `{config.database}`.nextrace_schema_migrations")
    return {int(row[0]) for row in result.result_rows}


def _statements(template: str, config: StoreConfig) -> list[str]:
    """The statements of a migration: separated by ``;`` at a line's end (the last may have
    one too)."""
    return [s for s in render(template, config).split(";\n") if s.strip()]


def cluster_schema(config: StoreConfig) -> ClusterSchema:
    """How the statements of every migration run on the cluster of ``config``."""
    every = [load_sql("schema_migrations.sql"), *(m.template for m in migrations())]
    return ClusterSchema(config, [st for t in every for st in _statements(t, config)])


def planned_statements(
    config: StoreConfig,
    template: str,
    *,
    copies_spans: bool = False,
    schema: ClusterSchema | None = None,
) -> list[str]:
    """The statements ``template`` runs as on the store of ``config``: as written on one
    server, rewritten on a cluster (``copies_spans``: for a migration marked single node, on a
    cluster that stores no span) by ``schema``, the store's :func:`cluster_schema` (made here
    if not given: pass it when planning many templates, since it renders every migration)."""
    statements = _statements(template, config)
    if not config.cluster:
        return statements
    schema = schema or cluster_schema(config)
    return [done for st in statements for done in schema.statements(st, copies_spans=copies_spans)]


def _stores_spans(client: Client, config: StoreConfig) -> bool:
    table = f"`{config.database}`.`{config.traces_table}`"
    return bool(int(client.command(f"SELECT count() > 0 FROM {table}")))  # type: ignore[arg-type]


def apply_migrations(
    client: Client, config: StoreConfig, up_to: int | None = None, *, from_schema: bool = True
) -> list[str]:
    """Create the database and apply every pending migration (up to version ``up_to``);
    return their names.

    A new database on one server (``from_schema``, no ``up_to``) is made from ``schema.sql``,
    the schema as the migrations leave it, and every migration is recorded as applied: one
    statement per table and view instead of every step that led there (a new store in 0.25 s
    instead of 1.7 s, measured). A start cut short leaves tables behind, and the next start
    brings them up by the migrations, which create nothing twice. On a cluster the
    migrations run, rewritten for it."""
    schema = cluster_schema(config) if config.cluster else None
    for name in ("create_database.sql", "schema_migrations.sql"):
        for statement in planned_statements(config, load_sql(name), schema=schema):
            client.command(statement)
    done = applied_versions(client, config)
    new = from_schema and up_to is None and not done and not config.cluster
    if new and _holds_nothing(client, config):
        return _made_from_schema(client, config)
    applied = []
    for migration in migrations():
        if migration.version in done or (up_to is not None and migration.version > up_to):
            continue
        copying_on_cluster = bool(migration.single_node and config.cluster)
        skipped = copying_on_cluster and _stores_spans(client, config)
        if skipped:
            log.warning(
                "migration %s skipped: it copies the stored spans, which on cluster %s would "
                "keep only this node's shard",
                migration.name,
                config.cluster,
            )
        elif migration.single_node and not config.cluster:
            log.info(
                "migration %s copies every stored span into a new layout: about a minute per "
                "10 million spans",
                migration.name,
            )
        try:
            statements = (
                []
                if skipped
                else planned_statements(
                    config, migration.template, copies_spans=copying_on_cluster, schema=schema
                )
            )
            for statement in statements:
                client.command(statement)
        except Exception as exc:
            raise StoreError(f"migration {migration.name} failed: {exc}") from exc
        client.insert(
            "nextrace_schema_migrations",
            [[migration.version, migration.name]],
            database=config.database,
            column_names=["Version", "Name"],
        )
        applied.append(migration.name)
    return applied


def _holds_nothing(client: Client, config: StoreConfig) -> bool:
    """Whether the store's database has no table but the migrations' own (a store the
    OpenTelemetry Collector's exporter made is adopted by the migrations instead)."""
    tables = client.query(
        "SELECT count() FROM system.tables WHERE database = {d:String} "
        "AND name != 'nextrace_schema_migrations'",
        parameters={"d": config.database},
    ).result_rows[0][0]
    return int(tables) == 0


def _made_from_schema(client: Client, config: StoreConfig) -> list[str]:
    """Make the new database of ``config`` from ``schema.sql`` and record every migration."""
    for statement in _statements(load_sql("schema.sql"), config):
        client.command(statement)
    shipped = migrations()
    client.insert(
        "nextrace_schema_migrations",
        [[m.version, m.name] for m in shipped],
        database=config.database,
        column_names=["Version", "Name"],
    )
    return [m.name for m in shipped]
