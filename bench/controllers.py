"""Controller-manager benchmark: 100 Deployments x 10 replicas on 100 hollow nodes.

    .venv/bin/python bench/controllers.py [--deployments 100] [--replicas 10] [--nodes 100]
                                          [--json PATH]

On a fresh API server subprocess (temp dir, SQLite), with the scheduler, the controller
manager and the nodes as subprocesses (`python -m mkube.scheduler.main`,
`python -m mkube.controllers.main`, `python -m mkube.kubelet --runtime fake
--hollow-nodes N`; `--kubelet helper` uses the test helper tests/integration/hollow.py
in this driver instead):
1. create: time from the first Deployment create until every Deployment reports all
   replicas updated and available (what `kubectl rollout status` waits for);
2. rolling update: change the image of every Deployment (25% surge/unavailable) and
   time until every one is rolled out again;
3. the controller manager's RSS (VmRSS at the end, VmHWM peak) and CPU seconds.

Everything shares this machine's cores: API server, scheduler, controller manager,
hollow kubelets and this driver. Prints a table; writes JSON (default
bench/results/controllers.json).
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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from mkube.api.types import Deployment, Node
from mkube.client import Client

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchlib import Proc, free_port  # noqa: E402

from tests.integration.hollow import HollowNodes  # noqa: E402
from tests.unit.controllers.harness import deployment  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rolled_out(d: Deployment, generation: int) -> bool:
    s = d.status
    want = d.spec.replicas or 0
    return ((s.observed_generation or 0) >= generation and (s.updated_replicas or 0) == want
            and (s.replicas or 0) == want and (s.available_replicas or 0) == want)


def wait_all(client: Client, count: int, generation: int, timeout: float) -> float:
    """Seconds until `count` deployments are rolled out at >= generation."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        ds = client.list(Deployment, "default").items
        if len(ds) == count and all(rolled_out(d, generation) for d in ds):
            return time.monotonic() - start
        time.sleep(0.2)
    raise TimeoutError(f"not rolled out after {timeout}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deployments", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--workers", type=int, default=5, help="controller-manager --concurrent-syncs")
    ap.add_argument("--kubelet", choices=("mkube", "helper"), default="mkube",
                    help="hollow nodes: `mkube kubelet --runtime fake --hollow-nodes N` (default) or the "
                         "test helper tests/integration/hollow.py")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    ap.add_argument("--json", default=str(REPO / "bench" / "results" / "controllers.json"))
    opts = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mkube-bench-cm-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs: list[Proc] = []
    result: dict[str, Any] = {}
    try:
        procs.append(Proc([sys.executable, "-m", "mkube.cli", "apiserver", "--data-dir", str(work / "data"),
                           "--port", str(port), "--bind-address", "127.0.0.1", "--log-format", "text",
                           "--insecure-http"], work / "apiserver.log"))
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("API server did not start")
            time.sleep(0.1)
        procs.append(Proc([sys.executable, "-m", "mkube.scheduler.main", "--server", url, "--seed", "1"],
                          work / "scheduler.log"))
        cm = Proc([sys.executable, "-m", "mkube.controllers.main", "--server", url,
                   "--concurrent-syncs", str(opts.workers)], work / "cm.log")
        procs.append(cm)
        client = Client(url)
        if opts.kubelet == "mkube":
            procs.append(Proc([sys.executable, "-m", "mkube.kubelet", "--server", url, "--node-name", "hollow",
                               "--node-ip", "127.0.0.1", "--port", "0", "--runtime", "fake", "--hollow-nodes",
                               str(opts.nodes), "--root-dir", str(work / "kubelet")], work / "kubelet.log"))
            nodes_cm: Any = contextlib.nullcontext()
            deadline = time.monotonic() + 120
            while sum(1 for n in client.list(Node).items if (c := n.condition("Ready")) and c.status == "True") \
                    < opts.nodes:
                if time.monotonic() > deadline:
                    raise TimeoutError("hollow nodes did not become Ready")
                time.sleep(0.5)
        else:
            nodes_cm = HollowNodes(url, opts.nodes, heartbeat=10.0, workers=16, scheduler=False)
        with nodes_cm:
            names = [f"app-{i}" for i in range(opts.deployments)]
            t0 = time.monotonic()
            with ThreadPoolExecutor(4) as ex:
                list(ex.map(lambda n: client.create(deployment(name=n, replicas=opts.replicas)), names))
            create_s = time.monotonic() - t0 + wait_all(client, len(names), 1, opts.timeout)
            cpu_after_create = cm.status().get("cpu_ticks", 0) / CLK_TCK
            t0 = time.monotonic()

            def bump(name: str) -> None:
                client.patch(Deployment, name, {"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": "nginx:2"}]}}}}, "default", patch_type="strategic")

            with ThreadPoolExecutor(4) as ex:
                list(ex.map(bump, names))
            update_s = time.monotonic() - t0 + wait_all(client, len(names), 2, opts.timeout)
            st = cm.status()
            others = {name: procs[i].status().get("cpu_ticks", 0) / CLK_TCK
                      for i, name in ((0, "apiserver"), (1, "scheduler"))}
            if opts.kubelet == "mkube":
                others["kubelet"] = procs[3].status().get("cpu_ticks", 0) / CLK_TCK
        client.close()
        pods = opts.deployments * opts.replicas
        result = {
            "deployments": opts.deployments, "replicas": opts.replicas, "nodes": opts.nodes, "pods": pods,
            "create_to_available_s": round(create_s, 2), "create_pods_per_s": round(pods / create_s, 1),
            "rolling_update_s": round(update_s, 2), "rolling_update_pods_per_s": round(pods / update_s, 1),
            "cm_rss_mib": round(st.get("VmRSS", 0) / 1024, 1), "cm_peak_rss_mib": round(st.get("VmHWM", 0) / 1024, 1),
            "cm_cpu_s_create": round(cpu_after_create, 1), "cm_cpu_s_total": round(st.get("cpu_ticks", 0) / CLK_TCK, 1),
            "apiserver_cpu_s_total": round(others["apiserver"], 1),
            "scheduler_cpu_s_total": round(others["scheduler"], 1),
            "kubelet": opts.kubelet,
            "kubelet_cpu_s_total": round(others.get("kubelet", 0.0), 1),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        }
        log_text = (work / "cm.log").read_text(errors="replace")
        result["cm_failed_syncs"] = log_text.count("failed (retry")
        result["cm_conflicts"] = log_text.count("the object has been modified")
    finally:
        for p in reversed(procs):
            p.stop()
        if opts.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    rows = [
        ("deployments x replicas on nodes", f"{result['deployments']} x {result['replicas']} on {result['nodes']}"),
        ("create -> all available", f"{result['create_to_available_s']} s ({result['create_pods_per_s']} pods/s)"),
        ("rolling update of all", f"{result['rolling_update_s']} s ({result['rolling_update_pods_per_s']} pods/s)"),
        ("controller-manager RSS (peak)", f"{result['cm_rss_mib']} MiB ({result['cm_peak_rss_mib']} MiB)"),
        ("controller-manager CPU", f"{result['cm_cpu_s_create']} s create, {result['cm_cpu_s_total']} s total"),
        ("API server / scheduler CPU", f"{result['apiserver_cpu_s_total']} s / {result['scheduler_cpu_s_total']} s"),
        ("hollow kubelet (CPU)", f"{result['kubelet']} ({result['kubelet_cpu_s_total']} s)"),
        ("failed syncs (conflicts)", f"{result['cm_failed_syncs']} ({result['cm_conflicts']})"),
    ]
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    out = Path(opts.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
