"""Which store a reading command (``sql``, ``trace``, ``slow``, ``compare``, ``report``) reads.

The default DSN (``collector.config.DEFAULT_DSN``) names the store ``nextrace collect`` makes in
the working directory. After ``nextrace demo``, whose runs each keep their own store under
:data:`DEMO_WORKDIR`, there may be none: the latest demo run's store is read then, and the
command says so on stderr. A read never makes a store: an embedded store whose folder does not
exist is a one-line error, not an empty folder left behind (chDB makes its folder, and a
``tmp`` folder in it, on opening).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from collector.config import DEFAULT_DSN, StoreConfig
from contract.errors import NextraceError

DEMO_WORKDIR = Path(".nextrace/demo")
"""Where ``nextrace demo`` keeps its runs, one folder each (``<time>-<scenario>/store``)."""


class NoStore(NextraceError):
    """The embedded store a command would read does not exist."""


def latest_demo_store(workdir: Path = DEMO_WORKDIR) -> Path | None:
    """The store of the latest demo run under ``workdir``, if one has a store: run folders are
    named by their start time, so the last name is the latest."""
    if not workdir.is_dir():
        return None
    stores = [run / "store" for run in workdir.iterdir() if (run / "store").is_dir()]
    return max(stores, key=lambda store: store.parent.name, default=None)


def store_to_read(dsn: str, say: Callable[[str], None]) -> StoreConfig:
    """The store a reading command given ``dsn`` reads: that one, or, when ``dsn`` is the
    default and no store is there, the latest demo run's (``say`` tells which)."""
    config = StoreConfig.from_dsn(dsn)
    if config.interface != "chdb":
        return config
    assert config.path is not None
    if config.path.is_dir():
        return config
    if dsn == DEFAULT_DSN:
        latest = latest_demo_store()
        if latest is not None:
            found = StoreConfig.from_dsn(f"chdb:{latest.resolve()}")
            say(f"reading the latest demo run's store, {found.describe()} (--dsn reads another)")
            return found
    raise NoStore(
        f"no store at {config.path}: run `nextrace collect` once to make one (or `nextrace "
        "demo`), or give the store with --dsn"
    )
