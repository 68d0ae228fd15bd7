"""The write-ahead log: an accepted OTLP request is on disk before the collector answers 200.

Like the WAL of Tempo's and Loki's ingesters, it holds each accepted request
body as it was received, in segment files that are replayed on start and
deleted once everything in them is stored.

Files in the WAL folder:

- ``log.json``: the log's identity. Its ``id``, made when the log is created, names the log
  in every insert's deduplication token (``wal-<id>-<first>-<last>``, see
  :func:`collector.storage.exporter.batch_token`), so that logs writing to one store never take each
  other's batches for duplicates. ``bound`` says that a store has recorded the log
  (:mod:`collector.storage.wal_binding`). A folder that an earlier release wrote (segments and no
  ``log.json``) is adopted: its batch in flight keeps the token it had (``legacy_batch``).
- ``lock``: locked (``flock``) by the process that has the log open, its pid written in it;
  a second collector is refused.
- ``<first record id, 20 digits>.wal``: segments of records. A record is a
  header (payload length, CRC-32, record id, kind) and the payload. Kinds are
  an OTLP protobuf body, an OTLP/JSON body, or a *void* that names a record the
  pipeline refused after it was written (answered 503, so never replayed).
  Record ids follow each other without a gap, within a segment and from one segment to the
  next, and a segment's records end where the next segment's begin (a segment rewritten
  after a failed sync takes over the end of the one before it, see below).
- ``checkpoint.json`` (and ``checkpoint.spare``, the one before it, over which the next is
  written in place, so that a full disk cannot stop a checkpoint): ``committed``, the last
  record whose spans are in the store; ``batch``, the record range of the insert in flight,
  which a restart re-inserts with the same deduplication token; ``keep_from``, the oldest
  record still needed (by the span insert or the Next.js normalizer).

Reading back (:meth:`WriteAheadLog.open`, then :meth:`WriteAheadLog.replay`). A record whose
checksum fails is skipped and reading goes on at the next intact record (a header and
payload that check, with an id that can come next), so a flipped byte costs one record.
Every damaged span of bytes and every missing run of records (a deleted segment) is logged
as an error, naming its segment, and listed in :attr:`WriteAheadLog.damage`. Only the
unfinished last record of the newest segment (the file ends inside it, or in zeros: a crash
mid-write, never acknowledged) is cut off with a warning.

Durability (``fsync``): ``always`` (the default) syncs before the 200, grouped
across concurrent requests, and survives power loss; ``interval`` syncs every
``fsync_interval_s`` and survives a crash or ``kill -9`` of the collector but
may lose that interval on power loss; ``never`` leaves it to the OS, which
still survives ``kill -9`` (the data is in the page cache) but not power loss.

A failed sync. The spans of a request are in the pipeline before the sync that its 200 waits
for, so a 503 then would have them stored and sent again. After a failed ``fdatasync``,
Linux may have dropped the pages it could not write, and a second ``fdatasync`` would pass
without them: the records not yet synced, which the log keeps in memory until they are, are
written again into a fresh segment, which is synced. If the disk cannot sync that either, the
request waits until its spans are stored (:meth:`WriteAheadLog.sync_async`).

Size. Bounded by ``max_bytes``: when full, :meth:`WriteAheadLog.append` raises
:class:`TransientError`, which the receiver answers with 503 and ``Retry-After``, so nothing is
accepted that cannot be written; and so when its disk has less free space than the store
beside it needs to take what the log holds (:func:`disk_reserve`). Segments are at most
64 MiB, an eighth of ``max_bytes`` and an eighth of the filesystem the log is on; a segment
goes once every record in it is stored (or counted as dropped) and no stage holds one. So that
stored records cannot pin a segment, the segment being written is closed early, and deleted,
once a quarter of a segment of it or more is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import mmap
import os
import re
import secrets
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.config import WalSettings
from collector.errors import ConfigError, TransientError

log = logging.getLogger(__name__)

KIND_PROTOBUF = 1
KIND_JSON = 2
KIND_VOID = 3

MAX_SEGMENT_BYTES = 64 << 20
MIN_SEGMENT_BYTES = 4 << 10
MAX_DISK_RESERVE = 256 << 20
MAX_UNSYNCED_BYTES = 64 << 20
"""Records kept in memory while the disk cannot sync them: past this, new requests get 503."""
STORE_WAIT_S = 10.0
"""How long a request whose records the disk cannot sync waits for the store to take them."""

_HEADER = struct.Struct("<IIQB")  # payload length, CRC-32 of (id, kind, payload), id, kind
_ID_AND_KIND = struct.Struct("<QB")
_HIGH_ID_AT = 12  # offset in a header of the id's upper four bytes, followed by the kind
_VOID = struct.Struct("<Q")
_KINDS = bytes([KIND_PROTOBUF, KIND_JSON, KIND_VOID])
_SUFFIX = ".wal"
_REWRITE_SUFFIX = ".rewrite"
_CHECKPOINT = "checkpoint.json"
_SPARE = "checkpoint.spare"
_CHECKPOINT_BYTES = 512
_IDENTITY = "log.json"
_LOCK = "lock"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True, slots=True)
class WalRecord:
    id: int
    kind: int
    payload: bytes


@dataclass(frozen=True)
class Checkpoint:
    """``committed``: last record whose spans are stored; ``batch``: the record range of
    the insert in flight, if any; ``keep_from``: the oldest record still needed."""

    committed: int = 0
    batch: tuple[int, int] | None = None
    keep_from: int = 1


@dataclass(frozen=True)
class Damage:
    """What opening the log found unreadable: ``size`` bytes at ``offset`` of ``segment``
    (``missing``: the whole segment, which is not there) and the records ``lost`` with them;
    when their count cannot be known (``exact`` False: damage at the end of the newest
    segment), only the first. ``torn``: the unfinished last write of a crash, which nothing
    had acknowledged."""

    segment: str
    offset: int
    size: int
    lost: range
    exact: bool = True
    torn: bool = False
    missing: bool = False

    def unstored(self, committed: int) -> int:
        """How many of the records lost had not been stored (``committed``: the last that
        had): acknowledged spans that no replay can store."""
        if self.torn:
            return 0
        if not self.exact:
            return int(self.lost.start > committed)
        return len(range(max(self.lost.start, committed + 1), self.lost.stop))

    def describe(self) -> str:
        first, last = self.lost.start, self.lost.stop - 1
        records = f"record {first}" if first == last else f"records {first} to {last}"
        if not self.exact:
            records = f"record {first} and perhaps more"
        if self.missing:
            return f"segment {self.segment} is missing: {records} are lost"
        if not self.size:
            return f"segment {self.segment}: {records} missing before offset {self.offset}"
        if self.torn:
            return (
                f"segment {self.segment} ends in an unfinished record (a crash mid-write, "
                f"never acknowledged): cut {self.size} bytes at offset {self.offset}"
            )
        return (
            f"segment {self.segment}: {self.size} bytes at offset {self.offset} are damaged, "
            f"{records} lost"
        )


@dataclass
class _Segment:
    first_id: int
    path: Path
    size: int


@dataclass(frozen=True)
class _Identity:
    id: str
    created: str
    bound: bool = False
    legacy_batch: tuple[int, int] | None = None

    @classmethod
    def new(cls, legacy_batch: tuple[int, int] | None = None) -> _Identity:
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(secrets.token_hex(8), created, legacy_batch=legacy_batch)


def disk_reserve(directory: Path) -> int:
    """The free space the log leaves on its filesystem: an eighth of it, at most 256 MiB.

    The store usually shares the disk (the log's default folder is inside the embedded
    store's), and it needs room to take what the log holds: a log that took the last free
    byte would wait for a store that waits for space, for ever."""
    stats = os.statvfs(directory)
    return min(MAX_DISK_RESERVE, stats.f_blocks * stats.f_frsize // 8)


def segment_size(max_bytes: int, directory: Path) -> int:
    """The size of a segment of a log of ``max_bytes`` in ``directory``: at most 64 MiB, an
    eighth of ``max_bytes`` and an eighth of the filesystem's size, at least 4 KiB."""
    stats = os.statvfs(directory)
    disk = stats.f_blocks * stats.f_frsize
    return max(MIN_SEGMENT_BYTES, min(MAX_SEGMENT_BYTES, max_bytes // 8, disk // 8))


class WriteAheadLog:
    """Segments on disk, one writer at a time (thread-safe). ``open`` first (it recovers what
    a previous process left, see :meth:`replay`), then ``append``; ``close`` is idempotent,
    and after it the log writes nothing."""

    def __init__(
        self,
        directory: Path,
        settings: WalSettings,
    ) -> None:
        """Of ``settings``, the size, fsync and segment fields; ``enabled`` and ``directory``
        are the collector's."""
        self.directory = directory
        self.max_bytes = settings.max_bytes
        self.fsync = settings.fsync
        self._segment_bytes = settings.segment_bytes
        self._check_segment_size()
        self._interval_s = settings.fsync_interval_s
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._fd = -1
        self._lock_fd = -1
        self._next_id = 1
        self._written = 0  # bytes appended by this process, for group commit
        self._synced = 0
        # Records appended and not yet synced (fsync "always"): (id, _written after it, bytes).
        self._unsynced: deque[tuple[int, int, bytes]] = deque()
        self._sync_failed = False  # a sync of a closed segment failed: rewrite before trusting
        self._stored_through = 0  # the last record stored, as far as this process knows
        self._not_for_store: set[int] = set()  # voids and voided records past _stored_through
        self._refusing = False
        self._refused_bytes = 0  # the size of the record last refused for lack of space
        self._reserve = 0  # free bytes left on the disk for the store (disk_reserve), at open
        self._quiet: dict[str, tuple[float, int]] = {}  # see _log_rarely
        self._checkpoint = Checkpoint()
        self.recovered = Checkpoint()  # what start() recovered, for the replay
        self._identity = _Identity("", "")
        self._voided: set[int] = set()
        self._holders: list[Callable[[], int | None]] = []
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        self._closed = False
        self.damage: list[Damage] = []
        """What :meth:`open` found damaged or missing (each logged as an error)."""
        self.to_replay = 0
        """Records :meth:`replay` yields."""
        self.unstored = 0
        """Records, found by :meth:`open`, that the store has not taken yet."""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """:meth:`open` the log; the checkpoint it recovered is :attr:`recovered`."""
        self.recovered = self.open()

    def shutdown(self, timeout_s: float = 30.0) -> None:  # noqa: ARG002 (Component's signature)
        self.close()

    def open(self) -> Checkpoint:
        """Lock the folder and recover it: read the checkpoint and every segment, cut an
        unfinished end, delete what is stored, and get ready to append.

        Returns the checkpoint that :meth:`replay` continues from. ConfigError, in one line,
        when another process has the log open or the folder cannot be read.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the write-ahead log folder: {exc}") from exc
        self._take_lock()
        try:
            if not self._segment_bytes:
                self._segment_bytes = segment_size(self.max_bytes, self.directory)
                self._check_segment_size()
            self._reserve = disk_reserve(self.directory)
            self._checkpoint = self._read_checkpoint()
            adopted = (self.directory / _CHECKPOINT).exists()
            for path in self.directory.glob(f"*{_REWRITE_SUFFIX}"):
                path.unlink()  # a rewrite a crash interrupted: its records are in the segments
            for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
                first_id = int(path.stem)
                self._segments.append(_Segment(first_id, path, path.stat().st_size))
            self._recover()
            self._identity = self._read_identity(adopted=adopted or bool(self._segments))
            self._open_segment(self._next_id)
            with self._lock:
                self._trim()
            # The checkpoint and its spare exist from now on, so that no later checkpoint needs
            # a free block (see _write_checkpoint): the disk may fill before the first batch.
            while not (self.directory / _SPARE).exists() and self._write_checkpoint(
                self._checkpoint
            ):
                pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._release_lock()
            raise ConfigError(
                f"cannot open the write-ahead log in {self.directory}: {exc}"
            ) from exc
        except BaseException:
            self._release_lock()
            raise
        self._stored_through = self._checkpoint.committed
        if self.fsync == "interval":
            self._syncer = threading.Thread(
                target=self._sync_loop, name="nextrace-wal", daemon=True
            )
            self._syncer.start()
        return self._checkpoint

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        with self._lock:
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
            self._release_lock()

    # -- identity --------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The log's id, made when it was created (see the module docstring)."""
        return self._identity.id

    @property
    def bound(self) -> bool:
        """Whether a store has recorded this log (:mod:`collector.storage.wal_binding`)."""
        return self._identity.bound

    @property
    def legacy_batch(self) -> tuple[int, int] | None:
        """The batch in flight when an earlier release, whose tokens named no log, last wrote
        the log: a replay inserts it with its old token (``wal-<first>-<last>``)."""
        return self._identity.legacy_batch

    def mark_bound(self) -> None:
        """Record, in the folder, that the store has recorded this log."""
        self._identity = replace(self._identity, bound=True)
        self._write_json(_IDENTITY, self._identity_document())

    def renew(self) -> None:
        """Give the log a new id, bound to no store, and let go of the records it holds: for a
        log that moves, with nothing left to store, to a store that does not know it."""
        self._identity = _Identity.new()
        self._write_json(_IDENTITY, self._identity_document())
        checkpoint = self._checkpoint
        self._write_checkpoint(Checkpoint(checkpoint.committed, None, self._next_id))
        self.to_replay = 0
        with self._lock:
            self._trim()

    # -- writing ---------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def refusing(self) -> bool:
        """True while appends are refused for lack of space (the log is full, or its disk);
        False again once one succeeds, or once there is room again: a collector that nobody
        sends to while it says it refuses (a load balancer that follows its readiness) must
        not say so for ever."""
        if self._refusing and self._has_room():
            self._refusing = False
        return self._refusing

    def _has_room(self) -> bool:
        """Whether the last request refused for lack of space would be written now."""
        room = self._refused_bytes
        try:
            free = self._free_bytes()
        except OSError:
            return False
        return self.size_bytes + room <= self.max_bytes and free - room >= self._reserve

    def append(self, kind: int, payload: bytes) -> int:
        """Write one record and return its id; TransientError when full or the disk fails."""
        record_size = _HEADER.size + len(payload)
        with self._lock:
            if self._fd < 0:
                raise TransientError("the write-ahead log is closed", retry_after_s=5)
            if kind != KIND_VOID and self.size_bytes + record_size > self.max_bytes:
                self._refusing, self._refused_bytes = True, record_size
                raise TransientError(
                    f"the write-ahead log is full ({self.size_bytes} of {self.max_bytes} bytes "
                    "waiting for the store); retry later",
                    retry_after_s=5,
                )
            if kind != KIND_VOID and self._free_bytes() - record_size < self._reserve:
                self._refusing, self._refused_bytes = True, record_size
                raise TransientError(
                    f"the disk of the write-ahead log is nearly full ({self._free_bytes()} bytes "
                    f"free, {self._reserve} kept for the store); retry later",
                    retry_after_s=5,
                )
            if kind != KIND_VOID and self._unsynced_bytes() + record_size > MAX_UNSYNCED_BYTES:
                raise TransientError(
                    f"the disk cannot sync the write-ahead log ({self._unsynced_bytes()} bytes "
                    "wait in memory for a sync or the store); retry later",
                    retry_after_s=5,
                )
            record_id = self._next_id
            segment = self._segments[-1]
            frame = _encode(record_id, kind, payload)
            try:
                _write_all(self._fd, frame)
            except OSError as exc:
                # Cut a partial write, so the next record starts on a boundary.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, segment.size)
                if kind != KIND_VOID and exc.errno in _NO_SPACE:
                    self._refusing, self._refused_bytes = True, record_size
                raise TransientError(f"cannot write the write-ahead log: {exc}", 5) from exc
            self._next_id += 1
            segment.size += record_size
            self._written += record_size
            if self.fsync == "always":
                self._unsynced.append((record_id, self._written, frame))
            if kind == KIND_VOID:
                self._not_for_store.add(record_id)
            else:
                self._refusing = False
            if segment.size >= self._segment_bytes:
                self._rotate()
        return record_id

    def void(self, record_id: int) -> None:
        """Mark ``record_id`` as refused: a replay skips it."""
        with self._lock:
            self._not_for_store.add(record_id)
        try:
            self.append(KIND_VOID, _VOID.pack(record_id))
        except TransientError as exc:
            log.error("could not void WAL record %d (%s): a restart may store it", record_id, exc)

    def sync(self) -> bool:
        """Make every record appended so far durable; True once it is (at once unless
        ``fsync`` is ``always``). Concurrent callers share one ``fdatasync``: whoever syncs
        covers the others' records.

        When ``fdatasync`` fails, the records not yet synced are written into a fresh segment,
        which is synced; False if that fails too (see :meth:`sync_async`).
        """
        if self.fsync != "always":
            return True
        target = self._written
        with self._sync_lock:
            if self._synced >= target:
                return True
            error: OSError | None = None
            with self._lock:
                if self._fd < 0:
                    return False
                written, failed_before = self._written, self._sync_failed
                try:
                    # A duplicate: a rotation may close the original (after syncing it).
                    fd = os.dup(self._fd)
                except OSError as exc:
                    fd, error = -1, exc
            if fd >= 0:
                try:
                    os.fdatasync(fd)
                except OSError as exc:
                    error = exc
                finally:
                    os.close(fd)
            with self._lock:
                # A rotation's failed sync meanwhile took the file's error: ours proves nothing.
                failed = failed_before or self._sync_failed
            if error is None and not failed:
                self._synced_to(written)
                return True
            cause = error or "an earlier sync failed"
            try:
                rewritten = self._rewrite_unsynced()
            except OSError as again:
                self._log_rarely(
                    logging.ERROR,
                    "could not sync the write-ahead log in %s (%s), nor its records not yet "
                    "synced, written again into a fresh segment (%s): requests wait until "
                    "their spans are stored",
                    self.directory,
                    cause,
                    again,
                )
                return False
            self._log_rarely(
                logging.ERROR,
                "could not sync the write-ahead log in %s (%s): its records not yet synced "
                "were written again into a fresh segment, and synced",
                self.directory,
                cause,
            )
            self._synced_to(rewritten)
            return True

    async def sync_async(self) -> None:
        """:meth:`sync` off the event loop; returns once every record appended before the call
        is durable.

        When the disk cannot sync (:meth:`sync` False), it waits until those records are
        stored, which makes them durable in the store, for at most :data:`STORE_WAIT_S`: their
        spans are in the pipeline already, and a 503 would have them sent and stored again.
        Past that, or if the log closes first, TransientError saying so.
        """
        if self.fsync != "always" or self._synced >= self._written:
            return
        last = self._next_id - 1
        if await asyncio.to_thread(self.sync):
            return
        deadline = time.monotonic() + STORE_WAIT_S
        while self._resolved_through() < last:
            if self._closed or time.monotonic() > deadline:
                raise TransientError(
                    "the disk of the write-ahead log cannot sync, and the store has not taken "
                    "these spans yet: they are in the pipeline, so a retry may store them twice",
                    retry_after_s=5,
                )
            await asyncio.sleep(0.02)

    # -- progress of the pipeline ------------------------------------------------------------

    def add_holder(self, oldest_held: Callable[[], int | None]) -> None:
        """Register a stage that holds records beyond the span insert (the Next.js normalizer):
        segments holding its oldest record are kept."""
        self._holders.append(oldest_held)

    def begin_batch(self, first: int, last: int) -> None:
        """Record that records ``first``..``last`` are about to be inserted as one batch;
        TransientError if the checkpoint cannot be written.

        The insert must wait for this record: a restart that did not know the batch would
        replay its records in other ranges, under other deduplication tokens, and store them
        twice."""
        if self._closed:
            return
        checkpoint = Checkpoint(
            self._checkpoint.committed, (first, last), self._checkpoint.keep_from
        )
        if not self._write_checkpoint(checkpoint):
            raise TransientError(
                "cannot write the write-ahead log's checkpoint; the batch waits", retry_after_s=5
            )

    def commit_batch(self, last: int) -> None:
        """Records up to ``last`` are stored (or counted as dropped): let their segments go."""
        if self._closed:
            return
        held = [oldest for holder in self._holders if (oldest := holder()) is not None]
        keep_from = min([last + 1, *held])
        with self._lock:
            self._stored_through = max(self._stored_through, last)
            self._not_for_store = {i for i in self._not_for_store if i > self._stored_through}
            # Stored records are durable in the store: a rewrite after a failed sync skips them.
            resolved = self._resolved_through_locked()
            while self._unsynced and self._unsynced[0][0] <= resolved:
                self._unsynced.popleft()
        if not self._write_checkpoint(Checkpoint(last, None, keep_from)):
            return  # the checkpoint on disk still names these records: their segments stay
        with self._lock:
            self._trim()

    # -- reading back ----------------------------------------------------------------------

    def replay(self) -> Iterator[WalRecord]:
        """Every record from ``keep_from`` on that was not voided, oldest first (damage was
        reported by :meth:`open` and is skipped).

        Reads the segments as they were when :meth:`open` ran; call it before appending.
        """
        keep_from = self._checkpoint.keep_from
        segments = list(self._segments)
        for index, segment in enumerate(segments):
            upper = segments[index + 1].first_id if index + 1 < len(segments) else None
            for item in _scan(segment.path, segment.first_id, upper):
                if (
                    isinstance(item, WalRecord)
                    and item.kind != KIND_VOID
                    and item.id >= keep_from
                    and item.id not in self._voided
                ):
                    yield item

    @property
    def records_lost(self) -> int:
        """Records not yet stored that :meth:`open` found damaged or missing."""
        return sum(d.unstored(self._checkpoint.committed) for d in self.damage)

    @property
    def bytes_damaged(self) -> int:
        """Bytes :meth:`open` found damaged (not counting an unfinished last write)."""
        return sum(d.size for d in self.damage if not d.torn)

    # -- internals -------------------------------------------------------------------------

    def _check_segment_size(self) -> None:
        if self._segment_bytes and (
            self.max_bytes < self._segment_bytes or self._segment_bytes <= _HEADER.size
        ):
            raise ConfigError("the write-ahead log must hold at least one segment")

    def _take_lock(self) -> None:
        try:
            fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot lock the write-ahead log in {self.directory}: {exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise ConfigError(
                f"the write-ahead log in {self.directory} is in use by another collector"
                f"{f' (pid {holder})' if holder.isdigit() else ''}: give each collector its "
                "own --wal-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # and with it the flock
            self._lock_fd = -1

    def _recover(self) -> None:
        """Read every segment: what replay will replay, what was voided, what is damaged or
        missing (logged); cut an unfinished or damaged end off the newest segment; and the
        next record id."""
        checkpoint = self._checkpoint
        data_ids: list[int] = []
        void_ids: list[int] = []
        expected: int | None = None  # the id after the last record read
        for index, segment in enumerate(self._segments):
            newest = index + 1 == len(self._segments)
            upper = None if newest else self._segments[index + 1].first_id
            before = checkpoint.keep_from if expected is None else expected
            if before < segment.first_id:
                self._missing(before, segment.first_id)
            expected = segment.first_id
            for item in _scan(segment.path, segment.first_id, upper):
                if isinstance(item, Damage):
                    self.damage.append(item)
                    expected = item.lost.start if newest else item.lost.stop
                    if newest and item.offset + item.size == segment.size:
                        os.truncate(segment.path, item.offset)
                        segment.size = item.offset
                    continue
                expected = item.id + 1
                if item.kind == KIND_VOID:
                    void_ids.append(item.id)
                    self._voided.add(_VOID.unpack(item.payload)[0])
                else:
                    data_ids.append(item.id)
        next_id = max(expected or 1, checkpoint.committed + 1)
        if checkpoint.batch and checkpoint.batch[1] >= next_id:
            self._missing(next_id, checkpoint.batch[1] + 1)
            next_id = checkpoint.batch[1] + 1
        self._next_id = next_id
        self.to_replay = sum(
            1 for i in data_ids if i >= checkpoint.keep_from and i not in self._voided
        )
        unstored = [i for i in data_ids if i > checkpoint.committed and i not in self._voided]
        self.unstored = len(unstored)
        self._not_for_store = {i for i in (*void_ids, *self._voided) if i > checkpoint.committed}
        for found in self.damage:
            level = logging.WARNING if found.torn else logging.ERROR
            lost = found.unstored(checkpoint.committed)
            log.log(
                level,
                "write-ahead log in %s: %s%s",
                self.directory,
                found.describe(),
                f" ({lost} of them not yet stored)" if lost else "",
            )

    def _missing(self, first: int, stop: int) -> None:
        """Records ``first`` to ``stop - 1`` are in no segment: the one from ``first`` is
        missing."""
        self.damage.append(Damage(f"{first:020d}{_SUFFIX}", 0, 0, range(first, stop), missing=True))

    def _read_identity(self, *, adopted: bool) -> _Identity:
        """The identity in ``log.json``, made (and written) when there is none; ``adopted``:
        the folder holds a log that an earlier release wrote."""
        path = self.directory / _IDENTITY
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            legacy = data.get("legacy_batch")
            return _Identity(
                str(data["id"]),
                str(data.get("created", "")),
                bool(data.get("bound", False)),
                (int(legacy[0]), int(legacy[1])) if legacy else None,
            )
        identity = _Identity.new(self._checkpoint.batch if adopted else None)
        self._identity = identity
        self._write_json(_IDENTITY, self._identity_document())
        return identity

    def _identity_document(self) -> dict[str, Any]:
        identity = self._identity
        return {
            "id": identity.id,
            "created": identity.created,
            "bound": identity.bound,
            "legacy_batch": list(identity.legacy_batch) if identity.legacy_batch else None,
        }

    def _open_segment(self, first_id: int) -> None:
        if self._segments and self._segments[-1].size < self._segment_bytes:
            segment = self._segments[-1]
        else:
            path = self.directory / f"{first_id:020d}{_SUFFIX}"
            segment = _Segment(first_id, path, 0)
            self._segments.append(segment)
        self._fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if self.fsync == "always":
            _sync_directory(self.directory)

    def _rotate(self) -> None:
        """Start a new segment at the next record id (the lock is held). If it cannot be made,
        the current segment grows, and the next append tries again."""
        path = self.directory / f"{self._next_id:020d}{_SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("cannot start the write-ahead log segment %s: %s", path, exc)
            return
        old, self._fd = self._fd, fd
        self._segments.append(_Segment(self._next_id, path, 0))
        try:
            if self.fsync != "never":
                os.fdatasync(old)
            if self.fsync == "always":
                _sync_directory(self.directory)
        except OSError:
            self._sync_failed = True  # the next sync writes the records again, see sync()
        finally:
            os.close(old)

    def _trim(self) -> None:
        """Delete the segments that hold only records before ``keep_from`` (the lock is held);
        close the segment being written early when a quarter of a segment of it is stored,
        so that it can go too."""
        if self._fd < 0:
            return  # closed: the log writes nothing more
        keep_from = self._checkpoint.keep_from
        active = self._segments[-1]
        if active.first_id < keep_from and active.size >= self._segment_bytes // 4:
            self._rotate()
        while len(self._segments) > 1 and self._segments[1].first_id <= keep_from:
            gone = self._segments.pop(0)
            try:
                gone.path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning(
                    "cannot delete the stored write-ahead log segment %s: %s", gone.path, exc
                )

    def _rewrite_unsynced(self) -> int:
        """Write the records not yet synced into a fresh segment, which replaces the later
        segments, and sync it: the bytes appended that it covers. OSError if the disk fails."""
        with self._lock:
            if self._fd < 0:
                raise OSError(errno.EBADF, "the log is closed")
            written = self._written
            frames = [frame for _, _, frame in self._unsynced]
            first = self._unsynced[0][0] if self._unsynced else self._next_id
            path = self.directory / f"{first:020d}{_SUFFIX}"
            temporary = path.with_suffix(_REWRITE_SUFFIX)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC
            fd = os.open(temporary, flags, 0o600)
            try:
                for frame in frames:
                    _write_all(fd, frame)
                # Every record of a later segment is one not yet synced, in ``frames``.
                for later in self._segments:
                    if later.first_id > first:
                        later.path.unlink(missing_ok=True)
                os.replace(temporary, path)
            except OSError:
                os.close(fd)
                with contextlib.suppress(OSError):
                    temporary.unlink()
                raise
            # The fresh segment is the one written from now on, synced or not.
            os.close(self._fd)
            self._fd = fd
            self._segments = [s for s in self._segments if s.first_id < first]
            self._segments.append(_Segment(first, path, sum(len(f) for f in frames)))
            self._sync_failed = True  # until the sync below succeeds
            os.fdatasync(fd)
            _sync_directory(self.directory)
            self._sync_failed = False
            return written

    def _unsynced_bytes(self) -> int:
        """Bytes of the records kept in memory until a sync or the store makes them durable
        (the lock is held): they follow each other in the order they were written."""
        if not self._unsynced:
            return 0
        _, after_first, first = self._unsynced[0]
        return self._written - after_first + len(first)

    def _free_bytes(self) -> int:
        stats = os.statvfs(self.directory)
        return stats.f_bavail * stats.f_frsize

    def _log_rarely(self, level: int, message: str, *args: object) -> None:
        """Log ``message`` at most once per 10 s, saying how many were held back: a disk that
        cannot sync fails every request and every checkpoint."""
        now = time.monotonic()
        until, held_back = self._quiet.get(message, (0.0, 0))
        if now < until:
            self._quiet[message] = (until, held_back + 1)
            return
        self._quiet[message] = (now + 10.0, 0)
        more = f" (and {held_back} more like it)" if held_back else ""
        log.log(level, message + "%s", *args, more)

    def _synced_to(self, written: int) -> None:
        with self._lock:
            self._synced = max(self._synced, written)
            while self._unsynced and self._unsynced[0][1] <= written:
                self._unsynced.popleft()

    def _resolved_through(self) -> int:
        with self._lock:
            return self._resolved_through_locked()

    def _resolved_through_locked(self) -> int:
        """The last record before which every record is stored, or voided (never stored)."""
        done = self._stored_through
        while done + 1 in self._not_for_store:
            done += 1
        return done

    def _sync_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            with self._lock:
                fd = self._fd
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.fdatasync(fd)

    def _read_checkpoint(self) -> Checkpoint:
        path, spare = self.directory / _CHECKPOINT, self.directory / _SPARE
        if not path.exists():
            return Checkpoint()
        if spare.exists() and os.path.samefile(spare, path):
            spare.unlink()  # a crash between the link and the rename: never write in place
        data = json.loads(path.read_text(encoding="utf-8"))
        batch = data.get("batch")
        return Checkpoint(
            int(data["committed"]),
            (int(batch[0]), int(batch[1])) if batch else None,
            int(data["keep_from"]),
        )

    def _write_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Write ``checkpoint``; whether it is on disk.

        Atomically, and with no new disk block once the log has written two: the disk may be
        full, and a batch waits for its checkpoint (:meth:`begin_batch`), so a checkpoint that
        needed room would wedge the log that frees it. The new checkpoint is written in place
        over a spare file of the same size (``checkpoint.spare``), which is renamed over the
        old one; a hard link keeps the old one as the next spare.
        """
        text = json.dumps(
            {
                "committed": checkpoint.committed,
                "batch": list(checkpoint.batch) if checkpoint.batch else None,
                "keep_from": checkpoint.keep_from,
            }
        ).encode()
        path, spare = self.directory / _CHECKPOINT, self.directory / _SPARE
        temporary = path.with_suffix(".tmp")
        try:
            if spare.exists():
                os.replace(spare, temporary)  # a rename: no block is allocated
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT, 0o600)  # no O_TRUNC: in place
            try:
                # JSON ignores the trailing spaces, which keep every checkpoint one size.
                _write_all(fd, text.ljust(_CHECKPOINT_BYTES))
                self._sync_quietly(fd, _CHECKPOINT)
            finally:
                os.close(fd)
            if path.exists():
                os.link(path, spare)
            os.replace(temporary, path)
        except OSError as exc:
            # Kept in memory all the same: the next checkpoint written carries it, and no batch
            # is inserted before its own checkpoint is written (begin_batch), so a restart
            # replays the records after the last one written under the same tokens.
            self._log_rarely(logging.WARNING, "could not write the WAL checkpoint: %s", exc)
            self._checkpoint = checkpoint
            return False
        self._checkpoint = checkpoint
        return True

    def _write_json(self, name: str, document: dict[str, Any]) -> None:
        """Replace ``name`` in the folder with ``document``, atomically (synced unless
        ``fsync`` is ``never``); OSError if it cannot be written."""
        path = self.directory / name
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document))
            handle.flush()
            self._sync_quietly(handle.fileno(), name)
        os.replace(temporary, path)

    def _sync_quietly(self, fd: int, name: str) -> None:
        """Sync ``fd`` (the file ``name``) if ``fsync`` is ``always``; a failure is logged.

        The file is still used: a restart after a crash reads it from the page cache, and only
        power loss could take it, as it takes everything a failing disk holds."""
        if self.fsync != "always":
            return
        try:
            os.fdatasync(fd)
        except OSError as exc:
            self._log_rarely(logging.WARNING, "could not sync the WAL's %s: %s", name, exc)


def _encode(record_id: int, kind: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(_ID_AND_KIND.pack(record_id, kind)))
    return _HEADER.pack(len(payload), crc, record_id, kind) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _scan(path: Path, first_id: int, upper: int | None) -> Iterator[WalRecord | Damage]:
    """The records of the segment at ``path``, whose first record is ``first_id``, in order,
    and the damage between them; ``upper``: the first record of the next segment, where this
    one's records end (None for the newest)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield from _read(data, path.name, first_id, upper)


def _read(
    data: mmap.mmap, name: str, first_id: int, upper: int | None
) -> Iterator[WalRecord | Damage]:
    size = len(data)
    offset, expected = 0, first_id
    while offset < size and (upper is None or expected < upper):
        record = _record_at(data, offset, expected, upper)
        if record is None:
            found = _next_record(data, offset, expected, upper)
            if found is None:
                torn = upper is None and _unfinished(data, offset)
                lost = range(expected, expected + 1 if upper is None else upper)
                yield Damage(name, offset, size - offset, lost, upper is not None, torn)
                return
            resume, record = found
            yield Damage(name, offset, resume - offset, range(expected, record.id))
            offset = resume
        elif record.id > expected:
            yield Damage(name, offset, 0, range(expected, record.id))
        yield record
        offset += _HEADER.size + len(record.payload)
        expected = record.id + 1


def _record_at(data: mmap.mmap, offset: int, first: int, upper: int | None) -> WalRecord | None:
    """The intact record at ``offset`` if its id is in [``first``, ``upper``), else None."""
    if offset < 0 or offset + _HEADER.size > len(data):
        return None
    length, crc, record_id, kind = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER.size
    if (
        kind not in _KINDS
        or record_id < first
        or (upper is not None and record_id >= upper)
        or start + length > len(data)
    ):
        return None
    payload = data[start : start + length]
    if zlib.crc32(payload, zlib.crc32(_ID_AND_KIND.pack(record_id, kind))) != crc:
        return None
    return WalRecord(record_id, kind, payload)


def _next_record(
    data: mmap.mmap, damaged: int, expected: int, upper: int | None
) -> tuple[int, WalRecord] | None:
    """The first intact record after the damaged one at ``damaged`` (whose id would have been
    ``expected``), with its offset; None if there is none."""
    # Most damage is inside a payload: the header still says where the next record starts.
    if damaged + _HEADER.size <= len(data):
        after = damaged + _HEADER.size + _HEADER.unpack_from(data, damaged)[0]
        record = _record_at(data, after, expected + 1, upper)
        if record is not None:
            return after, record
    # Otherwise look for a header: the upper half of an id that can come next, then a kind.
    last = upper - 1 if upper is not None else expected + len(data) // _HEADER.size
    highs = b"|".join(
        re.escape(struct.pack("<I", high)) for high in range((expected >> 32), (last >> 32) + 1)
    )
    pattern = re.compile(b"(?:" + highs + b")[" + re.escape(_KINDS) + b"]")
    for match in pattern.finditer(data, damaged + 1 + _HIGH_ID_AT):
        offset = match.start() - _HIGH_ID_AT
        record = _record_at(data, offset, expected, upper)
        if record is not None:
            return offset, record
    return None


def _unfinished(data: mmap.mmap, offset: int) -> bool:
    """Whether the bytes from ``offset`` to the end are an unfinished record: the file ends
    inside the record its header announces, or holds only zeros (written, never filled)."""
    if offset + _HEADER.size > len(data):
        return True
    if offset + _HEADER.size + _HEADER.unpack_from(data, offset)[0] > len(data):
        return True
    return not data[offset:].strip(b"\0")


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
