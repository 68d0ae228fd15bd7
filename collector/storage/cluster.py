"""How the schema's statements run on a ClickHouse cluster (``--cluster NAME``).

On one server, each migration statement runs as written. On a cluster, every table a
migration creates becomes two, both ``ON CLUSTER``:

- ``<table>_local``, the migration's own table (``Replicated*`` engines), on every node;
- ``<table>``, a ``Distributed`` table over it, under the name every panel, alert, command and
  insert uses, so that none of them changes. Tables with a ``TraceId`` are sharded by
  ``cityHash64(TraceId)``: all spans of a trace, and every row derived from them, are on one
  shard, where the materialized views (which read and write ``_local`` tables) fire. The
  others (per-minute counts, builds, the collector's own rows) are sharded at random, and
  read through ``Distributed`` as a whole.

Statements are rewritten from the same ``.sql`` files (:class:`ClusterSchema`):

- ``CREATE TABLE`` of a table: the local table, then its ``Distributed`` table;
- ``CREATE MATERIALIZED VIEW``: reads from and writes to ``_local`` tables;
- ``ALTER TABLE``: on the local table; one that changes columns also re-creates the
  ``Distributed`` table, so that the two keep the same columns;
- ``INSERT … SELECT`` (backfills): unchanged, through the ``Distributed`` tables, so every
  shard's rows are read and each lands on its shard;
- a migration that copies stored spans into a new layout (``-- nextrace: single node``) is
  rewritten to do the same ``ON CLUSTER`` without the copy, and runs only while the cluster
  stores no span (see :mod:`collector.storage.migrations`).

The collector's session on a cluster (:data:`SESSION_SETTINGS`): inserts through a
``Distributed`` table are synchronous (``distributed_foreground_insert``), so that an insert
returns once every shard has its rows, a span the collector acknowledges is stored, and a
retried batch is deduplicated on each shard by its token; and a subquery on a ``Distributed``
table inside a query on another (``IN (SELECT … FROM requests)``) is run once and sent to
every shard (``distributed_product_mode = 'global'``), which ClickHouse otherwise refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from collector.config import StoreConfig

LOCAL_SUFFIX = "_local"
SESSION_SETTINGS = {"distributed_foreground_insert": 1, "distributed_product_mode": "global"}

_NAME = r"`(?P<database>[^`]+)`\.`(?P<name>[^`]+)`"
_ANY_NAME = r"`[^`]+`\.`[^`]+`"
_CREATE_TABLE = re.compile(rf"^CREATE TABLE (?:IF NOT EXISTS )?{_NAME} (?:ON CLUSTER `[^`]+` )?\(")
_CREATE_COPY = re.compile(rf"^CREATE TABLE {_NAME} AS ")
_CREATE_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW ")
_ALTER = re.compile(rf"^ALTER TABLE {_NAME}\s")
_CHANGES_COLUMNS = re.compile(r"\b(ADD|MODIFY|DROP|RENAME) COLUMN\b")
_INSERT_COPY = re.compile(rf"^INSERT INTO {_ANY_NAME} SELECT \* FROM {_ANY_NAME}$")
_EXCHANGE = re.compile(rf"^EXCHANGE TABLES {_ANY_NAME} AND {_ANY_NAME}$")
_DROP_TABLE = re.compile(rf"^DROP TABLE (?:IF EXISTS )?{_NAME}$")


def _strip(statement: str) -> str:
    """The statement without its comment lines and surrounding blank space."""
    lines = [line for line in statement.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def _sharding_key(create: str) -> str:
    return "cityHash64(TraceId)" if re.search(r"^\s+TraceId String\b", create, re.M) else "rand()"


def _quoted(database: str, name: str) -> str:
    return f"`{database}`.`{name}`"


def _distributed_table(
    database: str, name: str, cluster: str, sharding_key: str, *, replace: bool = False
) -> list[str]:
    """The statements that create the ``Distributed`` table ``name`` over ``name_local``;
    with ``replace``, dropping the one there first (to take the local table's columns)."""
    table = _quoted(database, name)
    create = (
        f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER `{cluster}` AS "
        f"{_quoted(database, name + LOCAL_SUFFIX)} ENGINE = Distributed("
        f"`{cluster}`, `{database}`, `{name + LOCAL_SUFFIX}`, {sharding_key})"
    )
    if not replace:
        return [create]
    return [f"DROP TABLE IF EXISTS {table} ON CLUSTER `{cluster}` SYNC", create]


class ClusterSchema:
    """Rewrites one store's statements for its cluster. It knows the schema's tables (and how
    each is sharded) from ``creates``, every statement of every migration, applied or not, so
    that a later migration's statements are rewritten the same on every start."""

    def __init__(self, config: StoreConfig, creates: Iterable[str]) -> None:
        assert config.cluster, "a schema for a cluster needs the cluster's name"
        self.cluster = config.cluster
        self.on_cluster = f"ON CLUSTER `{config.cluster}`"
        self.sharding: dict[str, str] = {}  # table -> its Distributed table's sharding key
        for statement in creates:
            text = _strip(statement)
            created = _CREATE_TABLE.match(text)
            if created:
                self.sharding[created["name"]] = _sharding_key(text)

    def _local(self, text: str) -> str:
        """``text`` with every known table named as its local table."""
        for name in sorted(self.sharding, key=len, reverse=True):
            text = re.sub(rf"`\.`{re.escape(name)}`", f"`.`{name}{LOCAL_SUFFIX}`", text)
        return text

    def statements(self, statement: str, *, copies_spans: bool = False) -> list[str]:
        """``statement`` as it runs on the cluster: none, one or several statements. With
        ``copies_spans``, it belongs to a migration that copies the stored spans (marked
        ``-- nextrace: single node``), rewritten for a cluster that stores none."""
        text = _strip(statement)
        if not text:
            return []
        if copies_spans:
            return self._copying(text)
        created = _CREATE_TABLE.match(text)
        if created:
            database, name = created["database"], created["name"]
            local = text.replace(
                created.group(0),
                created.group(0).replace(f"`.`{name}`", f"`.`{name}{LOCAL_SUFFIX}`", 1),
                1,
            )
            return [local, *_distributed_table(database, name, self.cluster, self.sharding[name])]
        if _CREATE_VIEW.match(text):
            return [self._local(text)]  # a view's own name is no table's
        altered = _ALTER.match(text)
        if altered and altered["name"] in self.sharding:
            name = altered["name"]
            done = [self._local(text)]
            if _CHANGES_COLUMNS.search(text):
                done += _distributed_table(
                    altered["database"], name, self.cluster, self.sharding[name], replace=True
                )
            return done
        return [text]

    def _copying(self, text: str) -> list[str]:
        """A statement of a migration that copies the stored spans into a new layout, for a
        cluster that stores none: the same DDL on every node, and no copy."""
        if _INSERT_COPY.match(text):
            return []  # nothing to copy
        copy = _CREATE_COPY.match(text)
        if copy:
            rest = text[copy.end() :]
            return [
                f"CREATE TABLE {_quoted(copy['database'], copy['name'])} {self.on_cluster} AS "
                f"{self._local(rest)}"
            ]
        altered = _ALTER.match(text)
        if altered:
            return [f"{altered.group(0).rstrip()} {self.on_cluster}\n{text[altered.end() :]}"]
        if _EXCHANGE.match(text) or _DROP_TABLE.match(text):
            return [f"{self._local(text)} {self.on_cluster}"]
        raise ValueError(f"no cluster form for a statement that copies spans: {text[:80]}")
