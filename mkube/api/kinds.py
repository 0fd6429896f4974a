"""The table of kinds: group, version, kind, plural, scope, subresources, short names.

The API server generates its routes and discovery documents from this table; the
client and mkubectl resolve `po`, `pods`, `Pod`, `deploy` ... through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mkube.api.base import KubeModel


@dataclass(frozen=True)
class ResourceType:
    """One REST resource, e.g. apps/v1 deployments."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "binding", "log"
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    list_kind: str = field(default="")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `pods` — the name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def base_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path of the collection, an object, or an object's subresource."""
        parts = [self.base_path]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def model(self) -> type[KubeModel]:
        """The pydantic class of this kind (imported lazily to keep this table import-light)."""
        from mkube.api import types

        return getattr(types, self.kind)  # type: ignore[no-any-return]


_ALL = ("all",)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",), ("status", "finalize")),
    ResourceType("", "v1", "Node", "nodes", "node", False, ("no",), ("status",)),
    ResourceType("", "v1", "Pod", "pods", "pod", True, ("po",), ("status", "binding", "log", "exec"), _ALL),
    ResourceType("", "v1", "Service", "services", "service", True, ("svc",), ("status",), _ALL),
    ResourceType("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",)),
    ResourceType("", "v1", "Secret", "secrets", "secret", True, ()),
    ResourceType("", "v1", "Event", "events", "event", True, ("ev",)),
    ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",), ("status", "scale"), _ALL),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",), ("status", "scale"), _ALL),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease", True, ()),
)

_BY_KEY: dict[str, ResourceType] = {}
for _rt in RESOURCES:
    for _key in (_rt.plural, _rt.singular, _rt.kind.lower(), _rt.group_resource, *_rt.short_names):
        _BY_KEY.setdefault(_key.lower(), _rt)


def lookup(name: str) -> ResourceType | None:
    """Resolve what a user types (`po`, `pods`, `Pod`, `deployments.apps`) to a resource."""
    return _BY_KEY.get(name.lower())


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    """The resource of an object's apiVersion and kind, or None if not served."""
    for rt in RESOURCES:
        if rt.kind == kind and rt.api_version == api_version:
            return rt
    return None


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in RESOURCES:
        if rt.group == group and rt.version == version and rt.plural == plural:
            return rt
    return None


def groups() -> dict[str, list[str]]:
    """Served group -> versions ("" is the core group)."""
    out: dict[str, list[str]] = {}
    for rt in RESOURCES:
        versions = out.setdefault(rt.group, [])
        if rt.version not in versions:
            versions.append(rt.version)
    return out
