"""NodeReady: only nodes whose Ready condition is True take new pods.

Kubernetes expresses this through the `node.kubernetes.io/not-ready` and
`.../unreachable` taints that the node lifecycle controller adds (TaintToleration
honours them too); this filter also covers nodes that lack those taints, e.g. right
after registration or when no lifecycle controller runs. A pod that tolerates the
matching taint (NoSchedule) may still go there, as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Sequence

from mkube.api.types import Taint
from mkube.scheduler.framework import NodeInfo, PodInfo
from mkube.scheduler.plugins.helpers import tolerated
from mkube.scheduler.status import SUCCESS, Status, unresolvable

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
REASON = "node(s) were not ready"
_NOT_READY = Taint(key=TAINT_NOT_READY, effect="NoSchedule")
_UNREACHABLE = Taint(key=TAINT_UNREACHABLE, effect="NoSchedule")
_REJECT = unresolvable(REASON)


class NodeReady:
    name = "NodeReady"

    def filter_all(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Sequence[NodeInfo] | None:
        if pod.tolerations:
            return None  # rare: decide node by node
        return [n for n in nodes if n.ready == "True"]

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if node.ready == "True":
            return SUCCESS
        taint = _UNREACHABLE if node.ready == "Unknown" else _NOT_READY
        if pod.tolerations and tolerated(pod.tolerations, taint):
            return SUCCESS
        return _REJECT
