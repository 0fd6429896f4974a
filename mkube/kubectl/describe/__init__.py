"""`kubectl describe` text for mkube's kinds.

The describers in the submodules are pure (wire dicts in, text out); `describe` fetches
what each needs (events, ReplicaSets, pods, endpoints, the node lease) and picks one.
Failing to read a related object never fails the describe: that section is left out.
"""

from __future__ import annotations

from typing import Any

from mkube.api.errors import ApiError
from mkube.api.kinds import ResourceType
from mkube.api.selectors import selector_to_string
from mkube.client.interface import BaseClient
from mkube.kubectl import deployments
from mkube.kubectl.describe.generic import (
    describe_configmap,
    describe_generic,
    describe_namespace,
    describe_secret,
)
from mkube.kubectl.describe.nodes import describe_node
from mkube.kubectl.describe.pods import describe_pod
from mkube.kubectl.describe.services import describe_endpoints, describe_service
from mkube.kubectl.describe.workloads import describe_deployment, describe_replicaset
from mkube.kubectl.describe.writer import d, dm

Obj = dict[str, Any]


def find_events(client: BaseClient, rt: ResourceType, obj: Obj) -> list[Obj]:
    """Events about `obj` (involvedObject name/namespace/kind; uid when the event has one)."""
    meta = dm(obj, "metadata")
    name, ns, uid = str(meta.get("name") or ""), str(meta.get("namespace") or ""), str(meta.get("uid") or "")
    terms = [f"involvedObject.name={name}", f"involvedObject.namespace={ns}"]
    if rt.kind != "Pod":  # kubectl leaves the kind out for pods
        terms.append(f"involvedObject.kind={rt.kind}")
    try:
        items = client.list_raw("events", ns or None, field_selector=",".join(terms)).get("items") or []
    except ApiError as e:
        if e.code != 400:
            return []
        items = [e for e in client.list_raw("events", ns or None).get("items") or []
                 if d(e, "involvedObject", "name") == name and (d(e, "involvedObject", "namespace") or "") == ns]
    ok_uids = {"", uid, name} if rt.kind == "Node" else {"", uid}
    return [e for e in items if str(d(e, "involvedObject", "uid") or "") in ok_uids
            and (rt.kind == "Pod" or d(e, "involvedObject", "kind") in (None, rt.kind))]


def _safe(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ApiError:
        return None


def describe(client: BaseClient, rt: ResourceType, obj: Obj, show_events: bool = True) -> str:
    """The describe text of one object."""
    events = (_safe(find_events, client, rt, obj) or []) if show_events else None
    meta = dm(obj, "metadata")
    ns = str(meta.get("namespace") or "")
    if rt.kind == "Pod":
        return describe_pod(obj, events)
    if rt.kind == "Deployment":
        rss = _safe(deployments.owned_replicasets, client, obj) or []
        new_rs, old_rss = deployments.split_new_old(obj, rss)
        return describe_deployment(obj, old_rss, new_rs, events)
    if rt.kind == "ReplicaSet":
        selector = _selector(obj)
        pods = None
        error = ""
        try:
            pods = client.list_raw("pods", ns, label_selector=selector or None).get("items") or []
        except ApiError as e:
            error = e.message
        return describe_replicaset(obj, pods, events, error)
    if rt.kind == "Service":
        endpoints = _safe(client.get_raw, "endpoints", str(meta.get("name")), ns)
        return describe_service(obj, endpoints, events)
    if rt.kind == "Endpoints":
        return describe_endpoints(obj, events)
    if rt.kind == "Node":
        name = str(meta.get("name") or "")
        pods = _safe(lambda: client.list_raw(
            "pods", None, field_selector=f"spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed"
        ).get("items") or [])
        lease, lease_error = None, ""
        try:
            lease = client.get_raw("leases", name, "kube-node-lease")
        except ApiError as e:
            lease_error = e.message
        return describe_node(obj, pods, lease, lease_error, events)
    if rt.kind == "Namespace":
        return describe_namespace(obj)
    if rt.kind == "ConfigMap":
        return describe_configmap(obj, events)
    if rt.kind == "Secret":
        return describe_secret(obj)
    return describe_generic(obj, events)


def _selector(obj: Obj) -> str:
    try:
        return selector_to_string(d(obj, "spec", "selector"))
    except ValueError:
        return ""


__all__ = ["describe", "find_events"]
