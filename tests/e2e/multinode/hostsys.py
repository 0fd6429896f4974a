"""Host introspection for the multi-node harness: processes (/proc), mounts, links and
network namespaces (iproute2 JSON), and small process utilities. Nothing here knows
about clusters; harness.py decides what is whose."""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
NETNS_DIR = Path("/var/run/netns")


@functools.cache
def dockerd_knows_key_path() -> bool:
    """Whether dockerd has the daemon.json setting deprecated-key-path (Docker < 23)."""
    path = shutil.which("dockerd")
    try:
        return path is not None and b"deprecated-key-path" in Path(path).read_bytes()
    except OSError:
        return False


def parallel(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """[fn(item) ...] on threads; sequentially when threads cannot be scheduled any more
    (stop() from atexit, after the interpreter shut concurrent.futures down)."""
    if len(items) < 2:
        return [fn(item) for item in items]
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(items)) as pool:
            futures = [pool.submit(fn, item) for item in items]
    except RuntimeError:
        return [fn(item) for item in items]
    return [f.result() for f in futures]


@functools.cache
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


# /proc: the harness finds processes by netns inode, command line, cgroup or recorded pid.


def pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def read(path: str | Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the comm field: [state, ppid, ...]."""
    text = read(f"/proc/{pid}/stat")
    if text is None:
        return None
    return text[text.rfind(")") + 2:].split()


def alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def starttime(pid: int) -> str | None:
    fields = stat_fields(pid)
    return fields[19] if fields else None


def cmdline(pid: int) -> list[str]:
    text = read(f"/proc/{pid}/cmdline")
    return [a for a in text.split("\0") if a] if text else []


def netns_inode_of_pid(pid: int) -> int | None:
    try:
        link = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    m = re.fullmatch(r"net:\[(\d+)\]", link)
    return int(m.group(1)) if m else None


def own_lineage() -> set[int]:
    """This process and its ancestors: never killed by a sweep."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        fields = stat_fields(pid)
        pid = int(fields[1]) if fields else 0
    return pids


def kill_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of pids is alive; return those still alive after timeout."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def mountpoints_under(prefixes: Sequence[Path]) -> list[str]:
    """Mount points at or under any prefix, deepest (latest) first."""
    text = read("/proc/self/mountinfo") or ""
    found: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[4])
        if any(mp == str(p) or mp.startswith(f"{p}/") for p in prefixes):
            found.append(mp)
    return list(reversed(found))


def ip_json(*args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    data = json.loads(proc.stdout)
    return data if isinstance(data, list) else []


def link_names() -> set[str]:
    return {str(link.get("ifname")) for link in ip_json("link", "show")}


def netns_names() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def file_inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
