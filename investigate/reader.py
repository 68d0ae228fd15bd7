"""Reading nextrace's own queries (``investigate/sql/``) from any store, as rows of Python values.

The commands that look at traces (``trace``, ``slow``, ``compare``, ``report``) read through
a :class:`Reader` from :func:`open_reader`: :class:`CollectorReader` when a running collector
holds the embedded store, else :class:`StoreReader` on the store (embedded, or a ClickHouse
server) opened once. Every statement goes through the collector's read-only guard and limits
(:meth:`collector.storage.store.ClickHouseStore.read`), with its values passed as query parameters,
never spliced into the text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from typing import Any, Protocol

from collector.admin.query import QueryValue, owning_collector, query_collector
from collector.config import StoreConfig
from collector.storage.store import ClickHouseStore, open_store

Row = dict[str, Any]
_FORMAT = "JSONCompactEachRowWithNamesAndTypes"
_FRAGMENT = re.compile(r"__([A-Z_]+)__")


class Reader(Protocol):
    """Runs one of nextrace's named queries and returns its rows."""

    def rows(self, query: str, /, **parameters: Any) -> list[Row]: ...


def load_query(name: str) -> str:
    """The text of ``investigate/sql/<name>.sql``, each ``__FRAGMENT__`` in it replaced by the
    text of ``fragment.sql`` (without its comments): ``__USER_TRACES__``, the subquery of the
    traces users started; ``__TRACE_RANGE__``, the time range of the traces asked for;
    ``__SPAN_COLUMNS__``, the columns of a span as :func:`investigate.spans.span_of` reads them."""
    sql = _read_sql(name)
    return _FRAGMENT.sub(lambda m: _read_sql(m.group(1).lower(), comments=False), sql)


def _read_sql(name: str, *, comments: bool = True) -> str:
    text = (resources.files("investigate") / "sql" / f"{name}.sql").read_text("utf-8")
    if comments:
        return text
    return "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()


class StoreReader:
    """Reads a store open in this process, through its read-only guard
    (:meth:`ClickHouseStore.read`)."""

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store

    def rows(self, query: str, /, **parameters: Any) -> list[Row]:
        """The rows of ``investigate/sql/<query>.sql`` run with ``parameters``."""
        return decode(
            self._store.read(load_query(query), _FORMAT, parameters=_parameters(parameters))
        )


class CollectorReader:
    """Reads an embedded store through the running collector that holds it (its ``/sql``,
    behind the same guard)."""

    def __init__(self, url: str) -> None:
        self._url = url

    def rows(self, query: str, /, **parameters: Any) -> list[Row]:
        """The rows of ``investigate/sql/<query>.sql`` run with ``parameters``."""
        body = query_collector(self._url, load_query(query), _FORMAT, _parameters(parameters))
        return decode(body)


@contextmanager
def open_reader(config: StoreConfig) -> Iterator[Reader]:
    """A reader of the store ``config`` names: through the collector that holds it, if one
    does, else the store itself, opened once for all the reader's queries."""
    url = owning_collector(config)
    if url is not None:
        yield CollectorReader(url)
        return
    store = open_store(config, migrate=False)
    try:
        yield StoreReader(store)
    finally:
        store.close()


def decode(body: bytes) -> list[Row]:
    """Rows of ``JSONCompactEachRowWithNamesAndTypes`` as dictionaries of Python values: times
    as ``datetime`` (naive, in the server's time zone, as ClickHouse prints them), 64-bit
    integers as ``int``."""
    lines = body.decode("utf-8").splitlines()
    if len(lines) < 2:
        return []
    names, types = json.loads(lines[0]), json.loads(lines[1])
    converters = [_converter(t) for t in types]
    return [
        {n: c(v) for n, c, v in zip(names, converters, json.loads(line), strict=True)}
        for line in lines[2:]
    ]


def _converter(clickhouse_type: str) -> Any:
    inner = clickhouse_type
    for wrapper in ("Nullable(", "LowCardinality("):
        if inner.startswith(wrapper):
            inner = inner[len(wrapper) : -1]
    if inner.startswith("DateTime"):
        return _optional(_datetime)
    if inner.startswith(("UInt", "Int")):
        return _optional(int)
    if inner.startswith("Float"):
        return _optional(float)
    return _same


def _optional(convert: Any) -> Any:
    return lambda value: None if value is None else convert(value)


def _same(value: Any) -> Any:
    return value


def _datetime(text: str) -> dt.datetime:
    day, _, clock = text.partition(" ")
    whole, _, fraction = clock.partition(".")
    return dt.datetime.fromisoformat(f"{day} {whole}.{(fraction + '000000')[:6]}")


def _parameters(values: Mapping[str, Any]) -> dict[str, QueryValue]:
    """Query parameters from Python values: times (alone or in lists) as ClickHouse reads them."""

    def one(value: Any) -> Any:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, dt.datetime) else value

    return {k: [one(x) for x in v] if isinstance(v, list) else one(v) for k, v in values.items()}
