"""ControllerManager: every controller of mkube on one set of shared informers.

    manager = ControllerManager(client, ControllerOptions(node_monitor_grace_period=10))
    manager.start()      # informers, cache sync, workers, periodic jobs
    ...
    manager.stop()

One informer per kind serves all controllers (SharedInformerFactory); periodic work
(node health monitoring) runs as APScheduler interval jobs (coalesce, max_instances=1).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from mkube.client.events import EventRecorder
from mkube.client.informer import SharedInformerFactory
from mkube.client.interface import BaseClient
from mkube.controllers.base import Context, Controller, Recorder
from mkube.controllers.deployment import DeploymentController
from mkube.controllers.endpoints import EndpointsController
from mkube.controllers.garbagecollector import GarbageCollector
from mkube.controllers.nodelifecycle import NodeLifecycleController
from mkube.controllers.options import ControllerOptions
from mkube.controllers.replicaset import ReplicaSetController

log = logging.getLogger(__name__)

CONTROLLERS: dict[str, type[Controller]] = {
    "deployment": DeploymentController,
    "replicaset": ReplicaSetController,
    "endpoints": EndpointsController,
    "nodelifecycle": NodeLifecycleController,
    "garbagecollector": GarbageCollector,
}


class ControllerManager:
    """Builds the enabled controllers on shared informers; `start()`/`stop()` run them."""

    def __init__(self, client: BaseClient, options: ControllerOptions | None = None,
                 recorder: Recorder | None = None) -> None:
        self.client = client
        self.options = options or ControllerOptions()
        unknown = [n for n in self.options.controllers if n not in CONTROLLERS]
        if unknown:
            raise ValueError(f"unknown controller(s): {', '.join(unknown)}")
        self.informers = SharedInformerFactory(client, resync_period=self.options.resync_period)
        self._own_recorder = recorder is None
        self.recorder: Any = recorder if recorder is not None else EventRecorder(client, "controller-manager")
        self.context = Context(client, self.informers, self.recorder, self.options)
        self.controllers: dict[str, Controller] = {
            name: CONTROLLERS[name](self.context) for name in self.options.controllers}
        self._scheduler: BackgroundScheduler | None = None
        self._started = False
        self._lock = threading.Lock()

    def get(self, name: str) -> Controller:
        return self.controllers[name]

    def start(self, sync_timeout: float | None = 60.0, stop: threading.Event | None = None) -> bool:
        """Start informers, wait for their caches (up to `sync_timeout` seconds, or until
        `stop` is set), then the workers and periodic jobs. Returns False if `stop` was
        set first; raises TimeoutError if the caches did not sync (call again to retry)."""
        with self._lock:
            if self._started:
                return True
        self.informers.start()
        deadline = None if sync_timeout is None else time.monotonic() + sync_timeout
        while not self.informers.wait_for_sync(0.5):
            if stop is not None and stop.is_set():
                return False
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("controller-manager: informer caches did not sync")
        with self._lock:
            self._started = True
        for c in self.controllers.values():
            c.start()
        self._scheduler = BackgroundScheduler(daemon=True)
        node_lifecycle = self.controllers.get("nodelifecycle")
        if isinstance(node_lifecycle, NodeLifecycleController):
            self._scheduler.add_job(node_lifecycle.monitor, "interval", seconds=self.options.node_monitor_period,
                                    id="node-monitor", coalesce=True, max_instances=1)
        self._scheduler.start()
        log.info("controller-manager: started %s", ", ".join(self.controllers))
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop jobs, workers and informers (and the event recorder if we made it)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for c in self.controllers.values():
            c.stop(timeout)
        self.informers.stop()
        if self._own_recorder and hasattr(self.recorder, "stop"):
            self.recorder.stop(timeout)
