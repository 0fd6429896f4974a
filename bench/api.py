"""API server benchmark: throughput, latency, watch delivery, LIST and memory.

    .venv/bin/python bench/api.py [--duration 10] [--connections 32] [--pods 10000]

Measures, in one run on this machine:
  - the floor: requests/s of a bare FastAPI endpoint served by the same uvicorn setup;
  - pod creates/s and gets/s with 32 concurrent connections (wrk), p50/p99 latency;
  - watch delivery latency p99 while the creates run (a paced writer stamps each pod
    with its send time; a watcher measures arrival - send);
  - LIST of 10,000 pods (whole HTTP response, JSON) and the API server's RSS then.
Prints a table and writes bench/results/api.json. Needs `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable

BARE_APP = '''
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
app = FastAPI()
BODY = {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}
@app.get("/bare")
def bare():
    return ORJSONResponse(BODY)
'''

POD_TEMPLATE = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "NAME", "labels": {"app": "bench", "tier": "web"}},
    "spec": {"containers": [{"name": "web", "image": "localhost:5000/hello:1",
                             "ports": [{"containerPort": 80}],
                             "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def parse_wrk(out: str) -> dict[str, float]:
    """requests/s and latency percentiles (ms) from `wrk --latency` output."""
    def ms(value: str) -> float:
        num, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {p: ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": pct.get("50", 0.0), "p99_ms": pct.get("99", 0.0),
            "errors": float(non2xx.group(1)) if non2xx else 0.0}


def wrk(url: str, connections: int, duration: float, script: str | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration:.0f}s", "--latency", "--timeout", "10s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script or "")
    if script:
        cmd += ["-s", fh.name]
    try:
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(fh.name)
    return parse_wrk(out)


CREATE_LUA = """
local counter = 0
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function init(args) n = 0 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local template = [[BODY]]
function request()
  n = n + 1
  local body = string.gsub(template, "NAME", "w" .. tid .. "-" .. n)
  return wrk.format(nil, nil, nil, body)
end
"""

GET_LUA = """
math.randomseed(42)
function request()
  return wrk.format("GET", "/api/v1/namespaces/default/pods/seed-" .. math.random(0, SEEDS - 1))
end
"""


def pod_body(name: str, extra_annotations: dict[str, str] | None = None) -> dict[str, Any]:
    body = json.loads(json.dumps(POD_TEMPLATE))
    body["metadata"]["name"] = name
    if extra_annotations:
        body["metadata"]["annotations"] = extra_annotations
    return body


def create_many(url: str, prefix: str, count: int, threads: int = 8) -> None:
    def worker(start: int) -> None:
        with httpx.Client(base_url=url, timeout=30.0) as c:
            for i in range(start, count, threads):
                r = c.post("/api/v1/namespaces/default/pods", json=pod_body(f"{prefix}-{i}"))
                if r.status_code not in (201, 409):
                    raise SystemExit(f"create failed: {r.status_code} {r.text[:200]}")

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def measure_watch(url: str, stop: threading.Event, rate: float, out: list[float]) -> threading.Thread:
    """A watcher plus a paced writer; `out` gets arrival-minus-send latencies (ms)."""
    rv = httpx.get(f"{url}/api/v1/namespaces/default/pods?limit=1", timeout=30).json()["metadata"]["resourceVersion"]
    ready = threading.Event()

    def watcher() -> None:
        params = {"watch": "1", "resourceVersion": rv, "labelSelector": "probe=watch"}
        try:
            with httpx.Client(timeout=None) as c, c.stream("GET", f"{url}/api/v1/namespaces/default/pods",
                                                           params=params) as resp:
                ready.set()
                for line in resp.iter_lines():
                    if not line:
                        continue
                    now = time.time()
                    ev = json.loads(line)
                    sent = (ev["object"].get("metadata", {}).get("annotations") or {}).get("bench/sent")
                    if ev["type"] == "ADDED" and sent:
                        out.append((now - float(sent)) * 1000)
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            if not stop.is_set():  # the server going away at the end is expected
                raise

    def writer() -> None:
        ready.wait(10)
        i = 0
        with httpx.Client(base_url=url, timeout=30.0) as c:
            while not stop.is_set():
                body = pod_body(f"probe-{i}", {"bench/sent": repr(time.time())})
                body["metadata"]["labels"]["probe"] = "watch"
                c.post("/api/v1/namespaces/default/pods", json=body)
                i += 1
                time.sleep(1.0 / rate)

    tw = threading.Thread(target=watcher, daemon=True)
    tw.start()
    tr = threading.Thread(target=writer, daemon=True)
    tr.start()
    return tr


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--pods", type=int, default=10_000)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/api.py needs wrk: apt-get install wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="mkube-bench-api-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # the floor: a bare FastAPI endpoint, same uvicorn settings as the API server
        (tmp / "bare_app.py").write_text(BARE_APP)
        bare_port = free_port()
        procs.append(subprocess.Popen([PY, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port),
                                       "--log-level", "warning", "--no-access-log"], cwd=tmp))
        wait_http(f"http://127.0.0.1:{bare_port}/bare")
        bare = wrk(f"http://127.0.0.1:{bare_port}/bare", args.connections, args.duration)
        procs[-1].send_signal(signal.SIGTERM)

        port = free_port()
        help_text = subprocess.run([PY, "-m", "mkube.apiserver", "--help"], capture_output=True, text=True).stdout
        extra = ["--insecure-http"] if "--insecure-http" in help_text else []
        server = subprocess.Popen([PY, "-m", "mkube.apiserver", "--data-dir", str(tmp / "data"), "--port", str(port),
                                   "--log-level", "warning", *extra])
        procs.append(server)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz")

        latencies: list[float] = []
        stop = threading.Event()
        writer = measure_watch(url, stop, rate=20.0, out=latencies)
        body = json.dumps(pod_body("NAME"))
        creates = wrk(f"{url}/api/v1/namespaces/default/pods", args.connections, args.duration,
                      CREATE_LUA.replace("BODY", body))
        stop.set()
        writer.join(5)

        seeds = 1000
        create_many(url, "seed", seeds)
        gets = wrk(f"{url}/api/v1/namespaces/default/pods/seed-0", args.connections, args.duration,
                   GET_LUA.replace("SEEDS", str(seeds)))

        count = httpx.get(f"{url}/api/v1/namespaces/default/pods?limit=1", timeout=60).json()["metadata"]
        have = int(count.get("remainingItemCount", 0)) + 1
        if have < args.pods:
            create_many(url, "fill", args.pods - have)
        list_times = []
        n_items = 0
        for _ in range(3):
            t0 = time.perf_counter()
            resp = httpx.get(f"{url}/api/v1/pods", timeout=120)
            list_times.append(time.perf_counter() - t0)
            n_items = len(resp.json()["items"])
        rss = rss_mb(server.pid)

        result = {
            "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()},
            "bare_endpoint": bare, "pod_create": creates, "pod_get": gets,
            "create_vs_bare": creates["rps"] / bare["rps"] if bare["rps"] else 0.0,
            "watch_delivery_ms": {"samples": len(latencies), "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99)},
            "list": {"items": n_items, "seconds_best": min(list_times), "seconds_median": statistics.median(list_times)},
            "apiserver_rss_mb": rss,
            "targets": {"create_vs_bare": ">= 0.40", "get_p99_ms": "< 25", "watch_p99_ms": "< 50",
                        "list_10k_s": "< 1.5", "rss_mb": "< 350"},
        }
        (RESULTS / "api.json").write_text(json.dumps(result, indent=2))
        rows = [
            ("bare FastAPI endpoint (floor)", f"{bare['rps']:.0f} req/s", f"p50 {bare['p50_ms']:.1f} ms", f"p99 {bare['p99_ms']:.1f} ms"),
            ("pod create, 32 conns", f"{creates['rps']:.0f} req/s", f"p50 {creates['p50_ms']:.1f} ms", f"p99 {creates['p99_ms']:.1f} ms"),
            ("  create / bare", f"{result['create_vs_bare']:.0%}", "target >= 40%", ""),
            ("pod get, 32 conns", f"{gets['rps']:.0f} req/s", f"p50 {gets['p50_ms']:.1f} ms", f"p99 {gets['p99_ms']:.1f} ms (target < 25)"),
            ("watch delivery under writes", f"{len(latencies)} samples", f"p50 {pct(latencies, .5):.1f} ms",
             f"p99 {pct(latencies, .99):.1f} ms (target < 50)"),
            (f"LIST {n_items} pods", f"best {min(list_times):.2f} s", f"median {statistics.median(list_times):.2f} s", "target < 1.5 s"),
            (f"API server RSS with {n_items} pods", f"{rss:.0f} MB", "target < 350 MB", ""),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'measure':<{width}}  {'value':<14}  {'':<18}  ")
        for r in rows:
            print(f"{r[0]:<{width}}  {r[1]:<14}  {r[2]:<18}  {r[3]}")
        print(f"(load average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus) -> {RESULTS / 'api.json'}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
