"""`mkube controller-manager`: run every controller against an API server until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any

from mkube.client.rest import Client
from mkube.controllers.manager import ControllerManager
from mkube.controllers.options import ControllerOptions

log = logging.getLogger(__name__)


def run(server_url: str, token: str | None = None, *, stop: threading.Event | None = None,
        ca_file: str | None = None, **timers: Any) -> None:
    """Connect to `server_url`, run the controller manager, return after SIGTERM/SIGINT
    (or when `stop` is set). `timers` are ControllerOptions fields, e.g.
    node_monitor_grace_period=40, pod_eviction_timeout=300, node_monitor_period=5."""
    options = ControllerOptions.from_kwargs(**timers)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    client = Client(server_url, token=token, ca_file=ca_file, user_agent="mkube-controller-manager")
    manager = ControllerManager(client, options)
    try:
        # the informers retry until the API server answers; wait for them (or SIGTERM)
        if manager.start(sync_timeout=None, stop=stop):
            stop.wait()
    finally:
        manager.stop()
        client.close()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m mkube.controllers.main --server URL [timers]` (what tests and benchmarks run;
    `mkube controller-manager` is the same through mkube.cli)."""
    parser = argparse.ArgumentParser(prog="mkube controller-manager", description=__doc__)
    parser.add_argument("--server", required=True, help="API server URL, e.g. http://127.0.0.1:6443")
    parser.add_argument("--token", default=None, help="bearer token")
    parser.add_argument("--certificate-authority", default=None, help="CA file of an https:// server")
    parser.add_argument("--node-monitor-grace-period", type=float, default=None,
                        help="seconds without heartbeat before a node is Ready=Unknown (default 40)")
    parser.add_argument("--node-monitor-period", type=float, default=None,
                        help="seconds between node health checks (default 5)")
    parser.add_argument("--pod-eviction-timeout", type=int, default=None,
                        help="default toleration of not-ready/unreachable nodes, seconds (default 300)")
    parser.add_argument("--resync-period", type=float, default=None, help="informer resync, seconds (default 300)")
    parser.add_argument("--concurrent-syncs", type=int, default=None,
                        help="worker threads per controller (deployment, replicaset, endpoints, gc; default 5)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # one line per HTTP request drowns what the controllers say
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    workers = args.concurrent_syncs
    run(args.server, args.token, ca_file=args.certificate_authority,
        node_monitor_grace_period=args.node_monitor_grace_period,
        node_monitor_period=args.node_monitor_period, pod_eviction_timeout=args.pod_eviction_timeout,
        resync_period=args.resync_period, deployment_workers=workers, replicaset_workers=workers,
        endpoints_workers=workers, gc_workers=workers)


if __name__ == "__main__":
    main()
