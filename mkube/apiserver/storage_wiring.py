"""Opening the store, the watch hub and the compaction job of one API server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mkube.apiserver.options import ApiServerOptions
from mkube.apiserver.storage.base import Store
from mkube.apiserver.storage.compactor import start_compactor
from mkube.apiserver.storage.sql import SqlStore
from mkube.apiserver.storage.watch import WatchHub


def open_store(options: ApiServerOptions) -> Store:
    """The SqlStore at `datastore_url` (default: SQLite in `data_dir`, created if needed)."""
    url = options.effective_datastore_url
    if not options.datastore_url:
        Path(options.data_dir).mkdir(parents=True, exist_ok=True)
    return SqlStore(url)


def open_hub(store: Store) -> WatchHub:
    return WatchHub(store)


def start_compaction(store: Store, options: ApiServerOptions) -> Callable[[], None]:
    """Start the periodic compaction job; returns the function that stops it."""
    compactor = start_compactor(store, keep=options.compaction_keep,
                                interval_seconds=options.compaction_interval_seconds)
    return lambda: compactor.stop(wait=False)
