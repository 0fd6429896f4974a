"""Several faithful "VMs" on one machine for multi-node e2e tests.

Each node is a network namespace with its own IP on a Linux bridge of the host and its
own Docker engine (its own dockerd, containerd, data root, docker0 and iptables rules):

    host: bridge mkbr0 10.77.0.1/24  (the API server binds here; registry 10.77.0.1:5000)
      |- veth mkv-node0 <-> eth0 10.77.0.10 in netns mk-node0, dockerd unix:///run/mkube-node0/docker.sock
      |- veth mkv-node1 <-> eth0 10.77.0.11 in netns mk-node1, dockerd unix:///run/mkube-node1/docker.sock
      `- veth mkv-node2 <-> eth0 10.77.0.12 in netns mk-node2, dockerd unix:///run/mkube-node2/docker.sock

Usage::

    with Cluster() as cluster:                          # or cluster.start() ... cluster.stop()
        node = cluster.node(0)                          # Node: name, ip, docker_host, netns, ...
        cluster.docker_client(node).containers.run(...)  # the node's own engine
        cluster.run(node, ["ip", "addr"])              # CompletedProcess, in the node's netns
        server = cluster.start_server()                 # mkube server on the bridge IP
        agent = cluster.start_agent(node, server.url, server.join_token)
        cluster.kill(agent, signal.SIGKILL)             # or SIGSTOP/SIGCONT to freeze a node
        cluster.cut_link(node); cluster.restore_link(node)    # partition / heal
        cluster.stop_engine(node, kill=True); cluster.start_engine(node)  # power cut
        status, body = cluster.http_get(f"http://{node.ip}:30080/", node=cluster.node(1))
        cluster.tcp_reachable(node.ip, 10250, node=1)   # bool
        cluster.call_in(node, fn, *args)                # run Python code "on" the node
        cluster.reset()                                 # back to just-started (fixtures)

Nodes share the host's filesystem, mount, PID and UTS namespaces: only the network (and
thus ports, routes, iptables) is per node. Pass per-node directories to anything that
keeps state (``start_agent`` does: ``--data-dir /var/lib/mkube-NODE/mkube``).

Network: the host reaches the nodes and the nodes reach the host directly (no IP
forwarding involved); node-to-node frames are bridged, but with br_netfilter they cross
the host's FORWARD chain, whose policy Docker sets to DROP, so start() inserts two rules
tagged ``mkube-multinode-<bridge>``: ACCEPT within the bridge, REJECT from the bridge to
anywhere else (nodes reach only the host and each other; DNS lookups fail at once).

Engines: ``dockerd --config-file <own, empty-ish> -H unix:///run/mkube-NODE/docker.sock
--data-root /var/lib/mkube-NODE/docker --exec-root /run/mkube-NODE/exec --bip
172.31.N.1/24 --storage-driver overlay2 --cgroup-parent /mkube-NODE --iptables=true
--insecure-registry BRIDGE_IP:5000`` run through ``nsenter --net``; each starts its own
containerd (no --containerd) and gets its own engine ID (a per-node trust key on
Docker < 23). The storage driver falls back to fuse-overlayfs, then vfs, when overlay2
does not work (or set ``MKUBE_MULTINODE_STORAGE_DRIVER``).

Images: the node engines start empty and cannot reach the internet. ``images`` (default
``mkube/pause:latest``, ``mkube/busybox:latest``) are copied from the host engine into
every node engine (``docker save | docker load``). A registry (Debian's docker-registry)
listens on ``BRIDGE_IP:5000`` (``cluster.registry``), which the node engines trust as an
insecure registry, and a second process on ``127.0.0.1:PORT`` (``cluster.local_registry``)
serves the same storage, so the host engine can push (Docker trusts 127.0.0.0/8 only):
``cluster.push_image("mkube/hello:1", "hello:1")`` returns ``"10.77.0.1:5000/hello:1"``.
``push`` (default ``{"mkube/hello:1": "hello:1"}``) is pushed at start.

Cleanup: ``stop()`` removes every container of the node engines, stops the engines and
the registry, kills every process in the namespaces or started by the harness, unmounts
and removes the node directories, deletes the namespaces, veths, bridge and iptables
rules, and returns what it could not remove (``leftovers()`` after a stop is empty).
``start()`` first removes the leftovers of a crashed run with the same names (and only
those: everything is found by name, netns inode, cgroup or recorded pid), holds a lock
file for the cluster's lifetime (a second cluster with the same bridge waits, up to
``lock_timeout`` or ``MKUBE_MULTINODE_LOCK_TIMEOUT`` seconds) and
registers ``stop`` with atexit.

Requires root, iproute2 (ip netns), nsenter, dockerd, docker (CLI), iptables (optional),
docker-registry (when ``registry_port`` is not None).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import fcntl
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import httpx

from tests.e2e.multinode import hostsys

REPO_ROOT = Path(__file__).resolve().parents[3]

DEFAULT_IMAGES: tuple[str, ...] = ("mkube/pause:latest", "mkube/busybox:latest")
DEFAULT_PUSH: Mapping[str, str] = {"mkube/hello:1": "hello:1"}
# Tried in this order when storage_driver is None: overlay2 is the fastest and works on
# ext4/xfs; fuse-overlayfs where the data root cannot hold overlay upper dirs (e.g. on
# overlayfs itself); vfs (full copies, slow but works anywhere) as the last resort.
STORAGE_DRIVERS: tuple[str, ...] = ("overlay2", "fuse-overlayfs", "vfs")
ENGINE_PROCESS_NAMES = frozenset({"dockerd", "containerd", "containerd-shim-runc-v2", "containerd-shim",
                                  "docker-proxy", "runc", "fuse-overlayfs"})
NETNS_DIR = hostsys.NETNS_DIR
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")
CGROUP_ROOT = Path("/sys/fs/cgroup")


class ClusterError(RuntimeError):
    """The cluster could not be set up or an operation on it failed; the message says why."""


class Unreachable(OSError):
    """An HTTP/TCP request from the host or a node got no answer (refused, timeout, no route)."""


@dataclass(frozen=True)
class Node:
    """One "VM": names, addresses and paths; all derived from the cluster's naming."""

    index: int
    name: str  # node0: the Kubernetes node name
    netns: str  # mk-node0
    ip: str  # 10.77.0.10
    host_veth: str  # mkv-node0 (host side; eth0 inside the namespace)
    run_dir: Path  # /run/mkube-node0: socket, pidfile, exec root
    data_dir: Path  # /var/lib/mkube-node0: docker data root, agent data dir
    bip: str  # 172.31.0.1/24: docker0 inside the node

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def docker_sock(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        """``unix:///run/mkube-node0/docker.sock``: DOCKER_HOST / --docker-host of this node."""
        return f"unix://{self.docker_sock}"

    @property
    def exec_root(self) -> Path:
        return self.run_dir / "exec"

    @property
    def data_root(self) -> Path:
        return self.data_dir / "docker"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "docker.pid"

    @property
    def cgroup_parent(self) -> str:
        """Containers of this engine live under this cgroup (in every v1 hierarchy)."""
        return f"mkube-{self.name}"

    @property
    def agent_data_dir(self) -> Path:
        return self.data_dir / "mkube"

    def __str__(self) -> str:
        return self.name


class NodeProcess(subprocess.Popen[bytes]):
    """A process started by the harness in a node's netns (``node``) or on the host
    (``node is None``), in its own session (process group = pid), stdout and stderr
    appended to ``log_path``."""

    def __init__(self, argv: Sequence[str], *, node: Node | None, name: str, log_path: Path,
                 env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> None:
        self.node = node
        self.name = name
        self.log_path = log_path
        self.argv = list(argv)
        full = _in_netns(node, argv)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"### {time.strftime('%H:%M:%S')} {shlex.join(full)}\n".encode())
            log.flush()
            super().__init__(full, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True)

    def logs(self, tail: int | None = None) -> str:
        """The process's output so far (the last ``tail`` lines if given)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-tail:]) if tail else text

    def __repr__(self) -> str:
        where = self.node.name if self.node else "host"
        return f"<NodeProcess {self.name} pid={self.pid} on {where} rc={self.returncode}>"


@dataclass(frozen=True)
class ServerHandle:
    """A `mkube server` started by Cluster.start_server."""

    proc: NodeProcess
    url: str  # https://10.77.0.1:6443
    data_dir: Path
    kubeconfig: Path  # admin kubeconfig (token + CA) written by the server
    join_token: str | None  # K10<ca-hash>::node:<secret>; None with --insecure-http


@dataclass
class _Engine:
    node: Node
    proc: NodeProcess | None = None
    baseline_images: set[str] = field(default_factory=set)


def _in_netns(node: Node | None, argv: Sequence[str]) -> list[str]:
    # nsenter --net only: `ip netns exec` also remounts /sys, after which dockerd fails
    # ("Devices cgroup isn't mounted"). nsenter execs argv (no fork), so the pid is argv's.
    if node is None:
        return list(argv)
    return ["nsenter", f"--net={node.netns_path}", "--", *argv]


def _sh(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise ClusterError(f"`{shlex.join(argv)}` failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()}")
    return proc


_REGISTRY_CONFIG = """\
# Written by tests/e2e/multinode/harness.py
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {addr}
  secret: {secret}
"""



class Cluster:
    """N "VMs" (network namespaces with their own Docker engine) on a host bridge.

    Names: nodes ``{name_prefix}{i}`` (node0..), namespaces ``{netns_prefix}{name}``
    (mk-node0..), host veths ``mkv-{name}``, bridge ``bridge`` with the first address of
    ``subnet``; node i has address ``subnet[10 + i]`` and docker0 ``172.31.i.1/24``.
    Two clusters in one machine need different bridges, subnets, name prefixes and
    registry ports.
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        subnet: str = "10.77.0.0/24",
        bridge: str = "mkbr0",
        name_prefix: str = "node",
        netns_prefix: str = "mk-",
        registry_port: int | None = 5000,
        images: Sequence[str] = DEFAULT_IMAGES,
        push: Mapping[str, str] = DEFAULT_PUSH,
        storage_driver: str | None = None,
        log_dir: str | Path | None = None,
        lock_timeout: float = 60.0,
        start_timeout: float = 60.0,
    ) -> None:
        if not 1 <= nodes <= 200:
            raise ValueError("nodes must be within 1..200")
        if len(f"mkv-{name_prefix}{nodes - 1}") > 15 or len(bridge) > 15:
            raise ValueError("interface names are limited to 15 characters; use a shorter name_prefix/bridge")
        if registry_port is None and push:
            raise ValueError("push needs a registry (registry_port is None)")
        self.subnet = ipaddress.ip_network(subnet)
        hosts = list(self.subnet.hosts())
        if len(hosts) < 10 + nodes:
            raise ValueError(f"subnet {subnet} is too small for {nodes} nodes")
        self.bridge = bridge
        self.bridge_ip = str(hosts[0])
        self.name_prefix = name_prefix
        self.netns_prefix = netns_prefix
        self.registry_port = registry_port
        self.images = tuple(images)
        self.push = dict(push)
        self.storage_driver = storage_driver or os.environ.get("MKUBE_MULTINODE_STORAGE_DRIVER") or None
        self.lock_timeout = float(os.environ.get("MKUBE_MULTINODE_LOCK_TIMEOUT", lock_timeout))
        self.start_timeout = start_timeout
        self.nodes: list[Node] = [
            Node(index=i, name=f"{name_prefix}{i}", netns=f"{netns_prefix}{name_prefix}{i}",
                 ip=str(self.subnet.network_address + 10 + i), host_veth=f"mkv-{name_prefix}{i}",
                 run_dir=Path(f"/run/mkube-{name_prefix}{i}"), data_dir=Path(f"/var/lib/mkube-{name_prefix}{i}"),
                 bip=f"172.31.{i}.1/24")
            for i in range(nodes)
        ]
        self.state_dir = Path(f"/run/mkube-multinode-{bridge}")
        self.lock_path = Path(f"/run/mkube-multinode-{bridge}.lock")
        self._user_log_dir = Path(log_dir) if log_dir is not None else None
        self.log_dir = self._user_log_dir or self.state_dir / "logs"
        self.iptables_comment = f"mkube-multinode-{bridge}"
        self.used_storage_driver: str | None = None
        self.local_registry_port: int | None = None
        self.timings: dict[str, float] = {}
        self.stale: list[str] = []  # what start() removed from a previous run
        self._engines = {n.name: _Engine(n) for n in self.nodes}
        self._clients: dict[str, docker.DockerClient] = {}
        self._processes: list[NodeProcess] = []  # started by start_process
        self._registries: list[NodeProcess] = []
        self._lock_fd: int | None = None
        self._seq = 0
        self._mutex = threading.Lock()

    # -- naming ----------------------------------------------------------------------

    @property
    def registry(self) -> str:
        """``BRIDGE_IP:PORT`` of the registry the nodes pull from (insecure, HTTP)."""
        if self.registry_port is None:
            raise ClusterError("this cluster has no registry (registry_port=None)")
        return f"{self.bridge_ip}:{self.registry_port}"

    @property
    def local_registry(self) -> str:
        """``127.0.0.1:PORT``: the same registry storage, pushable by the host engine."""
        if self.local_registry_port is None:
            raise ClusterError("the registry is not running")
        return f"127.0.0.1:{self.local_registry_port}"

    @property
    def mkube_bin(self) -> str:
        """The `mkube` console script: the repo's .venv, else next to this Python, else PATH."""
        for candidate in (REPO_ROOT / ".venv" / "bin" / "mkube", Path(sys.executable).with_name("mkube")):
            if candidate.exists():
                return str(candidate)
        found = shutil.which("mkube")
        if not found:
            raise ClusterError("mkube console script not found (pip install -e . in the repo's .venv)")
        return found

    def node(self, which: Node | str | int) -> Node:
        """A node by Node, name ("node1") or index (1)."""
        if isinstance(which, Node):
            return which
        if isinstance(which, int):
            return self.nodes[which]
        for n in self.nodes:
            if which in (n.name, n.netns, n.ip):
                return n
        raise KeyError(f"no node {which!r} (nodes: {[n.name for n in self.nodes]})")

    def __getitem__(self, which: str | int) -> Node:
        return self.node(which)

    def _node_or_host(self, which: Node | str | int | None) -> Node | None:
        return None if which is None else self.node(which)

    # -- lifecycle -------------------------------------------------------------------

    @staticmethod
    def preflight(registry: bool = True) -> list[str]:
        """What is missing to run a cluster here (empty when everything is there)."""
        problems = []
        if os.geteuid() != 0:
            problems.append("must run as root (network namespaces, bridges, dockerd)")
        tools = ["ip", "nsenter", "dockerd", "docker"] + (["docker-registry"] if registry else [])
        problems += [f"{tool} not found on PATH" for tool in tools if shutil.which(tool) is None]
        return problems

    @property
    def running(self) -> bool:
        return self._lock_fd is not None

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        problems = self.stop()
        if problems and exc[0] is None:
            raise ClusterError("cluster teardown left: " + "; ".join(problems))

    def start(self) -> Cluster:
        """Bring the cluster up: network, engines (images loaded), registry (images pushed).
        On failure everything is removed again and ClusterError says what failed."""
        if self.running:
            return self
        problems = self.preflight(registry=self.registry_port is not None)
        if problems:
            raise ClusterError("cannot start a multinode cluster: " + "; ".join(problems))
        t0 = time.monotonic()
        self._acquire_lock()
        atexit.register(self._atexit_stop)
        self.timings["lock"] = time.monotonic() - t0
        try:
            t = time.monotonic()
            self.stale = self.sweep()
            self._check_subnet_free()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._write_state()
            self.timings["sweep"] = time.monotonic() - t
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                saved = pool.submit(self._save_images)
                t = time.monotonic()
                self._setup_network()
                self.timings["network"] = time.monotonic() - t
                registry = pool.submit(self._start_registry) if self.registry_port is not None else None
                t = time.monotonic()
                self._start_engines()
                self.timings["engines"] = time.monotonic() - t
                t = time.monotonic()
                self._load_images(saved.result())
                self.timings["images"] = time.monotonic() - t
                if registry is not None:
                    t = time.monotonic()
                    registry.result()
                    for ref, name in self.push.items():
                        self.push_image(ref, name)
                    self.timings["registry"] = time.monotonic() - t
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        return self

    def stop(self) -> list[str]:
        """Tear everything down (see module doc), even after a partial start. Returns what
        could not be removed (empty on success). Safe to call twice."""
        if not self.running:
            return []
        t0 = time.monotonic()
        try:
            for proc in list(self._processes):
                self._kill_group(proc, signal.SIGKILL)
            running = [e.node for e in self._engines.values() if e.proc is not None and e.proc.poll() is None]
            # Removal errors are not reported: sweep() kills and removes what is left, and
            # leftovers() says what really remains.
            hostsys.parallel(self._remove_all_containers, running)
            hostsys.parallel(self.stop_engine, running)
            for reg in self._registries:
                self._stop_proc(reg, timeout=5.0)
        finally:
            for client in self._clients.values():
                with contextlib.suppress(Exception):
                    client.close()
            self._clients.clear()
            try:
                self.sweep()
                if self._user_log_dir is None:
                    shutil.rmtree(self.log_dir, ignore_errors=True)
                problems = self.leftovers()
            finally:
                self._processes.clear()
                self._registries.clear()
                self._release_lock()
                with contextlib.suppress(Exception):
                    atexit.unregister(self._atexit_stop)
        self.timings["stop"] = time.monotonic() - t0
        return problems

    def _atexit_stop(self) -> None:
        problems = self.stop()
        if problems:
            print(f"mkube multinode harness: teardown left {problems}", file=sys.stderr)

    def reset(self) -> list[str]:
        """Make the running cluster as started again, fast: kill processes started with
        start_process/start_agent/start_server, remove the agents' and servers' data
        directories, bring links up, restart stopped engines, and remove containers,
        networks, volumes and images (except the preloaded ones) from every node engine.
        Returns what could not be reset."""
        problems: list[str] = []
        for proc in list(self._processes):
            self._kill_group(proc, signal.SIGKILL)
        self._processes.clear()
        self._write_state()
        # State of agents and servers of the test (join credentials, pod dirs, databases).
        for d in [*(n.agent_data_dir for n in self.nodes), *self.state_dir.glob("server-*")]:
            if d.exists():
                _sh(["rm", "-rf", "--one-file-system", str(d)], check=False, timeout=60)
        for n in self.nodes:
            if not self.link_is_up(n):
                self.restore_link(n)
        for engine in self._engines.values():
            if engine.proc is None or engine.proc.poll() is not None:
                try:
                    self.start_engine(engine.node)
                except ClusterError as exc:
                    problems.append(str(exc))
        for errors in hostsys.parallel(self._clean_engine, self.nodes):
            problems += errors
        return problems

    # -- lock and state --------------------------------------------------------------

    def _acquire_lock(self) -> None:
        deadline = time.monotonic() + self.lock_timeout
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    holder = (hostsys.read(self.lock_path) or "?").strip()
                    raise ClusterError(
                        f"another multinode cluster with bridge {self.bridge} is running "
                        f"(lock {self.lock_path} held by pid {holder}) for {self.lock_timeout:.0f} s"
                    ) from None
                time.sleep(0.2)
                continue
            # A stopping cluster unlinks the lock file: make sure we locked the current one.
            if os.fstat(fd).st_ino != hostsys.file_inode(self.lock_path):
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._lock_fd = fd
            return

    def _release_lock(self) -> None:
        if self._lock_fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.lock_path.unlink()
        os.close(self._lock_fd)
        self._lock_fd = None

    def _write_state(self) -> None:
        """Record the host-side processes (pid, start time) for a later crash sweep."""
        procs = [p for p in [*self._registries, *self._processes] if p.node is None]
        state = {"pid": os.getpid(), "host_processes": [[p.pid, hostsys.starttime(p.pid)] for p in procs]}
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "state.json").write_text(json.dumps(state))

    # -- finding and removing what belongs to this cluster (also after a crash) --------

    def _all_indices(self) -> list[str]:
        """Node names of this naming that exist now or are configured (a crashed run may
        have had more nodes)."""
        pattern = re.compile(rf"^{re.escape(self.name_prefix)}\d+$")
        names = {n.name for n in self.nodes}
        for ns in hostsys.netns_names():
            if ns.startswith(self.netns_prefix) and pattern.match(ns[len(self.netns_prefix):]):
                names.add(ns[len(self.netns_prefix):])
        for link in hostsys.link_names():
            if link.startswith("mkv-") and pattern.match(link[4:]):
                names.add(link[4:])
        for base, pre in ((Path("/run"), "mkube-"), (Path("/var/lib"), "mkube-")):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.listdir(base):
                    if entry.startswith(pre) and pattern.match(entry[len(pre):]):
                        names.add(entry[len(pre):])
        return sorted(names)

    def _dirs(self, names: Sequence[str]) -> list[Path]:
        return [d for name in names for d in (Path(f"/run/mkube-{name}"), Path(f"/var/lib/mkube-{name}"))] + [
            self.state_dir
        ]

    def _cgroup_dirs(self, names: Sequence[str]) -> list[Path]:
        wanted = {f"mkube-{name}" for name in names}
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in CGROUP_ROOT.iterdir():
                if entry.name in wanted:  # cgroup v2 (unified at the root)
                    found.append(entry)
                elif entry.is_dir() and not entry.is_symlink():
                    found += [entry / w for w in wanted if (entry / w).is_dir()]
        return found

    def _our_processes(self, names: Sequence[str]) -> dict[int, str]:
        """pid -> why it is ours: in one of our netns, its command line names one of our
        directories, it is in one of our cgroups, or it is a recorded host process."""
        mine: dict[int, str] = {}
        inodes = {i: ns for ns in names if (i := hostsys.file_inode(NETNS_DIR / f"{self.netns_prefix}{ns}")) is not None}
        dirs = [str(d) for d in self._dirs(names)]
        skip = hostsys.own_lineage()
        for pid in hostsys.pids():
            if pid in skip or not hostsys.alive(pid):
                continue
            ino = hostsys.netns_inode_of_pid(pid)
            if ino in inodes:
                mine[pid] = f"in netns {self.netns_prefix}{inodes[ino]}"
                continue
            args = hostsys.cmdline(pid)
            if any(arg == d or f"{d}/" in arg for arg in args for d in dirs):
                mine[pid] = "command line names " + next(d for d in dirs if any(d in a for a in args))
        for cg in self._cgroup_dirs(names):
            for procs in cg.rglob("cgroup.procs"):
                for line in (hostsys.read(procs) or "").split():
                    if line.isdigit() and int(line) not in skip and hostsys.alive(int(line)):
                        mine.setdefault(int(line), f"in cgroup {cg}")
        state = hostsys.read(self.state_dir / "state.json")
        if state:
            with contextlib.suppress(ValueError, TypeError):
                for pid, start in json.loads(state).get("host_processes", []):
                    if hostsys.alive(pid) and hostsys.starttime(pid) == start and pid not in skip:
                        mine.setdefault(pid, "recorded host process")
        return mine

    def _iptables_rules(self) -> list[str]:
        if shutil.which("iptables") is None:
            return []
        proc = _sh(["iptables", "-w", "5", "-S", "FORWARD"], check=False)
        return [line for line in proc.stdout.splitlines() if self.iptables_comment in line]

    def leftovers(self) -> list[str]:
        """Everything of this cluster's naming that exists now (empty after stop())."""
        names = self._all_indices()
        found: list[str] = []
        found += [f"netns {ns}" for ns in hostsys.netns_names() if ns in {f"{self.netns_prefix}{n}" for n in names}]
        links = hostsys.link_names()
        found += [f"link {link}" for link in sorted(links) if link == self.bridge or link in {f"mkv-{n}" for n in names}]
        found += [f"process {pid} ({' '.join(hostsys.cmdline(pid))[:120]}): {why}"
                  for pid, why in sorted(self._our_processes(names).items())]
        found += [f"mount {mp}" for mp in hostsys.mountpoints_under(self._dirs(names))]
        found += [f"cgroup {cg}" for cg in self._cgroup_dirs(names)]
        found += [f"directory {d}" for d in self._dirs(names) if d.exists()]
        found += [f"iptables rule {rule}" for rule in self._iptables_rules()]
        if self.lock_path.exists() and not self.running:
            found.append(f"lock file {self.lock_path}")
        return found

    def sweep(self) -> list[str]:
        """Remove everything of this cluster's naming (processes, mounts, cgroups, netns,
        links, iptables rules, directories), whoever made it; return what was found.
        Called by stop() and, for a crashed previous run, by start()."""
        found = [item for item in self.leftovers() if not item.startswith("lock file")]
        if not found:
            return []
        names = self._all_indices()
        for _ in range(20):
            procs = self._our_processes(names)
            if not procs:
                break
            hostsys.kill_pids(procs, signal.SIGKILL)
            hostsys.wait_gone(procs, 2.0)
            self._reap()
        for mp in hostsys.mountpoints_under(self._dirs(names)):
            _sh(["umount", "-l", mp], check=False)
        for cg in self._cgroup_dirs(names):
            for sub in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                cg.rmdir()
        for name in names:
            ns = f"{self.netns_prefix}{name}"
            if (NETNS_DIR / ns).exists():
                _sh(["ip", "netns", "delete", ns], check=False)
        links = hostsys.link_names()
        for link in [f"mkv-{n}" for n in names] + [self.bridge]:
            if link in links:
                _sh(["ip", "link", "delete", link], check=False)
        for rule in self._iptables_rules():
            args = shlex.split(rule)
            if args and args[0] == "-A":
                _sh(["iptables", "-w", "5", "-D", *args[1:]], check=False)
        for d in self._dirs(names):
            if d.exists():
                # --one-file-system: never descend into something still mounted there.
                _sh(["rm", "-rf", "--one-file-system", str(d)], check=False, timeout=120)
        return found

    def _reap(self) -> None:
        for proc in [*self._processes, *self._registries, *(e.proc for e in self._engines.values() if e.proc)]:
            proc.poll()

    def _check_subnet_free(self) -> None:
        for addr in hostsys.ip_json("addr", "show"):
            for info in addr.get("addr_info", []):
                if info.get("family") != "inet":
                    continue
                net = ipaddress.ip_interface(f"{info['local']}/{info.get('prefixlen', 32)}").network
                if net.overlaps(self.subnet):
                    raise ClusterError(f"{self.subnet} is in use: {info['local']}/{info.get('prefixlen')} on "
                                       f"{addr.get('ifname')}; pick another subnet")
        for route in hostsys.ip_json("route", "show", "table", "all"):
            dst = route.get("dst")
            if not dst or dst == "default" or ":" in dst or route.get("type") in ("broadcast", "local"):
                continue
            with contextlib.suppress(ValueError):
                if ipaddress.ip_network(dst, strict=False).overlaps(self.subnet):
                    raise ClusterError(f"{self.subnet} overlaps route {dst} dev {route.get('dev')}; "
                                       "pick another subnet")

    # -- network ---------------------------------------------------------------------

    def _setup_network(self) -> None:
        prefix = self.subnet.prefixlen
        _sh(["ip", "link", "add", self.bridge, "type", "bridge"])
        _sh(["ip", "addr", "add", f"{self.bridge_ip}/{prefix}", "dev", self.bridge])
        _sh(["ip", "link", "set", self.bridge, "up"])
        if shutil.which("iptables"):
            # br_netfilter (bridge-nf-call-iptables=1) sends bridged node-to-node frames
            # through FORWARD, whose policy Docker sets to DROP: accept within the bridge.
            # Reject what nodes would route beyond it: tests talk only to their own
            # networks, and a prompt ICMP error makes e.g. DNS lookups (the host's
            # resolv.conf) fail at once instead of after a 10 s timeout.
            tag = ["-m", "comment", "--comment", self.iptables_comment]
            _sh(["iptables", "-w", "5", "-I", "FORWARD", "1", "-i", self.bridge, "!", "-o", self.bridge, *tag,
                 "-j", "REJECT"])
            _sh(["iptables", "-w", "5", "-I", "FORWARD", "1", "-i", self.bridge, "-o", self.bridge, *tag,
                 "-j", "ACCEPT"])
        for n in self.nodes:
            _sh(["ip", "netns", "add", n.netns])
            _sh(["ip", "link", "add", n.host_veth, "type", "veth", "peer", "name", "eth0", "netns", n.netns])
            _sh(["ip", "link", "set", n.host_veth, "master", self.bridge, "up"])
            for cmd in (["addr", "add", f"{n.ip}/{prefix}", "dev", "eth0"], ["link", "set", "eth0", "up"],
                        ["link", "set", "lo", "up"], ["route", "add", "default", "via", self.bridge_ip]):
                _sh(["ip", "-n", n.netns, *cmd])

    def cut_link(self, which: Node | str | int) -> None:
        """Partition the node from everything else (host and other nodes) by taking the
        host side of its veth down; packets are dropped, connections hang (no RST)."""
        _sh(["ip", "link", "set", self.node(which).host_veth, "down"])

    def restore_link(self, which: Node | str | int, timeout: float = 5.0) -> None:
        """Undo cut_link; returns when the bridge port forwards again."""
        n = self.node(which)
        _sh(["ip", "link", "set", n.host_veth, "up"])
        deadline = time.monotonic() + timeout
        while not self.link_is_up(n):
            if time.monotonic() >= deadline:
                raise ClusterError(f"link {n.host_veth} not up {timeout} s after restore_link")
            time.sleep(0.05)

    def link_is_up(self, which: Node | str | int) -> bool:
        n = self.node(which)
        info = hostsys.ip_json("link", "show", "dev", n.host_veth)
        return bool(info) and info[0].get("operstate") == "UP"

    # -- engines ---------------------------------------------------------------------

    def _dockerd_argv(self, n: Node, driver: str) -> list[str]:
        argv = [
            "dockerd",
            # Our own config file: the host's /etc/docker/daemon.json would clash with
            # these flags ("specified both as a flag and in the configuration file").
            "--config-file", str(n.run_dir / "daemon.json"),
            "-H", n.docker_host,
            "--data-root", str(n.data_root),
            "--exec-root", str(n.exec_root),
            "--pidfile", str(n.pidfile),
            "--bip", n.bip,
            "--storage-driver", driver,
            "--cgroup-parent", f"/{n.cgroup_parent}",
            "--iptables=true",
            "--log-driver", "json-file", "--log-opt", "max-size=10m",
            "--shutdown-timeout", "5",
        ]
        if self.registry_port is not None:
            argv += ["--insecure-registry", self.registry]
        # No --containerd: dockerd then runs its own containerd under the exec root
        # (exec/containerd/containerd.sock), so engines never share containerd state.
        return argv

    def start_engine(self, which: Node | str | int, timeout: float | None = None) -> None:
        """Start the node's dockerd (again) and wait until it answers."""
        n = self.node(which)
        driver = self.used_storage_driver or self.storage_driver or STORAGE_DRIVERS[0]
        self._spawn_engine(n, driver)
        self._wait_engine(n, timeout or self.start_timeout)

    def _spawn_engine(self, n: Node, driver: str) -> None:
        engine = self._engines[n.name]
        if engine.proc is not None and engine.proc.poll() is None:
            raise ClusterError(f"dockerd of {n.name} already runs (pid {engine.proc.pid})")
        n.run_dir.mkdir(parents=True, exist_ok=True)
        n.data_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, str] = {}
        if hostsys.dockerd_knows_key_path():
            # Docker < 23 derives the engine ID from this key (default /etc/docker/key.json,
            # shared by all engines of the machine): one key per node, distinct engine IDs.
            config["deprecated-key-path"] = str(n.data_dir / "key.json")
        (n.run_dir / "daemon.json").write_text(json.dumps(config) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        engine.proc = NodeProcess(self._dockerd_argv(n, driver), node=n, name="dockerd",
                                  log_path=self.log_dir / f"{n.name}-dockerd.log", env=env)

    def _wait_engine(self, n: Node, timeout: float) -> None:
        proc = self._engines[n.name].proc
        assert proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise ClusterError(f"dockerd of {n.name} exited with {proc.returncode}:\n{proc.logs(tail=15)}")
            if n.docker_sock.exists():
                with contextlib.suppress(httpx.HTTPError), httpx.Client(
                    transport=httpx.HTTPTransport(uds=str(n.docker_sock)), timeout=2.0, trust_env=False
                ) as http:
                    if http.get("http://docker/_ping").status_code == 200:
                        return
            if time.monotonic() >= deadline:
                raise ClusterError(f"dockerd of {n.name} did not answer within {timeout:.0f} s:\n"
                                   f"{proc.logs(tail=15)}")
            time.sleep(0.05)

    def _start_engines(self) -> None:
        drivers = [self.storage_driver] if self.storage_driver else list(STORAGE_DRIVERS)
        errors: list[str] = []
        for driver in drivers:
            for n in self.nodes:
                self._spawn_engine(n, driver)
            failed = []
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
                futures = {pool.submit(self._wait_engine, n, self.start_timeout): n for n in self.nodes}
                for fut, n in futures.items():
                    try:
                        fut.result()
                    except ClusterError as exc:
                        failed.append(f"{n.name} ({driver}): {exc}")
            if not failed:
                self.used_storage_driver = driver
                return
            errors += failed
            if not any(re.search(r"driver|overlay|fuse|graph", f, re.I) for f in failed):
                break  # not a storage problem: another driver would fail the same way
            for n in self.nodes:  # try the next driver from scratch
                self.stop_engine(n)
                _sh(["rm", "-rf", "--one-file-system", str(n.data_root)], check=False, timeout=120)
        raise ClusterError("no node engine started:\n" + "\n".join(errors))

    def stop_engine(self, which: Node | str | int, timeout: float = 15.0, kill: bool = False) -> None:
        """Stop the node's dockerd (SIGTERM; SIGKILL with kill=True or after timeout) and
        the engine processes it leaves (containerd, shims, docker-proxy). Its data root
        stays, so start_engine brings back its images; containers stop as on a reboot."""
        n = self.node(which)
        engine = self._engines[n.name]
        self._clients.pop(n.name, None)
        if engine.proc is not None and engine.proc.poll() is None:
            self._stop_proc(engine.proc, timeout=timeout, sig=signal.SIGKILL if kill else signal.SIGTERM)
        # What dockerd leaves when killed: containerd, shims and docker-proxy (found by
        # name plus our exec root or netns) and the containers (found by cgroup), as
        # after a power cut of the node.
        marker = f"{n.run_dir}/"
        netns = hostsys.file_inode(n.netns_path)
        stray = [pid for pid in hostsys.pids()
                 if hostsys.alive(pid) and (args := hostsys.cmdline(pid)) and os.path.basename(args[0]) in ENGINE_PROCESS_NAMES
                 and (any(marker in a for a in args) or hostsys.netns_inode_of_pid(pid) == netns)]
        for cg in self._cgroup_dirs([n.name]):
            for procs in cg.rglob("cgroup.procs"):
                stray += [int(p) for p in (hostsys.read(procs) or "").split() if p.isdigit()]
        hostsys.kill_pids(stray, signal.SIGKILL)
        hostsys.wait_gone(stray, 5.0)
        # The killed containerd may stay a zombie for a while (its new parent, pid 1, need
        # not reap promptly); a zombie passes dockerd's "still running" check, and the next
        # dockerd would wait for it instead of starting its own containerd.
        for pidfile in (n.pidfile, n.exec_root / "containerd" / "containerd.pid"):
            pidfile.unlink(missing_ok=True)

    def engine_running(self, which: Node | str | int) -> bool:
        proc = self._engines[self.node(which).name].proc
        return proc is not None and proc.poll() is None

    def docker_client(self, which: Node | str | int) -> docker.DockerClient:
        """A Docker SDK client of the node's engine (cached; closed at stop)."""
        n = self.node(which)
        with self._mutex:
            client = self._clients.get(n.name)
            if client is None:
                client = docker.DockerClient(base_url=n.docker_host, timeout=120)
                self._clients[n.name] = client
            return client

    def _remove_all_containers(self, n: Node, timeout: float = 30.0) -> list[str]:
        """Force-remove every container of the node's engine (a short client timeout: a
        wedged engine must not stall a teardown; sweep() kills what is left)."""
        problems = []
        api = None
        try:
            api = docker.APIClient(base_url=n.docker_host, timeout=int(timeout))
            for c in api.containers(all=True):
                for attempt in range(4):
                    try:
                        api.remove_container(c["Id"], v=True, force=True)
                        break
                    except docker.errors.NotFound:
                        break
                    except docker.errors.APIError as exc:
                        if attempt == 3:
                            problems.append(f"{n.name}: container {c['Id'][:12]}: {exc}")
                        time.sleep(0.2)
        except Exception as exc:  # the engine may be wedged; sweep() kills it anyway
            problems.append(f"{n.name}: listing containers: {exc}")
        finally:
            if api is not None:
                api.close()
        return problems

    def _clean_engine(self, n: Node) -> list[str]:
        problems = self._remove_all_containers(n)
        try:
            client = self.docker_client(n)
            for net in client.api.networks():
                if net["Name"] not in ("bridge", "host", "none"):
                    with contextlib.suppress(docker.errors.NotFound):
                        client.api.remove_network(net["Id"])
            client.api.prune_volumes()
            baseline = self._engines[n.name].baseline_images
            for img in client.api.images(all=False):
                if img["Id"] not in baseline:
                    with contextlib.suppress(docker.errors.NotFound):
                        client.api.remove_image(img["Id"], force=True)
        except docker.errors.APIError as exc:
            problems.append(f"{n.name}: {exc}")
        return problems

    # -- images and registry ---------------------------------------------------------

    def _save_images(self) -> Path | None:
        if not self.images:
            return None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tar = self.state_dir / "images.tar"
        proc = _sh(["docker", "save", "-o", str(tar), *self.images], check=False, timeout=300)
        if proc.returncode != 0:
            raise ClusterError(f"docker save {' '.join(self.images)} on the host engine failed "
                               f"(run images/build.sh first?): {proc.stderr.strip()}")
        return tar

    def _load_images(self, tar: Path | None) -> None:
        def load(n: Node) -> None:
            client = self.docker_client(n)
            if tar is not None:
                with open(tar, "rb") as f:
                    errors = [str(line.get("error") or line.get("errorDetail"))
                              for line in client.api.load_image(f, quiet=True)
                              if isinstance(line, dict) and ("error" in line or "errorDetail" in line)]
                if errors:
                    raise ClusterError(f"docker load into {n.name} failed: {'; '.join(errors)}")
            self._engines[n.name].baseline_images = {img["Id"] for img in client.api.images(all=True)}

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(load, self.nodes))
        if tar is not None:
            tar.unlink(missing_ok=True)

    def _start_registry(self) -> None:
        """Two docker-registry processes on one storage: BRIDGE_IP:PORT for the nodes and
        127.0.0.1:<free port> for the host engine (which trusts only 127.0.0.0/8)."""
        assert self.registry_port is not None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.local_registry_port = int(s.getsockname()[1])
        storage = self.state_dir / "registry"
        storage.mkdir(parents=True, exist_ok=True)
        for tag, addr in (("bridge", self.registry), ("local", self.local_registry)):
            cfg = self.state_dir / f"registry-{tag}.yml"
            cfg.write_text(_REGISTRY_CONFIG.format(root=storage, addr=addr, secret=os.urandom(16).hex()))
            proc = NodeProcess(["docker-registry", "serve", str(cfg)], node=None, name=f"registry-{tag}",
                               log_path=self.log_dir / f"registry-{tag}.log")
            self._registries.append(proc)
        self._write_state()
        deadline = time.monotonic() + 20.0
        for proc, addr in zip(self._registries, (self.registry, self.local_registry), strict=True):
            while True:
                if proc.poll() is not None:
                    raise ClusterError(f"docker-registry on {addr} exited ({proc.returncode}; port in use?):\n"
                                       f"{proc.logs(tail=10)}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://{addr}/v2/", timeout=1.0, trust_env=False).status_code == 200:
                        break
                if time.monotonic() >= deadline:
                    raise ClusterError(f"docker-registry on {addr} did not answer:\n{proc.logs(tail=10)}")
                time.sleep(0.05)

    def push_image(self, ref: str, name: str) -> str:
        """Push the host engine's image ``ref`` to the registry as ``name`` ("hello:1");
        return the reference the nodes pull (``BRIDGE_IP:PORT/name``)."""
        local = f"{self.local_registry}/{name}"
        host = docker.from_env(timeout=120)
        try:
            repo, _, tag = local.rpartition(":")
            host.api.tag(ref, repo, tag)
            try:
                errors = [str(line.get("error") or line.get("errorDetail"))
                          for line in host.api.push(repo, tag=tag, stream=True, decode=True)
                          if "error" in line or "errorDetail" in line]
            finally:
                with contextlib.suppress(docker.errors.APIError):
                    host.api.remove_image(local, noprune=True)  # only the tag
            if errors:
                raise ClusterError(f"docker push {local} failed: {'; '.join(errors)}")
        except docker.errors.ImageNotFound as exc:
            raise ClusterError(f"{ref} is not in the host engine (run images/build.sh): {exc}") from None
        finally:
            host.close()
        return f"{self.registry}/{name}"

    # -- processes -------------------------------------------------------------------

    def run(self, which: Node | str | int | None, argv: Sequence[str] | str, *, check: bool = True,
            timeout: float = 60.0, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv (a string runs under ``sh -c``) in the node's netns (``None``: on the
        host) and wait; ClusterError on a non-zero exit when check."""
        n = self._node_or_host(which)
        args = ["sh", "-c", argv] if isinstance(argv, str) else list(argv)
        proc = subprocess.run(_in_netns(n, args), capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise ClusterError(f"`{shlex.join(args)}` on {n or 'host'} failed (exit {proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}")
        return proc

    def start_process(self, which: Node | str | int | None, argv: Sequence[str],
                      env: Mapping[str, str | None] | None = None, *, name: str | None = None,
                      cwd: str | Path | None = None) -> NodeProcess:
        """Start argv in the node's netns (``None``: on the host) in its own session,
        output to ``log_dir/<node>-<name>-<n>.log``. The environment is ours updated by
        env (a None value unsets). Killed by kill(), reset() and stop()."""
        n = self._node_or_host(which)
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        with self._mutex:
            self._seq += 1
            seq = self._seq
        label = name or os.path.basename(argv[0])
        log_path = self.log_dir / f"{n.name if n else 'host'}-{label}-{seq}.log"
        proc = NodeProcess(argv, node=n, name=label, log_path=log_path, env=full_env, cwd=cwd)
        self._processes.append(proc)
        if n is None:
            self._write_state()
        return proc

    def start_agent(self, which: Node | str | int, server_url: str, token: str | None,
                    extra_args: Sequence[str] = (), env: Mapping[str, str | None] | None = None) -> NodeProcess:
        """``mkube agent --server URL --token T --node-name NAME --node-ip IP --docker-host
        unix:///run/mkube-NAME/docker.sock --data-dir /var/lib/mkube-NAME/mkube
        EXTRA...`` in the node's netns (--data-dir only if extra_args has none)."""
        n = self.node(which)
        argv = [self.mkube_bin, "agent", "--server", server_url]
        if token is not None:
            argv += ["--token", token]
        argv += ["--node-name", n.name, "--node-ip", n.ip, "--docker-host", n.docker_host]
        if not any(a == "--data-dir" or a.startswith("--data-dir=") for a in extra_args):
            argv += ["--data-dir", str(n.agent_data_dir)]
        return self.start_process(n, [*argv, *extra_args], env=env, name="agent")

    def start_server(self, extra_args: Sequence[str] = (), *, port: int = 6443, data_dir: Path | None = None,
                     timeout: float = 60.0) -> ServerHandle:
        """``mkube server --bind-address BRIDGE_IP --port PORT --tls-san BRIDGE_IP
        --data-dir DIR EXTRA...`` on the host (where a real cluster's first VM would run
        it); returns once it wrote ``DIR/kubeconfig.yaml`` (after it is ready), with the
        join token from ``DIR/node-token`` (None with --insecure-http). DIR defaults to a
        fresh directory removed by stop()."""
        if data_dir is None:
            with self._mutex:
                self._seq += 1
                data_dir = self.state_dir / f"server-{self._seq}"
        insecure = "--insecure-http" in extra_args
        argv = [self.mkube_bin, "server", "--bind-address", self.bridge_ip, "--port", str(port),
                "--data-dir", str(data_dir)]
        if not insecure:
            argv += ["--tls-san", self.bridge_ip]
        proc = self.start_process(None, [*argv, *extra_args], name="server")
        kubeconfig = data_dir / "kubeconfig.yaml"
        deadline = time.monotonic() + timeout
        while not kubeconfig.exists():
            if proc.poll() is not None:
                raise ClusterError(f"mkube server exited with {proc.returncode}:\n{proc.logs(tail=20)}")
            if time.monotonic() >= deadline:
                raise ClusterError(f"mkube server not ready within {timeout} s:\n{proc.logs(tail=20)}")
            time.sleep(0.1)
        token_file = data_dir / "node-token"
        token = token_file.read_text().strip() if token_file.exists() else None
        url = f"{'http' if insecure else 'https'}://{self.bridge_ip}:{port}"
        return ServerHandle(proc=proc, url=url, data_dir=data_dir, kubeconfig=kubeconfig, join_token=token)

    def kill(self, proc: NodeProcess, sig: int = signal.SIGKILL, timeout: float = 10.0) -> int | None:
        """Send sig to the process's group. For SIGKILL/SIGTERM/SIGINT wait up to timeout
        and return the exit status (None if it still runs; once it exited it is no longer
        in ``processes``); other signals (SIGSTOP to freeze, SIGCONT) return None at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        if sig not in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            return None
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if proc in self._processes:
            self._processes.remove(proc)
        return code

    def _kill_group(self, proc: NodeProcess, sig: int) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5.0)
        if proc in self._processes:
            self._processes.remove(proc)

    @staticmethod
    def _stop_proc(proc: NodeProcess, timeout: float, sig: int = signal.SIGTERM) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5.0)

    @property
    def processes(self) -> list[NodeProcess]:
        """Processes started by start_process/start_agent and not killed by the harness."""
        return list(self._processes)

    # -- reachability helpers ----------------------------------------------------------

    def call_in(self, which: Node | str | int | None, fn: Callable[..., T], *args: Any,
                timeout: float = 120.0) -> T:
        """fn(*args) on a thread that joined the node's network namespace (None: here):
        sockets it opens (httpx, kubernetes client, ...) live in that node's network, as
        if the code ran on that "VM". Returns fn's result or raises its exception."""
        n = self._node_or_host(which)
        if n is None:
            return fn(*args)
        box: dict[str, Any] = {}

        def body() -> None:
            try:
                # setns() moves only this thread; it ends with the thread.
                with open(n.netns_path, "rb") as f:
                    if hostsys.libc().setns(f.fileno(), _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns({n.netns_path}) failed")
                box["result"] = fn(*args)
            except BaseException as exc:  # handed to the caller
                box["error"] = exc

        thread = threading.Thread(target=body, name=f"netns-{n.name}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} in {n.name} still runs after {timeout} s")
        if "error" in box:
            raise box["error"]
        return box["result"]  # type: ignore[no-any-return]

    def _probe(self, n: Node | None, mode: str, target: str, timeout: float) -> tuple[int, str]:
        def probe() -> tuple[int, str]:
            try:
                if mode == "tcp":
                    host, _, port = target.rpartition(":")
                    socket.create_connection((host, int(port)), timeout=timeout).close()
                    return 0, ""
                resp = httpx.get(target, timeout=timeout, trust_env=False)
                return resp.status_code, resp.text
            except (OSError, httpx.HTTPError) as exc:
                where = n.name if n else "host"
                raise Unreachable(f"{target} from {where}: {type(exc).__name__}: {exc}") from None

        return self.call_in(n, probe, timeout=timeout + 30.0)

    def http_get(self, url: str, *, node: Node | str | int | None = None, timeout: float = 5.0) -> tuple[int, str]:
        """GET url from the node's netns (None: the host); (status, body). Raises
        Unreachable when nothing answers. Proxy settings are ignored."""
        return self._probe(self._node_or_host(node), "http", url, timeout)

    def tcp_reachable(self, ip: str, port: int, *, node: Node | str | int | None = None,
                      timeout: float = 2.0) -> bool:
        """True if a TCP connection to ip:port from the node (None: host) succeeds."""
        try:
            self._probe(self._node_or_host(node), "tcp", f"{ip}:{port}", timeout)
        except Unreachable:
            return False
        return True

    def wait_http(self, url: str, *, node: Node | str | int | None = None, timeout: float = 30.0,
                  expect: Callable[[int, str], bool] = lambda status, _body: status == 200) -> tuple[int, str]:
        """http_get until expect(status, body); return that answer or raise TimeoutError
        with the last answer/error."""
        deadline = time.monotonic() + timeout
        last = "no attempt"
        while True:
            try:
                status, body = self.http_get(url, node=node, timeout=min(3.0, timeout))
                if expect(status, body):
                    return status, body
                last = f"HTTP {status}: {body[:200]!r}"
            except Unreachable as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{url} from {node or 'host'}: no expected answer in {timeout} s (last: {last})")
            time.sleep(0.2)


@contextlib.contextmanager
def cluster(**kwargs: Any) -> Iterator[Cluster]:
    """``with cluster(nodes=3) as c:`` — a started Cluster, stopped at exit."""
    c = Cluster(**kwargs)
    c.start()
    try:
        yield c
    finally:
        problems = c.stop()
        if problems:
            print(f"multinode cluster teardown left: {problems}", file=sys.stderr)


def _main(argv: Sequence[str]) -> int:
    """``python -m tests.e2e.multinode.harness up [--mkube] | down | status`` (as root, from
    the repo root). up: start the default cluster (with --mkube also `mkube server` on
    the bridge IP and an agent per node) and keep it until Ctrl-C/SIGTERM. down: remove
    everything of the default naming, including a cluster another process runs. status:
    list what exists (exit status 1 if anything does: a leak check for CI)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.e2e.multinode.harness")
    parser.add_argument("command", choices=["up", "down", "status"], nargs="?", default="status")
    parser.add_argument("--mkube", action="store_true", help="up: also run mkube server and 3 agents")
    args = parser.parse_args(argv)
    c = Cluster()
    if args.command == "down":
        print("\n".join(c.sweep()) or "nothing to remove")
        return 0
    if args.command == "status":
        left = c.leftovers()
        print("\n".join(left) or "nothing running")
        return 1 if left else 0
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    c.start()
    try:
        info: dict[str, Any] = {
            "timings": {k: round(v, 2) for k, v in c.timings.items()},
            "storage_driver": c.used_storage_driver, "registry": c.registry, "local_registry": c.local_registry,
            "log_dir": str(c.log_dir),
            "nodes": {n.name: {"ip": n.ip, "netns": n.netns, "docker_host": n.docker_host} for n in c.nodes},
        }
        if args.mkube:
            server = c.start_server()
            for n in c.nodes:
                c.start_agent(n, server.url, server.join_token)
            info["server"] = {"url": server.url, "kubeconfig": str(server.kubeconfig)}
        print(json.dumps(info, indent=2), flush=True)
        print("Ctrl-C or SIGTERM stops and removes everything", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        print("stopping:", c.stop() or "clean", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
