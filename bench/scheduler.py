"""Scheduler throughput and latency end to end through a real API server.

    .venv/bin/python bench/scheduler.py [--scenario 1000x5000 --scenario 100x3000]
                                        [--mode stream|backlog|both] [--creators 4] [--json PATH]

For each scenario NODESxPODS, on a fresh API server subprocess (temp dir, SQLite):
1. create NODES Node objects (allocatable 32 cpu / 128Gi / 110 pods, Ready; no kubelets);
2. stream: start the scheduler subprocess (`python -m mkube.scheduler.main`), then create
   PODS pods (100m / 64Mi each, 5 ReplicaSet-like owners) from --creators threads while
   a watch records when each pod's binding is observed;
   backlog: create the pods first, then start the scheduler (pure scheduling rate);
3. report pods/s (stream: pods / (last binding observed - first create sent); backlog:
   pods / (last binding observed - scheduler process started)), the creation
   rate, per-pod latency p50/p99 (create request sent -> binding observed by watch),
   the scheduler's CPU seconds and RSS (VmRSS at the end, VmHWM peak).

Everything shares this machine's cores: the API server, the scheduler, and this driver.
Prints a table; writes JSON (default bench/results/scheduler.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import REPO, PodWatcher, Proc, create_all, percentile, start_apiserver  # noqa: E402

from mkube.client import Client

CLK_TCK = os.sysconf("SC_CLK_TCK")


def driver_cpu() -> float:
    """CPU seconds of this (driver) process: pod creation and the binding watch."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def node_body(name: str) -> dict[str, Any]:
    res = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": f"z{hash(name) % 3}"}},
            "status": {"capacity": res, "allocatable": res,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def pod_body(name: str, owner: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": f"app-{owner}"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"app-{owner}",
                                              "uid": f"00000000-0000-0000-0000-00000000000{owner}",
                                              "controller": True}]},
            "spec": {"containers": [{"name": "app", "image": "mkube/app:1",
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}


def node_name_of(pod: dict[str, Any]) -> str | None:
    """A pod counts as bound once it has spec.nodeName."""
    return (pod.get("spec") or {}).get("nodeName")


def run_scenario(nodes: int, pods: int, mode: str, creators: int, keep: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"mkube-bench-sched-{nodes}x{pods}-"))
    api, url = start_apiserver(work)
    sched: Proc | None = None
    client = Client(url, user_agent="bench")
    watcher: PodWatcher | None = None
    try:
        t0 = time.monotonic()
        create_all(url, [node_body(f"node-{i:05d}") for i in range(nodes)], "nodes", creators)
        node_secs = time.monotonic() - t0
        watcher = PodWatcher(client, "default", node_name_of)
        bodies = [pod_body(f"pod-{i:05d}", i % 5) for i in range(pods)]

        def start_scheduler() -> Proc:
            return Proc([sys.executable, "-m", "mkube.scheduler.main", "--server", url, "--seed", "1"],
                        work / "scheduler.log")

        if mode == "stream":
            sched = start_scheduler()
            warm = pod_body("warmup", 0)
            client.create_raw("pods", warm, "default")
            if not watcher.wait(1, 60):
                raise RuntimeError(f"scheduler did not bind the warm-up pod; see {work / 'scheduler.log'}")
            cpu0 = sched.status().get("cpu_ticks", 0)
            api_cpu0, driver_cpu0 = api.status().get("cpu_ticks", 0), driver_cpu()
            t_start = time.monotonic()
            sent = create_all(url, bodies, "pods", creators)
            t_created = time.monotonic()
            expected = pods + 1
        else:
            t_start = time.monotonic()
            sent = create_all(url, bodies, "pods", creators)
            t_created = time.monotonic()
            api_cpu0, driver_cpu0 = api.status().get("cpu_ticks", 0), driver_cpu()
            t_sched = time.monotonic()
            sched = start_scheduler()
            cpu0 = 0
            expected = pods
        ok = watcher.wait(expected, 600)
        end_status = sched.status()
        api_cpu = (api.status().get("cpu_ticks", 0) - api_cpu0) / CLK_TCK
        drv_cpu = driver_cpu() - driver_cpu0
        bound = {k: v for k, v in watcher.seen_at.items() if k != "warmup"}
        if not ok:
            raise RuntimeError(f"only {len(bound)}/{pods} pods bound in 600 s; see {work}")
        last = max(bound.values())
        first_bound = min(bound.values())
        latencies = [bound[name] - sent[name] for name in bound]
        per_node: dict[str, int] = {}
        for node in watcher.value_of.values():
            per_node[node] = per_node.get(node, 0) + 1
        cpu_secs = (end_status.get("cpu_ticks", 0) - cpu0) / CLK_TCK
        # stream: from the first create to the last binding; backlog: from starting the
        # scheduler (process start, list, sync included) to the last binding.
        span = last - (t_start if mode == "stream" else t_sched)
        result: dict[str, Any] = {
            "nodes": nodes, "pods": pods, "mode": mode, "creator_threads": creators,
            "node_create_s": round(node_secs, 2),
            "pods_per_s": round(pods / span, 1),
            "create_per_s": round(pods / (t_created - t_start), 1),
            "bind_rate_first_to_last_per_s": round(pods / max(last - first_bound, 1e-9), 1),
            "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "latency_p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "latency_max_ms": round(max(latencies) * 1000, 1),
            "scheduler_cpu_s": round(cpu_secs, 2),
            "scheduler_cpu_ms_per_pod": round(cpu_secs * 1000 / pods, 3),
            "apiserver_cpu_ms_per_pod": round(api_cpu * 1000 / pods, 3),
            "driver_cpu_ms_per_pod": round(drv_cpu * 1000 / pods, 3),
            "machine_cpu_busy": round((cpu_secs + api_cpu + drv_cpu) / span / (os.cpu_count() or 1), 2),
            "scheduler_rss_mib": round(end_status.get("VmRSS", 0) / 1024, 1),
            "scheduler_peak_rss_mib": round(end_status.get("VmHWM", 0) / 1024, 1),
            "nodes_used": len(per_node),
            "max_pods_on_a_node": max(per_node.values()),
        }
        return result
    finally:
        if watcher is not None:
            watcher.close()
        client.close()
        if sched is not None:
            sched.stop()
        api.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", action="append", help="NODESxPODS (repeatable); default 1000x5000 and 100x3000")
    ap.add_argument("--mode", choices=["stream", "backlog", "both"], default="both")
    ap.add_argument("--creators", type=int, default=4, help="pod-creating client threads")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, database)")
    ap.add_argument("--json", default=str(REPO / "bench" / "results" / "scheduler.json"))
    opts = ap.parse_args()
    scenarios = [tuple(int(x) for x in s.split("x")) for s in (opts.scenario or ["1000x5000", "100x3000"])]
    modes = ["stream", "backlog"] if opts.mode == "both" else [opts.mode]

    results = []
    for nodes, pods in scenarios:
        for mode in modes:
            print(f"running {nodes} nodes x {pods} pods ({mode}) ...", flush=True)
            load_before = os.getloadavg()[0]
            result = run_scenario(nodes, pods, mode, opts.creators, opts.keep)
            # other work on the machine skews every figure: record how busy it was
            result["loadavg_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            results.append(result)

    cols = [("nodes", "nodes"), ("pods", "pods"), ("mode", "mode"), ("pods/s", "pods_per_s"),
            ("create/s", "create_per_s"), ("p50 ms", "latency_p50_ms"), ("p99 ms", "latency_p99_ms"),
            ("sched cpu ms/pod", "scheduler_cpu_ms_per_pod"),
            ("api cpu ms/pod", "apiserver_cpu_ms_per_pod"), ("cpu busy", "machine_cpu_busy"), ("RSS MiB", "scheduler_rss_mib"),
            ("peak MiB", "scheduler_peak_rss_mib")]
    print()
    print("  ".join(f"{h:>{max(len(h), 8)}}" for h, _ in cols))
    for r in results:
        print("  ".join(f"{r[k]!s:>{max(len(h), 8)}}" for h, k in cols))
    out = Path(opts.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "scheduler", "machine": {"cpus": os.cpu_count(),
                                                                    "python": platform.python_version()},
                               "results": results}, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
