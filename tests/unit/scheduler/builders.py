"""Small builders for Node and Pod objects used by the scheduler tests."""

from __future__ import annotations

from typing import Any

from mkube.api.types import Node, Pod


def make_node(name: str, cpu: str = "4", memory: str = "8Gi", pods: int | str = 110, *,
              labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
              ready: str | None = "True", unschedulable: bool = False) -> Node:
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {},
        "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": str(pods)},
                   "allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods)}},
    }
    if taints:
        body["spec"]["taints"] = taints
    if unschedulable:
        body["spec"]["unschedulable"] = True
    if ready is not None:
        body["status"]["conditions"] = [{"type": "Ready", "status": ready}]
    return Node.from_dict(body)


def make_pod(name: str, cpu: str | None = "100m", memory: str | None = "128Mi", *, namespace: str = "default",
             node_name: str | None = None, owner: str | None = None, uid: str | None = None,
             host_port: int | None = None, priority: int | None = None, **spec: Any) -> Pod:
    requests: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    container: dict[str, Any] = {"name": "c", "image": "img"}
    if requests:
        container["resources"] = {"requests": requests}
    if host_port:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port}]
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                    "uid": f"uid-{owner}", "controller": True}]
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                            "spec": {"containers": [container], **spec}}
    if node_name:
        body["spec"]["nodeName"] = node_name
    if priority is not None:
        body["spec"]["priority"] = priority
    return Pod.from_dict(body)
