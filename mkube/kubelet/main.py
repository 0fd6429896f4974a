"""`mkube kubelet`: run the node agent against an API server until SIGTERM.

    python -m mkube.kubelet --server URL --node-name N [--node-ip IP] [--runtime docker|fake]
                            [--docker-host unix:///...] [--port 10250] [--hollow-nodes K] ...

`--runtime fake --hollow-nodes K` runs K hollow nodes `N-0 .. N-(K-1)` (kubemark) in this
one process: the same kubelet code on in-memory runtimes, sharing one API connection
pool, one pod watch and one set of worker threads.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any

from mkube.client.rest import Client
from mkube.kubelet.agent import Agent, hollow_pod_cidr
from mkube.kubelet.nodeip import detect_node_ip
from mkube.kubelet.options import DEFAULT_PORT, KubeletOptions
from mkube.kubelet.runtime.base import Runtime
from mkube.kubelet.runtime.fake import FakeRuntime
from mkube.kubelet.server import Authenticate

log = logging.getLogger(__name__)


def build_runtimes(node_name: str, options: KubeletOptions) -> list[Runtime]:
    """The runtime of each node this process runs (`options.node_ip` must be resolved)."""
    if options.runtime == "fake":
        if options.hollow_nodes > 0:
            return [FakeRuntime(f"{node_name}-{i}", pod_cidr=hollow_pod_cidr(i)) for i in range(options.hollow_nodes)]
        return [FakeRuntime(node_name, pod_cidr=hollow_pod_cidr(0))]
    if options.runtime != "docker":
        raise ValueError(f"unknown runtime {options.runtime!r} (docker or fake)")
    if options.hollow_nodes > 0:
        raise ValueError("--hollow-nodes needs --runtime fake")
    from mkube.kubelet.runtime.docker import DockerRuntime

    return [DockerRuntime(options.docker_host, node_name=node_name, extra_labels=options.runtime_labels,
                          host_ip=options.publish_address or options.node_ip)]


def run(server_url: str, node_name: str, token: str | None = None, *, stop: threading.Event | None = None,
        authenticate: Authenticate | None = None, ca_file: str | None = None, **options: Any) -> None:
    """Connect to `server_url` and run the kubelet of `node_name` (or hollow nodes) until
    SIGTERM/SIGINT, or until `stop` is set. `options` are KubeletOptions fields (None =
    default), e.g. node_ip="10.0.0.5", runtime="docker", docker_host="unix:///run/docker.sock",
    port=10250, hollow_nodes=0, root_dir=..., crashloop_backoff_initial=10."""
    opts = KubeletOptions.from_kwargs(**options)
    opts.node_ip = opts.node_ip or detect_node_ip()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    runtimes = build_runtimes(node_name, opts)
    client = Client(server_url, token=token, ca_file=ca_file, user_agent=f"mkube-kubelet/{node_name}")
    agent = Agent(client, opts, runtimes, hollow=opts.runtime == "fake", authenticate=authenticate)
    try:
        agent.start(stop)
        stop.wait()
    finally:
        agent.stop()
        client.close()
        for rt in runtimes:
            close = getattr(rt, "close", None)
            if close is not None:
                close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mkube kubelet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="API server URL, e.g. http://127.0.0.1:6443")
    p.add_argument("--token", default=None, help="bearer token")
    p.add_argument("--certificate-authority", default=None, help="CA file of an https:// server")
    p.add_argument("--node-name", required=True, help="this node's name (the prefix for hollow nodes)")
    p.add_argument("--node-ip", default=None, help="InternalIP to advertise (default: the default route's)")
    p.add_argument("--address", default=None, help="bind address of the kubelet server (default: node IP)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="kubelet server port; 0 = any free port")
    p.add_argument("--runtime", choices=("docker", "fake"), default="docker")
    p.add_argument("--docker-host", default=None, help="Docker endpoint, e.g. unix:///var/run/docker.sock")
    p.add_argument("--publish-address", default=None, help="host IP for published pod ports (default: node IP)")
    p.add_argument("--root-dir", default=None, help="pod directories (default /var/lib/mkube/kubelet)")
    p.add_argument("--hollow-nodes", type=int, default=None, help="run K hollow nodes (needs --runtime fake)")
    p.add_argument("--workers", type=int, default=None, help="pod sync threads (default 8)")
    p.add_argument("--max-pods", type=int, default=None)
    p.add_argument("--node-label", action="append", default=[], metavar="KEY=VALUE", help="extra node label")
    p.add_argument("--runtime-label", action="append", default=[], metavar="KEY=VALUE",
                   help="label put on every container this kubelet creates")
    for flag, what in (
        ("--lease-renew-interval", "seconds between Lease renewals (default 10)"),
        ("--node-status-update-frequency", "seconds between node status computations (default 10)"),
        ("--node-status-report-frequency", "write node status at least this often (default 10)"),
        ("--relist-period", "seconds between runtime relists (default 1)"),
        ("--resync-period", "seconds between full pod syncs (default 10)"),
        ("--housekeeping-period", "seconds between orphan cleanups (default 10)"),
        ("--crashloop-backoff-initial", "first CrashLoopBackOff delay (default 10; tests use less)"),
        ("--crashloop-backoff-max", "CrashLoopBackOff cap (default 300)"),
        ("--image-pull-backoff-initial", "first ImagePullBackOff delay (default 10)"),
        ("--image-pull-backoff-max", "ImagePullBackOff cap (default 300)"),
        ("--volume-refresh-period", "seconds between configMap/secret volume refreshes (default 60)"),
    ):
        p.add_argument(flag, type=float, default=None, help=what)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("httpx", "httpcore", "apscheduler", "docker", "urllib3"):  # a line per request is noise
        logging.getLogger(name).setLevel(logging.WARNING)
    labels, runtime_labels = _pairs(args.node_label, "--node-label"), _pairs(args.runtime_label, "--runtime-label")
    run(args.server, args.node_name, args.token, ca_file=args.certificate_authority,
        node_ip=args.node_ip, address=args.address, port=args.port,
        runtime=args.runtime, docker_host=args.docker_host, publish_address=args.publish_address,
        root_dir=args.root_dir, hollow_nodes=args.hollow_nodes, workers=args.workers, max_pods=args.max_pods,
        labels=labels or None, runtime_labels=runtime_labels or None, lease_renew_interval=args.lease_renew_interval,
        node_status_update_frequency=args.node_status_update_frequency,
        node_status_report_frequency=args.node_status_report_frequency, relist_period=args.relist_period,
        resync_period=args.resync_period, housekeeping_period=args.housekeeping_period,
        crashloop_backoff_initial=args.crashloop_backoff_initial, crashloop_backoff_max=args.crashloop_backoff_max,
        image_pull_backoff_initial=args.image_pull_backoff_initial,
        image_pull_backoff_max=args.image_pull_backoff_max, volume_refresh_period=args.volume_refresh_period)


if __name__ == "__main__":
    main()
