"""Periodic compaction of the change log, so that it stays bounded.

Like the kube-apiserver's etcd compaction: an APScheduler background job keeps the
newest `keep` revisions of the log; watches from older revisions get 410 Gone and
their clients relist. `coalesce` + `max_instances=1`: a slow run is never stacked
behind another, and missed runs collapse into one, so compaction cannot fall behind
by queueing work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from mkube.apiserver.storage.base import Store

log = logging.getLogger(__name__)

DEFAULT_KEEP = 10_000
DEFAULT_INTERVAL_SECONDS = 60.0


@dataclass
class Compactor:
    """Handle of a running compaction job."""

    scheduler: BackgroundScheduler
    keep: int
    interval_seconds: float

    def run_now(self) -> None:
        """Ask for a compaction as soon as possible (coalesced with a running one)."""
        job = self.scheduler.get_job("compact")
        if job is not None:
            job.modify(next_run_time=_now())

    def stop(self, wait: bool = True) -> None:
        """Stop the job; with `wait`, also wait for a run in progress to finish."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)


def _now() -> datetime:
    return datetime.now(UTC)


def compact_once(store: Store, keep: int) -> int:
    """One compaction; errors are logged (the next run retries), never raised."""
    try:
        boundary = store.compact(keep)
        log.debug("compacted change log up to revision %d", boundary)
        return boundary
    except Exception:
        log.exception("compacting the change log failed")
        return -1


def start_compactor(store: Store, *, keep: int = DEFAULT_KEEP,
                    interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> Compactor:
    """Start compacting `store` every `interval_seconds`, keeping the newest `keep`
    revisions. Returns the handle; call `.stop()` before `store.close()`."""
    if keep < 0 or interval_seconds <= 0:
        raise ValueError("keep must be >= 0 and interval_seconds > 0")
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1},
                                    daemon=True)
    scheduler.add_job(compact_once, "interval", args=[store, keep], id="compact",
                      seconds=interval_seconds, coalesce=True, max_instances=1,
                      misfire_grace_time=None)
    scheduler.start()
    return Compactor(scheduler=scheduler, keep=keep, interval_seconds=interval_seconds)
