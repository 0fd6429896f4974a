"""Kind rules before storage: the registry-strategy part the API server owns, plus
the calls into mkube.api.strategy (defaulting + validation).

Guarantees: every rejection is an ApiError (422 Invalid with field causes for bad
values); a pydantic ValidationError that escapes validation is turned into 422 too.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from pydantic import ValidationError

from mkube.api import strategy
from mkube.api.errors import Cause, Invalid
from mkube.api.kinds import ResourceType

Obj = dict[str, Any]

# Kinds whose status is owned by the /status subresource: ignored on create (reset)
# and on update of the main resource, as Kubernetes' strategies do. Nodes keep the
# status they register with (the kubelet creates its Node with addresses/capacity).
_STATUS_RESET_ON_CREATE = {"Pod", "Deployment", "ReplicaSet", "Service", "Namespace"}
# Kinds that may be created by PUT (Kubernetes: AllowCreateOnUpdate).
CREATE_ON_UPDATE = {"Endpoints", "Event", "Lease"}


def _name(body: Obj) -> str:
    md = body.get("metadata")
    return str(md.get("name", "")) if isinstance(md, dict) else ""


def _invalid_from_pydantic(rt: ResourceType, body: Obj, exc: ValidationError) -> Invalid:
    causes = []
    for err in exc.errors()[:20]:
        path = ".".join(str(p) for p in err.get("loc", ()))
        causes.append(Cause(field=path, message=str(err.get("msg", "invalid value")), reason="FieldValueInvalid"))
    return Invalid(rt.kind, _name(body), causes, group=rt.group or None)


# TEMPORARY: until mkube.api.validation lands, a name-only shim stands in for it.
_HAVE_VALIDATION = importlib.util.find_spec("mkube.api.validation") is not None
if not _HAVE_VALIDATION:  # pragma: no cover
    from mkube.apiserver import _shim_validation as _shim

    strategy_impl: Any = _shim
else:
    strategy_impl = strategy


def prepare_create(rt: ResourceType, body: Obj) -> Obj:
    """Defaults + validation for a new object (status reset where the kind owns it)."""
    if rt.kind in _STATUS_RESET_ON_CREATE:
        body.pop("status", None)
        if rt.kind == "Pod":
            body["status"] = {"phase": "Pending"}
        elif rt.kind == "Namespace":
            body["status"] = {"phase": "Active"}
            spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
            spec.setdefault("finalizers", ["kubernetes"])
            body["spec"] = spec
    try:
        return strategy_impl.prepare_for_create(rt, body)
    except ValidationError as exc:
        raise _invalid_from_pydantic(rt, body, exc) from None


def prepare_update(rt: ResourceType, body: Obj, old: Obj) -> Obj:
    """Defaults + validation + immutability for an update of the main resource;
    the status of kinds with a /status subresource is kept from `old`."""
    if "status" in rt.subresources:
        if "status" in old:
            body["status"] = old["status"]
        else:
            body.pop("status", None)
    if rt.kind == "Namespace":
        # spec.finalizers changes only through /finalize (as in Kubernetes)
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        old_spec = old.get("spec") or {}
        if "finalizers" in old_spec:
            spec["finalizers"] = old_spec["finalizers"]
        body["spec"] = spec
    try:
        return strategy_impl.prepare_for_update(rt, body, old)
    except ValidationError as exc:
        raise _invalid_from_pydantic(rt, body, exc) from None


def prepare_status(rt: ResourceType, body: Obj, old: Obj) -> Obj:
    try:
        return strategy_impl.prepare_for_status_update(rt, body, old)
    except ValidationError as exc:
        raise _invalid_from_pydantic(rt, body, exc) from None


def unknown_fields(rt: ResourceType, body: Obj) -> list[str]:
    """Paths of fields the kind does not declare (for fieldValidation Strict/Warn)."""
    if not _HAVE_VALIDATION:  # pragma: no cover
        return []
    from mkube.api import validation

    try:
        return list(validation.unknown_fields(rt, body))
    except ValidationError:
        return []  # wrong types are reported by validation with better messages


def spec_changed(rt: ResourceType, new: Obj, old: Obj) -> bool:
    return strategy.spec_changed(rt, new, old)
