"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take only pods that tolerate
the `node.kubernetes.io/unschedulable:NoSchedule` taint."""

from __future__ import annotations

from collections.abc import Sequence

from mkube.api.types import Taint
from mkube.scheduler.framework import NodeInfo, PodInfo
from mkube.scheduler.plugins.helpers import tolerated
from mkube.scheduler.status import SUCCESS, Status, unresolvable

TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
REASON = "node(s) were unschedulable"
_TAINT = Taint(key=TAINT_UNSCHEDULABLE, effect="NoSchedule")
_REJECT = unresolvable(REASON)


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def filter_all(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Sequence[NodeInfo]:
        if pod.tolerations and tolerated(pod.tolerations, _TAINT):
            return nodes
        return [n for n in nodes if not n.unschedulable]

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.unschedulable or (pod.tolerations and tolerated(pod.tolerations, _TAINT)):
            return SUCCESS
        return _REJECT
