"""Server-side Tables (`kubectl get` asks for `as=Table;g=meta.k8s.io;v=v1`).

Columns, cells and wording follow Kubernetes' printers
(pkg/printers/internalversion/printers.go) so that `kubectl get` output is the same as
against a real cluster. Like the real API server, every row carries the cells of all
columns, wide ones included; `priority: 1` marks the columns kubectl shows only with
`-o wide`. Column names are title case ("Nominated Node"); kubectl upper-cases them.

Everything here is pure: wire dicts in, a Table wire dict out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mkube.api.selectors import format_labels, selector_to_string

if TYPE_CHECKING:
    from mkube.api.kinds import ResourceType

Obj = Mapping[str, Any]
Cell = str | int | float | bool | None

_D_NAME = ("Name must be unique within a namespace. Is required when creating resources, although some "
           "resources may allow a client to request the generation of an appropriate name automatically. "
           "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
           "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_D_AGE = ("CreationTimestamp is a timestamp representing the server time when this object was created. It "
          "is not guaranteed to be set in happens-before order across separate operations. Clients may not "
          "set this value. It is represented in RFC3339 form and is in UTC.")


def _col(name: str, type_: str = "string", description: str = "", priority: int = 0,
         format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


_NAME = _col("Name", format_="name", description=_D_NAME)
_AGE = _col("Age", description=_D_AGE)

# ---------------------------------------------------------------- time


def human_age(seconds: float) -> str:
    """A duration as kubectl prints ages ("5s", "3m20s", "2d4h"); util/duration.HumanDuration."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(ts: Any) -> datetime | None:
    """An RFC 3339 timestamp (as on the wire) as an aware datetime; None when missing/invalid."""
    if isinstance(ts, datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    if not isinstance(ts, str) or not ts:
        return None
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00") if ts.endswith("Z") else ts)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _now_dt(now: datetime | float) -> datetime:
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=UTC)
    return datetime.fromtimestamp(now, UTC)


def since(ts: Any, now: datetime) -> str:
    """kubectl's translateTimestampSince: the age of a timestamp, "<unknown>" when unset."""
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_age((now - t).total_seconds())


# ---------------------------------------------------------------- small accessors

def _m(obj: Obj, *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _dict(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


# ---------------------------------------------------------------- pods

_POD_COLUMNS = [
    _NAME,
    _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", description="The aggregate status of the containers in this pod."),
    _col("Restarts", description="The number of times the containers in this pod have been restarted and "
                                 "when the last container in this pod has restarted."),
    _AGE,
    _col("IP", priority=1, description="podIP address allocated to the pod. Routable at least within the "
                                       "cluster. Empty if not yet allocated."),
    _col("Node", priority=1, description="NodeName indicates in which node this pod is scheduled."),
    _col("Nominated Node", priority=1, description="nominatedNodeName is set only when this pod preempts "
                                                   "other pods on the node."),
    _col("Readiness Gates", priority=1, description="If specified, all readiness gates will be evaluated "
                                                    "for pod readiness."),
]


def _is_restartable_init(c: Mapping[str, Any] | None) -> bool:
    return bool(c) and _str(_dict(c).get("restartPolicy")) == "Always"


def _later(a: datetime | None, ts: Any) -> datetime | None:
    t = parse_time(ts)
    if t is None:
        return a
    return t if a is None or t > a else a


def pod_status_reason(pod: Obj) -> tuple[str, int, int, int, datetime | None]:
    """kubectl's STATUS logic: (status, ready containers, total containers, restarts, last restart)."""
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    containers, init_containers = _list(spec.get("containers")), _list(spec.get("initContainers"))
    total = len(containers)
    ready = 0
    restarts = 0
    restartable_restarts = 0
    last_restart: datetime | None = None
    last_restartable_restart: datetime | None = None
    phase = _str(status.get("phase"))
    reason = _str(status.get("reason")) or phase
    conditions = _list(status.get("conditions"))
    for cond in conditions:
        if _dict(cond).get("type") == "PodScheduled" and _dict(cond).get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_by_name: dict[str, Mapping[str, Any]] = {}
    for c in init_containers:
        c = _dict(c)
        init_by_name[_str(c.get("name"))] = c
        if _is_restartable_init(c):
            total += 1

    initializing = False
    for i, cs in enumerate(_list(status.get("initContainerStatuses"))):
        cs = _dict(cs)
        state, last = _dict(cs.get("state")), _dict(cs.get("lastState"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        restarts += _int(cs.get("restartCount"))
        if last.get("terminated") is not None:
            last_restart = _later(last_restart, _dict(last["terminated"]).get("finishedAt"))
        restartable = _is_restartable_init(init_by_name.get(_str(cs.get("name"))))
        if restartable:
            restartable_restarts += _int(cs.get("restartCount"))
            if last.get("terminated") is not None:
                last_restartable_restart = _later(last_restartable_restart,
                                                  _dict(last["terminated"]).get("finishedAt"))
        if terminated is not None and _int(_dict(terminated).get("exitCode")) == 0:
            continue
        if restartable and cs.get("started") is True:
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            t = _dict(terminated)
            if not _str(t.get("reason")):
                reason = (f"Init:Signal:{_int(t.get('signal'))}" if _int(t.get("signal"))
                          else f"Init:ExitCode:{_int(t.get('exitCode'))}")
            else:
                reason = "Init:" + _str(t.get("reason"))
        elif (waiting is not None and _str(_dict(waiting).get("reason"))
              and _dict(waiting).get("reason") != "PodInitializing"):
            reason = "Init:" + _str(_dict(waiting).get("reason"))
        else:
            reason = f"Init:{i}/{len(init_containers)}"
        initializing = True
        break

    initialized = any(_dict(c).get("type") == "Initialized" and _dict(c).get("status") == "True"
                      for c in conditions)
    if not initializing or initialized:
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cs in reversed(_list(status.get("containerStatuses"))):
            cs = _dict(cs)
            state, last = _dict(cs.get("state")), _dict(cs.get("lastState"))
            restarts += _int(cs.get("restartCount"))
            if last.get("terminated") is not None:
                last_restart = _later(last_restart, _dict(last["terminated"]).get("finishedAt"))
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and _str(_dict(waiting).get("reason")):
                reason = _str(_dict(waiting).get("reason"))
            elif terminated is not None and _str(_dict(terminated).get("reason")):
                reason = _str(_dict(terminated).get("reason"))
            elif terminated is not None:
                t = _dict(terminated)
                reason = (f"Signal:{_int(t.get('signal'))}" if _int(t.get("signal"))
                          else f"ExitCode:{_int(t.get('exitCode'))}")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(_dict(c).get("type") == "Ready" and _dict(c).get("status") == "True"
                            for c in conditions)
            reason = "Running" if pod_ready else "NotReady"

    deleting = _m(pod, "metadata", "deletionTimestamp") is not None
    if deleting and _str(status.get("reason")) == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _pod_row(pod: Obj, now: datetime) -> list[Cell]:
    reason, ready, total, restarts, last_restart = pod_status_reason(pod)
    restarts_str = str(restarts)
    if restarts and last_restart is not None:
        restarts_str = f"{restarts} ({human_age((now - last_restart).total_seconds())} ago)"
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    ips = _list(status.get("podIPs"))
    pod_ip = _str(_dict(ips[0]).get("ip")) if ips else _str(status.get("podIP"))
    gates = _list(spec.get("readinessGates"))
    gates_str = "<none>"
    if gates:
        conds = {_dict(c).get("type"): _dict(c).get("status") for c in _list(status.get("conditions"))}
        true_count = sum(1 for g in gates if conds.get(_dict(g).get("conditionType")) == "True")
        gates_str = f"{true_count}/{len(gates)}"
    return [_name(pod), f"{ready}/{total}", reason, restarts_str, _age(pod, now),
            pod_ip or "<none>", _str(spec.get("nodeName")) or "<none>",
            _str(status.get("nominatedNodeName")) or "<none>", gates_str]


def _pod_conditions(pod: Obj) -> list[dict[str, str]] | None:
    phase = _m(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


# ---------------------------------------------------------------- workloads

def _template_containers(obj: Obj) -> tuple[str, str]:
    cs = _list(_m(obj, "spec", "template", "spec", "containers"))
    return (",".join(_str(_dict(c).get("name")) for c in cs), ",".join(_str(_dict(c).get("image")) for c in cs))


def _selector_str(obj: Obj) -> str:
    try:
        return selector_to_string(_m(obj, "spec", "selector"))
    except ValueError:
        return "<invalid>"


_DEPLOYMENT_COLUMNS = [
    _NAME,
    _col("Ready", description="Number of the pod with ready state"),
    _col("Up-to-date", description="Total number of non-terminated pods targeted by this deployment that "
                                   "have the desired template spec."),
    _col("Available", description="Total number of available pods (ready for at least minReadySeconds) "
                                  "targeted by this deployment."),
    _AGE,
    _col("Containers", priority=1, description="Names of each container in the template."),
    _col("Images", priority=1, description="Images referenced by each container in the template."),
    _col("Selector", priority=1, description="Label selector for pods. Existing ReplicaSets whose pods are "
                                             "selected by this will be the ones affected by this deployment."),
]


def _deployment_row(d: Obj, now: datetime) -> list[Cell]:
    status = _dict(d.get("status"))
    desired = _int(_m(d, "spec", "replicas"))
    names, images = _template_containers(d)
    return [_name(d), f"{_int(status.get('readyReplicas'))}/{desired}", _int(status.get("updatedReplicas")),
            _int(status.get("availableReplicas")), _age(d, now), names, images, _selector_str(d)]


_REPLICASET_COLUMNS = [
    _NAME,
    _col("Desired", "integer", "Replicas is the number of desired replicas."),
    _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    _col("Ready", "integer", "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready "
                             "Condition."),
    _AGE,
    _col("Containers", priority=1, description="Names of each container in the template."),
    _col("Images", priority=1, description="Images referenced by each container in the template."),
    _col("Selector", priority=1, description="Selector is a label query over pods that should match the "
                                             "replica count."),
]


def _replicaset_row(rs: Obj, now: datetime) -> list[Cell]:
    status = _dict(rs.get("status"))
    names, images = _template_containers(rs)
    return [_name(rs), _int(_m(rs, "spec", "replicas")), _int(status.get("replicas")),
            _int(status.get("readyReplicas")), _age(rs, now), names, images, _selector_str(rs)]


# ---------------------------------------------------------------- services and endpoints

_SERVICE_COLUMNS = [
    _NAME,
    _col("Type", description="type determines how the Service is exposed."),
    _col("Cluster-IP", description="clusterIP is the IP address of the service and is usually assigned "
                                   "randomly."),
    _col("External-IP", description="externalIPs is a list of IP addresses for which nodes in the cluster "
                                    "will also accept traffic for this service."),
    _col("Port(s)", description="The list of ports that are exposed by this service."),
    _AGE,
    _col("Selector", priority=1, description="Route service traffic to pods with label keys and values "
                                             "matching this selector."),
]


def service_ports(ports: Sequence[Any]) -> str:
    """`80/TCP,443:30443/TCP` (printers.makePortString)."""
    pieces = []
    for p in ports:
        p = _dict(p)
        proto = _str(p.get("protocol")) or "TCP"
        node_port = _int(p.get("nodePort"))
        pieces.append(f"{_int(p.get('port'))}:{node_port}/{proto}" if node_port > 0
                      else f"{_int(p.get('port'))}/{proto}")
    return ",".join(pieces)


def _lb_ingress(svc: Obj, wide: bool) -> str:
    out = []
    for ing in _list(_m(svc, "status", "loadBalancer", "ingress")):
        ing = _dict(ing)
        if ing.get("ip"):
            out.append(_str(ing["ip"]))
        elif ing.get("hostname"):
            out.append(_str(ing["hostname"]))
    r = ",".join(out)
    if not wide and len(r) > 16:
        r = r[:13] + "..."
    return r


def service_external_ip(svc: Obj, wide: bool = True) -> str:
    """The EXTERNAL-IP cell (printers.getServiceExternalIP)."""
    spec = _dict(svc.get("spec"))
    typ = _str(spec.get("type")) or "ClusterIP"
    external = [_str(x) for x in _list(spec.get("externalIPs"))]
    if typ in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if typ == "LoadBalancer":
        lb = _lb_ingress(svc, wide)
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + external)
        return lb or "<pending>"
    if typ == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _service_row(svc: Obj, now: datetime) -> list[Cell]:
    spec = _dict(svc.get("spec"))
    ips = _list(spec.get("clusterIPs"))
    cluster_ip = _str(ips[0]) if ips else _str(spec.get("clusterIP"))
    ports = service_ports(_list(spec.get("ports"))) or "<none>"
    selector = spec.get("selector")
    return [_name(svc), _str(spec.get("type")) or "ClusterIP", cluster_ip or "<none>",
            service_external_ip(svc, True), ports, _age(svc, now),
            format_labels(selector if isinstance(selector, Mapping) else None)]


_ENDPOINTS_COLUMNS = [
    _NAME,
    _col("Endpoints", description="The set of all endpoints is the union of all subsets."),
    _AGE,
]


def format_endpoints(ep: Obj) -> str:
    """`10.0.0.1:80,10.0.0.2:80 + 3 more...` (printers.formatEndpoints)."""
    subsets = _list(ep.get("subsets"))
    if not subsets:
        return "<none>"
    out: list[str] = []
    limit, more, count = 3, False, 0
    for ss in subsets:
        ss = _dict(ss)
        addrs = [_str(_dict(a).get("ip")) for a in _list(ss.get("addresses"))]
        ports = _list(ss.get("ports"))
        if not ports:
            count += len(addrs)
            for ip in addrs:
                if len(out) == limit:
                    more = True
                    break
                out.append(ip)
            continue
        for p in ports:
            port = _int(_dict(p).get("port"))
            count += len(addrs)
            for ip in addrs:
                if len(out) == limit:
                    more = True
                    break
                out.append(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
    ret = ",".join(out)
    if more:
        return f"{ret} + {count - limit} more..."
    return ret


def _endpoints_row(ep: Obj, now: datetime) -> list[Cell]:
    return [_name(ep), format_endpoints(ep), _age(ep, now)]


# ---------------------------------------------------------------- nodes, namespaces

_NODE_COLUMNS = [
    _NAME,
    _col("Status", description="The status of the node"),
    _col("Roles", description="The roles of the node"),
    _AGE,
    _col("Version", description="Kubelet Version reported by the node."),
    _col("Internal-IP", priority=1, description="List of addresses reachable to the node. Queried from cloud "
                                                "provider, if available."),
    _col("External-IP", priority=1, description="List of addresses reachable to the node. Queried from cloud "
                                                "provider, if available."),
    _col("OS-Image", priority=1, description="OS Image reported by the node from /etc/os-release (e.g. Debian "
                                             "GNU/Linux 7 (wheezy))."),
    _col("Kernel-Version", priority=1, description="Kernel Version reported by the node from 'uname -r' (e.g. "
                                                   "3.16.0-0.bpo.4-amd64)."),
    _col("Container-Runtime", priority=1, description="ContainerRuntime Version reported by the node through "
                                                      "runtime remote API (e.g. containerd://1.4.2)."),
]


def node_status(node: Obj) -> str:
    """`Ready`, `NotReady`, `Unknown`, with `,SchedulingDisabled` when cordoned."""
    status = []
    for c in _list(_m(node, "status", "conditions")):
        c = _dict(c)
        if c.get("type") == "Ready":
            status = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if _m(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    return ",".join(status)


def node_roles(node: Obj) -> str:
    """Roles from `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels, or `<none>`."""
    roles = set()
    for k, v in _dict(_m(node, "metadata", "labels")).items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Obj, typ: str) -> str:
    for a in _list(_m(node, "status", "addresses")):
        if _dict(a).get("type") == typ:
            return _str(_dict(a).get("address"))
    return "<none>"


def _node_row(node: Obj, now: datetime) -> list[Cell]:
    info = _dict(_m(node, "status", "nodeInfo"))
    return [_name(node), node_status(node), node_roles(node), _age(node, now), _str(info.get("kubeletVersion")),
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            _str(info.get("osImage")) or "<unknown>", _str(info.get("kernelVersion")) or "<unknown>",
            _str(info.get("containerRuntimeVersion")) or "<unknown>"]


_NAMESPACE_COLUMNS = [_NAME, _col("Status", description="The status of the namespace"), _AGE]


def _namespace_row(ns: Obj, now: datetime) -> list[Cell]:
    return [_name(ns), _str(_m(ns, "status", "phase")), _age(ns, now)]


# ---------------------------------------------------------------- config, events, leases

_CONFIGMAP_COLUMNS = [_NAME, _col("Data", "integer", "Data contains the configuration data."), _AGE]


def _configmap_row(cm: Obj, now: datetime) -> list[Cell]:
    return [_name(cm), len(_dict(cm.get("data"))) + len(_dict(cm.get("binaryData"))), _age(cm, now)]


_SECRET_COLUMNS = [
    _NAME,
    _col("Type", description="Used to facilitate programmatic handling of secret data."),
    _col("Data", "integer", "Data contains the secret data."),
    _AGE,
]


def _secret_row(s: Obj, now: datetime) -> list[Cell]:
    return [_name(s), _str(s.get("type")), len(_dict(s.get("data"))), _age(s, now)]


_EVENT_COLUMNS = [
    _col("Last Seen", description="The time at which the most recent occurrence of this event was recorded."),
    _col("Type", description="Type of this event (Normal, Warning), new types could be added in the future"),
    _col("Reason", description="This should be a short, machine understandable string that gives the reason "
                               "for the transition into the object's current status."),
    _col("Object", description="The object that this event is about."),
    _col("Subobject", priority=1, description="If referring to a piece of an object instead of an entire "
                                              "object, this string should contain a valid JSON/Go field "
                                              "access statement, such as desiredState.manifest.containers[2]."),
    _col("Source", priority=1, description="The component reporting this event. Should be a short machine "
                                           "understandable string."),
    _col("Message", description="A human-readable description of the status of this operation."),
    _col("First Seen", priority=1, description="The time at which the event was first recorded. (Time of "
                                               "server receipt is in TypeMeta.)"),
    _col("Count", priority=1, description="The number of times this event has occurred."),
    _col("Name", priority=1, format_="name", description=_D_NAME),
]


def _event_row(ev: Obj, now: datetime) -> list[Cell]:
    first = ev.get("firstTimestamp")
    first_str = since(first, now) if parse_time(first) else since(ev.get("eventTime"), now)
    last = ev.get("lastTimestamp")
    last_str = since(last, now) if parse_time(last) else first_str
    count = _int(ev.get("count"))
    series = ev.get("series")
    if isinstance(series, Mapping):
        last_str = since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    inv = _dict(ev.get("involvedObject"))
    kind = _str(inv.get("kind")).lower()
    target = f"{kind}/{_str(inv.get('name'))}" if inv.get("name") else kind
    src = _dict(ev.get("source"))
    component = _str(src.get("component")) or _str(ev.get("reportingComponent"))
    instance = _str(src.get("host")) or _str(ev.get("reportingInstance"))
    source = f"{component}, {instance}" if instance else component
    return [last_str, _str(ev.get("type")), _str(ev.get("reason")), target, _str(inv.get("fieldPath")), source,
            _str(ev.get("message")).strip(), first_str, count, _name(ev)]


_LEASE_COLUMNS = [
    _NAME,
    _col("Holder", description="holderIdentity contains the identity of the holder of a current lease."),
    _AGE,
]


def _lease_row(lease: Obj, now: datetime) -> list[Cell]:
    return [_name(lease), _str(_m(lease, "spec", "holderIdentity")), _age(lease, now)]


# ---------------------------------------------------------------- generic

_DEFAULT_COLUMNS = [_NAME, _AGE]


def _default_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _age(obj, now)]


def _name(obj: Obj) -> str:
    return _str(_m(obj, "metadata", "name"))


def _age(obj: Obj, now: datetime) -> str:
    return since(_m(obj, "metadata", "creationTimestamp"), now)


Printer = tuple[list[dict[str, Any]], Callable[[Obj, datetime], list[Cell]]]

PRINTERS: dict[str, Printer] = {
    "Pod": (_POD_COLUMNS, _pod_row),
    "Deployment": (_DEPLOYMENT_COLUMNS, _deployment_row),
    "ReplicaSet": (_REPLICASET_COLUMNS, _replicaset_row),
    "Service": (_SERVICE_COLUMNS, _service_row),
    "Endpoints": (_ENDPOINTS_COLUMNS, _endpoints_row),
    "Node": (_NODE_COLUMNS, _node_row),
    "Namespace": (_NAMESPACE_COLUMNS, _namespace_row),
    "ConfigMap": (_CONFIGMAP_COLUMNS, _configmap_row),
    "Secret": (_SECRET_COLUMNS, _secret_row),
    "Event": (_EVENT_COLUMNS, _event_row),
    "Lease": (_LEASE_COLUMNS, _lease_row),
}


def columns_for(kind: str) -> list[dict[str, Any]]:
    """The column definitions of a kind (a fresh copy)."""
    return [dict(c) for c in PRINTERS.get(kind, (_DEFAULT_COLUMNS, _default_row))[0]]


def row_cells(kind: str, obj: Obj, now: datetime | float) -> list[Cell]:
    """The cells of one object, one per column of `columns_for(kind)` (wide ones included)."""
    return PRINTERS.get(kind, (_DEFAULT_COLUMNS, _default_row))[1](obj, _now_dt(now))


def partial_object_metadata(obj: Obj) -> dict[str, Any]:
    """The row object for `includeObject=Metadata` (kubectl's default)."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table_for(rt: ResourceType | str, objs: Sequence[Obj], now: datetime | float,
              include_object: str | None = None) -> dict[str, Any]:
    """The meta.k8s.io/v1 Table of `objs` (wire dicts of kind `rt`).

    Rows carry `cells` (all columns) and, per `include_object` ("None", "Metadata",
    "Object"), an `object`; with the default None no `object` is set and the caller
    fills it. The caller also sets `metadata.resourceVersion`/`continue` from the list.
    Pod rows carry `conditions` (Completed) for finished pods, as Kubernetes sends.
    """
    kind = rt if isinstance(rt, str) else rt.kind
    cols, row_fn = PRINTERS.get(kind, (_DEFAULT_COLUMNS, _default_row))
    now_dt = _now_dt(now)
    rows: list[dict[str, Any]] = []
    for obj in objs:
        row: dict[str, Any] = {"cells": row_fn(obj, now_dt)}
        if kind == "Pod":
            conds = _pod_conditions(obj)
            if conds:
                row["conditions"] = conds
        if include_object == "Metadata":
            row["object"] = partial_object_metadata(obj)
        elif include_object == "Object":
            row["object"] = obj
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [dict(c) for c in cols], "rows": rows}
