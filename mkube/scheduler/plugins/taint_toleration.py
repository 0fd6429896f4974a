"""TaintToleration: NoSchedule/NoExecute taints the pod does not tolerate reject the
node (filter); untolerated PreferNoSchedule taints lower its score (fewer is better)."""

from __future__ import annotations

from collections.abc import Sequence

from mkube.scheduler.framework import NodeInfo, PodInfo, Snapshot
from mkube.scheduler.nodeinfo import PREFER_NO_SCHEDULE
from mkube.scheduler.plugins.helpers import default_normalize, taint_text, tolerated
from mkube.scheduler.status import SKIP, SUCCESS, Status, unresolvable

REASON_PREFIX = "node(s) had untolerated taint"


class TaintToleration:
    name = "TaintToleration"
    weight = 3

    def __init__(self, weight: int = 3) -> None:
        self.weight = weight

    def filter_all(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Sequence[NodeInfo] | None:
        if pod.tolerations:
            return None  # decide node by node
        return [n for n in nodes if not n.hard_taints]

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.hard_taints:
            return SUCCESS
        tolerations = pod.tolerations
        for taint in node.hard_taints:
            if not tolerated(tolerations, taint):
                return unresolvable(f"{REASON_PREFIX} {taint_text(taint)}")
        return SUCCESS

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo], snapshot: Snapshot) -> Status:
        return SUCCESS if snapshot.has_soft_taints else SKIP

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        if not node.soft_taints:
            return 0
        tolerations = [t for t in pod.tolerations if not t.effect or t.effect == PREFER_NO_SCHEDULE]
        return sum(1 for taint in node.soft_taints if not tolerated(tolerations, taint))

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)
