"""Shared fixtures: a real embedded ClickHouse (chDB) store, one database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from starlette.testclient import TestClient

from collector.config import BatchSettings, CollectorConfig, StoreConfig
from collector.service import Collector
from collector.storage.store import connect

# The suite gives the same answer on every run: property tests draw the same examples each
# time, from no saved database. `pytest --hypothesis-profile explore` searches afresh.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore")
settings.load_profile("repeatable")

GRAFANA_SCHEMAS = Path(__file__).resolve().parent / "data" / "grafana-schemas"
CAPTURES = Path(__file__).resolve().parent / "data" / "nextjs-captures"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # chDB opens one store folder per process, so every in-process test shares
    # one folder and gets a database of its own.
    return tmp_path_factory.mktemp("chdb") / "store"


@contextmanager
def database_of_its_own(chdb_path: Path) -> Iterator[StoreConfig]:
    """A store that is a database of its own in the shared embedded engine, dropped after."""
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=t_{uuid.uuid4().hex[:12]}")
    yield config
    # Dropped after the test: every table left in the shared engine slows the creation of
    # the next tests' tables (about 25 ms per database left behind, measured).
    client = connect(config)
    try:
        client.command(f"DROP DATABASE IF EXISTS `{config.database}` SYNC")
    finally:
        client.close()


@pytest.fixture
def store_config(chdb_path: Path) -> Iterator[StoreConfig]:
    with database_of_its_own(chdb_path) as config:
        yield config


@contextmanager
def running_collector(
    store_config: StoreConfig, pages: Any = None, **options: Any
) -> Iterator[Collector]:
    """A started collector on ``store_config`` with ``options`` (batches every 0.2 s) and
    ``pages`` (see :class:`Collector`), shut down after."""
    instance = Collector(
        CollectorConfig(store=store_config, batch=BatchSettings(timeout_s=0.2), **options),
        pages=pages,
    )
    instance.start()
    try:
        yield instance
    finally:
        instance.shutdown()


@pytest.fixture
def collector(store_config: StoreConfig) -> Iterator[Collector]:
    with running_collector(store_config) as instance:
        yield instance


LOCAL = "http://localhost:4318"


def loopback_client(collector: Collector) -> TestClient:
    """A client of the started ``collector``'s app that sends from loopback and addresses it as
    ``localhost``: whom its read endpoints answer without a token."""
    assert collector.app is not None
    return TestClient(collector.app, base_url=LOCAL, client=("127.0.0.1", 50000))


@pytest.fixture
def client(collector: Collector) -> Iterator[TestClient]:
    with loopback_client(collector) as test_client:
        yield test_client


def stored(collector: Collector, sql: str) -> list[Any]:
    """Flush the collector (Next.js traces waiting for normalization too), then run ``sql``."""
    assert collector.processor is not None
    assert collector.normalizer is not None
    assert collector.store is not None
    collector.normalizer.force_flush()
    assert collector.processor.force_flush(30)
    return list(collector.store.client.query(sql).result_rows)


@pytest.fixture
def captures() -> Path:
    """Real Next.js exports, recorded from examples/nextjs by tests/examples/record_captures.py."""
    return CAPTURES


@contextmanager
def collector_holding(chdb_path: Path, run: Path, **options: Any) -> Iterator[Collector]:
    """A collector on a database of its own, with ``options`` (see :func:`running_collector`),
    that took the recorded exports of ``run`` (tests/data) and stored them all."""
    from tests.support.captures import post_capture

    with database_of_its_own(chdb_path) as config, running_collector(config, **options) as found:
        with loopback_client(found) as client:
            post_capture(client, run)
        stored(found, "SELECT 1")
        yield found
