"""describe for pods, and the container/volume sections pod templates share."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mkube.api.quantity import parse_quantity
from mkube.kubectl.describe.writer import (
    LEVEL_0,
    LEVEL_1,
    LEVEL_2,
    LEVEL_3,
    PrefixWriter,
    annotations_multiline,
    controller_of,
    d,
    dl,
    dm,
    events_section,
    labels_multiline,
    or_none,
    rfc1123z,
    s,
    since,
    tolerations_multiline,
)

Obj = dict[str, Any]


def _ports(ports: list[Any], field: str) -> str:
    return ", ".join(f"{s(p.get(field) or 0)}/{s(p.get('protocol'))}" for p in ports if isinstance(p, Mapping))


def _probe(p: Mapping[str, Any]) -> str:
    attrs = (f"delay={s(p.get('initialDelaySeconds') or 0)}s timeout={s(p.get('timeoutSeconds') or 0)}s "
             f"period={s(p.get('periodSeconds') or 0)}s #success={s(p.get('successThreshold') or 0)} "
             f"#failure={s(p.get('failureThreshold') or 0)}")
    if isinstance(p.get("exec"), Mapping):
        return f"exec [{' '.join(s(c) for c in dl(p, 'exec', 'command'))}] {attrs}"
    if isinstance(p.get("httpGet"), Mapping):
        g = p["httpGet"]
        scheme = s(g.get("scheme")).lower()
        host = s(g.get("host"))
        port = s(g.get("port"))
        hostport = f"{host}:{port}" if port else host
        url = f"{scheme}://{hostport}{s(g.get('path'))}" if scheme else f"//{hostport}{s(g.get('path'))}"
        return f"http-get {url} {attrs}"
    if isinstance(p.get("tcpSocket"), Mapping):
        t = p["tcpSocket"]
        return f"tcp-socket {s(t.get('host'))}:{s(t.get('port'))} {attrs}"
    if isinstance(p.get("grpc"), Mapping):
        g = p["grpc"]
        return f"grpc <pod>:{s(g.get('port'))} {s(g.get('service'))} {attrs}"
    return f"unknown {attrs}"


def _state(w: PrefixWriter, title: str, state: Mapping[str, Any]) -> None:
    if isinstance(state.get("running"), Mapping):
        w.write(LEVEL_2, f"{title}:\tRunning\n")
        w.write(LEVEL_3, f"Started:\t{rfc1123z(d(state, 'running', 'startedAt'))}\n")
    elif isinstance(state.get("waiting"), Mapping):
        w.write(LEVEL_2, f"{title}:\tWaiting\n")
        if d(state, "waiting", "reason"):
            w.write(LEVEL_3, f"Reason:\t{s(d(state, 'waiting', 'reason'))}\n")
    elif isinstance(state.get("terminated"), Mapping):
        t = state["terminated"]
        w.write(LEVEL_2, f"{title}:\tTerminated\n")
        if t.get("reason"):
            w.write(LEVEL_3, f"Reason:\t{s(t.get('reason'))}\n")
        if t.get("message"):
            w.write(LEVEL_3, f"Message:\t{s(t.get('message'))}\n")
        w.write(LEVEL_3, f"Exit Code:\t{s(t.get('exitCode') or 0)}\n")
        if (t.get("signal") or 0) > 0:
            w.write(LEVEL_3, f"Signal:\t{s(t.get('signal'))}\n")
        w.write(LEVEL_3, f"Started:\t{rfc1123z(t.get('startedAt'))}\n")
        w.write(LEVEL_3, f"Finished:\t{rfc1123z(t.get('finishedAt'))}\n")
    else:
        w.write(LEVEL_2, f"{title}:\tWaiting\n")


def _resources(w: PrefixWriter, res: Mapping[str, Any], level: int) -> None:
    for section, title in (("limits", "Limits"), ("requests", "Requests")):
        values = dm(res, section)
        if values:
            w.write(level, f"{title}:\n")
        for name in sorted(values):
            w.write(level + 1, f"{name}:\t{s(values[name])}\n")


def _env(w: PrefixWriter, c: Mapping[str, Any], pod: Obj | None) -> None:
    if c.get("envFrom"):
        w.write(LEVEL_2, "Environment Variables from:\n")
        for e in dl(c, "envFrom"):
            if isinstance(e.get("configMapRef"), Mapping):
                src, ref = "ConfigMap", e["configMapRef"]
            elif isinstance(e.get("secretRef"), Mapping):
                src, ref = "Secret", e["secretRef"]
            else:
                continue
            optional = "true" if ref.get("optional") else "false"
            prefix = f" with prefix '{s(e.get('prefix'))}'" if e.get("prefix") else ""
            w.write(LEVEL_3, f"{s(ref.get('name'))}\t{src}{prefix}\tOptional: {optional}\n")
    env = dl(c, "env")
    w.write(LEVEL_2, "Environment:" + ("" if env else "\t<none>") + "\n")
    for e in env:
        if not isinstance(e, Mapping):
            continue
        name = s(e.get("name"))
        vf = e.get("valueFrom")
        if not isinstance(vf, Mapping):
            for i, part in enumerate(s(e.get("value")).split("\n")):
                w.write(LEVEL_3, f"{name}:\t{part}\n" if i == 0 else f"\t{part}\n")
            continue
        if isinstance(vf.get("fieldRef"), Mapping):
            ref = vf["fieldRef"]
            path = s(ref.get("fieldPath"))
            value = _field_value(pod, path) if pod is not None else ""
            w.write(LEVEL_3, f"{name}:\t{value} ({s(ref.get('apiVersion'))}:{path})\n")
        elif isinstance(vf.get("resourceFieldRef"), Mapping):
            w.write(LEVEL_3, f"{name}:\t ({s(vf['resourceFieldRef'].get('resource'))})\n")
        elif isinstance(vf.get("secretKeyRef"), Mapping):
            ref = vf["secretKeyRef"]
            optional = "true" if ref.get("optional") else "false"
            w.write(LEVEL_3, f"{name}:\t<set to the key '{s(ref.get('key'))}' in secret '{s(ref.get('name'))}'>\t"
                             f"Optional: {optional}\n")
        elif isinstance(vf.get("configMapKeyRef"), Mapping):
            ref = vf["configMapKeyRef"]
            optional = "true" if ref.get("optional") else "false"
            w.write(LEVEL_3, f"{name}:\t<set to the key '{s(ref.get('key'))}' of config map "
                             f"'{s(ref.get('name'))}'>\tOptional: {optional}\n")


def _field_value(pod: Obj | None, path: str) -> str:
    if pod is None:
        return ""
    if path.startswith("metadata.labels['") or path.startswith("metadata.annotations['"):
        section = "labels" if "labels" in path else "annotations"
        key = path.split("['", 1)[1].rstrip("']")
        return s(dm(pod, "metadata", section).get(key))
    return s(d(pod, *path.split(".")))


def _mounts(w: PrefixWriter, c: Mapping[str, Any]) -> None:
    mounts = [m for m in dl(c, "volumeMounts") if isinstance(m, Mapping)]
    w.write(LEVEL_2, "Mounts:" + ("" if mounts else "\t<none>") + "\n")
    for m in sorted(mounts, key=lambda m: s(m.get("mountPath"))):
        flags = ["ro" if m.get("readOnly") else "rw"]
        if m.get("subPath"):
            flags.append(f'path="{s(m.get("subPath"))}"')
        w.write(LEVEL_3, f"{s(m.get('mountPath'))} from {s(m.get('name'))} ({','.join(flags)})\n")


def containers(w: PrefixWriter, label: str, items: list[Any], statuses: list[Any] | None,
               pod: Obj | None, space: str = "") -> None:
    """describeContainers: one block per container (with its status when known)."""
    by_name = {s(st.get("name")): st for st in statuses or [] if isinstance(st, Mapping)}
    w.write(LEVEL_0, f"{space}{label}:{'' if items else ' <none>'}\n")
    for c in items:
        if not isinstance(c, Mapping):
            continue
        st = by_name.get(s(c.get("name")))
        w.write(LEVEL_1, f"{' ' if space else ''}{s(c.get('name'))}:\n")
        if st is not None:
            w.write(LEVEL_2, f"Container ID:\t{s(st.get('containerID'))}\n")
        w.write(LEVEL_2, f"Image:\t{s(c.get('image'))}\n")
        if st is not None:
            w.write(LEVEL_2, f"Image ID:\t{s(st.get('imageID'))}\n")
        ports = dl(c, "ports")
        port_text = _ports(ports, "containerPort")
        host_text = _ports(ports, "hostPort")
        w.write(LEVEL_2, f"Ports:\t{port_text}\n" if "," in port_text else f"Port:\t{port_text or '<none>'}\n")
        w.write(LEVEL_2, f"Host Ports:\t{host_text}\n" if "," in host_text else f"Host Port:\t{host_text or '<none>'}\n")
        if c.get("command"):
            w.write(LEVEL_2, "Command:\n")
            for part in dl(c, "command"):
                for piece in s(part).split("\n"):
                    w.write(LEVEL_3, f"{piece}\n")
        if c.get("args"):
            w.write(LEVEL_2, "Args:\n")
            for part in dl(c, "args"):
                for piece in s(part).split("\n"):
                    w.write(LEVEL_3, f"{piece}\n")
        if st is not None:
            _state(w, "State", dm(st, "state"))
            if isinstance(d(st, "lastState", "terminated"), Mapping):
                _state(w, "Last State", dm(st, "lastState"))
            w.write(LEVEL_2, f"Ready:\t{'True' if st.get('ready') else 'False'}\n")
            w.write(LEVEL_2, f"Restart Count:\t{s(st.get('restartCount') or 0)}\n")
        _resources(w, dm(c, "resources"), LEVEL_2)
        for key, title in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"),
                           ("startupProbe", "Startup")):
            if isinstance(c.get(key), Mapping):
                w.write(LEVEL_2, f"{title}:\t{_probe(c[key])}\n")
        _env(w, c, pod)
        _mounts(w, c)


def volumes(w: PrefixWriter, vols: list[Any], space: str = "") -> None:
    """describeVolumes for the volume kinds mkube runs."""
    if not vols:
        w.write(LEVEL_0, f"{space}Volumes:\t<none>\n")
        return
    w.write(LEVEL_0, f"{space}Volumes:\n")
    for v in vols:
        if not isinstance(v, Mapping):
            continue
        w.write(LEVEL_1, f"{' ' if space else ''}{s(v.get('name'))}:\n")
        if isinstance(v.get("hostPath"), Mapping):
            hp = v["hostPath"]
            w.write(LEVEL_2, f"Type:\tHostPath (bare host directory volume)\n    Path:\t{s(hp.get('path'))}\n"
                             f"    HostPathType:\t{or_none(hp.get('type'))}\n")
        elif isinstance(v.get("emptyDir"), Mapping):
            ed = v["emptyDir"]
            w.write(LEVEL_2, f"Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n"
                             f"    Medium:\t{s(ed.get('medium'))}\n    SizeLimit:\t{s(ed.get('sizeLimit')) or '<unset>'}\n")
        elif isinstance(v.get("secret"), Mapping):
            sec = v["secret"]
            w.write(LEVEL_2, f"Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t"
                             f"{s(sec.get('secretName'))}\n    Optional:\t{'true' if sec.get('optional') else 'false'}\n")
        elif isinstance(v.get("configMap"), Mapping):
            cm = v["configMap"]
            w.write(LEVEL_2, f"Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{s(cm.get('name'))}\n"
                             f"    Optional:\t{'true' if cm.get('optional') else 'false'}\n")
        elif isinstance(v.get("persistentVolumeClaim"), Mapping):
            pvc = v["persistentVolumeClaim"]
            w.write(LEVEL_2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same "
                             f"namespace)\n    ClaimName:\t{s(pvc.get('claimName'))}\n"
                             f"    ReadOnly:\t{'true' if pvc.get('readOnly') else 'false'}\n")
        else:
            w.write(LEVEL_1, "<unknown>\n")


def _q(v: Any) -> Decimal | None:
    try:
        return parse_quantity(v)
    except (ValueError, TypeError):
        return None


def qos_class(pod: Obj) -> str:
    """qos.GetPodQOS: BestEffort, Guaranteed or Burstable (status.qosClass when set)."""
    if d(pod, "status", "qosClass"):
        return s(d(pod, "status", "qosClass"))
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for c in dl(pod, "spec", "containers") + dl(pod, "spec", "initContainers"):
        found: set[str] = set()
        for name, value in dm(c, "resources", "requests").items():
            q = _q(value)
            if name in ("cpu", "memory") and q:
                requests[name] = requests.get(name, Decimal(0)) + q
        for name, value in dm(c, "resources", "limits").items():
            q = _q(value)
            if name in ("cpu", "memory") and q:
                found.add(name)
                limits[name] = limits.get(name, Decimal(0)) + q
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def describe_pod(pod: Obj, events: list[Obj] | None) -> str:
    w = PrefixWriter()
    spec, status, meta = dm(pod, "spec"), dm(pod, "status"), dm(pod, "metadata")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    w.write(LEVEL_0, f"Namespace:\t{s(meta.get('namespace'))}\n")
    if spec.get("priority") is not None:
        w.write(LEVEL_0, f"Priority:\t{s(spec.get('priority'))}\n")
    if spec.get("priorityClassName"):
        w.write(LEVEL_0, f"Priority Class Name:\t{s(spec.get('priorityClassName'))}\n")
    if spec.get("runtimeClassName"):
        w.write(LEVEL_0, f"Runtime Class Name:\t{s(spec.get('runtimeClassName'))}\n")
    if spec.get("serviceAccountName"):
        w.write(LEVEL_0, f"Service Account:\t{s(spec.get('serviceAccountName'))}\n")
    node = s(spec.get("nodeName"))
    w.write(LEVEL_0, f"Node:\t{node + '/' + s(status.get('hostIP')) if node else '<none>'}\n")
    if status.get("startTime"):
        w.write(LEVEL_0, f"Start Time:\t{rfc1123z(status.get('startTime'))}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    phase = s(status.get("phase"))
    if meta.get("deletionTimestamp") and phase not in ("Failed", "Succeeded"):
        w.write(LEVEL_0, f"Status:\tTerminating (lasts {since(meta.get('deletionTimestamp'))})\n")
        w.write(LEVEL_0, f"Termination Grace Period:\t{s(meta.get('deletionGracePeriodSeconds') or 0)}s\n")
    else:
        w.write(LEVEL_0, f"Status:\t{phase}\n")
    if status.get("reason"):
        w.write(LEVEL_0, f"Reason:\t{s(status.get('reason'))}\n")
    if status.get("message"):
        w.write(LEVEL_0, f"Message:\t{s(status.get('message'))}\n")
    w.write(LEVEL_0, f"IP:\t{s(status.get('podIP'))}\n")
    ips = [i for i in dl(status, "podIPs") if isinstance(i, Mapping)]
    if not ips:
        w.write(LEVEL_0, "IPs:\t<none>\n")
    else:
        w.write(LEVEL_0, "IPs:\n")
        for ip in ips:
            w.write(LEVEL_1, f"IP:\t{s(ip.get('ip'))}\n")
    controlled_by = controller_of(pod)
    if controlled_by:
        w.write(LEVEL_0, f"Controlled By:\t{controlled_by}\n")
    if status.get("nominatedNodeName"):
        w.write(LEVEL_0, f"NominatedNodeName:\t{s(status.get('nominatedNodeName'))}\n")
    if spec.get("initContainers"):
        containers(w, "Init Containers", dl(spec, "initContainers"), dl(status, "initContainerStatuses"), pod)
    containers(w, "Containers", dl(spec, "containers"), dl(status, "containerStatuses"), pod)
    gates = [g for g in dl(spec, "readinessGates") if isinstance(g, Mapping)]
    conditions = [c for c in dl(status, "conditions") if isinstance(c, Mapping)]
    if gates:
        w.write(LEVEL_0, "Readiness Gates:\n  Type\tStatus\n")
        for g in gates:
            found = next((s(c.get("status")) for c in conditions if c.get("type") == g.get("conditionType")),
                         "<none>")
            w.write(LEVEL_1, f"{s(g.get('conditionType'))} \t{found} \n")
    if conditions:
        w.write(LEVEL_0, "Conditions:\n  Type\tStatus\n")
        for c in conditions:
            w.write(LEVEL_1, f"{s(c.get('type'))} \t{s(c.get('status'))} \n")
    volumes(w, dl(spec, "volumes"))
    w.write(LEVEL_0, f"QoS Class:\t{qos_class(pod)}\n")
    labels_multiline(w, "Node-Selectors", dm(spec, "nodeSelector"))
    tolerations_multiline(w, "Tolerations", dl(spec, "tolerations"))
    events_section(w, events)
    return w.text()
