"""NodeResourcesFit (filter: cpu, memory and pod count against allocatable) and
NodeResourcesLeastAllocated (score: the share of cpu and memory left free).

Filtering uses the pods' requests (the largest init container or the sum of the app
containers); scoring uses non-zero requests (100m / 200Mi for a container that sets
none), as kube-scheduler does, so that request-less pods still spread out.
"""

from __future__ import annotations

from collections.abc import Sequence

from mkube.scheduler.framework import MAX_NODE_SCORE, NodeInfo, PodInfo
from mkube.scheduler.status import SUCCESS, Status, unschedulable

TOO_MANY_PODS = "Too many pods"
INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"


class NodeResourcesFit:
    name = "NodeResourcesFit"

    def filter_all(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Sequence[NodeInfo]:
        cpu = pod.cpu if pod.cpu > 0 else -(1 << 62)  # no request: never insufficient
        mem = pod.memory if pod.memory > 0 else -(1 << 62)
        return [n for n in nodes if len(n.pods) < n.alloc_pods and cpu <= n.alloc_cpu - n.requested_cpu
                and mem <= n.alloc_memory - n.requested_memory]

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        cpu = pod.cpu
        mem = pod.memory
        if (len(node.pods) < node.alloc_pods and (cpu <= 0 or cpu <= node.alloc_cpu - node.requested_cpu)
                and (mem <= 0 or mem <= node.alloc_memory - node.requested_memory)):
            return SUCCESS  # the common case, decided with short-circuits
        too_many = len(node.pods) + 1 > node.alloc_pods
        no_cpu = cpu > 0 and cpu > node.alloc_cpu - node.requested_cpu
        no_mem = mem > 0 and mem > node.alloc_memory - node.requested_memory
        reasons = []
        if too_many:
            reasons.append(TOO_MANY_PODS)
        if no_cpu:
            reasons.append(INSUFFICIENT_CPU)
        if no_mem:
            reasons.append(INSUFFICIENT_MEMORY)
        return unschedulable(*reasons)


def _least(requested: int, allocatable: int) -> int:
    if allocatable <= 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_NODE_SCORE // allocatable


class NodeResourcesLeastAllocated:
    """Score = mean over cpu and memory of (allocatable - requested) * 100 / allocatable."""

    name = "NodeResourcesLeastAllocated"
    weight = 1

    def __init__(self, weight: int = 1) -> None:
        self.weight = weight

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return (_least(node.nonzero_cpu + pod.nonzero_cpu, node.alloc_cpu)
                + _least(node.nonzero_memory + pod.nonzero_memory, node.alloc_memory)) // 2

    def score_nodes(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """`score` for every node, inlined (this runs for hundreds of nodes per pod)."""
        pod_cpu, pod_mem = pod.nonzero_cpu, pod.nonzero_memory
        out: list[int] = []
        append = out.append
        for n in nodes:
            alloc, req = n.alloc_cpu, n.nonzero_cpu + pod_cpu
            cpu = (alloc - req) * MAX_NODE_SCORE // alloc if alloc > 0 and req <= alloc else 0
            alloc, req = n.alloc_memory, n.nonzero_memory + pod_mem
            mem = (alloc - req) * MAX_NODE_SCORE // alloc if alloc > 0 and req <= alloc else 0
            append((cpu + mem) // 2)
        return out
