"""Parsing, defaulting and validation of objects before they are stored.

The API server reaches this module through `mkube.api.strategy`. Each entry point
parses the wire dict with the kind's pydantic model (type errors become 422 Invalid
causes naming the wire path, e.g. `spec.template.spec.containers[0].ports[0].containerPort`),
normalises it (`to_dict`: camelCase, unknown fields kept), fills Kubernetes defaults
(defaults.py) and checks the rules Kubernetes checks (pkg/apis/*/validation), with
Kubernetes' field paths, reasons and wording:

    spec.replicas: Invalid value: -1: must be greater than or equal to 0

The rules run on the normalised wire dict: plain dict access is several times faster
than walking models, and this runs on every write.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mkube.api import defaults
from mkube.api.errors import BadRequest, Cause, Invalid
from mkube.api.fielderrors import (
    Errs,
    Obj,
    as_dict,
    as_list,
    causes_from_pydantic,
    put,
    unknown_fields,
)
from mkube.api.kinds import ResourceType
from mkube.api.validate_kinds import VALIDATORS, validate_status
from mkube.api.validate_meta import validate_meta
from mkube.api.validate_pod import qos_class, validate_pod_update

__all__ = ["parse", "prepare_for_create", "prepare_for_status_update", "prepare_for_update", "qos_class",
           "unknown_fields"]


# ---------------------------------------------------------------- update rules

def _patch_service_allocations(new: Obj, old: Obj) -> None:
    """Keep the allocated clusterIP and nodePorts when an update omits them (Kubernetes'
    patchAllocatedValues), so `kubectl replace -f` of the original manifest works."""
    nspec, ospec = new.get("spec"), as_dict(old.get("spec"))
    if not isinstance(nspec, dict):
        return
    ntype, otype = nspec.get("type"), ospec.get("type")
    if ntype != "ExternalName" and otype != "ExternalName":
        if not nspec.get("clusterIP") and ospec.get("clusterIP"):
            nspec["clusterIP"] = ospec["clusterIP"]
        if not nspec.get("clusterIPs") and ospec.get("clusterIPs"):
            nspec["clusterIPs"] = list(ospec["clusterIPs"])
    if ntype in ("NodePort", "LoadBalancer") and otype in ("NodePort", "LoadBalancer"):
        new_ports = as_list(nspec.get("ports"))
        used = {p.get("nodePort") for p in new_ports if isinstance(p, dict) and p.get("nodePort")}
        by_name = {p.get("name") or "": p.get("nodePort") for p in as_list(ospec.get("ports")) if isinstance(p, dict)}
        for p in new_ports:
            if isinstance(p, dict) and not p.get("nodePort"):
                old_np = by_name.get(p.get("name") or "")
                if old_np and old_np not in used:
                    p["nodePort"] = old_np
                    used.add(old_np)


def _validate_update(rt: ResourceType, new: Obj, old: Obj, errs: Errs) -> None:
    nmd, omd = as_dict(new.get("metadata")), as_dict(old.get("metadata"))
    for fld in ("name", "namespace", "uid"):
        if nmd.get(fld) != omd.get(fld) and (omd.get(fld) or nmd.get(fld)):
            errs.immutable(f"metadata.{fld}", nmd.get(fld))
    if omd.get("deletionTimestamp"):
        added = [f for f in as_list(nmd.get("finalizers")) if f not in as_list(omd.get("finalizers"))]
        if added:
            errs.forbidden("metadata.finalizers", f"no new finalizers can be added if the object is being deleted, "
                                                  f"found new finalizers {added}")
    kind = rt.kind
    nspec, ospec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    if kind == "Pod":
        validate_pod_update(new, old, errs)
    elif kind in ("Deployment", "ReplicaSet"):
        if nspec.get("selector") != ospec.get("selector"):
            errs.immutable("spec.selector", nspec.get("selector"))
    elif kind == "Service":
        oip, nip = ospec.get("clusterIP"), nspec.get("clusterIP")
        if oip and nspec.get("type") != "ExternalName" and nip != oip:
            errs.immutable("spec.clusterIP", nip)
    elif kind in ("Secret", "ConfigMap"):
        if old.get("immutable") is True:
            msg = "field is immutable when `immutable` is set"
            fields = ("data", "binaryData") if kind == "ConfigMap" else ("data",)
            for fld in fields:
                if (new.get(fld) or {}) != (old.get(fld) or {}):
                    errs.forbidden(fld, msg)
            if new.get("immutable") is not True:
                errs.forbidden("immutable", msg)
        if kind == "Secret" and new.get("type") != old.get("type"):
            errs.immutable("type", new.get("type"))


# ---------------------------------------------------------------- entry points

def _object_name(body: Any) -> str:
    md = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(md, dict):
        return str(md.get("name") or md.get("generateName") or "")
    return ""


def _raise(rt: ResourceType, obj: Obj, causes: list[Cause]) -> None:
    raise Invalid(rt.kind, _object_name(obj), causes, group=rt.group or None)


def parse(rt: ResourceType, body: Any) -> Obj:
    """The normalised wire dict of `body` parsed by the kind's model (unknown fields kept).
    Raises BadRequest for a non-object body, Invalid (causes with wire paths) for type errors."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body of a {rt.kind} must be a JSON object")
    model = rt.model()
    try:
        obj = model.model_validate(body)
    except ValidationError as exc:
        _raise(rt, body, causes_from_pydantic(model, exc))
        raise  # unreachable: _raise always raises
    return obj.to_dict()


def _reset_for_create(rt: ResourceType, obj: Obj) -> None:
    """What Kubernetes' PrepareForCreate does: status owned by controllers starts empty."""
    kind = rt.kind
    if kind == "Pod":
        obj["status"] = {"phase": "Pending"}  # qosClass is set after defaulting (requests from limits)
    elif kind in ("Deployment", "ReplicaSet", "Service"):
        obj["status"] = {"replicas": 0} if kind == "ReplicaSet" else {}
    elif kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        fins = as_list(spec.get("finalizers"))
        if "kubernetes" not in fins:
            spec["finalizers"] = [*fins, "kubernetes"]
    if not rt.namespaced:
        as_dict(obj.get("metadata")).pop("namespace", None)


def _check(rt: ResourceType, obj: Obj, errs: Errs) -> None:
    validate_meta(rt, as_dict(obj.get("metadata")), errs)
    fn = VALIDATORS.get(rt.kind)
    if fn is not None:
        fn(rt, obj, errs)


def prepare_for_create(rt: ResourceType, body: Obj) -> Obj:
    """Parse, default and validate a new object; returns the normalised wire dict.
    Raises Invalid (422) with one cause per bad field. Server-owned metadata is left alone."""
    obj = parse(rt, body)
    _reset_for_create(rt, obj)
    defaults.apply_defaults(rt.kind, obj)
    if rt.kind == "Pod":
        obj["status"]["qosClass"] = qos_class(as_dict(obj.get("spec")))
    errs = Errs()
    _check(rt, obj, errs)
    if errs.causes:
        _raise(rt, obj, errs.causes)
    return obj


_SERVER_META = ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def prepare_for_update(rt: ResourceType, body: Obj, old: Obj) -> Obj:
    """As prepare_for_create, plus: status kept from `old` for kinds with a /status
    subresource, server-owned metadata kept from `old`, immutable fields checked."""
    obj = parse(rt, body)
    md, omd = obj.setdefault("metadata", {}), as_dict(old.get("metadata"))
    for fld in ("uid", "namespace"):  # an update may omit them; a different value is refused below
        if not md.get(fld) and omd.get(fld):
            md[fld] = omd[fld]
    for fld in _SERVER_META:
        put(md, fld, omd.get(fld))
    if not rt.namespaced:
        md.pop("namespace", None)
    if "status" in rt.subresources:
        put(obj, "status", old.get("status"))
    if rt.kind == "Namespace":  # spec.finalizers change only through /finalize
        put(obj.setdefault("spec", {}), "finalizers", as_dict(old.get("spec")).get("finalizers"))
    if rt.kind == "Service":
        _patch_service_allocations(obj, old)
    defaults.apply_defaults(rt.kind, obj)
    errs = Errs()
    _check(rt, obj, errs)
    _validate_update(rt, obj, old, errs)
    if errs.causes:
        _raise(rt, obj, errs.causes)
    return obj


def prepare_for_status_update(rt: ResourceType, body: Obj, old: Obj) -> Obj:
    """`old` with `status` taken from `body` (spec and metadata changes ignored);
    the status is type-checked and validated. Returns the normalised wire dict."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body of a {rt.kind} must be a JSON object")
    merged = {k: v for k, v in old.items() if k != "status"}
    if body.get("status") is not None:
        merged["status"] = body["status"]
    obj = parse(rt, merged)
    if rt.kind == "Pod":
        ost = as_dict(old.get("status"))
        st = obj.setdefault("status", {})
        if not st.get("qosClass") and ost.get("qosClass"):
            st["qosClass"] = ost["qosClass"]
    errs = Errs()
    validate_status(rt, obj, old, errs)
    if errs.causes:
        _raise(rt, obj, errs.causes)
    return obj

