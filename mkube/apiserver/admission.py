"""The calls into mkube.api.strategy (parse, defaults, validation) and the few
kind rules the API server itself owns.

Guarantees: every rejection is an ApiError (422 Invalid with field causes for bad
values); a pydantic ValidationError that escapes validation is turned into 422 too.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mkube.api import strategy, validation
from mkube.api.errors import Cause, Invalid
from mkube.api.kinds import ResourceType
from mkube.apiserver import services

Obj = dict[str, Any]

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


def prepare_create(rt: ResourceType, body: Obj) -> Obj:
    """Defaults + validation for a new object (status reset where the kind owns it)."""
    try:
        return strategy.prepare_for_create(rt, body)
    except ValidationError as exc:
        raise _invalid_from_pydantic(rt, body, exc) from None


def prepare_update(rt: ResourceType, body: Obj, old: Obj) -> Obj:
    """Defaults + validation + immutability for an update of the main resource; the
    status of kinds with a /status subresource is kept from `old`."""
    if rt.kind == "Service":
        services.drop_type_dependents(body, old)  # e.g. NodePort -> ClusterIP drops carried-over nodePorts
    try:
        return strategy.prepare_for_update(rt, body, old)
    except ValidationError as exc:
        raise _invalid_from_pydantic(rt, body, exc) from None


def prepare_status(rt: ResourceType, body: Obj, old: Obj) -> Obj:
    try:
        return strategy.prepare_for_status_update(rt, body, old)
    except ValidationError as exc:
        raise _invalid_from_pydantic(rt, body, exc) from None


def unknown_fields(rt: ResourceType, body: Obj) -> list[str]:
    """Paths of fields the kind does not declare (for fieldValidation Strict/Warn)."""
    try:
        return list(validation.unknown_fields(rt, body))
    except (ValidationError, ValueError, TypeError):
        return []  # wrong types are reported by validation with better messages


def spec_changed(rt: ResourceType, new: Obj, old: Obj) -> bool:
    return strategy.spec_changed(rt, new, old)
