"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take only pods that tolerate
the `node.kubernetes.io/unschedulable:NoSchedule` taint."""

from __future__ import annotations

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

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.unschedulable or (pod.tolerations and tolerated(pod.tolerations, _TAINT)):
            return SUCCESS
        return _REJECT
