"""Kubernetes defaulting (pkg/apis/core/v1/defaults.go, apps/v1/defaults.go) on wire dicts.

`apply_defaults(kind, obj)` fills, in place, what Kubernetes fills when it decodes an
object: restartPolicy Always, dnsPolicy ClusterFirst, imagePullPolicy by tag, probe
timings, Deployment strategy 25%/25%, Service type ClusterIP ... It never overwrites a
value the client set and never touches metadata.namespace (the API server owns it).

Defaulting runs before validation and must not fail on malformed input: anything of an
unexpected type is left for validation to report.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


def _d(v: Any) -> Obj | None:
    return v if isinstance(v, dict) else None


def _items(v: Any) -> list[Obj]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _setdefault(obj: Obj, key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = value


# ---------------------------------------------------------------- pods

def image_pull_policy(image: str) -> str:
    """Always for `:latest` or no tag (and no digest), else IfNotPresent (as Kubernetes)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_http_get(h: Obj) -> None:
    _setdefault(h, "path", "/")
    _setdefault(h, "scheme", "HTTP")


def _default_probe(p: Obj) -> None:
    _setdefault(p, "timeoutSeconds", 1)
    _setdefault(p, "periodSeconds", 10)
    _setdefault(p, "successThreshold", 1)
    _setdefault(p, "failureThreshold", 3)
    h = _d(p.get("httpGet"))
    if h is not None:
        _default_http_get(h)


def _default_container(c: Obj, host_network: bool) -> None:
    _setdefault(c, "terminationMessagePath", "/dev/termination-log")
    _setdefault(c, "terminationMessagePolicy", "File")
    image = c.get("image")
    if c.get("imagePullPolicy") in (None, "") and isinstance(image, str):
        c["imagePullPolicy"] = image_pull_policy(image)
    for port in _items(c.get("ports")):
        _setdefault(port, "protocol", "TCP")
        if host_network and not port.get("hostPort") and isinstance(port.get("containerPort"), int):
            port["hostPort"] = port["containerPort"]
    for env in _items(c.get("env")):
        vf = _d(env.get("valueFrom"))
        ref = _d(vf.get("fieldRef")) if vf else None
        if ref is not None:
            _setdefault(ref, "apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = _d(c.get(probe))
        if p is not None:
            _default_probe(p)
    lifecycle = _d(c.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        h = _d(lifecycle.get(hook)) if lifecycle else None
        http = _d(h.get("httpGet")) if h else None
        if http is not None:
            _default_http_get(http)


_VOLUME_META = {"name"}


def _default_volume(v: Obj) -> None:
    if not any(k not in _VOLUME_META for k in v):
        v["emptyDir"] = {}  # SetDefaults_Volume: a volume without a source is an emptyDir
    for src in ("configMap", "secret"):
        s = _d(v.get(src))
        if s is not None:
            _setdefault(s, "defaultMode", 0o644)
    hp = _d(v.get("hostPath"))
    if hp is not None:
        _setdefault(hp, "type", "")


def default_pod_spec(spec: Obj, *, is_pod: bool) -> None:
    """PodSpec defaults; `is_pod` adds the ones Kubernetes applies to Pods but not templates."""
    _setdefault(spec, "restartPolicy", "Always")
    _setdefault(spec, "dnsPolicy", "ClusterFirst")
    _setdefault(spec, "terminationGracePeriodSeconds", 30)
    _setdefault(spec, "schedulerName", "default-scheduler")
    _setdefault(spec, "securityContext", {})
    host_network = spec.get("hostNetwork") is True and is_pod
    for c in _items(spec.get("containers")) + _items(spec.get("initContainers")):
        _default_container(c, host_network)
        if is_pod:
            _default_requests_from_limits(c)
    for v in _items(spec.get("volumes")):
        _default_volume(v)
    if is_pod:
        _setdefault(spec, "enableServiceLinks", True)
        if isinstance(spec.get("terminationGracePeriodSeconds"), int) and spec["terminationGracePeriodSeconds"] < 0:
            spec["terminationGracePeriodSeconds"] = 1  # Kubernetes turns negative grace into 1


def _default_requests_from_limits(c: Obj) -> None:
    res = _d(c.get("resources"))
    limits = _d(res.get("limits")) if res else None
    if res is None or not limits:
        return
    requests = _d(res.get("requests"))
    if requests is None:
        requests = {}
        res["requests"] = requests
    for name, q in limits.items():
        requests.setdefault(name, q)


def default_pod(obj: Obj) -> None:
    spec = _d(obj.get("spec"))
    if spec is not None:
        default_pod_spec(spec, is_pod=True)


def _default_template(obj: Obj) -> None:
    spec = _d(obj.get("spec"))
    template = _d(spec.get("template")) if spec else None
    tspec = _d(template.get("spec")) if template else None
    if tspec is not None:
        default_pod_spec(tspec, is_pod=False)


# ---------------------------------------------------------------- workloads

def default_deployment(obj: Obj) -> None:
    spec = _d(obj.get("spec"))
    if spec is None:
        return
    _setdefault(spec, "replicas", 1)
    strategy = _d(spec.get("strategy"))
    if strategy is None:
        strategy = {}
        spec["strategy"] = strategy
    if strategy.get("type") in (None, ""):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy.get("rollingUpdate"))
        if ru is None:
            ru = {}
            strategy["rollingUpdate"] = ru
        _setdefault(ru, "maxUnavailable", "25%")
        _setdefault(ru, "maxSurge", "25%")
    _setdefault(spec, "revisionHistoryLimit", 10)
    _setdefault(spec, "progressDeadlineSeconds", 600)
    _default_template(obj)


def default_replicaset(obj: Obj) -> None:
    spec = _d(obj.get("spec"))
    if spec is None:
        return
    _setdefault(spec, "replicas", 1)
    _default_template(obj)


# ---------------------------------------------------------------- services

def default_service(obj: Obj) -> None:
    spec = _d(obj.get("spec"))
    if spec is None:
        return
    _setdefault(spec, "type", "ClusterIP")
    _setdefault(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        cfg = _d(spec.get("sessionAffinityConfig"))
        if cfg is None:
            cfg = {}
            spec["sessionAffinityConfig"] = cfg
        client_ip = _d(cfg.get("clientIP"))
        if client_ip is None:
            client_ip = {}
            cfg["clientIP"] = client_ip
        _setdefault(client_ip, "timeoutSeconds", 10800)
    typ = spec["type"]
    for port in _items(spec.get("ports")):
        _setdefault(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and isinstance(port.get("port"), int):
            port["targetPort"] = port["port"]
    if typ in ("NodePort", "LoadBalancer"):
        _setdefault(spec, "externalTrafficPolicy", "Cluster")
    if typ == "LoadBalancer":
        _setdefault(spec, "allocateLoadBalancerNodePorts", True)
    if typ != "ExternalName":
        _setdefault(spec, "internalTrafficPolicy", "Cluster")
        _setdefault(spec, "ipFamilies", ["IPv4"])
        _setdefault(spec, "ipFamilyPolicy", "SingleStack")
        ip = spec.get("clusterIP")
        if isinstance(ip, str) and ip and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [ip]


def default_endpoints(obj: Obj) -> None:
    for subset in _items(obj.get("subsets")):
        for port in _items(subset.get("ports")):
            _setdefault(port, "protocol", "TCP")


# ---------------------------------------------------------------- config, namespaces, nodes

def default_secret(obj: Obj) -> None:
    _setdefault(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        # stringData is write-only: Kubernetes merges it into data (winning over data) on write.
        data = _d(obj.get("data"))
        if data is None:
            data = {}
            obj["data"] = data
        for k, v in string_data.items():
            if isinstance(v, str):
                data[k] = base64.b64encode(v.encode()).decode()
    elif string_data is not None and not isinstance(string_data, dict):
        obj["stringData"] = string_data  # leave malformed input for validation to report


def default_namespace(obj: Obj) -> None:
    status = _d(obj.get("status"))
    if status is None:
        status = {}
        obj["status"] = status
    _setdefault(status, "phase", "Active")
    md = _d(obj.get("metadata"))
    name = md.get("name") if md else None
    if md is not None and isinstance(name, str) and name:
        labels = _d(md.get("labels"))
        if labels is None:
            labels = {}
            md["labels"] = labels
        labels["kubernetes.io/metadata.name"] = name  # always equals the name, as Kubernetes enforces


def default_node(obj: Obj) -> None:
    status = _d(obj.get("status"))
    if status is not None and status.get("allocatable") is None and _d(status.get("capacity")):
        status["allocatable"] = dict(status["capacity"])


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "Pod": default_pod,
    "Deployment": default_deployment,
    "ReplicaSet": default_replicaset,
    "Service": default_service,
    "Endpoints": default_endpoints,
    "Secret": default_secret,
    "Namespace": default_namespace,
    "Node": default_node,
}


def apply_defaults(kind: str, obj: Obj) -> Obj:
    """Fill Kubernetes defaults into `obj` (a wire dict of `kind`) in place; returns it."""
    fn = _DEFAULTERS.get(kind)
    if fn is not None:
        fn(obj)
    return obj
