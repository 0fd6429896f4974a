"""Node proxy data path: HTTP requests/s and latency, direct vs. through the NodePort.

    .venv/bin/python bench/proxy.py [--requests 4000] [--concurrency 16] [--json PATH]

Setup (loopback only): a fresh API server subprocess (temp dir, SQLite); one pod-like
container of mkube/hello:1 (busybox httpd serving its hostname) started with the Docker
SDK, port 80 published on 127.0.0.1; a NodePort Service and its Endpoints (the pod on
this node, with the `endpoints.mkube.io/published` entry, as the endpoints controller
writes them); the proxy as a subprocess (`python -m mkube.kubelet.proxy`, NodePorts on
127.0.0.1, no ClusterIPs).

Targets, each measured with the same client: `--concurrency` clients send `--requests`
`GET /` requests in total, one TCP connection per request (busybox httpd closes after
each response), after a warm-up:
- published   127.0.0.1:<hostPort> — the pod's published port (the floor the brief names);
- pod IP      <podIP>:80 — the pod directly on Docker's bridge;
- NodePort    127.0.0.1:<nodePort> — through the proxy (which connects to the pod IP).
Latency is per request: connect -> full response read. The targets are measured in
`--rounds` alternating rounds and each figure is the median over the rounds. busybox
httpd listens with a backlog of 9, so with 16 clients some SYNs are dropped and
retried after 1 s whichever path is used; those requests are counted (`slow_1s`).
Everything shares this machine's cores (client, proxy, httpd, Docker's port forwarding).
Prints a table; writes JSON (default bench/results/proxy.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import httpx
from benchlib import REPO, free_port  # noqa: E402

from mkube.api.types import Endpoints, Service
from mkube.client import Client

NODE = "bench-node"
IMAGE = "mkube/hello:1"
REQUEST = b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n"


def wait_tcp(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} not answering")


async def one_request(host: str, port: int) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(REQUEST)
    await writer.drain()
    data = await reader.read()  # until the server closes
    writer.close()
    if not data.startswith(b"HTTP/1.") or b" 200 " not in data[:16]:
        raise RuntimeError(f"bad response from {host}:{port}: {data[:80]!r}")
    return time.perf_counter() - start


async def load(host: str, port: int, requests: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def client() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            try:
                latencies.append(await one_request(host, port))
            except (OSError, RuntimeError):
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "slow_1s": sum(1 for x in latencies if x >= 0.9),
    }


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in ("rps", "p50_ms", "p99_ms"):
        out[field] = round(statistics.median(r[field] for r in rounds), 2)
    out["errors"] = sum(r["errors"] for r in rounds)
    out["slow_1s"] = sum(r["slow_1s"] for r in rounds)
    out["requests"] = sum(r["requests"] for r in rounds)
    return out


def measure(host: str, port: int, requests: int, concurrency: int) -> dict[str, Any]:
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(load(host, port, max(200, requests // 10), concurrency))  # warm-up
        return loop.run_until_complete(load(host, port, requests, concurrency))
    finally:
        loop.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000, help="requests per target per round")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; figures are medians over them")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "proxy.json")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on SIGTERM too

    tmp = Path(tempfile.mkdtemp(prefix="mkube-bench-proxy-"))
    api_port = free_port()
    first = random.randrange(61000, 65400, 100)  # NodePorts above the ephemeral range
    procs: list[subprocess.Popen[bytes]] = []
    dk = docker.from_env()
    container = None
    try:
        with open(tmp / "apiserver.log", "wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "mkube.cli", "apiserver", "--data-dir", str(tmp), "--port", str(api_port),
                 "--log-format", "text", "--service-node-port-range", f"{first}-{first + 99}", "--insecure-http"],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("apiserver not ready")
            time.sleep(0.1)

        container = dk.containers.run(IMAGE, detach=True, labels={"mkube.bench": "proxy"},
                                      ports={"80/tcp": ("127.0.0.1", None)}, name=f"mkube-bench-proxy-{api_port}")
        container.reload()
        pod_ip = container.attrs["NetworkSettings"]["IPAddress"]
        host_port = int(container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        wait_tcp("127.0.0.1", host_port)

        client = Client(url)
        svc = client.create(Service.from_dict({
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "hello"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}))
        assert svc.spec.ports and svc.spec.ports[0].node_port
        node_port = svc.spec.ports[0].node_port
        client.create(Endpoints.from_dict({
            "metadata": {"name": "hello", "namespace": "default", "annotations": {
                "endpoints.mkube.io/published": json.dumps(
                    [{"ip": pod_ip, "port": 80, "hostIP": "127.0.0.1", "hostPort": host_port}])}},
            "subsets": [{"addresses": [{"ip": pod_ip, "nodeName": NODE}],
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]}))
        client.close()
        with open(tmp / "proxy.log", "wb") as log:
            proxy = subprocess.Popen(
                [sys.executable, "-m", "mkube.kubelet.proxy", "--server", url, "--node-name", NODE,
                 "--node-ip", "127.0.0.1", "--nodeport-address", "127.0.0.1", "--no-cluster-ips"],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proxy)
        wait_tcp("127.0.0.1", node_port)

        targets = {"published": ("127.0.0.1", host_port), "pod IP": (pod_ip, 80),
                   "NodePort (proxy)": ("127.0.0.1", node_port)}
        load_before = os.getloadavg()
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (host, port) in targets.items():
                rounds[name].append(measure(host, port, args.requests, args.concurrency))
        best = {name: median_of(rs) for name, rs in rounds.items()}
        floor, proxied = best["published"], best["NodePort (proxy)"]
        summary = {
            "throughput_ratio_vs_published": round(proxied["rps"] / floor["rps"], 3),
            "added_p99_ms_vs_published": round(proxied["p99_ms"] - floor["p99_ms"], 2),
            "throughput_ratio_vs_pod_ip": round(proxied["rps"] / best["pod IP"]["rps"], 3),
            "added_p99_ms_vs_pod_ip": round(proxied["p99_ms"] - best["pod IP"]["p99_ms"], 2),
        }
        print(f"{'target':<18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'>=1s (SYN retry)':>17}")
        for name, r in best.items():
            print(f"{name:<18} {r['rps']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>7} "
                  f"{r['slow_1s']:>17}")
        print(f"(medians over {args.rounds} rounds of {args.requests} requests, {args.concurrency} clients; "
              f"load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"proxied/published throughput: {summary['throughput_ratio_vs_published']:.0%} (target >= 60%); "
              f"added p99: {summary['added_p99_ms_vs_published']:+.2f} ms (target < 5 ms)")
        print(f"proxied/pod-IP throughput: {summary['throughput_ratio_vs_pod_ip']:.0%}; "
              f"added p99: {summary['added_p99_ms_vs_pod_ip']:+.2f} ms")
        result = {"requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds,
                  "targets": best, "per_round": rounds, **summary,
                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "loadavg_1m_before": round(load_before[0], 2),
                              "loadavg_1m_after": round(os.getloadavg()[0], 2)}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if container is not None:
            container.remove(force=True)
        dk.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
