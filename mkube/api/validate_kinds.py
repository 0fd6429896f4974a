"""Rules for the other kinds: Deployments and ReplicaSets, Services and Endpoints,
ConfigMaps and Secrets, Namespaces, Nodes, Events, Leases; and the status rules."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from mkube.api import names
from mkube.api.fielderrors import INT32_MAX, Errs, Obj, as_dict, as_list, dict_items, is_int
from mkube.api.kinds import ResourceType
from mkube.api.selectors import selector_from_label_selector
from mkube.api.validate_meta import validate_label_selector, validate_labels
from mkube.api.validate_pod import (
    PROTOCOLS,
    TAINT_EFFECTS,
    check_quantity,
    port_num_or_name,
    validate_pod,
    validate_pod_status,
    validate_pod_template,
)

_PERCENT = re.compile(r"^[0-9]+%$")
_PERCENT_MSG = ("a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
                "'93%', regex used for validation is '[0-9]+%')")
_MAX_CONFIG_SIZE = 1024 * 1024


# ---------------------------------------------------------------- workloads

def _validate_selector_and_template(spec: Obj, errs: Errs) -> None:
    sel = spec.get("selector")
    tmpl = as_dict(spec.get("template"))
    if sel is None:
        errs.required("spec.selector")
    else:
        n_before = len(errs.causes)
        validate_label_selector(sel, "spec.selector", errs)
        if not as_dict(sel).get("matchLabels") and not as_dict(sel).get("matchExpressions"):
            errs.invalid("spec.selector", sel, "empty selector is invalid for deployment")
        elif len(errs.causes) == n_before:
            labels = as_dict(as_dict(tmpl.get("metadata")).get("labels"))
            try:
                matches = selector_from_label_selector(sel).matches(labels)
            except ValueError:
                matches = True  # already reported above
            if not matches:
                errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    validate_pod_template(tmpl, "spec.template", errs)


def _int_or_percent(v: Any, path: str, errs: Errs) -> tuple[int, bool] | None:
    if is_int(v):
        if v < 0:
            errs.invalid(path, v, "must be greater than or equal to 0")
            return None
        return v, False
    if isinstance(v, str):
        if not _PERCENT.match(v):
            errs.invalid(path, v, _PERCENT_MSG)
            return None
        return int(v[:-1]), True
    return None


def _validate_deployment(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    spec = as_dict(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"), INT32_MAX)
    _validate_selector_and_template(spec, errs)
    strategy = as_dict(spec.get("strategy"))
    typ = strategy.get("type")
    if typ not in ("Recreate", "RollingUpdate"):
        errs.not_supported("spec.strategy.type", typ, ("Recreate", "RollingUpdate"))
    elif typ == "Recreate" and strategy.get("rollingUpdate") is not None:
        errs.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif typ == "RollingUpdate":
        ru = as_dict(strategy.get("rollingUpdate"))
        mu = _int_or_percent(ru.get("maxUnavailable"), "spec.strategy.rollingUpdate.maxUnavailable", errs)
        ms = _int_or_percent(ru.get("maxSurge"), "spec.strategy.rollingUpdate.maxSurge", errs)
        if mu is not None and mu[1] and mu[0] > 100:
            errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                         "must not be greater than 100%")
        if mu is not None and ms is not None and mu[0] == 0 and ms[0] == 0:
            errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                         "may not be 0 when `maxSurge` is 0")
    for fld in ("revisionHistoryLimit", "minReadySeconds", "progressDeadlineSeconds"):
        errs.nonnegative(f"spec.{fld}", spec.get(fld), INT32_MAX)
    pds, mrs = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if is_int(pds) and is_int(mrs) and pds <= mrs:
        errs.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")


def _validate_replicaset(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    spec = as_dict(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"), INT32_MAX)
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"), INT32_MAX)
    _validate_selector_and_template(spec, errs)


# ---------------------------------------------------------------- services, endpoints

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _validate_service(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    spec = as_dict(obj.get("spec"))
    typ = spec.get("type")
    if typ not in _SERVICE_TYPES:
        errs.not_supported("spec.type", typ, _SERVICE_TYPES)
    cluster_ip = spec.get("clusterIP") or ""
    headless = cluster_ip == "None"
    ports = as_list(spec.get("ports"))
    if typ == "ExternalName":
        ext = spec.get("externalName") or ""
        if not ext:
            errs.required("spec.externalName")
        else:
            for m in names.is_dns1123_subdomain(ext.rstrip(".")):
                errs.invalid("spec.externalName", ext, m)
        if cluster_ip:
            errs.forbidden("spec.clusterIP", "may not be set for ExternalName services")
    elif not ports and not headless:
        errs.required("spec.ports")
    if headless and typ in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.clusterIP", cluster_ip, f"may not be set to 'None' for {typ} services")
    if cluster_ip and not headless and not names.is_ip(cluster_ip):
        errs.invalid("spec.clusterIP", cluster_ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    require_name = len(ports) > 1
    port_names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    node_ports: set[tuple[Any, Any]] = set()
    for i, p in dict_items(ports):
        pp = f"spec.ports[{i}]"
        name = p.get("name") or ""
        if require_name and not name:
            errs.required(f"{pp}.name")
        elif name:
            for m in names.is_dns1123_label(name):
                errs.invalid(f"{pp}.name", name, m)
            if name in port_names:
                errs.duplicate(f"{pp}.name", name)
            port_names.add(name)
        port = p.get("port")
        if is_int(port):
            for m in names.is_port_num(port):
                errs.invalid(f"{pp}.port", port, m)
        proto = p.get("protocol")
        if proto not in PROTOCOLS:
            errs.not_supported(f"{pp}.protocol", proto, PROTOCOLS)
        port_num_or_name(p.get("targetPort"), f"{pp}.targetPort", errs)
        np = p.get("nodePort")
        if np:
            if typ == "ClusterIP" or typ == "ExternalName":
                errs.forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{typ}'")
            elif is_int(np):
                for m in names.is_port_num(np):
                    errs.invalid(f"{pp}.nodePort", np, m)
            if (np, proto) in node_ports:
                errs.duplicate(f"{pp}.nodePort", np)
            node_ports.add((np, proto))
        if (port, proto) in seen_ports:
            errs.duplicate(pp, {"port": port, "protocol": proto})
        seen_ports.add((port, proto))
    validate_labels(spec.get("selector"), "spec.selector", errs)
    sa = spec.get("sessionAffinity")
    if sa not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", sa, ("ClientIP", "None"))
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        if not isinstance(ip, str) or not names.is_ip(ip):
            errs.invalid(f"spec.externalIPs[{i}]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    etp = spec.get("externalTrafficPolicy")
    if etp:
        if typ not in ("NodePort", "LoadBalancer"):
            errs.invalid("spec.externalTrafficPolicy", etp, "may only be set when `type` is 'NodePort' or "
                                                            "'LoadBalancer'")
        elif etp not in ("Cluster", "Local"):
            errs.not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local"))
    itp = spec.get("internalTrafficPolicy")
    if itp and itp not in ("Cluster", "Local"):
        errs.not_supported("spec.internalTrafficPolicy", itp, ("Cluster", "Local"))


def _validate_endpoints(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    for i, ss in dict_items(obj.get("subsets")):
        sp = f"subsets[{i}]"
        for group in ("addresses", "notReadyAddresses"):
            for j, a in dict_items(ss.get(group)):
                ip = a.get("ip", "")
                if not names.is_ip(ip):
                    errs.invalid(f"{sp}.{group}[{j}].ip", ip, "must be a valid IP address")
        ports = as_list(ss.get("ports"))
        seen: set[str] = set()
        for j, p in dict_items(ports):
            pp = f"{sp}.ports[{j}]"
            name = p.get("name") or ""
            if len(ports) > 1 and not name:
                errs.required(f"{pp}.name")
            elif name:
                for m in names.is_dns1123_label(name):
                    errs.invalid(f"{pp}.name", name, m)
                if name in seen:
                    errs.duplicate(f"{pp}.name", name)
                seen.add(name)
            port = p.get("port")
            if is_int(port):
                for m in names.is_port_num(port):
                    errs.invalid(f"{pp}.port", port, m)
            if p.get("protocol") not in PROTOCOLS:
                errs.not_supported(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)


# ---------------------------------------------------------------- config

def _validate_data_keys(data: Mapping[str, Any], path: str, errs: Errs) -> int:
    size = 0
    for k, v in data.items():
        for m in names.is_config_map_key(k):
            errs.invalid(f"{path}[{k}]", k, m)
        size += len(v) if isinstance(v, str) else 0
    return size


def _validate_base64(data: Mapping[str, Any], path: str, errs: Errs) -> int:
    size = 0
    for k, v in data.items():
        if not isinstance(v, str):
            continue
        try:
            # Go's decoder (what Kubernetes uses) skips line breaks; anything else must be base64
            size += len(base64.b64decode(v.replace("\n", "").replace("\r", ""), validate=True))
        except (binascii.Error, ValueError) as e:
            errs.invalid(f"{path}[{k}]", "<secret contents redacted>", f"illegal base64 data: {e}")
    return size


def _validate_configmap(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    size = _validate_data_keys(data, "data", errs)
    _validate_data_keys(binary, "binaryData", errs)
    for k in binary:
        if k in data:
            errs.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")
    size += _validate_base64(binary, "binaryData", errs)
    if size > _MAX_CONFIG_SIZE:
        errs.too_long("data", _MAX_CONFIG_SIZE)


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def _validate_secret(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    data = as_dict(obj.get("data"))
    _validate_data_keys(data, "data", errs)
    if obj.get("stringData") is not None:
        errs.invalid("stringData", "<secret contents redacted>", "must be an object of strings")
    size = _validate_base64(data, "data", errs)
    if size > _MAX_CONFIG_SIZE:
        errs.too_long("data", _MAX_CONFIG_SIZE)
    typ = obj.get("type")
    for key in _SECRET_REQUIRED_KEYS.get(typ or "", ()):
        if not data.get(key):
            errs.required(f"data[{key}]")
    if typ == "kubernetes.io/basic-auth" and not data.get("username") and not data.get("password"):
        errs.required("data[username]")
    sa_annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    if typ == "kubernetes.io/service-account-token" and not sa_annotations.get("kubernetes.io/service-account.name"):
        errs.required("metadata.annotations[kubernetes.io/service-account.name]")


# ---------------------------------------------------------------- cluster objects

def _validate_namespace(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    for i, f in enumerate(as_list(as_dict(obj.get("spec")).get("finalizers"))):
        if isinstance(f, str):
            for m in names.is_qualified_name(f):
                errs.invalid(f"spec.finalizers[{i}]", f, m)
    _validate_namespace_status(obj, errs)


def _validate_namespace_status(obj: Obj, errs: Errs) -> None:
    phase = as_dict(obj.get("status")).get("phase")
    if phase not in (None, "Active", "Terminating"):
        errs.not_supported("status.phase", phase, ("Active", "Terminating"))


def _validate_node(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    spec = as_dict(obj.get("spec"))
    seen: set[tuple[Any, Any]] = set()
    for i, t in dict_items(spec.get("taints")):
        tp = f"spec.taints[{i}]"
        key = t.get("key", "")
        for m in names.is_qualified_name(key):
            errs.invalid(f"{tp}.key", key, m)
        if t.get("value"):
            for m in names.is_label_value(t["value"]):
                errs.invalid(f"{tp}.value", t["value"], m)
        if t.get("effect") not in TAINT_EFFECTS:
            errs.not_supported(f"{tp}.effect", t.get("effect"), TAINT_EFFECTS)
        if (key, t.get("effect")) in seen:
            errs.duplicate(tp, {"effect": t.get("effect"), "key": key})
        seen.add((key, t.get("effect")))
    _validate_node_status(obj, errs)


def _validate_node_status(obj: Obj, errs: Errs) -> None:
    status = as_dict(obj.get("status"))
    for section in ("capacity", "allocatable"):
        for name, v in as_dict(status.get(section)).items():
            check_quantity(v, f"status.{section}[{name}]", errs)


def _validate_event(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    ns = as_dict(obj.get("metadata")).get("namespace") or ""
    inv = as_dict(obj.get("involvedObject"))
    inv_ns = inv.get("namespace") or ""
    if (not inv_ns and ns not in ("", "default")) or (inv_ns and inv_ns != ns):
        errs.invalid("involvedObject.namespace", inv_ns, "does not match event.namespace")
    typ = obj.get("type")
    if typ not in (None, "", "Normal", "Warning"):
        errs.not_supported("type", typ, ("Normal", "Warning"))
    errs.nonnegative("count", obj.get("count"))


def _validate_lease(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    spec = as_dict(obj.get("spec"))
    lds = spec.get("leaseDurationSeconds")
    if is_int(lds) and lds <= 0:
        errs.invalid("spec.leaseDurationSeconds", lds, "must be greater than 0")
    errs.nonnegative("spec.leaseTransitions", spec.get("leaseTransitions"))


VALIDATORS: dict[str, Callable[[ResourceType, Obj, Errs], None]] = {
    "Pod": validate_pod,
    "Deployment": _validate_deployment,
    "ReplicaSet": _validate_replicaset,
    "Service": _validate_service,
    "Endpoints": _validate_endpoints,
    "ConfigMap": _validate_configmap,
    "Secret": _validate_secret,
    "Namespace": _validate_namespace,
    "Node": _validate_node,
    "Event": _validate_event,
    "Lease": _validate_lease,
}


def _validate_workload_status(new: Obj, errs: Errs, deployment: bool) -> None:
    st = as_dict(new.get("status"))
    fields = (("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
               "unavailableReplicas", "collisionCount") if deployment else
              ("observedGeneration", "replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"))
    for fld in fields:
        errs.nonnegative(f"status.{fld}", st.get(fld))
    replicas = st.get("replicas") or 0
    msg = "cannot be greater than status.replicas"
    checks = ("updatedReplicas", "readyReplicas", "availableReplicas") if deployment else (
        "fullyLabeledReplicas", "readyReplicas", "availableReplicas")
    for fld in checks:
        v = st.get(fld)
        if is_int(v) and is_int(replicas) and v > replicas:
            errs.invalid(f"status.{fld}", v, msg)
    ready, available = st.get("readyReplicas") or 0, st.get("availableReplicas") or 0
    if is_int(ready) and is_int(available) and available > ready:
        errs.invalid("status.availableReplicas", available, "cannot be greater than readyReplicas")


def validate_status(rt: ResourceType, new: Obj, old: Obj | None, errs: Errs) -> None:
    """The status rules of a kind (for the /status subresource)."""
    kind = rt.kind
    if kind == "Pod":
        validate_pod_status(new, old, errs)
    elif kind in ("Deployment", "ReplicaSet"):
        _validate_workload_status(new, errs, deployment=kind == "Deployment")
    elif kind == "Node":
        _validate_node_status(new, errs)
    elif kind == "Namespace":
        _validate_namespace_status(new, errs)

