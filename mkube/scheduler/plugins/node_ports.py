"""NodePorts: a pod's hostPorts must be free on the node.

Two uses of one protocol/port conflict when their host IPs are equal or either one
is the wildcard 0.0.0.0.
"""

from __future__ import annotations

from mkube.scheduler.framework import NodeInfo, PodInfo
from mkube.scheduler.status import SKIP, SUCCESS, Status, unschedulable

REASON = "node(s) didn't have free ports for the requested pod ports"
_REJECT = unschedulable(REASON)
WILDCARD = "0.0.0.0"


class NodePorts:
    name = "NodePorts"

    def pre_filter(self, pod: PodInfo) -> Status:
        return SUCCESS if pod.host_ports else SKIP

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        used = node.used_ports
        if not used:
            return SUCCESS
        for hp in pod.host_ports:
            ips = used.get((hp.protocol, hp.port))
            if ips and (hp.ip == WILDCARD or WILDCARD in ips or hp.ip in ips):
                return _REJECT
        return SUCCESS
