"""OwnerSpread: spread the pods of one controller (same controller ownerReference uid,
e.g. one ReplicaSet) across nodes — fewer siblings on a node scores higher.

A single-domain (per node) version of PodTopologySpread's scoring: with 6 replicas on 3
otherwise equal nodes each node gets 2.
"""

from __future__ import annotations

from collections.abc import Sequence

from mkube.scheduler.framework import NodeInfo, PodInfo, Snapshot
from mkube.scheduler.plugins.helpers import default_normalize
from mkube.scheduler.status import SKIP, SUCCESS, Status


class OwnerSpread:
    name = "OwnerSpread"
    weight = 2

    def __init__(self, weight: int = 2) -> None:
        self.weight = weight

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo], snapshot: Snapshot) -> Status:
        return SUCCESS if pod.owner_uid else SKIP

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return node.owner_counts.get(pod.owner_uid, 0) if pod.owner_uid else 0

    def score_nodes(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        uid = pod.owner_uid
        return [n.owner_counts.get(uid, 0) for n in nodes] if uid else [0] * len(nodes)

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)
