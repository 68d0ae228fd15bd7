"""Configuration of the collector and of the ClickHouse store it writes to.

Everything a user can set lives here, validated once, so that the stages
downstream can trust their inputs. Identifiers that end up inside SQL text
(database, table, cluster) are checked against a strict pattern here and
nowhere else.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlparse

from collector.errors import ConfigError
from collector.memory import DEFAULT_MEMORY_BYTES, DEFAULT_UNAUTHENTICATED_MEMORY_BYTES

DEFAULT_DSN = "chdb:.nextrace/store"
"""An embedded chDB store in a folder under the working directory."""

DEFAULT_DATABASE = "otel"
DEFAULT_TRACES_TABLE = "otel_traces"
# Connections whose request has not yet shown a credential (collector.ingest.connections).
DEFAULT_MAX_PENDING = 256
DEFAULT_MAX_PENDING_PER_ADDRESS = 64
# When the write-ahead log syncs what it wrote (collector.pipeline.wal).
FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("always", "interval", "never")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_ENGINE = re.compile(r"^(MergeTree|ReplicatedMergeTree)(\(\))?$")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts this machine's connections."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_identifier(value: str, what: str) -> str:
    """Return ``value`` if it is safe to place inside SQL text as an identifier."""
    if not _IDENTIFIER.match(value):
        raise ConfigError(
            f"invalid {what} {value!r}: use letters, digits and underscores, "
            "starting with a letter or underscore (at most 63 characters)"
        )
    return value


@dataclass(frozen=True)
class ReadLimits:
    """Bounds of every query on the read surface (``/sql``, ``nextrace sql``); a query cannot
    lift them. Reads run one at a time, so :meth:`resident_bytes` bounds what reads add to the
    collector's memory."""

    max_execution_time_s: int = 30
    max_memory_bytes: int = 256 << 20
    max_result_rows: int = 1_000_000
    # Of the answer, as sent (collector.storage.store._read_at_most).
    max_result_bytes: int = 64 << 20
    max_threads: int = 2
    max_waiting_reads: int = 8  # on /sql, behind the one running; more are answered 503

    def settings(self) -> dict[str, int | str]:
        """The ClickHouse settings that enforce these limits."""
        return {
            "max_execution_time": self.max_execution_time_s,
            "max_memory_usage": self.max_memory_bytes,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "max_threads": self.max_threads,
        }

    def resident_bytes(self) -> int:
        """The most one read adds to the collector's resident set when the store is embedded
        and the query runs in the collector's process: three times the query's memory limit
        (chDB's engine grows past what the limit counts while it writes an answer: 2.1 times
        the limit at most, measured, for a million-row answer of constants), 4 MiB a thread
        (what a thread allocates before ClickHouse counts it, ``max_untracked_memory``) and the
        answer. Against a ClickHouse server the query's memory is the server's, and the
        collector holds the answer only."""
        return 3 * self.max_memory_bytes + self.max_threads * (4 << 20) + self.max_result_bytes


@dataclass(frozen=True)
class StoreConfig:
    """Where spans are stored, parsed from one DSN.

    ``chdb:relative/folder`` or ``chdb:///absolute/folder`` selects the embedded
    engine (the folder is created on first use); ``http://[user:password@]host:8123``
    or ``https://…`` selects a ClickHouse server. ``?database=NAME`` picks the
    database (default ``otel``).
    """

    dsn: str
    interface: Literal["chdb", "http"]
    database: str = DEFAULT_DATABASE
    path: Path | None = None
    host: str = ""
    port: int = 0
    secure: bool = False
    username: str = "default"
    password: str = field(default="", repr=False)
    traces_table: str = DEFAULT_TRACES_TABLE
    ttl_days: int = 0
    cluster: str = ""
    engine: str = "MergeTree()"
    read_limits: ReadLimits = field(default_factory=ReadLimits)

    @classmethod
    def from_dsn(
        cls,
        dsn: str,
        *,
        traces_table: str = DEFAULT_TRACES_TABLE,
        ttl_days: int = 0,
        cluster: str = "",
        engine: str = "",
    ) -> StoreConfig:
        parsed = urlparse(dsn)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        unknown = set(query) - {"database"}
        if unknown:
            raise ConfigError(
                f"unknown DSN option(s) {sorted(unknown)} in {dsn!r}: only 'database'"
            )
        database = validate_identifier(query.get("database", DEFAULT_DATABASE), "database name")
        validate_identifier(traces_table, "traces table name")
        if cluster:
            validate_identifier(cluster, "cluster name")
        if ttl_days < 0:
            raise ConfigError(f"ttl_days must be 0 (keep forever) or positive, not {ttl_days}")
        engine = engine or ("ReplicatedMergeTree()" if cluster else "MergeTree()")
        if not _ENGINE.match(engine):
            raise ConfigError(
                f"unsupported table engine {engine!r}: MergeTree or ReplicatedMergeTree"
            )
        if not engine.endswith(")"):
            engine += "()"
        base = cls(
            dsn=dsn,
            interface="chdb",
            database=database,
            traces_table=traces_table,
            ttl_days=ttl_days,
            cluster=cluster,
            engine=engine,
        )
        if parsed.scheme == "chdb":
            if parsed.netloc:
                raise ConfigError(
                    f"a chdb DSN names a folder, not a host: use chdb:relative/folder or "
                    f"chdb:///absolute/folder, not {dsn!r}"
                )
            if not parsed.path:
                raise ConfigError(f"the chdb DSN {dsn!r} names no folder")
            return replace(base, path=Path(unquote(parsed.path)).resolve())
        if parsed.scheme in ("http", "https"):
            if not parsed.hostname:
                raise ConfigError(f"the DSN {dsn!r} names no host")
            secure = parsed.scheme == "https"
            return replace(
                base,
                interface="http",
                host=parsed.hostname,
                port=parsed.port or (8443 if secure else 8123),
                secure=secure,
                username=unquote(parsed.username or "default"),
                password=unquote(parsed.password or ""),
            )
        raise ConfigError(
            f"unsupported DSN {dsn!r}: use chdb:FOLDER for the embedded engine, "
            "or http(s)://host:port for a ClickHouse server"
        )

    def describe(self) -> str:
        """A human-readable location without credentials."""
        if self.interface == "chdb":
            return f"embedded chDB store at {self.path} (database {self.database})"
        scheme = "https" if self.secure else "http"
        return f"ClickHouse server {scheme}://{self.host}:{self.port} (database {self.database})"


@dataclass(frozen=True)
class RetryPolicy:
    """How a stage retries a failing store (collector.retry): backoff starts at
    ``initial_backoff_s``, doubles up to ``max_backoff_s``, and retries stop once
    ``max_elapsed_s`` has passed since the first attempt."""

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_elapsed_s: float = 600.0  # how long a failing store is retried before dropping

    def __post_init__(self) -> None:
        if self.max_elapsed_s < 0:
            raise ConfigError("retry_max_elapsed_s must not be negative")


@dataclass(frozen=True)
class BatchSettings:
    """How the batch processor groups spans for the store (collector.pipeline.batcher)."""

    max_spans: int = 20_000  # spans per insert
    timeout_s: float = 1.0  # a partial batch goes this long after its first span
    max_queue_spans: int = 200_000  # spans waiting at most; beyond, senders get 503

    def __post_init__(self) -> None:
        if self.max_spans <= 0 or self.max_queue_spans < self.max_spans:
            raise ConfigError(
                "batch_max_spans must be positive and queue_max_spans at least batch_max_spans"
            )
        if self.timeout_s <= 0:
            raise ConfigError("batch_timeout_s must be positive")


@dataclass(frozen=True)
class NextjsSettings:
    """When a Next.js trace's rows are derived (collector.pipeline.normalizer)."""

    wait_s: float = 5.0  # a trace is normalized once idle this long
    max_traces: int = 10_000  # traces waiting at most; the oldest goes early
    late_window_s: float = 120.0  # late spans of a trace this recent correct its rows
    # A trace whose spans keep arriving is normalized after this long anyway (and corrected
    # as more arrive): it holds the write-ahead log no longer.
    max_hold_s: float = 30.0

    def __post_init__(self) -> None:
        if self.wait_s <= 0 or self.max_traces <= 0 or self.max_hold_s <= 0:
            raise ConfigError(
                "nextjs_wait_s, nextjs_max_traces and nextjs_max_hold_s must be positive"
            )
        if self.late_window_s < 0:
            raise ConfigError("nextjs_late_window_s must not be negative")


@dataclass(frozen=True)
class WalSettings:
    """The write-ahead log (collector.pipeline.wal)."""

    enabled: bool = True  # write every accepted request ahead to disk
    directory: Path | None = None  # default: see CollectorConfig.wal_path
    max_bytes: int = 1 << 30  # when full, senders get 503
    fsync: FsyncPolicy = "always"
    fsync_interval_s: float = 0.2  # with fsync "interval"
    segment_bytes: int = 0  # 0: sized from max_bytes (collector.pipeline.wal.segment_size)

    def __post_init__(self) -> None:
        if self.fsync not in FSYNC_POLICIES:
            raise ConfigError(f"WAL fsync must be always, interval or never, not {self.fsync!r}")
        if self.max_bytes <= 0:
            raise ConfigError("wal_max_bytes must be positive")


@dataclass(frozen=True)
class CollectorConfig:
    """Settings of the OTLP/HTTP receiver and the batching pipeline."""

    store: StoreConfig
    host: str = "127.0.0.1"
    port: int = 4318
    token: str | None = field(default=None, repr=False)  # see collector.ingest.auth
    allow_unauthenticated: bool = False  # listen beyond loopback without a token
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    batch: BatchSettings = field(default_factory=BatchSettings)
    staged_insert: bool = True  # ClickHouse reads the OTLP bodies (collector.storage.staging)
    memory_max_bytes: int = DEFAULT_MEMORY_BYTES  # request bytes in flight and queued
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # for spans and derived rows alike
    read_timeout_s: float = 10.0  # a request's headers, then its body, must arrive within this
    max_connections: int = 1000  # concurrent connections (collector.ingest.connections)
    max_pending_connections: int = DEFAULT_MAX_PENDING  # not authenticated yet, at most
    max_pending_per_address: int = DEFAULT_MAX_PENDING_PER_ADDRESS  # of those, from one address
    # Bodies read before their sender is verified (a Vercel delivery, a browser's beacon).
    unauthenticated_memory_bytes: int = DEFAULT_UNAUTHENTICATED_MEMORY_BYTES
    # Host names answered besides loopback (collector.ingest.hosts).
    allowed_hosts: tuple[str, ...] = ()
    wal: WalSettings = field(default_factory=WalSettings)
    stats_interval_s: float = 10.0  # how often the collector stores its own counters; 0: never
    nextjs: NextjsSettings = field(default_factory=NextjsSettings)
    browser_origins: tuple[str, ...] = ()  # pages that may send spans (collector.ingest.browser)
    browser_key: str | None = field(default=None, repr=False)  # public; NEXTRACE_BROWSER_KEY
    browser_rate: float = 50.0  # browser requests a second per origin (twice that at once)
    browser_max_body_bytes: int = 64 * 1024
    # Its own secret (collector.ingest.vercel_drain).
    vercel_drain_secret: str | None = field(default=None, repr=False)
    vercel_verify: str | None = field(default=None, repr=False)  # NEXTRACE_VERCEL_VERIFY
    cloudflare_logpush_token: str | None = field(default=None, repr=False)  # its own token
    cdn_max_body_bytes: int = 8 * 1024 * 1024  # a CDN's log delivery, decompressed
    # CDN log lines of acknowledged deliveries remembered, so that a redelivery stores nothing
    # twice (collector.ingest.cdn.RecentLines); about 150 bytes each.
    cdn_recent_lines: int = 100_000

    @property
    def wal_path(self) -> Path:
        """Where the write-ahead log lives: its ``directory``, or one folder per store and
        database, ``<chdb store>/nextrace-wal/<database>`` or
        ``.nextrace/wal/<host>-<port>-<database>``."""
        if self.wal.directory is not None:
            return self.wal.directory
        store = self.store
        if store.path is not None:
            return store.path / "nextrace-wal" / store.database
        return Path(".nextrace/wal", f"{store.host}-{store.port}-{store.database}").resolve()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, not {self.port}")
        if not self.token and not self.allow_unauthenticated and not is_loopback_host(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host} without a token: anyone who can reach it "
                "could write spans and read the store. Set NEXTRACE_TOKEN or --token-file, or "
                "pass --allow-unauthenticated if a network boundary protects it"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS needs both --tls-cert and --tls-key")
        if self.max_body_bytes <= 0:
            raise ConfigError("max_body_bytes must be positive")
        if min(self.memory_max_bytes, self.max_connections) <= 0:
            raise ConfigError("memory_max_bytes and max_connections must be positive")
        if (
            min(
                self.max_pending_connections,
                self.max_pending_per_address,
                self.unauthenticated_memory_bytes,
            )
            <= 0
        ):
            raise ConfigError(
                "max_pending_connections, max_pending_per_address and "
                "unauthenticated_memory_bytes must be positive"
            )
        if self.read_timeout_s <= 0:
            raise ConfigError("read_timeout_s must be positive")
        for origin in self.browser_origins:
            check_origin(origin)
        if self.browser_rate <= 0 or self.browser_max_body_bytes <= 0:
            raise ConfigError("browser_rate and browser_max_body_bytes must be positive")
        if self.cdn_max_body_bytes <= 0 or self.cdn_recent_lines < 0:
            raise ConfigError(
                "cdn_max_body_bytes must be positive, and cdn_recent_lines not negative"
            )


def check_origin(origin: str) -> None:
    """ConfigError unless ``origin`` is as a browser sends it (``https://shop.example.com``,
    a port if any, no path), or a pattern of preview deployments whose first label alone is
    ``*`` (``https://*.shop-preview.example.com``: one label, under at least two)."""
    parts = urlparse(origin.replace("://*.", "://wildcard.", 1))
    host = parts.hostname or ""
    wildcard = "://*." in origin
    if (
        parts.scheme not in ("http", "https")
        or not host
        or "*" in origin.replace("://*.", "://", 1)
        or (wildcard and host.count(".") < 2)
        or origin.replace("://*.", "://wildcard.", 1) != f"{parts.scheme}://{parts.netloc}"
    ):
        raise ConfigError(
            f"browser origin {origin!r} must be a scheme and host, as a browser sends it, "
            "for example https://shop.example.com, or a pattern of one label, for example "
            "https://*.shop-preview.example.com (each origin listed)"
        )


def origin_pattern(origins: tuple[str, ...]) -> re.Pattern[str]:
    """The origins ``check_origin`` accepted, as one pattern an ``Origin`` header must match
    whole: each exactly, and a ``*`` label as one label of letters, digits and hyphens."""
    alternatives = [
        re.escape(origin).replace(r"\*", "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
        for origin in origins
    ]
    return re.compile("|".join(alternatives) or "(?!)")
