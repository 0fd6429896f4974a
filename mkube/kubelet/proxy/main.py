"""Running the node proxy: `run(...)` (blocking, `mkube proxy`) and `ProxyThread`
(inside `mkube agent`, next to the kubelet).

    mkube proxy --server URL --node-name N [--node-ip IP] [--token T] [--certificate-authority CA]
        [--nodeport-address 0.0.0.0 ...] [--no-cluster-ips] [--interface mkube0]

Two informers (Services, Endpoints) feed the `Proxier`, which runs on its own asyncio
event loop (uvloop when installed). Listeners open only after both caches synced, so a
restarted proxy never serves a partial view.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any

from mkube.api.types import Endpoints, Service
from mkube.client import Client, Informer
from mkube.kubelet.nodeip import detect_node_ip
from mkube.kubelet.proxy.proxier import Proxier, ProxyOptions

log = logging.getLogger(__name__)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when available (about twice the relay throughput), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]


def run(server: str, token: str | None, node_name: str, node_ip: str | None = None, *,
        stop: threading.Event | None = None, ready: threading.Event | None = None,
        ca_file: str | None = None, **options: Any) -> None:
    """Proxy Services on this node until SIGTERM/SIGINT (when called from the main
    thread) or until `stop` is set. `node_ip` defaults to the default route's address;
    `ca_file` verifies an https server. `ready` is set once the listeners reflect the
    synced caches. `options` are ProxyOptions fields (nodeport_addresses=("0.0.0.0",),
    cluster_ips=True, interface="mkube0", ...)."""
    opts = ProxyOptions(node_name=node_name, node_ip=node_ip or detect_node_ip(), **options)
    stop = stop or threading.Event()
    client = Client(server, token=token, ca_file=ca_file, user_agent=f"mkube-proxy/{node_name}")
    services: Informer[Service] = Informer(client, Service)
    endpoints: Informer[Endpoints] = Informer(client, Endpoints)
    proxier = Proxier(opts, services.list, endpoints.get)
    for inf in (services, endpoints):
        inf.add_handler(lambda _o: proxier.request_sync(), lambda _o, _n: proxier.request_sync(),
                        lambda _o: proxier.request_sync())
    loop = new_event_loop()
    done = threading.Event()
    try:
        loop.run_until_complete(_serve(proxier, (services, endpoints), stop, done, ready))
    finally:
        done.set()  # ends the stop-watcher thread (the caller's `stop` is left alone)
        for inf in (services, endpoints):
            inf.stop()
        client.close()
        _close_loop(loop)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left (connects in flight, UDP sweepers) and close the loop."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


async def _serve(proxier: Proxier, informers: Sequence[Informer[Any]], stop: threading.Event,
                 done: threading.Event, ready: threading.Event | None) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    def wait_for_stop() -> None:
        while not stop.wait(0.2):
            if done.is_set():
                return
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(stopped.set)

    threading.Thread(target=wait_for_stop, name="proxy-stop", daemon=True).start()
    for inf in informers:
        inf.start()
    while not all(inf.has_synced() for inf in informers):
        if stop.is_set():
            return
        await asyncio.sleep(0.05)
    log.info("node proxy serving", extra={"node": proxier.options.node_name})
    if ready is not None:
        proxier.on_first_sync = ready.set
    await proxier.run(stopped)


class ProxyThread:
    """The proxy on a background thread (for `mkube agent`): `start()`, `stop()`."""

    def __init__(self, server: str, token: str | None, node_name: str, node_ip: str, **options: Any) -> None:
        self._args = (server, token, node_name, node_ip)
        self._options = options
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mkube-proxy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            run(*self._args, stop=self._stop, ready=self.ready, **self._options)
        except Exception:
            log.exception("the node proxy stopped with an error")

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mkube proxy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="API server URL, e.g. http://127.0.0.1:6443")
    p.add_argument("--token", default=None, help="bearer token")
    p.add_argument("--certificate-authority", default=None, help="CA file of an https:// server")
    p.add_argument("--node-name", required=True, help="this node's name (endpoints on it are local)")
    p.add_argument("--node-ip", default=None, help="this node's InternalIP (default: the default route's)")
    p.add_argument("--nodeport-address", action="append", default=None, metavar="IP",
                   help="address NodePorts listen on (repeatable; default 0.0.0.0 = all)")
    p.add_argument("--no-cluster-ips", action="store_true", help="do not hold/serve ClusterIPs")
    p.add_argument("--interface", default="mkube0", help="interface that holds the ClusterIPs")
    p.add_argument("--keep-interface", action="store_true", help="leave the ClusterIPs in place on exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    run(args.server, args.token, args.node_name, args.node_ip, ca_file=args.certificate_authority,
        nodeport_addresses=tuple(args.nodeport_address or ["0.0.0.0"]), cluster_ips=not args.no_cluster_ips,
        interface=args.interface, cleanup_interface=not args.keep_interface)


if __name__ == "__main__":
    main()
