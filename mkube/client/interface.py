"""`BaseClient`: the one API every component programs against.

`rest.Client` (HTTP) and `fake.FakeClient` (in memory) both implement the dict-level
("raw") primitives; the typed methods here are shared, so the two always have the same
signatures and the same namespace/apiVersion/kind handling.

Conventions:
- `namespace=None` on a namespaced kind means the client's default namespace for
  single-object calls (get/create/update/patch/delete) and *all namespaces* for
  list/watch. It is ignored for cluster-scoped kinds.
- Typed methods return fresh model instances that the caller owns.
- Every failure raises an `mkube.api.errors.ApiError` subclass (`ConnectionFailed`
  when the server is unreachable).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, Literal, Self, overload

from mkube.api.kinds import ResourceType
from mkube.api.types import Scale, TopLevel
from mkube.client.objects import (
    M,
    Obj,
    ObjectList,
    ResourceLike,
    Watch,
    WatchEvent,
    model_for,
    name_of,
    namespace_of,
    resource_for,
)

PatchType = Literal["merge", "strategic", "json"]
PatchBody = Obj | list[Any]  # a merge/strategic patch (dict) or a JSON patch (list of ops)
PropagationPolicy = Literal["Orphan", "Background", "Foreground"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


def delete_options(propagation_policy: str | None, grace_period_seconds: int | None,
                   preconditions: dict[str, str] | None) -> Obj:
    """A v1 DeleteOptions body."""
    body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy is not None:
        body["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        body["preconditions"] = preconditions
    return body


class BaseClient(abc.ABC):
    """Shared typed API on top of the raw primitives (see module docstring)."""

    #: Namespace used when a single-object call on a namespaced kind names none.
    default_namespace: str = "default"

    # ---------------------------------------------------------------- raw primitives
    @abc.abstractmethod
    def get_raw(self, resource: ResourceLike, name: str, namespace: str | None = None,
                subresource: str | None = None) -> Obj:
        """GET one object (or its subresource, e.g. "scale") as a wire dict."""

    @abc.abstractmethod
    def list_raw(self, resource: ResourceLike, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 limit: int | None = None, continue_: str | None = None,
                 resource_version: str | None = None) -> Obj:
        """GET a collection: the wire `<Kind>List` dict (items, metadata.resourceVersion/continue)."""

    @abc.abstractmethod
    def create_raw(self, resource: ResourceLike, body: Obj, namespace: str | None = None, *,
                   name: str | None = None, subresource: str | None = None) -> Obj:
        """POST `body` to the collection (or to `name/subresource`, e.g. a pod's binding)."""

    @abc.abstractmethod
    def update_raw(self, resource: ResourceLike, body: Obj, namespace: str | None = None,
                   subresource: str | None = None) -> Obj:
        """PUT `body` to its object (or to its "status"/"scale" subresource)."""

    @abc.abstractmethod
    def patch_raw(self, resource: ResourceLike, name: str, patch: PatchBody,
                  namespace: str | None = None, patch_type: PatchType = "merge",
                  subresource: str | None = None) -> Obj:
        """PATCH an object; `patch_type` merge (RFC 7386), strategic, or json (RFC 6902)."""

    @abc.abstractmethod
    def delete_raw(self, resource: ResourceLike, name: str, namespace: str | None = None,
                   propagation_policy: PropagationPolicy | None = None,
                   grace_period_seconds: int | None = None,
                   preconditions: dict[str, str] | None = None) -> Obj:
        """DELETE an object: returns what the server answered (the object or a Status)."""

    @abc.abstractmethod
    def watch_raw(self, resource: ResourceLike, namespace: str | None = None,
                  resource_version: str | None = None, label_selector: str | None = None,
                  field_selector: str | None = None, timeout_seconds: int | None = None,
                  allow_bookmarks: bool = True) -> Watch[Obj]:
        """Open a watch; events carry wire dicts. ERROR events raise their ApiError."""

    @abc.abstractmethod
    def log(self, namespace: str, pod: str, container: str | None = None, follow: bool = False,
            tail_lines: int | None = None, previous: bool = False,
            since_seconds: int | None = None, timestamps: bool = False) -> Iterator[bytes] | str:
        """A container's log: the text, or (follow=True) an iterator of byte chunks."""

    @abc.abstractmethod
    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Any API call by path (discovery, Tables, ...): parsed JSON, or text if not JSON."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The client must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- helpers
    def namespace_for(self, rt: ResourceType, namespace: str | None, body: Any = None) -> str | None:
        """The namespace a single-object call uses (None for cluster-scoped kinds)."""
        if not rt.namespaced:
            return None
        return namespace or (namespace_of(body) if body is not None else "") or self.default_namespace

    @staticmethod
    def _with_type(rt: ResourceType, body: Obj) -> Obj:
        if not body.get("apiVersion") or not body.get("kind"):
            body = {"apiVersion": rt.api_version, "kind": rt.kind, **body}
        return body

    # ---------------------------------------------------------------- typed API
    @overload
    def get(self, cls: type[M], name: str, namespace: str | None = None) -> M: ...
    @overload
    def get(self, cls: ResourceType, name: str, namespace: str | None = None) -> TopLevel: ...

    def get(self, cls: type[M] | ResourceType, name: str, namespace: str | None = None) -> Any:
        """The object `name`. Raises NotFound."""
        return model_for(cls).from_dict(self.get_raw(cls, name, namespace))

    @overload
    def list(self, cls: type[M], namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None,
             continue_: str | None = None) -> ObjectList[M]: ...
    @overload
    def list(self, cls: ResourceType, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None,
             continue_: str | None = None) -> ObjectList[TopLevel]: ...

    def list(self, cls: type[M] | ResourceType, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None,
             limit: int | None = None, continue_: str | None = None) -> ObjectList[Any]:
        """One page of objects (all of them when `limit` is None), with the list resourceVersion."""
        data = self.list_raw(cls, namespace, label_selector, field_selector, limit, continue_)
        model = model_for(cls)
        meta = data.get("metadata") or {}
        return ObjectList([model.from_dict(item) for item in data.get("items") or []],
                          resource_version=meta.get("resourceVersion") or "",
                          continue_=meta.get("continue") or None,
                          remaining_item_count=meta.get("remainingItemCount"))

    @overload
    def list_all(self, cls: type[M], namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, page_size: int = 500) -> ObjectList[M]: ...
    @overload
    def list_all(self, cls: ResourceType, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 page_size: int = 500) -> ObjectList[TopLevel]: ...

    def list_all(self, cls: type[M] | ResourceType, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 page_size: int = 500) -> ObjectList[Any]:
        """Every matching object, following `continue` tokens page by page.

        The resourceVersion is the first page's (the snapshot the pages belong to).
        """
        first = self.list(cls, namespace, label_selector, field_selector, page_size)  # type: ignore[call-overload]
        items = list(first.items)
        token = first.continue_
        while token:
            page = self.list(cls, namespace, label_selector, field_selector, page_size, token)  # type: ignore[call-overload]
            items.extend(page.items)
            token = page.continue_
        return ObjectList(items, resource_version=first.resource_version)

    def create(self, obj: M, namespace: str | None = None) -> M:
        """Create `obj` (in `namespace`, else its metadata.namespace, else the default).

        Raises AlreadyExists, Invalid. Returns the stored object (uid, resourceVersion ...).
        """
        rt = resource_for(type(obj))
        return type(obj).from_dict(self.create_raw(rt, self._with_type(rt, obj.to_dict()), namespace))

    def update(self, obj: M) -> M:
        """Replace `obj` (PUT). Raises Conflict if its resourceVersion is stale."""
        rt = resource_for(type(obj))
        return type(obj).from_dict(self.update_raw(rt, self._with_type(rt, obj.to_dict())))

    def update_status(self, obj: M) -> M:
        """Write `obj.status` through the /status subresource (spec changes are ignored)."""
        rt = resource_for(type(obj))
        return type(obj).from_dict(self.update_raw(rt, self._with_type(rt, obj.to_dict()),
                                                   subresource="status"))

    @overload
    def patch(self, cls: type[M], name: str, patch: PatchBody, namespace: str | None = None,
              patch_type: PatchType = "merge", subresource: str | None = None) -> M: ...
    @overload
    def patch(self, cls: ResourceType, name: str, patch: PatchBody, namespace: str | None = None,
              patch_type: PatchType = "merge", subresource: str | None = None) -> TopLevel: ...

    def patch(self, cls: type[M] | ResourceType, name: str, patch: PatchBody,
              namespace: str | None = None, patch_type: PatchType = "merge",
              subresource: str | None = None) -> Any:
        """Patch an object (or its "status" subresource); returns the patched object.

        For the "scale" subresource use `patch_raw` or `update_scale`.
        """
        return model_for(cls).from_dict(self.patch_raw(cls, name, patch, namespace, patch_type, subresource))

    @overload
    def delete(self, cls: type[M], name: str, namespace: str | None = None,
               propagation_policy: PropagationPolicy | None = None,
               grace_period_seconds: int | None = None,
               preconditions: dict[str, str] | None = None) -> M | None: ...
    @overload
    def delete(self, cls: ResourceType, name: str, namespace: str | None = None,
               propagation_policy: PropagationPolicy | None = None,
               grace_period_seconds: int | None = None,
               preconditions: dict[str, str] | None = None) -> TopLevel | None: ...

    def delete(self, cls: type[M] | ResourceType, name: str, namespace: str | None = None,
               propagation_policy: PropagationPolicy | None = None,
               grace_period_seconds: int | None = None,
               preconditions: dict[str, str] | None = None) -> Any:
        """Delete an object. Raises NotFound; Conflict if `preconditions` (uid /
        resourceVersion) do not hold.

        Returns the object from the server's answer, or None when it answered with a Status.
        The object is still stored when deletion is pending (graceful pod deletion,
        finalizers; metadata.deletionTimestamp set); pods, services and namespaces are also
        answered with their last state when removed at once. Use `exists()` to tell.
        """
        data = self.delete_raw(cls, name, namespace, propagation_policy, grace_period_seconds,
                               preconditions)
        if data.get("kind") == "Status":
            return None
        return model_for(cls).from_dict(data)

    @overload
    def watch(self, cls: type[M], namespace: str | None = None, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None,
              timeout_seconds: int | None = None, allow_bookmarks: bool = True) -> Watch[M]: ...
    @overload
    def watch(self, cls: ResourceType, namespace: str | None = None, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None,
              timeout_seconds: int | None = None, allow_bookmarks: bool = True) -> Watch[TopLevel]: ...

    def watch(self, cls: type[M] | ResourceType, namespace: str | None = None,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, timeout_seconds: int | None = None,
              allow_bookmarks: bool = True) -> Watch[Any]:
        """Watch changes after `resource_version` (None: current objects as ADDED first).

        Iterate the result for `WatchEvent(type, object)`; use it as a context manager or
        call `close()`. Raises Gone (410) when `resource_version` is too old: relist.
        """
        model = model_for(cls)
        return self.watch_raw(cls, namespace, resource_version, label_selector, field_selector,
                              timeout_seconds, allow_bookmarks).map(model.from_dict)

    def bind(self, namespace: str, pod_name: str, node_name: str) -> None:
        """Assign a pending pod to a node (POST pods/<name>/binding). Conflict if already bound."""
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod_name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        self.create_raw("pods", body, namespace, name=pod_name, subresource="binding")

    def get_scale(self, cls: ResourceLike, name: str, namespace: str | None = None) -> Scale:
        """The autoscaling/v1 Scale of a Deployment or ReplicaSet."""
        return Scale.from_dict(self.get_raw(cls, name, namespace, subresource="scale"))

    def update_scale(self, cls: ResourceLike, name: str, scale: Scale | int,
                     namespace: str | None = None) -> Scale:
        """Set replicas through the scale subresource; `scale` is a Scale or a replica count.

        A Scale with metadata.resourceVersion set is a conditional update (Conflict if stale).
        """
        if isinstance(scale, int):
            body: Obj = {"apiVersion": "autoscaling/v1", "kind": "Scale",
                         "metadata": {"name": name}, "spec": {"replicas": scale}}
            rt = resource_for(cls)
            ns = self.namespace_for(rt, namespace)
            if ns:
                body["metadata"]["namespace"] = ns
        else:
            body = {"apiVersion": "autoscaling/v1", "kind": "Scale", **scale.to_dict()}
            body.setdefault("metadata", {}).setdefault("name", name)
        return Scale.from_dict(self.update_raw(cls, body, namespace, subresource="scale"))

    def exists(self, cls: ResourceLike, name: str, namespace: str | None = None) -> bool:
        """Whether the object exists (a GET that maps NotFound to False)."""
        from mkube.api.errors import NotFound

        try:
            self.get_raw(cls, name, namespace)
        except NotFound:
            return False
        return True

    def server_version(self) -> Obj:
        """The /version document."""
        data = self.request("GET", "/version")
        return data if isinstance(data, dict) else {}


def object_name(body: Obj) -> str:
    """metadata.name of a wire dict; BadRequest if missing (update/patch need it)."""
    from mkube.api.errors import BadRequest

    name = name_of(body)
    if not name:
        raise BadRequest("metadata.name is required")
    return name


__all__ = ["BaseClient", "ObjectList", "PatchBody", "PatchType", "PropagationPolicy", "Watch", "WatchEvent",
           "delete_options", "object_name", "PATCH_CONTENT_TYPES"]
