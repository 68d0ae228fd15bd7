"""Repair what a full disk leaves in an embedded store's metadata, which keeps chDB from starting.

When the disk fills while ClickHouse creates a database or a table, it can leave the object's
metadata file empty (measured: a collector's first start on a full disk left
``metadata/otel.sql`` and two tables' ``.sql`` files empty). From then on the engine refuses
to start, space or not, with ``Empty query (in file …)`` on its console and an opaque
``Error initializing EmbeddedServer`` for the caller. :func:`repair_after_full_disk` runs only
after such a failed start, and repairs what can be repaired exactly:

- an empty database file: an Atomic database's file holds only its UUID, which names the
  folder its ``metadata/<database>`` link points to: it is written again;
- an empty table file, when no table data is left without its metadata: the table never held
  anything (its creation was cut short), so the file goes and the schema's migrations create
  the table again.

An empty table file beside table data that no metadata names (the table may have held rows)
is not guessed at: :class:`StoreError` says, in one line, which files and what to do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from collector.errors import StoreError

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NAMED_UUID = re.compile(rf"UUID '({_UUID.pattern})'")
# A data part's name, as ClickHouse makes it: partition_min_max_level[_mutation] (its folder,
# unlike detached/ or deduplication_logs/).
PART_NAME = re.compile(r"[A-Za-z0-9]+_\d+_\d+_\d+(?:_\d+)?")


def repair_after_full_disk(path: Path) -> list[str]:
    """Repair the empty metadata files of the embedded store ``path`` (see the module
    docstring); what was repaired, one line each (nothing: no such damage). StoreError for
    damage that cannot be repaired safely."""
    empty_databases = [f for f in (path / "metadata").glob("*.sql") if _is_empty(f)]
    empty_tables = [f for f in path.glob("store/*/*/*.sql") if _is_empty(f)]
    repaired = [_rewrite_database(path, file) for file in empty_databases]
    if empty_tables:
        orphans = _table_data_without_metadata(path)
        if orphans:
            raise StoreError(
                f"the embedded store {path} cannot start: a full disk left the metadata of "
                f"{len(empty_tables)} table(s) empty ({', '.join(map(str, empty_tables))}) and "
                f"table data that no metadata names is in {', '.join(map(str, orphans))}: "
                "restore the store's folder from a backup, or move that data away and delete "
                "the empty files to start with those tables empty"
            )
        for file in empty_tables:
            file.unlink()
            repaired.append(
                f"removed the empty metadata file of table {file.stem} ({file}); "
                "the table is created again"
            )
    return repaired


def _is_empty(file: Path) -> bool:
    try:
        return file.stat().st_size == 0
    except OSError:
        return False


def _rewrite_database(path: Path, file: Path) -> str:
    """Write the empty metadata ``file`` of an Atomic database again, from its folder's name."""
    folder = file.with_suffix("")
    target = Path(os.readlink(folder)).name if folder.is_symlink() else ""
    if not _UUID.fullmatch(target):
        raise StoreError(
            f"the embedded store {path} cannot start: a full disk left the metadata of database "
            f"{folder.name} ({file}) empty, and no folder names its UUID: restore the store's "
            "folder from a backup"
        )
    temporary = file.with_name(file.name + ".repair")
    temporary.write_text(f"ATTACH DATABASE _ UUID '{target}'\nENGINE = Atomic\n", encoding="utf-8")
    os.replace(temporary, file)
    return f"wrote the empty metadata file of database {folder.name} ({file}) again"


def _table_data_without_metadata(path: Path) -> list[Path]:
    """Folders of table data (with data parts) in ``store/`` that no metadata file names."""
    named = {
        Path(os.readlink(link)).name for link in (path / "metadata").iterdir() if link.is_symlink()
    }
    for file in (*(path / "metadata").glob("*.sql"), *path.glob("store/*/*/*.sql")):
        named.update(_NAMED_UUID.findall(file.read_text(encoding="utf-8", errors="replace")))
    return [
        folder
        for folder in path.glob("store/*/*")
        if folder.is_dir()
        and folder.name not in named
        and any(part.is_dir() and PART_NAME.fullmatch(part.name) for part in folder.iterdir())
    ]
