from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import BatchSettings, CollectorConfig, StoreConfig
from collector.errors import ConfigError


def test_the_default_dsn_is_an_embedded_store_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = StoreConfig.from_dsn("chdb:.nextrace/store")
    assert config.interface == "chdb"
    assert config.path == tmp_path / ".nextrace" / "store"
    assert config.database == "otel"


def test_absolute_chdb_paths_and_a_database_option():
    config = StoreConfig.from_dsn("chdb:///var/lib/nextrace?database=traces")
    assert config.path == Path("/var/lib/nextrace")
    assert config.database == "traces"


def test_http_dsns_select_a_server_with_credentials():
    config = StoreConfig.from_dsn("https://writer:s%40cret@ch.example:9443?database=obs")
    assert (config.interface, config.host, config.port, config.secure) == (
        "http",
        "ch.example",
        9443,
        True,
    )
    assert (config.username, config.password, config.database) == ("writer", "s@cret", "obs")
    assert "s@cret" not in repr(config)
    assert StoreConfig.from_dsn("http://localhost").port == 8123


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgres://x", "unsupported DSN"),
        ("chdb://host/folder", "names a folder, not a host"),
        ("chdb:", "names no folder"),
        ("http://", "names no host"),
        ("chdb:x?database=bad-name", "invalid database name"),
        ("chdb:x?database=a;DROP", "invalid database name"),
        ("chdb:x?colour=red", "unknown DSN option"),
    ],
)
def test_bad_dsns_say_what_is_wrong(dsn, message):
    with pytest.raises(ConfigError, match=message):
        StoreConfig.from_dsn(dsn)


def test_identifiers_and_numbers_that_reach_sql_are_validated():
    with pytest.raises(ConfigError, match="traces table"):
        StoreConfig.from_dsn("chdb:x", traces_table="t`; DROP")
    with pytest.raises(ConfigError, match="cluster"):
        StoreConfig.from_dsn("chdb:x", cluster="a b")
    with pytest.raises(ConfigError, match="ttl_days"):
        StoreConfig.from_dsn("chdb:x", ttl_days=-1)
    with pytest.raises(ConfigError, match="engine"):
        StoreConfig.from_dsn("chdb:x", engine="Memory")
    assert StoreConfig.from_dsn("chdb:x", cluster="main").engine == "ReplicatedMergeTree()"


def test_collector_settings_are_checked():
    store = StoreConfig.from_dsn("chdb:x")
    with pytest.raises(ConfigError, match="port"):
        CollectorConfig(store=store, port=70000)
    with pytest.raises(ConfigError, match="queue_max_spans"):
        BatchSettings(max_spans=10, max_queue_spans=5)
