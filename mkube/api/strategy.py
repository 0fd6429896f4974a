"""What the API server asks of each kind before it stores an object.

These are the only entry points the API server uses for kind-specific rules
(like Kubernetes' registry strategies). They are pure: dict in, dict out.

Contract:
- `prepare_for_create(rt, body)`: parse `body` (wire dict) into the kind's model
  (wrong types -> `Invalid` with the field path), apply Kubernetes defaults, validate
  (DNS-1123 names, labels, selectors vs template labels, ports, replicas >= 0, required
  fields, duplicate container names ...). Returns the normalised wire dict (defaults
  filled, unknown fields kept). Raises `mkube.api.errors.Invalid` (422) with one Cause
  per bad field. Does not touch server-owned metadata (uid, resourceVersion,
  creationTimestamp, generation) — the API server sets those.
- `prepare_for_update(rt, body, old)`: as above, plus immutable-field checks against
  `old` (Deployment/ReplicaSet selector, Pod spec except container images and a few
  fields, Service clusterIP once set, Secret/ConfigMap `immutable`). Returns the dict.
- `prepare_for_status_update(rt, body, old)`: the status subresource: the result is
  `old` with `status` taken from `body` (spec and metadata changes ignored, except
  metadata the kind allows). Validates the status.
- `spec_changed(rt, new, old) -> bool`: whether metadata.generation must bump.
"""

from __future__ import annotations

from typing import Any

from mkube.api.kinds import ResourceType

Obj = dict[str, Any]


def prepare_for_create(rt: ResourceType, body: Obj) -> Obj:
    from mkube.api import validation

    return validation.prepare_for_create(rt, body)


def prepare_for_update(rt: ResourceType, body: Obj, old: Obj) -> Obj:
    from mkube.api import validation

    return validation.prepare_for_update(rt, body, old)


def prepare_for_status_update(rt: ResourceType, body: Obj, old: Obj) -> Obj:
    from mkube.api import validation

    return validation.prepare_for_status_update(rt, body, old)


def spec_changed(rt: ResourceType, new: Obj, old: Obj) -> bool:
    """Generation bumps when anything but metadata and status changes (as Kubernetes does)."""
    skip = {"metadata", "status", "apiVersion", "kind"}
    return {k: v for k, v in new.items() if k not in skip} != {k: v for k, v in old.items() if k not in skip}
