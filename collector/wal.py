"""The write-ahead log: an accepted OTLP request is on disk before the collector answers 200.

Like the WAL of Tempo's and Loki's ingesters, it holds each accepted request
body as it was received, in segment files that are replayed on start and
deleted once everything in them is stored.

Files in the WAL folder:

- ``<first record id, 20 digits>.wal``: segments of records. A record is a
  header (payload length, CRC-32, record id, kind) and the payload. Kinds are
  an OTLP protobuf body, an OTLP/JSON body, or a *void* that names a record the
  pipeline refused after it was written (answered 503, so never replayed).
  A torn record at the end of the last segment (a crash mid-write) is cut off.
- ``checkpoint.json``: ``committed``, the last record whose spans are in the
  store; ``batch``, the record range of the insert in flight, which a restart
  re-inserts with the same deduplication token; ``keep_from``, the oldest
  record still needed (by the span insert or the Next.js normalizer).

Durability (``fsync``): ``always`` (the default) syncs before the 200, grouped
across concurrent requests, and survives power loss; ``interval`` syncs every
``fsync_interval_s`` and survives a crash or ``kill -9`` of the collector but
may lose that interval on power loss; ``never`` leaves it to the OS, which
still survives ``kill -9`` (the data is in the page cache) but not power loss.

Bounded by ``max_bytes``: when full, :meth:`append` raises
:class:`TransientError`, which the receiver answers with 503 and
``Retry-After``, so nothing is accepted that cannot be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from collector.errors import ConfigError, TransientError

log = logging.getLogger(__name__)

KIND_PROTOBUF = 1
KIND_JSON = 2
KIND_VOID = 3
FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("always", "interval", "never")

_HEADER = struct.Struct("<IIQB")  # payload length, CRC-32 of (id, kind, payload), id, kind
_VOID = struct.Struct("<Q")
_SUFFIX = ".wal"
_CHECKPOINT = "checkpoint.json"


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


@dataclass
class _Segment:
    first_id: int
    path: Path
    size: int


class WriteAheadLog:
    """Segments on disk, one writer at a time (thread-safe). ``open`` first (it recovers what
    a previous process left, see :meth:`replay`), then ``append``; ``close`` is idempotent."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 1 << 30,
        segment_bytes: int | None = None,
        fsync: FsyncPolicy = "always",
        fsync_interval_s: float = 0.2,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ConfigError(f"unknown WAL fsync policy {fsync!r}: {', '.join(FSYNC_POLICIES)}")
        # A quarter of the log, at most 64 MiB: whole segments go once stored.
        segment_bytes = segment_bytes or min(64 << 20, max_bytes // 4)
        if max_bytes < segment_bytes or segment_bytes <= _HEADER.size:
            raise ConfigError("the write-ahead log must hold at least one segment")
        self.directory = directory
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._segment_bytes = segment_bytes
        self._interval_s = fsync_interval_s
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._fd = -1
        self._next_id = 1
        self._written = 0  # bytes appended by this process, for group commit
        self._synced = 0
        self._checkpoint = Checkpoint()
        self._holders: list[Callable[[], int | None]] = []
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> Checkpoint:
        """Recover the folder: read the checkpoint, cut a torn tail, and get ready to append.

        Returns the checkpoint that :meth:`replay` continues from.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._checkpoint = self._read_checkpoint()
            for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
                first_id = int(path.stem)
                self._segments.append(_Segment(first_id, path, path.stat().st_size))
            if self._segments:
                self._next_id = self._recover_tail(self._segments[-1])
            self._next_id = max(self._next_id, self._checkpoint.committed + 1)
            self._open_segment(self._next_id)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot open the write-ahead log in {self.directory}: {exc}"
            ) from exc
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

    # -- writing ---------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    def append(self, kind: int, payload: bytes) -> int:
        """Write one record and return its id; TransientError when full or the disk fails."""
        record_size = _HEADER.size + len(payload)
        with self._lock:
            if kind != KIND_VOID and self.size_bytes + record_size > self.max_bytes:
                raise TransientError(
                    f"the write-ahead log is full ({self.size_bytes} of {self.max_bytes} bytes "
                    "waiting for the store); retry later",
                    retry_after_s=5,
                )
            record_id = self._next_id
            segment = self._segments[-1]
            try:
                _write_all(self._fd, _encode(record_id, kind, payload))
            except OSError as exc:
                # Cut a partial write, so the next record starts on a boundary.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, segment.size)
                raise TransientError(f"cannot write the write-ahead log: {exc}", 5) from exc
            self._next_id += 1
            segment.size += record_size
            self._written += record_size
            if segment.size >= self._segment_bytes:
                self._rotate()
        return record_id

    def void(self, record_id: int) -> None:
        """Mark ``record_id`` as refused: a replay skips it."""
        try:
            self.append(KIND_VOID, _VOID.pack(record_id))
        except TransientError as exc:
            log.error("could not void WAL record %d (%s): a restart may store it", record_id, exc)

    def sync(self) -> None:
        """Make everything appended so far durable (a no-op unless ``fsync`` is ``always``);
        TransientError if the disk fails.

        Concurrent callers share one ``fdatasync``: whoever syncs covers the others' records.
        """
        if self.fsync != "always":
            return
        target = self._written
        with self._sync_lock:
            if self._synced >= target:
                return
            with self._lock:
                # A duplicate: a rotation may close the original (after syncing it) meanwhile.
                fd, written = os.dup(self._fd), self._written
            try:
                os.fdatasync(fd)
            except OSError as exc:
                raise TransientError(f"cannot sync the write-ahead log: {exc}", 5) from exc
            finally:
                os.close(fd)
            self._synced = written

    async def sync_async(self) -> None:
        """:meth:`sync` off the event loop."""
        if self.fsync == "always" and self._synced < self._written:
            await asyncio.to_thread(self.sync)

    # -- progress of the pipeline ------------------------------------------------------------

    def add_holder(self, oldest_held: Callable[[], int | None]) -> None:
        """Register a stage that holds records beyond the span insert (the Next.js normalizer):
        segments holding its oldest record are kept."""
        self._holders.append(oldest_held)

    def begin_batch(self, first: int, last: int) -> None:
        """Record that records ``first``..``last`` are about to be inserted as one batch."""
        self._write_checkpoint(
            Checkpoint(self._checkpoint.committed, (first, last), self._checkpoint.keep_from)
        )

    def commit_batch(self, last: int) -> None:
        """Records up to ``last`` are stored (or counted as dropped): let their segments go."""
        held = [oldest for holder in self._holders if (oldest := holder()) is not None]
        keep_from = min([last + 1, *held])
        self._write_checkpoint(Checkpoint(last, None, keep_from))
        with self._lock:
            while len(self._segments) > 1 and self._segments[1].first_id <= keep_from:
                gone = self._segments.pop(0)
                with contextlib.suppress(FileNotFoundError):
                    gone.path.unlink()

    # -- reading back ----------------------------------------------------------------------

    def replay(self) -> Iterator[WalRecord]:
        """Every record from ``keep_from`` on that was not voided, oldest first.

        Reads the segments as they were when :meth:`open` ran; call it before appending.
        """
        keep_from = self._checkpoint.keep_from
        segments = list(self._segments)
        voided = {
            _VOID.unpack(record.payload)[0]
            for segment in segments
            for record, _ in _scan(segment.path)
            if record.kind == KIND_VOID
        }
        for segment in segments:
            for record, _ in _scan(segment.path):
                if record.kind != KIND_VOID and record.id >= keep_from and record.id not in voided:
                    yield record

    # -- internals -------------------------------------------------------------------------

    def _recover_tail(self, segment: _Segment) -> int:
        """Cut a torn record off the last segment; the id after its last whole record."""
        next_id, good = segment.first_id, 0
        for record, end in _scan(segment.path):
            next_id, good = record.id + 1, end
        if good < segment.size:
            log.warning(
                "write-ahead log %s ends in a torn record (a crash mid-write): cut %d bytes",
                segment.path,
                segment.size - good,
            )
            os.truncate(segment.path, good)
            segment.size = good
        return next_id

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
        """Close the full segment and start the next one (the lock is held)."""
        if self.fsync != "never":
            os.fdatasync(self._fd)
        os.close(self._fd)
        path = self.directory / f"{self._next_id:020d}{_SUFFIX}"
        self._segments.append(_Segment(self._next_id, path, 0))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if self.fsync == "always":
            _sync_directory(self.directory)

    def _sync_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            with self._lock:
                fd = self._fd
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.fdatasync(fd)

    def _read_checkpoint(self) -> Checkpoint:
        path = self.directory / _CHECKPOINT
        if not path.exists():
            return Checkpoint()
        data = json.loads(path.read_text(encoding="utf-8"))
        batch = data.get("batch")
        return Checkpoint(
            int(data["committed"]),
            (int(batch[0]), int(batch[1])) if batch else None,
            int(data["keep_from"]),
        )

    def _write_checkpoint(self, checkpoint: Checkpoint) -> None:
        path = self.directory / _CHECKPOINT
        temporary = path.with_suffix(".tmp")
        text = json.dumps(
            {
                "committed": checkpoint.committed,
                "batch": list(checkpoint.batch) if checkpoint.batch else None,
                "keep_from": checkpoint.keep_from,
            }
        )
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text)
                if self.fsync == "always":
                    handle.flush()
                    os.fdatasync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            # The next checkpoint will say the same and more; a restart replays a little more,
            # and the deduplication tokens keep that exact.
            log.warning("could not write the WAL checkpoint: %s", exc)
            return
        self._checkpoint = checkpoint


def _encode(record_id: int, kind: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(struct.pack("<QB", record_id, kind)))
    return _HEADER.pack(len(payload), crc, record_id, kind) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _scan(path: Path) -> Iterator[tuple[WalRecord, int]]:
    """Whole, intact records of a segment with the offset after each; stops at the first
    torn or corrupt one."""
    with open(path, "rb") as handle:
        offset = 0
        while True:
            header = handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            length, crc, record_id, kind = _HEADER.unpack(header)
            payload = handle.read(length)
            if (
                len(payload) < length
                or zlib.crc32(payload, zlib.crc32(struct.pack("<QB", record_id, kind))) != crc
            ):
                return
            offset += _HEADER.size + length
            yield WalRecord(record_id, kind, payload), offset


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
