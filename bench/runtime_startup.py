"""Pod startup latency of DockerRuntime against raw Docker create+start.

    .venv/bin/python bench/runtime_startup.py [--runs N] [--image REF] [--json PATH]

raw          one container: create + start via the Docker API (bridge network, one
             published ephemeral port), i.e. what `docker run -d -p 8080` costs.
pod(1)       DockerRuntime: sandbox (pause, port published, IP inspected) + 1 container.
pod(2)       the same with 2 containers.
Removal is not timed. Prints a table; writes JSON (default bench/results/runtime_startup.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker

from mkube.kubelet.runtime import ContainerConfig, PortMapping, SandboxConfig
from mkube.kubelet.runtime.docker import DockerRuntime

# mkube.test.id: concurrent test sessions' cleanup fixtures leave labelled objects alone.
LABELS = {"mkube.test": "1", "mkube.test.id": f"bench-{uuid.uuid4().hex[:12]}"}


def measure(runs: int, cases: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Interleave the cases (one of each per round) so that load drift hits all alike."""
    for fn in cases.values():
        fn()  # warm-up (connections, page cache)
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            out[name].append(fn())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--image", default="mkube/busybox:latest")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "runtime_startup.json"))
    opts = ap.parse_args()

    api = docker.from_env().api
    rt = DockerRuntime(node_name=f"bench-{uuid.uuid4().hex[:8]}", extra_labels=LABELS)
    rt.ensure_pause_image()
    rt_version = rt.info().runtime_version
    cmd = ["sleep", "3600"]
    made: list[str] = []

    def raw() -> float:
        hc = api.create_host_config(port_bindings={8080: ("0.0.0.0", None)})
        t0 = time.perf_counter()
        cid = api.create_container(opts.image, command=cmd, ports=[8080], labels=LABELS, host_config=hc)["Id"]
        api.start(cid)
        took = time.perf_counter() - t0
        made.append(cid)
        return took

    def pod(n: int) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            sb = rt.run_sandbox(SandboxConfig(pod_uid=str(uuid.uuid4()), namespace="bench", name="p",
                                              ports=[PortMapping(8080)]))
            for i in range(n):
                rt.start_container(rt.create_container(sb.id, ContainerConfig(
                    name=f"c{i}", image=opts.image, command=cmd)))
            return time.perf_counter() - t0
        return run

    try:
        results = measure(opts.runs, {"raw": raw, "pod(1)": pod(1), "pod(2)": pod(2)})
    finally:
        for cid in made:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(cid, force=True)
        for sb in rt.list_sandboxes():
            rt.remove_sandbox(sb.id)
        rt.close()

    base = statistics.median(results["raw"])
    rows = []
    print(f"{'case':8} {'median ms':>10} {'p90 ms':>8} {'min ms':>8} {'x raw':>6}")
    for name, xs in results.items():
        med = statistics.median(xs)
        p90 = sorted(xs)[int(0.9 * (len(xs) - 1))]
        rows.append({"case": name, "median_ms": med * 1e3, "p90_ms": p90 * 1e3, "min_ms": min(xs) * 1e3,
                     "ratio_to_raw": med / base, "runs": len(xs)})
        print(f"{name:8} {med * 1e3:10.1f} {p90 * 1e3:8.1f} {min(xs) * 1e3:8.1f} {med / base:6.2f}")
    out = Path(opts.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "docker": rt_version}
    out.write_text(json.dumps({"benchmark": "runtime_startup", "machine": machine, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
