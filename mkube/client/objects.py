"""Small shared pieces: resolving kinds, reading metadata, lists and watch streams.

Works on both wire dicts and `KubeModel` instances so that every part of the client
(REST, fake, informer, events) agrees on keys and resource versions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mkube.api import kinds
from mkube.api.base import KubeModel
from mkube.api.errors import ApiError, BadRequest
from mkube.api.kinds import ResourceType
from mkube.api.types import TopLevel

T = TypeVar("T")
M = TypeVar("M", bound=TopLevel)
U = TypeVar("U")

Obj = dict[str, Any]
#: What the client accepts to name a kind: a ResourceType, a model class (`Pod`) or
#: what a user types (`"po"`, `"pods"`, `"deployments.apps"`).
ResourceLike = ResourceType | type[KubeModel] | str

_BY_CLASS: dict[type, ResourceType] = {}


def resource_for(resource: ResourceLike) -> ResourceType:
    """The ResourceType of `resource`. Raises BadRequest for a kind the API does not serve."""
    if isinstance(resource, ResourceType):
        return resource
    if isinstance(resource, str):
        rt = kinds.lookup(resource)
        if rt is None:
            raise BadRequest(f'the server doesn\'t have a resource type "{resource}"')
        return rt
    cached = _BY_CLASS.get(resource)
    if cached is not None:
        return cached
    for rt in kinds.RESOURCES:
        if rt.kind == resource.__name__:
            _BY_CLASS[resource] = rt
            return rt
    raise BadRequest(f"no resource type serves the model class {resource.__name__}")


def model_for(resource: ResourceLike) -> type[KubeModel]:
    """The model class for `resource` (the class itself when a class is given)."""
    if isinstance(resource, type):
        return resource
    return resource_for(resource).model()


def metadata(obj: Any) -> Obj:
    """`metadata` of a wire dict or a model as a plain dict view (read-only use)."""
    if isinstance(obj, dict):
        return obj.get("metadata") or {}
    meta = getattr(obj, "metadata", None)
    if meta is None:
        return {}
    if isinstance(meta, dict):
        return meta
    if isinstance(meta, KubeModel):
        return meta.to_dict()
    return {}


def _meta_field(obj: Any, attr: str, wire: str) -> Any:
    meta = obj.get("metadata") if isinstance(obj, dict) else getattr(obj, "metadata", None)
    if meta is None:
        return None
    if isinstance(meta, dict):
        return meta.get(wire)
    return getattr(meta, attr, None)


def name_of(obj: Any) -> str:
    return _meta_field(obj, "name", "name") or ""


def namespace_of(obj: Any) -> str:
    return _meta_field(obj, "namespace", "namespace") or ""


def resource_version_of(obj: Any) -> str:
    return _meta_field(obj, "resource_version", "resourceVersion") or ""


def uid_of(obj: Any) -> str:
    return _meta_field(obj, "uid", "uid") or ""


def labels_of(obj: Any) -> dict[str, str]:
    return _meta_field(obj, "labels", "labels") or {}


def key_of(obj: Any) -> str:
    """The cache/workqueue key: `namespace/name`, or `name` for cluster-scoped objects."""
    ns = namespace_of(obj)
    name = name_of(obj)
    return f"{ns}/{name}" if ns else name


def split_key(key: str) -> tuple[str, str]:
    """`ns/name` -> ("ns", "name"); `name` -> ("", "name")."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)


@dataclass
class ObjectList(Generic[T]):
    """One list answer: the items and the resourceVersion to start a watch from."""

    items: list[T]
    resource_version: str = ""
    continue_: str | None = None
    remaining_item_count: int | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class WatchEvent(Generic[T]):
    """One watch event. `type` is ADDED, MODIFIED, DELETED or BOOKMARK (ERROR raises)."""

    type: str
    object: T


@dataclass
class Watch(Generic[T]):
    """An open watch: iterate for events; `close()` (any thread) ends the iteration.

    Iteration ends when the server closes the stream (timeoutSeconds reached); an
    ERROR event raises the ApiError it carries (e.g. Gone, 410, when the requested
    resourceVersion was compacted).
    """

    _events: Iterator[WatchEvent[T]]
    _close: Callable[[], None] = field(default=lambda: None)
    _closed: threading.Event = field(default_factory=threading.Event)

    def __iter__(self) -> Iterator[WatchEvent[T]]:
        return self

    def __next__(self) -> WatchEvent[T]:
        if self._closed.is_set():
            raise StopIteration
        try:
            return next(self._events)
        except StopIteration:
            raise
        except Exception:
            if self._closed.is_set():  # reading a stream closed under us is a normal end
                raise StopIteration from None
            raise

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._close()

    def __enter__(self) -> Watch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, fn: Callable[[T], U]) -> Watch[U]:
        """The same stream with each event's object converted by `fn` (shares close())."""
        parent = self

        def events() -> Iterator[WatchEvent[U]]:
            for ev in parent:
                yield WatchEvent(ev.type, fn(ev.object))

        return Watch(events(), parent.close)


def raise_for_error_event(event: Obj) -> None:
    """A watch ERROR event carries a Status; raise it as the matching ApiError."""
    status = event.get("object") or {}
    if not isinstance(status, dict):
        raise ApiError(message=f"watch error: {status!r}")
    raise ApiError.from_status(status)
