"""What the benchmarks share: free ports, child processes with /proc figures, a
throwaway API server, percentiles. Benchmarks run as `python bench/NAME.py`, so this
module is imported as `benchlib` (bench/ is on sys.path)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from mkube.client import Client

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


class Proc:
    """A child process with its log in the work dir; always reaped."""

    def __init__(self, cmd: list[str], log_path: Path) -> None:
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        self.p = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, PYTHONUNBUFFERED="1"))
        log.close()
        self.log_path = log_path

    def status(self) -> dict[str, int]:
        """VmRSS/VmHWM in KiB and utime+stime in clock ticks, from /proc."""
        out: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.p.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
            fields = Path(f"/proc/{self.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out["cpu_ticks"] = int(fields[11]) + int(fields[12])
        return out

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


def start_apiserver(work: Path) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc([sys.executable, "-m", "mkube.cli", "apiserver", "--data-dir", str(work / "data"), "--port",
                 str(port), "--bind-address", "127.0.0.1", "--log-format", "text", "--insecure-http"],
                work / "apiserver.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        time.sleep(0.05)
    proc.stop()
    raise RuntimeError(f"apiserver did not start; see {work / 'apiserver.log'}")


def create_all(url: str, bodies: list[dict[str, Any]], resource: str, threads: int,
               interval: float = 0.0) -> dict[str, float]:
    """POST every body from `threads` threads (one client each); returns name -> send time.
    With `interval` > 0, body i is sent no earlier than start + i * interval (a steady
    arrival rate instead of a burst)."""
    sent: dict[str, float] = {}
    start = time.monotonic()
    chunks = [list(range(len(bodies)))[i::threads] for i in range(threads)]

    def work(chunk: list[int]) -> None:
        with Client(url, user_agent="bench") as c:
            for i in chunk:
                body = bodies[i]
                time.sleep(max(0.0, start + i * interval - time.monotonic()))
                sent[body["metadata"]["name"]] = time.monotonic()
                c.create_raw(resource, body, body["metadata"].get("namespace"))

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(work, chunks))
    return sent


class PodWatcher:
    """Watches the pods of `namespace` and records the monotonic time at which each pod
    first satisfies `reached(pod) -> value` (a truthy value, kept in `value_of`)."""

    def __init__(self, client: Client, namespace: str, reached: Callable[[dict[str, Any]], Any]) -> None:
        self.seen_at: dict[str, float] = {}
        self.value_of: dict[str, Any] = {}
        self._reached = reached
        self._cond = threading.Condition()
        rv = client.list_raw("pods", namespace, limit=1)["metadata"]["resourceVersion"]
        self._watch = client.watch_raw("pods", namespace, resource_version=rv, timeout_seconds=3600)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the watch ends when the server goes at the end
            for ev in self._watch:
                if ev.type == "BOOKMARK":
                    continue
                value = self._reached(ev.object)
                name = ev.object["metadata"]["name"]
                if value and name not in self.seen_at:
                    with self._cond:
                        self.seen_at[name] = time.monotonic()
                        self.value_of[name] = value
                        self._cond.notify_all()

    def wait(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.seen_at) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 1.0))
        return True

    def close(self) -> None:
        self._watch.close()
