"""`mkube scheduler --server URL`: run the scheduler until SIGTERM/SIGINT.

`run()` is what mkube.cli wires; `python -m mkube.scheduler.main --server URL` runs the
same thing without the launcher (used by tests that kill the process).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from mkube.client import Client
from mkube.scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler

log = logging.getLogger(__name__)


def run(server_url: str, token: str | None = None, *, scheduler_name: str = DEFAULT_SCHEDULER_NAME,
        seed: int | None = None, bind_workers: int = 8, ca_file: str | None = None,
        insecure_skip_verify: bool = False, stop: threading.Event | None = None,
        switch_interval: float | None = 0.001) -> None:
    """Schedule pods of `scheduler_name` on the cluster at `server_url` until SIGTERM or
    SIGINT (or until `stop` is set). Signal handlers are installed only when called from
    the main thread. Until the API server answers, it keeps trying (and still stops on
    a signal).

    Process-wide settings (this is meant to own its process): `switch_interval` sets
    `sys.setswitchinterval` (None leaves it) — with the default 5 ms, a binding thread
    waiting for its HTTP answer queues behind the busy scheduling loop for the GIL several
    times per request, which halved throughput in bench/scheduler.py; and httpx's
    per-request INFO log lines are turned down to WARNING.
    """
    stop = stop or threading.Event()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    client = Client(server_url, token=token, ca_file=ca_file, insecure_skip_verify=insecure_skip_verify,
                    user_agent="mkube-scheduler")
    scheduler = Scheduler(client, scheduler_name=scheduler_name, seed=seed, bind_workers=bind_workers)
    try:
        if scheduler.start(sync_timeout=None, abort=stop):  # waits for the API server as long as needed
            log.info("scheduler: running against %s", server_url)
            while not stop.wait(1.0):
                pass
    finally:
        log.info("scheduler: stopping")
        scheduler.stop()
        client.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mkube scheduler", description=__doc__)
    parser.add_argument("--server", required=True, help="API server URL, e.g. http://127.0.0.1:6443")
    parser.add_argument("--token", default=None, help="bearer token")
    parser.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER_NAME)
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible tie-breaks")
    parser.add_argument("--bind-workers", type=int, default=8)
    parser.add_argument("--certificate-authority", default=None)
    parser.add_argument("--insecure-skip-tls-verify", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(args.server, args.token, scheduler_name=args.scheduler_name, seed=args.seed,
        bind_workers=args.bind_workers, ca_file=args.certificate_authority,
        insecure_skip_verify=args.insecure_skip_tls_verify)


if __name__ == "__main__":
    main()
