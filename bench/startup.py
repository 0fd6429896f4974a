"""Pod startup latency of the kubelet against raw Docker, and the memory of hollow nodes.

    .venv/bin/python bench/startup.py [--pods 30] [--workers 8] [--image mkube/hello:1]
                                      [--hollow-nodes 200] [--hollow-pods 6000] [--json PATH]

1. floor: raw Docker SDK create+start of N containers of the demo image (bridge network,
   one published ephemeral port, like a pod's), from as many threads as the kubelet has
   workers; per-container latency = request due -> start returned;
2. kubelet: a fresh API server (temp dir, SQLite) and `python -m mkube.kubelet` (Docker
   runtime, its own node); N pods pre-bound to the node are created from a few threads
   while a watch records when each pod is first seen with every container running;
   latency = create request sent -> that watch event; ratio = kubelet / floor (p50, p99);
   both run twice: a burst (all N at once: the latency is mostly Docker's queue, so the
   ratio is the Docker work per pod, a pause sandbox plus the app container, against one
   container) and paced (one every --paced-interval seconds, below Docker's throughput,
   as pods arrive in Kubernetes' density tests: the latency is each pod's own path);
   a second floor, "pause+app", does a pod's least Docker work without the kubelet (the
   pause container with the published port, the app container joining it, created while
   the pause container starts): kubelet / that floor is what the kubelet itself adds;
3. hollow: `python -m mkube.kubelet --runtime fake --hollow-nodes K` against the same API
   server; P pods spread over the K nodes, created the same way; reports the time to all
   Running and the kubelet process' RSS (idle with K nodes, and holding P pods) and CPU.

Everything shares this machine's cores (API server, kubelet, dockerd, this driver).
Prints a table; writes JSON (default bench/results/startup.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
from benchlib import REPO, PodWatcher, Proc, create_all, percentile, start_apiserver  # noqa: E402

from mkube.client import Client
from mkube.kubelet.runtime.docker import DEFAULT_PAUSE_IMAGE as PAUSE_IMAGE
from mkube.kubelet.runtime.docker import DockerRuntime

CLK_TCK = os.sysconf("SC_CLK_TCK")
RUN_ID = uuid.uuid4().hex[:8]
# mkube.test.id: concurrent test sessions' cleanup fixtures leave labelled objects alone.
LABELS = {"mkube.test": "1", "mkube.test.id": f"bench-startup-{RUN_ID}"}


def start_kubelet(url: str, node: str, work: Path, extra: list[str]) -> Proc:
    cmd = [sys.executable, "-m", "mkube.kubelet", "--server", url, "--node-name", node, "--node-ip", "127.0.0.1",
           "--port", "0", "--root-dir", str(work / f"root-{node}"), *extra]
    for k, v in LABELS.items():
        cmd += ["--runtime-label", f"{k}={v}"]
    return Proc(cmd, work / f"kubelet-{node}.log")


def wait_nodes_ready(client: Client, names: set[str], timeout: float) -> float:
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        ready = set()
        for n in client.list_raw("nodes")["items"]:
            conds = {c["type"]: c["status"] for c in (n.get("status") or {}).get("conditions") or []}
            if conds.get("Ready") == "True":
                ready.add(n["metadata"]["name"])
        if names <= ready:
            return time.monotonic() - t0
        time.sleep(0.2)
    raise RuntimeError(f"nodes not Ready after {timeout}s")


def all_running(pod: dict[str, Any]) -> bool:
    """Running with every container started (the SLO's "all containers started")."""
    status = pod.get("status") or {}
    css = status.get("containerStatuses") or []
    return status.get("phase") == "Running" and bool(css) and all((c.get("state") or {}).get("running") for c in css)


def pod_body(name: str, namespace: str, node: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}}


def stats(latencies: list[float]) -> dict[str, float]:
    return {"p50_s": percentile(latencies, 50), "p99_s": percentile(latencies, 99), "max_s": max(latencies),
            "min_s": min(latencies)}


# --------------------------------------------------------------------------- phases


def floor(api: Any, image: str, n: int, workers: int, interval: float = 0.0,
          pod_shaped: bool = False) -> dict[str, Any]:
    """Raw create+start of n containers from `workers` threads (the kubelet's parallelism);
    container i is requested at start + i * interval (0: all at once).
    `pod_shaped`: the least Docker work a pod needs instead, the pause container owning
    the network (and the published port), plus the app container joining it (created
    while the pause container starts), i.e. the kubelet's Docker calls without the kubelet."""
    made: list[str] = []
    lock = threading.Lock()

    def create(img: str, **kwargs: Any) -> str:
        cid: str = api.create_container(img, labels=LABELS, name=f"bench-raw-{RUN_ID}-{uuid.uuid4().hex[:8]}",
                                        **kwargs)["Id"]
        with lock:
            made.append(cid)
        return cid

    def one(i: int, t0: float) -> float:
        due = t0 + i * interval
        time.sleep(max(0.0, due - time.monotonic()))
        if not pod_shaped:
            api.start(create(image, ports=[80], host_config=api.create_host_config(
                port_bindings={80: ("127.0.0.1", None)})))
            return time.monotonic() - max(due, t0)
        sandbox = create(PAUSE_IMAGE, ports=[80], host_config=api.create_host_config(
            port_bindings={80: ("127.0.0.1", None)}, ipc_mode="shareable"))
        with ThreadPoolExecutor(1) as side:
            started = side.submit(api.start, sandbox)
            app = create(image, host_config=api.create_host_config(
                network_mode=f"container:{sandbox}", ipc_mode=f"container:{sandbox}"))
            started.result()
        api.start(app)
        return time.monotonic() - max(due, t0)

    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(workers) as ex:
            lat = list(ex.map(lambda i: one(i, t0), range(n)))
        wall = time.monotonic() - t0
    finally:
        def remove(cid: str) -> None:
            with contextlib.suppress(docker.errors.APIError):
                api.remove_container(cid, force=True)

        with ThreadPoolExecutor(8) as ex:
            list(ex.map(remove, made))
    return {"containers": n, "workers": workers, "interval_s": interval, "pod_shaped": pod_shaped, "wall_s": wall,
            **stats(lat)}


def kubelet_phase(url: str, work: Path, image: str, n: int, workers: int, extra: list[str],
                  intervals: list[float]) -> list[dict[str, Any]]:
    """For each interval: n pods pre-bound to one Docker kubelet, pod i created at
    start + i * interval (0: all at once); latency = create sent -> all running (watch)."""
    node = f"bench-{RUN_ID}"
    client = Client(url, user_agent="bench")
    kubelet = start_kubelet(url, node, work, ["--workers", str(workers), *extra])
    ns = "startup"
    try:
        client.create_raw("namespaces", {"metadata": {"name": ns}})
        wait_nodes_ready(client, {node}, 60)
        # warm-up pod: first-use costs (pause image check, connections) are not the steady state
        watcher = PodWatcher(client, ns, all_running)
        create_all(url, [pod_body("warmup", ns, node, image)], "pods", 1)
        if not watcher.wait(1, 60):
            raise RuntimeError("warm-up pod did not run")
        client.delete_raw("pods", "warmup", ns, grace_period_seconds=0)
        time.sleep(1.0)
        watcher.close()
        results = []
        for run, interval in enumerate(intervals):
            watcher = PodWatcher(client, ns, all_running)
            cpu0 = kubelet.status().get("cpu_ticks", 0)
            t0 = time.monotonic()
            bodies = [pod_body(f"pod-{run}-{i:03d}", ns, node, image) for i in range(n)]
            sent = create_all(url, bodies, "pods", 4, interval)
            ok = watcher.wait(n, 120)
            wall = time.monotonic() - t0
            cpu = (kubelet.status().get("cpu_ticks", 0) - cpu0) / CLK_TCK
            watcher.close()
            if not ok:
                raise RuntimeError(f"only {len(watcher.seen_at)}/{n} pods Running; see {kubelet.log_path}")
            lat = [watcher.seen_at[name] - t for name, t in sent.items()]
            results.append({"pods": n, "workers": workers, "interval_s": interval, "wall_s": wall,
                            "kubelet_cpu_s": cpu, **stats(lat)})
            # teardown through the kubelet (not timed)
            for name in sent:
                client.delete_raw("pods", name, ns, grace_period_seconds=1)
            deadline = time.monotonic() + 60
            while client.list_raw("pods", ns)["items"] and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(2.0)  # let Docker settle after the removals
        return results
    finally:
        kubelet.stop()
        with contextlib.suppress(Exception):
            api = docker.from_env().api
            for c in api.containers(all=True, filters={"label": [f"io.mkube.node.name={node}"]}):
                api.remove_container(c["Id"], force=True)
        client.close()


def hollow_phase(url: str, work: Path, nodes: int, pods: int) -> dict[str, Any]:
    prefix = f"hollow-{RUN_ID}"
    names = {f"{prefix}-{i}" for i in range(nodes)}
    client = Client(url, user_agent="bench")
    t0 = time.monotonic()
    kubelet = start_kubelet(url, prefix, work, ["--runtime", "fake", "--hollow-nodes", str(nodes)])
    ns = "hollow"
    try:
        client.create_raw("namespaces", {"metadata": {"name": ns}})
        wait_nodes_ready(client, names, 180)
        ready_s = time.monotonic() - t0
        time.sleep(5)
        idle = kubelet.status()
        watcher = PodWatcher(client, ns, all_running)
        t1 = time.monotonic()
        bodies = [pod_body(f"p-{i:05d}", ns, f"{prefix}-{i % nodes}", "mkube/hello:1") for i in range(pods)]
        sent = create_all(url, bodies, "pods", 8)
        create_s = time.monotonic() - t1
        ok = watcher.wait(pods, 600)
        all_running_s = time.monotonic() - t1
        watcher.close()
        if not ok:
            raise RuntimeError(f"only {len(watcher.seen_at)}/{pods} hollow pods Running; see {kubelet.log_path}")
        lat = [watcher.seen_at[name] - t for name, t in sent.items()]
        time.sleep(60)  # let the event backlog drain: steady state is heartbeats, relists, resyncs
        s1 = kubelet.status()
        time.sleep(30)
        s2 = kubelet.status()
        steady_cpu = (s2.get("cpu_ticks", 0) - s1.get("cpu_ticks", 0)) / CLK_TCK / 30
        return {"nodes": nodes, "pods": pods, "nodes_ready_s": ready_s, "create_s": create_s,
                "all_running_s": all_running_s, "idle_rss_mib": idle.get("VmRSS", 0) / 1024,
                "rss_mib": s2.get("VmRSS", 0) / 1024, "peak_rss_mib": s2.get("VmHWM", 0) / 1024,
                "threads": s2.get("Threads", 0), "steady_cpu_cores": steady_cpu,
                "latency": stats(lat)}
    finally:
        kubelet.stop()
        client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=30)
    ap.add_argument("--workers", type=int, default=8, help="kubelet pod workers (and floor threads)")
    ap.add_argument("--image", default="mkube/hello:1")
    ap.add_argument("--hollow-nodes", type=int, default=200)
    ap.add_argument("--hollow-pods", type=int, default=6000)
    ap.add_argument("--paced-interval", type=float, default=0.5,
                    help="second run: one pod (and one floor container) every this many seconds; 0 = skip")
    ap.add_argument("--skip-docker", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, API server data)")
    ap.add_argument("--kubelet-arg", action="append", default=[], help="extra kubelet flag (repeatable)")
    ap.add_argument("--skip-hollow", action="store_true")
    ap.add_argument("--json", default=str(REPO / "bench" / "results" / "startup.json"))
    opts = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mkube-bench-startup-"))
    api_proc, url = start_apiserver(work)
    results: dict[str, Any] = {"benchmark": "startup", "machine": {"cpus": os.cpu_count(),
                                                                  "python": platform.python_version()}}
    ok = False
    try:
        if not opts.skip_docker:
            dc = docker.from_env()
            results["machine"]["docker"] = dc.version().get("Version")
            results["machine"]["storage_driver"] = dc.info().get("Driver")
            floor(dc.api, opts.image, 4, opts.workers)  # warm-up
            intervals = [0.0] + ([opts.paced_interval] if opts.paced_interval > 0 else [])
            pause = DockerRuntime(pause_image=PAUSE_IMAGE)
            pause.ensure_pause_image()
            pause.close()
            floors = [floor(dc.api, opts.image, opts.pods, opts.workers, iv) for iv in intervals]
            pod_floors = [floor(dc.api, opts.image, opts.pods, opts.workers, iv, pod_shaped=True) for iv in intervals]
            pods = kubelet_phase(url, work, opts.image, opts.pods, opts.workers, opts.kubelet_arg, intervals)
            for key, f, pf, k in zip(("burst", "paced")[:len(intervals)], floors, pod_floors, pods, strict=True):
                results[key] = {"floor": f, "pod_floor": pf, "kubelet": k,
                                "ratio": {"p50": k["p50_s"] / f["p50_s"], "p99": k["p99_s"] / f["p99_s"]},
                                "ratio_to_pod_floor": {"p50": k["p50_s"] / pf["p50_s"],
                                                       "p99": k["p99_s"] / pf["p99_s"]}}
        if not opts.skip_hollow:
            results["hollow"] = hollow_phase(url, work, opts.hollow_nodes, opts.hollow_pods)
        ok = True
    finally:
        api_proc.stop()
        if ok and not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs and data in {work}")

    print(f"{'case':44} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'wall s':>7}")
    for key in ("burst", "paced"):
        if key not in results:
            continue
        f, pf, k = results[key]["floor"], results[key]["pod_floor"], results[key]["kubelet"]
        r, rp = results[key]["ratio"], results[key]["ratio_to_pod_floor"]
        mode = "all at once" if key == "burst" else f"one every {f['interval_s']:g} s"
        for label, row in ((f"raw docker create+start x{f['containers']}", f),
                           (f"raw docker pause+app x{pf['containers']}", pf),
                           (f"kubelet pods x{k['pods']}", k)):
            print(f"{label + ', ' + mode:44} {row['p50_s']:7.3f} {row['p99_s']:7.3f} {row['max_s']:7.3f} "
                  f"{row['wall_s']:7.2f}")
        print(f"{'ratio kubelet/raw (' + key + ')':44} {r['p50']:7.2f} {r['p99']:7.2f}")
        print(f"{'ratio kubelet/raw pause+app (' + key + ')':44} {rp['p50']:7.2f} {rp['p99']:7.2f}")
        print(f"kubelet CPU for {k['pods']} pods ({key}): {k['kubelet_cpu_s']:.2f} s")
    if "hollow" in results:
        h = results["hollow"]
        lat = h["latency"]
        print(f"{'hollow ' + str(h['nodes']) + ' nodes x ' + str(h['pods']) + ' pods':34} {lat['p50_s']:7.3f} "
              f"{lat['p99_s']:7.3f} {lat['max_s']:7.3f} {h['all_running_s']:7.2f}")
        print(f"hollow kubelet RSS: idle {h['idle_rss_mib']:.0f} MiB, holding {h['pods']} pods {h['rss_mib']:.0f} MiB "
              f"(peak {h['peak_rss_mib']:.0f} MiB), {h['threads']} threads, steady CPU "
              f"{h['steady_cpu_cores']:.2f} cores; nodes Ready in {h['nodes_ready_s']:.1f} s")
    out = Path(opts.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
