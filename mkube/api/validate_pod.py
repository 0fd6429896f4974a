"""Rules for Pods and pod templates (pkg/apis/core/validation): containers, ports,
env, volumes, probes, resources, tolerations, node affinity; the status rules of
Pods, the fields a Pod update may change, and the QoS class."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from mkube.api import names
from mkube.api.fielderrors import INT32_MAX, Errs, Obj, as_dict, as_list, dict_items, is_int, put
from mkube.api.kinds import ResourceType
from mkube.api.quantity import QUANTITY_REGEX, format_quantity, parse_quantity
from mkube.api.validate_meta import validate_annotations, validate_labels

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("TCP", "UDP", "SCTP")
_TERMINATION_MSG = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_NODE_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                    "BlockDevice")
_FIELD_REF_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")


# ---------------------------------------------------------------- pods

def port_num_or_name(v: Any, path: str, errs: Errs) -> None:
    """An IntOrString port: 1-65535, or an IANA service name."""
    if is_int(v):
        for m in names.is_port_num(v):
            errs.invalid(path, v, m)
    elif isinstance(v, str):
        if not v:
            errs.required(path)
        for m in names.is_port_name(v):
            errs.invalid(path, v, m)


def _validate_probe(p: Obj, path: str, errs: Errs, kind: str) -> None:
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if p.get(h) is not None]
    if not handlers:
        errs.required(path, "must specify a handler type")
    elif len(handlers) > 1:
        errs.forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type")
    for fld in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs.nonnegative(f"{path}.{fld}", p.get(fld))
    st = p.get("successThreshold")
    if kind in ("livenessProbe", "startupProbe") and is_int(st) and st != 1:
        errs.invalid(f"{path}.successThreshold", st, "must be 1")
    tg = p.get("terminationGracePeriodSeconds")
    if tg is not None:
        if kind == "readinessProbe":
            errs.invalid(f"{path}.terminationGracePeriodSeconds", tg, "must not be set for readinessProbes")
        elif is_int(tg) and tg <= 0:
            errs.invalid(f"{path}.terminationGracePeriodSeconds", tg, "must be greater than 0")
    _validate_handler(p, path, errs)


def _validate_handler(h: Obj, path: str, errs: Errs) -> None:
    ex = h.get("exec")
    if isinstance(ex, dict) and not ex.get("command"):
        errs.required(f"{path}.exec.command")
    hg = h.get("httpGet")
    if isinstance(hg, dict):
        if not hg.get("path"):
            errs.required(f"{path}.httpGet.path")
        port_num_or_name(hg.get("port"), f"{path}.httpGet.port", errs)
        scheme = hg.get("scheme")
        if scheme not in ("HTTP", "HTTPS"):
            errs.not_supported(f"{path}.httpGet.scheme", scheme, ("HTTP", "HTTPS"))
    ts = h.get("tcpSocket")
    if isinstance(ts, dict):
        port_num_or_name(ts.get("port"), f"{path}.tcpSocket.port", errs)
    grpc = h.get("grpc")
    if isinstance(grpc, dict):
        port = grpc.get("port")
        if is_int(port):
            for m in names.is_port_num(port):
                errs.invalid(f"{path}.grpc.port", port, m)
        else:
            errs.invalid(f"{path}.grpc.port", port, "must be an integer")


def check_quantity(v: Any, path: str, errs: Errs) -> Decimal | None:
    """The value of a non-negative quantity, or None after reporting why it is not one."""
    try:
        q = parse_quantity(v)
    except ValueError:
        errs.invalid(path, v, f"quantities must match the regular expression '{QUANTITY_REGEX}'")
        return None
    if q < 0:
        errs.invalid(path, v, "must be greater than or equal to 0")
        return None
    return q


def _validate_resource_name(name: str, path: str, errs: Errs) -> bool:
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-"):
        return True
    if "/" in name and not names.is_qualified_name(name):
        return True
    errs.invalid(path, name, "must be a standard resource type or fully qualified")
    return False


def _validate_resources(res: Obj, path: str, errs: Errs) -> None:
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for section in ("limits", "requests"):
        for name, v in as_dict(res.get(section)).items():
            p = f"{path}.{section}[{name}]"
            if not _validate_resource_name(name, p, errs):
                continue
            q = check_quantity(v, p, errs)
            if q is not None:
                parsed[section][name] = q
    for name, req in parsed["requests"].items():
        lim = parsed["limits"].get(name)
        if lim is not None and req > lim:
            errs.invalid(f"{path}.requests[{name}]", format_quantity(req),
                         f"must be less than or equal to {name} limit of {format_quantity(lim)}")


def _validate_env(env: list[Any], path: str, errs: Errs) -> None:
    for i, e in dict_items(env):
        ep = f"{path}[{i}]"
        name = e.get("name", "")
        if not name:
            errs.required(f"{ep}.name")
        else:
            for m in names.is_env_var_name(name):
                errs.invalid(f"{ep}.name", name, m)
        vf = e.get("valueFrom")
        if not isinstance(vf, dict):
            continue
        if e.get("value"):
            errs.invalid(f"{ep}.valueFrom", "", "may not be specified when `value` is not empty")
        sources = [s for s in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                   if vf.get(s) is not None]
        if not sources:
            errs.invalid(f"{ep}.valueFrom", "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                                "`configMapKeyRef` or `secretKeyRef`")
        elif len(sources) > 1:
            errs.invalid(f"{ep}.valueFrom", "", "may not have more than one field specified at a time")
        fr = vf.get("fieldRef")
        if isinstance(fr, dict):
            fp = fr.get("fieldPath", "")
            ok = fp in _FIELD_REF_PATHS or re.match(r"^metadata\.(labels|annotations)\['[^']+'\]$", fp or "")
            if not ok:
                errs.not_supported(f"{ep}.valueFrom.fieldRef.fieldPath", fp,
                                   ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs",
                                    "status.podIP", "status.podIPs"))
        for ref in ("configMapKeyRef", "secretKeyRef"):
            r = vf.get(ref)
            if isinstance(r, dict):
                if not r.get("name"):
                    errs.required(f"{ep}.valueFrom.{ref}.name")
                key = r.get("key", "")
                if not key:
                    errs.required(f"{ep}.valueFrom.{ref}.key")
                else:
                    for m in names.is_config_map_key(key):
                        errs.invalid(f"{ep}.valueFrom.{ref}.key", key, m)


def _validate_container(c: Obj, path: str, errs: Errs, ctx: _PodCtx) -> None:
    name = c.get("name", "")
    if not name:
        errs.required(f"{path}.name")
    else:
        for m in names.is_dns1123_label(name):
            errs.invalid(f"{path}.name", name, m)
        if name in ctx.container_names:
            errs.duplicate(f"{path}.name", name)
        ctx.container_names.add(name)
    image = c.get("image")
    if not image:
        errs.required(f"{path}.image")
    elif image != image.strip():
        errs.invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
    ipp = c.get("imagePullPolicy")
    if ipp is not None and ipp not in _PULL_POLICIES:
        errs.not_supported(f"{path}.imagePullPolicy", ipp, _PULL_POLICIES)
    tmp = c.get("terminationMessagePolicy")
    if tmp is not None and tmp not in _TERMINATION_MSG:
        errs.not_supported(f"{path}.terminationMessagePolicy", tmp, _TERMINATION_MSG)
    port_names: set[str] = set()
    for i, p in dict_items(c.get("ports")):
        pp = f"{path}.ports[{i}]"
        pname = p.get("name")
        if pname:
            for m in names.is_port_name(pname):
                errs.invalid(f"{pp}.name", pname, m)
            if pname in port_names:
                errs.duplicate(f"{pp}.name", pname)
            port_names.add(pname)
        cp = p.get("containerPort")
        if cp == 0:
            errs.required(f"{pp}.containerPort")
        elif is_int(cp):
            for m in names.is_port_num(cp):
                errs.invalid(f"{pp}.containerPort", cp, m)
        hp = p.get("hostPort")
        if hp:
            for m in names.is_port_num(hp):
                errs.invalid(f"{pp}.hostPort", hp, m)
            key = f"{p.get('protocol', 'TCP')}/{p.get('hostIP', '')}/{hp}"
            if key in ctx.host_ports:
                errs.duplicate(f"{pp}.hostPort", key)
            ctx.host_ports.add(key)
        if ctx.host_network and hp and hp != cp:
            errs.invalid(f"{pp}.hostPort", hp, "must match `containerPort` when `hostNetwork` is true")
        proto = p.get("protocol")
        if proto not in PROTOCOLS:
            errs.not_supported(f"{pp}.protocol", proto, PROTOCOLS)
        hip = p.get("hostIP")
        if hip and not names.is_ip(hip):
            errs.invalid(f"{pp}.hostIP", hip, "must be a valid IP address")
    _validate_env(as_list(c.get("env")), f"{path}.env", errs)
    for i, ef in dict_items(c.get("envFrom")):
        efp = f"{path}.envFrom[{i}]"
        prefix = ef.get("prefix")
        if prefix:
            for m in names.is_env_var_name(prefix):
                errs.invalid(f"{efp}.prefix", prefix, m)
        refs = [r for r in ("configMapRef", "secretRef") if ef.get(r) is not None]
        if len(refs) != 1:
            errs.invalid(efp, "", "must specify one of: `configMapRef` or `secretRef`" if not refs
                         else "may not have more than one field specified at a time")
    mount_paths: set[str] = set()
    for i, vm in dict_items(c.get("volumeMounts")):
        mp = f"{path}.volumeMounts[{i}]"
        vname = vm.get("name", "")
        if not vname:
            errs.required(f"{mp}.name")
        elif vname not in ctx.volume_names:
            errs.not_found(f"{mp}.name", vname)
        mpath = vm.get("mountPath", "")
        if not mpath:
            errs.required(f"{mp}.mountPath")
        elif mpath in mount_paths:
            errs.invalid(f"{mp}.mountPath", mpath, "must be unique")
        mount_paths.add(mpath)
        sub = vm.get("subPath")
        if sub:
            _relative_path(sub, f"{mp}.subPath", errs)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        pr = c.get(probe)
        if isinstance(pr, dict):
            _validate_probe(pr, f"{path}.{probe}", errs, probe)
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            h = lifecycle.get(hook)
            if isinstance(h, dict):
                hs = [k for k in ("exec", "httpGet", "tcpSocket", "sleep") if h.get(k) is not None]
                if not hs:
                    errs.required(f"{path}.lifecycle.{hook}", "must specify a handler type")
                elif len(hs) > 1:
                    errs.forbidden(f"{path}.lifecycle.{hook}.{hs[1]}", "may not specify more than 1 handler type")
                _validate_handler(h, f"{path}.lifecycle.{hook}", errs)
    res = c.get("resources")
    if isinstance(res, dict):
        _validate_resources(res, f"{path}.resources", errs)


def _relative_path(p: str, path: str, errs: Errs) -> None:
    if p.startswith("/"):
        errs.invalid(path, p, "must be a relative path")
    if ".." in p.split("/"):
        errs.invalid(path, p, "must not contain '..'")


class _PodCtx:
    __slots__ = ("container_names", "host_ports", "volume_names", "host_network")

    def __init__(self, volume_names: set[str], host_network: bool) -> None:
        self.container_names: set[str] = set()
        self.host_ports: set[str] = set()
        self.volume_names = volume_names
        self.host_network = host_network


def _validate_volumes(vols: Any, path: str, errs: Errs) -> set[str]:
    seen: set[str] = set()
    for i, v in dict_items(vols):
        vp = f"{path}[{i}]"
        name = v.get("name", "")
        if not name:
            errs.required(f"{vp}.name")
        else:
            for m in names.is_dns1123_label(name):
                errs.invalid(f"{vp}.name", name, m)
            if name in seen:
                errs.duplicate(f"{vp}.name", name)
            seen.add(name)
        sources = [k for k in v if k != "name"]
        if not sources:
            errs.required(vp, "must specify a volume type")
        elif len(sources) > 1:
            errs.forbidden(f"{vp}.{sources[1]}", "may not specify more than 1 volume type")
        hp = v.get("hostPath")
        if isinstance(hp, dict):
            if not hp.get("path"):
                errs.required(f"{vp}.hostPath.path")
            if hp.get("type") not in _HOST_PATH_TYPES:
                errs.not_supported(f"{vp}.hostPath.type", hp.get("type"), _HOST_PATH_TYPES[1:])
        ed = v.get("emptyDir")
        if isinstance(ed, dict):
            if ed.get("medium") not in (None, "", "Memory", "HugePages"):
                errs.not_supported(f"{vp}.emptyDir.medium", ed.get("medium"), ("", "Memory", "HugePages"))
            if ed.get("sizeLimit") is not None:
                check_quantity(ed["sizeLimit"], f"{vp}.emptyDir.sizeLimit", errs)
        for src, ref in (("configMap", "name"), ("secret", "secretName")):
            s = v.get(src)
            if not isinstance(s, dict):
                continue
            if not s.get(ref):
                errs.required(f"{vp}.{src}.{ref}")
            mode = s.get("defaultMode")
            if is_int(mode) and not 0 <= mode <= 0o777:
                errs.invalid(f"{vp}.{src}.defaultMode", mode,
                             "must be a number between 0 and 0777 (octal), both inclusive")
            for j, it in dict_items(s.get("items")):
                ip = f"{vp}.{src}.items[{j}]"
                if not it.get("key"):
                    errs.required(f"{ip}.key")
                if not it.get("path"):
                    errs.required(f"{ip}.path")
                else:
                    _relative_path(it["path"], f"{ip}.path", errs)
    return seen


def _validate_tolerations(tols: Any, path: str, errs: Errs) -> None:
    for i, t in dict_items(tols):
        tp = f"{path}[{i}]"
        key, op, value, effect = t.get("key") or "", t.get("operator") or "Equal", t.get("value") or "", t.get("effect")
        if key:
            for m in names.is_qualified_name(key):
                errs.invalid(f"{tp}.key", key, m)
        elif op != "Exists":
            errs.invalid(f"{tp}.operator", op, 'operator must be Exists when `key` is empty, which means "match '
                                               'all values and all keys"')
        if op == "Exists" and value:
            errs.invalid(f"{tp}.operator", t, "value must be empty when `operator` is 'Exists'")
        elif op == "Equal":
            for m in names.is_label_value(value):
                errs.invalid(f"{tp}.value", value, m)
        elif op != "Exists":
            errs.not_supported(f"{tp}.operator", op, ("Equal", "Exists"))
        if effect not in (None, "") and effect not in TAINT_EFFECTS:
            errs.not_supported(f"{tp}.effect", effect, TAINT_EFFECTS)
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.invalid(f"{tp}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")


def _validate_node_selector_term(term: Obj, path: str, errs: Errs) -> None:
    for i, r in dict_items(term.get("matchExpressions")):
        rp = f"{path}.matchExpressions[{i}]"
        op, values = r.get("operator"), as_list(r.get("values"))
        if op in ("In", "NotIn") and not values:
            errs.required(f"{rp}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist") and values:
            errs.forbidden(f"{rp}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        elif op in ("Gt", "Lt"):
            if len(values) != 1:
                errs.required(f"{rp}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
            else:
                try:
                    int(values[0])
                except (TypeError, ValueError):
                    errs.invalid(f"{rp}.values[0]", values[0], "must be an integer")
        elif op not in _NODE_SELECTOR_OPS:
            errs.not_supported(f"{rp}.operator", op, _NODE_SELECTOR_OPS)
        for m in names.is_qualified_name(r.get("key", "")):
            errs.invalid(f"{rp}.key", r.get("key", ""), m)
    for i, r in dict_items(term.get("matchFields")):
        rp = f"{path}.matchFields[{i}]"
        if r.get("key") != "metadata.name":
            errs.invalid(f"{rp}.key", r.get("key"), "not a valid field selector key")
        if r.get("operator") not in ("In", "NotIn"):
            errs.invalid(f"{rp}.operator", r.get("operator"), "not a valid selector operator")
        if len(as_list(r.get("values"))) != 1:
            errs.required(f"{rp}.values", "must be only one value when `operator` is 'In' or 'NotIn' for node "
                                          "field selector")


def _validate_affinity(aff: Obj, path: str, errs: Errs) -> None:
    na = aff.get("nodeAffinity")
    if not isinstance(na, dict):
        return
    np = f"{path}.nodeAffinity"
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(req, dict):
        rp = f"{np}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        terms = as_list(req.get("nodeSelectorTerms"))
        if not terms:
            errs.required(rp, "must have at least one node selector term")
        for i, t in dict_items(terms):
            _validate_node_selector_term(t, f"{rp}[{i}]", errs)
    for i, pref in dict_items(na.get("preferredDuringSchedulingIgnoredDuringExecution")):
        pp = f"{np}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        w = pref.get("weight")
        if not is_int(w) or not 1 <= w <= 100:
            errs.invalid(f"{pp}.weight", w, "must be in the range 1-100")
        if isinstance(pref.get("preference"), dict):
            _validate_node_selector_term(pref["preference"], f"{pp}.preference", errs)


def validate_pod_spec(spec: Obj, path: str, errs: Errs, *, template: bool = False) -> None:
    """PodSpec rules; templates (Deployment/ReplicaSet) only allow restartPolicy Always."""
    volume_names = _validate_volumes(spec.get("volumes"), f"{path}.volumes", errs)
    ctx = _PodCtx(volume_names, spec.get("hostNetwork") is True)
    containers = as_list(spec.get("containers"))
    if not containers:
        errs.required(f"{path}.containers")
    for i, c in dict_items(containers):
        _validate_container(c, f"{path}.containers[{i}]", errs, ctx)
    for i, c in dict_items(spec.get("initContainers")):
        cp = f"{path}.initContainers[{i}]"
        _validate_container(c, cp, errs, ctx)
        if c.get("readinessProbe") is not None and c.get("restartPolicy") != "Always":
            errs.forbidden(f"{cp}.readinessProbe", "may not be set for init containers without restartPolicy=Always")
    rp = spec.get("restartPolicy")
    if template:
        if rp != "Always":
            errs.not_supported(f"{path}.restartPolicy", rp, ("Always",))
    elif rp not in _RESTART_POLICIES:
        errs.not_supported(f"{path}.restartPolicy", rp, _RESTART_POLICIES)
    dp = spec.get("dnsPolicy")
    if dp not in _DNS_POLICIES:
        errs.not_supported(f"{path}.dnsPolicy", dp, _DNS_POLICIES)
    elif dp == "None" and not isinstance(spec.get("dnsConfig"), dict):
        errs.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
    errs.nonnegative(f"{path}.terminationGracePeriodSeconds", spec.get("terminationGracePeriodSeconds"))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not is_int(ads) or not 1 <= ads <= INT32_MAX):
        errs.invalid(f"{path}.activeDeadlineSeconds", ads, f"must be between 1 and {INT32_MAX}, inclusive")
    validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector", errs)
    _validate_tolerations(spec.get("tolerations"), f"{path}.tolerations", errs)
    for fld in ("hostname", "subdomain"):
        v = spec.get(fld)
        if v:
            for m in names.is_dns1123_label(v):
                errs.invalid(f"{path}.{fld}", v, m)
    san = spec.get("serviceAccountName")
    if san:
        for m in names.is_dns1123_subdomain(san):
            errs.invalid(f"{path}.serviceAccountName", san, m)
    nn = spec.get("nodeName")
    if nn:
        for m in names.is_dns1123_subdomain(nn):
            errs.invalid(f"{path}.nodeName", nn, m)
    aff = spec.get("affinity")
    if isinstance(aff, dict):
        _validate_affinity(aff, f"{path}.affinity", errs)
    for i, s in dict_items(spec.get("imagePullSecrets")):
        if not s.get("name"):
            errs.required(f"{path}.imagePullSecrets[{i}].name")


def validate_pod(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    """The rules of a Pod's spec."""
    validate_pod_spec(as_dict(obj.get("spec")), "spec", errs)


def validate_pod_template(tmpl: Obj, path: str, errs: Errs) -> None:
    """The rules of a pod template (Deployment/ReplicaSet): labels, annotations, spec."""
    md = as_dict(tmpl.get("metadata"))
    validate_labels(md.get("labels"), f"{path}.metadata.labels", errs)
    validate_annotations(md.get("annotations"), f"{path}.metadata.annotations", errs)
    validate_pod_spec(as_dict(tmpl.get("spec")), f"{path}.spec", errs, template=True)


# ---------------------------------------------------------------- status rules

_POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def validate_pod_status(new: Obj, old: Obj | None, errs: Errs) -> None:
    """Pod status rules: known phase, no way back from Succeeded/Failed, valid IPs."""
    status = as_dict(new.get("status"))
    phase = status.get("phase")
    if phase is not None and phase not in _POD_PHASES:
        errs.not_supported("status.phase", phase, _POD_PHASES)
    old_phase = as_dict(as_dict(old).get("status")).get("phase") if old else None
    if old_phase in ("Succeeded", "Failed") and phase != old_phase:
        errs.forbidden("status.phase", f"pod is in terminal phase {old_phase!r} and may not transition to "
                                       f"{phase!r}")
    for fld in ("podIP", "hostIP"):
        ip = status.get(fld)
        if ip and not names.is_ip(ip):
            errs.invalid(f"status.{fld}", ip, "must be a valid IP address")
    for group in ("containerStatuses", "initContainerStatuses"):
        for i, cs in dict_items(status.get(group)):
            errs.nonnegative(f"status.{group}[{i}].restartCount", cs.get("restartCount"))


# ---------------------------------------------------------------- update rules

_POD_UPDATE_MSG = ("pod updates may not change fields other than `spec.containers[*].image`,"
                   "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
                   "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
                   "to 1 if it was previously negative)")


def validate_pod_update(new: Obj, old: Obj, errs: Errs) -> None:
    """A Pod update may change only images, activeDeadlineSeconds (down) and tolerations (additions)."""
    nspec, ospec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    for group in ("containers", "initContainers"):
        if len(as_list(nspec.get(group))) != len(as_list(ospec.get(group))):
            errs.forbidden(f"spec.{group}", "pod updates may not add or remove containers")
            return
    munged = dict(nspec)
    for group in ("containers", "initContainers"):
        if group in nspec:
            munged[group] = [dict(c, image=as_dict(o).get("image")) if isinstance(c, dict) and isinstance(o, dict)
                             else c for c, o in zip(as_list(nspec[group]), as_list(ospec.get(group)), strict=False)]
    new_ads, old_ads = nspec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if old_ads is not None:
        if new_ads is None:
            errs.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value")
        elif is_int(new_ads) and is_int(old_ads) and new_ads > old_ads:
            errs.invalid("spec.activeDeadlineSeconds", new_ads, "must be less than or equal to previous value")
    put(munged, "activeDeadlineSeconds", old_ads)
    old_tols, new_tols = as_list(ospec.get("tolerations")), as_list(nspec.get("tolerations"))
    missing = [t for t in old_tols if t not in new_tols]
    if missing:
        errs.forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")
    put(munged, "tolerations", ospec.get("tolerations"))
    old_tg, new_tg = ospec.get("terminationGracePeriodSeconds"), nspec.get("terminationGracePeriodSeconds")
    if is_int(old_tg) and old_tg < 0 and new_tg == 1:
        put(munged, "terminationGracePeriodSeconds", old_tg)
    if munged != ospec:
        changed = sorted(k for k in set(munged) | set(ospec) if munged.get(k) != ospec.get(k))
        errs.forbidden("spec", _POD_UPDATE_MSG + "\n  changed: " + ", ".join(f"spec.{k}" for k in changed))


# ---------------------------------------------------------------- QoS

def qos_class(spec: Obj) -> str:
    """Guaranteed / Burstable / BestEffort, from cpu and memory requests and limits (GetPodQOS)."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for _, c in dict_items(as_list(spec.get("initContainers")) + as_list(spec.get("containers"))):
        res = as_dict(c.get("resources"))
        for name, v in as_dict(res.get("requests")).items():
            if name in ("cpu", "memory"):
                q = _safe_quantity(v)
                if q:
                    requests[name] = requests.get(name, Decimal(0)) + q
        found = set()
        for name, v in as_dict(res.get("limits")).items():
            if name in ("cpu", "memory"):
                q = _safe_quantity(v)
                if q:
                    found.add(name)
                    limits[name] = limits.get(name, Decimal(0)) + q
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(n) == q for n, q in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _safe_quantity(v: Any) -> Decimal | None:
    try:
        return parse_quantity(v)
    except ValueError:
        return None

