"""Open the ClickHouse store named by a DSN: embedded chDB or a ClickHouse server.

Both go through ``clickhouse-connect``; only the way the client is created
differs. Opening the embedded store turns chDB's terse failures into errors
that say what to do, and :func:`open_store` leaves the schema migrated.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DataError, OperationalError

from collector.config import StoreConfig, validate_identifier
from collector.errors import QueryFailed, ReadOnlyViolation, StoreError, StoreLockedError
from collector.storage.cluster import SESSION_SETTINGS
from collector.storage.migrations import applied_versions, apply_migrations, load_sql, migrations
from collector.storage.read_guard import check_ast, parse_explain_ast, without_format
from collector.storage.store_repair import PART_NAME, repair_after_full_disk

log = logging.getLogger(__name__)

_DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        33,  # CANNOT_READ_ALL_DATA
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        407,  # DECIMAL_OVERFLOW
        469,  # VIOLATED_CONSTRAINT
    }
)
_CODE = re.compile(r"Code: (\d+)")
_READ_MARKER = "nextrace-read:"  # in a comment before every /sql read, for cancel_reads
_NOT_WRITTEN = re.compile(
    r":? In scope SELECT formatQuerySingleLine\(.*\)\.|/\* nextrace-read:\S* \*/ "
)
# A part's folder in a path.
_PART_FOLDER = re.compile(rf"/({PART_NAME.pattern})/")
_NEVER = 2**32 - 1  # the last second a DateTime holds: no part is that recent
_ReadKey = tuple[str, str, tuple[tuple[str, str], ...]]  # statement, format, parameters
_CHECKED_READS = 256  # statements whose check is remembered (ClickHouseStore._checked)
# Growth of the resident set since memory was last given back, past which a read's end gives it
# back again: a poll's few kilobytes are not worth a purge (each purge costs the inserts after
# it their memory back, page by page); a read that ran into its limits is.
_PURGE_AFTER_GROWTH_BYTES = 64 << 20
_FORMAT_CLAUSE = re.compile(r" FORMAT ([A-Za-z][A-Za-z0-9]*)$")  # in formatQuerySingleLine text


def is_permanent(exc: BaseException) -> bool:
    """Whether a failed insert failed because of the rows themselves, so that retrying the
    same rows can never succeed.

    Everything else (connection errors, a full disk, a read-only or broken store, errors
    nobody foresaw) is transient: the rows wait, in the write-ahead log, and are retried.
    """
    if isinstance(exc, DataError) and "Code:" not in str(exc):
        return True  # the driver could not serialize a value: no server was asked
    if isinstance(exc, OperationalError):
        return False
    match = _CODE.search(str(exc))
    if match is None:
        return False
    code = int(match.group(1))
    # 252 is TOO_MANY_PARTS (wait for merges) and also too many partitions in one insert
    # block (rows spread over too many days): only the latter is the rows' doing.
    return code in _DATA_ERROR_CODES or (code == 252 and "partitions" in str(exc).lower())


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
            # Threads share a client (the exporter's, the rows', the CDN receivers' lookups):
            # a server refuses concurrent queries in one session.
            autogenerate_session_id=False,
            # On a cluster, inserts into Distributed tables return once every shard has its
            # rows (collector/storage/cluster.py): acknowledged means stored.
            settings=dict(SESSION_SETTINGS) if config.cluster else None,
        )
    except ClickHouseError as exc:
        raise StoreError(f"cannot reach the {config.describe()}: {exc}") from exc


def _connect_chdb(config: StoreConfig) -> Client:
    assert config.path is not None
    # Only the store's own folder is created (and, for a relative DSN, the folders between it
    # and the working directory): a typo in an absolute path must not build a tree as root.
    inside_cwd = config.path.is_relative_to(Path.cwd())
    try:
        config.path.mkdir(parents=inside_cwd, exist_ok=True)
    except FileNotFoundError as exc:
        raise StoreError(
            f"cannot create the store folder {config.path}: {config.path.parent} does not "
            "exist (check the DSN, or create the parent folder first)"
        ) from exc
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
        repaired = repair_after_full_disk(config.path)
        if not repaired:
            raise StoreError(f"cannot open the {config.describe()}: {exc}") from exc
    for what in repaired:
        log.warning("the embedded store did not start after a full disk: %s", what)
    try:
        return clickhouse_connect.get_client(interface="chdb", path=str(config.path))
    except ClickHouseError as exc:
        raise StoreError(
            f"cannot open the {config.describe()}, even after repairing what a full disk left "
            f"in it: {exc}"
        ) from exc


class ClickHouseStore:
    """A store on a connected ``client``: :meth:`start` brings its schema up to date (or, with
    ``migrate`` false, checks that it is); ``shutdown`` and ``close`` are the same, and
    idempotent."""

    def __init__(self, config: StoreConfig, client: Client, *, migrate: bool = True) -> None:
        self.config = config
        self.client = client
        self._migrate = migrate
        self._sessions: dict[str, Client] = {}  # read-only sessions, see _session
        # Statements checked, by text, format and parameters: their canonical text and format.
        self._checked_reads: OrderedDict[_ReadKey, tuple[str, str]] = OrderedDict()
        self._resident_after_purge = 0  # bytes, when memory was last given back
        self._settings: dict[str, dict[str, Any]] = {}
        self._reader_lock = threading.Lock()  # held while a read parses or runs
        self._reader_ran = False  # since the memory was last given back (_give_back_memory)
        self._housekeeper: Client | None = None  # runs SYSTEM JEMALLOC PURGE, never user SQL
        self._purge_failed = False
        self._stopping = False
        self._closed = False

    def start(self) -> None:
        """Bring the schema up to date (or check it is, without ``migrate``); StoreError if
        it cannot be, or the database is missing."""
        config, client = self.config, self.client
        if self._migrate:
            try:
                applied = apply_migrations(client, config)
            except ClickHouseError as exc:
                raise StoreError(_cannot_migrate(config, exc)) from exc
            for name in applied:
                log.debug("applied migration %s", name)
            if applied:
                log.info(
                    "schema of the %s brought up to date: %d migration(s), %s to %s",
                    config.describe(),
                    len(applied),
                    applied[0],
                    applied[-1],
                )
        exists = client.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}",
            parameters={"db": config.database},
        ).result_rows[0][0]
        if not exists:
            raise StoreError(
                f"the {config.describe()} has no database {config.database!r} yet: "
                "run `nextrace collect` once to create the schema"
            )
        # Unqualified table names in queries resolve to the store's database.
        client.database = config.database
        if not self._migrate:
            _check_schema_is_current(self)

    def shutdown(self, timeout_s: float = 30.0) -> None:  # noqa: ARG002 (Component's signature)
        self.close()

    def read(
        self, sql: str, fmt: str, tag: str = "", parameters: Mapping[str, Any] | None = None
    ) -> bytes:
        """Run one reading statement and return its result in ClickHouse output format ``fmt``.

        ``parameters`` fill the statement's ``{name:Type}`` placeholders through the driver.

        The statement is checked on ClickHouse's own AST (:mod:`collector.storage.read_guard`),
        and its canonical text runs on a reader session with ``readonly=1`` and the store's
        :class:`collector.config.ReadLimits`, which no query can lift. A ``FORMAT`` clause at
        the end of ``sql`` overrides ``fmt``. Raises :class:`ReadOnlyViolation` for a refused
        statement, :class:`QueryFailed` for one ClickHouse could not run or whose answer is over
        ``max_result_bytes``.

        Reads run one at a time. A read that fails, is cancelled or is refused for its size
        closes the sessions it used, so that nothing of it reaches the next read: chDB keeps the
        rows a query wrote before it failed and hands them to the next query on the same
        connection (5.8 MB of a query stopped at the row limit came back before ``42``).
        """
        with self._reader_lock:
            try:
                answer = self._read(sql, fmt, tag, dict(parameters or {}))
            except BaseException:
                self._discard_sessions()
                self._give_back_memory(always=True)
                raise
            self._give_back_memory(always=False)
            return answer

    def _read(self, sql: str, fmt: str, tag: str, parameters: dict[str, Any]) -> bytes:
        try:
            canonical, fmt = self._checked(sql, fmt, parameters)
            if self._stopping:
                raise StoreError("the collector is stopping: reads are cancelled")
            reader = self._session("reader")
            self._reader_ran = True
            # The marker lets cancel_reads find it; a comment cannot change what it does.
            marked = (
                f"/* {_READ_MARKER}{validate_identifier(tag or 'untagged', 'tag')} */ {canonical}"
            )
            limit = self.config.read_limits.max_result_bytes
            if self.config.interface == "chdb":
                # The engine writes the whole answer in this process's memory first (bounded
                # as ReadLimits.resident_bytes says); its size is checked once written.
                result: bytes = reader.raw_query(
                    marked, parameters=parameters, fmt=fmt, settings=self._settings["reader"]
                )
                if len(result) > limit:
                    # The traceback keeps this frame until the exception is collected (a cycle,
                    # in /sql); without the answer: 100 MB at a time piled up there.
                    del result
                    raise _over(limit)
                return result
            # A server sends the answer as it comes: read no more of it than the limit.
            answer = cast(
                _Readable,
                reader.raw_stream(
                    marked, parameters=parameters, fmt=fmt, settings=self._settings["reader"]
                ),
            )
            with contextlib.closing(answer):
                return _read_at_most(answer, limit)
        except ClickHouseError as exc:
            raise QueryFailed(_as_written(str(exc))) from exc

    def _checked(self, sql: str, fmt: str, parameters: dict[str, Any]) -> tuple[str, str]:
        """The canonical text of the statement ``sql`` (with ``parameters``) that may run, and
        its output format; ReadOnlyViolation if it may not. A statement checked before is not
        parsed again: a dashboard asks the same ones over and over, and each parse is two
        queries of the engine's (about 0.8 ms of CPU each, embedded)."""
        key = (sql, fmt, tuple(sorted((name, repr(v)) for name, v in parameters.items())))
        checked = self._checked_reads.get(key)
        if checked is not None:
            self._checked_reads.move_to_end(key)
            return checked
        parser = self._session("parser")
        canonical = parser.query(
            "SELECT formatQuerySingleLine({q:String})",
            parameters={"q": sql},
            settings=self._settings["parser"],
        ).result_rows[0][0]
        try:
            # No FORMAT clause is added: the driver's would be in the tree, as a child of
            # the statement (and look like the database of SHOW TABLES FROM).
            ast = parser.raw_query(
                f"EXPLAIN AST {canonical}",
                parameters=parameters,
                settings=self._settings["parser"],
            )
        except ClickHouseError as exc:
            if "READONLY" in str(exc):  # readonly=1 refuses even to explain a SETTINGS clause
                raise ReadOnlyViolation(
                    "a SETTINGS clause is not allowed: the collector fixes the read limits"
                ) from exc
            raise
        nodes = parse_explain_ast(ast.decode("utf-8", "replace"))
        # The query's own FORMAT clause wins; the driver adds the clause itself.
        own_format = _FORMAT_CLAUSE.search(canonical)
        if own_format:
            canonical = canonical[: own_format.start()]
            fmt = own_format.group(1)
            nodes = without_format(nodes, fmt)
        check_ast(nodes, self.config.database, canonical)
        self._checked_reads[key] = (canonical, fmt)
        if len(self._checked_reads) > _CHECKED_READS:
            self._checked_reads.popitem(last=False)
        return canonical, fmt

    def detach_broken_parts(self, error: BaseException) -> list[str]:
        """Detach the parts ``error`` names that ClickHouse's ``CHECK TABLE`` finds broken, as
        ClickHouse does itself with the broken parts it finds when it starts; return what was
        detached (nothing when ``error`` names no part, or only sound ones).

        A part written while the disk filled up can be committed with an empty file, and then
        every read of its table fails until a restart: the exporter could not check which
        spans of a retried batch were stored.
        """
        names = _PART_FOLDER.findall(str(error))
        if not names:
            return []
        try:
            return self._detach_broken(names=names, message=str(error))
        except ClickHouseError as exc:
            log.warning("could not check the parts a failed statement named: %s", exc)
            return []

    def detach_broken_parts_since(self, since: float) -> list[str]:
        """Detach the parts committed since ``since`` (a Unix time: when a failed insert began)
        that ``CHECK TABLE`` finds broken; return what was detached. Raises ClickHouseError
        when they cannot be checked yet (on a full disk, even reading ``system.parts`` fails).

        A full disk makes ClickHouse commit parts whose files are empty (measured on chDB:
        about once in 10 to 20 fills under traffic) while the insert fails. The running engine
        counts their rows, and their deduplication tokens swallow the retry; at the next start
        they are ``broken-on-start``, and those rows are gone. Detached, they are kept in their
        table's ``detached/`` folder, their tokens are forgotten, and the retry stores their
        rows again (:mod:`collector.storage.exporter`).
        """
        # A second's margin: the engine stamps whole seconds.
        return self._detach_broken(since=int(since) - 1)

    def _detach_broken(
        self, *, names: Sequence[str] = (), message: str = "", since: int = _NEVER
    ) -> list[str]:
        """Detach the broken ones of the parts ``message`` names (``names``) or committed since
        ``since``; what was detached."""
        database = self.config.database
        detached = []
        suspects = self.client.query(
            load_sql("parts_maybe_broken.sql"),
            parameters={
                "database": database,
                "names": list(names),
                "message": message,
                "since": since,
            },
        ).result_rows
        for table, part, rows, level in suspects:
            # Neither statement takes parameters: the names are checked, then written in.
            assert _PART_FOLDER.fullmatch(f"/{part}/"), part
            target = f"`{database}`.`{validate_identifier(table, 'table')}`"
            checked = self.client.query(
                f"CHECK TABLE {target} PART '{part}'",
                settings={"check_query_single_value_result": 0},
            ).result_rows
            if all(int(passed) for _, passed, _ in checked):
                continue
            why = checked[0][2] or message
            if int(level) > 0:
                self._reload_merged(target, table, part, why)
            else:
                self.client.command(f"ALTER TABLE {target} DETACH PART '{part}'")
                log.error(
                    "part %s of %s was broken (%s) and is detached, as ClickHouse detaches "
                    "broken parts when it starts: it stays in the table's detached/ folder, and "
                    "a batch still in the write-ahead log is inserted again",
                    part,
                    table,
                    why,
                )
            detached.append(f"{table} part {part} ({rows} rows)")
        return detached

    def _reload_merged(self, target: str, table: str, part: str, why: str) -> None:
        """A broken part that a merge made holds rows of earlier batches, which the write-ahead
        log may no longer have: detached alone, they were lost. Its table is loaded again
        instead, as ClickHouse loads it when it starts: the broken part goes to ``detached/``
        and the parts it was merged from, kept on disk (``old_parts_lifetime``, migration
        0037), are active again."""
        self.client.command(f"DETACH TABLE {target}")
        self.client.command(f"ATTACH TABLE {target}")
        log.error(
            "part %s of %s, made by a merge, was broken (%s): the table was loaded again, which "
            "detached it and brought back the parts it was merged from",
            part,
            table,
            why,
        )

    def stop_reads(self, within_s: float = 10.0) -> None:
        """Refuse new reads, and cancel the one in progress until it ends (at most ``within_s``):
        a read may reach ClickHouse just after a first cancel has looked for it."""
        self._stopping = True
        deadline = time.monotonic() + within_s
        while self._reader_lock.locked() and time.monotonic() < deadline:
            self.cancel_reads()
            time.sleep(0.1)

    def cancel_reads(self, tag: str = "") -> None:
        """Stop the read tagged ``tag`` (every read, without one), if it is running now."""
        pattern = f"%/* {_READ_MARKER}{tag}%" if tag else f"%/* {_READ_MARKER}%"
        try:
            self.client.command(
                "KILL QUERY WHERE query LIKE {p:String} AND query NOT LIKE '%KILL QUERY%' ASYNC",
                parameters={"p": pattern},
            )
        except ClickHouseError as exc:
            log.warning("could not cancel a read: %s", exc)

    def _session(self, role: str) -> Client:
        """The read-only ``parser`` or ``reader`` session, opened on first use (and again after
        a failed read closed it).

        The parser only parses (its answers are bounded by the statement's size); the reader
        runs statements under the store's :class:`collector.config.ReadLimits`. A chDB client
        keeps ``SET`` settings for its session, so the limits are set first and ``readonly=1``
        last: from then on the session refuses to change any of them. A server gets the same
        settings with every query (ClickHouse applies them before ``readonly`` takes effect),
        and ``readonly=1`` refuses a query's own ``SETTINGS``; it answers once the query has
        ended (``wait_end_of_query``), so that a query failing part-way answers an error, not
        the rows it wrote before it failed.
        """
        if self._closed:
            raise StoreError("the store is closed: reads are cancelled")
        session = self._sessions.get(role)
        if session is None:
            session = connect(self.config)
            try:
                session.database = self.config.database
                limits: dict[str, int | str] = (
                    self.config.read_limits.settings() if role == "reader" else {}
                )
                limits["max_execution_time"] = self.config.read_limits.max_execution_time_s
                if self.config.interface == "chdb":
                    for name, value in limits.items():
                        session.command(f"SET {name} = {value!r}")
                    session.command("SET readonly = 1")
                    self._settings[role] = {}
                else:
                    self._settings[role] = {**limits, "readonly": 1, "wait_end_of_query": 1}
            except BaseException:
                session.close()
                raise
            self._sessions[role] = session
        return session

    def _give_back_memory(self, *, always: bool) -> None:
        """Return to the system the memory an embedded read freed: ``always`` after a read that
        failed, else once the resident set has grown by :data:`_PURGE_AFTER_GROWTH_BYTES` since
        the last time. chDB's allocator keeps what a query freed for later (a read stopped at
        its memory limit left a process 420 MB larger, measured; after a purge, 4 MB), and
        reads on changing threads added up to more than one read's worth. A server's memory is
        its own; a chDB built without jemalloc has nothing to purge, and is not asked again."""
        if self.config.interface != "chdb" or not self._reader_ran or self._purge_failed:
            return
        resident = _resident_bytes()
        grown = resident - self._resident_after_purge
        if not always and resident and grown < _PURGE_AFTER_GROWTH_BYTES:
            return
        self._reader_ran = False
        try:
            if self._closed:
                return
            if self._housekeeper is None:
                self._housekeeper = connect(self.config)  # not read-only: it runs SYSTEM
            self._housekeeper.command("SYSTEM JEMALLOC PURGE")
            self._resident_after_purge = _resident_bytes()
        except Exception as exc:  # a read's answer must not depend on it
            self._purge_failed = True
            log.info("reads cannot give their memory back to the system: %s", exc)

    def _discard_sessions(self) -> None:
        """Close the read sessions; the next read opens new ones."""
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            with contextlib.suppress(Exception):
                session.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        sessions, self._sessions = self._sessions, {}
        housekeeper, self._housekeeper = self._housekeeper, None
        for client in (*sessions.values(), *filter(None, [housekeeper]), self.client):
            with contextlib.suppress(Exception):
                client.close()


def _resident_bytes() -> int:
    """This process's resident set; 0 where the system does not say (every read then gives
    its memory back)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class _Readable(Protocol):
    """What the driver streams a server's answer as (``urllib3``'s response)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


_CHUNK_BYTES = 1 << 20


def _read_at_most(answer: _Readable, limit: int) -> bytes:
    """The whole of ``answer``, read in chunks; :class:`QueryFailed` as soon as it is over
    ``limit`` bytes, whichever block of the result brought it there.

    ClickHouse's own ``max_result_bytes`` counts the blocks as they are in memory, checks
    them only between blocks and never cuts the last one: a single block of 100 MB passed it,
    and so do a million copies of one constant string, which take a few bytes in memory.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := answer.read(_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            chunks.clear()  # not kept alive by the traceback (see ClickHouseStore._read)
            raise _over(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _over(limit: int) -> QueryFailed:
    return QueryFailed(
        f"the result is over the read limit of {limit >> 20} MiB: select fewer rows or columns, "
        "or aggregate (LIMIT, GROUP BY)"
    )


def _as_written(message: str) -> str:
    """ClickHouse's message without the text the store wrapped around the user's query."""
    return _NOT_WRITTEN.sub("", message).strip()


def open_store(config: StoreConfig, *, migrate: bool = True) -> ClickHouseStore:
    """Connect to the store and start it: unless ``migrate`` is false, its schema is brought
    up to date."""
    store = ClickHouseStore(config, connect(config), migrate=migrate)
    try:
        store.start()
    except BaseException:
        store.close()
        raise
    return store


def _cannot_migrate(config: StoreConfig, error: ClickHouseError) -> str:
    """One line for a schema that could not be brought up to date at start."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    if "NOT_ENOUGH_SPACE" in message or "No space left" in message:
        # A full disk (the write-ahead log lives beside an embedded store by default) used to
        # end here in a traceback-shaped "unexpected error".
        return (
            f"the {config.describe()} has no room to bring its schema up to date: its disk is "
            f"full ({message}). Free space on it and start the collector again"
        )
    return f"cannot bring the schema of the {config.describe()} up to date: {message}"


def _check_schema_is_current(store: ClickHouseStore) -> None:
    """Refuse to read a store whose nextrace schema is older than this release's, whose queries
    would fail on columns and tables it lacks. A store without nextrace's migrations table (one
    the contrib exporter made) is read as it is."""
    config = store.config
    try:
        applied = applied_versions(store.client, config)
    except ClickHouseError:
        return
    latest = migrations()[-1].version
    if applied and max(applied) < latest:
        store.close()
        raise StoreError(
            f"the {config.describe()} has schema version {max(applied)}, older than this "
            f"nextrace's {latest}: run `nextrace collect` on it once to bring it up to date "
            "(its data is kept)"
        )
