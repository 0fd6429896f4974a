"""Pure Endpoints building (Kubernetes' endpoints controller + RepackSubsets), no I/O.

`build_subsets(service, pods)` gives the `subsets` of a Service's Endpoints: every pod
that has an IP and is not finished contributes one address per Service port (the port
resolved from `targetPort`: a number, or a named port looked up in the pod's container
ports with the same protocol; pods without that port are skipped for that port). Ready
pods go to `addresses`, others to `notReadyAddresses` (all to `addresses` with
`publishNotReadyAddresses`). Addresses that offer the same set of ports share one
subset. The output is sorted, so equal inputs give equal objects (no-op updates).

`published_annotation(subsets, pods)` is the mkube extension the node proxy uses to
reach pods on other nodes; see `PUBLISHED_ANNOTATION`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from mkube.api.types import (
    EndpointAddress,
    EndpointPort,
    EndpointSubset,
    ObjectReference,
    Pod,
    Service,
    ServicePort,
)
from mkube.controllers.podutil import is_pod_ready, is_pod_terminal

#: Annotation on Endpoints: JSON list of {"ip", "port", "hostIP", "hostPort", "nodeName"}, one entry per
#: (address, port) of the subsets whose pod publishes that container port on its node
#: (pod `status.publishedPorts`; hostIP is the published hostIP or else the pod's
#: `status.hostIP`). Sorted by (ip, port, hostIP, hostPort). The proxy connects to
#: `hostIP:hostPort` for an endpoint `ip:port` that is not on its own node. Pod IPs are
#: unique per node only (per-node bridges), so two entries may share `ip`: match on
#: hostIP too. Absent when no address is published.
PUBLISHED_ANNOTATION = "endpoints.mkube.io/published"

_NO_PORT = -1  # sentinel for headless services without ports (RepackSubsets does the same)


def should_pod_be_in_endpoints(pod: Pod, include_terminating: bool = False) -> bool:
    """Has an IP, is not finished, and is not being deleted (unless `include_terminating`)."""
    if not pod.status.pod_ip or is_pod_terminal(pod):
        return False
    return include_terminating or pod.metadata.deletion_timestamp is None


def find_port(pod: Pod, port: ServicePort) -> int | None:
    """The container port a Service port targets on `pod` (podutil.FindPort), or None."""
    target = port.target_port if port.target_port is not None else port.port
    if isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    protocol = port.protocol or "TCP"
    for container in pod.spec.containers:
        for cp in container.ports or []:
            if cp.name == target and (cp.protocol or "TCP") == protocol:
                return cp.container_port
    return None


def _address(pod: Pod, service: Service) -> EndpointAddress:
    addr = EndpointAddress(
        ip=pod.status.pod_ip or "",
        node_name=pod.spec.node_name,
        target_ref=ObjectReference(kind="Pod", namespace=pod.metadata.namespace, name=pod.metadata.name,
                                   uid=pod.metadata.uid),
    )
    if pod.spec.hostname and pod.spec.subdomain == service.metadata.name:
        addr.hostname = pod.spec.hostname
    return addr


def _addr_key(a: EndpointAddress) -> tuple[str, str]:
    return (a.ip, a.target_ref.uid or "" if a.target_ref else "")


def _port_key(p: EndpointPort) -> tuple[str, int, str, str]:
    return (p.name or "", p.port, p.protocol or "", p.app_protocol or "")


def build_subsets(service: Service, pods: Iterable[Pod]) -> list[EndpointSubset]:
    """The Endpoints subsets of `service` for its selected `pods` (see module docstring)."""
    tolerate_unready = bool(service.spec.publish_not_ready_addresses)
    headless = service.spec.cluster_ip == "None"
    ports = service.spec.ports or []
    addrs: dict[tuple[str, str], EndpointAddress] = {}
    ready_of: dict[tuple[str, str], bool] = {}
    ports_of: dict[tuple[str, str], dict[tuple[str, int, str, str], EndpointPort]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, tolerate_unready):
            continue
        addr = _address(pod, service)
        key = _addr_key(addr)
        ready = tolerate_unready or is_pod_ready(pod)
        offered: list[EndpointPort] = []
        if not ports:
            if not headless:
                continue
            offered.append(EndpointPort(port=_NO_PORT))
        for sp in ports:
            number = find_port(pod, sp)
            if number is None:
                continue
            offered.append(EndpointPort(name=sp.name, port=number, protocol=sp.protocol or "TCP",
                                        app_protocol=sp.app_protocol))
        if not offered:
            continue
        addrs[key] = addr
        ready_of[key] = ready_of.get(key, False) or ready
        bucket = ports_of.setdefault(key, {})
        for ep in offered:
            bucket[_port_key(ep)] = ep
    # group addresses by the exact set of ports they offer
    groups: dict[tuple[tuple[str, int, str, str], ...], list[tuple[str, str]]] = {}
    for key, offered_map in ports_of.items():
        groups.setdefault(tuple(sorted(offered_map)), []).append(key)
    subsets: list[EndpointSubset] = []
    for port_keys, members in groups.items():
        sample = ports_of[members[0]]
        ep_ports = [sample[k] for k in port_keys if sample[k].port != _NO_PORT]
        ready_addrs = sorted((addrs[m] for m in members if ready_of[m]), key=_addr_key)
        not_ready = sorted((addrs[m] for m in members if not ready_of[m]), key=_addr_key)
        subsets.append(EndpointSubset(addresses=ready_addrs or None, not_ready_addresses=not_ready or None,
                                      ports=ep_ports or None))
    subsets.sort(key=_subset_key)
    return subsets


def _subset_key(s: EndpointSubset) -> tuple[object, ...]:
    first = (s.addresses or s.not_ready_addresses or [EndpointAddress(ip="")])[0]
    return (tuple(_port_key(p) for p in s.ports or []), _addr_key(first))


def published_entries(subsets: Sequence[EndpointSubset], pods: Iterable[Pod]) -> list[dict[str, str | int]]:
    """The entries of PUBLISHED_ANNOTATION for these subsets (see its comment)."""
    by_uid = {p.metadata.uid: p for p in pods if p.metadata.uid}
    out: list[dict[str, str | int]] = []
    seen: set[tuple[str, int]] = set()  # (pod uid, port): one entry per address+port
    for subset in subsets:
        for addr in [*(subset.addresses or []), *(subset.not_ready_addresses or [])]:
            pod = by_uid.get(addr.target_ref.uid or "") if addr.target_ref else None
            if pod is None or not pod.status.published_ports:
                continue
            for port in subset.ports or []:
                protocol = port.protocol or "TCP"
                for pub in pod.status.published_ports:
                    if pub.container_port != port.port or (pub.protocol or "TCP") != protocol:
                        continue
                    host_ip = pub.host_ip if pub.host_ip and pub.host_ip not in ("0.0.0.0", "::") else pod.status.host_ip
                    uid = pod.metadata.uid or ""
                    if not host_ip or (uid, port.port) in seen:
                        continue
                    seen.add((uid, port.port))
                    entry: dict[str, str | int] = {"ip": addr.ip, "port": port.port, "hostIP": host_ip,
                                                   "hostPort": pub.host_port}
                    if pod.spec.node_name:
                        entry["nodeName"] = pod.spec.node_name
                    out.append(entry)
    out.sort(key=lambda e: (str(e["ip"]), int(e["port"]), str(e["hostIP"]), int(e["hostPort"])))
    return out


def published_annotation(subsets: Sequence[EndpointSubset], pods: Iterable[Pod]) -> str | None:
    """The annotation value, or None when no address is published."""
    entries = published_entries(subsets, pods)
    return json.dumps(entries, separators=(",", ":")) if entries else None
