"""NodeName: a pod that names its node (spec.nodeName) fits only that node."""

from __future__ import annotations

from mkube.scheduler.framework import NodeInfo, PodInfo
from mkube.scheduler.status import SKIP, SUCCESS, Status, unresolvable

REASON = "node(s) didn't match the requested node name"
_REJECT = unresolvable(REASON)


class NodeName:
    name = "NodeName"

    def pre_filter(self, pod: PodInfo) -> Status:
        return SUCCESS if pod.node_name else SKIP

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if not pod.node_name or pod.node_name == node.name:
            return SUCCESS
        return _REJECT
