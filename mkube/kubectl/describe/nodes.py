"""describe for nodes: conditions, addresses, capacity, the pods on the node and what they
request of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mkube.api.quantity import bytes_, cpu_millis, format_cpu, format_memory
from mkube.kubectl.describe.writer import (
    LEVEL_0,
    LEVEL_1,
    PrefixWriter,
    annotations_multiline,
    d,
    dl,
    dm,
    events_section,
    labels_multiline,
    rfc1123z,
    s,
    since,
    taints_multiline,
)

Obj = dict[str, Any]
_ROLE_PREFIX = "node-role.kubernetes.io/"


def roles(node: Obj) -> list[str]:
    """findNodeRoles: node-role.kubernetes.io/<role> labels and kubernetes.io/role."""
    out: set[str] = set()
    for key, value in dm(node, "metadata", "labels").items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX):]:
            out.add(key[len(_ROLE_PREFIX):])
        elif key == "kubernetes.io/role" and value:
            out.add(s(value))
    return sorted(out)


def _safe(fn: Any, value: Any) -> int:
    try:
        return int(fn(value))
    except (ValueError, TypeError):
        return 0


def _pod_totals(pod: Obj) -> tuple[dict[str, int], dict[str, int]]:
    """PodRequestsAndLimits for cpu (millicores) and memory (bytes): the sum over containers,
    at least the largest init container."""
    def total(containers: list[Any], section: str) -> dict[str, int]:
        out = {"cpu": 0, "memory": 0}
        for c in containers:
            res = dm(c, "resources", section)
            out["cpu"] += _safe(cpu_millis, res["cpu"]) if "cpu" in res else 0
            out["memory"] += _safe(bytes_, res["memory"]) if "memory" in res else 0
        return out

    result = []
    for section in ("requests", "limits"):
        main = total(dl(pod, "spec", "containers"), section)
        for c in dl(pod, "spec", "initContainers"):
            init = total([c], section)
            for k in main:
                main[k] = max(main[k], init[k])
        result.append(main)
    return result[0], result[1]


def _pct(part: int, whole: int) -> int:
    return int(part / whole * 100) if whole else 0


def _node_resources(w: PrefixWriter, pods: list[Obj], node: Obj) -> None:
    w.write(LEVEL_0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
    w.write(LEVEL_1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
    w.write(LEVEL_1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
    alloc = dm(node, "status", "allocatable") or dm(node, "status", "capacity")
    cpu_alloc = _safe(cpu_millis, alloc["cpu"]) if "cpu" in alloc else 0
    mem_alloc = _safe(bytes_, alloc["memory"]) if "memory" in alloc else 0
    sums_req = {"cpu": 0, "memory": 0}
    sums_lim = {"cpu": 0, "memory": 0}
    for pod in pods:
        req, lim = _pod_totals(pod)
        for k in sums_req:
            sums_req[k] += req[k]
            sums_lim[k] += lim[k]
        meta = dm(pod, "metadata")
        w.write(LEVEL_1, f"{s(meta.get('namespace'))}\t{s(meta.get('name'))}\t\t"
                         f"{format_cpu(req['cpu'])} ({_pct(req['cpu'], cpu_alloc)}%)\t"
                         f"{format_cpu(lim['cpu'])} ({_pct(lim['cpu'], cpu_alloc)}%)\t"
                         f"{format_memory(req['memory'])} ({_pct(req['memory'], mem_alloc)}%)\t"
                         f"{format_memory(lim['memory'])} ({_pct(lim['memory'], mem_alloc)}%)\t"
                         f"{since(meta.get('creationTimestamp'))}\n")
    w.write(LEVEL_0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
    w.write(LEVEL_1, "Resource\tRequests\tLimits\n")
    w.write(LEVEL_1, "--------\t--------\t------\n")
    w.write(LEVEL_1, f"cpu\t{format_cpu(sums_req['cpu'])} ({_pct(sums_req['cpu'], cpu_alloc)}%)\t"
                     f"{format_cpu(sums_lim['cpu'])} ({_pct(sums_lim['cpu'], cpu_alloc)}%)\n")
    w.write(LEVEL_1, f"memory\t{format_memory(sums_req['memory'])} ({_pct(sums_req['memory'], mem_alloc)}%)\t"
                     f"{format_memory(sums_lim['memory'])} ({_pct(sums_lim['memory'], mem_alloc)}%)\n")
    w.write(LEVEL_1, "ephemeral-storage\t0 (0%)\t0 (0%)\n")


def describe_node(node: Obj, pods: list[Obj] | None, lease: Obj | None, lease_error: str,
                  events: list[Obj] | None) -> str:
    w = PrefixWriter()
    meta, spec, status = dm(node, "metadata"), dm(node, "spec"), dm(node, "status")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    node_roles = roles(node)
    w.write(LEVEL_0, f"Roles:\t{','.join(node_roles) if node_roles else '<none>'}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    w.write(LEVEL_0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    taints_multiline(w, "Taints", dl(spec, "taints"))
    w.write(LEVEL_0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}\n")
    if lease is not None:
        w.write(LEVEL_0, "Lease:\n")
        w.write(LEVEL_1, f"HolderIdentity:\t{s(d(lease, 'spec', 'holderIdentity')) or '<unset>'}\n")
        acquire = d(lease, "spec", "acquireTime")
        renew = d(lease, "spec", "renewTime")
        w.write(LEVEL_1, f"AcquireTime:\t{rfc1123z(acquire) if acquire else '<unset>'}\n")
        w.write(LEVEL_1, f"RenewTime:\t{rfc1123z(renew) if renew else '<unset>'}\n")
    else:
        w.write(LEVEL_0, f"Lease:\tFailed to get lease: {lease_error}\n")
    conditions = [c for c in dl(status, "conditions") if isinstance(c, Mapping)]
    if conditions:
        w.write(LEVEL_0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w.write(LEVEL_1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(LEVEL_1, f"{s(c.get('type'))} \t{s(c.get('status'))} \t{rfc1123z(c.get('lastHeartbeatTime'))} \t"
                             f"{rfc1123z(c.get('lastTransitionTime'))} \t{s(c.get('reason'))} \t"
                             f"{s(c.get('message'))}\n")
    w.write(LEVEL_0, "Addresses:\n")
    for a in dl(status, "addresses"):
        if isinstance(a, Mapping):
            w.write(LEVEL_1, f"{s(a.get('type'))}:\t{s(a.get('address'))}\n")
    for key, title in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        values = dm(status, key)
        if values:
            w.write(LEVEL_0, f"{title}:\n")
            for name in sorted(values):
                w.write(LEVEL_0, f"  {name}:\t{s(values[name])}\n")
    info = dm(status, "nodeInfo")
    w.write(LEVEL_0, "System Info:\n")
    for key, title in (("machineID", "Machine ID"), ("systemUUID", "System UUID"), ("bootID", "Boot ID"),
                       ("kernelVersion", "Kernel Version"), ("osImage", "OS Image"),
                       ("operatingSystem", "Operating System"), ("architecture", "Architecture"),
                       ("containerRuntimeVersion", "Container Runtime Version"),
                       ("kubeletVersion", "Kubelet Version"), ("kubeProxyVersion", "Kube-Proxy Version")):
        w.write(LEVEL_0, f"  {title}:\t{s(info.get(key))}\n")
    if spec.get("podCIDR"):
        w.write(LEVEL_0, f"PodCIDR:\t{s(spec.get('podCIDR'))}\n")
    if spec.get("podCIDRs"):
        w.write(LEVEL_0, f"PodCIDRs:\t{','.join(s(c) for c in dl(spec, 'podCIDRs'))}\n")
    if spec.get("providerID"):
        w.write(LEVEL_0, f"ProviderID:\t{s(spec.get('providerID'))}\n")
    if pods is not None:
        _node_resources(w, pods, node)
    else:
        w.write(LEVEL_0, "Pods:\tnot authorized\n")
    events_section(w, events)
    return w.text()
