"""Owner references: indexes, controller-ref resolution, adopt/release (ControllerRefManager).

Kubernetes' rules for a controller (owner) and candidate objects (dependents):
- owned by another controller: never touched;
- owned by us and still matching the selector: ours;
- owned by us but no longer matching: released (our ownerReference removed), unless
  we are being deleted;
- orphan and matching: adopted (ownerReference with controller=true and
  blockOwnerDeletion=true added), unless we or it are being deleted; before the first
  adoption the owner is re-read from the API server (not the cache) to make sure it
  still exists and is not being deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mkube.api.errors import ApiError, is_not_found
from mkube.api.selectors import Selector
from mkube.api.types import OwnerReference, TopLevel
from mkube.client.interface import BaseClient

T = TypeVar("T", bound=TopLevel)

log = logging.getLogger(__name__)

#: Informer index: the uid of the object's controller, or `orphan:<namespace>`.
CONTROLLER_INDEX = "controller-uid"


def controller_index(obj: Any) -> list[str]:
    ref = obj.metadata.controller_ref()
    if ref is not None and ref.uid:
        return [ref.uid]
    return [f"orphan:{obj.metadata.namespace or ''}"]


def resolve_controller_ref(obj: TopLevel, kind: str, informer: Any) -> Any | None:
    """The cached owner (of `kind`, from `informer`) that `obj`'s controller reference
    names, or None when there is none or the name now belongs to another object (uid)."""
    ref = obj.metadata.controller_ref()
    if ref is None or ref.kind != kind:
        return None
    owner = informer.get_by_name(ref.name or "", obj.metadata.namespace)
    if owner is None or owner.metadata.uid != ref.uid:
        return None
    return owner


def orphan_key(namespace: str) -> str:
    return f"orphan:{namespace}"


def controller_ref(owner: TopLevel) -> OwnerReference:
    """The ownerReference a controller puts on what it creates."""
    return OwnerReference(api_version=owner.api_version, kind=owner.kind, name=owner.metadata.name,
                          uid=owner.metadata.uid, controller=True, block_owner_deletion=True)


class CannotAdopt(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=409, reason="Conflict")


def claim(owner: TopLevel, selector: Selector, candidates: Sequence[T], client: BaseClient,
          fresh_owner: Callable[[], TopLevel | None]) -> tuple[list[T], list[Exception]]:
    """Apply the rules of the module docstring. Returns (objects now ours, errors).

    `fresh_owner()` reads the owner from the API server (None if gone); it is called at
    most once, and only when something is to be adopted.
    """
    owner_uid = owner.metadata.uid
    deleting = owner.metadata.deletion_timestamp is not None
    claimed: list[T] = []
    errors: list[Exception] = []
    adopt_checked: bool | None = None
    for obj in candidates:
        ref = obj.metadata.controller_ref()
        labels = obj.metadata.labels or {}
        if ref is not None:
            if ref.uid != owner_uid:
                continue
            if selector.matches(labels):
                claimed.append(obj)
                continue
            if deleting:
                continue
            try:
                release(obj, owner_uid or "", client)
            except Exception as e:
                if not is_not_found(e):
                    errors.append(e)
            continue
        if deleting or not selector.matches(labels) or obj.metadata.deletion_timestamp is not None:
            continue
        if adopt_checked is None:
            latest = fresh_owner()
            adopt_checked = (latest is not None and latest.metadata.uid == owner_uid
                             and latest.metadata.deletion_timestamp is None)
            if not adopt_checked:
                errors.append(CannotAdopt(f"{owner.kind} {owner.key} is gone or being deleted: "
                                          f"not adopting {obj.key}"))
        if not adopt_checked:
            continue
        try:
            claimed.append(adopt(obj, owner, client))
        except Exception as e:
            if not is_not_found(e):
                errors.append(e)
    return claimed, errors


def adopt(obj: T, owner: TopLevel, client: BaseClient) -> T:
    """Add `owner` as controller of `obj` (a conditional update: Conflict if `obj` is stale)."""
    new = obj.copy_deep()
    refs = [r for r in new.metadata.owner_references or [] if r.uid != owner.metadata.uid]
    new.metadata.owner_references = [*refs, controller_ref(owner)]
    log.info("%s %s adopts %s %s", owner.kind, owner.key, obj.kind, obj.key)
    return client.update(new)


def release(obj: T, owner_uid: str, client: BaseClient) -> T:
    """Remove `owner_uid`'s reference from `obj` (a conditional update)."""
    new = obj.copy_deep()
    new.metadata.owner_references = [r for r in new.metadata.owner_references or [] if r.uid != owner_uid] or None
    if new.metadata.owner_references is None:
        # an explicit empty list, so that the server clears the field
        new.metadata.owner_references = []
    log.info("releasing %s %s from owner %s", obj.kind, obj.key, owner_uid)
    return client.update(new)
