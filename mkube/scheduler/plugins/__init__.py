"""The built-in plugins and the default profile (filters cheapest first)."""

from __future__ import annotations

from mkube.scheduler.framework import Profile
from mkube.scheduler.plugins.node_affinity import NodeAffinity
from mkube.scheduler.plugins.node_name import NodeName
from mkube.scheduler.plugins.node_ports import NodePorts
from mkube.scheduler.plugins.node_ready import NodeReady
from mkube.scheduler.plugins.node_resources import NodeResourcesFit, NodeResourcesLeastAllocated
from mkube.scheduler.plugins.node_unschedulable import NodeUnschedulable
from mkube.scheduler.plugins.owner_spread import OwnerSpread
from mkube.scheduler.plugins.taint_toleration import TaintToleration

__all__ = [
    "NodeAffinity", "NodeName", "NodePorts", "NodeReady", "NodeResourcesFit", "NodeResourcesLeastAllocated",
    "NodeUnschedulable", "OwnerSpread", "TaintToleration", "default_profile",
]


def default_profile(scheduler_name: str = "default-scheduler", percentage_of_nodes_to_score: int = 0) -> Profile:
    """Filters: NodeUnschedulable, NodeReady, NodeName, NodeAffinity, TaintToleration,
    NodeResourcesFit, NodePorts. Scores (weight): LeastAllocated (1), NodeAffinity (2),
    TaintToleration (3), OwnerSpread (2) — kube-scheduler's default weights."""
    affinity = NodeAffinity()
    taints = TaintToleration()
    return Profile(
        filters=[NodeUnschedulable(), NodeReady(), NodeName(), affinity, taints, NodeResourcesFit(), NodePorts()],
        scores=[NodeResourcesLeastAllocated(), affinity, taints, OwnerSpread()],
        percentage_of_nodes_to_score=percentage_of_nodes_to_score,
        scheduler_name=scheduler_name,
    )
