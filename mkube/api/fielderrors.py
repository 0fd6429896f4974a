"""Field errors in Kubernetes' wording, and the type-level checks done with the models.

`Errs` collects `Cause`s (`spec.replicas: Invalid value: -1: must be greater than or
equal to 0`); `causes_from_pydantic` turns a pydantic ValidationError into causes that
name wire paths (`spec.containers[0].ports[0].containerPort`); `unknown_fields` lists
fields a body has that the Kubernetes type does not declare (fieldValidation=Strict).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from types import UnionType
from typing import Any, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mkube.api.errors import Cause
from mkube.api.kinds import ResourceType

Obj = dict[str, Any]

INT32_MAX = 2**31 - 1  # bound of Kubernetes' int32 fields (replicas, most *Seconds)
INT64_MAX = 2**63 - 1  # bound of its int64 ones (resource versions, query parameters, grace periods)


def fmt_value(value: Any) -> str:
    """A value as Kubernetes prints it in messages: strings quoted, numbers bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if value is None:
        return "null"
    text = json.dumps(value, separators=(",", ":"), sort_keys=isinstance(value, dict), default=str,
                      ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


class Errs:
    """Accumulates causes; one method per Kubernetes field error type."""

    __slots__ = ("causes",)

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.causes.append(Cause(path, f"Invalid value: {fmt_value(value)}: {detail}", "FieldValueInvalid"))

    def required(self, path: str, detail: str = "") -> None:
        self.causes.append(Cause(path, "Required value" + (f": {detail}" if detail else ""), "FieldValueRequired"))

    def duplicate(self, path: str, value: Any) -> None:
        self.causes.append(Cause(path, f"Duplicate value: {fmt_value(value)}", "FieldValueDuplicate"))

    def not_supported(self, path: str, value: Any, supported: tuple[str, ...]) -> None:
        listed = ", ".join(f'"{s}"' for s in supported)
        self.causes.append(Cause(path, f"Unsupported value: {fmt_value(value)}: supported values: {listed}",
                                 "FieldValueNotSupported"))

    def forbidden(self, path: str, detail: str) -> None:
        self.causes.append(Cause(path, f"Forbidden: {detail}", "FieldValueForbidden"))

    def not_found(self, path: str, value: Any) -> None:
        self.causes.append(Cause(path, f"Not found: {fmt_value(value)}", "FieldValueNotFound"))

    def too_long(self, path: str, limit: int) -> None:
        self.causes.append(Cause(path, f"Too long: must have at most {limit} bytes", "FieldValueTooLong"))

    def nonnegative(self, path: str, value: Any, maximum: int | None = None) -> None:
        """An integer `value` must be >= 0 and, given `maximum` (INT32_MAX for Kubernetes'
        int32 fields), <= maximum; other types are the models' business."""
        if isinstance(value, int) and value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")
        elif maximum is not None and isinstance(value, int) and value > maximum:
            self.invalid(path, value, f"must be less than or equal to {maximum}")

    def immutable(self, path: str, value: Any) -> None:
        self.invalid(path, value, "field is immutable")


# ---------------------------------------------------------------- pydantic errors -> causes

_TYPE_MESSAGES = {
    "int_type": "must be an integer", "int_parsing": "must be an integer", "int_from_float": "must be an integer",
    "string_type": "must be a string", "bool_type": "must be a boolean", "bool_parsing": "must be a boolean",
    "float_type": "must be a number", "float_parsing": "must be a number", "list_type": "must be an array",
    "dict_type": "must be an object", "model_type": "must be an object", "model_attributes_type": "must be an object",
    "tuple_type": "must be an array",
}

_ALIASES: dict[type[BaseModel], dict[str, Any]] = {}


def _fields_by_alias(cls: type[BaseModel]) -> dict[str, Any]:
    out = _ALIASES.get(cls)
    if out is None:
        out = {}
        for name, f in cls.model_fields.items():
            out[f.alias or name] = f.annotation
            out.setdefault(name, f.annotation)
        _ALIASES[cls] = out
    return out


def _strip_none(ann: Any) -> Any:
    if get_origin(ann) in (Union, UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def loc_path(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The wire path of a pydantic error location: `spec.containers[0].ports[0].containerPort`,
    `metadata.labels[app]`; union-branch tags are dropped."""
    out = ""
    ann: Any = model
    for el in loc:
        ann = _strip_none(ann)
        origin = get_origin(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(el, str):
            ann = _fields_by_alias(ann).get(el, Any)
            out += f".{el}" if out else el
        elif origin in (list, tuple, set, frozenset) and isinstance(el, int):
            args = get_args(ann)
            ann = args[0] if args else Any
            out += f"[{el}]"
        elif origin is dict:
            args = get_args(ann)
            ann = args[1] if len(args) == 2 else Any
            out += f"[{el}]"
        elif origin in (Union, UnionType) and isinstance(el, str):
            continue  # the tag of a union branch (int | str): not part of the wire path
        elif isinstance(el, int):
            out += f"[{el}]"
        else:
            out += f".{el}" if out else str(el)
    return out


def causes_from_pydantic(model: type[BaseModel], exc: ValidationError) -> list[Cause]:
    """One cause per bad field; the errors of the branches of a union are merged into one."""
    by_path: dict[str, list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False):
        by_path.setdefault(loc_path(model, tuple(err.get("loc", ()))), []).append(dict(err))
    errs = Errs()
    for path, items in by_path.items():
        if any(e["type"] == "missing" for e in items):
            errs.required(path)
            continue
        if any(e["type"] == "literal_error" for e in items):
            expected = str(items[0].get("ctx", {}).get("expected", ""))
            errs.not_supported(path, items[0].get("input"), tuple(s.strip(" '\"") for s in
                                                                   re.split(r",| or ", expected) if s.strip()))
            continue
        details: list[str] = []
        for e in items:
            d = _TYPE_MESSAGES.get(e["type"], str(e.get("msg", "invalid value")))
            if d not in details:
                details.append(d)
        detail = details[0] if len(details) == 1 else "must be " + " or ".join(
            d.removeprefix("must be ") for d in details)
        errs.invalid(path, items[0].get("input"), detail)
    return errs.causes


# ---------------------------------------------------------------- small helpers

def as_dict(v: Any) -> Obj:
    """The value if it is a dict, else an empty dict (rules never fail on odd input)."""
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list[Any]:
    """The value if it is a list, else an empty list."""
    return v if isinstance(v, list) else []


def dict_items(v: Any) -> list[tuple[int, Obj]]:
    """(index, item) for the dict items of a list, skipping anything else."""
    return [(i, x) for i, x in enumerate(v) if isinstance(x, dict)] if isinstance(v, list) else []


def is_int(v: Any) -> TypeGuard[int]:
    """True for ints (not bools)."""
    return isinstance(v, int) and not isinstance(v, bool)



def put(d: Obj, key: str, value: Any) -> None:
    """Set `d[key]`, or remove the key when `value` is None."""
    if value is None:
        d.pop(key, None)
    else:
        d[key] = value


# ---------------------------------------------------------------- unknown fields

# Kubernetes fields the models do not declare yet: not "unknown" for fieldValidation=Strict.
KNOWN_UNMODELLED: dict[str, frozenset[str]] = {
    "ObjectMeta": frozenset({"managedFields", "selfLink"}),
    "Container": frozenset({"volumeDevices", "resizePolicy", "restartPolicy", "stdinOnce"}),
    "Probe": frozenset({"grpc"}),
    "VolumeMount": frozenset({"mountPropagation", "subPathExpr", "recursiveReadOnly"}),
    "Volume": frozenset({
        "persistentVolumeClaim", "projected", "downwardAPI", "nfs", "csi", "ephemeral", "gitRepo", "iscsi",
        "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "azureDisk",
        "vsphereVolume", "quobyte", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
        "awsElasticBlockStore", "gcePersistentDisk", "image"}),
    "PodSpec": frozenset({
        "hostPID", "hostIPC", "shareProcessNamespace", "serviceAccount", "automountServiceAccountToken",
        "hostAliases", "readinessGates", "runtimeClassName", "preemptionPolicy", "overhead",
        "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
        "resourceClaims", "ephemeralContainers", "dnsConfig", "resources"}),
    "PodStatus": frozenset({"hostIPs", "ephemeralContainerStatuses", "resize", "resourceClaimStatuses"}),
    "ContainerStatus": frozenset({"allocatedResources", "resources", "volumeMounts", "user",
                                  "allocatedResourcesStatus", "stopSignal"}),
    "ResourceRequirements": frozenset({"claims"}),
    "ServiceSpec": frozenset({"allocateLoadBalancerNodePorts", "loadBalancerClass", "healthCheckNodePort",
                              "loadBalancerSourceRanges", "trafficDistribution"}),
    "ServiceStatus": frozenset({"conditions"}),
    "NodeSpec": frozenset({"configSource", "externalID"}),
    "NodeStatus": frozenset({"images", "volumesInUse", "volumesAttached", "config", "runtimeHandlers",
                             "features"}),
    "NodeSystemInfo": frozenset({"swap"}),
    "Event": frozenset({"series", "related"}),
    "LeaseSpec": frozenset({"preferredHolder", "strategy"}),
    "DeploymentStatus": frozenset({"terminatingReplicas"}),
    "ReplicaSetStatus": frozenset({"terminatingReplicas"}),
    "PodCondition": frozenset({"observedGeneration"}),
}


def unknown_fields(rt: ResourceType, body: Obj) -> list[str]:
    """Wire paths of fields in `body` that Kubernetes' type does not declare
    (`spec.foo`, `spec.containers[0].bar`), for fieldValidation=Strict/Warn.
    Returns [] when the body does not parse (prepare_for_* reports that)."""
    if not isinstance(body, dict):
        return []
    try:
        obj = rt.model().model_validate(body)
    except ValidationError:
        return []
    out: list[str] = []
    _walk_unknown(obj, "", out)
    return out


def _walk_unknown(m: BaseModel, path: str, out: list[str]) -> None:
    extra = m.model_extra
    if extra:
        known = KNOWN_UNMODELLED.get(type(m).__name__, frozenset())
        for k in extra:
            if k not in known:
                out.append(f"{path}.{k}" if path else k)
    for name, f in type(m).model_fields.items():
        v = getattr(m, name, None)
        if v is None:
            continue
        wire = f.alias or name
        sub = f"{path}.{wire}" if path else wire
        if isinstance(v, BaseModel):
            _walk_unknown(v, sub, out)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, BaseModel):
                    _walk_unknown(x, f"{sub}[{i}]", out)
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(x, BaseModel):
                    _walk_unknown(x, f"{sub}[{k}]", out)
